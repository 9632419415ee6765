"""dragon.jupyter._output: worker output into the notebook cell that started the worker (a fabric channel from any node to the kernel)."""
import io
import os
import pickle
import sys
import threading

from .. import _core

# A message on the output channel: a pickled (cell key, worker label, stream, text). Workers send
# with deposited=True: a send returns once the text is in the kernel's channel, so anything the
# worker does afterwards (return a map result, exit) comes after its output.


class _ChannelStream(io.TextIOBase):
    """A worker's sys.stdout / sys.stderr: text goes to the kernel's output channel by lines
    (or at flush), tagged with the cell and the worker, so that every node's output lands in order
    in the cell that started the worker."""

    def __init__(self, ch, key, label, name, fallback):
        super().__init__()
        self._ch = ch
        self._key = key
        self._label = label
        self._name = name
        self._fallback = fallback   # the process's own stream, when the kernel is gone
        self._buf = []
        self._lock = threading.Lock()

    @property
    def encoding(self):
        return "utf-8"

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        # subprocess and faulthandler want a descriptor: the original one (what a worker on
        # another node writes there comes to the kernel's sys.stdout through local services,
        # in the cell running then; see docs/jupyter.md).
        return self._fallback.fileno()

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        with self._lock:
            self._buf.append(s)
            nl = "\n" in s
        if nl:
            self.flush()
        return len(s)

    def flush(self):
        with self._lock:
            text = "".join(self._buf)
            self._buf.clear()
            if not text:
                return
            try:
                self._ch.send(pickle.dumps((self._key, self._label, self._name, text)),
                              deposited=True)
            except Exception:
                try:
                    self._fallback.write(text)
                    self._fallback.flush()
                except Exception:
                    pass


def _install(desc_hex, key, label):
    """Run in the worker while its Process object is unpickled (before its target runs)."""
    try:
        ch = _core.channel_attach(bytes.fromhex(desc_hex))
    except Exception:
        return None  # the kernel is gone: the worker keeps its own streams
    import atexit
    out = _ChannelStream(ch, key, label, "stdout", sys.__stdout__)
    err = _ChannelStream(ch, key, label, "stderr", sys.__stderr__)
    sys.stdout, sys.stderr = out, err
    atexit.register(out.flush)
    atexit.register(err.flush)
    return None


def _cwd(path):
    """The directory a worker starts in: the kernel's, when this node has it; else the home
    directory (a notebook in a node-local directory, such as a node's /tmp, must not make every
    worker on the other nodes fail in multiprocessing's chdir)."""
    if os.path.isdir(path):
        return path
    return os.path.expanduser("~") if os.path.isdir(os.path.expanduser("~")) else "/"


class Cwd:
    """The kernel's working directory in a worker's preparation data, resolved on its node."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (_cwd, (self.path,))


class Sink:
    """Set on a Process object before it is pickled: unpickling it in the worker installs the
    streams above (no change to how the worker starts)."""

    def __init__(self, desc_hex, key, label):
        self.args = (desc_hex, key, label)

    def __reduce__(self):
        return (_install, self.args)


class Relay:
    """The kernel's side: one channel that workers of every node send to; a thread hands each
    message to deliver(key, label, stream, text); drain() delivers what has arrived, now."""

    def __init__(self, deliver):
        self._deliver = deliver
        # The geometry of a multiprocessing Queue's channel (longer texts go as pool allocations).
        self._ch = _core.channel_create(capacity=1024, block_size=512)
        self.desc_hex = self._ch.desc().hex()
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="dragon-jupyter-output",
                                        daemon=True)
        self._thread.start()

    def _take(self, timeout):
        try:
            msg = self._ch.recv(timeout)
        except (_core.DragonTimeoutError, _core.DragonWouldBlock):
            return False
        try:
            key, label, name, text = pickle.loads(msg)
        except Exception:
            return True
        try:
            self._deliver(key, label, name, text)
        except Exception:
            pass
        return True

    def _loop(self):
        while not self._stop:
            with self._lock:
                try:
                    self._take(0.1)
                except _core.DragonError:
                    return

    def drain(self):
        """Deliver every message already in the channel (before a cell's reply)."""
        with self._lock:
            try:
                while self._take(0):
                    pass
            except _core.DragonError:
                pass

    def close(self):
        self._stop = True
        self._thread.join(2)
        try:
            self._ch.destroy()
        except Exception:
            pass
