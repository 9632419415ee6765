// dragon/dragon.hpp: the C++17 API of Dragon for Slurm, header-only RAII types and exceptions over libdragon's C API.
//
// Everything lives in namespace dragon. Each class owns one C handle: the destructor detaches it
// (the object lives on for other processes), destroy() ends the object for everyone. Handles are
// move-only; a moved-from object holds nothing and its destructor does nothing. Failures throw
// dragon::error (a std::system_error in dragon::category()); try_ variants return bool or
// std::optional where a miss is normal. Timeouts are std::chrono durations; the overloads
// without one wait forever. See docs/cpp.md.
#ifndef DRAGON_DRAGON_HPP
#define DRAGON_DRAGON_HPP

// The C header declares a function dragon_pool_stats beside struct dragon_pool_stats, which
// g++ -Wshadow reports in C++ ("hides constructor"); it is the C API's naming, not a fault here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#include <dragon/dragon.h>
#pragma GCC diagnostic pop

#include <array>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace dragon {

// ---- errors ----------------------------------------------------------------------------------

// The DRAGON_E* codes, by name; the values are libdragon's.
enum class errc {
	invalid_argument = DRAGON_EINVAL,
	no_memory = DRAGON_ENOMEM,
	no_space = DRAGON_ENOSPACE,
	would_block = DRAGON_EAGAIN,
	timed_out = DRAGON_ETIMEDOUT,
	bad_descriptor = DRAGON_EBADDESC,
	stale = DRAGON_ESTALE,
	permission_denied = DRAGON_EPERM,
	too_big = DRAGON_ETOOBIG,
	not_found = DRAGON_ENOTFOUND,
	exists = DRAGON_EEXIST,
	protocol = DRAGON_EPROTO,
	peer = DRAGON_EPEER,
	closed = DRAGON_ECLOSED,
	not_supported = DRAGON_ENOTSUP,
	not_initialized = DRAGON_ENOTINIT,
	system = DRAGON_ESYS,
};

namespace detail {
class category_impl final : public std::error_category {
public:
	const char *name() const noexcept override { return "dragon"; }
	std::string message(int rc) const override { return dragon_strerror(rc); }
	// The portable std::errc each code corresponds to, so that code == std::errc::timed_out
	// also holds (codes without a counterpart stay in this category).
	std::error_condition default_error_condition(int rc) const noexcept override
	{
		switch (rc) {
		case DRAGON_EINVAL: return std::errc::invalid_argument;
		case DRAGON_ENOMEM: return std::errc::not_enough_memory;
		case DRAGON_ENOSPACE: return std::errc::no_buffer_space;
		case DRAGON_EAGAIN: return std::errc::resource_unavailable_try_again;
		case DRAGON_ETIMEDOUT: return std::errc::timed_out;
		case DRAGON_EPERM: return std::errc::permission_denied;
		case DRAGON_ETOOBIG: return std::errc::message_size;
		case DRAGON_EEXIST: return std::errc::file_exists;
		case DRAGON_EPROTO: return std::errc::protocol_error;
		case DRAGON_ENOTSUP: return std::errc::not_supported;
		default: return std::error_condition(rc, *this);
		}
	}
};
} // namespace detail

// The category of every dragon::error (one instance for the program: an inline function's static).
inline const std::error_category &category() noexcept
{
	static const detail::category_impl c;
	return c;
}

inline std::error_code make_error_code(errc e) noexcept
{
	return std::error_code(static_cast<int>(e), category());
}

} // namespace dragon

namespace std {
template <> struct is_error_code_enum<dragon::errc> : true_type {
};
} // namespace std

namespace dragon {

// A failed libdragon call: code() is in dragon::category() (compare with dragon::errc::...),
// detail() is dragon_errmsg()'s text taken on the failing thread at the time of the failure, and
// what() reads "OPERATION: DETAIL: DRAGON_E...: description".
class error : public std::system_error {
public:
	error(int rc, const char *operation, std::string detail)
	    : std::system_error(rc, category(), compose(operation, detail)), operation_(operation),
	      detail_(std::move(detail))
	{
	}
	// Text of the library's detail of this failure ("" if it gave none).
	const std::string &detail() const noexcept { return detail_; }
	// The C++ operation that failed ("dragon::queue::put").
	const std::string &operation() const noexcept { return operation_; }

private:
	static std::string compose(const char *op, const std::string &detail)
	{
		std::string s(op);
		if (!detail.empty()) {
			s += ": ";
			s += detail;
		}
		return s;
	}
	std::string operation_, detail_;
};

namespace detail {
// Out of line and cold: the hot paths (send, recv) stay a call and a test of the return code.
[[noreturn]] __attribute__((noinline, cold)) inline void throw_error(int rc, const char *op)
{
	throw error(rc, op, dragon_errmsg());
}

inline void check(int rc, const char *op)
{
	if (__builtin_expect(rc != DRAGON_OK, 0))
		throw_error(rc, op);
}
} // namespace detail

// ---- timeouts --------------------------------------------------------------------------------

// Wait without limit (what the overloads without a timeout do).
inline constexpr std::chrono::milliseconds forever = std::chrono::milliseconds::max();

namespace detail {
// A duration as the C API's milliseconds: rounded up (a 100 us timeout still waits), <= 0 is
// "do not wait", and anything at or beyond INT_MAX ms (forever included) is -1.
template <class Rep, class Period> constexpr int to_ms(std::chrono::duration<Rep, Period> d) noexcept
{
	using namespace std::chrono;
	if (d <= d.zero())
		return 0;
	if (duration_cast<duration<double, std::milli>>(d).count() >= static_cast<double>(INT_MAX))
		return -1;
	return static_cast<int>(ceil<milliseconds>(d).count());
}

// The same in the channel API's microseconds (-1 forever).
template <class Rep, class Period> constexpr long to_us(std::chrono::duration<Rep, Period> d) noexcept
{
	using namespace std::chrono;
	if (d <= d.zero())
		return 0;
	if (duration_cast<duration<double, std::micro>>(d).count() >= static_cast<double>(LONG_MAX / 2))
		return -1;
	return static_cast<long>(ceil<microseconds>(d).count());
}
} // namespace detail

// ---- byte views ------------------------------------------------------------------------------

namespace detail {
template <class C, class = void> struct is_contiguous_bytes : std::false_type {
};
// Anything with data() and size() whose elements are trivially copyable: std::vector<std::byte>,
// std::string, std::array, std::span (C++20), std::vector<double>...
template <class C>
struct is_contiguous_bytes<C, std::void_t<decltype(std::data(std::declval<C &>())),
					   decltype(std::size(std::declval<C &>()))>>
    : std::is_trivially_copyable<std::remove_pointer_t<decltype(std::data(std::declval<C &>()))>> {
};
} // namespace detail

// A read-only view of bytes to send (a span-like pointer and length; it owns nothing).
class const_bytes {
public:
	constexpr const_bytes() noexcept = default;
	const_bytes(const void *p, std::size_t n) noexcept
	    : p_(static_cast<const std::byte *>(p)), n_(n)
	{
	}
	// Text: its characters, without a terminating NUL.
	const_bytes(std::string_view s) noexcept : p_(reinterpret_cast<const std::byte *>(s.data())), n_(s.size()) {}
	const_bytes(const std::string &s) noexcept : const_bytes(std::string_view(s)) {}
	// A C string (a char array too): up to its NUL. Binary data: const_bytes(p, n) or a container.
	const_bytes(const char *s) noexcept : const_bytes(std::string_view(s)) {}
	template <class C, std::enable_if_t<detail::is_contiguous_bytes<const C>::value &&
						    !std::is_convertible_v<const C &, std::string_view>,
					    int> = 0>
	const_bytes(const C &c) noexcept
	    : p_(reinterpret_cast<const std::byte *>(std::data(c))),
	      n_(std::size(c) * sizeof(*std::data(c)))
	{
	}
	constexpr const std::byte *data() const noexcept { return p_; }
	constexpr std::size_t size() const noexcept { return n_; }

private:
	const std::byte *p_ = nullptr;
	std::size_t n_ = 0;
};

// A writable view of bytes to receive into (its size is the room).
class mutable_bytes {
public:
	constexpr mutable_bytes() noexcept = default;
	mutable_bytes(void *p, std::size_t n) noexcept : p_(static_cast<std::byte *>(p)), n_(n) {}
	template <class C, std::enable_if_t<detail::is_contiguous_bytes<C>::value &&
						    !std::is_const_v<std::remove_pointer_t<decltype(std::data(std::declval<C &>()))>>,
					    int> = 0>
	mutable_bytes(C &c) noexcept
	    : p_(reinterpret_cast<std::byte *>(std::data(c))), n_(std::size(c) * sizeof(*std::data(c)))
	{
	}
	constexpr std::byte *data() const noexcept { return p_; }
	constexpr std::size_t size() const noexcept { return n_; }

private:
	std::byte *p_ = nullptr;
	std::size_t n_ = 0;
};

// The bytes of one trivially copyable value.
template <class T> const_bytes as_bytes(const T &v) noexcept
{
	static_assert(std::is_trivially_copyable_v<T>, "only trivially copyable values travel as bytes");
	return const_bytes(&v, sizeof(T));
}

// ---- descriptors -----------------------------------------------------------------------------

// A serialized descriptor (64 bytes) of a pool or channel: what another process attaches from.
struct descriptor {
	std::array<unsigned char, DRAGON_DESC_SIZE> bytes{};

	// Printable form (128 hex digits), for an environment variable or an argument.
	std::string str() const
	{
		char out[DRAGON_DESC_STRLEN];
		detail::check(dragon_desc_format(bytes.data(), out), "dragon::descriptor::str");
		return out;
	}
	static descriptor parse(const std::string &s)
	{
		descriptor d;
		detail::check(dragon_desc_parse(s.c_str(), d.bytes.data()), "dragon::descriptor::parse");
		return d;
	}
	friend bool operator==(const descriptor &a, const descriptor &b) noexcept { return a.bytes == b.bytes; }
	friend bool operator!=(const descriptor &a, const descriptor &b) noexcept { return !(a == b); }
};

// What an object lives as long as: its creator (the default) or the fabric.
enum class lifetime { creator, outlive };

// ---- runtime ---------------------------------------------------------------------------------

// Membership of the fabric this process runs in: dragon_init() on construction, dragon_finalize()
// on destruction. Calls nest, so several runtime objects may exist. Not copyable nor movable:
// make one at the top of main (or of a thread's work) and let it go at the end.
class runtime {
public:
	runtime() { detail::check(dragon_init(), "dragon::runtime"); }
	~runtime() { dragon_finalize(); }
	runtime(const runtime &) = delete;
	runtime &operator=(const runtime &) = delete;

	static std::uint64_t puid() noexcept { return dragon_puid(); }
	static unsigned node_index() noexcept { return dragon_node_index(); }
	static unsigned node_count() noexcept { return dragon_node_count(); }
	static std::string fabric_id() { return dragon_fabric_id(); }
	// This process's rank in the group that started it, and the group's size (nullopt / 0 outside one).
	static std::optional<unsigned> rank() noexcept
	{
		int r = dragon_group_rank();
		return r < 0 ? std::nullopt : std::optional<unsigned>(static_cast<unsigned>(r));
	}
	static unsigned group_size() noexcept { return static_cast<unsigned>(dragon_group_size()); }
};

// ---- pools and allocations -------------------------------------------------------------------

class pool;

// An allocation in a pool, freed on destruction unless given away (channel::send(allocation&&)).
class allocation {
public:
	allocation() noexcept = default;
	explicit allocation(const dragon_mem_t &m) noexcept : m_(m), owned_(true) {}
	allocation(allocation &&o) noexcept : m_(o.m_), owned_(std::exchange(o.owned_, false)) {}
	allocation &operator=(allocation &&o) noexcept
	{
		if (this != &o) {
			reset();
			m_ = o.m_;
			owned_ = std::exchange(o.owned_, false);
		}
		return *this;
	}
	allocation(const allocation &) = delete;
	allocation &operator=(const allocation &) = delete;
	~allocation() { reset(); }

	std::byte *data() const noexcept { return owned_ ? static_cast<std::byte *>(m_.ptr) : nullptr; }
	std::size_t size() const noexcept { return owned_ ? m_.size : 0; }
	explicit operator bool() const noexcept { return owned_; }
	// Free now (the destructor's work).
	void reset() noexcept
	{
		if (owned_) {
			owned_ = false;
			dragon_pool_free(&m_);
		}
	}
	// Give up ownership without freeing: the caller now owns the C allocation.
	dragon_mem_t release() noexcept
	{
		owned_ = false;
		return m_;
	}
	const dragon_mem_t &c_mem() const noexcept { return m_; }

private:
	dragon_mem_t m_{};
	bool owned_ = false;
};

// A shared-memory pool: create() makes one, attach() joins another process's by descriptor.
class pool {
public:
	pool() noexcept = default;
	explicit pool(dragon_pool_t *p) noexcept : p_(p) {}
	pool(pool &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
	pool &operator=(pool &&o) noexcept
	{
		if (this != &o) {
			reset();
			p_ = std::exchange(o.p_, nullptr);
		}
		return *this;
	}
	pool(const pool &) = delete;
	pool &operator=(const pool &) = delete;
	~pool() { reset(); }

	// A new pool of `size` usable bytes (0: 64 MiB), optionally backed by huge pages.
	static pool create(std::size_t size = 0, bool hugepages = false)
	{
		dragon_pool_attr_t a{size, hugepages ? 1 : 0};
		dragon_pool_t *p = nullptr;
		detail::check(dragon_pool_create(&a, &p), "dragon::pool::create");
		return pool(p);
	}
	static pool attach(const descriptor &d)
	{
		dragon_pool_desc_t cd;
		std::memcpy(cd.bytes, d.bytes.data(), sizeof(cd.bytes));
		dragon_pool_t *p = nullptr;
		detail::check(dragon_pool_attach(&cd, &p), "dragon::pool::attach");
		return pool(p);
	}

	descriptor desc() const
	{
		dragon_pool_desc_t cd;
		detail::check(dragon_pool_serialize(p_, &cd), "dragon::pool::desc");
		descriptor d;
		std::memcpy(d.bytes.data(), cd.bytes, sizeof(cd.bytes));
		return d;
	}
	std::uint64_t id() const noexcept { return dragon_pool_id(p_); }
	dragon_pool_stats_t stats() const
	{
		dragon_pool_stats_t s{};
		detail::check(dragon_pool_stats(p_, &s), "dragon::pool::stats");
		return s;
	}
	// size bytes aligned to align (0: 64); throws errc::no_space when full.
	allocation alloc(std::size_t size, std::size_t align = 0)
	{
		dragon_mem_t m{};
		detail::check(dragon_pool_alloc(p_, size, align, &m), "dragon::pool::alloc");
		return allocation(m);
	}
	// Waits up to timeout for space to be freed (errc::timed_out after it).
	template <class Rep, class Period> allocation alloc(std::size_t size, std::chrono::duration<Rep, Period> timeout, std::size_t align = 0)
	{
		dragon_mem_t m{};
		detail::check(dragon_pool_alloc_wait(p_, size, align, detail::to_us(timeout), &m), "dragon::pool::alloc");
		return allocation(m);
	}
	std::optional<allocation> try_alloc(std::size_t size, std::size_t align = 0)
	{
		dragon_mem_t m{};
		int rc = dragon_pool_alloc(p_, size, align, &m);
		if (rc == DRAGON_ENOSPACE)
			return std::nullopt;
		detail::check(rc, "dragon::pool::try_alloc");
		return allocation(m);
	}
	// Mark the pool destroyed for every process (later attaches fail) and drop this handle.
	void destroy()
	{
		detail::check(dragon_pool_destroy(valid("dragon::pool::destroy")), "dragon::pool::destroy");
		p_ = nullptr;
	}
	// The C handle, for calls this API does not wrap; it stays owned by this object.
	dragon_pool_t *native_handle() const noexcept { return p_; }
	explicit operator bool() const noexcept { return p_ != nullptr; }

private:
	void reset() noexcept
	{
		if (p_)
			dragon_pool_detach(std::exchange(p_, nullptr));
	}
	dragon_pool_t *valid(const char *op) const
	{
		if (!p_)
			throw error(DRAGON_EINVAL, op, "the handle is empty (moved from or destroyed)");
		return p_;
	}
	dragon_pool_t *p_ = nullptr;
};

// ---- channels --------------------------------------------------------------------------------

// How a blocked channel operation waits (see dragon/channel.h).
enum class wait_mode {
	channel_default = DRAGON_WAIT_DEFAULT,
	adaptive = DRAGON_WAIT_ADAPTIVE,
	spin = DRAGON_WAIT_SPIN,
	idle = DRAGON_WAIT_IDLE,
};

// How long and how a channel operation may wait: converts from a duration, so ch.send(b, 5ms)
// works; {} is forever in the channel's mode.
class wait {
public:
	constexpr wait() noexcept : w_{-1, DRAGON_WAIT_DEFAULT, 0} {}
	template <class Rep, class Period>
	constexpr wait(std::chrono::duration<Rep, Period> timeout, wait_mode m = wait_mode::channel_default) noexcept
	    : w_{detail::to_us(timeout), static_cast<dragon_wait_mode_t>(m), 0}
	{
	}
	constexpr wait(wait_mode m) noexcept : w_{-1, static_cast<dragon_wait_mode_t>(m), 0} {}
	// To a channel of another node: return only once the message is in it (DRAGON_WAIT_DEPOSITED).
	constexpr wait &deposited() noexcept
	{
		w_.flags |= DRAGON_WAIT_DEPOSITED;
		return *this;
	}
	// A send returns only once a receiver has taken the message; not taken in time, it is
	// withdrawn (DRAGON_WAIT_TAKEN; on another node: deposited).
	constexpr wait &taken() noexcept
	{
		w_.flags |= DRAGON_WAIT_TAKEN;
		return *this;
	}
	constexpr const dragon_wait_t *c_wait() const noexcept { return &w_; }

private:
	dragon_wait_t w_;
};

// Attributes of a new channel.
struct channel_attr {
	std::uint32_t capacity = 0;   // messages it holds; 0 = 64
	std::uint32_t block_size = 0; // bytes a message carries inline; 0 = 256
	wait_mode mode = wait_mode::channel_default;

	dragon_channel_attr_t c_attr() const noexcept
	{
		return dragon_channel_attr_t{capacity, block_size, static_cast<dragon_wait_mode_t>(mode)};
	}
};

// An MPMC message channel. create() makes one kept by the node's local services (found by name
// from any node); create(pool&) makes one in a pool of this process. The destructor detaches;
// destroy() closes it for every process (their operations then fail with errc::closed).
class channel {
public:
	channel() noexcept = default;
	channel(channel &&o) noexcept : ch_(std::exchange(o.ch_, nullptr)), fabric_(o.fabric_) {}
	channel &operator=(channel &&o) noexcept
	{
		if (this != &o) {
			reset();
			ch_ = std::exchange(o.ch_, nullptr);
			fabric_ = o.fabric_;
		}
		return *this;
	}
	channel(const channel &) = delete;
	channel &operator=(const channel &) = delete;
	~channel() { reset(); }

	// A channel of the node's local services (needs a runtime), registered under name unless it
	// is empty; throws errc::exists if the name is taken.
	static channel create(const std::string &name = {}, const channel_attr &attr = {},
			      lifetime life = lifetime::creator)
	{
		dragon_channel_attr_t a = attr.c_attr();
		dragon_channel_t *c = nullptr;
		detail::check(dragon_fchannel_create(name.empty() ? nullptr : name.c_str(), &a,
						     life == lifetime::outlive ? DRAGON_FCHANNEL_OUTLIVE : 0, &c),
			      "dragon::channel::create");
		return channel(c, true);
	}
	// A channel in a pool of this process (no runtime needed; hand its desc() to others).
	static channel create(pool &p, const channel_attr &attr = {})
	{
		dragon_channel_attr_t a = attr.c_attr();
		dragon_channel_t *c = nullptr;
		detail::check(dragon_channel_create(p.native_handle(), &a, &c), "dragon::channel::create");
		return channel(c, false);
	}
	// The channel registered under name, on any node, waiting for it to appear.
	static channel attach(const std::string &name) { return attach(name, forever); }
	template <class Rep, class Period>
	static channel attach(const std::string &name, std::chrono::duration<Rep, Period> timeout)
	{
		dragon_channel_t *c = nullptr;
		detail::check(dragon_fchannel_attach(name.c_str(), detail::to_ms(timeout), &c), "dragon::channel::attach");
		return channel(c, true);
	}
	// By descriptor. fabric: the channel is one of local services (decides what destroy() asks).
	static channel attach(const descriptor &d, bool fabric = true)
	{
		dragon_channel_desc_t cd;
		std::memcpy(cd.bytes, d.bytes.data(), sizeof(cd.bytes));
		dragon_channel_t *c = nullptr;
		detail::check(dragon_channel_attach(&cd, &c), "dragon::channel::attach");
		return channel(c, fabric);
	}

	// Copy the bytes in; waits while the channel is full (errc::timed_out after w's timeout).
	void send(const_bytes b, const wait &w = {})
	{
		detail::check(dragon_channel_send(ch_, b.data(), b.size(), w.c_wait()), "dragon::channel::send");
	}
	// Zero-copy: the allocation (of this channel's pool) passes to the receiver.
	void send(allocation &&a, const wait &w = {})
	{
		dragon_mem_t m = a.c_mem();
		detail::check(dragon_channel_send_mem(ch_, &m, w.c_wait()), "dragon::channel::send");
		a.release();
	}
	template <class T> void send_value(const T &v, const wait &w = {}) { send(as_bytes(v), w); }
	// false when the channel is full.
	bool try_send(const_bytes b)
	{
		int rc = dragon_channel_try_send(ch_, b.data(), b.size());
		if (rc == DRAGON_EAGAIN || rc == DRAGON_ENOSPACE)
			return false;
		detail::check(rc, "dragon::channel::try_send");
		return true;
	}

	// The oldest message into buf; returns its length. errc::too_big if it does not fit (it
	// stays in the channel).
	std::size_t recv(mutable_bytes buf, const wait &w = {})
	{
		std::size_t len = 0;
		detail::check(dragon_channel_recv(ch_, buf.data(), buf.size(), &len, w.c_wait()), "dragon::channel::recv");
		return len;
	}
	// The oldest message, whatever its size.
	std::vector<std::byte> recv(const wait &w = {})
	{
		std::vector<std::byte> v(256);
		for (;;) {
			std::size_t len = 0;
			int rc = dragon_channel_recv(ch_, v.data(), v.size(), &len, w.c_wait());
			if (rc == DRAGON_ETOOBIG && len > v.size()) { // it stayed: take it with room enough
				v.resize(len);
				continue;
			}
			detail::check(rc, "dragon::channel::recv");
			v.resize(len);
			return v;
		}
	}
	std::string recv_string(const wait &w = {})
	{
		std::vector<std::byte> v = recv(w);
		return std::string(reinterpret_cast<const char *>(v.data()), v.size());
	}
	// A message that must be exactly one T.
	template <class T> T recv_value(const wait &w = {})
	{
		static_assert(std::is_trivially_copyable_v<T> && std::is_default_constructible_v<T>,
			      "recv_value needs a trivially copyable, default constructible T");
		T v{};
		std::size_t len = recv(mutable_bytes(&v, sizeof(T)), w);
		if (len != sizeof(T))
			throw error(DRAGON_EINVAL, "dragon::channel::recv_value",
				    "the message is " + std::to_string(len) + " bytes, the type " + std::to_string(sizeof(T)));
		return v;
	}
	// A message as a pool allocation the caller owns (zero-copy for large messages).
	allocation recv_mem(const wait &w = {})
	{
		dragon_mem_t m{};
		detail::check(dragon_channel_recv_mem(ch_, &m, w.c_wait()), "dragon::channel::recv_mem");
		return allocation(m);
	}
	// nullopt when the channel is empty.
	std::optional<std::size_t> try_recv(mutable_bytes buf)
	{
		std::size_t len = 0;
		int rc = dragon_channel_try_recv(ch_, buf.data(), buf.size(), &len);
		if (rc == DRAGON_EAGAIN)
			return std::nullopt;
		detail::check(rc, "dragon::channel::try_recv");
		return len;
	}
	template <class T> std::optional<T> try_recv_value()
	{
		static_assert(std::is_trivially_copyable_v<T> && std::is_default_constructible_v<T>,
			      "try_recv_value needs a trivially copyable, default constructible T");
		T v{};
		std::optional<std::size_t> len = try_recv(mutable_bytes(&v, sizeof(T)));
		if (!len)
			return std::nullopt;
		if (*len != sizeof(T))
			throw error(DRAGON_EINVAL, "dragon::channel::try_recv_value",
				    "the message is " + std::to_string(*len) + " bytes, the type " + std::to_string(sizeof(T)));
		return v;
	}
	// The oldest message's copy without taking it; nullopt if none.
	std::optional<std::size_t> peek(mutable_bytes buf)
	{
		std::size_t len = 0;
		int rc = dragon_channel_peek(ch_, buf.data(), buf.size(), &len);
		if (rc == DRAGON_EAGAIN)
			return std::nullopt;
		detail::check(rc, "dragon::channel::peek");
		return len;
	}

	static constexpr unsigned pollin = DRAGON_POLLIN;
	static constexpr unsigned pollout = DRAGON_POLLOUT;
	// Wait until one of events (pollin | pollout) holds; returns what holds, 0 on timeout.
	unsigned poll(unsigned events, const wait &w = {})
	{
		unsigned rev = 0;
		int rc = dragon_channel_poll(ch_, events, &rev, w.c_wait());
		if (rc == DRAGON_ETIMEDOUT || rc == DRAGON_EAGAIN)
			return 0;
		detail::check(rc, "dragon::channel::poll");
		return rev;
	}
	// Messages in the channel now.
	std::uint32_t size() const
	{
		std::uint32_t n = 0, cap = 0;
		detail::check(dragon_channel_count(ch_, &n, &cap), "dragon::channel::size");
		return n;
	}
	std::uint32_t capacity() const
	{
		std::uint32_t n = 0, cap = 0;
		detail::check(dragon_channel_count(ch_, &n, &cap), "dragon::channel::capacity");
		return cap;
	}
	descriptor desc() const
	{
		dragon_channel_desc_t cd;
		detail::check(dragon_channel_serialize(ch_, &cd), "dragon::channel::desc");
		descriptor d;
		std::memcpy(d.bytes.data(), cd.bytes, sizeof(cd.bytes));
		return d;
	}
	// Close the channel for every process and drop this handle.
	void destroy()
	{
		if (!ch_)
			throw error(DRAGON_EINVAL, "dragon::channel::destroy", "the handle is empty (moved from or destroyed)");
		detail::check(fabric_ ? dragon_fchannel_destroy(ch_) : dragon_channel_destroy(ch_),
			      "dragon::channel::destroy");
		ch_ = nullptr;
	}
	// Drop this handle (the destructor's work); the channel lives on.
	void detach() noexcept { reset(); }
	dragon_channel_t *native_handle() const noexcept { return ch_; }
	explicit operator bool() const noexcept { return ch_ != nullptr; }

private:
	channel(dragon_channel_t *c, bool fabric) noexcept : ch_(c), fabric_(fabric) {}
	void reset() noexcept
	{
		if (ch_)
			dragon_channel_detach(std::exchange(ch_, nullptr));
	}
	dragon_channel_t *ch_ = nullptr;
	bool fabric_ = false;
};

// ---- queues ----------------------------------------------------------------------------------

// A bounded FIFO of messages shared by the fabric's processes, found by name.
class queue {
public:
	queue() noexcept = default;
	queue(queue &&o) noexcept : q_(std::exchange(o.q_, nullptr)) {}
	queue &operator=(queue &&o) noexcept
	{
		if (this != &o) {
			reset();
			q_ = std::exchange(o.q_, nullptr);
		}
		return *this;
	}
	queue(const queue &) = delete;
	queue &operator=(const queue &) = delete;
	~queue() { reset(); }

	// capacity messages (1..65536) of at most msg_max bytes (1..65536); name may be empty.
	static queue create(const std::string &name, unsigned capacity, std::size_t msg_max,
			    lifetime life = lifetime::creator)
	{
		dragon_queue_t *q = nullptr;
		detail::check(dragon_queue_create(name.empty() ? nullptr : name.c_str(), capacity, msg_max,
						  life == lifetime::outlive ? DRAGON_QUEUE_OUTLIVE : 0, &q),
			      "dragon::queue::create");
		return queue(q);
	}
	static queue attach(const std::string &name) { return attach(name, forever); }
	template <class Rep, class Period>
	static queue attach(const std::string &name, std::chrono::duration<Rep, Period> timeout)
	{
		dragon_queue_t *q = nullptr;
		detail::check(dragon_queue_attach(name.c_str(), detail::to_ms(timeout), &q), "dragon::queue::attach");
		return queue(q);
	}

	void put(const_bytes b) { put(b, forever); }
	template <class Rep, class Period> void put(const_bytes b, std::chrono::duration<Rep, Period> timeout)
	{
		detail::check(dragon_queue_put(q_, b.data(), b.size(), detail::to_ms(timeout)), "dragon::queue::put");
	}
	template <class T> void put_value(const T &v) { put(as_bytes(v)); }
	template <class T, class Rep, class Period> void put_value(const T &v, std::chrono::duration<Rep, Period> timeout)
	{
		put(as_bytes(v), timeout);
	}
	// false when the queue is full.
	bool try_put(const_bytes b)
	{
		int rc = dragon_queue_put(q_, b.data(), b.size(), 0);
		if (rc == DRAGON_EAGAIN)
			return false;
		detail::check(rc, "dragon::queue::try_put");
		return true;
	}

	// The oldest message into buf; its length. errc::too_big if it does not fit (it stays).
	std::size_t get(mutable_bytes buf) { return get(buf, forever); }
	template <class Rep, class Period> std::size_t get(mutable_bytes buf, std::chrono::duration<Rep, Period> timeout)
	{
		std::size_t len = buf.size();
		detail::check(dragon_queue_get(q_, buf.data(), &len, detail::to_ms(timeout)), "dragon::queue::get");
		return len;
	}
	// The oldest message (a buffer of msg_max() bytes, cut to the message).
	std::vector<std::byte> get() { return get(forever); }
	template <class Rep, class Period> std::vector<std::byte> get(std::chrono::duration<Rep, Period> timeout)
	{
		std::vector<std::byte> v(msg_max());
		v.resize(get(mutable_bytes(v), timeout));
		return v;
	}
	std::string get_string() { return get_string(forever); }
	template <class Rep, class Period> std::string get_string(std::chrono::duration<Rep, Period> timeout)
	{
		std::vector<std::byte> v = get(timeout);
		return std::string(reinterpret_cast<const char *>(v.data()), v.size());
	}
	template <class T> T get_value() { return get_value<T>(forever); }
	template <class T, class Rep, class Period> T get_value(std::chrono::duration<Rep, Period> timeout)
	{
		static_assert(std::is_trivially_copyable_v<T> && std::is_default_constructible_v<T>,
			      "get_value needs a trivially copyable, default constructible T");
		T v{};
		std::size_t len = get(mutable_bytes(&v, sizeof(T)), timeout);
		if (len != sizeof(T))
			throw error(DRAGON_EINVAL, "dragon::queue::get_value",
				    "the message is " + std::to_string(len) + " bytes, the type " + std::to_string(sizeof(T)));
		return v;
	}
	// nullopt when the queue is empty.
	std::optional<std::size_t> try_get(mutable_bytes buf)
	{
		std::size_t len = buf.size();
		int rc = dragon_queue_get(q_, buf.data(), &len, 0);
		if (rc == DRAGON_EAGAIN)
			return std::nullopt;
		detail::check(rc, "dragon::queue::try_get");
		return len;
	}
	std::optional<std::vector<std::byte>> try_get()
	{
		std::vector<std::byte> v(msg_max());
		std::optional<std::size_t> len = try_get(mutable_bytes(v));
		if (!len)
			return std::nullopt;
		v.resize(*len);
		return v;
	}

	std::size_t msg_max() const noexcept { return dragon_queue_msg_max(q_); }
	// Destroy the queue for every process (waiters get errc::stale) and drop this handle.
	void destroy()
	{
		if (!q_)
			throw error(DRAGON_EINVAL, "dragon::queue::destroy", "the handle is empty (moved from or destroyed)");
		detail::check(dragon_queue_destroy(q_), "dragon::queue::destroy");
		q_ = nullptr;
	}
	void detach() noexcept { reset(); }
	dragon_queue_t *native_handle() const noexcept { return q_; }
	explicit operator bool() const noexcept { return q_ != nullptr; }

private:
	explicit queue(dragon_queue_t *q) noexcept : q_(q) {}
	void reset() noexcept
	{
		if (q_)
			dragon_queue_detach(std::exchange(q_, nullptr));
	}
	dragon_queue_t *q_ = nullptr;
};

// ---- synchronisation -------------------------------------------------------------------------

namespace detail {
// One owning handle type for the C sync objects: T is the C type, Detach its detach function.
template <class T, int (*Detach)(T *)> class handle {
public:
	handle() noexcept = default;
	explicit handle(T *h) noexcept : h_(h) {}
	handle(handle &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
	handle &operator=(handle &&o) noexcept
	{
		if (this != &o) {
			reset();
			h_ = std::exchange(o.h_, nullptr);
		}
		return *this;
	}
	handle(const handle &) = delete;
	handle &operator=(const handle &) = delete;
	~handle() { reset(); }
	void reset() noexcept
	{
		if (h_)
			Detach(std::exchange(h_, nullptr));
	}
	T *get() const noexcept { return h_; }
	T *take() noexcept { return std::exchange(h_, nullptr); }
	T *valid(const char *op) const
	{
		if (!h_)
			throw error(DRAGON_EINVAL, op, "the handle is empty (moved from or destroyed)");
		return h_;
	}

private:
	T *h_ = nullptr;
};

inline int flags_of(lifetime l) noexcept { return l == lifetime::outlive ? DRAGON_SYNC_OUTLIVE : 0; }
inline const char *name_or_null(const std::string &n) noexcept { return n.empty() ? nullptr : n.c_str(); }
} // namespace detail

// A lock shared by the fabric's processes. Lockable and TimedLockable, so std::lock_guard,
// std::unique_lock and std::scoped_lock work with it; not recursive, not owned by a thread (any
// holder of the handle may unlock). Also named dragon::lock.
class mutex {
public:
	mutex() noexcept = default;
	static mutex create(const std::string &name = {}, lifetime life = lifetime::creator)
	{
		dragon_lock_t *l = nullptr;
		detail::check(dragon_lock_create(detail::name_or_null(name), detail::flags_of(life), &l), "dragon::lock::create");
		return mutex(l);
	}
	static mutex attach(const std::string &name) { return attach(name, forever); }
	template <class Rep, class Period> static mutex attach(const std::string &name, std::chrono::duration<Rep, Period> timeout)
	{
		dragon_lock_t *l = nullptr;
		detail::check(dragon_lock_attach(name.c_str(), detail::to_ms(timeout), &l), "dragon::lock::attach");
		return mutex(l);
	}
	void lock() { detail::check(dragon_lock_acquire(h_.get(), -1), "dragon::lock::lock"); }
	bool try_lock() { return acquired(dragon_lock_acquire(h_.get(), 0), "dragon::lock::try_lock"); }
	template <class Rep, class Period> bool try_lock_for(std::chrono::duration<Rep, Period> timeout)
	{
		return acquired(dragon_lock_acquire(h_.get(), detail::to_ms(timeout)), "dragon::lock::try_lock_for");
	}
	template <class Clock, class Duration> bool try_lock_until(std::chrono::time_point<Clock, Duration> t)
	{
		return try_lock_for(t - Clock::now());
	}
	void unlock() { detail::check(dragon_lock_release(h_.get()), "dragon::lock::unlock"); }
	void destroy()
	{
		detail::check(dragon_lock_destroy(h_.valid("dragon::lock::destroy")), "dragon::lock::destroy");
		h_.take();
	}
	void detach() noexcept { h_.reset(); }
	explicit operator bool() const noexcept { return h_.get() != nullptr; }
	dragon_lock_t *native_handle() const noexcept { return h_.get(); }

private:
	explicit mutex(dragon_lock_t *l) noexcept : h_(l) {}
	static bool acquired(int rc, const char *op)
	{
		if (rc == DRAGON_EAGAIN || rc == DRAGON_ETIMEDOUT)
			return false;
		detail::check(rc, op);
		return true;
	}
	detail::handle<dragon_lock_t, dragon_lock_detach> h_;
};
// The class cannot be called lock (its lock() would be taken for a constructor); this name can.
using lock = mutex;

// A counting semaphore shared by the fabric's processes (like std::counting_semaphore).
class semaphore {
public:
	semaphore() noexcept = default;
	// initial permits, at most max (1..65536).
	static semaphore create(const std::string &name, unsigned initial, unsigned max, lifetime life = lifetime::creator)
	{
		dragon_sem_t *s = nullptr;
		detail::check(dragon_sem_create(detail::name_or_null(name), initial, max, detail::flags_of(life), &s),
			      "dragon::semaphore::create");
		return semaphore(s);
	}
	static semaphore attach(const std::string &name) { return attach(name, forever); }
	template <class Rep, class Period> static semaphore attach(const std::string &name, std::chrono::duration<Rep, Period> timeout)
	{
		dragon_sem_t *s = nullptr;
		detail::check(dragon_sem_attach(name.c_str(), detail::to_ms(timeout), &s), "dragon::semaphore::attach");
		return semaphore(s);
	}
	void acquire() { detail::check(dragon_sem_acquire(h_.get(), -1), "dragon::semaphore::acquire"); }
	bool try_acquire() { return acquired(dragon_sem_acquire(h_.get(), 0), "dragon::semaphore::try_acquire"); }
	template <class Rep, class Period> bool try_acquire_for(std::chrono::duration<Rep, Period> timeout)
	{
		return acquired(dragon_sem_acquire(h_.get(), detail::to_ms(timeout)), "dragon::semaphore::try_acquire_for");
	}
	// Throws errc::no_space beyond max.
	void release() { detail::check(dragon_sem_release(h_.get()), "dragon::semaphore::release"); }
	void destroy()
	{
		detail::check(dragon_sem_destroy(h_.valid("dragon::semaphore::destroy")), "dragon::semaphore::destroy");
		h_.take();
	}
	void detach() noexcept { h_.reset(); }
	explicit operator bool() const noexcept { return h_.get() != nullptr; }
	dragon_sem_t *native_handle() const noexcept { return h_.get(); }

private:
	explicit semaphore(dragon_sem_t *s) noexcept : h_(s) {}
	static bool acquired(int rc, const char *op)
	{
		if (rc == DRAGON_EAGAIN || rc == DRAGON_ETIMEDOUT)
			return false;
		detail::check(rc, op);
		return true;
	}
	detail::handle<dragon_sem_t, dragon_sem_detach> h_;
};

// A reusable barrier for n processes (2..65535). A wait that times out leaves it unusable.
class barrier {
public:
	barrier() noexcept = default;
	static barrier create(const std::string &name, unsigned n, lifetime life = lifetime::creator)
	{
		dragon_barrier_t *b = nullptr;
		detail::check(dragon_barrier_create(detail::name_or_null(name), n, detail::flags_of(life), &b),
			      "dragon::barrier::create");
		return barrier(b);
	}
	static barrier attach(const std::string &name) { return attach(name, forever); }
	template <class Rep, class Period> static barrier attach(const std::string &name, std::chrono::duration<Rep, Period> timeout)
	{
		dragon_barrier_t *b = nullptr;
		detail::check(dragon_barrier_attach(name.c_str(), detail::to_ms(timeout), &b), "dragon::barrier::attach");
		return barrier(b);
	}
	void arrive_and_wait() { detail::check(dragon_barrier_wait(h_.get(), -1), "dragon::barrier::arrive_and_wait"); }
	// Throws errc::timed_out when the others did not come in time.
	template <class Rep, class Period> void arrive_and_wait(std::chrono::duration<Rep, Period> timeout)
	{
		detail::check(dragon_barrier_wait(h_.get(), detail::to_ms(timeout)), "dragon::barrier::arrive_and_wait");
	}
	void destroy()
	{
		detail::check(dragon_barrier_destroy(h_.valid("dragon::barrier::destroy")), "dragon::barrier::destroy");
		h_.take();
	}
	void detach() noexcept { h_.reset(); }
	explicit operator bool() const noexcept { return h_.get() != nullptr; }
	dragon_barrier_t *native_handle() const noexcept { return h_.get(); }

private:
	explicit barrier(dragon_barrier_t *b) noexcept : h_(b) {}
	detail::handle<dragon_barrier_t, dragon_barrier_detach> h_;
};

// An event: waiters return once it is set, until it is cleared.
class event {
public:
	event() noexcept = default;
	static event create(const std::string &name = {}, lifetime life = lifetime::creator)
	{
		dragon_event_t *e = nullptr;
		detail::check(dragon_event_create(detail::name_or_null(name), detail::flags_of(life), &e), "dragon::event::create");
		return event(e);
	}
	static event attach(const std::string &name) { return attach(name, forever); }
	template <class Rep, class Period> static event attach(const std::string &name, std::chrono::duration<Rep, Period> timeout)
	{
		dragon_event_t *e = nullptr;
		detail::check(dragon_event_attach(name.c_str(), detail::to_ms(timeout), &e), "dragon::event::attach");
		return event(e);
	}
	void set() { detail::check(dragon_event_set(h_.get()), "dragon::event::set"); }
	void clear() { detail::check(dragon_event_clear(h_.get()), "dragon::event::clear"); }
	void wait() { detail::check(dragon_event_wait(h_.get(), -1), "dragon::event::wait"); }
	// false if it was not set within timeout.
	template <class Rep, class Period> bool wait_for(std::chrono::duration<Rep, Period> timeout)
	{
		int rc = dragon_event_wait(h_.get(), detail::to_ms(timeout));
		if (rc == DRAGON_ETIMEDOUT || rc == DRAGON_EAGAIN)
			return false;
		detail::check(rc, "dragon::event::wait_for");
		return true;
	}
	bool is_set() { return wait_for(std::chrono::milliseconds(0)); }
	void destroy()
	{
		detail::check(dragon_event_destroy(h_.valid("dragon::event::destroy")), "dragon::event::destroy");
		h_.take();
	}
	void detach() noexcept { h_.reset(); }
	explicit operator bool() const noexcept { return h_.get() != nullptr; }
	dragon_event_t *native_handle() const noexcept { return h_.get(); }

private:
	explicit event(dragon_event_t *e) noexcept : h_(e) {}
	detail::handle<dragon_event_t, dragon_event_detach> h_;
};

// ---- processes and groups --------------------------------------------------------------------

// Where a started process's output goes.
enum class output { inherit = DRAGON_OUTPUT_INHERIT, discard = DRAGON_OUTPUT_DISCARD };

// Options of a new process or group.
struct process_options {
	std::string cwd;              // empty: that of local services
	std::vector<std::string> env; // NAME=VALUE entries added
	int cpu = -1;                 // -1: no binding; n: the n-th cpu of the node's allowed set
	lifetime life = lifetime::creator;
	enum output out = output::inherit;
};

namespace detail {
// The C views of argv and options; lives as long as the call that uses it.
struct c_process_args {
	std::vector<const char *> argv, env;
	dragon_process_opts_t opts = DRAGON_PROCESS_OPTS_INIT;

	c_process_args(const std::vector<std::string> &args, const process_options &o)
	{
		for (const std::string &a : args)
			argv.push_back(a.c_str());
		argv.push_back(nullptr);
		for (const std::string &e : o.env)
			env.push_back(e.c_str());
		env.push_back(nullptr);
		opts.cwd = o.cwd.empty() ? nullptr : o.cwd.c_str();
		opts.env = o.env.empty() ? nullptr : env.data();
		opts.cpu = o.cpu;
		opts.outlive = o.life == lifetime::outlive;
		opts.output = static_cast<int>(o.out);
	}
};
} // namespace detail

// The status of a process whose node left the fabric (its local services died, or the node was
// silent past the node timeout; its real end is unknown): beyond every exit code (0..255) and every
// 128 + N, so it cannot be mistaken for one. process::wait and group waits return it.
inline constexpr int status_node_lost = DRAGON_STATUS_NODE_LOST;

// A process of the fabric that this one started. Move-only: one owner waits for it, and
// the object keeps its exit status. Destruction does nothing to the process (unless started with
// lifetime::outlive, the fabric sends it SIGTERM when its creator ends).
class process {
public:
	process() noexcept = default;
	process(process &&o) noexcept : puid_(std::exchange(o.puid_, 0)), status_(std::exchange(o.status_, std::nullopt)) {}
	process &operator=(process &&o) noexcept
	{
		if (this != &o) {
			puid_ = std::exchange(o.puid_, 0);
			status_ = std::exchange(o.status_, std::nullopt);
		}
		return *this;
	}
	process(const process &) = delete;
	process &operator=(const process &) = delete;
	~process() = default;

	// Start args[0] (searched in PATH) on this node; errc::not_found if there is no such program.
	static process start(const std::vector<std::string> &args, const process_options &o = {})
	{
		detail::c_process_args c(args, o);
		dragon_puid_t p = 0;
		detail::check(dragon_process_create(c.argv.data(), &c.opts, &p), "dragon::process::start");
		return process(p);
	}
	// Its exit status (128 + N if signal N killed it, status_node_lost if its node left the fabric).
	int wait() { return *wait_for(forever); }
	// nullopt if it still runs after timeout.
	template <class Rep, class Period> std::optional<int> wait_for(std::chrono::duration<Rep, Period> timeout)
	{
		if (status_)
			return status_;
		int st = 0, rc = dragon_process_wait(valid(), detail::to_ms(timeout), &st);
		if (rc == DRAGON_ETIMEDOUT)
			return std::nullopt;
		detail::check(rc, "dragon::process::wait");
		status_ = st;
		return st;
	}
	// errc::stale if it has ended.
	void signal(int signo) { detail::check(dragon_process_signal(valid(), signo), "dragon::process::signal"); }
	std::uint64_t puid() const noexcept { return puid_; }
	explicit operator bool() const noexcept { return puid_ != 0; }

private:
	explicit process(dragon_puid_t p) noexcept : puid_(p) {}
	dragon_puid_t valid() const
	{
		if (!puid_)
			throw error(DRAGON_EINVAL, "dragon::process", "the object is empty (moved from)");
		return puid_;
	}
	dragon_puid_t puid_ = 0;
	std::optional<int> status_;
};

// Where a group's members go.
enum class placement {
	round_robin = DRAGON_POLICY_ROUND_ROBIN,
	block = DRAGON_POLICY_BLOCK,
	node = DRAGON_POLICY_NODE,
};

// N processes started together: all or none. Move-only, like process.
class group {
public:
	struct member_exit {
		std::uint64_t puid;
		int status;
	};
	group() noexcept = default;
	group(group &&o) noexcept : gid_(std::exchange(o.gid_, 0)), n_(std::exchange(o.n_, 0)) {}
	group &operator=(group &&o) noexcept
	{
		if (this != &o) {
			gid_ = std::exchange(o.gid_, 0);
			n_ = std::exchange(o.n_, 0);
		}
		return *this;
	}
	group(const group &) = delete;
	group &operator=(const group &) = delete;

	// n copies of args; node is used with placement::node; name (may be empty) registers the group.
	static group start(const std::vector<std::string> &args, unsigned n, placement where = placement::round_robin,
			   const process_options &o = {}, const std::string &name = {}, unsigned node = 0)
	{
		detail::c_process_args c(args, o);
		dragon_gid_t g = 0;
		detail::check(dragon_group_create(c.argv.data(), n, static_cast<enum dragon_policy>(where), node, &c.opts,
						  detail::name_or_null(name), &g),
			      "dragon::group::start");
		return group(g, n);
	}
	// Wait until every member ended; the largest member status (status_node_lost if a member's
	// node left the fabric).
	int wait_all() { return *wait_all_for(forever); }
	template <class Rep, class Period> std::optional<int> wait_all_for(std::chrono::duration<Rep, Period> timeout)
	{
		int worst = 0, rc = dragon_group_wait_all(valid(), detail::to_ms(timeout), &worst);
		if (rc == DRAGON_ETIMEDOUT)
			return std::nullopt;
		detail::check(rc, "dragon::group::wait_all");
		return worst;
	}
	// A member that ended and no earlier wait_any returned; nullopt on timeout; errc::not_found
	// once every member's end was returned.
	member_exit wait_any() { return *wait_any_for(forever); }
	template <class Rep, class Period> std::optional<member_exit> wait_any_for(std::chrono::duration<Rep, Period> timeout)
	{
		dragon_puid_t p = 0;
		int st = 0, rc = dragon_group_wait_any(valid(), detail::to_ms(timeout), &p, &st);
		if (rc == DRAGON_ETIMEDOUT)
			return std::nullopt;
		detail::check(rc, "dragon::group::wait_any");
		return member_exit{p, st};
	}
	void signal(int signo) { detail::check(dragon_group_signal(valid(), signo), "dragon::group::signal"); }
	std::uint64_t gid() const noexcept { return gid_; }
	unsigned size() const noexcept { return n_; }
	explicit operator bool() const noexcept { return gid_ != 0; }

private:
	group(dragon_gid_t g, unsigned n) noexcept : gid_(g), n_(n) {}
	dragon_gid_t valid() const
	{
		if (!gid_)
			throw error(DRAGON_EINVAL, "dragon::group", "the object is empty (moved from)");
		return gid_;
	}
	dragon_gid_t gid_ = 0;
	unsigned n_ = 0;
};

// ---- distributed dictionary ------------------------------------------------------------------

// How a dictionary is made (dragon/ddict.h): managers on each of the first `nodes` nodes (0:
// every node), each holding at most `budget` bytes (0: 64 MiB); `timeout` bounds each operation
// of this process's handles (0: 30 s).
struct ddict_attr {
	unsigned managers_per_node = 1;
	unsigned nodes = 0;
	std::size_t budget = 0;
	lifetime life = lifetime::creator;
	std::chrono::milliseconds timeout{0};
};

// One manager's use: keys, bytes of its budget used, the budget.
struct ddict_stats {
	std::uint64_t keys = 0, used = 0, budget = 0;
};

// A distributed dictionary: byte-string keys and values spread over manager processes on the
// fabric's nodes (docs/ddict.md). Keys are the bytes given (a std::string's characters), so C,
// C++ and Python (its str and bytes keys) see the same keys. The destructor detaches; destroy()
// stops the managers. A handle is used by one thread at a time. A put past a manager's budget
// throws errc::no_space naming the manager, a dead manager errc::peer; a missing key is nullopt
// or false, not an exception.
class ddict {
public:
	ddict() noexcept = default;

	static ddict create(const std::string &name = {}, const ddict_attr &a = {})
	{
		dragon_ddict_attr_t c{a.managers_per_node, a.nodes, a.budget,
				      a.life == lifetime::outlive ? DRAGON_DDICT_OUTLIVE : 0,
				      a.timeout.count() > 0 ? detail::to_ms(a.timeout) : 0};
		dragon_ddict_t *d = nullptr;
		detail::check(dragon_ddict_create(detail::name_or_null(name), &c, &d), "dragon::ddict::create");
		return ddict(d);
	}
	// By name, waiting for it up to timeout (errc::timed_out after it).
	static ddict attach(const std::string &name) { return attach(name, forever); }
	template <class Rep, class Period> static ddict attach(const std::string &name, std::chrono::duration<Rep, Period> timeout)
	{
		dragon_ddict_t *d = nullptr;
		detail::check(dragon_ddict_attach(name.c_str(), detail::to_ms(timeout), &d), "dragon::ddict::attach");
		return ddict(d);
	}
	// By a descriptor from serialize() (another process's; no name lookup).
	static ddict attach_desc(const_bytes desc)
	{
		dragon_ddict_t *d = nullptr;
		detail::check(dragon_ddict_attach_desc(desc.data(), desc.size(), &d), "dragon::ddict::attach_desc");
		return ddict(d);
	}
	std::vector<std::byte> serialize() const
	{
		void *p = nullptr;
		std::size_t n = 0;
		detail::check(dragon_ddict_serialize(h_.valid("dragon::ddict::serialize"), &p, &n), "dragon::ddict::serialize");
		std::vector<std::byte> v(static_cast<std::byte *>(p), static_cast<std::byte *>(p) + n);
		std::free(p);
		return v;
	}

	void put(const_bytes key, const_bytes value)
	{
		detail::check(dragon_ddict_put(h_.get(), key.data(), key.size(), value.data(), value.size()), "dragon::ddict::put");
	}
	template <class T> void put_value(const_bytes key, const T &v) { put(key, as_bytes(v)); }
	// The value, nullopt if the key is absent.
	std::optional<std::vector<std::byte>> get(const_bytes key) { return take(key, false, "dragon::ddict::get"); }
	// The value as text (a std::string holds any bytes).
	std::optional<std::string> get_string(const_bytes key)
	{
		auto v = get(key);
		if (!v)
			return std::nullopt;
		return std::string(reinterpret_cast<const char *>(v->data()), v->size());
	}
	template <class T> std::optional<T> get_value(const_bytes key)
	{
		static_assert(std::is_trivially_copyable_v<T>, "only trivially copyable values travel as bytes");
		T v;
		auto n = get(key, mutable_bytes(&v, sizeof(T)));
		if (!n)
			return std::nullopt;
		if (*n != sizeof(T))
			throw error(DRAGON_EINVAL, "dragon::ddict::get_value", "the value is " + std::to_string(*n) + " bytes, not " + std::to_string(sizeof(T)));
		return v;
	}
	// Into buf: its size, nullopt if absent; errc::too_big if it does not fit (nothing copied).
	std::optional<std::size_t> get(const_bytes key, mutable_bytes buf)
	{
		std::size_t n = 0;
		int rc = dragon_ddict_get(h_.get(), key.data(), key.size(), buf.data(), buf.size(), &n);
		if (rc == DRAGON_ENOTFOUND)
			return std::nullopt;
		detail::check(rc, "dragon::ddict::get");
		return n;
	}
	// get, then remove the key (one request).
	std::optional<std::vector<std::byte>> pop(const_bytes key) { return take(key, true, "dragon::ddict::pop"); }
	// false if the key was absent.
	bool erase(const_bytes key)
	{
		int rc = dragon_ddict_del(h_.get(), key.data(), key.size());
		if (rc == DRAGON_ENOTFOUND)
			return false;
		detail::check(rc, "dragon::ddict::erase");
		return true;
	}
	bool contains(const_bytes key)
	{
		int present = 0;
		detail::check(dragon_ddict_contains(h_.get(), key.data(), key.size(), &present), "dragon::ddict::contains");
		return present != 0;
	}
	// Keys of the whole dictionary (or of the pinned manager).
	std::uint64_t size()
	{
		std::uint64_t n = 0;
		detail::check(dragon_ddict_len(h_.get(), &n), "dragon::ddict::size");
		return n;
	}
	void clear() { detail::check(dragon_ddict_clear(h_.get()), "dragon::ddict::clear"); }
	// Every key (of manager m; -1: of all), each as a std::string of its bytes.
	std::vector<std::string> keys(int m = -1)
	{
		dragon_ddict_iter_t *it = nullptr;
		detail::check(dragon_ddict_iter_start(h_.get(), m, &it), "dragon::ddict::keys");
		std::vector<std::string> out;
		std::string k(256, '\0');
		for (;;) {
			std::size_t n = 0;
			int rc = dragon_ddict_iter_next(it, k.data(), k.size(), &n);
			if (rc == DRAGON_ETOOBIG) {
				k.resize(n);
				continue;
			}
			if (rc == DRAGON_ENOTFOUND)
				break;
			if (rc != DRAGON_OK) {
				std::string msg = dragon_errmsg();
				dragon_ddict_iter_end(it);
				throw error(rc, "dragon::ddict::keys", msg);
			}
			out.emplace_back(k.data(), n);
		}
		dragon_ddict_iter_end(it);
		return out;
	}
	// Atomically add delta to the 8-byte little-endian counter at key (absent: 0); the value before.
	std::int64_t fetch_add(const_bytes key, std::int64_t delta = 1)
	{
		std::int64_t old = 0;
		detail::check(dragon_ddict_fetch_add(h_.get(), key.data(), key.size(), delta, &old), "dragon::ddict::fetch_add");
		return old;
	}
	// Wait until the key exists: false after timeout.
	void wait_for_key(const_bytes key) { wait_for_key(key, forever); }
	template <class Rep, class Period> bool wait_for_key(const_bytes key, std::chrono::duration<Rep, Period> timeout)
	{
		int rc = dragon_ddict_wait_for_key(h_.get(), key.data(), key.size(), detail::to_ms(timeout));
		if (rc == DRAGON_ETIMEDOUT)
			return false;
		detail::check(rc, "dragon::ddict::wait_for_key");
		return true;
	}
	// Read-only (writes throw errc::permission_denied); gets on a manager's node read its shard in place.
	void freeze() { detail::check(dragon_ddict_freeze(h_.get()), "dragon::ddict::freeze"); }
	void unfreeze() { detail::check(dragon_ddict_unfreeze(h_.get()), "dragon::ddict::unfreeze"); }
	void persist(const std::string &dir) { detail::check(dragon_ddict_persist(h_.get(), dir.c_str()), "dragon::ddict::persist"); }
	void restore(const std::string &dir) { detail::check(dragon_ddict_restore(h_.get(), dir.c_str()), "dragon::ddict::restore"); }

	// Puts between begin and commit are queued per manager and sent in large messages; commit()
	// waits for their acknowledgements and throws the first failure. A batch dropped without
	// commit() still sends its puts (a destructor cannot report their failure).
	class batch {
	public:
		explicit batch(ddict &d) : d_(&d) { detail::check(dragon_ddict_batch_begin(d.h_.get()), "dragon::ddict::batch"); }
		batch(const batch &) = delete;
		batch &operator=(const batch &) = delete;
		~batch()
		{
			if (d_)
				dragon_ddict_batch_end(d_->h_.get());
		}
		void commit() { detail::check(dragon_ddict_batch_end(std::exchange(d_, nullptr)->h_.get()), "dragon::ddict::batch::commit"); }

	private:
		ddict *d_;
	};

	unsigned managers() const { return dragon_ddict_managers(h_.valid("dragon::ddict::managers")); }
	unsigned manager_of(const_bytes key) const
	{
		return dragon_ddict_manager_of(h_.valid("dragon::ddict::manager_of"), key.data(), key.size());
	}
	ddict_stats stats(unsigned m)
	{
		ddict_stats s;
		detail::check(dragon_ddict_manager_stats(h_.get(), m, &s.keys, &s.used, &s.budget), "dragon::ddict::stats");
		return s;
	}
	// Every operation to manager m (-1: back to hashing).
	void pin(int m) { detail::check(dragon_ddict_pin(h_.get(), m), "dragon::ddict::pin"); }
	template <class Rep, class Period> void set_timeout(std::chrono::duration<Rep, Period> t)
	{
		detail::check(dragon_ddict_set_timeout(h_.get(), t == forever ? -1 : detail::to_ms(t)), "dragon::ddict::set_timeout");
	}
	// Stop every manager (the keys are gone for everyone unless persisted) and drop this handle.
	void destroy()
	{
		detail::check(dragon_ddict_destroy(h_.valid("dragon::ddict::destroy")), "dragon::ddict::destroy");
		h_.take();
	}
	void detach() noexcept { h_.reset(); }
	explicit operator bool() const noexcept { return h_.get() != nullptr; }
	dragon_ddict_t *native_handle() const noexcept { return h_.get(); }

private:
	explicit ddict(dragon_ddict_t *d) noexcept : h_(d) {}
	std::optional<std::vector<std::byte>> take(const_bytes key, bool pop, const char *op)
	{
		dragon_mem_t m{};
		std::size_t n = 0;
		int rc = pop ? dragon_ddict_pop_mem(h_.get(), key.data(), key.size(), &m, &n)
			     : dragon_ddict_get_mem(h_.get(), key.data(), key.size(), &m, &n);
		if (rc == DRAGON_ENOTFOUND)
			return std::nullopt;
		detail::check(rc, op);
		allocation a(m); // freed however the copy ends
		const std::byte *p = static_cast<const std::byte *>(m.ptr);
		return std::vector<std::byte>(p, p + n);
	}
	detail::handle<dragon_ddict_t, dragon_ddict_detach> h_;
};

// ---- names -----------------------------------------------------------------------------------

enum class name_kind {
	process = DRAGON_NAME_PROCESS,
	group = DRAGON_NAME_GROUP,
	pool = DRAGON_NAME_POOL,
	channel = DRAGON_NAME_CHANNEL,
	user = DRAGON_NAME_USER,
};

// What a name stands for: its kind and the descriptor registered with it.
struct name_entry {
	name_kind kind;
	std::vector<std::byte> desc;
};

namespace detail {
// One lookup into e: the C call's return code (the callers decide what throws).
inline int name_lookup(const std::string &name, int ms, name_entry &e)
{
	enum dragon_name_kind k = DRAGON_NAME_USER;
	std::size_t len = 4096; // the registry's limit on a descriptor
	e.desc.resize(len);
	int rc = dragon_name_lookup(name.c_str(), ms, &k, e.desc.data(), &len);
	if (rc == DRAGON_OK) {
		e.desc.resize(len);
		e.kind = static_cast<name_kind>(k);
	}
	return rc;
}
} // namespace detail

// The fabric's registry, where unrelated processes find objects by name.
namespace names {
// Register desc (at most 4096 bytes) under name (1..255 bytes); errc::exists if taken.
inline void add(const std::string &name, name_kind kind, const_bytes desc, lifetime life = lifetime::creator)
{
	detail::check(dragon_name_register(name.c_str(), static_cast<enum dragon_name_kind>(kind), desc.data(),
					   desc.size(), life == lifetime::outlive ? DRAGON_NAME_OUTLIVE : 0),
		      "dragon::names::add");
}
// Waits up to timeout for the name to appear (errc::timed_out / errc::not_found after it).
template <class Rep, class Period> name_entry lookup(const std::string &name, std::chrono::duration<Rep, Period> timeout)
{
	name_entry e{name_kind::user, {}};
	detail::check(detail::name_lookup(name, detail::to_ms(timeout), e), "dragon::names::lookup");
	return e;
}
inline name_entry lookup(const std::string &name) { return lookup(name, forever); }
// nullopt if the name is not registered now.
inline std::optional<name_entry> try_lookup(const std::string &name)
{
	name_entry e{name_kind::user, {}};
	int rc = detail::name_lookup(name, 0, e);
	if (rc == DRAGON_ENOTFOUND || rc == DRAGON_ETIMEDOUT || rc == DRAGON_EAGAIN)
		return std::nullopt;
	detail::check(rc, "dragon::names::try_lookup");
	return e;
}
inline void remove(const std::string &name) { detail::check(dragon_name_remove(name.c_str()), "dragon::names::remove"); }
} // namespace names

} // namespace dragon

#endif
