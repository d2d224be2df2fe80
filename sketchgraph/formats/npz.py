"""sketch-rnn stroke-3 ``.npz``: splits ``train``/``valid``/``test``, each a list of ``(n, 3)`` rows
``(dx, dy, pen_lifted)``.

Two layouts are read:

- the published one (sketch-rnn, Google's per-class Quick, Draw! ``.npz``): one object array per
  split whose elements are int16 ``(n, 3)`` arrays. Object arrays are stored as pickles, and
  ``np.load(allow_pickle=True)`` would run whatever code a crafted file names. They are read here by a
  restricted unpickler (``load_object_array``) that accepts only what numpy itself writes for arrays
  (an empty ``_reconstruct`` filled from a state whose data matches its shape, plain dtypes): any
  other callable or state in the pickle is refused with a ``FormatError`` and nothing in the file runs.
  ``allow_pickle=False`` refuses object arrays altogether.
- a pickle-free one that ``write_stroke3_npz(..., pickle_free=True)`` writes: ``<split>_data``
  ``(N, 3)`` with all rows concatenated and ``<split>_offsets`` ``(n + 1,)`` int64 row offsets.

A member is refused before it is read when it would inflate past ``MAX_MEMBER_BYTES`` (1 GiB) or to more
than ``MAX_INFLATION`` (100) times its stored size (a zip bomb). A member whose data is cut short is reported as
corrupt or truncated.

Folder walks (``read_sketches`` on a directory, ``prepare``) read drawing files only; ``.npz`` files,
which hold whole train/valid/test splits, are read when named.
"""

from __future__ import annotations

import math
import pickle
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

from ..errors import FormatError, SketchError
from ..sketch import Sketch
from .base import EmptySketchError, OnError, PathLike, Place, atomic_write, label_from_path, report
from .sniff import ZIP_MAGIC

__all__ = [
    "SPLITS", "MAX_MEMBER_BYTES", "MAX_INFLATION", "read_stroke3_npz", "iter_npz", "write_stroke3_npz", "npz_splits",
    "check_split", "load_object_array",
]

SPLITS: tuple[str, ...] = ("train", "valid", "test")


def npz_splits(files: Iterable[str]) -> list[str]:
    """Split names in an npz's keys, ``train``/``valid``/``test`` first, in either layout."""
    names = []
    for key in files:
        name = key[: -len("_data")] if key.endswith("_data") else key
        if key.endswith("_offsets") or name in names:
            continue
        names.append(name)
    return sorted(names, key=lambda s: (SPLITS.index(s) if s in SPLITS else len(SPLITS), s))


def check_split(path: PathLike, split: str) -> None:
    """Raise ``FormatError`` (a ``ValueError``) when the ``.npz`` at ``path`` has no split ``split`` (either
    layout), so a misspelt ``split=`` is refused at the call. A file that is no readable zip passes: reading it
    reports that."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n[: -len(".npy")] if n.endswith(".npy") else n for n in archive.namelist()]
    except (OSError, zipfile.BadZipFile, ValueError):
        return
    available = npz_splits(names)
    if split not in available:
        raise FormatError(f"no split {split!r}; the file has {available}", source=str(path))


def _load(z, key: str, source: str, what: str) -> np.ndarray:
    """The numeric member ``key`` of ``z`` (an ``NpzFile``) once its sizes pass ``_checked_member``; its data
    cut short or corrupt raises ``FormatError`` naming ``what``, not a misleading ``ValueError`` from numpy."""
    _checked_member(z.zip, key, source)
    try:
        return z[key]
    except ValueError as exc:
        raise FormatError(f"{what}: corrupt or truncated array data ({exc})", source=source) from None


def _split_rows(z, name: str, path: Path, allow_pickle: bool) -> Sequence[np.ndarray]:
    """Each sketch's stroke-3 rows ``(n, 3)`` of one split, loaded. A split that is not a list of sketches
    raises ``FormatError``."""
    source = str(path)
    if f"{name}_data" in z.files:
        if f"{name}_offsets" not in z.files:
            raise FormatError(f"split {name!r}: {name}_data has no {name}_offsets", source=source)
        data = _load(z, f"{name}_data", source, f"split {name!r}: {name}_data")
        offsets = _load(z, f"{name}_offsets", source, f"split {name!r}: {name}_offsets")
        if data.ndim != 2 or offsets.ndim != 1 or offsets.dtype.kind not in "iu" or not len(offsets) or (
                offsets[0] != 0 or offsets[-1] != len(data) or (np.diff(offsets) < 0).any()):
            raise FormatError(
                f"split {name!r}: {name}_offsets {offsets.dtype}{list(offsets.shape)} are not row offsets "
                f"0 <= ... <= {len(data)} into {name}_data {data.dtype}{list(data.shape)}", source=source)
        return [data[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
    info = _checked_member(z.zip, name, source)
    pickled = False  # an object array: a pickle, which np.load refuses without allow_pickle
    if info.filename.endswith(".npy"):
        with z.zip.open(info) as f:
            pickled = _read_header(f)[1].hasobject
    if pickled and not allow_pickle:
        raise FormatError(
            f"split {name!r} is a pickled object array and allow_pickle=False; with the default "
            "allow_pickle=True it is read by a restricted unpickler that runs nothing", source=source)
    arr = load_object_array(path, name) if pickled else _load(z, name, source, f"split {name!r}")
    if isinstance(arr, np.ndarray) and arr.ndim == 3 and arr.shape[2] == 3:
        # sketches all of one length: np.array(list of (L, 3) rows) stacks them into one (n, L, 3) array
        try:
            return list(arr.astype(np.float64) if arr.dtype == object else arr)
        except (TypeError, ValueError):
            raise FormatError(f"entry {name!r} is an object array {list(arr.shape)} of values that are not numbers",
                              source=source) from None
    if not isinstance(arr, np.ndarray) or arr.ndim != 1:
        found = f"{arr.dtype}{list(arr.shape)}" if isinstance(arr, np.ndarray) else type(arr).__name__
        raise FormatError(f"entry {name!r} is not a list of sketches ({found})", source=source)
    return arr


MAX_MEMBER_BYTES = 1 << 30
"""Largest uncompressed size of one ``.npz`` member read (1 GiB; a published sketch-rnn split is a few MB)."""
MAX_INFLATION = 100
"""A compressed member may inflate to at most this many times its stored size (plus ``_INFLATION_SLACK``); a
published split inflates about 3 times. Both limits are checked before a member is read, so a small zip bomb is
refused instead of allocating gigabytes or yielding millions of bad records."""
_INFLATION_SLACK = 1 << 20


def _checked_member(archive: zipfile.ZipFile, name: str, source: str) -> zipfile.ZipInfo:
    """The zip entry of member ``name`` (``name.npy``, else ``name``) once its sizes are within
    ``MAX_MEMBER_BYTES`` and ``MAX_INFLATION``; else ``FormatError``."""
    names = set(archive.namelist())
    info = archive.getinfo(f"{name}.npy" if f"{name}.npy" in names else name)
    limit = min(MAX_MEMBER_BYTES, MAX_INFLATION * info.compress_size + _INFLATION_SLACK)
    if info.file_size > limit:
        raise FormatError(f"member {info.filename!r} would inflate from {info.compress_size:,} to {info.file_size:,} "
                          f"bytes (limit {limit:,}: at most {MAX_INFLATION} times its stored size, and "
                          f"{MAX_MEMBER_BYTES:,} bytes); not read", source=source)
    return info


def _read_header(f) -> tuple[tuple[int, ...], np.dtype]:
    """``(shape, dtype)`` from the header of an open ``.npy`` stream, which is left at the start of the data."""
    version = npy_format.read_magic(f)
    read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
    shape, _, dtype = read_header(f)
    return tuple(shape), dtype


# The restricted unpickler. ``ndarray.__reduce__`` writes ``_reconstruct(ndarray, (0,), b'b')``: an empty array,
# filled by ``__setstate__((1, shape, dtype, fortran, data))`` (BUILD), which numpy checks against the shape only
# for bytes: an object array given a shorter list crashes the process, and ``_reconstruct`` with another shape
# and no state gives an uninitialised array of any size. So only that call is accepted, and every state is checked
# (``_Pending.__setstate__``) before numpy sees it. ``numpy.dtype`` is rebuilt from a plain type code only.
_SIMPLE_DTYPE = re.compile(r"^(?:[biufcO][0-9]{1,2}|[US][0-9]{1,6})$")


class _NdarrayName:
    """What the pickle's ``numpy.ndarray`` becomes: a name for ``_reconstruct`` only (calling it is refused)."""


class _DtypeSpec:
    """A pickled ``numpy.dtype(code, align, copy)`` plus its BUILD state, for plain number, object and string
    codes only (``i2``, ``O8``, ``U1``; no structured, void or datetime types)."""

    def __init__(self, code: object, align: object = False, copy: object = True):
        if not isinstance(code, str) or not _SIMPLE_DTYPE.match(code):
            raise pickle.UnpicklingError(f"refusing numpy.dtype({code!r}): only plain number, object or string types")
        self.dtype = np.dtype(code)

    def __setstate__(self, state: object) -> None:
        # numpy writes (3, byte order, None, None, None, -1, -1, flags) for a plain type
        sizes = (-1, -1) if self.dtype.kind not in "US" else (self.dtype.itemsize, self.dtype.alignment)
        if not (isinstance(state, tuple) and len(state) == 8 and state[0] == 3 and state[1] in ("<", ">", "|", "=")
                and state[2:5] == (None, None, None) and state[5:7] == sizes):
            raise pickle.UnpicklingError(f"refusing a numpy.dtype state {state!r:.80}: not a plain type's")
        if state[1] in "<>":
            self.dtype = self.dtype.newbyteorder(state[1])


def _dtype_of(spec: object) -> np.dtype:
    if not isinstance(spec, _DtypeSpec):
        raise pickle.UnpicklingError(f"expected a numpy.dtype, got {type(spec).__name__}")
    return spec.dtype


class _Pending(np.ndarray):
    """An array ``_reconstruct`` made empty; its state is checked before numpy fills it (see above)."""

    def __setstate__(self, state: object) -> None:
        if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
            raise pickle.UnpicklingError(f"refusing an ndarray state {state!r:.80}: not numpy's (1, shape, ...)")
        _, shape, spec, fortran, data = state
        if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)):
            raise pickle.UnpicklingError(f"refusing an ndarray shape {shape!r:.80}")
        dtype, size = _dtype_of(spec), math.prod(shape)
        if isinstance(data, str):  # a Python 2 str read as latin-1, as numpy reads it
            data = data.encode("latin-1")
        if dtype == np.dtype(object):
            ok = isinstance(data, list) and len(data) == size
        else:
            ok = isinstance(data, bytes) and len(data) == size * dtype.itemsize
        if not ok:
            raise pickle.UnpicklingError(f"the data of a {dtype}{list(shape)} array does not match its shape "
                                         f"({type(data).__name__} of {len(data) if hasattr(data, '__len__') else '?'})")
        super().__setstate__((1, shape, dtype, bool(fortran), data))


def _reconstruct(subtype: object, shape: object, code: object) -> np.ndarray:
    """numpy's ``_reconstruct`` as ``ndarray.__reduce__`` calls it: an empty ``(0,)`` array, nothing else."""
    if not isinstance(subtype, _NdarrayName) or shape != (0,) or not isinstance(code, (bytes, str)):
        raise pickle.UnpicklingError(f"refusing _reconstruct(..., {shape!r:.40}, ...): numpy writes an empty (0,) "
                                     "array here and fills it from its state")
    return np.ndarray.__new__(_Pending, (0,), np.uint8)


def _scalar(spec: object, data: object = None) -> object:
    """numpy's ``scalar(dtype, bytes)``: one number of a plain type from exactly its bytes."""
    dtype = _dtype_of(spec)
    if isinstance(data, str):
        data = data.encode("latin-1")
    if dtype.hasobject or not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError(f"refusing a numpy {dtype} scalar from {type(data).__name__}")
    return np.frombuffer(data, dtype=dtype)[0]


_ARRAY_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): _NdarrayName(), ("numpy", "dtype"): _DtypeSpec,
    **{(module, name): fn for module in ("numpy.core.multiarray", "numpy._core.multiarray")
       for name, fn in (("_reconstruct", _reconstruct), ("scalar", _scalar))},
}


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays as numpy pickles them and nothing else: every other global a pickle names is refused,
    and the numpy ones are checked stand-ins (see above)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ARRAY_GLOBALS:
            raise pickle.UnpicklingError(f"refusing {module}.{name}: only numpy arrays may be unpickled here")
        return _ARRAY_GLOBALS[module, name]


def _plain(obj: object) -> object:
    """``obj`` with a ``_Pending`` array as a plain ``ndarray`` (a view: no copy)."""
    return obj.view(np.ndarray) if isinstance(obj, _Pending) else obj


def load_object_array(path: PathLike, name: str) -> np.ndarray:
    """The pickled object array ``name`` ``(n,)`` of an ``.npz`` (e.g. a published sketch-rnn split), through a
    restricted unpickler that accepts only what numpy itself writes for arrays of arrays and numbers (Python 2
    pickles read as latin-1, as ``np.load(encoding="latin1")``): ``_reconstruct`` of an empty array filled from a
    state whose data matches its shape, and plain dtypes. Anything else, or a member larger than
    ``MAX_MEMBER_BYTES`` / ``MAX_INFLATION``, raises ``FormatError``; nothing in the file runs."""
    source = str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            info = _checked_member(archive, name, source)
            with archive.open(info) as f:
                shape, dtype = _read_header(f)
                if dtype != np.dtype(object):
                    raise FormatError(f"split {name!r} is not an object array ({dtype})", source=source)
                arr = _plain(_ArrayUnpickler(f, encoding="latin1").load())
    except FormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - refused globals, truncated or corrupt pickles
        raise FormatError(f"split {name!r}: cannot unpickle safely ({type(exc).__name__}: {exc})",
                          source=source) from None
    if not isinstance(arr, np.ndarray) or arr.shape != shape or arr.dtype != np.dtype(object):
        raise FormatError(f"split {name!r}: the pickle holds {type(arr).__name__}, not the {shape} object array its "
                          "header announces", source=source)
    for i, item in enumerate(arr.flat):  # the elements as plain arrays (views)
        if isinstance(item, _Pending):
            arr.flat[i] = item.view(np.ndarray)
    return arr


def read_stroke3_npz(
    path: PathLike,
    *,
    split: str | None = None,
    label: str | None = None,
    on_error: OnError = None,
    keep_empty: bool = False,
    allow_pickle: bool = True,
) -> Iterator[Sketch]:
    """Sketches from a stroke-3 ``.npz`` (see the module docstring for the two layouts and how
    pickled object arrays are read without running anything). ``allow_pickle=False`` refuses them.

    ``split`` selects one split; ``None`` reads all (train, valid, test, then any others). Each
    sketch gets ``key_id = "<split>/<index>"`` and ``meta = {"split", "index"}``; ``label``
    defaults to the file name (``aaron_sheep.npz`` -> ``"aaron_sheep"``).
    """
    for _, sketch in iter_npz(path, split=split, label=label, on_error=on_error, keep_empty=keep_empty,
                              allow_pickle=allow_pickle):
        yield sketch


def iter_npz(
    path: PathLike,
    *,
    split: str | None = None,
    label: str | None = None,
    on_error: OnError = None,
    keep_empty: bool = False,
    allow_pickle: bool = True,
    from_name: bool = True,
) -> Iterator[tuple[Place, Sketch]]:
    """``read_stroke3_npz`` with each sketch's ``Place`` (``test[4]``: split and 0-based row)."""
    path = Path(path)
    source = str(path)
    if label is None and from_name:
        label = label_from_path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        z = np.load(path, allow_pickle=False) if head in ZIP_MAGIC else None  # else np.load tries .npy, then a pickle
        files = z.files if z is not None else []
    except Exception as exc:  # noqa: BLE001 - OSError, BadZipFile, a truncated zip
        report(FormatError(f"not a readable .npz file ({type(exc).__name__}: {exc})", source=source,
                           whole_file=True), on_error)
        return
    if z is None:  # np.load would try it as .npy or as a pickle, and advise allow_pickle
        report(FormatError("not an .npz (zip) file" + ("" if head else ": it is empty"), source=source,
                           whole_file=True), on_error)
        return
    with z:
        available = npz_splits(files)
        if split is not None and split not in available:
            raise FormatError(f"no split {split!r}; the file has {available}", source=source)
        for name in [split] if split is not None else available:
            try:  # the split as a whole (a record's own problem is reported by _sketch)
                split_rows = _split_rows(z, name, path, allow_pickle)
            except FormatError as exc:
                exc.whole_file = True  # the split's layout
                report(exc, on_error)
                continue
            except Exception as exc:  # noqa: BLE001 - a corrupt member: zlib, zipfile, pickle errors
                report(FormatError(f"split {name!r}: unreadable ({type(exc).__name__}: {exc})", source=source,
                                   whole_file=True), on_error)
                continue
            for i, rows in enumerate(split_rows):
                sketch = _sketch(rows, name, i, label, keep_empty, source, on_error)
                if sketch is not None:
                    yield Place(source, prefix=f"{name}[{i}]: "), sketch


def _sketch(rows: object, name: str, i: int, label: str | None, keep_empty: bool, source: str,
            on_error: OnError) -> Sketch | None:
    """Row ``i`` of split ``name`` as a ``Sketch``; a bad one is reported and gives ``None``."""
    try:
        rows = np.asarray(rows)
        if rows.ndim != 2 or rows.shape[1] != 3 or rows.dtype.kind not in "iuf":
            raise SketchError(f"expected numeric stroke-3 rows (n, 3), got {rows.dtype}{list(rows.shape)}")
        sketch = Sketch.from_stroke3(rows, label=label, key_id=f"{name}/{i}", meta={"split": name, "index": i})
        if sketch.num_points == 0 and not keep_empty:
            raise EmptySketchError("empty drawing (no points)")
    except (SketchError, TypeError, ValueError) as exc:
        cls = type(exc) if isinstance(exc, FormatError) else FormatError
        report(cls(f"{name}[{i}]: {exc}", source=source), on_error)
        return None
    return sketch


def _as_rows(item: Sketch | np.ndarray, where: str) -> np.ndarray:
    rows = item.to_stroke3() if isinstance(item, Sketch) else np.asarray(item)
    if rows.ndim != 2 or rows.shape[1] != 3:
        raise SketchError(f"{where}: expected a Sketch or stroke-3 rows (n, 3), got shape {rows.shape}")
    if not np.isfinite(rows).all():
        raise SketchError(f"{where}: stroke-3 rows contain NaN or infinity")
    return rows


def _common_dtype(rows: list[np.ndarray]) -> np.dtype:
    """int16 when every value is an integer that fits (the published files), else float32."""
    for r in rows:
        if r.size and (np.abs(r).max() > 32767 or (r != np.round(r)).any()):
            return np.dtype(np.float32)
    return np.dtype(np.int16)


def write_stroke3_npz(
    path: PathLike,
    *,
    train: Iterable[Sketch | np.ndarray] = (),
    valid: Iterable[Sketch | np.ndarray] = (),
    test: Iterable[Sketch | np.ndarray] = (),
    pickle_free: bool = False,
    compressed: bool = True,
) -> Path:
    """Write splits of sketches (or stroke-3 ``(n, 3)`` arrays) to ``path`` atomically.

    The default is the published layout (object arrays of int16 rows, float32 when coordinates are
    not integers), readable by sketch-rnn code. ``pickle_free=True`` writes ``<split>_data`` ``(N, 3)``
    and ``<split>_offsets`` ``(n + 1,)`` instead, which loads with ``allow_pickle=False``.
    """
    arrays: dict[str, np.ndarray] = {}
    for name, items in (("train", train), ("valid", valid), ("test", test)):
        rows = [_as_rows(item, f"{name}[{i}]") for i, item in enumerate(items)]
        dtype = _common_dtype(rows)
        if pickle_free:
            lengths = np.array([len(r) for r in rows], dtype=np.int64)
            arrays[f"{name}_offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            arrays[f"{name}_data"] = (
                np.concatenate(rows).astype(dtype) if rows else np.zeros((0, 3), dtype)
            )
        else:
            obj = np.empty(len(rows), dtype=object)
            for i, r in enumerate(rows):
                obj[i] = r.astype(dtype)
            arrays[name] = obj
    save = np.savez_compressed if compressed else np.savez
    with atomic_write(path, "wb") as f:
        save(f, **arrays)
    return Path(path)
