"""Save and load format containers as versioned ``.npz`` files.

A file is one NumPy ``.npz`` archive (written with :func:`numpy.savez`, read with
``allow_pickle=False``, so loading never executes code). It holds three header
entries and one or more entries per dataclass field of the container:

=======================  ==============================================================
entry                    content
=======================  ==============================================================
``__tensornet__``        the string ``"tensornet"`` (identifies the file)
``__version__``          the integer file-format version (:data:`FILE_FORMAT_VERSION`)
``__type__``             the class name, e.g. ``"TTTensor"``
``<field>__kind``        how the field is stored: ``"array"``, ``"tuple"``, ``"ints"``,
                         ``"int"``, ``"float"``, ``"complex"``, ``"bool"``, ``"str"``
                         or ``"none"``
``<field>``              the data of an ``"array"``, ``"ints"`` (1-d int64) or scalar field
``<field>__len``         the length of a ``"tuple"`` field, whose items are stored
                         recursively as ``<field>__0``, ``<field>__1``, ... (each with
                         its own ``__kind``)
=======================  ==============================================================

The layout is derived from :func:`dataclasses.fields`, so any frozen dataclass
container works once it is known to :func:`register_format`; every format exported
by :mod:`tensornet.formats` (and :class:`~tensornet.formats.tt_matrix.TTMatrix`) is
registered when this module is imported. Loading rebuilds the object through its
constructor, so a file is validated exactly like user input.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from tensornet import _backend as B
from tensornet._backend import Array
from tensornet._validation import _describe

__all__ = [
    "FILE_FORMAT_VERSION",
    "load",
    "open_npy",
    "register_format",
    "registered_formats",
    "save",
]

FILE_FORMAT_VERSION = 1
"""Version of the file layout written by :func:`save` (and the newest :func:`load` reads)."""

_MAGIC = "tensornet"
_KEY_MAGIC = "__tensornet__"
_KEY_VERSION = "__version__"
_KEY_TYPE = "__type__"
_SEP = "__"
_KINDS = ("array", "tuple", "ints", "int", "float", "complex", "bool", "str", "none")
_RESERVED_FIELDS = frozenset({"file", "allow_pickle"})  # keyword names of numpy.savez

_REGISTRY: dict[str, type] = {}

T = TypeVar("T", bound=type)


# -- registry ------------------------------------------------------------------------------------
def register_format(cls: T) -> T:
    """Make a dataclass container known to :func:`save` and :func:`load`.

    Usable as a class decorator. The file stores ``cls.__name__`` as its type, so
    two registered classes must not share a name. Registering the same class again
    is a no-op.

    Parameters
    ----------
    cls : type
        A dataclass whose constructor takes its ``init`` fields as keyword arguments.
        Field values may be arrays, ``None``, bools, ints, floats, complex numbers,
        strings, and (nested) tuples or lists of these.

    Returns
    -------
    type
        ``cls`` itself.

    Raises
    ------
    TypeError
        If ``cls`` is not a dataclass type.
    ValueError
        If a field name contains ``"__"`` or is ``"file"`` / ``"allow_pickle"``
        (reserved by the file layout), or another class of the same name is
        already registered.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> from tensornet.io import register_format
    >>> @register_format
    ... @dataclass(frozen=True)
    ... class Pair:
    ...     left: object
    ...     right: object
    >>> "Pair" in registered_formats()
    True
    """
    if not isinstance(cls, type) or not dataclasses.is_dataclass(cls):
        raise TypeError(f"cls must be a dataclass type, got {_describe(cls)}")
    for field in dataclasses.fields(cls):
        if _SEP in field.name or field.name in _RESERVED_FIELDS:
            raise ValueError(
                f"cls {cls.__name__} has field {field.name!r}: field names must not contain "
                f"'__' nor be one of {sorted(_RESERVED_FIELDS)} (reserved by the file layout)"
            )
    name = cls.__name__
    known = _REGISTRY.get(name)
    if known is not None and known is not cls and not _same_definition(known, cls):
        raise ValueError(
            f"cls {cls.__module__}.{cls.__qualname__}: another class named {name!r} "
            f"({known.__module__}.{known.__qualname__}) is already registered"
        )
    _REGISTRY[name] = cls
    return cls


def _same_definition(a: type, b: type) -> bool:
    """True for two versions of one class (e.g. after ``importlib.reload``)."""
    return (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def registered_formats() -> dict[str, type]:
    """Return a copy of the mapping from stored type names to registered classes.

    Examples
    --------
    >>> from tensornet.io import registered_formats
    >>> "TTTensor" in registered_formats()
    True
    """
    return dict(_REGISTRY)


def _register_builtin_formats() -> None:
    import tensornet.formats as formats
    from tensornet.formats._base import TensorFormat
    from tensornet.formats.tt_matrix import TTMatrix

    exported: list[type] = [
        obj for obj in (getattr(formats, name) for name in formats.__all__) if isinstance(obj, type)
    ]
    for cls in (*exported, TTMatrix):
        if issubclass(cls, TensorFormat) and dataclasses.is_dataclass(cls):
            register_format(cls)


# -- save ----------------------------------------------------------------------------------------
def _target_path(path: object, name: str = "path") -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or an os.PathLike, got {_describe(path)}")
    raw = os.fspath(path)
    if not isinstance(raw, str):
        raise TypeError(f"{name} must be a text path, got bytes {raw!r}")
    return raw


def _encode(key: str, value: object, out: dict[str, np.ndarray], where: str) -> None:
    """Store ``value`` under ``key`` (plus its ``__kind`` marker) into ``out``."""
    kind: str
    if value is None:
        kind = "none"
    elif isinstance(value, (bool, np.bool_)):
        kind, out[key] = "bool", np.asarray(bool(value))
    elif isinstance(value, str):
        kind, out[key] = "str", np.asarray(value)
    elif B.is_array(value):
        try:
            host = B.to_numpy(value)
        except (TypeError, RuntimeError) as exc:  # e.g. torch bfloat16 has no NumPy dtype
            raise TypeError(f"{where} cannot be converted to a NumPy array: {exc}") from exc
        if host.dtype.hasobject:
            raise TypeError(f"{where} must be a numeric array, got an array of dtype object")
        kind, out[key] = "array", host
    elif isinstance(value, numbers.Integral):
        kind, out[key] = "int", np.asarray(int(value), dtype=np.int64)
    elif isinstance(value, numbers.Real):
        kind, out[key] = "float", np.asarray(float(value), dtype=np.float64)
    elif isinstance(value, numbers.Complex):
        kind, out[key] = "complex", np.asarray(complex(value), dtype=np.complex128)
    elif isinstance(value, (tuple, list)):
        if value and all(
            isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) for v in value
        ):
            kind, out[key] = "ints", np.asarray([int(v) for v in value], dtype=np.int64)
        else:
            kind, out[key + _SEP + "len"] = "tuple", np.asarray(len(value), dtype=np.int64)
            for i, item in enumerate(value):
                _encode(f"{key}{_SEP}{i}", item, out, f"{where}[{i}]")
    else:
        raise TypeError(
            f"{where} cannot be stored in a tensornet file: expected an array, None, a number, "
            f"a str or a tuple of these, got {_describe(value)}"
        )
    out[key + _SEP + "kind"] = np.asarray(kind)


def save(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write a format container to a ``.npz`` file.

    Arrays of any library are copied to host NumPy arrays (``tensornet._backend.to_numpy``:
    torch tensors are detached and moved to the CPU); dtypes are kept, so a
    :func:`load` gives back bitwise-identical values. An existing file is overwritten.

    Parameters
    ----------
    path : str or os.PathLike
        Destination. The file written is exactly ``path`` if it ends with
        ``".npz"``, else ``path + ".npz"`` (NumPy's rule); :func:`load` accepts
        either spelling.
    obj : registered format container
        E.g. a :class:`~tensornet.TTTensor`; see :func:`register_format`.

    Returns
    -------
    pathlib.Path
        The path of the file written.

    Raises
    ------
    TypeError
        If ``path`` is not a str or path-like, ``obj`` is not an instance of a
        registered format, or a field holds a value that cannot be stored.
    OSError
        If the file cannot be written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from tensornet import TTTensor
    >>> from tensornet.io import load, save
    >>> t = TTTensor([np.ones((1, 2, 3)), np.ones((3, 4, 1))])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     written = save(pathlib.Path(tmp) / "train", t)
    ...     back = load(written)
    >>> written.name, back.ranks, bool(np.array_equal(back.cores[0], t.cores[0]))
    ('train.npz', (1, 3, 1), True)
    """
    raw = _target_path(path)
    cls = type(obj)
    if _REGISTRY.get(cls.__name__) is not cls:
        raise TypeError(
            f"obj must be an instance of a registered format ({', '.join(sorted(_REGISTRY))}; "
            f"see tensornet.io.register_format), got {_describe(obj)}"
        )
    entries: dict[str, np.ndarray] = {
        _KEY_MAGIC: np.asarray(_MAGIC),
        _KEY_VERSION: np.asarray(FILE_FORMAT_VERSION, dtype=np.int64),
        _KEY_TYPE: np.asarray(cls.__name__),
    }
    for field in dataclasses.fields(obj):
        if field.init:
            _encode(field.name, getattr(obj, field.name), entries, f"obj.{field.name}")
    target = Path(raw if raw.endswith(".npz") else raw + ".npz")
    with open(target, "wb") as fh:  # a file object: numpy writes exactly here, no suffix added
        np.savez(fh, **entries)  # type: ignore[arg-type]
    return target


# -- load ----------------------------------------------------------------------------------------
class _Reader:
    """Checked access to the entries of an open ``.npz`` archive."""

    def __init__(self, data: Any, path: str) -> None:
        self.data = data
        self.path = path
        self.files = set(data.files)
        self.used: set[str] = set()

    def error(self, message: str) -> ValueError:
        return ValueError(f"{self.path} is not a valid tensornet file: {message}")

    def get(self, key: str, what: str) -> np.ndarray:
        if key not in self.files:
            raise self.error(f"{what} is missing (no entry {key!r})")
        try:
            value = self.data[key]
        except ValueError as exc:
            if "allow_pickle" in str(exc):  # numpy refuses object arrays without pickle
                raise self.error(
                    f"entry {key!r} holds a Python object array, which would need pickle to "
                    "load; tensornet files contain only numeric and string arrays and are "
                    "always read with allow_pickle=False"
                ) from exc
            raise self.error(f"entry {key!r} cannot be read: {exc}") from exc
        self.used.add(key)
        return np.asarray(value)

    def scalar(self, key: str, what: str, kind: str) -> Any:
        value = self.get(key, what)
        ok = (
            value.ndim == 0
            and {
                "str": value.dtype.kind == "U",
                "int": value.dtype.kind in "iu",
                "float": value.dtype.kind == "f",
                "complex": value.dtype.kind == "c",
                "bool": value.dtype.kind == "b",
            }[kind]
        )
        if not ok:
            raise self.error(
                f"{what} (entry {key!r}) must be a single {kind}, got an array of dtype "
                f"{value.dtype} and shape {value.shape}"
            )
        return value.item()

    def decode(self, key: str, what: str, convert: Callable[[np.ndarray], Array]) -> Any:
        kind = self.scalar(key + _SEP + "kind", f"the kind marker of {what}", "str")
        if kind not in _KINDS:
            raise self.error(f"{what} has unknown kind {kind!r} (expected one of {_KINDS})")
        if kind == "none":
            return None
        if kind == "array":
            return convert(self.get(key, what))
        if kind == "ints":
            value = self.get(key, what)
            if value.ndim != 1 or value.dtype.kind not in "iu":
                raise self.error(
                    f"{what} (entry {key!r}) must be a 1-d integer array, got dtype "
                    f"{value.dtype} and shape {value.shape}"
                )
            return tuple(int(v) for v in value)
        if kind == "tuple":
            length = self.scalar(key + _SEP + "len", f"the length of {what}", "int")
            if length < 0:
                raise self.error(f"the length of {what} must be >= 0, got {length}")
            return tuple(
                self.decode(f"{key}{_SEP}{i}", f"{what}[{i}]", convert) for i in range(length)
            )
        return self.scalar(key, what, kind)


def _open_path(path: object) -> str:
    raw = _target_path(path)
    if not os.path.exists(raw) and not raw.endswith(".npz") and os.path.exists(raw + ".npz"):
        return raw + ".npz"
    if not os.path.exists(raw):
        if raw.endswith(".npz"):
            raise FileNotFoundError(f"path: no such file: {raw}")
        raise FileNotFoundError(f"path: neither {raw} nor {raw}.npz exists")
    return raw


def _converter(like: object) -> Callable[[np.ndarray], Array]:
    if like is None:
        return lambda a: a
    if not B.is_array(like):
        raise TypeError(f"like must be an array or None, got {_describe(like)}")
    xp = B.namespace(like)
    dev = B.device(like)
    return lambda a: xp.asarray(a, device=dev)


def load(path: str | os.PathLike[str], *, like: Array | None = None) -> Any:
    """Read a format container written by :func:`save`.

    The object is rebuilt through its class constructor, so the stored arrays are
    validated like user input. Values are bitwise identical to those saved.

    Parameters
    ----------
    path : str or os.PathLike
        The file. If ``path`` does not exist and does not end with ``".npz"``,
        ``path + ".npz"`` is read (mirroring :func:`save`).
    like : array, optional
        Without it the result holds NumPy arrays (whatever library the saved
        object used). With it, arrays are created in ``like``'s array library and
        on its device, keeping the stored dtypes (e.g. a torch tensor on
        ``"cuda"`` gives torch cores on the GPU).

    Returns
    -------
    registered format container
        E.g. a :class:`~tensornet.TTTensor`.

    Raises
    ------
    ValueError
        If the file is not a ``.npz`` archive, its header is missing or wrong
        (``__tensornet__``, ``__version__``, ``__type__``), its version is newer than
        :data:`FILE_FORMAT_VERSION`, its type is not registered, an entry holds a
        Python object array (pickled data is never loaded), a field is missing or
        malformed, there are unexpected entries, or the stored fields do not form
        a valid object.
    TypeError
        If ``path`` is not a str or path-like, or ``like`` is not an array.
    FileNotFoundError
        If neither ``path`` nor ``path + ".npz"`` exists.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> from tensornet import tt_svd
    >>> from tensornet.io import load, save
    >>> t = tt_svd(np.arange(24.0).reshape(2, 3, 4))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = save(os.path.join(tmp, "t.npz"), t)
    ...     back = load(os.path.join(tmp, "t"))
    >>> back
    TTTensor(shape=(2, 3, 4), ranks=(1, 2, 2, 1), dtype=float64, num_params=24)
    """
    convert = _converter(like)
    raw = _open_path(path)
    try:
        archive = np.load(raw, allow_pickle=False)
    except (ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(
            f"{raw} is not a valid tensornet file: it is not a readable .npz archive ({exc})"
        ) from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{raw} is not a valid tensornet file: it holds a single .npy array, not a .npz archive"
        )
    with archive:
        try:
            return _read(_Reader(archive, raw), convert)
        except zipfile.BadZipFile as exc:
            raise ValueError(
                f"{raw} is not a valid tensornet file: corrupt archive ({exc})"
            ) from exc


def _read(reader: _Reader, convert: Callable[[np.ndarray], Array]) -> Any:
    if _KEY_MAGIC not in reader.files:
        raise reader.error(f"the header entry {_KEY_MAGIC!r} is missing")
    magic = reader.scalar(_KEY_MAGIC, f"the header entry {_KEY_MAGIC!r}", "str")
    if magic != _MAGIC:
        raise reader.error(f"the header entry {_KEY_MAGIC!r} is {magic!r}, expected {_MAGIC!r}")
    version = reader.scalar(_KEY_VERSION, f"the header entry {_KEY_VERSION!r}", "int")
    if not 1 <= version <= FILE_FORMAT_VERSION:
        raise reader.error(
            f"unsupported file-format version {version}; this tensornet reads versions 1 to "
            f"{FILE_FORMAT_VERSION} (a newer tensornet wrote it?)"
        )
    name = reader.scalar(_KEY_TYPE, f"the header entry {_KEY_TYPE!r}", "str")
    cls = _REGISTRY.get(name)
    if cls is None:
        raise reader.error(
            f"unknown type {name!r}; registered types: {', '.join(sorted(_REGISTRY))} "
            "(see tensornet.io.register_format)"
        )
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        if field.name + _SEP + "kind" not in reader.files:
            has_default = (
                field.default is not dataclasses.MISSING
                or field.default_factory is not dataclasses.MISSING
            )
            if has_default:
                continue
            raise reader.error(f"missing field {field.name!r} of {name}")
        kwargs[field.name] = reader.decode(field.name, f"field {field.name!r}", convert)
    extra = sorted(reader.files - reader.used)
    if extra:
        shown = ", ".join(repr(k) for k in extra[:5]) + (", ..." if len(extra) > 5 else "")
        raise reader.error(f"unexpected entries for a {name}: {shown}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise reader.error(f"the stored fields do not form a valid {name}: {exc}") from exc


_register_builtin_formats()


class _NpyBlocks:
    """Array-like view of a ``.npy`` file for ``dask.array.from_array``.

    A block is read with ``os.pread`` into fresh memory, one contiguous run of the file
    at a time (a C-order block ``x[a:b, c:d, ...]`` is a run per index of its leading
    partial axes), so the process holds only the blocks being worked on. Reading through
    ``np.memmap`` instead maps every cached page of the file into the process on the first
    strided access (the kernel's fault-around): a 4 MB block of a 268 MB file showed as
    275 MB of resident memory.
    """

    def __init__(self, path: str) -> None:
        with open(path, "rb") as handle:
            try:
                version = np.lib.format.read_magic(handle)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
            except ValueError as exc:
                raise ValueError(f"path must be a .npy file ({exc}): {path!r}") from exc
            self.offset = handle.tell()
        if dtype.hasobject:
            raise ValueError(f"path must hold a numeric array, got dtype {dtype}: {path!r}")
        self.path = path
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self.fortran = bool(fortran) and self.ndim > 1

    def __getitem__(self, index: Any) -> np.ndarray:
        key = index if isinstance(index, tuple) else (index,)
        key = key + (slice(None),) * (self.ndim - len(key))
        if len(key) != self.ndim or not all(isinstance(k, slice) for k in key):
            return self._mapped(index)
        bounds = [k.indices(n) for k, n in zip(key, self.shape, strict=True)]
        if any(step != 1 for _, _, step in bounds):
            return self._mapped(index)
        lo = [start for start, _, _ in bounds]
        size = [max(stop - start, 0) for start, stop, _ in bounds]
        out = np.empty(size, dtype=self.dtype)
        if out.size == 0:
            return out
        # the run: the trailing axes read whole, plus the partial axis before them
        run_axis = self.ndim - 1
        while run_axis > 0 and size[run_axis] == self.shape[run_axis]:
            run_axis -= 1
        strides = [math.prod(self.shape[a + 1 :]) for a in range(self.ndim)]
        run = size[run_axis] * strides[run_axis]
        flat = out.reshape(-1, run)
        item = self.dtype.itemsize
        with open(self.path, "rb", buffering=0) as handle:
            fd = handle.fileno()
            for row, outer in enumerate(np.ndindex(*size[:run_axis])):
                start = sum((lo[a] + i) * strides[a] for a, i in enumerate(outer))
                start += lo[run_axis] * strides[run_axis]
                target = memoryview(flat[row]).cast("B")
                done = 0
                while done < run * item:
                    got = os.preadv(fd, [target[done:]], self.offset + start * item + done)
                    if got <= 0:
                        raise OSError(f"unexpected end of file reading {self.path!r}")
                    done += got
        return out

    def _mapped(self, index: Any) -> np.ndarray:
        """Any other index (integers, steps): through a short-lived memory map."""
        mapped = np.load(self.path, mmap_mode="r")
        try:
            return np.array(mapped[index])
        finally:
            del mapped


def open_npy(path: str | os.PathLike[str], *, chunks: Any = None) -> Any:
    """Open a ``.npy`` file as a dask array, read block by block (needs ``tensornet[dask]``).

    The out-of-core decompositions (:func:`~tensornet.tt_svd`, :func:`~tensornet.hosvd`,
    :func:`~tensornet.st_hosvd`) take the result and never load the whole array. Write
    such a file piece by piece with ``numpy.lib.format.open_memmap(path, mode="w+", ...)``.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npy`` file (any shape and numeric dtype; C order).
    chunks : optional
        Dask chunk specification. Default: mode 0 whole (the out-of-core path needs it)
        and dask's automatic chunking of the other modes.

    Returns
    -------
    dask.array.Array
        Lazy array of the file's shape and dtype.

    Raises
    ------
    ImportError
        If dask is not installed.
    TypeError
        If ``path`` is not a path.
    ValueError
        If the file does not hold one array, or is in Fortran order.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from tensornet import open_npy
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(path, np.arange(24.0).reshape(2, 3, 4))
    >>> x = open_npy(path, chunks=(2, 3, 2))
    >>> x.chunks, float(x.sum().compute())
    (((2,), (3,), (2, 2)), 276.0)
    """
    try:
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - dask is in the dask extra
        raise ImportError("open_npy needs dask: pip install 'tensornet[dask]'") from exc
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or an os.PathLike, got {_describe(path)}")
    raw = os.fspath(path)
    blocks = _NpyBlocks(raw)
    if blocks.fortran and blocks.ndim > 1:
        raise ValueError(f"path holds a Fortran-ordered array; save it in C order: {raw!r}")
    if chunks is None:
        chunks = (-1, *(["auto"] * (blocks.ndim - 1)))
    return da.from_array(
        blocks,
        chunks=chunks,
        asarray=False,
        lock=False,
        meta=np.empty((0,) * blocks.ndim, blocks.dtype),
    )
