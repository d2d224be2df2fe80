"""sketch-rnn stroke-3 ``.npz``: splits ``train``/``valid``/``test``, each a list of ``(n, 3)`` rows
``(dx, dy, pen_lifted)``.

Two layouts are read:

- the published one (sketch-rnn, Google's per-class Quick, Draw! ``.npz``): one object array per
  split whose elements are int16 ``(n, 3)`` arrays. Object arrays are stored as pickles, and
  ``np.load(allow_pickle=True)`` would run whatever code a crafted file names. They are read here by a
  restricted unpickler (``load_object_array``) that can only rebuild numpy arrays and dtypes: any
  other callable in the pickle is refused with a ``FormatError`` and nothing in the file runs.
  ``allow_pickle=False`` refuses object arrays altogether.
- a pickle-free one that ``write_stroke3_npz(..., pickle_free=True)`` writes: ``<split>_data``
  ``(N, 3)`` with all rows concatenated and ``<split>_offsets`` ``(n + 1,)`` int64 row offsets.

Folder walks (``read_sketches`` on a directory, ``prepare``) read drawing files only; ``.npz`` files,
which hold whole train/valid/test splits, are read when named.
"""

from __future__ import annotations

import pickle
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

__all__ = ["SPLITS", "read_stroke3_npz", "iter_npz", "write_stroke3_npz", "npz_splits", "load_object_array"]

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


def _split_rows(z, name: str, path: Path, allow_pickle: bool) -> Sequence[np.ndarray]:
    """Each sketch's stroke-3 rows ``(n, 3)`` of one split, loaded. A split that is not a list of sketches
    raises ``FormatError``."""
    source = str(path)
    if f"{name}_data" in z.files:
        if f"{name}_offsets" not in z.files:
            raise FormatError(f"split {name!r}: {name}_data has no {name}_offsets", source=source)
        data, offsets = z[f"{name}_data"], z[f"{name}_offsets"]
        if data.ndim != 2 or offsets.ndim != 1 or offsets.dtype.kind not in "iu" or not len(offsets) or (
                offsets[0] != 0 or offsets[-1] != len(data) or (np.diff(offsets) < 0).any()):
            raise FormatError(
                f"split {name!r}: {name}_offsets {offsets.dtype}{list(offsets.shape)} are not row offsets "
                f"0 <= ... <= {len(data)} into {name}_data {data.dtype}{list(data.shape)}", source=source)
        return [data[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
    try:
        arr = z[name]
    except ValueError:  # an object array: np.load refuses it without pickle
        if not allow_pickle:
            raise FormatError(
                f"split {name!r} is a pickled object array and allow_pickle=False; with the default "
                "allow_pickle=True it is read by a restricted unpickler that runs nothing", source=source,
            ) from None
        arr = load_object_array(path, name)
    if arr.ndim != 1:
        raise FormatError(f"entry {name!r} is not a list of sketches ({arr.dtype}{list(arr.shape)})", source=source)
    return arr


_ARRAY_GLOBALS = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    *((module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
      for name in ("_reconstruct", "scalar")),
})


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and nothing else: every other global a pickle names is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ARRAY_GLOBALS:
            raise pickle.UnpicklingError(f"refusing {module}.{name}: only numpy arrays may be unpickled here")
        return super().find_class(module, name)


def load_object_array(path: PathLike, name: str) -> np.ndarray:
    """The pickled object array ``name`` of an ``.npz`` (e.g. a published sketch-rnn split), through a
    restricted unpickler that can only rebuild numpy arrays (Python 2 pickles read as latin-1, as
    ``np.load(encoding="latin1")``). A pickle naming anything else raises ``FormatError``; nothing runs."""
    source = str(path)
    try:
        with zipfile.ZipFile(path) as archive, archive.open(f"{name}.npy") as f:
            version = npy_format.read_magic(f)
            read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            shape, _, dtype = read_header(f)
            if dtype != np.dtype(object):
                raise FormatError(f"split {name!r} is not an object array ({dtype})", source=source)
            arr = _ArrayUnpickler(f, encoding="latin1").load()
    except FormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - refused globals, truncated or corrupt pickles
        raise FormatError(f"split {name!r}: cannot unpickle safely ({type(exc).__name__}: {exc})",
                          source=source) from None
    if not isinstance(arr, np.ndarray) or arr.shape != tuple(shape):
        raise FormatError(f"split {name!r}: the pickle holds {type(arr).__name__}, not the {shape} array its "
                          "header announces", source=source)
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
) -> Iterator[tuple[Place, Sketch]]:
    """``read_stroke3_npz`` with each sketch's ``Place`` (``test[4]``: split and 0-based row)."""
    path = Path(path)
    source = str(path)
    if label is None:
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
