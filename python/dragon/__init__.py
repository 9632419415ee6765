"""dragon: Python on Dragon for Slurm: the "dragon" start method of multiprocessing, dragon.native, and the fabric's errors."""
from . import _core
from ._core import (DragonError, DragonTimeoutError, DragonNotFoundError, DragonPeerError,
                    DragonClosedError, DragonStaleError, DragonExistsError, DragonValueError,
                    DragonWouldBlock, DragonNotSupported, DragonNotInitialized)
from . import _fabric
from . import _startmethod
NODE_LOST = _core.STATUS_NODE_LOST   # a process whose node left the fabric (C: DRAGON_STATUS_NODE_LOST)

# Importing dragon makes "dragon" a start method: multiprocessing.set_start_method("dragon")
# or multiprocessing.get_context("dragon"). dragon.mp, the method itself, loads on first use:
# a child of the method imports only what it needs (see dragon._startmethod).
_startmethod.install()


def __getattr__(name):
    if name in ("Policy", "cpu_count", "_mp"):
        from . import mp
        return mp if name == "_mp" else getattr(mp, name)
    raise AttributeError(f"module 'dragon' has no attribute {name!r}")


def init():
    """Join the fabric now (otherwise the first use does): the job's, or a private one-node one."""
    _fabric.ensure()


def node_index():
    _fabric.ensure()
    return _core.node_index()


def node_count():
    _fabric.ensure()
    return _core.node_count()


def puid():
    _fabric.ensure()
    return _core.puid()


__all__ = ["DragonError", "DragonTimeoutError", "DragonNotFoundError", "DragonPeerError",
           "DragonClosedError", "DragonStaleError", "DragonExistsError", "DragonValueError",
           "DragonWouldBlock", "DragonNotSupported", "DragonNotInitialized", "Policy",
           "cpu_count", "init", "node_index", "node_count", "puid", "NODE_LOST"]
