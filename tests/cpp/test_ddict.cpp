// tests/cpp/test_ddict.cpp: GoogleTest tests of dragon::ddict (dragon.hpp) against real managers; linked into tests/cpp/test_cpp, which tests/cpp/unit.sh runs as a fabric's first process.
#include <dragon/dragon.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

std::string dd_name(const std::string &base)
{
	static int n = 0;
	return "cpp-" + base + "." + std::to_string(getpid()) + "." + std::to_string(++n);
}

// tests/ddict/ddtool, the C side, beside this program in the build tree.
std::string ddtool()
{
	char buf[4096];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	std::string self = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
	return self.substr(0, self.rfind('/')) + "/../ddict/ddtool";
}

std::string text(const std::vector<std::byte> &v)
{
	return std::string(reinterpret_cast<const char *>(v.data()), v.size());
}

dragon::errc code_of(const dragon::error &e)
{
	return static_cast<dragon::errc>(e.code().value());
}

} // namespace

TEST(DDict, MapOperations)
{
	dragon::runtime rt;
	dragon::ddict d = dragon::ddict::create(dd_name("map"), {2, 0, 4u << 20});
	ASSERT_TRUE(d);
	EXPECT_EQ(d.managers(), 2u * dragon::runtime::node_count());
	EXPECT_EQ(d.size(), 0u);
	d.put("alpha", "one");
	d.put(std::string("beta"), std::vector<std::byte>(3, std::byte{7}));
	d.put_value("pi", 3.25);
	EXPECT_EQ(d.get_string("alpha"), "one");
	EXPECT_EQ(d.get("beta"), std::vector<std::byte>(3, std::byte{7}));
	EXPECT_EQ(d.get_value<double>("pi"), 3.25);
	EXPECT_FALSE(d.get("gamma"));
	EXPECT_FALSE(d.get_value<int>("gamma"));
	EXPECT_TRUE(d.contains("alpha"));
	EXPECT_FALSE(d.contains("gamma"));
	EXPECT_EQ(d.size(), 3u);
	std::vector<std::string> keys = d.keys();
	std::sort(keys.begin(), keys.end());
	EXPECT_EQ(keys, (std::vector<std::string>{"alpha", "beta", "pi"}));
	size_t k0 = d.keys(0).size(), k1 = d.keys(1).size();
	EXPECT_EQ(k0 + k1, 3u);
	EXPECT_EQ(d.stats(0).keys + d.stats(1).keys, 3u);
	EXPECT_EQ(d.stats(0).budget, 4u << 20);
	EXPECT_EQ(d.manager_of("alpha"), dragon_ddict_hash("alpha", 5) % d.managers());
	// into a buffer: the size, or too_big when it does not fit
	char buf[8];
	EXPECT_EQ(d.get("alpha", dragon::mutable_bytes(buf, sizeof(buf))), 3u);
	EXPECT_EQ(std::string(buf, 3), "one");
	try {
		d.get("alpha", dragon::mutable_bytes(buf, 2));
		ADD_FAILURE() << "a get into 2 bytes did not throw";
	} catch (const dragon::error &e) {
		EXPECT_EQ(code_of(e), dragon::errc::too_big) << e.what();
	}
	EXPECT_THROW(d.get_value<int>("pi"), dragon::error); // 8 bytes, not 4
	// a value larger than a channel message
	std::vector<std::byte> big(3u << 20);
	for (size_t i = 0; i < big.size(); i++)
		big[i] = static_cast<std::byte>(i * 7);
	d.put("big", big);
	EXPECT_EQ(d.get("big"), big);
	EXPECT_EQ(text(*d.pop("alpha")), "one");
	EXPECT_FALSE(d.pop("alpha"));
	EXPECT_TRUE(d.erase("beta"));
	EXPECT_FALSE(d.erase("beta"));
	d.clear();
	EXPECT_EQ(d.size(), 0u);
	d.destroy();
	EXPECT_FALSE(d);
	try {
		d.put("x", "y");
		ADD_FAILURE() << "a put on a destroyed handle did not throw";
	} catch (const dragon::error &e) {
		EXPECT_EQ(code_of(e), dragon::errc::invalid_argument) << e.what();
	}
}

TEST(DDict, AttachByNameAndDescriptorMove)
{
	dragon::runtime rt;
	std::string name = dd_name("attach");
	dragon::ddict d = dragon::ddict::create(name, {1, 0, 1u << 20});
	d.put("k", "v");
	dragon::ddict byname = dragon::ddict::attach(name, 5s);
	EXPECT_EQ(byname.get_string("k"), "v");
	dragon::ddict bydesc = dragon::ddict::attach_desc(d.serialize());
	bydesc.put("k2", "v2");
	EXPECT_EQ(d.get_string("k2"), "v2");
	dragon::ddict moved = std::move(bydesc);
	EXPECT_FALSE(bydesc);
	EXPECT_EQ(moved.size(), 2u);
	try {
		dragon::ddict::attach(dd_name("nosuch"), 100ms);
		ADD_FAILURE() << "attaching a missing name did not throw";
	} catch (const dragon::error &e) {
		EXPECT_EQ(code_of(e), dragon::errc::timed_out) << e.what();
	}
	d.destroy();
}

TEST(DDict, BudgetBatchCounterFreeze)
{
	dragon::runtime rt;
	dragon::ddict d = dragon::ddict::create({}, {1, 1, 64u << 10});
	d.put("small", "1");
	try {
		d.put("huge", std::vector<std::byte>(1u << 20));
		ADD_FAILURE() << "a put past the budget did not throw";
	} catch (const dragon::error &e) {
		EXPECT_EQ(code_of(e), dragon::errc::no_space) << e.what();
		EXPECT_NE(std::string(e.what()).find("manager 0"), std::string::npos) << e.what();
	}
	EXPECT_FALSE(d.contains("huge"));
	{
		dragon::ddict::batch b(d);
		for (int i = 0; i < 300; i++)
			d.put("b" + std::to_string(i), std::to_string(i * i));
		b.commit();
	}
	EXPECT_EQ(d.size(), 301u);
	EXPECT_EQ(d.get_string("b17"), "289");
	EXPECT_EQ(d.fetch_add("ctr", 5), 0);
	EXPECT_EQ(d.fetch_add("ctr", -2), 5);
	EXPECT_EQ(d.get_value<std::int64_t>("ctr"), 3);
	EXPECT_FALSE(d.wait_for_key("never", 50ms));
	d.freeze();
	EXPECT_EQ(d.get_string("b17"), "289");
	try {
		d.put("new", "x");
		ADD_FAILURE() << "a put into a frozen dictionary did not throw";
	} catch (const dragon::error &e) {
		EXPECT_EQ(code_of(e), dragon::errc::permission_denied) << e.what();
	}
	d.unfreeze();
	d.put("new", "x");
	d.destroy();
}

TEST(DDict, PersistAndRestore)
{
	dragon::runtime rt;
	char dir[] = "/tmp/dragon-cpp-ddict.XXXXXX";
	ASSERT_NE(mkdtemp(dir), nullptr);
	dragon::ddict d = dragon::ddict::create({}, {2, 1, 1u << 20});
	for (int i = 0; i < 100; i++)
		d.put("p" + std::to_string(i), std::to_string(i));
	d.persist(dir);
	d.clear();
	d.restore(dir);
	EXPECT_EQ(d.size(), 100u);
	EXPECT_EQ(d.get_string("p42"), "42");
	std::string shard = std::string(dir) + "/ddict-1-of-2.shard";
	ASSERT_EQ(unlink(shard.c_str()), 0);
	try {
		d.restore(dir);
		ADD_FAILURE() << "a restore without a shard did not throw";
	} catch (const dragon::error &e) {
		EXPECT_EQ(code_of(e), dragon::errc::not_found) << e.what();
		EXPECT_NE(std::string(e.what()).find("ddict-1-of-2.shard"), std::string::npos) << e.what();
	}
	unlink((std::string(dir) + "/ddict-0-of-2.shard").c_str());
	rmdir(dir);
	d.destroy();
}

TEST(DDict, SharedWithACProgram)
{
	dragon::runtime rt;
	std::string name = dd_name("c");
	dragon::ddict d = dragon::ddict::create(name, {1, 0, 1u << 20});
	// the C program fetch_adds the counter "ctr"; this handle sees the same counter
	dragon::process count = dragon::process::start({ddtool(), "count", name, "7"});
	EXPECT_EQ(count.wait_for(60s), 0);
	EXPECT_EQ(d.fetch_add("ctr", 0), 7);
	// the C program puts "here" at the key once it sees this process waiting for it
	dragon::process later = dragon::process::start({ddtool(), "putlater", name, "late"});
	EXPECT_TRUE(d.wait_for_key("late", 60s));
	EXPECT_EQ(d.get_string("late"), "here");
	EXPECT_EQ(later.wait_for(60s), 0);
	d.destroy();
}
