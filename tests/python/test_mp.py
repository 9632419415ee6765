"""tests/python/test_mp.py: multiprocessing with the "dragon" start method: processes, queues, pipes, sync objects, shared values, Pool, Manager, bad input."""
import concurrent.futures
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import signal
import socket
import sys
import threading
import time

import pytest

import dragon
from conftest import wait_until


# Targets at module level are pickled by reference; lambdas and local functions by value.
def put_pid(q):
    q.put((os.getpid(), socket.gethostname()))


def add_n(lock, v, n):
    for _ in range(n):
        with lock:
            v.value += 1


def square(x):
    return x * x


def double_value(v):
    v.value *= 2


def exit_with_imports():
    # 1: dragon.mp was loaded, 2: cloudpickle was; a child that only runs a module's function
    # needs neither.
    sys.exit(("dragon.mp" in sys.modules) + 2 * ("cloudpickle" in sys.modules))


def sleep_forever(q=None):
    if q is not None:
        q.put("ready")
    time.sleep(3600)


# ---- processes ----------------------------------------------------------------------------

def test_process_lifecycle(ctx):
    q = ctx.Queue()
    p = ctx.Process(target=put_pid, args=(q,), name="worker-1")
    assert p.exitcode is None and not p.is_alive()
    p.start()
    pid, host = q.get(timeout=30)
    p.join(30)
    assert p.exitcode == 0 and not p.is_alive()
    assert p.pid == pid and p.name == "worker-1"
    p.close()
    with pytest.raises(ValueError):
        p.is_alive()


def test_exit_codes_and_signals(ctx):
    p = ctx.Process(target=sys.exit, args=(5,))
    p.start()
    p.join(30)
    assert p.exitcode == 5
    q = ctx.Queue()
    p = ctx.Process(target=sleep_forever, args=(q,))
    p.start()
    assert q.get(timeout=30) == "ready"
    p.join(0.05)
    assert p.is_alive() and p.exitcode is None
    p.terminate()
    p.join(30)
    assert p.exitcode == -signal.SIGTERM
    p = ctx.Process(target=sleep_forever)
    p.start()
    p.kill()
    p.join(30)
    assert p.exitcode == -signal.SIGKILL


def test_lambda_and_local_function_targets(ctx):
    q = ctx.Queue()
    base = 40

    def local(x):
        q.put(x + base)

    ps = [ctx.Process(target=lambda: q.put("lambda")), ctx.Process(target=local, args=(2,))]
    for p in ps:
        p.start()
    got = {q.get(timeout=30), q.get(timeout=30)}
    for p in ps:
        p.join(30)
    assert got == {"lambda", 42}


def test_child_by_reference_imports_little(ctx):
    """A target found by reference (as spawn pickles it) reaches a child that loads neither
    dragon.mp nor cloudpickle: a dragon child imports what a spawn child does, plus the fabric."""
    p = ctx.Process(target=exit_with_imports)
    p.start()
    p.join(30)
    assert p.exitcode == 0


def test_reducers_registered_after_a_start_apply(ctx):
    """multiprocessing's reducers registered after a first start (a ctypes type sharedctypes
    registers when it is first used) pickle the next Process: the child doubles the shared
    value, not a copy."""
    import multiprocessing.sharedctypes as sc
    p = ctx.Process(target=square, args=(1,))
    p.start()
    p.join(30)
    v = sc.RawValue("h", 21)
    p = ctx.Process(target=double_value, args=(v,))
    p.start()
    p.join(30)
    assert p.exitcode == 0 and v.value == 42


def test_sentinel_and_connection_wait(ctx):
    procs = [ctx.Process(target=time.sleep, args=(t,)) for t in (0, 3600)]
    for p in procs:
        p.start()
    ready = multiprocessing.connection.wait([p.sentinel for p in procs], timeout=30)
    assert ready == [procs[0].sentinel]
    procs[1].kill()
    assert multiprocessing.connection.wait([procs[1].sentinel], timeout=30)
    for p in procs:
        p.join(30)


def _put_and_end(q, i):
    q.put(i)


def test_connection_wait_sees_a_message_sent_before_its_senders_end(ctx):
    """A child that sends and then ends: whenever wait() reports its sentinel, it reports the
    message too (ProcessPoolExecutor takes a sentinel without a result for a broken pool)."""
    q = ctx.SimpleQueue()
    for i in range(12):
        # on this node: across nodes the message and the end travel different paths
        p = ctx.Process(target=_put_and_end, args=(q, i),
                        policy=dragon.Policy(host=dragon.node_index()))
        p.start()
        got = False
        while True:
            ready = multiprocessing.connection.wait([q._reader, p.sentinel], timeout=30)
            assert ready, "neither the message nor the end came within 30 s"
            if q._reader in ready:
                assert q.get() == i
                got = True
            if p.sentinel in ready:
                assert got, f"round {i}: the sentinel came without the message sent before it"
                break
        p.join(30)


def test_unpicklable_target_fails_in_parent(ctx):
    lock = threading.Lock()
    before = len(multiprocessing.active_children())
    p = ctx.Process(target=lock.acquire)
    with pytest.raises(pickle.PicklingError) as ei:
        p.start()
    assert "cannot send process" in str(ei.value)
    p = ctx.Process(target=print, args=(threading.Lock(),))
    with pytest.raises(pickle.PicklingError):
        p.start()
    assert len(multiprocessing.active_children()) == before


def test_children_parent_current(ctx):
    q = ctx.Queue()

    def child():
        pp = multiprocessing.parent_process()
        q.put((pp.pid, pp.is_alive(), multiprocessing.current_process().name))

    p = ctx.Process(target=child, name="kid")
    p.start()
    assert p in multiprocessing.active_children()
    ppid, alive, name = q.get(timeout=30)
    p.join(30)
    assert ppid == os.getpid() and alive and name == "kid"
    assert p not in multiprocessing.active_children()


def test_cpu_count_counts_the_fabric():
    n = multiprocessing.get_context("dragon").cpu_count()
    assert n >= len(os.sched_getaffinity(0)) * dragon.node_count() or "SLURM_JOB_CPUS_PER_NODE" in os.environ
    assert n >= 1


def test_policy_places_processes(ctx):
    q = ctx.Queue()
    with dragon.Policy(distribution="local"):
        p = ctx.Process(target=put_pid, args=(q,))
        p.start()
    q.get(timeout=30)
    p.join(30)
    assert p.node == dragon.node_index()
    p = ctx.Process(target=put_pid, args=(q,), policy=dragon.Policy(host=0))
    p.start()
    q.get(timeout=30)
    p.join(30)
    assert p.node == 0
    with pytest.raises(ValueError):
        ctx.Process(target=put_pid, args=(q,), policy=dragon.Policy(host=999)).start()
    with pytest.raises(ValueError):
        dragon.Policy(distribution="everywhere")


# ---- queues -------------------------------------------------------------------------------

def test_queue_fifo_and_timeouts(ctx):
    q = ctx.Queue()
    assert q.empty() and q.qsize() == 0
    for i in range(10):
        q.put(i)
    assert [q.get(timeout=5) for _ in range(10)] == list(range(10))
    t = time.monotonic()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.2)
    assert 0.15 < time.monotonic() - t < 5
    with pytest.raises(queue.Empty):
        q.get_nowait()


class NotPicklable:
    def __reduce__(self):
        raise AttributeError("NotPicklable refuses")


def test_unpicklable_put_is_reported_and_the_queue_goes_on(ctx, capsys):
    """CPython's semantics: the put does not raise; the error is reported (the queue's
    _on_queue_feeder_error, stderr by default) and the object dropped."""
    for q in (ctx.Queue(), ctx.Queue(maxsize=1), ctx.JoinableQueue()):
        q.put(NotPicklable())
        q.put(True)
        assert q.qsize() == 1
        assert q.get(timeout=10) is True
        assert q.empty()
    err = capsys.readouterr().err
    assert "NotPicklable refuses" in err and err.count("Traceback (most recent call last)") >= 3
    seen = []

    class Hooked(type(ctx.Queue())):
        @staticmethod
        def _on_queue_feeder_error(e, obj):
            seen.append((type(e), type(obj)))

    q = Hooked()
    q.put(NotPicklable())
    assert seen == [(AttributeError, NotPicklable)] and q.empty()


def test_unbounded_put_never_blocks(ctx):
    q = ctx.Queue()
    n = 5000                      # beyond the channel's capacity: the rest waits in our buffer
    t = time.monotonic()
    for i in range(n):
        q.put(i)
    assert time.monotonic() - t < 30
    out = ctx.Queue()

    def drain(q, out, n):
        out.put(sum(q.get(timeout=30) for _ in range(n)))

    p = ctx.Process(target=drain, args=(q, out, n))
    p.start()
    assert out.get(timeout=60) == n * (n - 1) // 2
    p.join(30)


def test_bounded_queue_full(ctx):
    q = ctx.Queue(2)
    q.put(1)
    q.put(2)
    assert q.full()
    with pytest.raises(queue.Full):
        q.put(3, timeout=0.1)
    with pytest.raises(queue.Full):
        q.put_nowait(3)
    assert q.get() == 1 and not q.full()


def test_joinable_queue(ctx):
    q = ctx.JoinableQueue()

    def worker(q):
        while True:
            item = q.get()
            q.task_done()
            if item is None:
                break

    p = ctx.Process(target=worker, args=(q,))
    p.start()
    for i in range(20):
        q.put(i)
    q.put(None)
    q.join()
    p.join(30)
    assert p.exitcode == 0
    with pytest.raises(ValueError):
        q.task_done()


def test_simple_queue(ctx):
    q = ctx.SimpleQueue()
    assert q.empty()
    p = ctx.Process(target=lambda: q.put([1, "two", 3.0]))
    p.start()
    assert q.get() == [1, "two", 3.0]
    p.join(30)
    q.close()


def test_large_payload_out_of_band(ctx):
    q, back = ctx.Queue(), ctx.Queue()
    big = os.urandom(8 << 20)
    p = ctx.Process(target=lambda: back.put(q.get()[::-1]))
    p.start()
    q.put(big)
    assert back.get(timeout=60) == big[::-1]
    p.join(30)


def test_numpy_array_through_queue(ctx):
    np = pytest.importorskip("numpy")
    q = ctx.Queue()
    a = np.arange(1 << 20, dtype=np.float64)
    q.put(a)
    b = q.get(timeout=30)
    assert (a == b).all() and b.flags.writeable


def test_killed_child_leaves_queue_usable(ctx):
    q = ctx.Queue()
    p = ctx.Process(target=sleep_forever, args=(q,))
    p.start()
    assert q.get(timeout=30) == "ready"
    os.kill(p.pid, signal.SIGKILL) if p.node == dragon.node_index() else p.kill()
    p.join(30)
    assert p.exitcode == -9
    q.put("still")
    assert q.get(timeout=5) == "still"
    p2 = ctx.Process(target=put_pid, args=(q,))
    p2.start()
    assert q.get(timeout=30)[0] == p2.pid
    p2.join(30)


def test_queue_whose_creator_exited(ctx):
    box = ctx.Queue()

    def make(box):
        box.put(multiprocessing.get_context("dragon").Queue())

    p = ctx.Process(target=make, args=(box,))
    p.start()
    orphan = box.get(timeout=30)
    p.join(30)
    with pytest.raises(ConnectionError):   # not a hang: the creator's queue went with it
        orphan.get(timeout=10)


# ---- pipes --------------------------------------------------------------------------------

def test_pipe_duplex_and_eof(ctx):
    a, b = ctx.Pipe()

    def echo(c):
        while True:
            try:
                m = c.recv()
            except EOFError:
                break
            c.send(m * 2)

    p = ctx.Process(target=echo, args=(b,))
    p.start()
    b.close()
    a.send(21)
    assert a.recv() == 42
    a.send_bytes(b"-" + pickle.dumps("ab") + b"-", 1, len(pickle.dumps("ab")))
    assert a.recv() == "abab"        # bytes sent with send_bytes unpickle, as in CPython
    assert not a.poll(0.05)
    a.close()
    p.join(30)
    assert p.exitcode == 0


def test_pipe_one_way_bytes(ctx):
    r, w = ctx.Pipe(duplex=False)
    with pytest.raises(OSError):
        r.send(1)
    with pytest.raises(OSError):
        w.recv()
    p = ctx.Process(target=lambda: (w.send_bytes(b"0123456789"), w.send_bytes(b"abc")))
    p.start()
    w.close()
    assert r.poll(30)
    assert r.recv_bytes() == b"0123456789"
    buf = bytearray(8)
    assert r.recv_bytes_into(buf, 2) == 3 and bytes(buf[2:5]) == b"abc"
    p.join(30)
    with pytest.raises(EOFError):          # the writer's process exited
        r.recv()


def _send_big_then_say(c, done, n):
    c.send("ready")
    c.send_bytes(b"x" * n)
    done.send("sent")


def test_pipe_send_beyond_an_os_pipe_waits_for_the_reader(ctx):
    """As with an OS pipe, a send of more than 64 KiB returns once the reader has it (CPython's
    TestIgnoreEINTR relies on it); up to 64 KiB it returns at once."""
    a, b = ctx.Pipe()
    dr, dw = ctx.Pipe(duplex=False)
    n = 1 << 20
    # on this node: to another node's channel the send returns once it is there (docs/python.md)
    p = ctx.Process(target=_send_big_then_say, args=(b, dw, n),
                    policy=dragon.Policy(host=dragon.node_index()))
    p.start()
    assert a.recv() == "ready"
    assert not dr.poll(0.5)             # still in send_bytes: nobody has read the 1 MiB yet
    assert p.is_alive()
    assert a.recv_bytes() == b"x" * n
    assert dr.poll(30) and dr.recv() == "sent"
    p.join(30)
    assert p.exitcode == 0
    # what fits an OS pipe returns with nobody reading (the reader is this thread, below)
    a.send_bytes(b"y" * 60000)
    assert b.recv_bytes() == b"y" * 60000


# ---- sync objects -------------------------------------------------------------------------

def test_lock_and_value_across_processes(ctx):
    lock = ctx.Lock()
    v = ctx.Value("i", 0, lock=False)
    ps = [ctx.Process(target=add_n, args=(lock, v, 100)) for _ in range(3)]
    for p in ps:
        p.start()
    for p in ps:
        p.join(60)
    assert v.value == 300


def test_rlock_semaphores(ctx):
    r = ctx.RLock()
    assert r.acquire() and r.acquire()
    r.release()
    r.release()
    with pytest.raises(AssertionError):
        r.release()
    s = ctx.Semaphore(2)
    assert s.acquire(timeout=1) and s.acquire(timeout=1)
    assert not s.acquire(timeout=0.05)
    assert s.get_value() == 0
    s.release()
    b = ctx.BoundedSemaphore(1)
    with pytest.raises(ValueError):
        b.release()
    lock = ctx.Lock()
    lock.acquire()
    assert not lock.acquire(False)
    lock.release()
    with pytest.raises(ValueError):
        lock.release()


def test_condition_event_barrier(ctx):
    cond = ctx.Condition()
    ev = ctx.Event()
    bar = ctx.Barrier(3)
    q = ctx.Queue()

    def waiter(cond, ev, bar, q):
        with cond:
            q.put("waiting")
            cond.wait(30)
        ev.wait(30)
        q.put(bar.wait(30))

    ps = [ctx.Process(target=waiter, args=(cond, ev, bar, q)) for _ in range(2)]
    for p in ps:
        p.start()
    assert [q.get(timeout=30) for _ in ps] == ["waiting"] * 2
    wait_until(lambda: cond._sleeping_count.get_value() - cond._woken_count.get_value() == 2)
    with cond:
        cond.notify_all()
    assert not ev.is_set()
    ev.set()
    assert ev.is_set()
    idx = bar.wait(30)
    got = sorted([idx, q.get(timeout=30), q.get(timeout=30)])
    assert got == [0, 1, 2]
    for p in ps:
        p.join(30)


def test_array_and_raw_values(ctx):
    arr = ctx.Array("i", range(10))
    rv = ctx.RawValue("d", 1.5)
    s = ctx.Array("c", b"hello")

    def work(arr, rv, s):
        for i in range(len(arr)):
            arr[i] = arr[i] * 2
        rv.value += 1
        s.value = b"bye"

    p = ctx.Process(target=work, args=(arr, rv, s))
    p.start()
    p.join(30)
    assert arr[:] == [i * 2 for i in range(10)] and rv.value == 2.5 and s.value == b"bye"
    with arr.get_lock():
        arr[0] = 7
    assert arr[0] == 7 and len(arr) == 10


def tracker_alive(conn, parent_tracker_pid):
    from multiprocessing.resource_tracker import _resource_tracker
    _resource_tracker.ensure_running()
    # the parent's tracker (inherited descriptor, no pid of our own), not a new one
    conn.send(_resource_tracker._pid in (None, parent_tracker_pid) and _resource_tracker._check_alive())


def test_descriptors_reach_children_of_this_node(ctx):
    """CPython's sharedctypes (an mmap heap handed over as a file descriptor) and the resource
    tracker's descriptor reach a child: it starts on this node, whatever the round robin says."""
    import multiprocessing.sharedctypes as sc
    from multiprocessing.resource_tracker import _resource_tracker
    v = sc.RawValue("i", 1)
    arr = sc.RawArray("d", [0.5] * 4)

    def work(v, arr):
        v.value = 41 + v.value
        arr[3] = 2.5

    p = ctx.Process(target=work, args=(v, arr))
    p.start()
    p.join(30)
    assert p.exitcode == 0 and p.node == dragon.node_index()
    assert v.value == 42 and arr[:] == [0.5, 0.5, 0.5, 2.5]
    _resource_tracker.ensure_running()
    r, w = ctx.Pipe(duplex=False)
    p = ctx.Process(target=tracker_alive, args=(w, _resource_tracker._pid))
    p.start()
    assert r.poll(30) and r.recv() is True
    p.join(30)
    # A policy that names a node explicitly is still followed: on this one it works.
    p = ctx.Process(target=work, args=(v, arr), policy=dragon.Policy(host=dragon.node_index()))
    p.start()
    p.join(30)
    assert p.exitcode == 0 and v.value == 83



def shm_write(sm, name, data):
    from multiprocessing import shared_memory
    sm.buf[:len(data)] = data
    other = shared_memory.SharedMemory(name)
    other.buf[len(data)] = 33
    other.close()


def test_arguments_bound_to_this_node():
    """The rule that keeps a child on its parent's node when its arguments name something of
    this node only (docs/python.md): what counts, what does not, and at what depth."""
    import tempfile
    from multiprocessing import shared_memory
    from dragon.mp import _bound_here
    sm = shared_memory.SharedMemory(create=True, size=64)
    sl = shared_memory.ShareableList([1, 2])
    listener = socket.create_server(("127.0.0.1", 0))
    d = tempfile.mkdtemp()
    path = os.path.join(d, "sock")
    us = socket.socket(socket.AF_UNIX)
    try:
        us.bind(path)
        bound = [listener.getsockname(), ("localhost", 80), ("::1", 5, 0, 0), sm.name,
                 "/" + sm.name, sm, sl, path, "\0abstract", listener,
                 [1, [2, ("127.0.0.1", 3)]], {"a": {"b": sm.name}}, (("127.0.0.1", 3), "x")]
        for o in bound:
            why = _bound_here((o,))
            assert why and ("loopback" in why or "shared memory" in why or "SharedMemory" in why
                            or "ShareableList" in why or "AF_UNIX" in why or "socket" in why), o
        assert "psm_" in _bound_here(("text", 1, sm.name))
        free = ["hello", d, b"x", ("10.1.2.3", 80), ("127.0.0.1", "80"), None, 42, print,
                os.path.join(d, "missing"), [[[["127.0.0.1", 3]]]]]
        for o in free:
            assert _bound_here((o,)) is None, o
        # deeper than the scan looks: not seen (the round robin stays)
        assert _bound_here(([[[[("127.0.0.1", 3)]]]],)) is None

        class Odd:      # a lazy proxy whose __class__ raises: the search gives up, the start goes on
            @property
            def __class__(self):
                raise RuntimeError("not loaded")
        assert _bound_here((Odd(), "\ud800", "a\0b")) is None
    finally:
        us.close()
        listener.close()
        os.unlink(path)
        os.rmdir(d)
        sl.shm.close()
        sl.shm.unlink()
    try:
        # a child given the segment and its name works with it (on one node: where it runs anyway)
        ctx = multiprocessing.get_context("dragon")
        p = ctx.Process(target=shm_write, args=(sm, sm.name, b"hi"))
        p.start()
        p.join(60)
        assert p.exitcode == 0 and bytes(sm.buf[:3]) == b"hi!"
    finally:
        sm.close()
        sm.unlink()


# ---- Pool, Manager, executors ---------------------------------------------------------------

def test_pool(ctx):
    got = []
    errs = []
    with ctx.Pool(3, initializer=_set_env, initargs=("POOL_INIT", "yes")) as pool:
        assert pool.map(square, range(20), chunksize=3) == [x * x for x in range(20)]
        assert pool.map(lambda x: x + 1, range(5)) == [1, 2, 3, 4, 5]
        assert sorted(pool.imap_unordered(square, range(10))) == [x * x for x in range(10)]
        assert list(pool.imap(square, range(5))) == [0, 1, 4, 9, 16]
        assert pool.starmap(pow, [(2, 3), (3, 2)]) == [8, 9]
        assert pool.apply(_get_env, ("POOL_INIT",)) == "yes"
        r = pool.apply_async(square, (7,), callback=got.append)
        assert r.get(30) == 49
        e = pool.apply_async(int, ("x",), error_callback=errs.append)
        with pytest.raises(ValueError):
            e.get(30)
        m = pool.map_async(square, [1, 2])
        assert m.get(30) == [1, 4]
    assert got == [49] and isinstance(errs[0], ValueError)


def returns_a_lambda():
    return lambda: 42


def test_pool_result_that_does_not_pickle(ctx):
    """Results go back with multiprocessing's pickler, as in CPython: a lambda result is a
    MaybeEncodingError (through get and the error callback), and the worker lives on; lambdas
    sent to the workers still travel by value."""
    from multiprocessing.pool import MaybeEncodingError
    errs = []
    with ctx.Pool(2) as pool:
        for _ in range(3):
            r = pool.apply_async(returns_a_lambda, error_callback=errs.append)
            with pytest.raises(MaybeEncodingError):
                r.get(30)
        assert len(errs) == 3 and all(isinstance(e, MaybeEncodingError) for e in errs)
        assert pool.map(lambda x: x * 3, range(4)) == [0, 3, 6, 9]


def test_pool_maxtasksperchild(ctx):
    with ctx.Pool(2, maxtasksperchild=2) as pool:
        pids = set(pool.map(_pid_of, range(8), chunksize=1))
    assert len(pids) >= 2


def _set_env(k, v):
    os.environ[k] = v


def _get_env(k):
    return os.environ.get(k)


def _pid_of(_):
    return os.getpid()


def test_manager(ctx):
    with ctx.Manager() as m:
        d = m.dict()
        lst = m.list()
        p = ctx.Process(target=lambda: (d.__setitem__("k", "v"), lst.append(1)))
        p.start()
        p.join(30)
        assert dict(d) == {"k": "v"} and list(lst) == [1]


def test_process_pool_executor(ctx):
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as ex:
        assert list(ex.map(square, range(6))) == [0, 1, 4, 9, 16, 25]
