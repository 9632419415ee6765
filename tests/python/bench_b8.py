"""tests/python/bench_b8.py: benchmark B8: multiprocessing with the dragon start method beside CPython's fork and spawn, one run; prints make bench's CSV lines."""
import concurrent.futures
import multiprocessing as mp
import os
import statistics
import sys
import time

import dragon  # noqa: F401

SMOKE = bool(os.environ.get("BENCH_SMOKE"))


def echo(inq, outq, n):
    for _ in range(n):
        outq.put(inq.get())


def echo_pipe(c, n):
    for _ in range(n):
        c.send_bytes(c.recv_bytes())


def noop(*a):
    return None


def ident(x):
    return x


def queue_pp(ctx, size, n):
    a, b = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=echo, args=(a, b, n + 10))
    p.start()
    msg = b"x" * size
    for _ in range(10):
        a.put(msg)
        b.get()
    t = time.perf_counter()
    for _ in range(n):
        a.put(msg)
        b.get()
    dt = time.perf_counter() - t
    p.join()
    return dt / n * 1e6


def pipe_pp(ctx, size, n):
    x, y = ctx.Pipe()
    p = ctx.Process(target=echo_pipe, args=(y, n + 10))
    p.start()
    msg = b"x" * size
    for _ in range(10):
        x.send_bytes(msg)
        x.recv_bytes()
    t = time.perf_counter()
    for _ in range(n):
        x.send_bytes(msg)
        x.recv_bytes()
    dt = time.perf_counter() - t
    p.join()
    return dt / n * 1e6


def start_exit(ctx, runs):
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        p = ctx.Process(target=noop)
        p.start()
        p.join()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


def pool_small(ctx, runs):
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        with ctx.Pool(4) as pool:
            pool.map(ident, range(8))
            pool.close()
            pool.join()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


def pool_rate(ctx, n):
    with ctx.Pool(4) as pool:
        pool.map(ident, range(100))
        t = time.perf_counter()
        pool.map(ident, range(n))
        return n / (time.perf_counter() - t)


def executor_rate(ctx, n):
    with concurrent.futures.ProcessPoolExecutor(4, mp_context=ctx) as ex:
        list(ex.map(ident, range(100)))
        t = time.perf_counter()
        list(ex.map(ident, range(n), chunksize=max(1, n // 64)))
        return n / (time.perf_counter() - t)


def main():
    n8, n64 = (200, 50) if SMOKE else (2000, 300)
    runs = 3 if SMOKE else 10
    ntasks = 2000 if SMOKE else 20000
    methods = ["dragon", "fork", "spawn"]
    ctxs = {m: mp.get_context(m) for m in methods}
    # The start rows take one of each method in turn (a load that changes during the run weighs
    # on all alike), after a warm-up of each.
    starts = {m: ([], []) for m in methods}
    for m in methods:
        start_exit(ctxs[m], 1)
        pool_small(ctxs[m], 1)
    for _ in range(runs):
        for m in methods:
            starts[m][0].append(start_exit(ctxs[m], 1))
    for _ in range(max(3, runs // 3)):
        for m in methods:
            starts[m][1].append(pool_small(ctxs[m], 1))
    out = []
    for m in methods:
        ctx = ctxs[m]
        impl = f"python-{m}"
        out.append(("queue-pingpong", 8, impl, "us", queue_pp(ctx, 8, n8)))
        out.append(("queue-pingpong", 65536, impl, "us", queue_pp(ctx, 65536, n64)))
        out.append(("pipe-pingpong", 8, impl, "us", pipe_pp(ctx, 8, n8)))
        out.append(("pipe-pingpong", 65536, impl, "us", pipe_pp(ctx, 65536, n64)))
        out.append(("process-start-exit", 0, impl, "ms", statistics.median(starts[m][0])))
        out.append(("pool4-create-map8-join", 0, impl, "ms", statistics.median(starts[m][1])))
        out.append(("pool4-map-rate", 0, impl, "tasks/s", pool_rate(ctx, ntasks)))
        if m != "dragon":
            out.append(("pool4-map-rate", 0, f"executor-{m}", "tasks/s", executor_rate(ctx, ntasks)))
    for case, size, impl, unit, v in out:
        print(f"result,B8,{case},{size},{impl},{unit},{v:.2f}", flush=True)
    # goals of issue 12 (ours against the peer; le: ours/peer <= ratio; ge: ours/peer >= ratio)
    for t in (("queue-pingpong", "us", "python-fork", "le", 1.0),
              ("pipe-pingpong", "us", "python-fork", "le", 1.5),
              ("process-start-exit", "ms", "python-spawn", "le", 1.0),
              ("pool4-create-map8-join", "ms", "python-spawn", "le", 1.0),
              ("pool4-map-rate", "tasks/s", "python-fork", "ge", 0.5)):
        print(f"target,B8,{t[0]},*,{t[1]},python-dragon,{t[2]},{t[3]},{t[4]}")
    # ratios for a reader of this part alone
    by = {(c, s, i): v for c, s, i, _, v in out}
    for (c, s, i), v in sorted(by.items()):
        if i == "python-dragon":
            for peer in ("python-fork", "python-spawn"):
                if (c, s, peer) in by:
                    print(f"# B8 {c} {s}: dragon {v:.2f} / {peer} {by[(c, s, peer)]:.2f} = "
                          f"{v / by[(c, s, peer)]:.2f}x", file=sys.stderr)


if __name__ == "__main__":
    main()
