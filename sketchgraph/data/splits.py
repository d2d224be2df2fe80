"""How a prepared dataset is split into train / valid / test.

Three ways, chosen by ``prepare(split_files=..., protocol=...)``:

- **by file name** (``split_files="auto"``, or ``None`` when every input carries a split): a file
  ``<class>_train.ndjson`` / ``_valid`` / ``_test`` puts its sketches in that split; sketch-rnn
  ``.npz`` sketches keep the split they were stored under. A record's own ``"split"`` field (ndjson, JSON) is
  plain metadata and never decides its split: the file's name does.
- **by key_id** (``split_files=DIR``): the split files in ``DIR`` (``<class>_<split>.ndjson``) are read
  for their ``key_id`` s only; every input sketch goes to the split that lists its ``key_id``, and
  sketches listed nowhere are left out (counted as ``not_selected``). This is how SPG's ``raw/``
  drawings get SPG's published split.
- **by protocol** (``protocol=``): per class, a seeded sample. ``"quickdraw414k"`` is 1000 / 100 / 100
  recognized drawings per class (the MGT paper's QuickDraw-414k over the 345 classes);
  ``{"train": n, "valid": n, "test": n}`` takes those counts per class from all drawings;
  fractions ``{"train": 0.7, "valid": 0.1, "test": 0.2}`` split every class in those proportions.

The protocol sample is *bottom-k by a seeded hash*: every eligible sketch gets the priority
``blake2b(seed, label, key_id)`` (``key_id`` defaults to ``file:line``); per class the sketches with
the smallest priorities are taken, in priority order: the first ``n_train`` go to train, the next
``n_valid`` to valid, and so on. This is a uniform random sample, it does not depend on file order,
chunking or worker count, and each chunk can discard everything beyond its own ``k`` smallest per class
early, so a protocol over the full Quick, Draw! files never holds more than ``k`` candidates per class
and chunk. Counts protocols are strict: a class with fewer eligible sketches is an error.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FormatError, SketchError
from ..formats.base import GZIP_ERRORS, open_bytes, plain_name
from ..formats.ndjson import key_id_string
from ..wording import counted

__all__ = [
    "SPLIT_ORDER", "Protocol", "PROTOCOLS", "parse_protocol", "split_of_name", "read_split_keys",
    "priorities", "bottom_k", "assign_protocol", "order_splits",
]

SPLIT_ORDER: tuple[str, ...] = ("train", "valid", "test")
"""Canonical order of split names in ``meta["splits"]``; other names follow, sorted."""

_SPLIT_SUFFIX = re.compile(r"_(train|valid|test)$")
_KEY_ID = re.compile(rb'"key_id"\s*:\s*"([0-9A-Za-z_.:/-]*)"')  # a plain string key; anything else: json
_SUFFIXES = (".ndjson", ".jsonl", ".json")


@dataclass(frozen=True)
class Protocol:
    """A per-class seeded sample.

    Attributes:
        sizes: ``{split: n}`` sketches per class (ints), or fractions of each class (floats <= 1). Any split name
            works, but a near miss of one in ``SPLIT_ORDER`` (``valdi``, ``Train``, ``tests``) is refused as a typo:
            it would otherwise only show when ``train`` finds no ``valid`` split.
        recognized_only: only drawings whose ``recognized`` is not ``False`` are eligible.
        name: a name for ``meta.json`` (``"quickdraw414k"``, or ``"custom"``).
    """

    sizes: Mapping[str, int | float]
    recognized_only: bool = False
    name: str = "custom"

    def __post_init__(self) -> None:
        if not self.sizes:
            raise ValueError("a protocol needs at least one split size")
        typos = {name: near[0] for name in self.sizes if name not in SPLIT_ORDER
                 and (near := difflib.get_close_matches(name.lower(), SPLIT_ORDER, n=1, cutoff=0.8))}
        if typos:
            raise ValueError(f"split {', '.join(f'{k!r} (did you mean {v!r}?)' for k, v in typos.items())} in the "
                             f"protocol {dict(self.sizes)}: the usual splits are {', '.join(SPLIT_ORDER)}")
        vals = list(self.sizes.values())
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals):
            if any(v < 0 for v in vals):
                raise ValueError(f"split sizes must be >= 0, got {dict(self.sizes)}")
        elif all(isinstance(v, (int, float)) for v in vals):
            if any(not 0 <= v <= 1 for v in vals) or sum(vals) > 1 + 1e-9:
                raise ValueError(f"split fractions must be in [0, 1] and sum to <= 1, got {dict(self.sizes)}")
        else:
            raise ValueError(f"split sizes must be all counts or all fractions, got {dict(self.sizes)}")

    @property
    def is_fraction(self) -> bool:
        return any(isinstance(v, float) for v in self.sizes.values())

    @property
    def k(self) -> int | None:
        """Sketches needed per class (``None`` for fractions: every eligible sketch is a candidate)."""
        return None if self.is_fraction else int(sum(self.sizes.values()))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sizes": dict(self.sizes), "recognized_only": self.recognized_only}

    @property
    def text(self) -> str:
        """How a user writes it: a named protocol's name (``quickdraw414k``), else its sizes (``train=30,valid=5``)."""
        if self.name in PROTOCOLS:
            return self.name
        return ",".join(f"{split}={size}" for split, size in self.sizes.items())


PROTOCOLS: dict[str, Protocol] = {
    "quickdraw414k": Protocol({"train": 1000, "valid": 100, "test": 100}, recognized_only=True,
                              name="quickdraw414k"),
}


def parse_protocol(spec: str | Mapping[str, int | float] | Protocol | None) -> Protocol | None:
    """``"quickdraw414k"``, ``"train=650,valid=50,test=100"``, ``"train=0.7,valid=0.1,test=0.2"``,
    a ``{split: size}`` dict or a ``Protocol`` -> ``Protocol`` (``None`` stays ``None``)."""
    if spec is None or isinstance(spec, Protocol):
        return spec
    if isinstance(spec, Mapping):
        return Protocol(dict(spec))
    if spec in PROTOCOLS:
        return PROTOCOLS[spec]
    sizes: dict[str, int | float] = {}
    for part in spec.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)} or like 'train=650,valid=50,test=100', "
                             f"got {spec!r}")
        try:
            v = float(value)
        except ValueError:
            raise ValueError(f"protocol size of {name.strip()!r} must be a number, got {value!r}") from None
        if name.strip() in sizes:
            raise ValueError(f"protocol names split {name.strip()!r} twice: {spec!r}")
        sizes[name.strip()] = int(v) if v.is_integer() and "." not in value else v
    return Protocol(sizes)


def split_of_name(path: str | Path) -> str | None:
    """``airplane_train.ndjson`` (or ``.ndjson.gz``) -> ``"train"``; ``None`` when the name carries no split."""
    m = _SPLIT_SUFFIX.search(Path(plain_name(path)).stem)  # cat_test.ndjson.gz -> cat_test
    return m.group(1) if m else None


def read_split_keys(source: str | Path | Iterable[str | Path]) -> dict[str, str]:
    """``{key_id: split}`` from split files: a directory of ``<class>_<split>.ndjson`` files (``.jsonl``,
    ``.json``, each also gzip-compressed as ``.ndjson.gz``) or a list of such files. Only ``key_id`` is read from
    each line, as the readers read it (``5629189624315904.0`` is ``"5629189624315904"``). Raises ``SketchError``
    when a key is listed in two different splits, a file name carries no split, or a line is no JSON record with a
    usable key_id (naming file and line): unlike a sketch file's bad line, which is reported and skipped, a split
    file's decides which drawings are kept and where, so reading on would silently drop or move drawings."""
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        files = sorted(p for p in Path(source).iterdir() if Path(plain_name(p)).suffix.lower() in _SUFFIXES)
    else:
        files = sorted(Path(p) for p in ([source] if isinstance(source, (str, Path)) else source))
    if not files:
        raise SketchError(f"no split files (<class>_<split>.ndjson) in {source}")
    keys: dict[str, str] = {}
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"no such split file or directory: {path}")
        split = split_of_name(path)
        if split is None:
            raise SketchError(f"{path}: a split file's name must end in _train, _valid or _test")
        lineno = 0
        try:
            with open_bytes(path) as f:
                for lineno, line in enumerate(f, 1):
                    key = _split_key(line, path, lineno)
                    if key is not None and keys.setdefault(key, split) != split:
                        raise SketchError(f"{path}:{lineno}: key_id {key} is in both {keys[key]!r} and {split!r}")
        except GZIP_ERRORS as exc:
            raise SketchError(f"{path}: the compressed data breaks off after line {lineno} ({type(exc).__name__}: "
                              f"{exc})") from None
    return keys


def _split_key(line: bytes, path: Path, lineno: int) -> str | None:
    """The key_id of one line of a split file (``None``: a blank line or a record without one)."""
    if not line.strip():
        return None
    m = _KEY_ID.search(line)
    if m and line.count(b'"key_id"') == 1:  # the common case, without decoding the drawing
        return m.group(1).decode("utf-8")
    try:
        return key_id_string(json.loads(line).get("key_id"))
    except (ValueError, AttributeError) as exc:  # FormatError is a ValueError: a key that is a list, an object
        why = str(exc) if isinstance(exc, FormatError) else "not a JSON record with a key_id"
        raise SketchError(f"{path}:{lineno}: {why}") from None


def priorities(seed: int, labels: Iterable[str], keys: Iterable[str]) -> np.ndarray:
    """``(S,)`` uint64 sampling priorities ``blake2b(seed, label, key)`` (uniform, reproducible)."""
    prefix = f"{int(seed)}\x1f".encode()
    out = [
        int.from_bytes(hashlib.blake2b(prefix + f"{lab}\x1f{key}".encode(), digest_size=8).digest(), "little")
        for lab, key in zip(labels, keys)
    ]
    return np.array(out, dtype=np.uint64)


def bottom_k(groups: np.ndarray, prio: np.ndarray, tiebreak: np.ndarray, k: int | None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Per group, the ``k`` items with the smallest ``(prio, tiebreak)`` (all items when ``k`` is None).

    Returns ``(index, rank)``: indices into the inputs, sorted by (group, prio, tiebreak), and each
    one's rank 0.. within its group.
    """
    order = np.lexsort((tiebreak, prio, groups))
    g = groups[order]
    start = np.flatnonzero(np.concatenate([[True], g[1:] != g[:-1]])) if len(g) else np.zeros(0, np.int64)
    run = np.repeat(start, np.diff(np.concatenate([start, [len(g)]])))
    rank = np.arange(len(g)) - run
    if k is not None:
        sel = rank < k
        order, rank = order[sel], rank[sel]
    return order, rank


def assign_protocol(protocol: Protocol, labels: np.ndarray, prio: np.ndarray, tiebreak: np.ndarray,
                    classes: list[str]) -> np.ndarray:
    """Split name per candidate (``""`` = not selected), ``(S,)`` object array, for integer class
    ``labels`` ``(S,)``; raises ``SketchError`` when a counts protocol lacks sketches for a class."""
    index, rank = bottom_k(labels, prio, tiebreak, protocol.k)
    out = np.full(len(labels), "", dtype=object)
    names = list(protocol.sizes)
    if protocol.is_fraction:
        counts = np.bincount(labels, minlength=len(classes))  # (C,)
        fr = np.array([float(protocol.sizes[n]) for n in names])  # (K,)
        per = np.floor(counts[:, None] * fr[None, :] + 1e-9).astype(np.int64)  # (C, K)
        if abs(fr.sum() - 1.0) < 1e-9:
            per[:, 0] += counts - per.sum(1)  # what rounding leaves goes to the first split
    else:
        per = np.tile(np.array([int(protocol.sizes[n]) for n in names]), (len(classes), 1))
        have = np.bincount(labels[index], minlength=len(classes))
        short = [f"{classes[c]} ({have[c]})" for c in np.flatnonzero(have < per.sum(1))]
        if short:
            raise SketchError(
                f"protocol {protocol.text} needs {counted(int(per[0].sum()), 'eligible sketch')} per class; "
                f"{counted(len(short), 'class')} {'has' if len(short) == 1 else 'have'} fewer: "
                f"{', '.join(short[:10])}{' ...' if len(short) > 10 else ''}"
            )
    bounds = np.cumsum(per, axis=1)  # (C, K)
    which = (rank[:, None] >= bounds[labels[index]]).sum(1)  # (n,) split position, K = beyond
    inside = which < len(names)
    out[index[inside]] = np.array(names, dtype=object)[which[inside]]
    return out


def order_splits(names: Iterable[str]) -> list[str]:
    """Split names in canonical order: train, valid, test, then the rest sorted."""
    names = set(names)
    return [n for n in SPLIT_ORDER if n in names] + sorted(names - set(SPLIT_ORDER))
