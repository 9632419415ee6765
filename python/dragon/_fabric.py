"""dragon._fabric: join the fabric this process runs in, or start a private one-node fabric."""
import atexit
import itertools
import os
import select
import sys
import threading
import time

from . import _config, _core

_lock = threading.RLock()
_joined = False
_pid = None          # the process that joined (a forked child must join again)
_private = None      # subprocess.Popen of the `dragon --local` keeping a private fabric

# The private fabric's first process: it makes the output FIFOs (_start_relay) in the fabric's
# runtime directory, reports the fabric's environment on its stdout (the launcher forwards it to
# us) and keeps the fabric up until its stdin, our pipe, closes, however we end (SIGKILL too);
# then it removes the FIFOs, so the fabric's end removes its directory whole.
_KEEPER = ('o="$DRAGON_RUNTIME_DIR/py-out" e="$DRAGON_RUNTIME_DIR/py-err"; '
           'trap \'rm -f "$o" "$e"; exit 1\' HUP INT TERM; mkfifo -m 600 "$o" "$e"; '
           'env | grep "^DRAGON_"; echo "DRAGON_KEEPER_END"; cat >/dev/null; rm -f "$o" "$e"')
# What a process joining from outside takes from the keeper's environment (not its identity).
_TAKE = ("DRAGON_LS_SOCKET", "DRAGON_RUNTIME_DIR", "DRAGON_FABRIC_ID", "DRAGON_NODE_INDEX",
         "DRAGON_NODE_COUNT", "DRAGON_TA_INFO")


def launcher():
    """The `dragon` launcher this package goes with (DRAGON_LAUNCHER overrides)."""
    env = os.environ.get("DRAGON_LAUNCHER")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    build = getattr(_config, "BUILD_LAUNCHER", "")
    if build and here == os.path.join(_config.BUILD_ROOT, "python", "dragon") and os.access(build, os.X_OK):
        return build
    return _config.LAUNCHER


def _start_private():
    global _private
    prog = launcher()
    if not os.access(prog, os.X_OK):
        raise FileNotFoundError(f"dragon: cannot start a private fabric: launcher {prog!r} "
                                "not found (set DRAGON_LAUNCHER)")
    # A session of its own: the terminal's Ctrl-C reaches this program, which tears the fabric
    # down at exit, rather than the fabric under it.
    import subprocess  # only a process that starts a private fabric needs it (not a child)
    p = subprocess.Popen([prog, "--local", "/bin/sh", "-c", _KEEPER], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, start_new_session=True, close_fds=True)
    env = {}
    buf = b""
    deadline = time.monotonic() + float(os.environ.get("DRAGON_STARTUP_TIMEOUT", "30"))
    fd = p.stdout.fileno()
    while b"DRAGON_KEEPER_END\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or p.poll() is not None:
            _stop(p)
            raise ConnectionError(f"dragon: the private fabric did not start ({prog} --local "
                                  f"exited with {p.returncode})" if p.returncode is not None
                                  else "dragon: the private fabric did not start in time")
        r, _, _ = select.select([fd], [], [], min(left, 0.5))
        if r:
            chunk = os.read(fd, 65536)
            if not chunk:
                p.wait(5)
                continue
            buf += chunk
    for line in buf.decode().splitlines():
        k, _, v = line.partition("=")
        if k in _TAKE:
            env[k] = v
    os.environ.update(env)
    try:
        _start_relay()
    except (KeyError, OSError) as e:
        _stop(p)
        raise ConnectionError(f"dragon: the private fabric's output FIFOs are missing in its "
                              f"runtime directory ({e}); is {prog} from this build?") from e
    _private = p


_relay = None  # [(fifo fd, our fd)] of the output relay
# Our children on this node get our stdout/stderr as descriptors (PYDRAGON_OUTFDS): set when
# local services have no output sink for this process's children.
_out_by_fds = False


def out_by_fds():
    return _out_by_fds


def _start_relay():
    """Processes started by a process the fabric did not start have no output sink in local
    services: in a private fabric they write into two FIFOs (the keeper's, in the fabric's
    runtime directory) that a thread of ours copies to our stdout and stderr (their lines land
    where this program's own output goes, in order)."""
    global _relay
    d = os.environ["DRAGON_RUNTIME_DIR"]
    pairs = []
    for name, ours in (("out", 1), ("err", 2)):
        path = os.path.join(d, "py-" + name)
        # read-write: never EOF while we live; non-blocking: drain_relay may empty it between
        # the relay thread's select and its read
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NONBLOCK)
        pairs.append((fd, ours))
        os.environ["PYDRAGON_STD" + name.upper()] = path
    _relay = pairs
    t = threading.Thread(target=_relay_loop, args=(pairs,), name="dragon-output", daemon=True)
    t.start()


_relay_lock = threading.Lock()  # one copier at a time: the relay thread or drain_relay


def _relay_loop(pairs):
    fds = {src: dst for src, dst in pairs}
    while True:
        try:
            r, _, _ = select.select(list(fds), [], [])
            with _relay_lock:
                for src in r:
                    _copy(src, fds[src])
        except (OSError, ValueError):
            return


def drain_relay():
    """Copy what the relay's FIFOs hold now: a child that ended wrote its last lines before it
    ended, so they reach our stdout/stderr before anything we print after join(), as with a
    shared stdout."""
    pairs = _relay
    if pairs is None:
        return
    with _relay_lock:
        for src, dst in pairs:
            try:
                while _copy(src, dst):
                    pass
            except OSError:
                pass


def _copy(src, dst):
    """Copy one read's worth; False when there was nothing to read."""
    try:
        data = os.read(src, 65536)
    except BlockingIOError:
        return False
    if not data:
        return False
    while data:
        try:
            n = os.write(dst, data)
        except OSError:
            return True
        data = data[n:]
    return True


def _stop_relay():
    global _relay
    if _relay is None:
        return
    drain_relay()  # what is left in the FIFOs, then close them (the keeper removes them)
    with _relay_lock:
        pairs, _relay = _relay, None
        for src, _ in pairs:
            try:
                os.close(src)
            except OSError:
                pass


_output = None   # the thread copying the output local services send us (start_output)
_output_pid = None


def start_output():
    """Processes we start on other nodes (and what they start) send their output to us: local
    services of this node put their lines on our output connection and a thread of ours writes
    each, whole, to sys.stdout or sys.stderr (for a process that joined from outside, which has no
    output sink in local services; see out_by_fds)."""
    global _output, _output_pid
    if _output is not None and _output_pid == os.getpid() and _output.is_alive():
        return
    with _lock:
        if _output is not None and _output_pid == os.getpid() and _output.is_alive():
            return
        t = threading.Thread(target=_output_loop, name="dragon-remote-output", daemon=True)
        t.start()
        _output, _output_pid = t, os.getpid()


def _output_loop():
    while True:
        try:
            lines = _core.output_recv(None)
        except Exception:   # dragon_finalize closed the connection, or local services left
            return
        # What came together is written together (one write and flush per stream and run):
        # whole lines, between our own and those our children on this node write to the same
        # descriptors.
        for stream, run in itertools.groupby(lines, key=lambda ln: ln[0]):
            out = sys.stdout if stream == 1 else sys.stderr
            try:
                enc = getattr(out, "encoding", None) or "utf-8"
                out.write(b"".join(ln[1] for ln in run).decode(enc, "replace"))
                out.flush()
            except Exception:   # no stdout (closed, None): the lines are lost, as the child's
                pass


def output_to_me():
    """Whether what we start should send its output to us, through local services: we joined from
    outside, so they have no output sink for us. Starts the thread that writes it out."""
    if not _out_by_fds:
        return False
    start_output()
    return True


def flush_output(timeout=5.0):
    """Once a child ended: its output is all written (see dragon_output_flush)."""
    if _output is None or _output_pid != os.getpid() or not _output.is_alive():
        return
    try:
        _core.output_flush(timeout)
    except Exception:
        pass


def _stop_output():
    global _output
    t, _output = _output, None
    if t is not None and _output_pid == os.getpid():
        t.join(2.0)    # it ends once finalize closed its connection: its last lines are written


def _stop(p):
    import subprocess
    try:
        p.stdin.close()
    except OSError:
        pass
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()  # by its pid; its local services follow it (they watch the control connection)
        p.wait()
    try:
        p.stdout.close()
    except OSError:
        pass


def ensure():
    """Join the fabric (once per process); start a private one if there is none."""
    global _joined, _pid
    if _joined and _pid == os.getpid():
        return
    with _lock:
        if _joined and _pid == os.getpid():
            return
        if _joined:      # a fork() of a joined process: its connections are the parent's
            _joined = False
        if not os.environ.get("DRAGON_LS_SOCKET") and not os.environ.get("DRAGON_RUNTIME_DIR"):
            _start_private()
        _core.init()
        global _out_by_fds
        if _relay is None and _core.puid() == 0:
            # Joined from outside (a subprocess of a fabric's program, an srun task): what our
            # children print has no sink in local services. Children on this node get our
            # stdout/stderr as descriptors (as CPython's children inherit them), not the FIFOs
            # of whoever made the fabric (PYDRAGON_STD* we inherited).
            _out_by_fds = True
            os.environ.pop("PYDRAGON_STDOUT", None)
            os.environ.pop("PYDRAGON_STDERR", None)
        _joined = True
        _pid = os.getpid()
        atexit.register(_atexit)


def joined():
    return _joined and _pid == os.getpid()


def private():
    """True if this process started the fabric it uses (a private one-node fabric)."""
    return _private is not None


def _atexit():
    global _joined, _private
    if not (_joined and _pid == os.getpid()):
        return
    # Children first: leaving the fabric releases what this process owns (channels, processes).
    mp = sys.modules.get(__package__ + ".mp")   # not loaded: nothing of it to end
    if mp is not None:
        try:
            mp._shutdown()
        except Exception:
            pass
    flush_output(1.0)   # what grandchildren on other nodes printed until now
    try:
        _core.finalize()
    except Exception:
        pass
    _joined = False
    _stop_output()
    _stop_relay()
    if _private is not None:
        _stop(_private)
        _private = None
        for k in _TAKE + ("PYDRAGON_STDOUT", "PYDRAGON_STDERR"):
            os.environ.pop(k, None)
