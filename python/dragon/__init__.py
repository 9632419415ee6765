"""dragon: Python on Dragon for Slurm: the "dragon" start method of multiprocessing, dragon.native, and the fabric's errors."""
from . import _core
from ._core import (DragonError, DragonTimeoutError, DragonNotFoundError, DragonPeerError,
                    DragonClosedError, DragonStaleError, DragonExistsError, DragonValueError,
                    DragonWouldBlock, DragonNotSupported, DragonNotInitialized)
from . import _fabric
from . import mp as _mp
from .mp import Policy, cpu_count, NODE_LOST

# Importing dragon makes "dragon" a start method: multiprocessing.set_start_method("dragon")
# or multiprocessing.get_context("dragon").
_mp.register()


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
