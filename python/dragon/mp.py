"""dragon.mp: the "dragon" start method of multiprocessing: processes, queues, pipes, locks and shared values on fabric channels."""
import collections
import copyreg as _copyreg
import functools
import io
import itertools
import os
import pickle
import queue as _queue
import signal
import stat as _stat
import struct
import sys
import threading
import time
import weakref
from types import FunctionType as _FunctionType
from importlib.machinery import PathFinder as _PathFinder

import multiprocessing
import multiprocessing.context as _mpctx
import multiprocessing.process as _mpprocess
import multiprocessing.reduction as _mpreduction
import multiprocessing.spawn as _mpspawn
import multiprocessing.util as _mputil

from . import _core, _fabric, _startmethod
from ._startmethod import DragonProcess, ParentSentinel, wait

# cloudpickle (the Debian package python3-cloudpickle; without it, by reference only) is imported
# when something must travel by value: a child that only receives does not pay for it at start
# (loading a by-value pickle imports it by itself).
_HAVE_CLOUDPICKLE = _PathFinder.find_spec("cloudpickle") is not None

_C = _core
_UNBOUNDED = 1 << 30  # "no limit" for a queue's maxsize and a semaphore's value


# ---- pickling -------------------------------------------------------------------------------
# Protocol 5: large buffers (bytes, bytearray, memoryview, numpy arrays) leave the pickle as
# out-of-band parts and go into the message beside it, copied once into the channel. A message
# is a plain pickle (it starts with the PROTO opcode 0x80), or 0x01, the count of parts, their
# lengths, then the pickle and the parts.

def _by_value_dumps(obj, buffer_callback=None):
    """cloudpickle (functions and classes of __main__ by value) with multiprocessing's own
    reducers too (ForkingPickler.register: heap arenas, connections, sockets...)."""
    buf = io.BytesIO()
    _value_pickler()(buf, protocol=5, buffer_callback=buffer_callback).dump(obj)
    return buf.getvalue()


_ValuePickler = None


def _value_pickler():
    global _ValuePickler
    if _ValuePickler is None:
        import cloudpickle
        from multiprocessing.reduction import ForkingPickler as _FP

        class _ValuePickler(cloudpickle.CloudPickler):
            dispatch_table = collections.ChainMap(_FP._extra_reducers,
                                                  cloudpickle.CloudPickler.dispatch_table)
    return _ValuePickler


_OOB = 0x01
_OOB_MIN = 4096  # smaller buffers stay in the pickle (a part costs more than it saves)


class _MPPickler(pickle.Pickler):
    """The C pickler with multiprocessing's registered reducers (ForkingPickler's: connections,
    sockets, heap arenas...), as CPython's Connection.send pickles. Its table is a plain dict,
    rebuilt when a reducer is registered (ForkingPickler copies copyreg's on every use)."""
    dispatch_table = {}
    _sizes = None


def _mp_table():
    sizes = (len(_copyreg.dispatch_table), len(_mpreduction.ForkingPickler._extra_reducers))
    if sizes != _MPPickler._sizes:
        t = dict(_copyreg.dispatch_table)
        t.update(_mpreduction.ForkingPickler._extra_reducers)
        _MPPickler.dispatch_table, _MPPickler._sizes = t, sizes
    return _MPPickler.dispatch_table


def _mp_dumps(obj, buffer_callback):
    _mp_table()
    buf = io.BytesIO()
    _MPPickler(buf, 5, True, buffer_callback).dump(obj)
    return buf.getvalue()


def _dumps_parts(obj, by_value=False, strict=False):
    bufs = []

    def cb(pb):
        if pb.raw().nbytes < _OOB_MIN:
            return True  # keep it in band
        bufs.append(pb)
        return False

    if strict:
        # results of Pool workers: what CPython cannot send raises (MaybeEncodingError)
        data = _mp_dumps(obj, cb)
    elif by_value or _HAVE_CLOUDPICKLE and _main_is_interactive():
        data = _by_value_dumps(obj, cb)
    else:
        try:
            data = _mp_dumps(obj, cb)
        except (pickle.PicklingError, AttributeError, TypeError):
            if not _HAVE_CLOUDPICKLE:
                raise
            bufs.clear()  # functions and classes that only exist here travel by value
            data = _by_value_dumps(obj, cb)
    if not bufs:
        return [data]
    # Every part starts 64-byte aligned in the message (numpy wants aligned buffers).
    raws = [b.raw() for b in bufs]
    head = struct.pack(f"<BI{len(raws) + 1}Q", _OOB, len(raws), len(data), *(r.nbytes for r in raws))
    out = [head, _pad(len(head)), data]
    off = _align(len(head)) + len(data)
    for r in raws:
        out.append(_pad(off))
        out.append(r)
        off = _align(off) + r.nbytes
    return out


def _align(n):
    return (n + 63) & ~63


def _pad(n):
    return b"\0" * (_align(n) - n)


def _loads(msg):
    if msg[:1] != b"\x01":
        return pickle.loads(msg)
    mv = memoryview(msg)
    (n,) = struct.unpack_from("<I", mv, 1)
    lens = struct.unpack_from(f"<{n + 1}Q", mv, 5)
    off = _align(5 + 8 * (n + 1))
    data = mv[off:off + lens[0]]
    off += lens[0]
    parts = []
    for ln in lens[1:]:
        off = _align(off)
        parts.append(mv[off:off + ln])
        off += ln
    return pickle.loads(data, buffers=parts)


_interactive = None
_main_defs = None   # (file, names its module body defines with def/class) for _process_dumps


def _main_toplevel(prep):
    """Names the child's copy of __main__ will hold by reference: those a def or class statement
    at the top level of the main file defines (spawn.prepare runs that file again in the child).
    Names bound elsewhere (under `if __name__ == "__main__":`, in a function) exist only here."""
    global _main_defs
    path = prep.get("init_main_from_path")
    if not path:
        name = prep.get("init_main_from_name")
        if not name or name == "__main__" or name.endswith(".__main__"):
            return frozenset()   # spawn.prepare does not import such a main: nothing resolves
        path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not path:
        return frozenset()
    if _main_defs is None or _main_defs[0] != path:
        import _ast
        try:
            with open(path, "rb") as f:
                tree = compile(f.read(), path, "exec", _ast.PyCF_ONLY_AST)
            names = frozenset(n.name for n in tree.body
                              if isinstance(n, (_ast.FunctionDef, _ast.AsyncFunctionDef, _ast.ClassDef)))
        except (OSError, SyntaxError, ValueError):
            names = frozenset()
        _main_defs = (path, names)
    return _main_defs[1]


class _MainByReference(Exception):
    pass


class _ProcessPickler(_MPPickler):
    """_MPPickler that refuses a function or class of __main__ the child's __main__ lacks."""
    top = frozenset()

    def reducer_override(self, obj):
        if isinstance(obj, (type, _FunctionType)) and getattr(obj, "__module__", None) == "__main__" \
                and (obj.__qualname__ != obj.__name__ or obj.__name__ not in self.top):
            raise _MainByReference(obj)
        return NotImplemented


def _process_dumps(process_obj, prep):
    """A Process for its child, pickled as spawn does (by reference, with multiprocessing's
    reducers) when the child can resolve every reference: then neither side imports
    cloudpickle, which costs a fresh interpreter more than the rest of its start. Functions and
    classes that exist only here (a lambda, a nested or notebook function, one defined under
    `if __name__ == "__main__":`) send the whole process by value."""
    if not _HAVE_CLOUDPICKLE:
        return pickle.dumps(process_obj, protocol=5)
    if not _main_is_interactive():
        _mp_table()   # up to date before the pickler reads it (its __init__ does)
        p = _ProcessPickler(buf := io.BytesIO(), 5)
        p.top = _main_toplevel(prep)
        try:
            p.dump(process_obj)
            return buf.getvalue()
        except (_MainByReference, pickle.PicklingError, AttributeError, TypeError):
            pass
    return _by_value_dumps(process_obj)


def _main_is_interactive():
    """A __main__ without a file (python -c, a notebook, stdin): its functions travel by value."""
    global _interactive
    if _interactive is None:
        m = sys.modules.get("__main__")
        _interactive = not getattr(m, "__file__", None)
    return _interactive


# ---- waiting on several objects: dragon._startmethod.wait (multiprocessing.connection.wait) ---

# multiprocessing.connection, .pool and .queues load when something uses them (a program that
# only starts processes does not: their imports cost a start as much as the rest of dragon.mp).
_startmethod._hook_connection()


# ---- connections (Pipe) ---------------------------------------------------------------------

_PIPE_BUF = 65536  # bytes an OS pipe holds on Linux: a larger send waits for the reader
_EOF = b"\x02dragon-eof"  # what a closing end of a Pipe leaves for the other end
_live_conns = weakref.WeakSet()


def _gone(exc):
    return isinstance(exc, (_C.DragonClosedError, _C.DragonStaleError, _C.DragonPeerError))


class Connection:
    """One end of a Pipe (or a SimpleQueue's reader / writer): channels of local services.

    Like a file descriptor, the writing side of an end may have copies in several processes (it
    is pickled to children): a shared count of the open copies (a one-message channel) is raised
    when a copy is pickled and lowered when one closes (or its process exits); the last one leaves
    an end-of-file mark, and the other end then gets EOFError."""

    _strict = False  # send() pickles with multiprocessing's pickler only (no by-value fallback)

    def __init__(self, rch=None, wch=None, eof=True, refs=None):
        self._r = rch
        self._w = wch
        self._eof = eof and wch is not None
        self._refs = refs
        if self._eof and refs is None:
            self._refs = _Cell(struct.pack("<q", 1))
        self._closed = False
        self._peer_gone = False
        if self._eof:
            _live_conns.add(self)

    # pickling: descriptors, not handles; one more open copy of the writing side
    def __reduce__(self):
        if self._closed:
            raise OSError("handle is closed")
        if self._eof:
            self._refs.update(lambda b: struct.pack("<q", struct.unpack("<q", b)[0] + 1))
        return (_rebuild_connection, (self._r.desc() if self._r else None,
                                      self._w.desc() if self._w else None, self._eof,
                                      self._refs if self._eof else None))

    @property
    def closed(self):
        return self._closed

    @property
    def readable(self):
        return self._r is not None

    @property
    def writable(self):
        return self._w is not None

    def _check(self, r=False, w=False):
        if self._closed:
            raise OSError("handle is closed")
        if r and self._r is None:
            raise OSError("connection is write-only")
        if w and self._w is None:
            raise OSError("connection is read-only")

    def fileno(self):
        raise OSError("a dragon connection has no file descriptor (use multiprocessing.connection.wait)")

    def close(self):
        if self._closed:
            return
        self._closed = True
        if self._eof:
            try:
                left = struct.unpack("<q", self._refs.update(
                    lambda b: struct.pack("<q", struct.unpack("<q", b)[0] - 1)))[0]
                if left <= 0:
                    self._w.send(_EOF, timeout=1)
            except Exception:
                pass  # the other end is gone, or its channel stays full: it is done too
        for ch in (self._r, self._w):
            if ch is not None:
                ch.detach()
        self._r = self._w = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def __del__(self):
        try:
            if not self._closed and self._eof and not sys.is_finalizing():
                self.close()
        except Exception:
            pass

    def _send_parts(self, parts):
        self._check(w=True)
        n = 0
        for p in parts:
            n += len(p) if type(p) is bytes else memoryview(p).nbytes
        try:
            # Larger than an OS pipe holds: return once the reader took it, as a write to a pipe
            # does (programs and CPython's tests rely on it; it also bounds what a writer can
            # leave unread). On another node: once it is in the reader's channel.
            self._w.send(parts, taken=n > _PIPE_BUF)
        except _C.DragonError as e:
            if _gone(e):
                raise BrokenPipeError(32, f"the other end of the pipe is gone ({e})") from e
            raise

    def send(self, obj):
        self._check(w=True)
        self._send_parts(_dumps_parts(obj, strict=self._strict))

    def send_bytes(self, buf, offset=0, size=None):
        self._check(w=True)
        m = memoryview(buf)
        if m.itemsize > 1:
            m = m.cast("B")
        n = m.nbytes
        if offset < 0:
            raise ValueError("offset is negative")
        if n < offset:
            raise ValueError("buffer length < offset")
        if size is None:
            size = n - offset
        elif size < 0:
            raise ValueError("size is negative")
        elif offset + size > n:
            raise ValueError("buffer length < offset + size")
        # Raw bytes are marked so a pickle and raw bytes never mix up.
        self._send_parts([b"\x03", m[offset:offset + size]])

    # CPython's Connection has these (some programs and tests call them).
    def _send_bytes(self, buf):
        self.send_bytes(buf)

    def _recv_bytes(self, maxsize=None):
        return io.BytesIO(self.recv_bytes(maxsize))

    def _recv_msg(self, timeout=None, writable=False):
        self._check(r=True)
        if self._peer_gone:
            raise EOFError
        try:
            m = self._r.recv(timeout, writable)
        except _C.DragonError as e:
            if _gone(e):
                self._peer_gone = True
                raise EOFError(f"the other end of the pipe is gone ({e})") from e
            raise
        if m == _EOF:
            self._peer_gone = True
            raise EOFError
        return m

    def recv(self):
        m = self._recv_msg(writable=True)
        if m[:1] == b"\x03":
            return pickle.loads(m[1:])  # bytes sent with send_bytes: CPython unpickles them too
        return _loads(m)

    def recv_bytes(self, maxlength=None):
        if maxlength is not None and maxlength < 0:
            raise ValueError("negative maxlength")
        m = self._recv_msg()
        body = m[1:] if m[:1] == b"\x03" else m
        if maxlength is not None and len(body) > maxlength:
            self.close()
            raise OSError("bad message length")
        return body

    def recv_bytes_into(self, buf, offset=0):
        m = memoryview(buf)
        if m.itemsize > 1:
            m = m.cast("B")
        if offset < 0 or offset > m.nbytes:
            raise ValueError("offset out of bounds")
        body = self.recv_bytes()
        if len(body) > m.nbytes - offset:
            raise multiprocessing.BufferTooShort(body)
        m[offset:offset + len(body)] = body
        return len(body)

    def poll(self, timeout=0.0):
        self._check(r=True)
        return self._dragon_ready(timeout)

    def _dragon_ready(self, timeout=0.0):
        if self._closed or self._r is None or self._peer_gone:
            return True
        try:
            return bool(self._r.poll(_C.POLLIN, timeout))
        except _C.DragonError:
            return True  # gone: a recv will say so


def _rebuild_connection(rdesc, wdesc, eof, refs=None):
    _fabric.ensure()
    r = _C.channel_attach(rdesc) if rdesc else None
    w = _C.channel_attach(wdesc) if wdesc else None
    return Connection(r, w, eof, refs)


def _new_channel(capacity=0, block_size=0):
    _fabric.ensure()
    return _C.channel_create(capacity=capacity, block_size=block_size)


def Pipe(duplex=True):
    """Two connected ends; each direction is a channel of this node's local services."""
    a = _new_channel(256, 1024)
    if not duplex:
        return Connection(a, None), Connection(None, _C.channel_attach(a.desc()))
    b = _new_channel(256, 1024)
    return (Connection(a, _C.channel_attach(b.desc())),
            Connection(b, _C.channel_attach(a.desc())))


# ---- semaphores, locks, conditions, events, barriers --------------------------------------------

_PERMIT = b"\x01"


class Semaphore:
    """Permits are one-byte messages in a channel: acquire takes one, release puts one back."""
    _bounded = False

    def __init__(self, value=1, *, maxvalue=None, _ch=None):
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        if _ch is not None:
            self._ch = _ch
            self._max = maxvalue
        else:
            if maxvalue is None:
                maxvalue = max(value, 1024) if not self._bounded else value
            self._max = max(maxvalue, 1)
            self._ch = _new_channel(self._max, 8)
            for _ in range(value):
                self._ch.send(_PERMIT, timeout=0)
        self._owner = None  # (pid, thread) of the last acquirer here: Lock and RLock use it
        self._count = 0

    def __reduce__(self):
        return (_rebuild_sync, (type(self), self._ch.desc(), self._max))

    def acquire(self, block=True, timeout=None):
        if not block:
            timeout = 0
        elif timeout is not None and timeout < 0:
            timeout = 0
        try:
            self._ch.recv(timeout)
        except (_C.DragonTimeoutError, _C.DragonWouldBlock):
            return False
        self._owner = (os.getpid(), threading.get_ident())
        self._count += 1
        return True

    def release(self):
        try:
            self._ch.send(_PERMIT, timeout=0)
        except (_C.DragonWouldBlock, _C.DragonTimeoutError, _C.DragonFullError):
            raise ValueError("semaphore or lock released too many times") from None
        self._count = max(0, self._count - 1)
        if self._count == 0:
            self._owner = None

    __enter__ = acquire

    def __exit__(self, *a):
        self.release()

    def get_value(self):
        return self._ch.count()[0]  # NotImplementedError for another node's (as on macOS)

    # CPython's Queue (and so concurrent.futures) looks at its semaphore through `_semlock`.
    @property
    def _semlock(self):
        return self

    def _get_value(self):
        return self.get_value()

    def _is_zero(self):
        return not self._ch.poll(_C.POLLIN, 0)

    def __repr__(self):
        try:
            v = self.get_value()
        except Exception:
            v = "unknown"
        return f"<{type(self).__name__}(value={v}, maxvalue={self._max})>"


class BoundedSemaphore(Semaphore):
    _bounded = True

    def __init__(self, value=1, *, _ch=None, maxvalue=None):
        super().__init__(value, maxvalue=value if _ch is None else maxvalue, _ch=_ch)


class Lock(Semaphore):
    def __init__(self, *, _ch=None, maxvalue=None):
        super().__init__(1, maxvalue=1, _ch=_ch)

    def _is_owned(self):
        return self._owner == (os.getpid(), threading.get_ident())

    def _release_save(self):
        self.release()
        return 1

    def _acquire_restore(self, n):
        self.acquire()

    def __repr__(self):
        try:
            held = self._is_zero()
        except Exception:
            return "<Lock(owner=unknown)>"
        if not held:
            return "<Lock(owner=None)>"
        if self._is_owned():
            return f"<Lock(owner={_mpprocess.current_process().name}|{threading.current_thread().name})>"
        return "<Lock(owner=SomeOtherThread)>" if self._owner else "<Lock(owner=SomeOtherProcess)>"


class RLock(Lock):
    """A Lock that its owner (process and thread) may take again; it counts the takes here."""

    def acquire(self, block=True, timeout=None):
        if self._is_owned():
            self._count += 1
            return True
        return super().acquire(block, timeout)

    def release(self):
        if not self._is_owned():
            raise AssertionError("attempt to release recursive lock not owned by thread")
        if self._count > 1:
            self._count -= 1
            return
        self._count = 0
        self._owner = None
        self._ch.send(_PERMIT, timeout=0)

    __enter__ = acquire

    def _release_save(self):
        n = self._count
        self._count = 1
        self.release()
        return n

    def _acquire_restore(self, n):
        Lock.acquire(self)
        self._count = n

    def __repr__(self):
        try:
            held = self._is_zero()
        except Exception:
            return "<RLock(unknown, unknown)>"
        if not held:
            return "<RLock(None, 0)>"
        if self._is_owned():
            return (f"<RLock({_mpprocess.current_process().name}|"
                    f"{threading.current_thread().name}, {self._count})>")
        return "<RLock(SomeOtherThread, nonzero)>" if self._owner else "<RLock(SomeOtherProcess, nonzero)>"


def _rebuild_sync(cls, desc, maxvalue):
    _fabric.ensure()
    return cls(_ch=_C.channel_attach(desc), maxvalue=maxvalue)


class Condition:
    """CPython's multiprocessing Condition (sleeping / woken counts and a wait semaphore) on
    dragon semaphores."""

    def __init__(self, lock=None):
        self._lock = lock or RLock()
        self._sleeping_count = Semaphore(0)
        self._woken_count = Semaphore(0)
        self._wait_semaphore = Semaphore(0)
        self._make_methods()

    def __getstate__(self):
        return (self._lock, self._sleeping_count, self._woken_count, self._wait_semaphore)

    def __setstate__(self, state):
        (self._lock, self._sleeping_count, self._woken_count, self._wait_semaphore) = state
        self._make_methods()

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *args):
        return self._lock.__exit__(*args)

    def _make_methods(self):
        self.acquire = self._lock.acquire
        self.release = self._lock.release

    def __repr__(self):
        try:
            n = self._sleeping_count.get_value() - self._woken_count.get_value()
        except Exception:
            n = "unknown"
        return f"<Condition({self._lock}, {n})>"

    def wait(self, timeout=None):
        assert self._lock._is_owned(), "must acquire() condition before using wait()"
        self._sleeping_count.release()
        count = self._lock._release_save()
        try:
            return self._wait_semaphore.acquire(True, timeout)
        finally:
            self._woken_count.release()
            self._lock._acquire_restore(count)

    def notify(self, n=1):
        assert self._lock._is_owned(), "lock is not owned"
        assert not self._wait_semaphore.acquire(False)
        while self._woken_count.acquire(False):
            res = self._sleeping_count.acquire(False)
            assert res, "notify: Bug in sleeping_count.acquire - res should not be False"
        sleepers = 0
        while sleepers < n and self._sleeping_count.acquire(False):
            self._wait_semaphore.release()
            sleepers += 1
        if sleepers:
            for _ in range(sleepers):
                self._woken_count.acquire()
            while self._wait_semaphore.acquire(False):
                pass

    def notify_all(self):
        self.notify(n=sys.maxsize)

    def wait_for(self, predicate, timeout=None):
        result = predicate()
        if result:
            return result
        endtime = None if timeout is None else time.monotonic() + timeout
        waittime = timeout
        while not result:
            if endtime is not None:
                waittime = endtime - time.monotonic()
                if waittime <= 0:
                    break
            self.wait(waittime)
            result = predicate()
        return result


class Event:
    def __init__(self):
        self._cond = Condition(Lock())
        self._flag = Semaphore(0)

    def __getstate__(self):
        return (self._cond, self._flag)

    def __setstate__(self, s):
        self._cond, self._flag = s

    def is_set(self):
        with self._cond:
            if self._flag.acquire(False):
                self._flag.release()
                return True
            return False

    def set(self):
        with self._cond:
            self._flag.acquire(False)
            self._flag.release()
            self._cond.notify_all()

    def clear(self):
        with self._cond:
            self._flag.acquire(False)

    def wait(self, timeout=None):
        with self._cond:
            if self._flag.acquire(False):
                self._flag.release()
            else:
                self._cond.wait(timeout)
            if self._flag.acquire(False):
                self._flag.release()
                return True
            return False

    def __repr__(self):
        return f"<{type(self).__qualname__} at {id(self):#x} {'set' if self.is_set() else 'unset'}>"


class _Cell:
    """One value shared by processes on any node: the only message of a channel of capacity 1.
    Taking the message is holding the value; every access puts it back."""

    def __init__(self, data=None, _ch=None):
        if _ch is not None:
            self._ch = _ch
        else:
            self._ch = _new_channel(1, max(8, len(data)))
            self._ch.send(data, timeout=0)

    def __reduce__(self):
        return (_rebuild_cell, (self._ch.desc(),))

    def get(self):
        b = self._ch.recv()
        self._ch.send(b, timeout=0)
        return b

    def update(self, fn):
        b = self._ch.recv()
        new = b
        try:
            new = fn(b)
        finally:
            self._ch.send(new, timeout=0)
        return new


def _rebuild_cell(desc):
    _fabric.ensure()
    return _Cell(_ch=_C.channel_attach(desc))


class Barrier(threading.Barrier):
    """threading.Barrier with its state (state, count) in a shared cell and a dragon Condition."""

    def __init__(self, parties, action=None, timeout=None):
        if parties < 1:
            raise ValueError("parties must be > 0")
        self.__setstate__((parties, action, timeout, Condition(), _Cell(struct.pack("ii", 0, 0))))

    def __setstate__(self, state):
        (self._parties, self._action, self._timeout, self._cond, self._cell) = state

    def __getstate__(self):
        return (self._parties, self._action, self._timeout, self._cond, self._cell)

    @property
    def _state(self):
        return struct.unpack("ii", self._cell.get())[0]

    @_state.setter
    def _state(self, value):
        self._cell.update(lambda b: struct.pack("ii", value, struct.unpack("ii", b)[1]))

    @property
    def _count(self):
        return struct.unpack("ii", self._cell.get())[1]

    @_count.setter
    def _count(self, value):
        self._cell.update(lambda b: struct.pack("ii", struct.unpack("ii", b)[0], value))


# ---- queues ---------------------------------------------------------------------------------

_queues = weakref.WeakSet()


class Queue:
    """multiprocessing.Queue on one channel of local services.

    A put never blocks on an unbounded queue: what the channel cannot take yet waits in this
    process's buffer and a feeder thread moves it on (CPython's design, started only when the
    channel is full). A bounded queue's put waits for room in the channel itself."""

    def __init__(self, maxsize=0, *, ctx=None, _state=None):
        if _state is not None:
            self.__setstate__(_state)
            return
        if maxsize <= 0:
            maxsize = _UNBOUNDED
        self._maxsize = maxsize
        cap = maxsize if maxsize < 4096 else 1024
        self._ch = _new_channel(cap, 512)
        self._setup()

    def _setup(self):
        self._closed = False
        self._buffer = collections.deque()
        self._notempty = threading.Condition(threading.Lock())
        self._thread = None
        self._joincancelled = False
        self._opid = os.getpid()
        _queues.add(self)

    def __getstate__(self):
        return (self._ch.desc(), self._maxsize)

    def __setstate__(self, state):
        desc, self._maxsize = state
        _fabric.ensure()
        self._ch = _C.channel_attach(desc)
        self._setup()

    def __reduce__(self):
        return (_rebuild_queue, (type(self), self.__getstate__()))

    def _check_closed(self):
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")

    @property
    def _reader(self):
        """Something multiprocessing.connection.wait can wait on: ready when a get would not block."""
        return _Readable(self._ch)

    def put(self, obj, block=True, timeout=None):
        self._check_closed()
        try:
            parts = _dumps_parts(obj)
        except Exception as e:
            # CPython's feeder thread reports an object that does not pickle and drops it; the
            # queue goes on. Ours pickles at once: the same report, from put.
            self._on_queue_feeder_error(e, obj)
            return
        self._put_parts(parts, block, timeout)

    @staticmethod
    def _on_queue_feeder_error(e, obj):
        """Called with the exception of an object put that does not pickle (a subclass may
        override it, as with CPython's Queue); prints the traceback."""
        import traceback
        traceback.print_exc()

    def _put_parts(self, parts, block, timeout):
        if self._maxsize < _UNBOUNDED:
            try:
                self._ch.send(parts, timeout=(0 if not block else timeout))
            except (_C.DragonTimeoutError, _C.DragonWouldBlock):
                raise _queue.Full from None
            return
        with self._notempty:
            if not self._buffer:
                try:
                    self._ch.send(parts, timeout=0)
                    return
                except (_C.DragonWouldBlock, _C.DragonTimeoutError):
                    pass
            self._buffer.append(parts)
            if self._thread is None:
                self._start_thread()
            self._notempty.notify()

    def _start_thread(self):
        self._thread = threading.Thread(target=self._feed, name="QueueFeederThread", daemon=True)
        self._thread.start()

    def _feed(self):
        while True:
            with self._notempty:
                while not self._buffer:
                    if self._closed:
                        return
                    self._notempty.wait()
                parts = self._buffer[0]
            if parts is None:
                return
            try:
                self._ch.send(parts)
            except Exception as e:
                if _gone(e):
                    return
                import traceback
                traceback.print_exc()
            with self._notempty:
                self._buffer.popleft()
                self._notempty.notify_all()

    def get(self, block=True, timeout=None):
        self._check_closed()
        if not block:
            timeout = 0
        elif timeout is not None and timeout < 0:
            timeout = 0
        try:
            m = self._ch.recv(timeout, True)
        except (_C.DragonTimeoutError, _C.DragonWouldBlock):
            raise _queue.Empty from None
        return _loads(m)

    def qsize(self):
        return self._ch.count()[0] + len(self._buffer)

    def empty(self):
        return not self._buffer and not self._ch.poll(_C.POLLIN, 0)

    def full(self):
        if self._maxsize >= _UNBOUNDED:
            return False
        return not self._ch.poll(_C.POLLOUT, 0)

    def get_nowait(self):
        return self.get(False)

    def put_nowait(self, obj):
        return self.put(obj, False)

    def close(self):
        with self._notempty:
            self._closed = True
            self._notempty.notify_all()

    def join_thread(self):
        assert self._closed, f"Queue {self!r} not closed"
        if self._thread is not None and not self._joincancelled:
            self._thread.join()

    def cancel_join_thread(self):
        self._joincancelled = True

    def _flush(self):
        """At exit: what the buffer holds goes into the channel first (CPython joins its feeder)."""
        if self._thread is not None and not self._joincancelled and self._opid == os.getpid():
            with self._notempty:
                self._closed = True
                self._notempty.notify_all()
            self._thread.join()

    def __repr__(self):
        return f"<{type(self).__name__} at {id(self):#x}>"


def _rebuild_queue(cls, state):
    q = cls.__new__(cls)
    q.__setstate__(state)
    return q


class _Readable:
    """A channel seen by connection.wait: ready when it holds a message (or is gone)."""

    def __init__(self, ch):
        self._ch = ch

    def _dragon_ready(self, timeout=0.0):
        try:
            return bool(self._ch.poll(_C.POLLIN, timeout))
        except _C.DragonError:
            return True


class JoinableQueue(Queue):
    def __init__(self, maxsize=0, *, ctx=None, _state=None):
        if _state is not None:
            self.__setstate__(_state)
            return
        super().__init__(maxsize)
        self._unfinished_tasks = Semaphore(0, maxvalue=65536)
        self._cond = Condition()

    def __getstate__(self):
        return Queue.__getstate__(self) + (self._cond, self._unfinished_tasks)

    def __setstate__(self, state):
        Queue.__setstate__(self, state[:2])
        self._cond, self._unfinished_tasks = state[2:]

    def put(self, obj, block=True, timeout=None):
        self._check_closed()
        try:
            parts = _dumps_parts(obj)
        except Exception as e:
            self._on_queue_feeder_error(e, obj)
            return
        with self._cond:
            self._put_parts(parts, block, timeout)
            self._unfinished_tasks.release()

    def task_done(self):
        with self._cond:
            if not self._unfinished_tasks.acquire(False):
                raise ValueError("task_done() called too many times")
            if self._unfinished_tasks._is_zero():
                self._cond.notify_all()

    def join(self):
        with self._cond:
            if not self._unfinished_tasks._is_zero():
                self._cond.wait()


class SimpleQueue:
    """multiprocessing.SimpleQueue: one channel; _reader / _writer as Pool expects them."""

    def __init__(self, *, ctx=None, _ch=None, _strict=False):
        self._ch = _ch if _ch is not None else _new_channel(1024, 512)
        # Two handles: Pool's workers close the end they do not use.
        self._reader = Connection(self._ch, None, eof=False)
        self._writer = Connection(None, _C.channel_attach(self._ch.desc()), eof=False)
        self._writer._strict = self._strict = _strict
        self._rlock_obj = None

    @property
    def _rlock(self):
        # Pool takes it while it drains the queue at shutdown; a channel's get is atomic already.
        if self._rlock_obj is None:
            self._rlock_obj = threading.Lock()
        return self._rlock_obj

    def __reduce__(self):
        return (_rebuild_simplequeue, (self._ch.desc(), self._strict))

    def empty(self):
        return not self._reader.poll()

    def get(self):
        return self._reader.recv()

    def put(self, obj):
        self._writer.send(obj)

    def close(self):
        self._reader.close()
        self._writer.close()


def _rebuild_simplequeue(desc, strict=False):
    _fabric.ensure()
    return SimpleQueue(_ch=_C.channel_attach(desc), _strict=strict)


# ---- shared values (Value, Array) ----------------------------------------------------------------

class _SharedCtype:
    """A ctypes object whose bytes live in a shared cell; every access reads or updates them."""

    def __init__(self, ctype, init=None, _cell=None):
        self._type = ctype
        if _cell is not None:
            self._cell = _cell
        else:
            import ctypes   # loaded: ctype is one of its types
            self._cell = _Cell(bytes(init) if init is not None else bytes(ctypes.sizeof(ctype)))

    def __reduce__(self):
        # ctypes array types do not pickle: send the element type and the length.
        import ctypes
        t = self._type
        spec = (t._type_, t._length_) if issubclass(t, ctypes.Array) else (t, None)
        return (_rebuild_sharedctype, (type(self), spec, self._cell))

    def _obj(self):
        return self._type.from_buffer_copy(self._cell.get())

    def _update(self, fn):
        def upd(b):
            o = self._type.from_buffer(bytearray(b))
            fn(o)
            return bytes(o)
        self._cell.update(upd)


def _rebuild_sharedctype(cls, spec, cell):
    t, n = spec
    return cls(t * n if n is not None else t, None, cell)


class RawValueProxy(_SharedCtype):
    @property
    def value(self):
        return self._obj().value

    @value.setter
    def value(self, v):
        self._update(lambda o: setattr(o, "value", v))

    def __repr__(self):
        return f"{self._type.__name__}({self.value!r})"


class RawArrayProxy(_SharedCtype):
    def __len__(self):
        return self._type._length_

    def __getitem__(self, i):
        return self._obj()[i]

    def __setitem__(self, i, v):
        def f(o):
            o[i] = v
        self._update(f)

    def __iter__(self):
        return iter(self._obj()[:])

    @property
    def value(self):
        return self._obj().value

    @value.setter
    def value(self, v):
        self._update(lambda o: setattr(o, "value", v))

    @property
    def raw(self):
        return self._obj().raw

    @raw.setter
    def raw(self, v):
        self._update(lambda o: setattr(o, "raw", v))

    def __repr__(self):
        return f"<Array {self._obj()[:]!r}>"


class _Synchronized:
    def __init__(self, obj, lock=None):
        self._obj_ = obj
        self._lock = lock if lock is not None else RLock()
        self.acquire = self._lock.acquire
        self.release = self._lock.release

    def __reduce__(self):
        return (type(self), (self._obj_, self._lock))

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *args):
        return self._lock.__exit__(*args)

    def get_obj(self):
        return self._obj_

    def get_lock(self):
        return self._lock


class SynchronizedValue(_Synchronized):
    @property
    def value(self):
        with self._lock:
            return self._obj_.value

    @value.setter
    def value(self, v):
        with self._lock:
            self._obj_.value = v

    def __repr__(self):
        return f"<Synchronized wrapper for {self._obj_!r}>"


class SynchronizedArray(_Synchronized):
    def __len__(self):
        return len(self._obj_)

    def __getitem__(self, i):
        with self._lock:
            return self._obj_[i]

    def __setitem__(self, i, v):
        with self._lock:
            self._obj_[i] = v

    def __getslice__(self, a, b):
        return self[a:b]

    @property
    def value(self):
        with self._lock:
            return self._obj_.value

    @value.setter
    def value(self, v):
        with self._lock:
            self._obj_.value = v

    @property
    def raw(self):
        with self._lock:
            return self._obj_.raw

    @raw.setter
    def raw(self, v):
        with self._lock:
            self._obj_.raw = v


def _ctype(typecode_or_type):
    from multiprocessing.sharedctypes import typecode_to_type   # ctypes: loaded when used
    return typecode_to_type.get(typecode_or_type, typecode_or_type)


def RawValue(typecode_or_type, *args):
    t = _ctype(typecode_or_type)
    return RawValueProxy(t, t(*args))


def RawArray(typecode_or_type, size_or_initializer):
    t = _ctype(typecode_or_type)
    if isinstance(size_or_initializer, int):
        at = t * size_or_initializer
        return RawArrayProxy(at, at())
    init = list(size_or_initializer)
    at = t * len(init)
    return RawArrayProxy(at, at(*init))


def Value(typecode_or_type, *args, lock=True):
    obj = RawValue(typecode_or_type, *args)
    if lock is False:
        return obj
    if lock in (True, None):
        lock = RLock()
    if not hasattr(lock, "acquire"):
        raise AttributeError(f"{lock!r} has no method 'acquire'")
    return SynchronizedValue(obj, lock)


def Array(typecode_or_type, size_or_initializer, *, lock=True):
    obj = RawArray(typecode_or_type, size_or_initializer)
    if lock is False:
        return obj
    if lock in (True, None):
        lock = RLock()
    if not hasattr(lock, "acquire"):
        raise AttributeError(f"{lock!r} has no method 'acquire'")
    return SynchronizedArray(obj, lock)


# ---- placement ------------------------------------------------------------------------------

class Policy:
    """Where processes go: `host` (a node index or host name) and `distribution`
    ("round_robin", the default, "block" or "local"). A Policy is a context manager: processes
    started inside the `with` block follow it; Process(policy=...) sets one process's."""

    _tls = threading.local()

    def __init__(self, host=None, distribution="round_robin"):
        if distribution not in ("round_robin", "block", "local"):
            raise ValueError(f"unknown distribution {distribution!r}: round_robin, block or local")
        self.host = host
        self.distribution = distribution

    def __enter__(self):
        stack = Policy._tls.__dict__.setdefault("stack", [])
        stack.append(self)
        return self

    def __exit__(self, *a):
        Policy._tls.stack.pop()

    @staticmethod
    def current():
        stack = getattr(Policy._tls, "stack", None)
        return stack[-1] if stack else None

    def node(self):
        """The node a process started now under this policy goes to."""
        _fabric.ensure()
        n = _C.node_count()
        if self.host is not None:
            from . import native
            return native.node_of(self.host)
        if self.distribution == "local":
            return _C.node_index()
        if self.distribution == "block":
            global _block_next
            with _rr_lock:
                per = max(1, -(-cpu_count() // n))
                k = _block_next
                _block_next += 1
            return (_C.node_index() + k // per) % n
        return _next_node()

    def __repr__(self):
        return f"Policy(host={self.host!r}, distribution={self.distribution!r})"


_rr_lock = threading.Lock()
_rr_next = None
_block_next = 0


def _next_node():
    global _rr_next
    n = _C.node_count()
    with _rr_lock:
        if _rr_next is None:
            _rr_next = _C.node_index()
        k = _rr_next % n
        _rr_next += 1
    return k


# ---- processes ------------------------------------------------------------------------------

_lifeline = None   # a channel of this process that exists as long as it lives (children's parent sentinel)
_popens = weakref.WeakSet()


def _get_lifeline():
    global _lifeline
    if _lifeline is None or _lifeline[0] != os.getpid():
        _lifeline = (os.getpid(), _new_channel(1, 8))
    return _lifeline[1]


_spare = []        # (pid, in, back): channels of children that ended cleanly, for the next start
_SPARE_MAX = 16


def _start_channels():
    """A child's two channels (its pickled self in, its pid back): those of a child that ended
    cleanly if there are some (a start then asks local services for nothing but the process),
    else new ones."""
    while True:
        try:
            pid, a, b = _spare.pop()
        except IndexError:
            return _new_channel(1, 256), _new_channel(1, 64)
        if pid == os.getpid():
            return a, b


def _end_channels(a, b, clean):
    # A child that exited 0 took its message and gave its pid: both channels are empty and
    # nobody else knows them. Anything else (killed, failed, a message left) destroys them.
    if clean and len(_spare) < _SPARE_MAX:
        try:
            if a.count()[0] == 0 and b.count()[0] == 0:
                _spare.append((os.getpid(), a, b))
                return
        except _C.DragonError:
            pass
    for ch in (a, b):
        try:
            ch.destroy()
        except Exception:
            pass


_PYPATH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CHILD = ("import sys; sys.path.insert(0, sys.argv[1]); "
          "from dragon._child import main; main()")


_NO_PID = 0x7FFFFFFF


# The exitcode of a process whose node left the fabric (its local services died, or the node was
# silent past the node timeout): libdragon's DRAGON_STATUS_NODE_LOST, beyond every exit code
# (0..255) and every -N of a signal; its real end is unknown. dragon.NODE_LOST.
NODE_LOST = _C.STATUS_NODE_LOST


def _decode_status(st):
    # libdragon: the exit code, or 128 + N when signal N ended it (multiprocessing: -N), or
    # NODE_LOST (kept as it is).
    if 128 < st < 128 + 65:
        return -(st - 128)
    return st


class _DupFd:
    """A descriptor pickled for a child that gets it at the same number (CPython's spawn)."""

    def __init__(self, fd):
        self.fd = fd

    def detach(self):
        return self.fd


# ---- arguments bound to this node -------------------------------------------------------------
# A child whose arguments name something that exists only on this node runs on this node: the
# round robin would otherwise send it where the thing is missing (a listener on 127.0.0.1, an
# AF_UNIX socket, a /dev/shm segment). The scan is bounded (a few levels, a few dozen objects) so
# that it costs microseconds next to a process start; what it does not reach keeps the round robin.

_LOOPBACK_NAMES = frozenset(("localhost", "localhost.localdomain", "ip6-localhost",
                             "ip6-loopback", "::1", "0:0:0:0:0:0:0:1"))
_SCAN_DEPTH = 3
_SCAN_ITEMS = 64


def _is_loopback_host(h):
    if isinstance(h, bytes):
        try:
            h = h.decode()
        except UnicodeDecodeError:
            return False
    if not isinstance(h, str):
        return False
    return h.startswith("127.") or h.lower() in _LOOPBACK_NAMES or h.startswith("::ffff:127.")


def _bound_str(s):
    """Why the string s names something of this node only, or None: an existing AF_UNIX socket
    (a path, or the abstract name '\\0...' of this node's network namespace), or an existing
    POSIX shared memory segment (SharedMemory.name)."""
    if not s or len(s) > 4096:
        return None
    if s[0] == "\0":
        return f"the abstract AF_UNIX socket address {s!r}"
    if s[0] == "/":
        try:
            st = os.stat(s)
        except (OSError, ValueError):
            st = None
        if st is not None and _stat.S_ISSOCK(st.st_mode):
            return f"the AF_UNIX socket {s!r}"
        if s.count("/") != 1:
            return None
        s = s[1:]          # "/psm_..." as shm_open takes it
    if "/" in s or len(s) > 255 or s in (".", ".."):
        return None
    try:
        os.stat("/dev/shm/" + s)
    except (OSError, ValueError):
        return None
    return f"the shared memory segment {s!r} (/dev/shm of this node)"


def _bound_here(objs):
    """Why the objects objs (a process's target, arguments and keyword values) are bound to this
    node, or None. Looks into tuples, lists, sets, dict values and partials a few levels deep.
    Never raises: an object that fails a check (a proxy whose __class__ raises) ends the search
    with None (the round robin)."""
    try:
        return _bound_search(objs)
    except Exception:
        return None


def _bound_search(objs):
    # Only modules already imported can have made such objects: none is imported for the scan.
    shm = sys.modules.get("multiprocessing.shared_memory")
    shm_types = (shm.SharedMemory, shm.ShareableList) if shm else ()
    sock = sys.modules.get("socket")
    sock_type = sock.socket if sock else ()
    mgr = sys.modules.get("multiprocessing.managers")
    proxy_type, manager_type = (mgr.BaseProxy, mgr.BaseManager) if mgr else ((), ())
    todo = [(o, 0) for o in objs]
    seen = 0
    while todo and seen < _SCAN_ITEMS:
        o, depth = todo.pop()
        seen += 1
        t = type(o)
        if t is str:
            why = _bound_str(o)
            if why:
                return why
        elif t is tuple and 2 <= len(o) <= 4 and isinstance(o[1], int) and _is_loopback_host(o[0]):
            return f"the loopback address {o!r}"
        elif isinstance(o, shm_types):
            name = o.name if isinstance(o, shm.SharedMemory) else o.shm.name
            return f"the {t.__name__} {name!r} (/dev/shm of this node)"
        elif isinstance(o, sock_type):
            return f"a socket ({o.family.name})"
        elif isinstance(o, proxy_type):
            todo.append((o._token.address, _SCAN_DEPTH))   # the manager's address
            continue
        elif isinstance(o, manager_type):
            todo.append((o.address, _SCAN_DEPTH))
            continue
        if depth >= _SCAN_DEPTH:
            continue
        if t in (tuple, list, set, frozenset):
            todo.extend((x, depth + 1) for x in itertools.islice(o, _SCAN_ITEMS))
        elif t is dict:
            todo.extend((x, depth + 1) for x in itertools.islice(o.values(), _SCAN_ITEMS))
        elif t is functools.partial:
            todo.extend((x, depth + 1) for x in itertools.islice(o.args, _SCAN_ITEMS))
            todo.extend((x, depth + 1) for x in itertools.islice(o.keywords.values(), _SCAN_ITEMS))
    return None


class Popen:
    """How a dragon Process starts: its pickled self goes over a channel to /usr/bin/python3
    started by the fabric on the chosen node: on this node a process of ours that gets our
    descriptors (the resource tracker's, those its arguments pickled with DupFd), on another a
    group of one placed there (so it can be waited for from here)."""
    method = "dragon"

    def __init__(self, process_obj):
        _fabric.ensure()
        _mputil._flush_std_streams()
        self.returncode = None
        self.finalizer = None
        self._pid = None
        self._pid_lock = threading.Lock()
        self._pid_known = threading.Event()
        self._done = threading.Event()
        self._fds = []
        self._gid = self._puid = None
        self._to_me = False
        self._launch(process_obj)

    def duplicate_for_child(self, fd):
        # CPython's spawn does the same: the child gets the descriptor at the same number (the
        # fabric hands it over with the start request), so the child must run on this node.
        if fd not in self._fds:
            self._fds.append(fd)
        return fd

    DupFd = _DupFd

    def _launch(self, process_obj):
        prep = _mpspawn.get_preparation_data(process_obj._name)
        prep.pop("start_method", None)
        prep["start_method"] = "dragon"
        _mpctx.set_spawning_popen(self)
        try:
            try:
                body = _process_dumps(process_obj, prep)
            except Exception as e:
                what = getattr(process_obj, "_target", None)
                raise pickle.PicklingError(
                    f"cannot send process {process_obj.name!r} (target {what!r}) to its node: "
                    f"{type(e).__name__}: {e}") from e
            head = pickle.dumps(prep, protocol=5)
        finally:
            _mpctx.set_spawning_popen(None)
        policy = getattr(process_obj, "_dragon_policy", None) or Policy.current() or Policy()
        here = _C.node_index()
        self.bound = None    # why it must run on this node (None: anywhere)
        if self._fds:
            # Its arguments hold file descriptors (a sharedctypes heap, a socket...): it starts
            # on this node, where they exist.
            self.bound = f"file descriptors {self._fds}"
            node = policy.node() if policy.host is not None else here
            if node != here:
                raise ValueError(
                    f"process {process_obj.name!r} is given file descriptors (descriptors "
                    f"{self._fds}, e.g. multiprocessing.sharedctypes objects), which exist only "
                    f"on this node ({here}), but its policy {policy!r} places it on node {node}")
        elif policy.host is not None or policy.distribution == "local" or _C.node_count() == 1:
            node = policy.node()    # a host named by the caller wins (see docs/python.md)
        else:
            # Arguments that name something of this node only (a loopback address, an AF_UNIX
            # socket, a /dev/shm segment): this node, whatever the round robin says.
            self.bound = _bound_here((process_obj._target, *process_obj._args,
                                      *process_obj._kwargs.values()))
            node = here if self.bound else policy.node()
        self.node = node
        tracker_fd = -1
        if node == here:
            # As with spawn, a child on this node shares our resource tracker.
            from multiprocessing import resource_tracker
            try:
                tracker_fd = resource_tracker.getfd()
            except Exception:
                tracker_fd = -1
            if tracker_fd is not None and tracker_fd >= 0 and tracker_fd not in self._fds:
                self._fds.append(tracker_fd)
        self._in, self._back = _start_channels()
        self._in.send([struct.pack("<Q", len(head)), head, body])
        env = [f"{k}={v}" for k, v in os.environ.items()
               if not k.startswith("DRAGON_") or k.startswith("PYDRAGON_") or k in _PASS_ENV]
        exe = _mpspawn.get_executable()
        argv = [exe, "-c", _CHILD, _PYPATH, self._in.desc().hex(), self._back.desc().hex(),
                _get_lifeline().desc().hex(), str(tracker_fd if tracker_fd is not None else -1)]
        # outlive: as with CPython, a child outlives a parent that dies (its grandchildren
        # notice through parent_process()); the fabric's end still stops it. A parent that exits
        # normally terminates its daemonic children and joins the others (multiprocessing's atexit).
        if node == here:
            # On this node: a process of ours, which can take our descriptors.
            out = []
            if _fabric.out_by_fds():
                # no output sink for our children: ours, as descriptors (see _fabric.ensure)
                try:
                    out.append(os.dup(1))
                    out.append(os.dup(2))
                    env.append(f"PYDRAGON_OUTFDS={out[0]},{out[1]}")
                except OSError:   # no stdout or stderr here: the child has none either
                    _close_fds(*out)
                    out = []
            try:
                self._puid = _C.process_create(argv, env=env, outlive=True,
                                               fds=self._fds + out)
            finally:
                _close_fds(*out)
        else:
            # On another node: a group of one placed there, so it can be waited for from here.
            # Joined from outside, we are no output sink of local services: its output comes
            # to us (and a thread of ours writes it to sys.stdout/sys.stderr).
            self._to_me = _fabric.output_to_me()
            self._gid = _C.group_create(argv, 1, _C.POLICY_NODE, node, env=env, outlive=True,
                                        output_to_me=self._to_me)
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        self.sentinel = self._r
        self._waiter = threading.Thread(target=self._wait_thread, name=f"dragon-wait-{process_obj.name}",
                                        daemon=True)
        self._waiter.start()
        # weakref.finalize, not multiprocessing's registry: the waiter thread holds this object
        # until the child ends, and multiprocessing expects its registry to empty before that.
        self.finalizer = weakref.finalize(self, _close_fds, self._r, self._w)
        _popens.add(self)

    def _wait_thread(self):
        # First the child's pid (it reports it once it runs; on another node that is the only
        # way to learn it), unless it ends before; then its end.
        while self._pid is None:
            self._read_pid(0.2)
            if self._pid is None:
                try:
                    self._wait_status(0)
                    break
                except (_C.DragonTimeoutError, _C.DragonWouldBlock):
                    continue
                except _C.DragonError:
                    break
        self._pid_known.set()
        try:
            st = self._wait_status(None)
            rc = _decode_status(st)
        except _C.DragonPeerError:
            rc = NODE_LOST  # its node left the fabric: it is not running
        except Exception:
            rc = -signal.SIGKILL  # the fabric lost it otherwise: it is not running
        self._read_pid(0)  # before its channel goes
        if self._to_me:
            _fabric.flush_output()  # what it printed is written before join() returns
        # Its channels go first: a join() returns when this thread is all but done (tests that
        # count threads right after a join see it gone).
        _end_channels(self._in, self._back, rc == 0)
        _fabric.drain_relay()  # its last output before our next line (private fabric)
        self.returncode = rc
        self._done.set()
        try:
            os.write(self._w, b"x")
        except OSError:
            pass

    def _wait_status(self, timeout):
        if self._gid is not None:
            return _C.group_wait_all(self._gid, timeout)
        return _C.process_wait(self._puid, timeout)

    def _read_pid(self, timeout):
        with self._pid_lock:
            if self._pid is None:
                try:
                    self._pid = struct.unpack("<q", self._back.recv(timeout))[0]
                except (_C.DragonError, ValueError):
                    pass

    @property
    def pid(self):
        """The child's OS pid (on its node), which it reports when it starts."""
        if self._pid is None and self.node == _C.node_index():
            # On this node local services know it at once (also if it died before reporting).
            try:
                for e in _C.process_list():
                    if (e[5] == self._gid) if self._gid is not None else (e[0] == self._puid):
                        self._pid = e[1]
                        break
            except _C.DragonError:
                pass
        if self._pid is None:
            self._pid_known.wait()
        if self._pid is None:
            # Ended on another node before it could report: a number no process can have
            # (above the kernel's pid_max limit), so os.kill on it fails harmlessly (ESRCH).
            return _NO_PID
        return self._pid

    def poll(self, flag=os.WNOHANG):
        if self.returncode is None and not flag & os.WNOHANG:
            self._done.wait()
        return self.returncode

    def wait(self, timeout=None):
        if self.returncode is None:
            self._done.wait(timeout)
        return self.returncode

    def _send_signal(self, sig):
        if self.returncode is None:
            try:
                if self._gid is not None:
                    _C.group_signal(self._gid, sig)
                else:
                    _C.process_signal(self._puid, sig)
            except _C.DragonError:
                pass  # it ended meanwhile

    def terminate(self):
        self._send_signal(signal.SIGTERM)

    def kill(self):
        self._send_signal(signal.SIGKILL)

    def interrupt(self):
        self._send_signal(signal.SIGINT)

    def close(self):
        if self.finalizer is not None:
            self.finalizer()


# What a child needs to join: LS sets the fabric's own DRAGON_* variables; these pass through.
_PASS_ENV = ("DRAGON_LAUNCHER", "DRAGON_DEBUG", "DRAGON_STARTUP_TIMEOUT")


def _close_fds(*fds):
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


# ---- the context ------------------------------------------------------------------------------

def cpu_count():
    """The CPUs Slurm granted the job on all its nodes (SLURM_JOB_CPUS_PER_NODE), else this
    node's allowed CPUs times the fabric's nodes."""
    spec = os.environ.get("SLURM_JOB_CPUS_PER_NODE")
    if spec:
        total = 0
        try:
            for part in spec.split(","):
                if "(x" in part:
                    c, _, r = part.partition("(x")
                    total += int(c) * int(r.rstrip(")"))
                else:
                    total += int(part)
            if total > 0:
                return total
        except ValueError:
            pass
    _fabric.ensure()
    return len(os.sched_getaffinity(0)) * max(1, _C.node_count())


def _pool_class():
    """DragonPool: multiprocessing.pool.Pool (imported here, at the first Pool) whose workers are
    dragon processes spread over the nodes."""
    global DragonPool
    if "DragonPool" in globals():
        return DragonPool
    import multiprocessing.pool as _mppool

    class DragonPool(_mppool.Pool):
        """multiprocessing.pool.Pool whose workers are dragon processes spread over the nodes."""

        def __init__(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None,
                     context=None):
            super().__init__(processes, initializer, initargs, maxtasksperchild,
                             _PoolContext(context or _context))

        def _setup_queues(self):
            # Tasks may carry lambdas and __main__ functions (pickled by value); results go back
            # as CPython sends them, so one that does not pickle is a MaybeEncodingError.
            self._inqueue = SimpleQueue()
            self._outqueue = SimpleQueue(_strict=True)
            self._quick_put = self._inqueue._writer.send
            self._quick_get = self._outqueue._reader.recv
    DragonPool.__qualname__ = "DragonPool"
    _mppool.wait = wait
    return DragonPool


class _PoolNotifier:
    """A Pool's change notifier (CPython's is a SimpleQueue of its context): it only wakes the
    pool's own worker-handler thread, so a pipe of this process does, which wakes wait() at once
    (a channel among descriptors is polled there: close() and join() would wait for the poll)."""

    def __init__(self):
        self._reader, self._w = os.pipe()
        os.set_blocking(self._reader, False)
        os.set_blocking(self._w, False)
        weakref.finalize(self, _close_fds, self._reader, self._w)

    def put(self, obj):
        try:
            os.write(self._w, b"\0")
        except (BlockingIOError, OSError):
            pass   # full of wake-ups already, or closed at exit

    def get(self):
        try:
            os.read(self._reader, 4096)
        except (BlockingIOError, OSError):
            pass

    def empty(self):
        import select
        try:
            return not select.select([self._reader], [], [], 0)[0]
        except (OSError, ValueError):
            return True


class _PoolContext:
    """The context a DragonPool works with: the dragon context, but its change notifier is a
    _PoolNotifier (Pool.__init__ asks its context for it)."""

    def __init__(self, ctx):
        self._ctx = ctx

    def SimpleQueue(self):
        return _PoolNotifier()

    def __getattr__(self, name):
        return getattr(self._ctx, name)


def __getattr__(name):
    if name == "DragonPool":
        return _pool_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class DragonContext(_mpctx.BaseContext):
    _name = "dragon"
    _dragon = True   # what dragon._startmethod's dispatching looks for
    Process = DragonProcess

    def cpu_count(self):
        return cpu_count()

    def Pipe(self, duplex=True):
        return Pipe(duplex)

    def Lock(self):
        return Lock()

    def RLock(self):
        return RLock()

    def Condition(self, lock=None):
        return Condition(lock)

    def Semaphore(self, value=1):
        return Semaphore(value)

    def BoundedSemaphore(self, value=1):
        return BoundedSemaphore(value)

    def Event(self):
        return Event()

    def Barrier(self, parties, action=None, timeout=None):
        return Barrier(parties, action, timeout)

    def Queue(self, maxsize=0):
        return Queue(maxsize)

    def JoinableQueue(self, maxsize=0):
        return JoinableQueue(maxsize)

    def SimpleQueue(self):
        return SimpleQueue()

    def Pool(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None):
        if processes is None:
            processes = cpu_count()
        return _pool_class()(processes, initializer, initargs, maxtasksperchild, context=self)

    def RawValue(self, typecode_or_type, *args):
        return RawValue(typecode_or_type, *args)

    def RawArray(self, typecode_or_type, size_or_initializer):
        return RawArray(typecode_or_type, size_or_initializer)

    def Value(self, typecode_or_type, *args, lock=True):
        return Value(typecode_or_type, *args, lock=lock)

    def Array(self, typecode_or_type, size_or_initializer, *, lock=True):
        return Array(typecode_or_type, size_or_initializer, lock=lock)

    def Manager(self):
        from multiprocessing.managers import SyncManager
        _fabric.ensure()
        m = SyncManager(ctx=self.get_context())  # its start() picks TCP with several nodes
        m.start()
        return m


_context = DragonContext()


class _NoLimit:
    """The semaphore of an unbounded CPython Queue: puts never wait."""

    def acquire(self, block=True, timeout=None):
        return True

    def release(self):
        pass

    @property
    def _semlock(self):
        return self

    def _is_zero(self):
        return False


_orig_queue_init = None   # multiprocessing.queues' own, once something imports it


def _queue_init(self, maxsize=0, *, ctx):
    """CPython's multiprocessing.queues.Queue (and subclasses such as concurrent.futures'
    call queue) built with the dragon context: its pipe is one of our channels, its locks ours."""
    if not getattr(ctx, "_dragon", False):   # DragonContext, or the entry that loads it
        return _orig_queue_init(self, maxsize, ctx=ctx)
    from multiprocessing.synchronize import SEM_VALUE_MAX
    unbounded = maxsize <= 0 or maxsize >= SEM_VALUE_MAX
    self._maxsize = SEM_VALUE_MAX if unbounded else maxsize
    ch = _new_channel(1024, 512)
    self._reader = Connection(ch, None, eof=False)
    self._writer = Connection(None, _C.channel_attach(ch.desc()), eof=False)
    self._rlock = Lock()
    self._opid = os.getpid()
    self._wlock = Lock()
    self._sem = _NoLimit() if unbounded else BoundedSemaphore(maxsize)
    self._ignore_epipe = False
    self._reset()
    _mputil.register_after_fork(self, sys.modules["multiprocessing.queues"].Queue._after_fork)




def _patch_queues(mod):
    global _orig_queue_init
    if mod.Queue.__init__ is not _queue_init:
        _orig_queue_init, mod.Queue.__init__ = mod.Queue.__init__, _queue_init


_startmethod.after_import("multiprocessing.queues", _patch_queues)


_orig_manager_start = None   # multiprocessing.managers' own, once something imports it


def _manager_start(self, initializer=None, initargs=()):
    """BaseManager.start with the dragon context: the server's address comes back over a
    dragon pipe (CPython's passes a file descriptor, which cannot reach another node)."""
    if not getattr(self._ctx, "_dragon", False):
        return _orig_manager_start(self, initializer, initargs)
    State = sys.modules["multiprocessing.managers"].State
    if self._state.value != State.INITIAL:
        if self._state.value == State.STARTED:
            raise multiprocessing.ProcessError("Already started server")
        if self._state.value == State.SHUTDOWN:
            raise multiprocessing.ProcessError("Manager has shut down")
        raise multiprocessing.ProcessError(f"Unknown state {self._state.value!r}")
    if initializer is not None and not callable(initializer):
        raise TypeError("initializer must be a callable")
    _fabric.ensure()
    if self._address is None and _C.node_count() > 1:
        # AF_UNIX, CPython's default, only reaches this node: listen on TCP instead.
        self._address = (_node_address(), 0)
    reader, writer = Pipe(duplex=False)
    self._process = self._ctx.Process(
        target=type(self)._run_server,
        args=(self._registry, self._address, self._authkey, self._serializer, writer,
              initializer, initargs))
    ident = ":".join(str(i) for i in self._process._identity)
    self._process.name = type(self).__name__ + "-" + ident
    with Policy(distribution="local"):   # the server lives beside its owner
        self._process.start()
    writer.close()
    self._address = reader.recv()
    reader.close()
    self._state.value = State.STARTED
    self.shutdown = _mputil.Finalize(
        self, type(self)._finalize_manager,
        args=(self._process, self._address, self._authkey, self._state, self._Client,
              self._shutdown_timeout),
        exitpriority=0)




def _patch_managers(mod):
    global _orig_manager_start
    if mod.BaseManager.start is not _manager_start:
        _orig_manager_start, mod.BaseManager.start = mod.BaseManager.start, _manager_start


_startmethod.after_import("multiprocessing.managers", _patch_managers)


def _node_address():
    """An IPv4 address of this node that other nodes reach (the one its default route uses)."""
    import socket
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.254", 9))   # no packet is sent: this only picks a route
            return s.getsockname()[0]
    except OSError:
        pass
    # No default route (a cluster's private network): the first interface with an IPv4 address.
    import fcntl
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            if name == "lo":
                continue
            try:
                req = struct.pack("256s", name[:15].encode())
                return socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, req)[20:24])  # SIOCGIFADDR
            except OSError:
                continue
    return socket.gethostbyname(socket.gethostname())


def register():
    """Make "dragon" a start method of multiprocessing (set_start_method / get_context)."""
    _startmethod.install()
    ctxs, dflt = _mpctx._concrete_contexts, _mpctx._default_context
    if ctxs.get("dragon") is _startmethod._PENDING:
        ctxs["dragon"] = _context
    if dflt._actual_context is _startmethod._PENDING:
        dflt._actual_context = _context
    return _context


def _shutdown():
    """At exit: flush queue buffers, then multiprocessing's own exit work (join children)."""
    for q in list(_queues):
        try:
            q._flush()
        except Exception:
            pass
    for c in list(_live_conns):
        try:
            if not c._closed:
                c.close()
        except Exception:
            pass
    try:
        _mputil._exit_function()
    except Exception:
        pass


# Importing dragon.mp makes "dragon" a start method (dragon._startmethod loads it on first use).
register()
