"""dragon._child: the start of a process of the "dragon" start method (the other half of mp.Popen)."""
import io
import os
import pickle
import struct
import sys


def _redirect_output():
    # A parent that joined the fabric from outside handed us its stdout and stderr as
    # descriptors (PYDRAGON_OUTFDS=OUT,ERR): ours are those, and our children on this node get
    # them the same way.
    fds = os.environ.pop("PYDRAGON_OUTFDS", None)
    if fds:
        from dragon import _fabric
        for src, fd in zip((int(x) for x in fds.split(",")), (1, 2)):
            os.dup2(src, fd)
            os.close(src)
        _fabric._out_by_fds = True
        return
    # In a private fabric the processes the fabric starts have no output sink: they write to the
    # original program's stdout and stderr directly (PYDRAGON_STDOUT/STDERR name them).
    for var, fd in (("PYDRAGON_STDOUT", 1), ("PYDRAGON_STDERR", 2)):
        path = os.environ.get(var)
        if not path:
            continue
        try:
            t = os.open(path, os.O_WRONLY | os.O_APPEND)
        except OSError:
            continue
        os.dup2(t, fd)
        os.close(t)


def _share_parents_segments():
    # CPython children inherit their parent's resource tracker; ours on another node cannot,
    # and would each start their own, which unlinks every SharedMemory segment the child attached when
    # the child exits. Segments are the creator's to track: a child does not register them.
    from multiprocessing import resource_tracker
    reg, unreg = resource_tracker.register, resource_tracker.unregister

    def register(name, rtype):
        if rtype != "shared_memory":
            reg(name, rtype)

    def unregister(name, rtype):
        if rtype != "shared_memory":
            unreg(name, rtype)

    resource_tracker.register, resource_tracker.unregister = register, unregister


def main():
    _redirect_output()
    desc_in, desc_back, desc_parent = (bytes.fromhex(a) for a in sys.argv[2:5])
    tracker_fd = int(sys.argv[5])
    del sys.argv[1:]
    # Only the light half of the start method (dragon._startmethod): dragon.mp loads if what
    # this process receives or makes needs it.
    import dragon  # registers the start method
    from dragon import _core, _fabric, _startmethod
    from multiprocessing import process, spawn

    _fabric.ensure()
    if tracker_fd >= 0:
        # On the parent's node the fabric handed us the parent's resource tracker (as spawn does).
        from multiprocessing import resource_tracker
        resource_tracker._resource_tracker._fd = tracker_fd
    else:
        _share_parents_segments()
    back = _core.channel_attach(desc_back)
    back.send(struct.pack("<q", os.getpid()))
    back.detach()
    inch = _core.channel_attach(desc_in)
    msg = inch.recv()
    inch.detach()
    (hlen,) = struct.unpack_from("<Q", msg)
    head = msg[8:8 + hlen]
    body = memoryview(msg)[8 + hlen:]
    process.current_process()._inheriting = True
    try:
        prep = pickle.loads(head)
        if prep.get("start_method") == "dragon":
            del prep["start_method"]
            _startmethod.pending_default()
        spawn.prepare(prep)
        self = pickle.loads(body)
    finally:
        del process.current_process()._inheriting
    exitcode = self._bootstrap(parent_sentinel=_startmethod.ParentSentinel(desc_parent))
    sys.exit(exitcode)
