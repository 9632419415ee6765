"""dragon.jupyter.kernel: the "Python 3 (Dragon)" kernel: IPython joined to the job's fabric (or a private one), with worker output routed to cells."""
import collections
import os
import signal
import sys
import threading
import weakref

# How long an interrupted cell waits for the workers it stops (they are SIGKILLed: fast).
_STOP_WAIT = 10.0


class FabricSession:
    """What the kernel adds to IPython: the fabric joined, "dragon" the default start method,
    processes tied to the kernel and to the cell that started them, their output in that cell."""

    def __init__(self, kernel):
        import dragon
        import multiprocessing.context as mpctx
        from dragon import _core, _fabric, mp
        from . import _output

        self.kernel = kernel
        self._core = _core
        self._mp = mp
        dragon.init()   # the job's fabric (DRAGON_LS_SOCKET) or a private one-node fabric
        self.private = _fabric.private()
        # As `python3 -m dragon` does: unchanged multiprocessing code in a cell uses the fabric.
        mpctx._default_context._default_context = mp._context
        self._lock = threading.Lock()
        self._headers = collections.OrderedDict()   # msg_id -> header of an execute request
        self._cell_gids = {}                         # msg_id -> gids (("p", puid) on this node)
        self._all_gids = []                          # every group (or process) the kernel started
        self.current = None                          # msg_id of the executing cell
        self._pools = weakref.WeakSet()
        self.relay = _output.Relay(self._deliver)
        self._patch(_output)
        shell = kernel.shell
        shell.events.register("pre_run_cell", self._pre_run_cell)
        shell.events.register("post_run_cell", self._post_run_cell)

    # -- hooks into the Python layer (in this process only; its files are unchanged) --

    def _patch(self, _output):
        session = self
        core = self._core
        mp = self._mp
        orig_create = core.group_create

        def group_create(*args, **kwargs):
            # Not `outlive`: the fabric ends what the kernel started when the kernel goes, on
            # every node (Restart kernel, a crash, SIGKILL), instead of at the job's end.
            kwargs["outlive"] = False
            gid = orig_create(*args, **kwargs)
            session._note_gid(gid)
            return gid
        group_create.__doc__ = orig_create.__doc__
        core.group_create = group_create
        orig_pcreate = core.process_create

        def process_create(*args, **kwargs):
            # A child on the kernel's node is a process, not a group (it may take descriptors):
            # the same for it, noted as ("p", puid).
            kwargs["outlive"] = False
            puid = orig_pcreate(*args, **kwargs)
            session._note_gid(("p", puid))
            return puid
        process_create.__doc__ = orig_pcreate.__doc__
        core.process_create = process_create

        import multiprocessing.spawn as mpspawn
        orig_prep = mpspawn.get_preparation_data
        launching = threading.local()

        def get_preparation_data(name):
            # For our workers only: the working directory is resolved on the worker's node.
            d = orig_prep(name)
            if getattr(launching, "on", False) and "dir" in d:
                d["dir"] = _output.Cwd(d["dir"])
            return d
        mpspawn.get_preparation_data = get_preparation_data

        orig_launch = mp.Popen._launch

        def _launch(popen, process_obj):
            # The sink travels with the pickled Process: unpickling it in the worker (any node)
            # sends the worker's stdout/stderr to this kernel, tagged with the starting cell.
            key = session.current or session._last_key()
            process_obj._dragon_jupyter_sink = _output.Sink(session.relay.desc_hex, key,
                                                            process_obj.name)
            launching.on = True
            try:
                orig_launch(popen, process_obj)
            finally:
                launching.on = False
                try:
                    del process_obj._dragon_jupyter_sink
                except AttributeError:
                    pass
        mp.Popen._launch = _launch

        orig_pool_init = mp.DragonPool.__init__

        def pool_init(pool, *args, **kwargs):
            session._pools.add(pool)
            orig_pool_init(pool, *args, **kwargs)
        mp.DragonPool.__init__ = pool_init

    def _last_key(self):
        with self._lock:
            return next(reversed(self._headers), None)

    def _note_gid(self, gid):
        with self._lock:
            self._all_gids.append(gid)
            if self.current is not None:
                self._cell_gids.setdefault(self.current, []).append(gid)

    # -- cells --

    def _pre_run_cell(self, info=None):
        parent = self.kernel.get_parent("shell") if hasattr(self.kernel, "get_parent") \
            else self.kernel._parent_header
        header = (parent or {}).get("header") or {}
        msg_id = header.get("msg_id")
        with self._lock:
            self.current = msg_id
            if msg_id:
                self._headers[msg_id] = header
                while len(self._headers) > 256:   # old cells: their late output is dropped
                    old, _ = self._headers.popitem(last=False)
                    self._cell_gids.pop(old, None)

    def _post_run_cell(self, result):
        interrupted = isinstance(getattr(result, "error_in_exec", None), KeyboardInterrupt)
        if interrupted:
            self._stop_cell(self.current)
        # What the cell's workers printed is in the channel already (deposited sends): show it
        # before the cell's reply, so it is in this cell and not the next.
        self.relay.drain()
        with self._lock:
            self._cell_gids.pop(self.current, None)   # only a running cell can be interrupted
            self.current = None

    def _stop_cell(self, msg_id):
        """Interrupt: the interrupted cell's processes and the pools with work in flight stop,
        on every node (SIGKILL through the fabric), before the next cell runs."""
        core = self._core
        with self._lock:
            gids = list(self._cell_gids.get(msg_id, ()))
        busy = [p for p in list(self._pools) if getattr(p, "_cache", None) and
                getattr(p, "_state", None) == "RUN"]
        for pool in busy:
            for w in list(getattr(pool, "_pool", ())):
                popen = getattr(w, "_popen", None)
                g = getattr(popen, "_gid", None)
                if g:
                    gids.append(g)
                elif getattr(popen, "_puid", None):
                    gids.append(("p", popen._puid))
        for g in gids:
            try:
                _kill(core, g)
            except core.DragonError:
                pass   # ended already
        for pool in busy:
            try:
                pool.terminate()
            except Exception as e:  # the workers are gone; the pool is unusable either way
                print(f"dragon: terminating an interrupted pool: {e}", file=sys.__stderr__)
        for g in gids:
            try:
                _wait(core, g, _STOP_WAIT)
            except core.DragonError:
                pass

    # -- output --

    def _deliver(self, key, label, name, text):
        """A worker's text into a cell: the one that started the worker while it runs; once that
        one has finished, the cell running now (a Pool made in one cell and mapped in another
        prints under the map); with no cell running, the starting cell (as a message addressed
        to it: a front end that still shows it puts it there)."""
        stream = sys.stdout if name == "stdout" else sys.stderr
        cur = (getattr(stream, "parent_header", {}) or {}).get("msg_id")
        running = self.current
        if running is not None and cur == running:
            # Through the kernel's own stream: in order with the cell's own prints.
            stream.write(text)
            stream.flush()
            return
        with self._lock:
            header = self._headers.get(key)
        if header is None:
            stream.write(text)
            return
        sys.stdout.flush()
        sys.stderr.flush()
        self.kernel.session.send(self.kernel.iopub_socket, "stream",
                                 {"name": name, "text": text}, parent=header,
                                 ident=b"stream." + name.encode())

    def shutdown(self):
        """Shutdown or restart: end every process the kernel started, on every node, now (else
        multiprocessing's exit would join non-daemonic ones for ever and the server would have
        to kill the kernel)."""
        core = self._core
        with self._lock:
            gids, self._all_gids = self._all_gids, []
        for g in gids:
            try:
                _kill(core, g)
            except core.DragonError:
                pass
        for g in gids:
            try:
                _wait(core, g, _STOP_WAIT)
            except core.DragonError:
                pass
        self.relay.close()


def _kill(core, g):
    """SIGKILL a group (its gid) or a process of this node (("p", puid))."""
    if isinstance(g, tuple):
        core.process_signal(g[1], signal.SIGKILL)
    else:
        core.group_signal(g, signal.SIGKILL)


def _wait(core, g, timeout):
    if isinstance(g, tuple):
        core.process_wait(g[1], timeout)
    else:
        core.group_wait_all(g, timeout)


def main(argv=None):
    from ipykernel.ipkernel import IPythonKernel
    from ipykernel.kernelapp import IPKernelApp

    from . import DISPLAY_NAME

    class DragonKernel(IPythonKernel):
        implementation = "dragon-python"
        implementation_version = DISPLAY_NAME

        def do_shutdown(self, restart):
            session = getattr(self, "_dragon", None)
            if session is not None:
                session.shutdown()
            return super().do_shutdown(restart)

    app = IPKernelApp.instance(kernel_class=DragonKernel)
    app.initialize(sys.argv[1:] if argv is None else argv)
    try:
        app.kernel._dragon = FabricSession(app.kernel)
    except Exception as e:
        # Loud: the kernel is useless without its fabric; the server's log says why.
        print(f"dragon-jupyter kernel: cannot join or start a fabric: {type(e).__name__}: {e}",
              file=sys.__stderr__, flush=True)
        os._exit(1)
    app.start()


if __name__ == "__main__":
    main()
