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
    key_ids.npy     (S,) bytes (UTF-8, fixed width; b"" when a record had none, or one longer than
                    shard.MAX_KEY_ID_CHARS = 256 characters: listed in errors.jsonl, kind "long_key_id")
    times.npy       (P,) float32 ms, only when every sketch kept its times (no simplification)
    errors.jsonl    one line per malformed record / empty drawing / repeat / unreadable file or part / key_id
                    too long to store (the drawing kept): source,
                    line (None where the reader numbers records, named in the message), kind, message; by
                    source, then line or record

Sketches are stored in input order (sorted files, then line order). Every array loads with
``np.load(..., mmap_mode="r")`` and no pickle; ``meta.json`` is written last, so a directory without
it is not a prepared dataset. ``PreparedDataset`` checks when it opens a dataset that the arrays agree with
``meta.json`` (counts, shapes, dtypes) and with each other (offsets rising from 0 to P, labels and split indices in
range, split sizes, a stroke end on each sketch's last point).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SketchError
from ..formats.base import fsync_dir, sync_file
from ..graph import FLAG_END, GraphSpec
from ..preprocess import Preprocessing
from ..sketch import Sketch

__all__ = ["FORMAT_VERSION", "ARRAYS", "PARTIAL_MARKER", "PreparedDataset", "coords_dtype", "is_prepared",
           "write_dataset", "claim_partial", "publish", "recover", "replaced_folders"]

FORMAT_VERSION = 1
ARRAYS = ("coords", "flags", "offsets", "labels", "split", "key_ids")
PARTIAL_MARKER = ".sketchgraph-prepare"
"""The file ``prepare`` writes into the ``OUT.partial`` work folder it creates (``claim_partial``): a ``.partial``
folder without it is not prepare's, and is neither reused nor emptied. ``publish`` removes it from the dataset."""


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
    ``folder`` (anything else there but ``shards/`` and ``PARTIAL_MARKER`` is removed first; ``shards/`` is removed at
    the end). Every file and the folder are synced to disk (``os.fsync``) before this returns.

    Args:
        coords ``(P, 2)``, flags ``(P,)``, lengths ``(S,)`` points per sketch, labels ``(S,)``, split
        ``(S,)``, key_ids ``(S,)`` str, times ``(P,)`` or ``None``; ``meta`` is completed with the
        array names, ``num_points``, ``coords_dtype`` and ``has_times``, and returned.
    """
    for p in folder.iterdir():
        if p.name not in ("shards", PARTIAL_MARKER):
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
        with open(folder / f"{name}.npy", "wb") as f:
            np.save(f, arr)
            sync_file(f)
    with open(folder / "errors.jsonl", "w", encoding="utf-8") as f:
        for e in errors:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
        sync_file(f)
    meta = dict(meta, num_points=int(len(coords)), coords_dtype=str(coords.dtype), has_times=times is not None,
                arrays={name: f"{name}.npy" for name in arrays})
    shutil.rmtree(folder / "shards", ignore_errors=True)
    with open(folder / "meta.json", "w", encoding="utf-8") as f:  # last: the dataset is complete once it is there
        f.write(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
        sync_file(f)
    fsync_dir(folder)
    return meta


def claim_partial(partial: Path, out: Path, *, fresh: bool) -> None:
    """Make ``partial`` this ``prepare``'s work folder for ``out``: a folder there is reused (``fresh``: emptied first)
    only when it carries ``PARTIAL_MARKER``, the file ``prepare`` writes into the work folders it creates, or is one an
    older ``prepare`` left (``_older_work_folder``); anything else of that name (a user's own folder or file) is
    refused with ``FileExistsError`` and left as it is."""
    if partial.exists() or partial.is_symlink():
        if not partial.is_dir() or not ((partial / PARTIAL_MARKER).is_file() or _older_work_folder(partial)):
            raise FileExistsError(
                f"{partial} exists and is not a work folder of sketchgraph prepare (it has no {PARTIAL_MARKER} file); "
                f"prepare builds {out} in {partial.name} and would replace what is there, so it stops. Rename or move "
                f"{partial}, or prepare into another --out")
        if fresh:
            shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    marker = partial / PARTIAL_MARKER
    if not marker.is_file():
        marker.write_text(f"work folder of `sketchgraph prepare` for {out.name}; renamed to it when complete\n",
                          encoding="utf-8")


_WORK_FILES = frozenset({*(f"{a}.npy" for a in (*ARRAYS, "times")), "meta.json", "errors.jsonl"})


def _older_work_folder(partial: Path) -> bool:
    """Whether ``partial`` (a real folder, not a link) is the work folder of a ``prepare`` run by a sketchgraph from
    before ``PARTIAL_MARKER``: it holds a ``shards/`` folder of cached shards (``000012.npz`` / ``.json``, or a
    ``000012.tmp.npz`` being written) and nothing else but the files ``write_dataset`` writes. A user's own folder does
    not look so."""
    if partial.is_symlink() or not (partial / "shards").is_dir() or (partial / "shards").is_symlink():
        return False
    if any(p.name != "shards" and (p.name not in _WORK_FILES or not p.is_file()) for p in partial.iterdir()):
        return False
    stems = [p.name.split(".", 1) for p in (partial / "shards").iterdir()]
    return all(p.is_file() for p in (partial / "shards").iterdir()) and all(
        len(x) == 2 and x[0].isdigit() and x[1] in ("npz", "json", "tmp.npz", "tmp.json") for x in stems)


def replaced_folders(out: Path) -> list[Path]:
    """The hidden ``.<name>.replaced-<pid>`` siblings of ``out``: where ``publish`` moves the dataset it replaces
    (only ``publish`` gives a folder such a name), sorted."""
    return sorted(out.parent.glob(f".{glob.escape(out.name)}.replaced-*"))


def publish(partial: Path, out: Path) -> None:
    """Rename the finished ``partial`` directory to ``out``, replacing an existing ``out`` (which the
    caller has checked is a prepared dataset or empty) so ``out`` is never missing or half-written
    for longer than two renames. The replaced dataset is moved aside to ``.<name>.replaced-<pid>`` (a name no
    user folder has; ``recover`` brings it back after a kill between the renames), then deleted. The folder is
    synced to disk before the renames and its parent after them, so a power loss cannot publish empty files."""
    fsync_dir(partial)
    old = out.parent / f".{out.name}.replaced-{os.getpid()}"
    if old.exists():  # ours by its name: the leftover of an earlier run that had this process id
        shutil.rmtree(old)
    if out.exists():
        os.replace(out, old)
    os.replace(partial, out)
    fsync_dir(out.parent)
    (out / PARTIAL_MARKER).unlink(missing_ok=True)
    if old.exists():
        shutil.rmtree(old)


def recover(out: Path) -> bool:
    """Undo a ``publish`` killed between its two renames: ``out`` missing and a complete dataset in a
    ``.<name>.replaced-<pid>`` sibling (``replaced_folders``) -> move it back (the replacement was never published;
    of several, the one written last). The other such folders are leftovers of a ``publish`` killed while deleting
    the replaced dataset, and are deleted. No other folder is touched (a user's ``out.old`` is not ours). Returns
    whether a dataset came back."""
    leftovers = replaced_folders(out)
    restored = False
    if not out.exists() and not out.is_symlink():
        complete = [p for p in leftovers if is_prepared(p)]
        if complete:
            newest = max(complete, key=lambda p: (p / "meta.json").stat().st_mtime_ns)
            os.replace(newest, out)
            leftovers.remove(newest)
            restored = True
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)
    return restored


_META_KEYS: dict[str, tuple[type, str]] = {  # key -> (its JSON type, how a message names what it should be)
    "classes": (list, "a list of class names"), "splits": (dict, "a table of split sizes"),
    "num_sketches": (int, "a count"), "num_points": (int, "a count"), "has_times": (bool, "true or false"),
}


def is_prepared(path: str | Path) -> bool:
    """Whether ``path`` holds a complete prepared dataset (its ``meta.json`` exists)."""
    return (Path(path) / "meta.json").is_file()


class PreparedDataset:
    """A prepared dataset directory, memory-mapped.

    Attributes:
        path: the directory.
        meta: the parsed ``meta.json``.
        classes: class names; ``labels`` index into it.
        coords ``(P, 2)``, flags ``(P,)``, offsets ``(S + 1,)``, labels ``(S,)``, split_index ``(S,)``,
            key_ids ``(S,)`` bytes (``.decode()`` one to get a str), times ``(P,)`` or ``None``: the memory-mapped
            arrays (read-only).

    Opening checks that the files agree with each other and with ``meta.json`` (``_check``: shapes, dtypes, offsets,
    label and split ranges, split sizes, stroke ends; O(S) work, none over the points), so a damaged or half-copied
    dataset is refused with a ``SketchError`` naming the folder and the file instead of failing (or training on the
    wrong sketches) later. Pickles by path (workers of a ``DataLoader`` re-open the memory maps instead of copying
    them, without checking again; a re-opened ``meta.json`` that differs from the first is refused).
    """

    def __init__(self, path: str | Path, *, check: bool = True) -> None:
        self.path = Path(path)
        meta_path = self.path / "meta.json"
        if not self.path.exists():  # a typo in the path: not a reason to prepare anything
            raise FileNotFoundError(f"no such folder: {self.path}")
        if not meta_path.is_file():
            raise FileNotFoundError(f"{self.path} is not a prepared dataset (no meta.json); run `sketchgraph prepare`")
        self.meta: dict[str, Any] = self._read_meta()
        self._open()
        if check:
            self._check()

    def _damaged(self, file: str, problem: str) -> SketchError:
        """The error for a file of this dataset that is missing, unreadable or inconsistent."""
        return SketchError(f"{self.path / file}: {problem}. The prepared dataset {self.path} is damaged or incomplete "
                           "(e.g. a copy cut short): copy it again, or prepare it again (sketchgraph prepare ... "
                           "--overwrite)")

    def _read_meta(self) -> dict[str, Any]:
        """``meta.json``, checked for the format version and the keys (and their types) the reader relies on."""
        try:
            meta = json.loads((self.path / "meta.json").read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._damaged("meta.json", f"is not valid JSON ({exc})") from None
        if not isinstance(meta, dict):
            raise self._damaged("meta.json", f"holds a {type(meta).__name__}, not a JSON object")
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise SketchError(f"{self.path}: prepared-dataset format {version}, this library reads {FORMAT_VERSION}; "
                              "prepare it again")
        missing = [k for k in _META_KEYS if k not in meta]
        if missing:
            raise self._damaged("meta.json", f"lacks {', '.join(map(repr, missing))}")
        for key, (kind, wanted) in _META_KEYS.items():
            value = meta[key]
            if kind is int:
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            elif kind is list:
                ok = isinstance(value, list) and all(isinstance(c, str) for c in value)
            elif kind is dict:
                ok = isinstance(value, dict) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                                     for n in value.values())
            else:
                ok = isinstance(value, kind)
            if not ok:
                raise self._damaged("meta.json", f"{key!r} is {json.dumps(value)[:80]}, not {wanted}")
        return meta

    def _load(self, name: str) -> np.ndarray:
        """``name.npy`` memory-mapped (no pickle), its errors naming the file."""
        file = f"{name}.npy"
        try:
            return np.load(self.path / file, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise self._damaged(file, "is missing") from None
        except (ValueError, OSError, EOFError) as exc:  # truncated, not an .npy file, an object array ...
            raise self._damaged(file, f"cannot be read ({exc})") from None

    def _open(self) -> None:
        self.coords = self._load("coords")
        self.flags = self._load("flags")
        self.offsets = self._load("offsets")
        self.labels = self._load("labels")
        self.split_index = self._load("split")
        self.key_ids = self._load("key_ids")
        if self.meta["has_times"]:
            self.times: np.ndarray | None = self._load("times")
        elif (self.path / "times.npy").exists():
            raise self._damaged("times.npy", "is there, but meta.json says the dataset has no times (has_times false)")
        else:
            self.times = None

    def _arrays(self) -> dict[str, np.ndarray | None]:
        """The opened arrays by file name (``ARRAYS``, then ``times``: ``None`` when the dataset has none)."""
        opened = (self.coords, self.flags, self.offsets, self.labels, self.split_index, self.key_ids, self.times)
        return dict(zip((*ARRAYS, "times"), opened))

    def _check(self) -> None:
        """``SketchError`` (``_damaged``) unless the arrays agree with ``meta.json`` and with each other (see the module
        docstring): O(S) on the per-sketch arrays, O(1) on the per-point ones but for one gather of the stroke-end
        flag of each sketch's last point."""
        meta = self.meta
        n, points, classes, splits = meta["num_sketches"], meta["num_points"], meta["classes"], meta["splits"]
        if sum(splits.values()) != n:
            raise self._damaged("meta.json", f"its splits {splits} add up to {sum(splits.values())}, not to its "
                                f"num_sketches {n}")
        expected = {  # name -> (shape, dtypes)
            "coords": ((points, 2), ("int16", "float32")), "flags": ((points,), ("uint8",)),
            "offsets": ((n + 1,), ("int64",)), "labels": ((n,), ("int32",)), "split": ((n,), ("uint8",)),
            "key_ids": ((n,), ("bytes",)), "times": ((points,), ("float32",)),
        }
        for name, array in self._arrays().items():
            shape, dtypes = expected[name]
            if array is None:
                continue
            dtype = "bytes" if array.dtype.kind == "S" else str(array.dtype) if array.dtype.isnative else "non-native"
            if dtype not in dtypes:
                raise self._damaged(f"{name}.npy", f"has dtype {array.dtype}, not {' or '.join(dtypes)}")
            if array.shape != shape:
                raise self._damaged(f"{name}.npy", f"has shape {array.shape}, not {shape} (meta.json: {n} sketches, "
                                    f"{points} points)")
        offsets = np.asarray(self.offsets)
        steps = np.diff(offsets)
        if offsets[0] != 0 or (len(steps) and steps.min() < 1):
            bad = 0 if offsets[0] != 0 else int(np.argmax(steps < 1)) + 1
            raise self._damaged("offsets.npy", f"does not rise from 0 by at least 1 point per sketch (entry {bad}: "
                                f"{int(offsets[bad])} after {int(offsets[bad - 1]) if bad else 'nothing'})")
        if offsets[-1] != points:
            raise self._damaged("offsets.npy", f"ends at {int(offsets[-1])}, not at num_points {points}")
        if n:
            labels = np.asarray(self.labels)
            if labels.min() < 0 or labels.max() >= len(classes):
                bad = int(np.argmax((labels < 0) | (labels >= len(classes))))
                raise self._damaged("labels.npy", f"sketch {bad} has label {int(labels[bad])}, outside the "
                                    f"{len(classes)} classes")
            split = np.asarray(self.split_index)
            if split.max() >= len(splits):
                bad = int(np.argmax(split >= len(splits)))
                raise self._damaged("split.npy", f"sketch {bad} is in split {int(split[bad])}, outside the "
                                    f"{len(splits)} splits {list(splits)}")
            counts = dict(zip(splits, np.bincount(split, minlength=len(splits)).tolist()))
            if counts != splits:
                raise self._damaged("split.npy", f"puts {counts} sketches in the splits, meta.json says {splits}")
            ends = np.asarray(self.flags[offsets[1:] - 1])
            if (ends != FLAG_END).any():
                bad = int(np.argmax(ends != FLAG_END))
                raise self._damaged("flags.npy", f"the last point of sketch {bad} does not end a stroke (flag "
                                    f"{int(ends[bad])}, not {FLAG_END})")

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "meta": self.meta}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], check=False)  # the process that pickled it has checked it
        if "meta" in state and state["meta"] != self.meta:
            raise SketchError(f"{self.path} changed on disk while in use: its meta.json differs from the one opened "
                              "first (e.g. it was prepared again with --overwrite); start the run again")

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
    def fingerprint(self) -> str:
        """SHA-256 (hex) of the stored content: classes, split names, and every array (points, flags, offsets,
        labels, split assignment, key ids). Two datasets with the same fingerprint hold the same sketches in
        the same splits wherever their folders are; a dataset prepared again with another split seed or from
        other files differs. Training records it; resuming and ``report.json`` use it."""
        import hashlib

        digest = hashlib.sha256(json.dumps([self.classes, self.split_names]).encode())
        for name, array in self._arrays().items():  # the arrays opened, not the files now at the path
            if array is not None:
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
