"""dragon._startmethod: the light half of the "dragon" start method, what `import dragon` and every child load; dragon.mp (queues, pipes, locks, Pool, Popen) loads on first use."""
import sys
import time

import multiprocessing
import multiprocessing.context as _mpctx
import multiprocessing.process as _mpprocess

from . import _core as _C

# A child of the dragon start method starts a fresh interpreter, as spawn's does: what it imports
# before running its target is most of its start-up time. It needs the Process class (its pickled
# self names it), its parent's sentinel and the fabric; dragon.mp (and with it
# multiprocessing.connection, pool, managers, sharedctypes, queues) only when something it
# receives or makes is one of ours. So these live here, and `import dragon` loads only this.


class DragonProcess(_mpprocess.BaseProcess):
    """multiprocessing.Process for the "dragon" start method; `policy=` places it."""
    _start_method = "dragon"

    @staticmethod
    def _Popen(process_obj):
        from .mp import Popen
        return Popen(process_obj)

    @staticmethod
    def _after_fork():
        pass

    @property
    def node(self):
        """The index of the node the process runs on (None before start)."""
        return getattr(self._popen, "node", None)


class ParentSentinel:
    """A child's view of its parent for _ParentProcess: ready once the parent is gone."""

    def __init__(self, desc):
        self._desc = desc
        self._ch = None

    def _dragon_ready(self, timeout=0.0):
        try:
            if self._ch is None:
                self._ch = _C.channel_attach(self._desc)
            self._ch.poll(_C.POLLIN, timeout)
            return False
        except _C.DragonError:
            return True


# ---- waiting on several objects ---------------------------------------------------------------

_orig_wait = None


def wait(object_list, timeout=None):
    """multiprocessing.connection.wait that also takes dragon objects (queues' readers, pipes,
    a parent's sentinel): file descriptors through select, channels by polling them."""
    objs = list(object_list)
    ours = [o for o in objs if hasattr(o, "_dragon_ready")]
    if not ours:
        return _orig_wait(objs, timeout)
    others = [o for o in objs if not hasattr(o, "_dragon_ready")]
    deadline = None if timeout is None else time.monotonic() + timeout
    if len(ours) == 1 and not others:
        return ours if ours[0]._dragon_ready(timeout) else []
    step = 0.0002
    while True:
        ready = [o for o in ours if o._dragon_ready(0)]
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if others:
            fired = _orig_wait(others, 0 if ready else (step if left is None else min(step, left)))
            if fired and len(ready) < len(ours):
                # Look at the channels again: what fired (a child's sentinel) may have come after
                # a message the child sent before it ended, which must not be missed
                # (ProcessPoolExecutor takes a sentinel without its result for a broken pool).
                ready = [o for o in ours if o._dragon_ready(0)]
            ready += fired
        elif not ready and left != 0:
            # Only channels: wait on the first for a while (in C, without the GIL), then look
            # at all again; the slice grows so an idle wait costs little.
            ours[0]._dragon_ready(step if left is None else min(step, left))
            ready = [o for o in ours if o._dragon_ready(0)]
        if ready or left == 0:
            return ready
        step = min(step * 2, 0.02)


def _patch_connection(mod):
    global _orig_wait
    if mod.wait is not wait:
        _orig_wait, mod.wait = mod.wait, wait
    pool = sys.modules.get("multiprocessing.pool")   # it took connection.wait when imported
    if pool is not None:
        pool.wait = wait


# ---- patching a module of multiprocessing when something first imports it ---------------------
# A child that never imports multiprocessing.connection or .managers saves their imports (hmac,
# hashlib, shared_memory...), which cost more than the rest of its start.

_patches = {}   # module name: [functions called with the module once it is loaded]


class _PatchFinder:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name not in _patches:
            return None
        from importlib.machinery import PathFinder
        spec = PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            for fn in _patches.pop(name, ()):
                fn(module)

        spec.loader.exec_module = exec_module
        return spec


def after_import(name, fn):
    """fn(module) now if module `name` is loaded, else right after something imports it."""
    mod = sys.modules.get(name)
    if mod is not None:
        fn(mod)
        return
    _patches.setdefault(name, []).append(fn)
    if _PatchFinder not in sys.meta_path:
        sys.meta_path.insert(0, _PatchFinder)


def _hook_connection():
    after_import("multiprocessing.connection", _patch_connection)


# ---- the start method's entry in multiprocessing ----------------------------------------------

class _Pending:
    """multiprocessing's entry for "dragon" until dragon.mp is loaded: what a child's default
    context is while it needs nothing of dragon.mp. Asking multiprocessing for the context (or
    anything of it) loads dragon.mp, which puts the real one in its place."""
    _name = "dragon"
    _dragon = True

    def __getattr__(self, name):
        return getattr(_load(), name)

    def __repr__(self):
        return "<dragon start method, not loaded yet>"


_PENDING = _Pending()


def _load():
    from . import mp  # its register() replaces _PENDING
    return mp._context


def _resolving(get):
    def get_context(self, method=None):
        ctx = get(self, method)
        return _load() if ctx is _PENDING else ctx
    get_context.__doc__ = get.__doc__
    return get_context


def pending_default():
    """A child of the dragon method: "dragon" is its start method (spawn.prepare would set it
    through get_context, which loads dragon.mp)."""
    _mpctx._default_context._actual_context = _mpctx._concrete_contexts["dragon"]


_FACTORIES = ("Pipe", "Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore", "Event",
              "Barrier", "Queue", "JoinableQueue", "SimpleQueue", "Pool", "RawValue", "RawArray",
              "Value", "Array", "Manager", "cpu_count")


def _dispatching(name):
    base = getattr(_mpctx.BaseContext, name)

    def method(self, *args, **kwargs):
        # multiprocessing.Queue() and friends are methods of the default context, which builds
        # CPython's objects with the chosen context's locks: with "dragon" chosen, ours instead.
        ctx = self.get_context()
        if getattr(ctx, "_dragon", False):
            return getattr(ctx, name)(*args, **kwargs)
        return base(self, *args, **kwargs)
    method.__name__ = name
    method.__doc__ = base.__doc__
    return method


_orig_process_init = _mpprocess.BaseProcess.__init__


def _process_init(self, *args, policy=None, **kwargs):
    # multiprocessing.Process(..., policy=dragon.Policy(...)) places the process when the dragon
    # start method starts it (other start methods ignore it).
    _orig_process_init(self, *args, **kwargs)
    self._dragon_policy = policy


_orig_prep = None


def _preparation_data(name):
    # With "dragon" as the default method, a child of the spawn or forkserver context is a fresh
    # interpreter that would be told to set "dragon" before anything imported dragon: it keeps
    # its own default instead (our children are told "dragon" by Popen).
    d = _orig_prep(name)
    if d.get("start_method") == "dragon":
        del d["start_method"]
    return d


def install():
    """Make "dragon" a start method of multiprocessing (set_start_method / get_context) without
    loading dragon.mp, which the first use of the method loads."""
    global _orig_prep
    import multiprocessing.spawn as _mpspawn
    _mpctx._concrete_contexts.setdefault("dragon", _PENDING)
    if not getattr(_mpctx.DefaultContext, "_dragon_dispatch", False):
        _mpctx.BaseContext.get_context = _resolving(_mpctx.BaseContext.get_context)
        _mpctx.DefaultContext.get_context = _resolving(_mpctx.DefaultContext.get_context)
        multiprocessing.get_context = _mpctx._default_context.get_context
        for name in _FACTORIES:
            setattr(_mpctx.DefaultContext, name, _dispatching(name))
            # the module's functions are bound methods of the default context, made at import
            setattr(multiprocessing, name, getattr(_mpctx._default_context, name))
        _mpctx.DefaultContext._dragon_dispatch = True
    _hook_connection()
    if _mpprocess.BaseProcess.__init__ is not _process_init:
        _mpprocess.BaseProcess.__init__ = _process_init
    if _mpspawn.get_preparation_data is not _preparation_data:
        _orig_prep, _mpspawn.get_preparation_data = _mpspawn.get_preparation_data, _preparation_data
