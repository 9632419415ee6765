// tests/bench/bench_cpp.cpp: B1's 8 B ping-pong and B2's 64 B stream through the C++ API (dragon.hpp) and the C API, interleaved in one run.
//
// Both APIs drive the same two channels between the same two pinned processes; timed batches
// alternate C, C++ (the order swapped every batch) so that load on the machine hits both alike.
// The median batch of each is printed as result lines for tests/bench/run (impls dragon-cpp and
// dragon-c, part Bcpp).
#include <dragon/dragon.hpp>

#include "bench_util.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

constexpr int batches = 11; // odd: the median is one batch
constexpr int window = 64;  // B2: messages per acknowledged window

// Batches: 11, or 1 in a smoke run.
int bench_reps_n() { return bench_reps() == 1 ? 1 : batches; }

[[noreturn]] void die(const char *what, int rc)
{
	std::fprintf(stderr, "bench_cpp: %s: %s (%s)\n", what, dragon_strerror(rc), dragon_errmsg());
	std::exit(1);
}

struct pair {
	dragon::pool pool = dragon::pool::create(64u << 20);
	dragon::channel ab = dragon::channel::create(pool, {window, 0, dragon::wait_mode::adaptive});
	dragon::channel ba = dragon::channel::create(pool, {window, 0, dragon::wait_mode::adaptive});
};

// ---- one batch of each, C and C++ ----

void pingpong_c(pair &p, long n, bool ping, unsigned char *buf)
{
	const dragon_wait_t w = {-1, DRAGON_WAIT_ADAPTIVE, 0};
	dragon_channel_t *ab = p.ab.native_handle(), *ba = p.ba.native_handle();
	std::size_t len;
	int rc;
	for (long k = 0; k < n; k++) {
		if (ping) {
			if ((rc = dragon_channel_send(ab, buf, 8, &w)) || (rc = dragon_channel_recv(ba, buf, 8, &len, &w)))
				die("c ping", rc);
		} else {
			if ((rc = dragon_channel_recv(ab, buf, 8, &len, &w)) || (rc = dragon_channel_send(ba, buf, 8, &w)))
				die("c pong", rc);
		}
	}
}

void pingpong_cpp(pair &p, long n, bool ping, unsigned char *buf)
{
	const dragon::wait w(dragon::wait_mode::adaptive);
	for (long k = 0; k < n; k++) {
		if (ping) {
			p.ab.send(dragon::const_bytes(buf, 8), w);
			p.ba.recv(dragon::mutable_bytes(buf, 8), w);
		} else {
			p.ab.recv(dragon::mutable_bytes(buf, 8), w);
			p.ba.send(dragon::const_bytes(buf, 8), w);
		}
	}
}

void stream_c(pair &p, long windows, bool sender, unsigned char *buf)
{
	const dragon_wait_t w = {-1, DRAGON_WAIT_ADAPTIVE, 0};
	dragon_channel_t *data = p.ab.native_handle(), *ack = p.ba.native_handle();
	std::size_t len;
	int rc;
	for (long k = 0; k < windows; k++) {
		if (sender) {
			for (int m = 0; m < window; m++)
				if ((rc = dragon_channel_send(data, buf, 64, &w)))
					die("c send", rc);
			if ((rc = dragon_channel_recv(ack, buf, 64, &len, &w)))
				die("c ack", rc);
		} else {
			for (int m = 0; m < window; m++)
				if ((rc = dragon_channel_recv(data, buf, 64, &len, &w)))
					die("c recv", rc);
			if ((rc = dragon_channel_send(ack, buf, 1, &w)))
				die("c send ack", rc);
		}
	}
}

void stream_cpp(pair &p, long windows, bool sender, unsigned char *buf)
{
	const dragon::wait w(dragon::wait_mode::adaptive);
	for (long k = 0; k < windows; k++) {
		if (sender) {
			for (int m = 0; m < window; m++)
				p.ab.send(dragon::const_bytes(buf, 64), w);
			p.ba.recv(dragon::mutable_bytes(buf, 64), w);
		} else {
			for (int m = 0; m < window; m++)
				p.ab.recv(dragon::mutable_bytes(buf, 64), w);
			p.ba.send(dragon::const_bytes(buf, 1), w);
		}
	}
}

using step_fn = void (*)(pair &, long, bool, unsigned char *);

// Alternating batches of the C and C++ versions between two processes; the first process gets
// the per-batch seconds of each.
int measure(step_fn c, step_fn cpp, long per, std::vector<double> &tc, std::vector<double> &tcpp)
{
	pair p;
	unsigned char buf[64] = {0};
	std::fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork", DRAGON_ESYS);
	bool first = pid != 0;
	bench_pin(first ? 0 : 1);
	try {
		c(p, per / 4 + 1, first, buf); // warm up both
		cpp(p, per / 4 + 1, first, buf);
		for (int b = 0; b < bench_reps_n(); b++) {
			for (int k = 0; k < 2; k++) {
				bool use_c = (b + k) % 2 == 0;
				double t0 = bench_now();
				(use_c ? c : cpp)(p, per, first, buf);
				(use_c ? tc : tcpp).push_back(bench_now() - t0);
			}
		}
	} catch (const dragon::error &e) {
		std::fprintf(stderr, "bench_cpp: %s\n", e.what());
		if (!first)
			_exit(1);
		return 1;
	}
	if (!first)
		_exit(0); // no destructors: the parent owns the pool and channels
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

double median(std::vector<double> v) { return bench_median(v.data(), static_cast<int>(v.size())); }

} // namespace

int main(int argc, char **argv)
{
	long lat_n = bench_scale(argc > 1 ? std::atol(argv[1]) : 20000);  // round trips per batch
	long bw_n = bench_scale(argc > 2 ? std::atol(argv[2]) : 2000);    // windows per batch
	std::vector<double> tc, tcpp;
	int rc = 0;

	rc |= measure(pingpong_c, pingpong_cpp, lat_n, tc, tcpp);
	if (!rc) {
		bench_result("Bcpp", "pingpong", 8, "dragon-cpp", "lat_us", median(tcpp) / lat_n / 2 * 1e6);
		bench_result("Bcpp", "pingpong", 8, "dragon-c", "lat_us", median(tc) / lat_n / 2 * 1e6);
	}
	tc.clear();
	tcpp.clear();
	rc |= measure(stream_c, stream_cpp, bw_n, tc, tcpp);
	if (!rc) {
		double bytes = 64.0 * window * bw_n;
		bench_result("Bcpp", "stream", 64, "dragon-cpp", "bw_MBps", bytes / median(tcpp) / 1e6);
		bench_result("Bcpp", "stream", 64, "dragon-c", "bw_MBps", bytes / median(tc) / 1e6);
	}
	return rc;
}
