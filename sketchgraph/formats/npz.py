"""sketch-rnn stroke-3 ``.npz``: splits ``train``/``valid``/``test``, each a list of ``(n, 3)`` rows
``(dx, dy, pen_lifted)``.

Two layouts are read:

- the published one (sketch-rnn, Google's per-class Quick, Draw! ``.npz``): one object array per
  split whose elements are int16 ``(n, 3)`` arrays. Object arrays can only be loaded with pickle,
  and unpickling runs code chosen by the file's author, so such files are loaded
  (``allow_pickle=True, encoding="latin1"``) only when the caller names the file itself: the
  directory walk of ``read_sketches`` never opens ``.npz`` files, and ``allow_pickle=False``
  refuses them.
- a pickle-free one that ``write_stroke3_npz(..., pickle_free=True)`` writes: ``<split>_data``
  ``(N, 3)`` with all rows concatenated and ``<split>_offsets`` ``(n + 1,)`` int64 row offsets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ..errors import FormatError, SketchError
from ..sketch import Sketch
from .base import EmptySketchError, OnError, PathLike, atomic_write, label_from_path, report

__all__ = ["SPLITS", "read_stroke3_npz", "write_stroke3_npz", "npz_splits"]

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


def _split_rows(z, name: str, path: Path, allow_pickle: bool) -> Iterator[np.ndarray]:
    """Each sketch's stroke-3 rows ``(n, 3)`` of one split."""
    if f"{name}_data" in z.files:
        data, offsets = z[f"{name}_data"], z[f"{name}_offsets"]
        for a, b in zip(offsets[:-1], offsets[1:]):
            yield data[a:b]
        return
    try:
        arr = z[name]
    except ValueError:  # an object array and allow_pickle=False
        if not allow_pickle:
            raise FormatError(
                f"split {name!r} is a pickled object array; pass allow_pickle=True only for files you trust",
                source=str(path),
            ) from None
        with np.load(path, allow_pickle=True, encoding="latin1") as zp:
            arr = zp[name]
    yield from arr


def read_stroke3_npz(
    path: PathLike,
    *,
    split: str | None = None,
    label: str | None = None,
    on_error: OnError = None,
    keep_empty: bool = False,
    allow_pickle: bool = True,
) -> Iterator[Sketch]:
    """Sketches from a stroke-3 ``.npz`` (see the module docstring for the two layouts and why
    pickled files are only opened when pointed at).

    ``split`` selects one split; ``None`` reads all (train, valid, test, then any others). Each
    sketch gets ``key_id = "<split>/<index>"`` and ``meta = {"split", "index"}``; ``label``
    defaults to the file name (``aaron_sheep.npz`` -> ``"aaron_sheep"``).
    """
    path = Path(path)
    source = str(path)
    if label is None:
        label = label_from_path(path)
    with np.load(path, allow_pickle=False) as z:
        available = npz_splits(z.files)
        if split is not None and split not in available:
            raise FormatError(f"no split {split!r}; the file has {available}", source=source)
        for name in [split] if split is not None else available:
            for i, rows in enumerate(_split_rows(z, name, path, allow_pickle)):
                try:
                    rows = np.asarray(rows)
                    if rows.ndim != 2 or rows.shape[1] != 3:
                        raise SketchError(f"expected stroke-3 rows (n, 3), got shape {rows.shape}")
                    sketch = Sketch.from_stroke3(
                        rows, label=label, key_id=f"{name}/{i}", meta={"split": name, "index": i}
                    )
                    if sketch.num_points == 0 and not keep_empty:
                        raise EmptySketchError("empty drawing (no points)")
                except SketchError as exc:
                    cls = type(exc) if isinstance(exc, FormatError) else FormatError
                    report(cls(f"{name}[{i}]: {exc}", source=source), on_error)
                    continue
                yield sketch


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
