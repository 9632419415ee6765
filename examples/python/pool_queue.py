"""examples/python/pool_queue.py: standard multiprocessing (a Pool and a Queue) spread over every node of a Dragon fabric: run `dragon examples/python/pool_queue.py`."""
import multiprocessing as mp
import socket
import time

import dragon  # noqa: F401  (makes "dragon" a start method)


def where(x):
    time.sleep(0.05)  # a little work, so that every worker gets some
    return x * x, socket.gethostname()


def ready(barrier):
    barrier.wait()  # each worker waits for the others: all are up when the map starts


def producer(q, n):
    for i in range(n):
        q.put((i, socket.gethostname()))
    q.put(None)


if __name__ == "__main__":
    mp.set_start_method("dragon")
    print(f"{dragon.node_count()} node(s), {mp.cpu_count()} CPUs granted")
    n = mp.cpu_count()
    with mp.Pool(n, initializer=ready, initargs=(mp.Barrier(n),)) as pool:  # over all nodes
        results = pool.map(where, range(32), chunksize=1)
    print("sum of squares:", sum(r for r, _ in results))
    print("pool workers ran on:", ", ".join(sorted({h for _, h in results})))
    q = mp.Queue()
    p = mp.Process(target=producer, args=(q, 5))  # round robin: maybe another node
    p.start()
    hosts = set()
    while (item := q.get()) is not None:
        hosts.add(item[1])
    p.join()
    print("producer ran on:", ", ".join(sorted(hosts)), "exit code", p.exitcode)
