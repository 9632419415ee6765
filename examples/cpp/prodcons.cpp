// examples/cpp/prodcons.cpp: producers and consumers over a named queue, through the C++ API; the first process checks that every item was consumed once.
//
// `dragon prodcons [PRODUCERS [CONSUMERS [ITEMS]]]`: a group of PRODUCERS + CONSUMERS members.
// Producers put ITEMS items each into the queue "pc.items" and release the semaphore
// "pc.produced" when done; once all have, the first process puts one stop item per consumer.
// Each consumer sums what it took and puts its count and sum into "pc.results".
#include <dragon/dragon.hpp>

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>

using namespace std::chrono_literals;

namespace {

struct item {
	std::int32_t producer; // -1: stop
	std::int32_t seq;
	std::int64_t value;
};

struct result {
	std::int64_t count, sum;
};

int member(unsigned rank, unsigned producers, int items)
{
	dragon::queue q = dragon::queue::attach("pc.items", 30s);
	if (rank < producers) {
		dragon::semaphore produced = dragon::semaphore::attach("pc.produced", 30s);
		for (int i = 0; i < items; i++)
			q.put_value(item{static_cast<std::int32_t>(rank), i, static_cast<std::int64_t>(rank) * 1000000 + i}, 30s);
		produced.release();
		return 0;
	}
	dragon::queue results = dragon::queue::attach("pc.results", 30s);
	result r{0, 0};
	for (;;) {
		item it = q.get_value<item>(30s);
		if (it.producer < 0)
			break;
		r.count++;
		r.sum += it.value;
	}
	results.put_value(r, 30s);
	return 0;
}

int run(int argc, char **argv)
{
	dragon::runtime rt;
	unsigned producers = argc > 1 ? static_cast<unsigned>(std::atoi(argv[1])) : 2;
	unsigned consumers = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 2;
	int items = argc > 3 ? std::atoi(argv[3]) : 1000;
	if (std::optional<unsigned> r = dragon::runtime::rank())
		return member(*r, producers, items);
	if (producers < 1 || consumers < 1 || producers + consumers > 256 || items < 0) {
		std::cerr << "usage: prodcons [PRODUCERS [CONSUMERS [ITEMS]]]" << std::endl;
		return 2;
	}
	dragon::queue q = dragon::queue::create("pc.items", 64, sizeof(item));
	dragon::queue results = dragon::queue::create("pc.results", consumers, sizeof(result));
	dragon::semaphore produced = dragon::semaphore::create("pc.produced", 0, producers);
	char self[4096];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	std::string prog = len > 0 ? std::string(self, static_cast<size_t>(len)) : argv[0];
	dragon::group g = dragon::group::start(
		{prog, std::to_string(producers), std::to_string(consumers), std::to_string(items)},
		producers + consumers, dragon::placement::round_robin);
	for (unsigned i = 0; i < producers; i++)
		if (!produced.try_acquire_for(60s)) {
			std::cerr << "prodcons: producers did not finish within 60 s" << std::endl;
			g.signal(9);
			return 1;
		}
	for (unsigned i = 0; i < consumers; i++)
		q.put_value(item{-1, 0, 0}, 30s);
	result total{0, 0};
	for (unsigned i = 0; i < consumers; i++) {
		result r = results.get_value<result>(30s);
		total.count += r.count;
		total.sum += r.sum;
	}
	int worst = g.wait_all();
	std::int64_t want_count = static_cast<std::int64_t>(producers) * items, want_sum = 0;
	for (unsigned p = 0; p < producers; p++)
		for (int i = 0; i < items; i++)
			want_sum += static_cast<std::int64_t>(p) * 1000000 + i;
	std::cout << producers << " producers, " << consumers << " consumers: " << total.count << " items (expected "
		  << want_count << "), sum " << total.sum << " (expected " << want_sum << ")" << std::endl;
	q.destroy();
	results.destroy();
	produced.destroy();
	return worst || total.count != want_count || total.sum != want_sum;
}

} // namespace

int main(int argc, char **argv)
{
	try {
		return run(argc, argv);
	} catch (const dragon::error &e) {
		std::cerr << "prodcons: " << e.what() << std::endl;
		return 1;
	}
}
