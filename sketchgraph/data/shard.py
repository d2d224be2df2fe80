"""``Shard``: the sketches read and preprocessed from one piece of input, as flat arrays.

Workers return one shard per task (a chunk of lines or a whole file); the shards of a source file are
concatenated and cached on disk (``<name>.npz`` + ``<name>.json``, the JSON written last so a shard
without it is ignored) so an interrupted ``prepare`` resumes where it stopped.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..formats.base import sync_file
from .flat import FlatPrepared

__all__ = ["Shard", "STAT_KEYS", "MAX_KEY_ID_CHARS"]

STAT_KEYS = ("read", "malformed", "empty", "duplicate", "unreadable", "not_selected", "long_key_id")
"""Counters a shard carries: records seen (blank lines excluded), malformed records skipped, empty
drawings dropped, repeats of a key_id read before, well-formed sketches a split rule or protocol left out, and
sketches kept without their over-long key_id (``Shard.drop_long_key_ids``)."""

MAX_KEY_ID_CHARS = 256
"""The longest key_id stored. Key ids are fixed-width arrays (``Shard``: 4 bytes a character; ``key_ids.npy``: the
longest UTF-8 key id's bytes), so one key id of 50,000 characters would make every sketch's entry that wide."""


@dataclass
class Shard:
    """Per-sketch (``S``) and per-point (``P``) arrays of the kept sketches, plus counters and errors.

    Attributes:
        data: ``FlatPrepared`` (coords ``(P, 2)``, flags ``(P,)``, lengths ``(S,)``, times, dropped).
        labels: ``(S,)`` str class names.
        key_ids: ``(S,)`` str (``""`` when the record has none, or one longer than ``MAX_KEY_ID_CHARS``).
        tags: ``(S,)`` str split the source implies (file name / npz split / key lookup), ``""`` if none.
        recognized: ``(S,)`` int8, 1 / 0, or -1 when unknown.
        order: ``(S,)`` int64 line number (text files) or 1-based record number in the source file.
        priority: ``(S,)`` uint64 protocol sampling priority (0 without a protocol).
        stats: counters, see ``STAT_KEYS``.
        errors: ``{"source", "line", "kind", "message"}`` per malformed record or empty drawing.
    """

    data: FlatPrepared
    labels: np.ndarray
    key_ids: np.ndarray
    tags: np.ndarray
    recognized: np.ndarray
    order: np.ndarray
    priority: np.ndarray
    stats: Counter = field(default_factory=Counter)
    errors: list[dict[str, Any]] = field(default_factory=list)

    _PER_SKETCH = ("labels", "key_ids", "tags", "recognized", "order", "priority")

    def __len__(self) -> int:
        return len(self.data.lengths)

    @classmethod
    def empty(cls) -> Shard:
        return cls(
            FlatPrepared.empty(), np.zeros(0, "U1"), np.zeros(0, "U1"), np.zeros(0, "U1"),
            np.zeros(0, np.int8), np.zeros(0, np.int64), np.zeros(0, np.uint64),
        )

    @classmethod
    def concat(cls, shards: Sequence[Shard]) -> Shard:
        """Concatenate in order (counters summed, errors appended)."""
        if not shards:
            return cls.empty()
        stats: Counter = Counter()
        errors: list[dict[str, Any]] = []
        for s in shards:
            stats.update(s.stats)
            errors.extend(s.errors)
        return cls(
            FlatPrepared.concat([s.data for s in shards]),
            *(np.concatenate([getattr(s, k) for s in shards]) for k in cls._PER_SKETCH),
            stats=stats, errors=errors,
        )

    def select(self, mask: np.ndarray) -> Shard:
        """The sketches where ``mask`` ``(S,)`` is True (counters and errors unchanged)."""
        mask = np.asarray(mask, dtype=bool)
        points = np.repeat(mask, self.data.lengths)
        d = self.data
        data = FlatPrepared(d.coords[points], d.flags[points], d.lengths[mask],
                            None if d.times is None else d.times[points], d.dropped[mask])
        return Shard(data, *(getattr(self, k)[mask] for k in self._PER_SKETCH), stats=Counter(self.stats),
                     errors=list(self.errors))

    def drop_long_key_ids(self, source: str) -> int:
        """Store no key_id (``""``) for the sketches whose key_id is longer than ``MAX_KEY_ID_CHARS``, keeping the
        drawings, so ``key_ids`` stays at most that wide; each is reported in ``errors`` (kind ``"long_key_id"``,
        ``source:line``, ``line`` being the record's ``order``) and counted (``stats["long_key_id"]``). Returns how
        many. (Selection by split files and the protocol's sampling have used the whole key_id already.)"""
        if not len(self) or self.key_ids.dtype.itemsize <= MAX_KEY_ID_CHARS * np.dtype("U1").itemsize:
            return 0
        lengths = np.char.str_len(self.key_ids)
        long = lengths > MAX_KEY_ID_CHARS
        for i in np.flatnonzero(long).tolist():
            line = int(self.order[i])
            self.errors.append({
                "source": source, "line": line, "kind": "long_key_id",
                "message": f"{source}:{line}: key_id of more than {MAX_KEY_ID_CHARS} characters, the most "
                           "stored: the drawing is kept without a key_id",
                "at": line,
            })
        width = max(1, int(lengths[~long].max(initial=0)))
        self.key_ids = np.where(long, "", self.key_ids).astype(f"U{width}")
        self.stats["long_key_id"] += int(long.sum())
        return int(long.sum())

    # ------------------------------------------------------------------ cache files
    def save(self, stem: Path, info: dict[str, Any]) -> None:
        """Write ``stem.npz`` then ``stem.json`` (``info`` + counters + errors), each atomically; the shard is
        complete (``load_info``) only once the sidecar is written."""
        d = self.data
        arrays = dict(coords=d.coords, flags=d.flags, lengths=d.lengths, dropped=d.dropped,
                      **{k: getattr(self, k) for k in self._PER_SKETCH})
        if d.times is not None:
            arrays["times"] = d.times
        stem.with_suffix(".json").unlink(missing_ok=True)  # a kill below must not pair an old sidecar with new data
        tmp = stem.with_name(stem.name + ".tmp.npz")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            sync_file(f)  # on disk before the sidecar that vouches for it (a power loss may reorder writes)
        os.replace(tmp, stem.with_suffix(".npz"))
        doc = dict(info, stats=dict(self.stats), errors=self.errors)
        tmp_json = stem.with_name(stem.name + ".tmp.json")
        tmp_json.write_text(json.dumps(doc))
        os.replace(tmp_json, stem.with_suffix(".json"))

    @staticmethod
    def load_info(stem: Path) -> dict[str, Any] | None:
        """The JSON sidecar of a complete cached shard, or ``None``."""
        try:
            info = json.loads(stem.with_suffix(".json").read_text())
        except (FileNotFoundError, ValueError):
            return None
        return info if stem.with_suffix(".npz").exists() else None

    @classmethod
    def load(cls, stem: Path) -> Shard:
        info = cls.load_info(stem)
        if info is None:
            raise FileNotFoundError(f"no complete shard at {stem}")
        with np.load(stem.with_suffix(".npz"), allow_pickle=False) as z:
            data = FlatPrepared(z["coords"], z["flags"], z["lengths"], z["times"] if "times" in z else None,
                                z["dropped"])
            per = [z[k] for k in cls._PER_SKETCH]
        return cls(data, *per, stats=Counter(info["stats"]), errors=info["errors"])
