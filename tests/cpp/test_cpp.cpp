// tests/cpp/test_cpp.cpp: GoogleTest tests of the C++ API (dragon.hpp) against the real runtime; run as a fabric's first process by tests/cpp/unit.sh.
//
// Cross-process cases start this same program with `--child ROLE ARGS...` through
// dragon::process (the roles are at the bottom); they wait for conditions, never for fixed times.
#include <dragon/dragon.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

std::string self_exe()
{
	char buf[4096];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// A name unique to this run and test (every fabric is fresh, but a test may run twice).
std::string uname(const std::string &base)
{
	static int n = 0;
	return base + "." + std::to_string(getpid()) + "." + std::to_string(++n);
}

dragon::process child(const std::vector<std::string> &args)
{
	std::vector<std::string> argv{self_exe(), "--child"};
	argv.insert(argv.end(), args.begin(), args.end());
	return dragon::process::start(argv);
}

// Expect stmt to throw dragon::error with code c; returns the error for more checks.
#define EXPECT_DRAGON_ERROR(stmt, c)                                                              \
	[&]() {                                                                                   \
		try {                                                                             \
			stmt;                                                                     \
		} catch (const dragon::error &e_) {                                               \
			EXPECT_EQ(e_.code(), dragon::errc::c) << e_.what();                       \
			return std::string(e_.what());                                            \
		}                                                                                 \
		ADD_FAILURE() << #stmt " did not throw dragon::error(" #c ")";                    \
		return std::string();                                                             \
	}()

// Mappings of the memfd whose inode is ino in this process (the pools it has attached).
int mappings_of(ino_t ino)
{
	std::ifstream maps("/proc/self/maps");
	std::string line;
	int n = 0;
	while (std::getline(maps, line)) {
		std::istringstream ls(line);
		std::string range, perms, off, dev;
		unsigned long inode = 0;
		ls >> range >> perms >> off >> dev >> inode;
		if (inode == ino && line.find("dragon-pool") != std::string::npos)
			n++;
	}
	return n;
}

// ---- errors ----

TEST(Error, CategoryNamesAndMapsCodes)
{
	EXPECT_STREQ(dragon::category().name(), "dragon");
	std::error_code ec = dragon::errc::timed_out;
	EXPECT_EQ(&ec.category(), &dragon::category());
	EXPECT_EQ(ec.value(), DRAGON_ETIMEDOUT);
	EXPECT_EQ(ec.message(), dragon_strerror(DRAGON_ETIMEDOUT));
	// The portable conditions hold too, and a code without one stays distinct.
	EXPECT_EQ(ec, std::errc::timed_out);
	EXPECT_EQ(std::error_code(dragon::errc::exists), std::errc::file_exists);
	EXPECT_NE(std::error_code(dragon::errc::stale), std::errc::timed_out);
	EXPECT_NE(std::error_code(dragon::errc::timed_out), std::error_code(ETIMEDOUT, std::generic_category()));
}

TEST(Error, TimeoutIsACodeAndCarriesTheLibrarysDetail)
{
	dragon::runtime rt;
	std::string name = uname("absent");
	try {
		dragon::queue::attach(name, 50ms);
		FAIL() << "attach of an absent name returned";
	} catch (const dragon::error &e) {
		EXPECT_EQ(e.code(), dragon::errc::timed_out);
		EXPECT_EQ(e.code(), std::errc::timed_out);
		EXPECT_EQ(e.operation(), "dragon::queue::attach");
		EXPECT_FALSE(e.detail().empty());
		std::string what = e.what();
		EXPECT_NE(what.find("dragon::queue::attach"), std::string::npos) << what;
		EXPECT_NE(what.find(e.detail()), std::string::npos) << what;
		EXPECT_NE(what.find("DRAGON_ETIMEDOUT"), std::string::npos) << what;
	}
	// A std::system_error handler catches it too.
	EXPECT_THROW(dragon::queue::attach(name, 10ms), std::system_error);
}

TEST(Error, TooBigAndExistsNameTheirCause)
{
	dragon::runtime rt;
	std::string name = uname("q");
	dragon::queue q = dragon::queue::create(name, 2, 8);
	std::string what = EXPECT_DRAGON_ERROR(q.put(std::string(9, 'x')), too_big);
	EXPECT_NE(what.find("dragon::queue::put"), std::string::npos) << what;
	EXPECT_DRAGON_ERROR(dragon::queue::create(name, 2, 8), exists);
	// A failed creation leaves the first queue alone.
	q.put("12345678");
	EXPECT_EQ(q.get_string(1s), "12345678");
}

// ---- runtime ----

TEST(Runtime, JoinsAndNests)
{
	dragon::runtime a;
	{
		dragon::runtime b; // calls nest: leaving b does not leave the fabric
	}
	EXPECT_GE(dragon::runtime::node_count(), 1u);
	EXPECT_LT(dragon::runtime::node_index(), dragon::runtime::node_count());
	EXPECT_FALSE(dragon::runtime::fabric_id().empty());
	EXPECT_NE(dragon::runtime::puid(), 0u);
	EXPECT_FALSE(dragon::runtime::rank().has_value()); // the fabric's first process is in no group
	EXPECT_EQ(dragon::runtime::group_size(), 0u);
	dragon::queue q = dragon::queue::create(uname("q"), 1, 1); // still joined
}

// ---- pools ----

TEST(Pool, AllocationsFreeThemselvesAndMoveOwnership)
{
	dragon::pool p = dragon::pool::create(1 << 20);
	EXPECT_EQ(p.stats().allocations, 0u);
	{
		dragon::allocation a = p.alloc(100);
		ASSERT_TRUE(a);
		EXPECT_GE(a.size(), 100u);
		std::memset(a.data(), 7, 100);
		EXPECT_EQ(p.stats().allocations, 1u);
		dragon::allocation b = std::move(a);
		EXPECT_FALSE(a); // moved from: empty, its destructor frees nothing
		EXPECT_EQ(a.data(), nullptr);
		EXPECT_EQ(b.data()[99], std::byte{7});
		EXPECT_EQ(p.stats().allocations, 1u);
	}
	EXPECT_EQ(p.stats().allocations, 0u);
	// Full: try_alloc says so without throwing, alloc throws no_space, a timed alloc times out.
	dragon::allocation big = p.alloc(p.stats().largest_free);
	EXPECT_FALSE(p.try_alloc(4096).has_value());
	EXPECT_DRAGON_ERROR(p.alloc(4096), no_space);
	EXPECT_DRAGON_ERROR(p.alloc(4096, 20ms), timed_out);
	big.reset();
	EXPECT_TRUE(p.try_alloc(4096).has_value());
}

TEST(Pool, AttachByDescriptorAndMove)
{
	dragon::pool p = dragon::pool::create(1 << 20);
	dragon::descriptor d = p.desc();
	EXPECT_EQ(dragon::descriptor::parse(d.str()), d);
	dragon::pool q = dragon::pool::attach(d);
	EXPECT_EQ(q.id(), p.id());
	dragon::pool r = std::move(q);
	EXPECT_FALSE(q);
	EXPECT_TRUE(r);
	EXPECT_DRAGON_ERROR(q.destroy(), invalid_argument);
	EXPECT_DRAGON_ERROR(dragon::descriptor::parse("zz"), bad_descriptor);
}

// ---- channels ----

TEST(Channel, SendsBytesTextAndValues)
{
	dragon::pool p = dragon::pool::create(4 << 20);
	dragon::channel c = dragon::channel::create(p, {8, 0, dragon::wait_mode::adaptive});
	struct point {
		int x;
		double y;
	};
	std::vector<std::byte> bin{std::byte{1}, std::byte{0}, std::byte{255}};
	c.send(std::string_view("hello"));
	c.send(bin);
	c.send_value(point{3, 4.5});
	c.send(std::string(1000, 'z')); // beyond a block: a pool allocation
	EXPECT_EQ(c.size(), 4u);
	EXPECT_EQ(c.capacity(), 8u);
	EXPECT_EQ(c.recv_string(), "hello");
	EXPECT_EQ(c.recv(1s), bin);
	point pt = c.recv_value<point>();
	EXPECT_EQ(pt.x, 3);
	EXPECT_EQ(pt.y, 4.5);
	std::vector<std::byte> big = c.recv(); // grows past its first 256 bytes
	EXPECT_EQ(big.size(), 1000u);
	EXPECT_EQ(big[999], std::byte{'z'});
}

TEST(Channel, TryVariantsTimeoutsAndTooBig)
{
	dragon::pool p = dragon::pool::create(1 << 20);
	dragon::channel c = dragon::channel::create(p, {2, 0, dragon::wait_mode::channel_default});
	std::array<char, 4> buf{};
	EXPECT_FALSE(c.try_recv(buf).has_value());
	EXPECT_FALSE(c.try_recv_value<int>().has_value());
	EXPECT_DRAGON_ERROR(c.recv(buf, 20ms), timed_out);
	EXPECT_EQ(c.poll(dragon::channel::pollin, 10ms), 0u);
	EXPECT_TRUE(c.try_send("abcdefgh"));
	EXPECT_TRUE(c.try_send(dragon::as_bytes(42)));
	EXPECT_FALSE(c.try_send("full"));
	EXPECT_DRAGON_ERROR(c.send("full", 20ms), timed_out);
	EXPECT_EQ(c.poll(dragon::channel::pollin | dragon::channel::pollout, 10ms), dragon::channel::pollin);
	// Too big for buf: the message stays and the error names the size.
	std::string what = EXPECT_DRAGON_ERROR(c.recv(buf), too_big);
	std::array<char, 16> peeked{};
	EXPECT_EQ(c.peek(peeked), 8u);
	EXPECT_EQ(c.recv_string(), "abcdefgh");
	EXPECT_EQ(c.try_recv_value<int>(), 42);
	// A send that waits for a receiver (wait::taken) and finds none: withdrawn, the channel empty.
	EXPECT_DRAGON_ERROR(c.send("gone", dragon::wait(20ms).taken()), timed_out);
	EXPECT_FALSE(c.try_recv(buf).has_value());
	// A message of the wrong size for the type.
	c.send("abc");
	EXPECT_DRAGON_ERROR(c.recv_value<int>(), invalid_argument);
}

TEST(Channel, ZeroCopyPassesTheAllocation)
{
	dragon::pool p = dragon::pool::create(1 << 20);
	dragon::channel c = dragon::channel::create(p);
	const std::uint64_t before = p.stats().allocations; // the channel's own
	dragon::allocation a = p.alloc(4096);
	std::memset(a.data(), 0x5a, 4096);
	c.send(std::move(a));
	EXPECT_FALSE(a); // given away: its destructor frees nothing
	dragon::allocation got = c.recv_mem(1s);
	ASSERT_GE(got.size(), 4096u);
	EXPECT_EQ(got.data()[4095], std::byte{0x5a});
	EXPECT_EQ(p.stats().allocations, before + 1);
	got.reset();
	EXPECT_EQ(p.stats().allocations, before);
}

TEST(Channel, DestroyedHandleDetachesMovedFromDoesNothing)
{
	dragon::pool p = dragon::pool::create(1 << 20);
	struct stat st;
	ASSERT_EQ(fstat(dragon_pool_fd(p.native_handle()), &st), 0);
	dragon::channel c = dragon::channel::create(p);
	dragon::channel other = dragon::channel::attach(c.desc(), false);
	p = dragon::pool();    // drop the pool's own handle: the channels keep it mapped
	c = dragon::channel(); // the created handle detaches
	ASSERT_GT(mappings_of(st.st_ino), 0);
	{
		dragon::channel moved = std::move(other);
		EXPECT_FALSE(other);
		other.detach(); // nothing to do on a moved-from handle
		EXPECT_DRAGON_ERROR(other.send("x"), invalid_argument);
		moved.send("still open");
		EXPECT_EQ(moved.recv_string(), "still open");
		EXPECT_GT(mappings_of(st.st_ino), 0);
	} // the last handle goes: detached, so the pool is unmapped from this process
	EXPECT_EQ(mappings_of(st.st_ino), 0);
	EXPECT_DRAGON_ERROR(other.destroy(), invalid_argument);
}

TEST(Channel, DestroyClosesItForOtherHandles)
{
	dragon::pool p = dragon::pool::create(1 << 20);
	dragon::channel c = dragon::channel::create(p);
	dragon::channel other = dragon::channel::attach(c.desc(), false);
	c.destroy();
	EXPECT_FALSE(c);
	EXPECT_DRAGON_ERROR(other.send("x"), closed);
}

TEST(Channel, FabricChannelFoundByNameInAnotherProcess)
{
	dragon::runtime rt;
	std::string name = uname("ch");
	dragon::channel c = dragon::channel::create(name, {4, 0, dragon::wait_mode::channel_default});
	dragon::channel reply = dragon::channel::create(name + ".reply");
	dragon::process echo = child({"echo-channel", name});
	c.send("ping", 10s);
	EXPECT_EQ(reply.recv_string(10s), "ping!");
	EXPECT_EQ(echo.wait_for(10s), 0);
	EXPECT_DRAGON_ERROR(dragon::channel::create(name), exists);
	c.destroy();
	EXPECT_DRAGON_ERROR(dragon::channel::attach(dragon::descriptor{}), bad_descriptor);
}

// ---- queues ----

TEST(Queue, PutGetTryAndTimeouts)
{
	dragon::runtime rt;
	std::string name = uname("q");
	dragon::queue q = dragon::queue::create(name, 2, 64);
	EXPECT_EQ(q.msg_max(), 64u);
	EXPECT_FALSE(q.try_get().has_value());
	EXPECT_DRAGON_ERROR(q.get(20ms), timed_out);
	EXPECT_TRUE(q.try_put("one"));
	q.put_value(7L, 1s);
	EXPECT_FALSE(q.try_put("three"));
	EXPECT_DRAGON_ERROR(q.put("three", 20ms), timed_out);
	dragon::queue other = dragon::queue::attach(name, 1s);
	std::optional<std::vector<std::byte>> got = other.try_get();
	ASSERT_TRUE(got.has_value());
	EXPECT_EQ(std::string(reinterpret_cast<const char *>(got->data()), got->size()), "one");
	EXPECT_EQ(other.get_value<long>(), 7L);
	// Moved from: empty; destroying through the new handle closes it for the other.
	dragon::queue moved = std::move(q);
	EXPECT_FALSE(q);
	EXPECT_DRAGON_ERROR(q.put("x"), invalid_argument); // a moved-from handle fails, it does not crash
	moved.destroy();
	EXPECT_DRAGON_ERROR(other.put("x", 10ms), stale);
}

TEST(Queue, ServedToAnotherProcessByName)
{
	dragon::runtime rt;
	std::string name = uname("q");
	dragon::queue q = dragon::queue::create(name, 4, 64);
	dragon::queue back = dragon::queue::create(name + ".back", 4, 64);
	dragon::process p = child({"echo-queue", name});
	q.put("marco", 10s);
	EXPECT_EQ(back.get_string(10s), "marco polo");
	EXPECT_EQ(p.wait_for(10s), 0);
}

// ---- lock ----

TEST(Lock, LockGuardExcludesOtherProcesses)
{
	dragon::runtime rt;
	std::string name = uname("lock");
	char dir[] = "/tmp/dragon-cpp-lock.XXXXXX";
	ASSERT_NE(mkdtemp(dir), nullptr);
	std::string counter = std::string(dir) + "/counter";
	std::ofstream(counter) << 0 << std::endl;
	dragon::lock l = dragon::lock::create(name);
	const int procs = 4, rounds = 50;
	std::vector<dragon::process> ps;
	{
		// Hold the lock while they start: none may enter before it is released.
		std::lock_guard<dragon::lock> g(l);
		for (int i = 0; i < procs; i++)
			ps.push_back(child({"locker", name, dir, std::to_string(rounds)}));
		EXPECT_FALSE(l.try_lock());
		EXPECT_FALSE(l.try_lock_for(10ms));
		std::ifstream in(counter);
		int v = -1;
		in >> v;
		EXPECT_EQ(v, 0);
	}
	for (dragon::process &p : ps)
		EXPECT_EQ(p.wait_for(60s), 0) << "a locker saw another process inside the lock, or failed";
	std::ifstream in(counter);
	int v = -1;
	in >> v;
	EXPECT_EQ(v, procs * rounds);
	{
		std::unique_lock<dragon::lock> u(l, std::try_to_lock);
		EXPECT_TRUE(u.owns_lock());
	}
	dragon::lock moved = std::move(l);
	EXPECT_FALSE(l);
	EXPECT_DRAGON_ERROR(l.lock(), invalid_argument);
	moved.destroy();
	unlink(counter.c_str());
	rmdir(dir);
}

// ---- semaphore, barrier, event ----

TEST(Semaphore, AcquireReleaseAndBounds)
{
	dragon::runtime rt;
	dragon::semaphore s = dragon::semaphore::create(uname("sem"), 1, 2);
	EXPECT_TRUE(s.try_acquire());
	EXPECT_FALSE(s.try_acquire());
	EXPECT_FALSE(s.try_acquire_for(20ms));
	s.release();
	s.release();
	EXPECT_DRAGON_ERROR(s.release(), no_space);
	s.acquire();
	dragon::semaphore moved = std::move(s);
	EXPECT_FALSE(s);
	EXPECT_DRAGON_ERROR(s.release(), invalid_argument);
	EXPECT_TRUE(moved.try_acquire());
	EXPECT_DRAGON_ERROR(s.destroy(), invalid_argument);
}

TEST(Semaphore, ReleasedByAnotherProcess)
{
	dragon::runtime rt;
	std::string name = uname("sem");
	dragon::semaphore s = dragon::semaphore::create(name, 0, 4);
	dragon::process p = child({"release", name, "3"});
	for (int i = 0; i < 3; i++)
		EXPECT_TRUE(s.try_acquire_for(10s));
	EXPECT_EQ(p.wait_for(10s), 0);
	EXPECT_FALSE(s.try_acquire());
}

TEST(Barrier, TwoProcessesMeetEveryRound)
{
	dragon::runtime rt;
	std::string name = uname("bar");
	dragon::barrier b = dragon::barrier::create(name, 2);
	dragon::queue q = dragon::queue::create(name + ".q", 8, 16);
	dragon::process p = child({"barrier", name, "3"});
	for (int round = 0; round < 3; round++) {
		b.arrive_and_wait(10s);
		// The child puts its round's number before it arrives: it is there already.
		EXPECT_EQ(q.try_get().has_value(), true) << "round " << round;
	}
	EXPECT_EQ(p.wait_for(10s), 0);
	dragon::barrier alone = dragon::barrier::create(uname("bar"), 2);
	EXPECT_DRAGON_ERROR(alone.arrive_and_wait(20ms), timed_out);
	alone.destroy();
}

TEST(Event, SetClearAndWaitAcrossProcesses)
{
	dragon::runtime rt;
	std::string name = uname("ev");
	dragon::event e = dragon::event::create(name);
	EXPECT_FALSE(e.is_set());
	EXPECT_FALSE(e.wait_for(20ms));
	dragon::semaphore started = dragon::semaphore::create(name + ".started", 0, 1);
	dragon::queue done = dragon::queue::create(name + ".done", 1, 8);
	dragon::process p = child({"event", name});
	EXPECT_TRUE(started.try_acquire_for(10s));
	EXPECT_FALSE(done.try_get().has_value()); // waiting for the event
	e.set();
	EXPECT_EQ(done.get_string(10s), "woke");
	EXPECT_EQ(p.wait_for(10s), 0);
	EXPECT_TRUE(e.is_set()); // a wait leaves it set
	e.wait();
	e.clear();
	EXPECT_FALSE(e.wait_for(10ms));
	dragon::event moved = std::move(e);
	EXPECT_FALSE(e);
	moved.destroy();
}

// ---- processes and groups ----

// A member on a lost node ends with this status (tests/integration/lostnode.bats loses a node).
static_assert(dragon::status_node_lost == DRAGON_STATUS_NODE_LOST && dragon::status_node_lost > 255 &&
		      dragon::status_node_lost > 128 + 64,
	      "dragon::status_node_lost is beyond every exit code and every 128 + N");

TEST(Process, ExitStatusSignalAndMissingProgram)
{
	dragon::runtime rt;
	EXPECT_EQ(dragon::process::start({"true"}).wait(), 0);
	dragon::process three = dragon::process::start({"sh", "-c", "exit $X"}, {"/", {"X=3"}, -1, dragon::lifetime::creator, dragon::output::discard});
	EXPECT_EQ(three.wait_for(10s), 3);
	EXPECT_EQ(three.wait(), 3); // kept: a second wait does not ask again
	dragon::process sleeper = dragon::process::start({"sleep", "30"});
	EXPECT_FALSE(sleeper.wait_for(0ms).has_value());
	sleeper.signal(SIGTERM);
	EXPECT_EQ(sleeper.wait_for(10s), 128 + SIGTERM);
	// Ended: a late signal says so.
	EXPECT_DRAGON_ERROR(sleeper.signal(SIGTERM), stale);
	EXPECT_DRAGON_ERROR(dragon::process::start({"/nonexistent/program"}), not_found);
	dragon::process moved = std::move(three);
	EXPECT_FALSE(three);
	EXPECT_EQ(moved.wait(), 3);
	EXPECT_DRAGON_ERROR(three.wait(), invalid_argument);
}

TEST(Group, RanksWaitAnyWaitAllAndSignal)
{
	dragon::runtime rt;
	dragon::group g = dragon::group::start({"sh", "-c", "exit $DRAGON_GROUP_RANK"}, 3, dragon::placement::round_robin);
	EXPECT_EQ(g.size(), 3u);
	// wait_any reports each member once, then not_found.
	std::vector<int> seen;
	for (;;) {
		std::optional<dragon::group::member_exit> m;
		try {
			m = g.wait_any_for(10s);
		} catch (const dragon::error &e) {
			EXPECT_EQ(e.code(), dragon::errc::not_found) << e.what();
			break;
		}
		ASSERT_TRUE(m.has_value());
		EXPECT_NE(m->puid, 0u);
		seen.push_back(m->status);
	}
	std::sort(seen.begin(), seen.end());
	EXPECT_EQ(seen.size(), 3u);
	EXPECT_EQ(std::unique(seen.begin(), seen.end()), seen.end());
	for (int st : seen)
		EXPECT_TRUE(st >= 0 && st <= 2) << st;
	EXPECT_DRAGON_ERROR(g.wait_any(), not_found);
	dragon::group h = dragon::group::start({"sh", "-c", "exit $DRAGON_GROUP_RANK"}, 3, dragon::placement::block, {}, uname("grp"));
	EXPECT_EQ(h.wait_all_for(10s), 2);
	dragon::group s = dragon::group::start({"sleep", "30"}, 2);
	EXPECT_FALSE(s.wait_all_for(0ms).has_value());
	s.signal(SIGKILL);
	EXPECT_EQ(s.wait_all_for(10s), 128 + SIGKILL);
	dragon::group moved = std::move(s);
	EXPECT_TRUE(moved);
	EXPECT_FALSE(s);
	EXPECT_DRAGON_ERROR(s.signal(SIGKILL), invalid_argument);
}

// ---- names ----

TEST(Names, AddLookupRemoveAndWaitForAnotherProcess)
{
	dragon::runtime rt;
	std::string name = uname("name");
	EXPECT_FALSE(dragon::names::try_lookup(name).has_value());
	dragon::names::add(name, dragon::name_kind::user, "payload");
	dragon::name_entry e = dragon::names::lookup(name, 1s);
	EXPECT_EQ(e.kind, dragon::name_kind::user);
	EXPECT_EQ(std::string(reinterpret_cast<const char *>(e.desc.data()), e.desc.size()), "payload");
	EXPECT_DRAGON_ERROR(dragon::names::add(name, dragon::name_kind::user, "again"), exists);
	dragon::names::remove(name);
	EXPECT_FALSE(dragon::names::try_lookup(name).has_value());
	// A name another process registers later is waited for.
	// The name goes with the child, so it waits until told that the name was seen.
	std::string later = uname("later");
	dragon::semaphore seen = dragon::semaphore::create(later + ".seen", 0, 1);
	dragon::process p = child({"register", later});
	dragon::name_entry l = dragon::names::lookup(later, 10s);
	EXPECT_EQ(std::string(reinterpret_cast<const char *>(l.desc.data()), l.desc.size()), "from the child");
	seen.release();
	EXPECT_EQ(p.wait_for(10s), 0);
	// A queue's name gives a channel descriptor: found by kind.
	std::string qn = uname("q");
	dragon::queue q = dragon::queue::create(qn, 1, 8);
	EXPECT_EQ(dragon::names::lookup(qn, 1s).kind, dragon::name_kind::channel);
}

// ---- child roles ----

int child_main(int argc, char **argv)
{
	dragon::runtime rt;
	std::string role = argv[2];
	if (role == "echo-channel" && argc > 3) {
		dragon::channel in = dragon::channel::attach(argv[3], 10s);
		dragon::channel out = dragon::channel::attach(std::string(argv[3]) + ".reply", 10s);
		out.send(in.recv_string(10s) + "!", 10s);
		return 0;
	}
	if (role == "echo-queue" && argc > 3) {
		dragon::queue in = dragon::queue::attach(argv[3], 10s);
		dragon::queue out = dragon::queue::attach(std::string(argv[3]) + ".back", 10s);
		out.put(in.get_string(10s) + " polo", 10s);
		return 0;
	}
	if (role == "locker" && argc > 5) {
		// Inside the lock: a marker file only one process may hold, and a read-modify-write of a
		// counter that concurrent holders would lose updates of.
		dragon::lock l = dragon::lock::attach(argv[3], 10s);
		std::string dir = argv[4], marker = dir + "/holder", counter = dir + "/counter";
		for (int i = 0, n = std::atoi(argv[5]); i < n; i++) {
			std::lock_guard<dragon::lock> g(l);
			int fd = open(marker.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
			if (fd < 0) {
				std::fprintf(stderr, "locker: %s exists: another process holds the lock too\n", marker.c_str());
				return 3;
			}
			close(fd);
			int v = 0;
			{
				std::ifstream in(counter);
				in >> v;
			}
			std::this_thread::yield();
			std::ofstream(counter) << v + 1 << std::endl;
			unlink(marker.c_str());
		}
		return 0;
	}
	if (role == "release" && argc > 4) {
		dragon::semaphore s = dragon::semaphore::attach(argv[3], 10s);
		for (int i = 0, n = std::atoi(argv[4]); i < n; i++)
			s.release();
		return 0;
	}
	if (role == "barrier" && argc > 4) {
		dragon::barrier b = dragon::barrier::attach(argv[3], 10s);
		dragon::queue q = dragon::queue::attach(std::string(argv[3]) + ".q", 10s);
		for (int i = 0, n = std::atoi(argv[4]); i < n; i++) {
			q.put_value(i, 10s);
			b.arrive_and_wait(10s);
		}
		return 0;
	}
	if (role == "event" && argc > 3) {
		dragon::event e = dragon::event::attach(argv[3], 10s);
		dragon::semaphore::attach(std::string(argv[3]) + ".started", 10s).release();
		e.wait();
		dragon::queue::attach(std::string(argv[3]) + ".done", 10s).put("woke", 10s);
		return 0;
	}
	if (role == "register" && argc > 3) {
		dragon::semaphore seen = dragon::semaphore::attach(std::string(argv[3]) + ".seen", 10s);
		dragon::names::add(argv[3], dragon::name_kind::user, "from the child");
		// The name goes with this process: stay until the parent has seen it.
		return seen.try_acquire_for(10s) ? 0 : 4;
	}
	std::fprintf(stderr, "test_cpp: unknown child role %s\n", role.c_str());
	return 2;
}

} // namespace

int main(int argc, char **argv)
{
	if (argc > 2 && std::string(argv[1]) == "--child") {
		try {
			return child_main(argc, argv);
		} catch (const dragon::error &e) {
			std::fprintf(stderr, "test_cpp child: %s\n", e.what());
			return 1;
		}
	}
	::testing::InitGoogleTest(&argc, argv);
	return RUN_ALL_TESTS();
}
