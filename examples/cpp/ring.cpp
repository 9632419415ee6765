// examples/cpp/ring.cpp: the ring through the C++ API: a token passed around N processes over named queues, each adding one, for L laps.
//
// Run by `dragon ring [N [LAPS]]`, it starts N members as a group. With --slurm, as the tasks of
// a Slurm step (`srun --dragon -N3 -n3 ring --slurm [LAPS]`), the tasks are the members: task 0
// creates the queues and the others find them by name. (An option, not a guess from SLURM_*:
// processes that dragon starts inside a job inherit the fabric step's SLURM_NTASKS and PROCID.)
#include <dragon/dragon.hpp>

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

std::string queue_name(unsigned r) { return "ring." + std::to_string(r); }

// One member: take the token from our queue, add one, pass it on. Returns the exit status.
int member(unsigned r, unsigned n, int laps, std::vector<dragon::queue> owned)
{
	dragon::queue in = dragon::queue::attach(queue_name(r), 30s);
	dragon::queue out = dragon::queue::attach(queue_name((r + 1) % n), 30s);
	long token = 0;
	if (r == 0)
		out.put_value(token, 30s);
	for (int lap = 0; lap < laps; lap++) {
		token = in.get_value<long>(30s);
		if (r == 0 && lap == laps - 1)
			break;
		out.put_value(token + 1, 30s);
	}
	if (r != 0)
		return 0;
	long want = static_cast<long>(laps) * n - 1;
	std::cout << "the token went " << laps << " times around " << n << " processes on "
		  << dragon::runtime::node_count() << " node(s): " << token << " (expected " << want << ")"
		  << std::endl;
	for (dragon::queue &q : owned)
		q.destroy();
	return token == want ? 0 : 1;
}

std::vector<dragon::queue> make_queues(unsigned n)
{
	std::vector<dragon::queue> qs;
	for (unsigned i = 0; i < n; i++)
		qs.push_back(dragon::queue::create(queue_name(i), 4, sizeof(long)));
	return qs;
}

int run(int argc, char **argv)
{
	dragon::runtime rt;
	// A member of the group started below.
	if (std::optional<unsigned> r = dragon::runtime::rank())
		return member(*r, dragon::runtime::group_size(), argc > 2 ? std::atoi(argv[2]) : 10, {});
	// The tasks of a Slurm step are the members.
	if (argc > 1 && std::string(argv[1]) == "--slurm") {
		const char *ntasks = std::getenv("SLURM_NTASKS"), *procid = std::getenv("SLURM_PROCID");
		int laps = argc > 2 ? std::atoi(argv[2]) : 10;
		if (!ntasks || !procid || std::atoi(ntasks) < 2 || laps < 1) {
			std::cerr << "usage: srun -n N (N >= 2) ring --slurm [LAPS]" << std::endl;
			return 2;
		}
		unsigned n = static_cast<unsigned>(std::atoi(ntasks)), r = static_cast<unsigned>(std::atoi(procid));
		return member(r, n, laps, r == 0 ? make_queues(n) : std::vector<dragon::queue>{});
	}
	int n = argc > 1 ? std::atoi(argv[1]) : 4, laps = argc > 2 ? std::atoi(argv[2]) : 10;
	if (n < 2 || n > 256 || laps < 1) {
		std::cerr << "usage: ring [NPROCS (2-256) [LAPS]]" << std::endl;
		return 2;
	}
	std::vector<dragon::queue> qs = make_queues(static_cast<unsigned>(n));
	// The members run this same program (by its path, which the group's nodes share).
	char self[4096];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	std::string prog = len > 0 ? std::string(self, static_cast<size_t>(len)) : argv[0];
	dragon::group g = dragon::group::start({prog, "0", std::to_string(laps)}, static_cast<unsigned>(n),
					       dragon::placement::block);
	std::optional<int> worst = g.wait_all_for(60s);
	if (!worst) {
		std::cerr << "ring: the members did not end within 60 s" << std::endl;
		g.signal(9);
		return 1;
	}
	for (dragon::queue &q : qs)
		q.destroy();
	return *worst;
}

} // namespace

int main(int argc, char **argv)
{
	try {
		return run(argc, argv);
	} catch (const dragon::error &e) {
		std::cerr << "ring: " << e.what() << std::endl;
		return 1;
	}
}
