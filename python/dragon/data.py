"""dragon.data: the distributed dictionary (DDict) from Python: a MutableMapping over the C dictionary's managers on the fabric's nodes."""
import contextlib
import os
import pickle
from collections.abc import MutableMapping

from . import _config, _core, _fabric
from ._core import DDictFullError

# Keys other than str and bytes are pickled with one fixed protocol, so that equal keys give the
# same bytes in every process and Python version that reads the dictionary.
_KEY_PROTOCOL = 4
_PICKLE_MARK = 0x80  # the first byte of every pickle of protocol 2 and later; never starts UTF-8


def _key_bytes(key):
    """The bytes a key is hashed and stored by: a str's UTF-8, a bytes as it is (so C programs
    see the same keys), anything else (and a bytes key starting with byte 0x80, which would be
    read back as a pickle) its pickle."""
    if isinstance(key, str):
        return key.encode()
    if isinstance(key, bytes) and (not key or key[0] != _PICKLE_MARK):
        return bytes(key)
    return pickle.dumps(key, protocol=_KEY_PROTOCOL)


def _key_object(raw):
    """A stored key back as Python sees it: a pickle's object; otherwise a str when the bytes are
    UTF-8 (a bytes key and the str of the same UTF-8 are one key), else the bytes."""
    if raw and raw[0] == _PICKLE_MARK:
        return pickle.loads(raw)
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


def _manager_program():
    """A build tree's package starts the build tree's manager (installed, libdragon finds its own
    under libexecdir)."""
    if os.environ.get("DRAGON_DDICT_MANAGER") or os.environ.get("DRAGON_LIBEXECDIR"):
        return
    here = os.path.dirname(os.path.abspath(__file__))
    build = getattr(_config, "BUILD_ROOT", "")
    prog = os.path.join(build, "runtime", "ddict", "dragon-ddict-manager")
    if build and here == os.path.join(build, "python", "dragon") and os.access(prog, os.X_OK):
        os.environ["DRAGON_DDICT_MANAGER"] = prog


def _attach_desc(desc):
    """Unpickling: attach by the serialized descriptor (no name lookup), in any process of the fabric."""
    _fabric.ensure()
    return DDict(_handle=_core.ddict_attach_desc(desc))


class DDict(MutableMapping):
    """A dictionary spread over manager processes, `managers_per_node` on each of the fabric's
    nodes (`nodes`: the first that many; None: all), each keeping at most `budget` bytes.

    Keys: str and bytes keys are stored by their bytes (str as UTF-8), so C and C++ programs see
    the same keys; other keys by their pickle (equal keys must pickle alike: ints, tuples of str,
    not sets). Values are pickled (`put_raw`/`get_raw` store and read bytes as they are, for
    values a C program wrote or reads). A DDict pickles into its descriptor: pass it to a
    process on any node (multiprocessing with the "dragon" start method, dragon.native), which
    attaches the same dictionary. The creating process's exit stops the managers unless
    `outlive`. Missing keys raise KeyError, a put past a manager's budget DDictFullError (a
    MemoryError naming the manager and its use), a dead manager DragonPeerError (a
    ConnectionError); the other managers keep serving. `timeout` (seconds) bounds each operation.
    """

    def __init__(self, managers_per_node=1, budget=64 << 20, name=None, nodes=None,
                 timeout=None, outlive=False, *, _handle=None):
        if _handle is not None:
            self._h = _handle
            return
        if managers_per_node < 1:
            raise ValueError(f"managers_per_node={managers_per_node}: at least 1")
        if nodes is not None and nodes < 1:
            raise ValueError(f"nodes={nodes}: at least 1, or None for every node")
        _fabric.ensure()
        _manager_program()
        self._h = _core.ddict_create(name=name, managers_per_node=managers_per_node,
                                     nodes=nodes or 0, budget=budget, outlive=outlive,
                                     timeout=timeout)

    @classmethod
    def attach(cls, name, timeout=None):
        """The dictionary registered under name, waiting up to timeout seconds (None: forever)
        for the name; KeyError-like DragonNotFoundError / DragonTimeoutError if it does not come."""
        _fabric.ensure()
        return cls(_handle=_core.ddict_attach(name, timeout))

    def __reduce__(self):
        return (_attach_desc, (self._h.serialize(),))

    # ---- the mapping ----------------------------------------------------------------------

    def __getitem__(self, key):
        raw = self._h.get(_key_bytes(key))
        if raw is None:
            raise KeyError(key)
        return self._value(key, raw)

    def __setitem__(self, key, value):
        self._h.put(_key_bytes(key), pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))

    def __delitem__(self, key):
        if not self._h.delete(_key_bytes(key)):
            raise KeyError(key)

    def __contains__(self, key):
        return self._h.contains(_key_bytes(key))

    def __len__(self):
        return self._h.len()

    def __iter__(self):
        for raw in self._h.keys(-1):
            yield _key_object(raw)

    _MISSING = object()

    def pop(self, key, default=_MISSING):
        """Remove the key and give its value (one request: atomic)."""
        raw = self._h.pop(_key_bytes(key))
        if raw is None:
            if default is DDict._MISSING:
                raise KeyError(key)
            return default
        return self._value(key, raw)

    def clear(self):
        """Remove every key of every manager (one request per manager)."""
        self._h.clear()

    def update(self, other=(), /, **kw):
        """Put many keys in one batch: queued per manager, acknowledged per message."""
        with self.batch():
            if isinstance(other, MutableMapping) or hasattr(other, "keys"):
                for k in other.keys():
                    self[k] = other[k]
            else:
                for k, v in other:
                    self[k] = v
            for k, v in kw.items():
                self[k] = v

    @staticmethod
    def _value(key, raw):
        try:
            return pickle.loads(raw)
        except Exception as e:
            raise ValueError(f"the value of key {key!r} is not a pickle ({len(raw)} bytes; a C "
                             "program's bytes are read with get_raw)") from e

    # ---- bytes as they are (what C and C++ programs put and get) --------------------------

    def put_raw(self, key, value):
        """Store value (bytes-like) as it is, unpickled."""
        self._h.put(_key_bytes(key), value)

    def get_raw(self, key, default=None):
        """The value's bytes as stored, default if the key is absent."""
        raw = self._h.get(_key_bytes(key))
        return default if raw is None else raw

    # ---- the dictionary's own operations --------------------------------------------------

    @contextlib.contextmanager
    def batch(self):
        """Puts inside `with d.batch():` are queued per manager and sent in large messages; the
        end of the block waits for their acknowledgements and raises the first failure."""
        self._h.batch_begin()
        try:
            yield self
        except BaseException:
            try:
                self._h.batch_end()
            except Exception:
                pass  # the block's own exception is the one to see
            raise
        self._h.batch_end()

    def fetch_add(self, key, delta=1):
        """Atomically add delta to the 64-bit counter at key (absent: 0); the value before. A
        counter is 8 bytes little-endian: read it with fetch_add(key, 0) or int.from_bytes of
        get_raw(key), "little", signed=True."""
        return self._h.fetch_add(_key_bytes(key), delta)

    def wait_for_key(self, key, timeout=None):
        """Wait until the key exists: True, or False after timeout seconds (None: forever)."""
        return self._h.wait_for_key(_key_bytes(key), timeout)

    def freeze(self):
        """Read-only from now on (writes raise DragonPermissionError); gets on a manager's node
        read its shared memory without asking it."""
        self._h.freeze()

    def unfreeze(self):
        self._h.unfreeze()

    def persist(self, directory):
        """Each manager writes its shard to directory/ddict-<m>-of-<n>.shard on its node."""
        self._h.persist(os.fspath(directory))

    def restore(self, directory):
        """Replace each shard with its file from persist (same number of managers); a missing or
        corrupt shard raises an error naming the file."""
        self._h.restore(os.fspath(directory))

    @property
    def managers(self):
        return self._h.managers()

    def manager_of(self, key):
        """The index of the manager that holds key."""
        return self._h.manager_of(_key_bytes(key))

    def stats(self):
        """Per manager: (keys, bytes used, budget)."""
        return [self._h.stats(m) for m in range(self._h.managers())]

    def serialize(self):
        """The descriptor (bytes) another process attaches with DDict.attach_desc."""
        return self._h.serialize()

    @classmethod
    def attach_desc(cls, desc):
        _fabric.ensure()
        return cls(_handle=_core.ddict_attach_desc(desc))

    def detach(self):
        """Forget this handle; the dictionary lives on."""
        self._h.detach()

    def destroy(self):
        """Stop every manager: the keys are gone (unless persisted) for every process."""
        self._h.destroy()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self._h.closed():
            self.destroy()

    def __repr__(self):
        if self._h.closed():
            return "<DDict (closed)>"
        return f"<DDict with {self._h.managers()} managers>"


__all__ = ["DDict", "DDictFullError"]
