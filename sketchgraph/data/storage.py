"""The prepared dataset on disk and ``PreparedDataset``, its memory-mapped reader.

A prepared dataset is a directory (``S`` sketches, ``P`` points in all)::

    meta.json       format_version, classes, splits {name: count}, preprocessing, graph_spec,
                    sources (path, sha256, bytes, format, records, kept), counts, split_method,
                    class_counts, merged_labels ({other spelling: stored class name}), left_out
                    ([{path, reason}]: what the input walks left out), files_without_records
    coords.npy      (P, 2) int16 when every coordinate is an integer in range (simplified data),
                    else float32
    flags.npy       (P,) uint8: 101 on the last point of each stroke, else 100
    offsets.npy     (S + 1,) int64: sketch i is points offsets[i]:offsets[i + 1]
    labels.npy      (S,) int32 index into meta["classes"]
    split.npy       (S,) uint8 index into list(meta["splits"])
    key_ids.npy     (S,) bytes (UTF-8, fixed width; b"" when a record had none)
    times.npy       (P,) float32 ms, only when every sketch kept its times (no simplification)
    errors.jsonl    one line per malformed record / empty drawing / repeat / unreadable file or part: source,
                    line (None where the reader numbers records, named in the message), kind, message; by
                    source, then line or record

Sketches are stored in input order (sorted files, then line order). Every array loads with
``np.load(..., mmap_mode="r")`` and no pickle; ``meta.json`` is written last, so a directory without
it is not a prepared dataset.
"""

from __future__ import annotations

import json
import os
import shutil
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SketchError
from ..graph import FLAG_END, GraphSpec
from ..preprocess import Preprocessing
from ..sketch import Sketch

__all__ = ["FORMAT_VERSION", "ARRAYS", "PreparedDataset", "coords_dtype", "is_prepared", "write_dataset", "publish"]

FORMAT_VERSION = 1
ARRAYS = ("coords", "flags", "offsets", "labels", "split", "key_ids")


def coords_dtype(coords: np.ndarray) -> np.dtype:
    """int16 when every value is an integer within int16's range (lossless), else float32."""
    lossless = not len(coords) or (np.array_equal(coords, np.round(coords)) and np.abs(coords).max() <= 32767)
    return np.dtype(np.int16 if lossless else np.float32)


def write_dataset(
    folder: Path, coords: np.ndarray, flags: np.ndarray, lengths: np.ndarray, labels: np.ndarray,
    split: np.ndarray, key_ids: np.ndarray, times: np.ndarray | None, meta: dict[str, Any],
    errors: list[dict[str, Any]],
) -> dict[str, Any]:
    """Write the arrays (see the module docstring), ``errors.jsonl`` and, last, ``meta.json`` into
    ``folder`` (anything else there but ``shards/`` is removed first; ``shards/`` is removed at the end).

    Args:
        coords ``(P, 2)``, flags ``(P,)``, lengths ``(S,)`` points per sketch, labels ``(S,)``, split
        ``(S,)``, key_ids ``(S,)`` str, times ``(P,)`` or ``None``; ``meta`` is completed with the
        array names, ``num_points``, ``coords_dtype`` and ``has_times``, and returned.
    """
    for p in folder.iterdir():
        if p.name != "shards":
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    coords = coords.astype(coords_dtype(coords))
    arrays = {
        "coords": coords, "flags": flags.astype(np.uint8),
        "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        "labels": labels.astype(np.int32), "split": split.astype(np.uint8),
        "key_ids": np.char.encode(np.asarray(key_ids, dtype=str), "utf-8") if len(key_ids) else np.zeros(0, "S1"),
    }
    if times is not None:
        arrays["times"] = times.astype(np.float32)
    for name, arr in arrays.items():
        np.save(folder / f"{name}.npy", arr)
    with open(folder / "errors.jsonl", "w", encoding="utf-8") as f:
        for e in errors:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    meta = dict(meta, num_points=int(len(coords)), coords_dtype=str(coords.dtype), has_times=times is not None,
                arrays={name: f"{name}.npy" for name in arrays})
    shutil.rmtree(folder / "shards", ignore_errors=True)
    (folder / "meta.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return meta


def publish(partial: Path, out: Path) -> None:
    """Rename the finished ``partial`` directory to ``out``, replacing an existing ``out`` (which the
    caller has checked is a prepared dataset or empty) so ``out`` is never missing or half-written
    for longer than two renames."""
    old = out.with_name(out.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if out.exists():
        os.replace(out, old)
    os.replace(partial, out)
    if old.exists():
        shutil.rmtree(old)


def recover(out: Path) -> bool:
    """Undo a ``publish`` killed between its two renames: ``out`` missing and ``out.old`` a complete dataset
    -> move the old dataset back (the replacement was never published). Returns whether it did."""
    old = out.with_name(out.name + ".old")
    if out.exists() or not is_prepared(old):
        return False
    os.replace(old, out)
    return True


def is_prepared(path: str | Path) -> bool:
    """Whether ``path`` holds a complete prepared dataset (its ``meta.json`` exists)."""
    return (Path(path) / "meta.json").is_file()


class PreparedDataset:
    """A prepared dataset directory, memory-mapped.

    Attributes:
        path: the directory.
        meta: the parsed ``meta.json``.
        classes: class names; ``labels`` index into it.
        coords ``(P, 2)``, flags ``(P,)``, offsets ``(S + 1,)``, labels ``(S,)``, split_index ``(S,)``:
            the memory-mapped arrays (read-only).

    Pickles by path (workers of a ``DataLoader`` re-open the memory maps instead of copying them).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        meta_path = self.path / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{self.path} is not a prepared dataset (no meta.json); run `sketchgraph prepare`")
        self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        version = self.meta.get("format_version")
        if version != FORMAT_VERSION:
            raise SketchError(f"{self.path}: prepared-dataset format {version}, this library reads {FORMAT_VERSION}; "
                              "prepare it again")
        self._open()

    def _open(self) -> None:
        load = lambda name: np.load(self.path / f"{name}.npy", mmap_mode="r", allow_pickle=False)  # noqa: E731
        self.coords = load("coords")
        self.flags = load("flags")
        self.offsets = load("offsets")
        self.labels = load("labels")
        self.split_index = load("split")
        self.times = load("times") if (self.path / "times.npy").exists() else None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])

    # ------------------------------------------------------------------ description
    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def split_names(self) -> list[str]:
        return list(self.meta["splits"])

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing.from_dict(self.meta["preprocessing"])

    @property
    def graph_spec(self) -> GraphSpec:
        return GraphSpec.from_dict(self.meta["graph_spec"])

    @cached_property
    def key_ids(self) -> np.ndarray:
        """``(S,)`` bytes key ids (memory-mapped; ``.decode()`` one to get a str)."""
        return np.load(self.path / "key_ids.npy", mmap_mode="r", allow_pickle=False)

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 (hex) of the stored content: classes, split names, and every array (points, flags, offsets,
        labels, split assignment, key ids). Two datasets with the same fingerprint hold the same sketches in
        the same splits wherever their folders are; a dataset prepared again with another split seed or from
        other files differs. Training records it; resuming and ``report.json`` use it."""
        import hashlib

        digest = hashlib.sha256(json.dumps([self.classes, self.split_names]).encode())
        for name in (*ARRAYS, "times"):
            path = self.path / f"{name}.npy"
            if path.exists():
                array = np.load(path, mmap_mode="r", allow_pickle=False)
                digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
                digest.update(np.ascontiguousarray(array).view(np.uint8).reshape(-1).data)
        return digest.hexdigest()

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        splits = ", ".join(f"{k}={v}" for k, v in self.meta["splits"].items())
        return f"PreparedDataset({str(self.path)!r}, sketches={len(self)}, classes={len(self.classes)}, {splits})"

    def lengths(self, indices: np.ndarray | None = None) -> np.ndarray:
        """Points per sketch ``(len(indices),)`` (all sketches when ``indices`` is None)."""
        off = np.asarray(self.offsets)
        if indices is None:
            return np.diff(off)
        idx = np.asarray(indices, dtype=np.int64)
        return off[idx + 1] - off[idx]

    # ------------------------------------------------------------------ access
    def indices(self, name: str) -> np.ndarray:
        """``(n,)`` int64 indices of the sketches in split ``name``, in stored order."""
        names = self.split_names
        if name not in names:
            raise KeyError(f"no split {name!r}; this dataset has {names}")
        return np.flatnonzero(np.asarray(self.split_index) == names.index(name))

    def split(self, name: str):
        """The ``SketchSplit`` (a ``torch.utils.data.Dataset``) of split ``name``."""
        from .loader import SketchSplit

        return SketchSplit(self, name)

    def sketch(self, i: int) -> Sketch:
        """Sketch ``i`` as stored (preprocessed): strokes rebuilt from the flags, label, key_id."""
        i = int(i)
        if not 0 <= i < len(self):
            raise IndexError(f"sketch index {i} out of range for {len(self)} sketches")
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        xy = np.asarray(self.coords[a:b], dtype=np.float32)
        if self.times is not None:
            xy = np.column_stack([xy, np.asarray(self.times[a:b], dtype=np.float32)])
        ends = np.flatnonzero(np.asarray(self.flags[a:b]) == FLAG_END) + 1
        strokes = np.split(xy, ends[:-1]) if len(ends) else [xy]
        key = bytes(self.key_ids[i]).decode("utf-8")
        return Sketch(list(strokes), label=self.classes[int(self.labels[i])], key_id=key or None,
                      meta={"split": self.split_names[int(self.split_index[i])], "index": i})
