"""_dragon_startmethod: makes "dragon" a start method of every interpreter's multiprocessing, lazily (dragon_startmethod.pth runs it at startup; dragon is imported only when the method is asked for)."""
import sys

# Startup must stay cheap for every Python program: nothing is imported here. When
# multiprocessing.context is first imported, its table of start methods becomes one that imports
# dragon (which registers "dragon", starting no fabric) the first time "dragon" is looked up.


class _Contexts(dict):
    def __missing__(self, method):
        if method != "dragon":
            raise KeyError(method)
        import dragon.mp  # noqa: F401  (it adds the entry)
        return dict.__getitem__(self, method)


def _patch(module):
    if not isinstance(module._concrete_contexts, _Contexts):
        module._concrete_contexts = _Contexts(module._concrete_contexts)


class _Finder:
    """A meta path entry that only wraps the loading of multiprocessing.context."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "multiprocessing.context":
            return None
        import importlib.machinery
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


def install():
    mod = sys.modules.get("multiprocessing.context")
    if mod is not None:
        _patch(mod)
    elif _Finder not in sys.meta_path:
        sys.meta_path.insert(0, _Finder)


install()
