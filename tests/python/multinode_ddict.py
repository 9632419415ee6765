"""tests/python/multinode_ddict.py: run in a fabric of several nodes: one worker per node writes keys of a named dictionary, the worker of the next node reads every byte of them; C's keys and Python's are the same."""
import multiprocessing as mp
import socket
import sys

import dragon
from dragon.data import DDict

N = 2000


def value(rank, i):
    return bytes((rank * 31 + i + j) % 251 for j in range(100 + i % 400))


def writer(d, rank, out):
    for i in range(N):
        d[(rank, i)] = value(rank, i)
    d.put_raw(f"py-node{dragon.node_index()}", f"written on {socket.gethostname()}".encode())
    d.fetch_add("writers", 1)
    out.put(("wrote", rank, dragon.node_index(), socket.gethostname()))


def reader(d, rank, n, out):
    src = (rank + 1) % n
    bad = sum(d[(src, i)] != value(src, i) for i in range(N))
    c = d.get_raw("from-c")
    out.put(("read", rank, dragon.node_index(), src, bad, c))


def run_on_every_node(target, extra, n):
    out = mp.Queue()
    ps = [mp.Process(target=target, args=(*extra(r), out), policy=dragon.Policy(host=r))
          for r in range(n)]
    for p in ps:
        p.start()
    res = sorted(out.get(timeout=300) for _ in ps)
    for p in ps:
        p.join(60)
        assert p.exitcode == 0, p.exitcode
    return res


if __name__ == "__main__":
    mp.set_start_method("dragon")
    n = dragon.node_count()
    d = DDict.attach(sys.argv[1], timeout=60)
    print(f"nodes {n} managers {d.managers}", flush=True)
    wrote = run_on_every_node(writer, lambda r: (d, r), n)
    for w in wrote:
        print("wrote rank %d node %d host %s" % w[1:], flush=True)
    read = run_on_every_node(reader, lambda r: (d, r, n), n)
    for r in read:
        print("read rank %d node %d keys of rank %d bad %d from-c %r" % r[1:], flush=True)
    stats = d.stats()
    print("keys per manager", " ".join(str(k) for k, _, _ in stats), flush=True)
    ok = (sorted(w[2] for w in wrote) == list(range(n)) and all(r[4] == 0 for r in read)
          and all(r[5] == b"c-value" for r in read) and d.fetch_add("writers", 0) == n
          and len(d) == n * N + n + 2 and all(k > 0 for k, _, _ in stats))
    print("DDICT MULTINODE OK" if ok else "DDICT MULTINODE FAILED", flush=True)
    sys.exit(0 if ok else 1)
