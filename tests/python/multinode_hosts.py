"""tests/python/multinode_hosts.py: run in a fabric of several nodes: Process and Pool children report their host names; a queue on another node times out cleanly; children given file descriptors, loopback addresses or shared memory stay on this node."""
import multiprocessing as mp
import queue
import socket
import sys
import time

import dragon


def host(_):
    return socket.gethostname()


def child(q):
    q.put(socket.gethostname())


def note_host(d):
    d[socket.gethostname()] = True


def fill(v, q):
    v.value = 7
    q.put(socket.gethostname())


def where(q, *_):
    q.put(socket.gethostname())


def call_back(addr, q):
    with socket.create_connection(addr, timeout=60) as c:
        c.sendall(socket.gethostname().encode())
    q.put(socket.gethostname())


def shm_note(sm, i, q):
    sm.buf[i] = 1
    q.put(socket.gethostname())


def make_queue(box):
    q = mp.Queue()
    box.put(q)
    box.put(q.get(timeout=60))   # the parent's put reaches this node's queue


if __name__ == "__main__":
    mp.set_start_method("dragon")
    n = dragon.node_count()
    print(f"nodes {n} parent {socket.gethostname()} cpu_count {mp.cpu_count()}", flush=True)
    q = mp.Queue()
    ps = [mp.Process(target=child, args=(q,)) for _ in range(n)]
    for p in ps:
        p.start()
    procs = sorted(q.get(timeout=60) for _ in ps)
    for p in ps:
        p.join(60)
    print("process hosts", " ".join(procs), "exitcodes", [p.exitcode for p in ps], flush=True)
    # Every worker says where it runs when it starts (initializer); then a map over all of them.
    started = mp.Queue()
    with mp.Pool(2 * n, initializer=child, initargs=(started,)) as pool:
        pool_hosts = sorted(set(started.get(timeout=120) for _ in range(2 * n)))
        mapped = pool.map(host, range(8 * n), chunksize=1)
    print("pool hosts", " ".join(pool_hosts), "map", len(mapped), flush=True)
    # A queue made on another node: a get with a timeout on it returns queue.Empty, then a round trip.
    box = mp.Queue()
    p = mp.Process(target=make_queue, args=(box,), policy=dragon.Policy(host=n - 1))
    p.start()
    remote = box.get(timeout=60)
    t = time.monotonic()
    try:
        remote.get(timeout=0.5)
        print("remote get: unexpected item")
    except queue.Empty:
        print(f"remote empty get: queue.Empty after {time.monotonic() - t:.2f} s", flush=True)
    remote.put("ping")
    print("remote round trip:", box.get(timeout=60), flush=True)
    p.join(60)
    # Arguments holding file descriptors (CPython's sharedctypes heap): the child starts on this
    # node whatever the round robin says; a policy naming another node is refused.
    import multiprocessing.sharedctypes as sc
    v = sc.RawValue("i", 0)
    fd_hosts = []
    for _ in range(n):
        p2 = mp.Process(target=fill, args=(v, q))
        p2.start()
        fd_hosts.append(q.get(timeout=60))
        p2.join(60)
    fd_refused = n == 1  # one node: nowhere else to name
    if n > 1:
        try:
            mp.Process(target=fill, args=(v, q), policy=dragon.Policy(host=n - 1)).start()
        except ValueError as e:
            fd_refused = "file descriptors" in str(e)
    print("fd child hosts", " ".join(fd_hosts), "value", v.value, "refused elsewhere", fd_refused,
          flush=True)
    # Arguments naming something of this node only (a listener on 127.0.0.1, a SharedMemory):
    # the child runs here, so it reaches them; a policy naming a host still wins.
    from multiprocessing import shared_memory
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(60)
    sm = shared_memory.SharedMemory(create=True, size=n)
    bound_hosts = []
    for i in range(n):
        p3 = mp.Process(target=call_back, args=(listener.getsockname(), q))
        p3.start()
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(60)
            bound_hosts.append(conn.recv(256).decode())
        q.get(timeout=60)
        p3.join(60)
        p3 = mp.Process(target=shm_note, args=(sm, i, q))
        p3.start()
        bound_hosts.append(q.get(timeout=60))
        p3.join(60)
    shm_ok = bytes(sm.buf[:n]) == b"\x01" * n
    p3 = mp.Process(target=where, args=(q, listener.getsockname()), policy=dragon.Policy(host=n - 1))
    p3.start()
    named_host = q.get(timeout=60)
    p3.join(60)
    listener.close()
    sm.close()
    sm.unlink()
    print("bound child hosts", " ".join(sorted(set(bound_hosts))), "shm", shm_ok,
          "policy host", named_host, flush=True)
    # CPython's Manager: its server on this node, reached over TCP from every node.
    with mp.Manager() as m:
        d = m.dict()
        ps = [mp.Process(target=note_host, args=(d,)) for _ in range(n)]
        for q2 in ps:
            q2.start()
        for q2 in ps:
            q2.join(60)
        manager_hosts = sorted(d.keys())
    print("manager hosts", " ".join(manager_hosts), flush=True)
    ok = (len(set(procs)) == n and len(pool_hosts) == n and p.exitcode == 0
          and len(manager_hosts) == n and set(fd_hosts) == {socket.gethostname()}
          and v.value == 7 and fd_refused and set(bound_hosts) == {socket.gethostname()}
          and shm_ok and (n == 1 or named_host != socket.gethostname()))
    print("MULTINODE OK" if ok else "MULTINODE FAILED", flush=True)
    sys.exit(0 if ok else 1)
