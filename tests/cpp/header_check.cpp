// tests/cpp/header_check.cpp: compiles dragon.hpp with every template instantiated, so that g++ and clang++ with -Wall -Wextra -Werror see all of it.
#include <dragon/dragon.hpp>

#include <array>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

namespace {
struct point {
	int x, y;
};

// Static checks of the API's shape: move-only handles, what converts to a byte view.
static_assert(!std::is_copy_constructible_v<dragon::channel> && std::is_nothrow_move_constructible_v<dragon::channel>);
static_assert(!std::is_copy_constructible_v<dragon::queue> && std::is_nothrow_move_constructible_v<dragon::queue>);
static_assert(!std::is_copy_constructible_v<dragon::pool> && std::is_nothrow_move_constructible_v<dragon::pool>);
static_assert(!std::is_copy_constructible_v<dragon::lock> && std::is_nothrow_move_constructible_v<dragon::lock>);
static_assert(!std::is_copy_constructible_v<dragon::semaphore> && std::is_nothrow_move_constructible_v<dragon::semaphore>);
static_assert(!std::is_copy_constructible_v<dragon::barrier> && std::is_nothrow_move_constructible_v<dragon::barrier>);
static_assert(!std::is_copy_constructible_v<dragon::event> && std::is_nothrow_move_constructible_v<dragon::event>);
static_assert(!std::is_copy_constructible_v<dragon::process> && std::is_nothrow_move_constructible_v<dragon::process>);
static_assert(!std::is_copy_constructible_v<dragon::group> && std::is_nothrow_move_constructible_v<dragon::group>);
static_assert(!std::is_copy_constructible_v<dragon::allocation> && std::is_nothrow_move_constructible_v<dragon::allocation>);
static_assert(!std::is_copy_constructible_v<dragon::ddict> && std::is_nothrow_move_constructible_v<dragon::ddict>);
static_assert(!std::is_copy_constructible_v<dragon::runtime> && !std::is_move_constructible_v<dragon::runtime>);
static_assert(std::is_base_of_v<std::system_error, dragon::error>);
static_assert(std::is_convertible_v<std::string, dragon::const_bytes>);
static_assert(std::is_convertible_v<std::vector<std::byte>, dragon::const_bytes>);
static_assert(std::is_convertible_v<std::array<double, 4>, dragon::const_bytes>);
static_assert(std::is_convertible_v<std::vector<std::byte> &, dragon::mutable_bytes>);
static_assert(!std::is_convertible_v<const std::vector<std::byte> &, dragon::mutable_bytes>);
static_assert(dragon::detail::to_ms(std::chrono::microseconds(1)) == 1);
static_assert(dragon::detail::to_ms(std::chrono::seconds(-1)) == 0);
static_assert(dragon::detail::to_ms(dragon::forever) == -1);
static_assert(dragon::detail::to_us(std::chrono::hours(24 * 365 * 1000)) > 0);
static_assert(dragon::detail::to_us(dragon::forever) == -1);
} // namespace

// Never called: it only makes the compiler instantiate every member template.
void dragon_header_check(bool run);
void dragon_header_check(bool run)
{
	using namespace std::chrono_literals;
	if (!run)
		return;
	dragon::runtime rt;
	std::vector<std::byte> buf(64);
	std::array<char, 8> arr{};
	point p{1, 2};

	dragon::pool pl = dragon::pool::create(1 << 20);
	dragon::allocation a = pl.alloc(64);
	std::optional<dragon::allocation> oa = pl.try_alloc(64);
	dragon::allocation b = pl.alloc(64, 10ms);
	(void)pl.stats();
	(void)pl.desc().str();

	dragon::channel c = dragon::channel::create("c", {4, 0, dragon::wait_mode::spin});
	dragon::channel lc = dragon::channel::create(pl);
	c.send("text");
	c.send(std::string("text"), 5ms);
	c.send(buf, {1s, dragon::wait_mode::idle});
	c.send(arr, dragon::wait(dragon::wait_mode::adaptive).deposited());
	c.send_value(p);
	c.send(std::move(a));
	(void)c.try_send(dragon::as_bytes(p));
	(void)c.recv(buf);
	(void)c.recv(buf, 5ms);
	(void)c.recv();
	(void)c.recv_string(1s);
	(void)c.recv_value<point>();
	(void)c.recv_mem();
	(void)c.try_recv(buf);
	(void)c.try_recv_value<point>();
	(void)c.peek(buf);
	(void)c.poll(dragon::channel::pollin, 1ms);
	(void)c.size();
	(void)c.capacity();
	dragon::channel c2 = dragon::channel::attach(c.desc());
	dragon::channel c3 = dragon::channel::attach("c", 2s);
	c.destroy();

	dragon::queue q = dragon::queue::create("q", 4, 64);
	q.put("x");
	q.put(buf, 1s);
	q.put_value(p);
	q.put_value(p, 1s);
	(void)q.try_put(arr);
	(void)q.get(buf);
	(void)q.get(buf, 1s);
	(void)q.get();
	(void)q.get(1s);
	(void)q.get_string();
	(void)q.get_string(1s);
	(void)q.get_value<point>();
	(void)q.get_value<point>(1s);
	(void)q.try_get(buf);
	(void)q.try_get();
	dragon::queue q2 = dragon::queue::attach("q", 1s);
	q.destroy();

	dragon::lock l = dragon::lock::create("l");
	{
		std::lock_guard<dragon::lock> g(l);
	}
	{
		std::unique_lock<dragon::lock> u(l, std::defer_lock);
		(void)u.try_lock_for(10ms);
		(void)u.try_lock_until(std::chrono::steady_clock::now() + 10ms);
	}
	dragon::lock l2 = dragon::lock::attach("l", 1s);
	l.destroy();

	dragon::semaphore s = dragon::semaphore::create("s", 0, 4);
	s.release();
	s.acquire();
	(void)s.try_acquire();
	(void)s.try_acquire_for(10ms);
	dragon::semaphore s2 = dragon::semaphore::attach("s", 1s);

	dragon::barrier br = dragon::barrier::create("b", 2);
	br.arrive_and_wait(1s);
	dragon::barrier br2 = dragon::barrier::attach("b", 1s);

	dragon::event e = dragon::event::create("e");
	e.set();
	e.wait();
	(void)e.wait_for(10ms);
	(void)e.is_set();
	e.clear();
	dragon::event e2 = dragon::event::attach("e", 1s);

	dragon::process pr = dragon::process::start({"true"}, {"/", {"A=1"}, -1, dragon::lifetime::creator, dragon::output::discard});
	(void)pr.wait_for(1s);
	pr.signal(15);
	(void)pr.wait();
	dragon::group g = dragon::group::start({"true"}, 2, dragon::placement::block);
	(void)g.wait_any_for(1s);
	(void)g.wait_any();
	(void)g.wait_all_for(1s);
	(void)g.wait_all();

	dragon::ddict dd = dragon::ddict::create("d", {2, 0, 1 << 20, dragon::lifetime::outlive, 5s});
	dragon::ddict dd2 = dragon::ddict::attach("d", 1s);
	dragon::ddict dd3 = dragon::ddict::attach_desc(dd.serialize());
	dd.put_value("p", p);
	(void)dd.get_value<point>("p");
	(void)dd.get_value<double>(arr);
	(void)dd.wait_for_key("k", 10ms);
	dd.wait_for_key("k");
	dd.set_timeout(2s);
	dd.set_timeout(dragon::forever);
	{
		dragon::ddict::batch bt(dd);
		dd.put(buf, arr);
		bt.commit();
	}
	(void)dd.get("k", buf);

	dragon::names::add("n", dragon::name_kind::user, "desc");
	(void)dragon::names::lookup("n", 1s);
	(void)dragon::names::lookup("n");
	(void)dragon::names::try_lookup("n");
	dragon::names::remove("n");
	try {
		throw dragon::error(DRAGON_ETIMEDOUT, "op", "detail");
	} catch (const dragon::error &x) {
		(void)(x.code() == dragon::errc::timed_out);
		(void)(x.code() == std::errc::timed_out);
	}
}
