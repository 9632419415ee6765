"""dragon.native: the fabric's own objects for Python: processes and groups with placement, queues found by name, nodes, sync objects."""
import json
import os
import pickle
import struct
import subprocess
import sys

from . import _core, _fabric, mp
from .mp import (Policy, Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event,  # noqa: F401
                 Barrier, Pipe, Value, Array, NODE_LOST)

_POLICY = {"round_robin": _core.POLICY_ROUND_ROBIN, "block": _core.POLICY_BLOCK}


# ---- nodes ----------------------------------------------------------------------------------

class Node:
    """One node of the fabric: its index, host name and the CPUs its local services may use."""

    def __init__(self, index, hostname, cpus):
        self.index, self.hostname, self.cpus = index, hostname, cpus

    def __repr__(self):
        return f"Node(index={self.index}, hostname={self.hostname!r}, cpus={self.cpus})"


class System:
    """The fabric: its nodes (asked once from `dragon status --json`)."""
    _nodes = None

    def __init__(self):
        _fabric.ensure()
        if System._nodes is None:
            out = subprocess.run([_fabric.launcher(), "status", "--json"], capture_output=True,
                                 text=True, check=False)
            if out.returncode != 0:
                raise ConnectionError(f"dragon status failed: {out.stderr.strip()}")
            doc = json.loads(out.stdout)
            doc = doc[0] if isinstance(doc, list) else doc
            System._nodes = [Node(n["index"], n["host"], n.get("cpus", 0))
                             for n in sorted(doc["nodes"], key=lambda n: n["index"])]

    @property
    def nodes(self):
        return list(System._nodes)

    @property
    def nnodes(self):
        return len(System._nodes)

    @property
    def cpus(self):
        return mp.cpu_count()


def node_of(host):
    """A node index from an index or a host name."""
    _fabric.ensure()
    if isinstance(host, int):
        if not 0 <= host < _core.node_count():
            raise ValueError(f"node {host} is not in the fabric (0..{_core.node_count() - 1})")
        return host
    for n in System().nodes:
        if n.hostname == host or n.hostname.split(".")[0] == str(host).split(".")[0]:
            return n.index
    raise ValueError(f"no node of the fabric is called {host!r}")


# ---- names ----------------------------------------------------------------------------------

def lookup(name, timeout=0):
    """The object registered under name (a Queue made with Queue(name=...)), waiting up to
    timeout seconds for it to appear (None: forever). KeyError if it does not exist."""
    _fabric.ensure()
    try:
        kind, desc = _core.name_lookup(name, timeout)
    except (_core.DragonNotFoundError, _core.DragonTimeoutError):
        raise KeyError(name) from None
    if kind == _core.NAME_CHANNEL:
        return Queue(_desc=desc[:_core.DESC_SIZE])
    raise TypeError(f"{name!r} names an object of kind {kind}")


class Queue(mp.Queue):
    """A fabric queue; with name= registered so that any process (Python or C,
    dragon_fchannel_attach) finds it; serialize() gives its channel descriptor."""

    def __init__(self, maxsize=0, name=None, _desc=None):
        _fabric.ensure()
        if _desc is not None:
            self._ch = _core.channel_attach(_desc)
            self._maxsize = mp._UNBOUNDED
            self._setup()
            return
        if maxsize <= 0:
            maxsize = mp._UNBOUNDED
        self._maxsize = maxsize
        cap = maxsize if maxsize < 4096 else 1024
        self._ch = _core.channel_create(name=name, capacity=cap, block_size=512)
        self._setup()

    def serialize(self):
        return self._ch.desc()

    @classmethod
    def attach(cls, desc_or_name, timeout=None):
        if isinstance(desc_or_name, str):
            return cls(_desc=_core.channel_attach(desc_or_name, timeout).desc())
        return cls(_desc=bytes(desc_or_name))

    def put_bytes(self, data, timeout=None):
        """Raw bytes as one message (what a C program's dragon_channel_recv sees)."""
        self._ch.send(data, timeout)

    def get_bytes(self, timeout=None):
        return self._ch.recv(timeout)

    def destroy(self):
        self._ch.destroy()


# ---- processes ------------------------------------------------------------------------------

def _argv(target, args):
    if isinstance(target, (str, bytes, os.PathLike)):
        return [os.fspath(target), *map(str, args)]
    raise TypeError("target must be a program path (for a Python callable use dragon.native.Process)")


class Process:
    """One process of the fabric: a Python callable (started like multiprocessing's dragon
    method) or a program; placed by policy."""

    def __init__(self, target, args=(), kwargs=None, policy=None, env=None, cwd=None):
        self._callable = callable(target)
        self._target, self._args, self._kwargs = target, tuple(args), dict(kwargs or {})
        self._policy, self._env, self._cwd = policy, env, cwd
        self._p = None
        self._gid = None
        self._to_me = False
        self.returncode = None

    def start(self):
        _fabric.ensure()
        if self._callable:
            self._p = mp.DragonProcess(target=self._target, args=self._args, kwargs=self._kwargs,
                                       policy=self._policy)
            self._p.start()
            return
        node = (self._policy or Policy.current() or Policy()).node()
        env = None if self._env is None else [f"{k}={v}" for k, v in self._env.items()]
        # Joined from outside: its output comes to us (else it would have nowhere to go).
        self._to_me = _fabric.output_to_me()
        self._gid = _core.group_create(_argv(self._target, self._args), 1, _core.POLICY_NODE,
                                       node, env=env, cwd=self._cwd, output_to_me=self._to_me)
        self.node = node

    def join(self, timeout=None):
        """Wait for it; its returncode (None on timeout): the exit code, -N if signal N ended it,
        NODE_LOST (256) if its node left the fabric."""
        if self._p is not None:
            self._p.join(timeout)
            self.returncode = self._p.exitcode
        elif self._gid is not None and self.returncode is None:
            try:
                self.returncode = mp._decode_status(_core.group_wait_all(self._gid, timeout))
            except _core.DragonTimeoutError:
                pass
            if self.returncode is not None and self._to_me:
                _fabric.flush_output()   # what it printed is written before join() returns
        return self.returncode

    def send_signal(self, signo):
        if self._p is not None:
            self._p._popen._send_signal(signo)
        elif self._gid is not None:
            _core.group_signal(self._gid, signo)

    def terminate(self):
        import signal
        self.send_signal(signal.SIGTERM)

    def kill(self):
        import signal
        self.send_signal(signal.SIGKILL)

    @property
    def is_alive(self):
        if self._p is not None:
            return self._p.is_alive()
        return self._gid is not None and self.join(0) is None


class ProcessGroup:
    """N copies of a program (or a Python callable) started together: all or none start.
    policy: "round_robin" (rank r on node r mod nodes), "block", or a node index/host name
    (every member there). Members find their rank in DRAGON_GROUP_RANK / dragon_group_rank()."""

    def __init__(self, target, nprocs, args=(), policy="round_robin", name=None, env=None, cwd=None):
        if nprocs < 1:
            raise ValueError("nprocs must be >= 1")
        self._target, self._n, self._args = target, nprocs, tuple(args)
        self._policy, self._name, self._env, self._cwd = policy, name, env, cwd
        self._gid = None
        self._to_me = False
        self._payload = None

    def start(self):
        _fabric.ensure()
        if callable(self._target):
            # Every member runs the same callable: one payload channel, read without taking.
            self._payload = mp._new_channel(1, 64)
            # sys.path first (the callable may live in a module found through it), then the call.
            head = pickle.dumps((sys.path, os.getcwd()))
            body = mp._by_value_dumps((self._target, self._args))
            self._payload.send([struct.pack("<Q", len(head)), head, body])
            argv = [sys.executable, "-c", _GROUP_CHILD, mp._PYPATH, self._payload.desc().hex()]
        else:
            argv = _argv(self._target, self._args)
        if self._policy in _POLICY:
            pol, node = _POLICY[self._policy], 0
        else:
            pol, node = _core.POLICY_NODE, node_of(self._policy)
        env = [f"{k}={v}" for k, v in (self._env or {}).items()]
        if callable(self._target):
            env += [f"{k}={v}" for k, v in os.environ.items()
                    if k.startswith("PYDRAGON_") or k in ("PYTHONPATH", "DRAGON_LAUNCHER")]
        self._to_me = _fabric.output_to_me()
        self._gid = _core.group_create(argv, self._n, pol, node, env=env or None, cwd=self._cwd,
                                       name=self._name, output_to_me=self._to_me)

    def join(self, timeout=None):
        """Wait for every member; the largest exit status (None on timeout): NODE_LOST (256)
        if a member's node left the fabric."""
        try:
            worst = _core.group_wait_all(self._gid, timeout)
        except _core.DragonTimeoutError:
            return None
        if self._to_me:
            _fabric.flush_output()   # what the members printed is written before join() returns
        return worst

    def wait_any(self, timeout=None):
        """(puid, status) of a member that ended and was not reported yet; None on timeout."""
        try:
            return _core.group_wait_any(self._gid, timeout)
        except _core.DragonTimeoutError:
            return None

    def send_signal(self, signo):
        _core.group_signal(self._gid, signo)

    @property
    def gid(self):
        return self._gid


_GROUP_CHILD = ("import sys; sys.path.insert(0, sys.argv[1]); "
                "from dragon.native import _group_main; _group_main(sys.argv[2])")


def _group_main(desc_hex):
    from . import _child
    _child._redirect_output()
    _fabric.ensure()
    ch = _core.channel_attach(bytes.fromhex(desc_hex))
    # Take the payload and put it back at once, so every member reads it.
    m = ch.recv()
    ch.send(m)
    (hlen,) = struct.unpack_from("<Q", m)
    path, cwd = pickle.loads(m[8:8 + hlen])
    sys.path[:] = path
    try:
        os.chdir(cwd)
    except OSError:
        pass  # another node may not have it
    fn, args = pickle.loads(m[8 + hlen:])
    r = fn(*args)
    sys.exit(r if isinstance(r, int) else 0)


def group_rank():
    """(rank, size) of this process in its group; (-1, 0) if in none."""
    _fabric.ensure()
    return _core.group_rank()
