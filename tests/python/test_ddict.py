"""tests/python/test_ddict.py: dragon.data.DDict on one machine: the mapping, keys shared with C, pickling into other processes, the dictionary's own operations and its errors."""
import hashlib
import os
import pickle
import signal
import subprocess
import threading
import time

import pytest

import dragon
from dragon import _config
from dragon.data import DDict, DDictFullError

DDTOOL = os.path.join(_config.BUILD_ROOT, "tests", "ddict", "ddtool")


def ddtool(*args, timeout=60):
    """The C side: tests/ddict/ddtool in this test's fabric (the private one's environment)."""
    assert os.access(DDTOOL, os.X_OK), f"{DDTOOL} is not built"
    r = subprocess.run([DDTOOL, *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"ddtool {args}: {r.returncode}: {r.stdout} {r.stderr}"
    return r.stdout


@pytest.fixture
def dd():
    dragon.init()
    d = DDict(managers_per_node=2, budget=8 << 20, name=f"pytest-dd-{os.getpid()}")
    yield d
    if not d._h.closed():
        d.destroy()


def test_mapping(dd):
    assert len(dd) == 0 and list(dd) == []
    dd["a"] = 1
    dd[b"b"] = [1, 2, 3]
    dd[7] = {"x": (1, 2)}
    dd[("t", 1)] = None
    assert dd["a"] == 1 and dd[b"b"] == [1, 2, 3] and dd[7] == {"x": (1, 2)}
    assert dd[("t", 1)] is None                     # a stored None is not "absent"
    assert len(dd) == 4
    assert "a" in dd and 7 in dd and ("t", 1) in dd and "zz" not in dd
    assert sorted(map(repr, dd.keys())) == sorted(map(repr, ["a", "b", 7, ("t", 1)]))
    assert dict(dd.items()) == {"a": 1, "b": [1, 2, 3], 7: {"x": (1, 2)}, ("t", 1): None}
    assert sorted(map(repr, dd.values())) == sorted(map(repr, [1, [1, 2, 3], {"x": (1, 2)}, None]))
    assert dd.get("zz") is None and dd.get("zz", 5) == 5 and dd.get("a") == 1
    with pytest.raises(KeyError):
        dd["zz"]
    with pytest.raises(KeyError):
        del dd["zz"]
    dd["a"] = "replaced"
    assert dd["a"] == "replaced" and len(dd) == 4
    del dd["a"]
    assert "a" not in dd and len(dd) == 3
    assert dd.pop(7) == {"x": (1, 2)} and 7 not in dd
    assert dd.pop(7, "gone") == "gone"
    with pytest.raises(KeyError):
        dd.pop(7)
    dd.update({"u1": 1, "u2": 2}, u3=3)
    dd.update([("u4", 4)])
    assert [dd[f"u{i}"] for i in range(1, 5)] == [1, 2, 3, 4]
    assert dd.setdefault("u1", 9) == 1 and dd.setdefault("u9", 9) == 9
    big = os.urandom(3 << 20)                       # a value larger than a channel message
    dd["big"] = big
    assert dd["big"] == big
    dd.clear()
    assert len(dd) == 0 and dd.get("u1") is None
    # str and bytes of the same UTF-8 are one key; iteration gives the str
    dd[b"same"] = 1
    dd["same"] = 2
    assert len(dd) == 1 and dd[b"same"] == 2 and list(dd) == ["same"]
    # a bytes key that is not UTF-8, and one that starts like a pickle, come back as bytes
    dd[b"\xff\xfe"] = 3
    dd[b"\x80\x04x"] = 4
    assert sorted(map(repr, dd)) == sorted(map(repr, ["same", b"\xff\xfe", b"\x80\x04x"]))
    assert dd[b"\x80\x04x"] == 4


def test_many_keys_and_batch(dd):
    n = 5000
    with dd.batch():
        for i in range(n):
            dd[f"k{i}"] = i * i
    assert len(dd) == n
    assert sum(k for k, _, _ in dd.stats()) == n
    assert all(keys > 0 for keys, _, _ in dd.stats())  # spread over both managers
    got = dict(dd.items())
    assert got == {f"k{i}": i * i for i in range(n)}


def test_keys_shared_with_c(dd):
    """C's bytes keys are Python's str and bytes keys: put from C, read from Python and back."""
    name = f"pytest-dd-{os.getpid()}"
    ddtool("set", name, "from-c", "c-bytes")
    assert "from-c" in dd and b"from-c" in dd
    assert dd.get_raw("from-c") == b"c-bytes"
    with pytest.raises(ValueError, match="not a pickle"):
        dd["from-c"]
    dd.put_raw("from-py", b"py-bytes")
    dd[b"pickled"] = "x"
    assert ddtool("show", name, "from-py") == "value py-bytes\n"
    assert ddtool("show", name, "nope") == "absent\n"
    # the C counter and Python's fetch_add are one counter
    ddtool("count", name, "5")
    assert dd.fetch_add("ctr", 10) == 5 and dd.fetch_add("ctr", 0) == 15
    assert int.from_bytes(dd.get_raw("ctr"), "little", signed=True) == 15
    # the same manager as C's hash and Python's hashlib say
    for key in ["from-c", "k", "ümlaut", b"\x00\x01"]:
        raw = key.encode() if isinstance(key, str) else key
        want = int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little") % 2
        assert dd.manager_of(key) == want


def _worker_put(d, rank, n):
    for i in range(n):
        d[(rank, i)] = f"{rank}:{i}"
    d.fetch_add("done", 1)
    return dragon.node_index()


def _worker_sum(d, rank, n):
    return sum(len(d[(r, i)]) for r in range(rank + 1) for i in range(n))


def test_pickled_into_pool_workers(dd, ctx):
    """A DDict passed to Pool workers (pickled to its descriptor) is the same dictionary."""
    assert pickle.loads(pickle.dumps(dd)).managers == dd.managers
    with ctx.Pool(3) as pool:
        nodes = pool.starmap(_worker_put, [(dd, r, 50) for r in range(3)])
        sums = pool.starmap(_worker_sum, [(dd, 2, 50)])
    assert nodes == [dragon.node_index()] * 3
    assert dd.fetch_add("done", 0) == 3
    assert len(dd) == 3 * 50 + 1
    assert dd[(1, 49)] == "1:49"
    assert sums == [sum(len(f"{r}:{i}") for r in range(3) for i in range(50))]


def _attach_and_count(name, n):
    d = DDict.attach(name, timeout=10)
    for _ in range(n):
        d.fetch_add("ctr", 1)


def test_attach_by_name_and_counters(dd, ctx):
    procs = [ctx.Process(target=_attach_and_count, args=(f"pytest-dd-{os.getpid()}", 200))
             for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert dd.fetch_add("ctr", 0) == 600
    with pytest.raises(dragon.DragonTimeoutError):
        DDict.attach("pytest-no-such-dict", timeout=0.2)


def _put_later(d):
    d["late"] = "here"


def test_wait_for_key(dd, ctx):
    assert dd.wait_for_key("late", timeout=0.2) is False
    p = ctx.Process(target=_put_later, args=(dd,))
    p.start()
    assert dd.wait_for_key("late", timeout=30) is True
    p.join(30)
    assert dd["late"] == "here"


def test_gil_released_while_waiting(dd):
    """A thread waiting for a key does not hold the GIL: another thread runs and puts it."""
    res = {}

    def waiter():
        res["got"] = dd.wait_for_key("from-thread", timeout=30)

    t = threading.Thread(target=waiter)
    t.start()
    spins = 0
    end = time.monotonic() + 0.3
    while time.monotonic() < end:                   # the main thread keeps running Python
        spins += 1
    other = DDict.attach_desc(dd.serialize())      # a handle of its own: the waiter holds dd's
    other["from-thread"] = 1
    t.join(30)
    assert res["got"] is True and spins > 1000


def test_threads_share_one_handle(dd):
    errors = []

    def work(t):
        try:
            for i in range(200):
                dd[f"t{t}-{i}"] = i
                assert dd[f"t{t}-{i}"] == i
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    ts = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors and len(dd) == 800


def test_freeze_persist_restore(dd, tmp_path):
    for i in range(300):
        dd[f"p{i}"] = i
    dd.freeze()
    assert dd["p7"] == 7 and "p8" in dd             # reads from the shards' shared memory
    with pytest.raises(PermissionError):
        dd["new"] = 1
    dd.unfreeze()
    dd["new"] = 1
    dd.persist(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["ddict-0-of-2.shard", "ddict-1-of-2.shard"]
    dd.clear()
    assert len(dd) == 0
    dd.restore(str(tmp_path))
    assert len(dd) == 301 and dd["p299"] == 299
    os.unlink(tmp_path / "ddict-1-of-2.shard")
    with pytest.raises(dragon.DragonNotFoundError, match="ddict-1-of-2.shard"):
        dd.restore(tmp_path)


def test_budget_error_names_the_manager():
    dragon.init()
    with DDict(managers_per_node=1, budget=64 << 10) as d:
        d["small"] = 1
        with pytest.raises(DDictFullError) as e:
            d["huge"] = b"x" * (1 << 20)
        assert isinstance(e.value, MemoryError) and isinstance(e.value, dragon.DragonError)
        assert "manager 0" in str(e.value) and "bytes used" in str(e.value)
        assert "huge" not in d and d["small"] == 1  # nothing half-written
        with pytest.raises(DDictFullError):
            with d.batch():
                for i in range(100):
                    d[f"b{i}"] = b"y" * 4000


def test_dead_manager_is_a_connection_error():
    dragon.init()
    name = f"pytest-dd-dead-{os.getpid()}"
    d = DDict(managers_per_node=2, budget=1 << 20, name=name)
    k0 = next(f"k{i}" for i in range(100) if d.manager_of(f"k{i}") == 0)
    k1 = next(f"k{i}" for i in range(100) if d.manager_of(f"k{i}") == 1)
    d[k0] = d[k1] = "v"
    # "index node pid" per manager
    pids = {int(f[0]): int(f[2]) for f in (line.split() for line in ddtool("pids", name).splitlines())}
    os.kill(pids[1], signal.SIGKILL)
    with pytest.raises(ConnectionError, match="manager 1"):
        d[k1]
    assert d[k0] == "v"                             # the other manager serves
    d.destroy()


def test_closed_handle_and_bad_arguments():
    dragon.init()
    d = DDict(budget=1 << 20)
    d.destroy()
    with pytest.raises(ValueError, match="closed"):
        d["x"] = 1
    assert repr(d) == "<DDict (closed)>"
    with pytest.raises(ValueError):
        DDict(managers_per_node=0)
    with pytest.raises(dragon.DragonValueError, match="budget"):
        DDict(budget=100)
    with pytest.raises(dragon.DragonValueError, match="nodes"):
        DDict(nodes=1000)
