"""``SketchClassifier``: ranked class predictions for sketches, from a checkpoint.

    >>> clf = SketchClassifier.from_pretrained("spg20")          # the shipped checkpoint
    >>> preds = clf.predict([[[0, 40, 80], [0, 60, 0]]], top_k=3)  # one sketch (a caret), best first
    >>> [(p.label, round(p.score, 2), p.index) for p in preds]
    [('ice cream', 0.59, 16), ('apple', 0.16, 4), ('face', 0.07, 15)]

Inputs (``x``) are anything :func:`sketchgraph.formats.sketch_from_obj` accepts (a ``Sketch``,
``[[xs, ys], ...]`` / ``[[xs, ys, ts], ...]`` strokes, an ndjson line, a ``{"drawing": ...}`` dict,
a stroke-3 ``(n, 3)`` array) or a path to a sketch file (``.ndjson``, ``.svg``, ``.npz``, ``.bin``; ndjson and
JSON may be gzip-compressed, ``.ndjson.gz``; ``~`` is expanded; an image or a document, ``apple.png``, is refused
with a ``FormatError`` saying what it is). A string that is neither JSON text nor the path
of an existing file raises ``FileNotFoundError`` (``SketchError`` when it is too long to be a path at all: more than
4,096 bytes, or a name over 255), and one that is JSON but not a sketch (``"42"``, ``"null"``) ``SketchError``. A
pipe (``/dev/stdin`` fed by ``|``, ``<(...)``), a socket or a terminal is refused with a ``SketchError`` saying to
save it to a file: a file's format is sniffed from its first bytes before it is read from the start, which a stream
cannot give twice (``sketchgraph predict -`` does that for standard input). A path given to
:meth:`SketchClassifier.predict` or as one item of :meth:`~SketchClassifier.predict_batch` means the file's *first*
sketch; a path given as the whole argument of ``predict_batch`` means *all* its sketches.

Strokes are coordinate lists, ``[xs, ys]`` or ``[xs, ys, ts]``, not point lists ``[[x, y], ...]``: a stroke of
points is refused with a hint, except one of two or three points, which is a valid stroke in the other layout and
is read as such. A drawing of one point, or of points that all coincide, has no shape, yet is classified like any
other (the model's answer then says little); only drawings without points, or with NaN or infinite coordinates,
are refused.

Preprocessing (Google-style simplification, the point cap) and the graph relations come from the
checkpoint, so raw canvas coordinates and already simplified Quick, Draw! data both work.

The classifier is thread-safe: preprocessing is pure, and the model call (eval mode, inference
mode) is serialised by a lock, so one instance can serve concurrent requests. On the CPU a model call of at most
``FEW_SKETCHES`` sketches (``predict``'s one) runs on one intra-op thread, as fast as on more when the cores are
free and not held up when another process is busy on one; the batches of one ``predict_batch`` call run side by
side, each on its share of torch's threads (``parallel_batches``).
"""

from __future__ import annotations

import argparse
import difflib
import importlib.resources
import inspect
import json
import numbers
import os
import re
import secrets
import stat
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .batch import Batch
from .device import no_kernel_cache, usable_cpus, usable_device
from .errors import CheckpointError, FormatError, SketchError, UnusableSketchesError
from .graph import GraphSpec, SketchGraph, build_graph
from .model import BACKENDS, set_backend
from .model.precision import warn_if_emulated_bf16
from .options import int_option
from .preprocess import Preprocessing, preprocess
from .sketch import COORD_ORIGIN, MAX_COORDINATE, MAX_TIME, TIME_ORIGIN, Sketch
from .wording import a_type, counted

if TYPE_CHECKING:  # sketchgraph.data and sketchgraph.formats are imported when first needed
    from .data.flat import FlatPrepared
    from .formats import Place

__all__ = [
    "Prediction", "SketchClassifier", "resolve_checkpoint", "shipped_checkpoints", "as_sketch", "BACKENDS",
    "PRECISIONS", "SHIPPED_CHECKPOINT",
]

SHIPPED_CHECKPOINT = "spg20"
#: packages that may hold shipped checkpoints as package data (a non-editable install maps the
#: repository's top-level ``checkpoints/`` there); the checkout's ``checkpoints/`` is tried after.
_CHECKPOINT_PACKAGES = ("sketchgraph._checkpoints", "sketchgraph.checkpoints")
_CHECKOUT_CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
PRECISIONS = ("float32", "bfloat16")
_READ_AHEAD = 4  # predict_batch reads and preprocesses this many batches at once, to group by length
FEW_SKETCHES = 4
"""A model call on the CPU of at most this many sketches runs on one intra-op thread (``intraop_threads``): as fast
as on two for so little work, and with another process busy on a core a second thread made each call wait for it:
``predict()``'s p99 was 160-172 ms on torch's two threads against 10-14 ms on one (2-core machine, 12-02c;
``benchmarks/bench_predict.py --busy 1 --batch 0``, with and without ``--few-sketches 0``). Larger calls use torch's
thread count (``parallel_batches``)."""


@dataclass(frozen=True)
class Prediction:
    """One ranked guess: class ``label`` (index ``index`` in ``classes``) with softmax ``score``."""

    label: str
    score: float
    index: int

    def to_dict(self) -> dict[str, Any]:
        """``{"label", "score", "index"}`` (a plain dict, cheaper than ``dataclasses.asdict``'s deep copy)."""
        return {"label": self.label, "score": self.score, "index": self.index}


# ---------------------------------------------------------------------------------- checkpoints
def _packaged_checkpoint(package: str, name: str) -> Path | None:
    """``<package>/<name>`` on disk when ``package`` is importable and holds it (regular or namespace
    package; ``importlib.resources`` finds it in a checkout, an editable or a normal install)."""
    try:
        child = importlib.resources.files(package).joinpath(name)
    except (ModuleNotFoundError, TypeError):
        return None
    return child if isinstance(child, Path) else None


def shipped_checkpoints() -> list[str]:
    """The names ``resolve_checkpoint`` finds a checkpoint by (folders holding a ``config.json`` in the package data
    and the checkout's ``checkpoints/``), sorted: ``["spg20"]``."""
    roots = [_packaged_checkpoint(package, "") for package in _CHECKPOINT_PACKAGES]
    names: set[str] = set()
    for root in (*(r for r in roots if r is not None), _CHECKOUT_CHECKPOINTS):
        if root.is_dir():
            names.update(child.name for child in root.iterdir() if (child / "config.json").is_file())
    return sorted(names)


def _not_found(name: str, bare: bool, looked: list[Path]) -> CheckpointError:
    """``resolve_checkpoint``'s error: where it looked, the shipped names, and for a bare name that is a near miss
    of one of them (``spg2O``), that one."""
    where = ", ".join(str(p) for p in dict.fromkeys(looked)) or "the installed package (it holds none)"
    shipped = shipped_checkpoints()
    close = difflib.get_close_matches(name, shipped, n=1, cutoff=0.6) if bare else []
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    hint = (
        " (the shipped checkpoint is trained by the maintainers; pass --checkpoint PATH to use your own)"
        if name == SHIPPED_CHECKPOINT else ""
    )
    return CheckpointError(f"checkpoint {name!r} not found{guess}; looked in: {where}; shipped checkpoints: "
                           f"{', '.join(shipped) or 'none'}{hint}")


def resolve_checkpoint(name_or_path: str | os.PathLike) -> Path:
    """The directory of a checkpoint given by path or by shipped name (``"spg20"``).

    A name is looked up in the installed package data first (``importlib.resources``), then in the
    checkout's top-level ``checkpoints/``; a folder of the same name in the current directory wins only when it
    holds a checkpoint (``config.json``), so a prepared dataset called ``spg20`` does not hide the shipped
    model. Raises ``CheckpointError`` listing where it looked and the shipped names (``shipped_checkpoints``),
    suggesting the closest to a misspelt one (``spg2O``: ``spg20``).
    """
    path = Path(name_or_path).expanduser()
    name = str(name_or_path)
    bare = path.name == name  # a bare name ("spg20"), not a path ("./spg20", "runs/x/best")
    if path.is_dir() and ((path / "config.json").is_file() or not bare):
        return path
    if path.is_file() and (path.parent / "config.json").is_file():  # its weights file or its config.json
        return path.parent
    looked: list[Path] = []
    if bare:  # search the shipped locations; a folder of that name that is no checkpoint (a dataset) does not hide them
        packaged = (_packaged_checkpoint(package, name) for package in _CHECKPOINT_PACKAGES)
        checkout = [_CHECKOUT_CHECKPOINTS / name] if _CHECKOUT_CHECKPOINTS.is_dir() else []  # not when installed
        for candidate in (*(c for c in packaged if c is not None), *checkout):
            looked.append(candidate)
            if (candidate / "config.json").is_file():
                return candidate
        if path.is_dir():
            return path  # no shipped checkpoint of that name either: loading says what the folder lacks
    else:
        looked.append(path)
    raise _not_found(name, bare, looked)


# ---------------------------------------------------------------------------------- inputs
def _is_path(x: Any) -> bool:
    """A path: a ``PathLike``, a string naming an existing file (even ``[wip] cat.svg``), or any other string
    that is not JSON text. The empty string is neither (it would read ``.``); SVG markup is refused, and so is
    JSON text that is no sketch (``"42"``, ``"null"``) when no file has that name."""
    if isinstance(x, os.PathLike):
        return True
    if not isinstance(x, str):
        return False
    text = x.lstrip("\ufeff \t\r\n")
    if not text:
        raise SketchError("empty string: expected a path to a sketch file or a JSON sketch")
    if os.path.exists(os.path.expanduser(x)):
        return True
    if text.startswith(("{", "[", "<")):
        if text.startswith("<"):
            raise SketchError("this string is markup, not a path: write the SVG to a .svg file and pass its path")
        return False
    scalar = _json_scalar(text)
    if scalar is not None:
        raise SketchError(f"{x!r} is neither a JSON sketch (it is a JSON {scalar}; a sketch is an object "
                          "{\"drawing\": ...} or a list of strokes) nor an existing file")
    if _too_long_for_a_path(x):
        raise SketchError(f"{_preview(x)} ({len(x):,} characters) is neither a JSON sketch nor a file name (too long "
                          "for a path)")
    return True


_PATH_MAX, _NAME_MAX = 4096, 255  # bytes: Linux's limits on a path and on each of its names (ENAMETOOLONG past them)


def _bytes_path(x: Any) -> Any:
    """``x`` decoded (``os.fsdecode``) when it is bytes naming an existing file or folder (``os.fsencode`` of a
    path, as ``os.listdir(b".")`` gives), else ``x`` as it is (bytes are then JSON text)."""
    if isinstance(x, bytes) and 0 < len(x) < _PATH_MAX and b"\0" not in x and os.path.exists(x):
        return os.fsdecode(x)
    return x


def _too_long_for_a_path(text: str) -> bool:
    """Whether no file can have ``text`` (``~`` expanded) as its path: more than ``_PATH_MAX`` bytes in all, or a
    name (between separators) over ``_NAME_MAX``."""
    encoded = os.path.expanduser(text).encode("utf-8", "surrogatepass")
    return len(encoded) >= _PATH_MAX or any(len(name) > _NAME_MAX for name in encoded.split(b"/"))


def _preview(text: str, length: int = 40) -> str:
    """``repr`` of ``text``'s first ``length`` characters, with ``...`` after when it is longer."""
    return repr(text[:length]) + ("..." if len(text) > length else "")


def _json_scalar(text: str) -> str | None:
    """What JSON value other than an object or a list ``text`` is (``"number"``, ``"null"``, ...), else ``None``."""
    if len(text) > 4096:  # longer than any path: no need to parse it
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    kinds = {type(None): "null", bool: "boolean", int: "number", float: "number", str: "string"}
    return kinds.get(type(value))


def _expanded(path: str | os.PathLike) -> Path:
    """An input path with ``~`` expanded, as a shell would."""
    return Path(path).expanduser()


def _stream_kind(path: Path) -> str | None:
    """What kind of stream ``path`` is (``"a pipe"``, ``"a socket"``, ``"a terminal or other stream device"``), or
    ``None`` for a file that can be read from its start again (a regular file, ``/dev/null``, a missing path)."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        try:
            with open(path, "rb", buffering=0) as f:
                return None if f.seekable() else "a terminal or other stream device"
        except OSError:
            return None
    return None


def refuse_streams(path: str | os.PathLike) -> None:
    """``SketchError`` when ``path`` names a pipe, a socket or a terminal (``/dev/stdin`` fed by ``|``, ``<(...)``):
    a file's format is sniffed from its first bytes, then the file is read from its start, and a stream would give
    its bytes once (its sketches were read as "no sketches" before)."""
    kind = _stream_kind(_expanded(path))
    if kind is not None:
        raise SketchError(f"{path} is {kind}, which cannot be read twice (its format is sniffed from its first bytes "
                          "before it is read): save it to a file and pass that (sketchgraph predict reads standard "
                          "input given as -)")


def _read(path: str | os.PathLike, on_error: Any = None, format: str | None = None) -> Iterator[Sketch]:
    """The sketches of a file (``format`` or sniffed); ``FileNotFoundError`` at the call when it is missing,
    ``SketchError`` when it is a pipe or another stream (``refuse_streams``). ``on_error`` as in ``read_sketches``
    (``None`` raises the first bad record's ``FormatError``)."""
    from .formats import read_sketches

    refuse_streams(path)
    _refuse_empty_folder(path)
    return read_sketches(_expanded(path), format, on_error=on_error)


def _refuse_empty_folder(path: str | os.PathLike) -> None:
    """``SketchError`` when ``path`` is a folder without sketch files (it gave no results and no error, which read
    as "nothing to classify" where the folder was the wrong one)."""
    from .formats import sketch_files

    folder = _expanded(path)
    if folder.is_dir() and not sketch_files(folder, gzipped=True, broken_links=True):  # a broken link: said by the walk
        raise SketchError(f"{path}: {_no_sketch_files()}")


def _records_in_place(path: str | os.PathLike) -> Iterator[tuple[Place | None, Sketch | SketchError]]:
    """Every record of a file (or folder), in order, as ``(place, sketch)``, and ``(None, error)`` for a record the
    reader could not read or for an error about a whole file or the rest of it (``whole_file``: no record), each in
    its place, for the caller to report in the file's order.
    ``FileNotFoundError`` (on first use) when the path does not exist; ``SketchError`` when it is a stream."""
    from .formats import read_located

    pending: list[SketchError] = []  # what the reader reported since the last record it yielded

    refuse_streams(path)
    _refuse_empty_folder(path)
    for place, sketch in read_located(_expanded(path), on_error=pending.append):
        for exc in pending:  # they came before it
            yield None, exc
        pending.clear()
        yield place, sketch
    for exc in pending:
        yield None, exc


def _read_first(path: str | os.PathLike) -> Sketch:
    if _expanded(path).is_dir():
        raise SketchError(f"{path} is a folder, where one sketch belongs: predict_batch({str(path)!r}), given the "
                          "folder itself (not in a list), classifies every sketch in it")
    try:
        sketch = next(_read(path), None)
    except FileNotFoundError:
        raise
    except OSError as exc:  # unreadable (permissions, an I/O error): a SketchError, as the docs promise
        raise SketchError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    if sketch is None:
        raise SketchError(f"{path}: contains no sketches")
    return sketch


def _refusal(n: int, place: Place, sketch: Sketch, reason: str) -> FormatError:
    """``item N: face.ndjson:5: reason``: the error of record ``n`` of a file, read at ``place`` as ``sketch`` and
    refused by the preprocessing, naming it by ``source``, ``line``, ``key_id`` and ``label`` as a read error does."""
    where = place.locate(FormatError(reason))
    error = FormatError(f"item {n}: {where}", key_id=sketch.key_id, label=sketch.label)
    error.source, error.line = where.source, where.line
    return error


def _several_hint(x: Any) -> str | None:
    """What to say when ``predict`` (one sketch) gets what looks like several: a list of paths, sketches, records
    or drawings (or one drawing nested one level too deep)."""
    if isinstance(x, str):
        return _several_in_text(x)
    if not isinstance(x, (list, tuple)) or not x:
        return None
    first = x[0]
    if isinstance(first, (Sketch, dict, str, os.PathLike)):
        return (f"this looks like a list of {counted(len(x), 'sketch')} ({type(first).__name__}): predict takes one "
                "sketch, not in a list (predict(x[0])); predict_batch takes a list of them")
    try:  # [[[xs, ys], ...], ...]: drawings in a list, or one drawing nested once too often
        deep = isinstance(first, (list, tuple)) and isinstance(first[0], (list, tuple)) and \
            isinstance(first[0][0], (list, tuple, np.ndarray))
    except (IndexError, TypeError, KeyError):
        return None
    if deep:
        return ("one nesting level too many: a drawing is [[xs, ys], ...] (one [xs, ys] per stroke); for several "
                "drawings, predict_batch([drawing, ...])")
    return None


def _several_in_text(text: str) -> str | None:
    """``_several_hint`` of JSON text: several lines of JSON (an ndjson file's text), or a JSON list of records
    or drawings."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        lines = [line for line in text.splitlines() if line.strip()]
        if exc.msg == "Extra data" and len(lines) > 1:
            return (f"the text holds several JSON values ({counted(len(lines), 'line')}): predict takes one sketch; "
                    "predict_batch(text.splitlines()) classifies one per line")
        return None
    except (ValueError, RecursionError):
        return None
    return _several_hint(value) if isinstance(value, list) else None


def as_sketch(x: Any) -> Sketch:
    """Turn one input (see the module docstring) into a ``Sketch``; bad input raises ``SketchError``
    (a ``FormatError`` for an unreadable record; ``FileNotFoundError`` for a missing file)."""
    if isinstance(x, Sketch):
        return x
    x = _bytes_path(x)
    if _is_path(x):
        return _read_first(x)
    from .formats import sketch_from_obj

    try:
        return sketch_from_obj(x)
    except SketchError as exc:
        hint = _several_hint(x)
        if hint is None:
            raise
        raise FormatError(f"{exc}; {hint}") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise SketchError(f"cannot read a sketch from a {type(x).__name__}: {exc}") from None


def _iter_inputs(xs: Any) -> Iterator[Any]:
    """Items of ``predict_batch``'s argument: a file path means all of its sketches."""
    xs = _bytes_path(xs)
    if _is_path(xs):
        return _read(xs)
    if isinstance(xs, np.ndarray) and xs.dtype == object and xs.ndim == 1:
        return iter(xs)  # sketch-rnn's layout: one array per sketch
    if isinstance(xs, np.ndarray) and xs.ndim == 3 and xs.shape[2] in (3, 5):
        raise SketchError(f"predict_batch got one array of shape {xs.shape}: for its {xs.shape[0]} "
                          f"stroke-{xs.shape[2]} sketches pass list(arr)")
    if isinstance(xs, (Sketch, dict, np.ndarray, str, bytes)):
        raise SketchError("predict_batch expects a sequence of sketches or a file path; use predict() for one")
    try:
        return iter(xs)
    except TypeError:
        got = "None" if xs is None else a_type(xs)
        raise SketchError(f"predict_batch expects a sequence of sketches or a file path, got {got}") from None


def _one_drawing_hint(xs: Any) -> str:
    """For an error about item 0 of ``predict_batch``'s argument: a hint when that argument is one drawing
    ``[[xs, ys], ...]`` (whose items are strokes, not sketches), else ``""``."""
    from .formats.ndjson import is_one_stroke

    if isinstance(xs, (list, tuple)) and xs and all(is_one_stroke(item) for item in xs[:20]):
        return ("; the argument looks like one drawing ([xs, ys] per stroke), not a list of sketches: "
                "predict(drawing), or predict_batch([drawing, ...])")
    return ""


def _check_fits(model: torch.nn.Module, classes: Sequence[str], preprocessing: Preprocessing,
                graph_spec: GraphSpec) -> None:
    """``ValueError`` unless the model can take what ``preprocessing`` and ``graph_spec`` make and has one
    output per class name."""
    missing = [r for r in getattr(model, "relations", ()) if r not in graph_spec.relations]
    if missing:
        raise ValueError(f"the model attends over {missing}, which graph_spec {graph_spec.relations} lacks")
    limit = getattr(model, "max_points", None)
    if limit is not None and preprocessing.max_points > limit:
        raise ValueError(f"preprocessing.max_points {preprocessing.max_points} exceeds the model's {limit}")
    outputs = getattr(getattr(model, "config", None), "num_classes", len(classes))
    if len(classes) != outputs:
        raise ValueError(f"{len(classes)} class names for a model with {outputs} outputs")


def _positive_int(value: Any) -> bool:
    """An integer >= 1 (numpy integers too), not a bool."""
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and value >= 1


def _check_top_k(top_k: Any) -> None:
    if not _positive_int(top_k):
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


@contextmanager
def intraop_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op thread count ``n`` in the calling thread while the block runs, then its own count again
    (``None``: unchanged). torch's CPU parallelism (OpenMP) keeps the count per thread, so the model calls of other
    threads keep theirs (a thread that first uses torch meanwhile starts with ``n``)."""
    before = torch.get_num_threads()
    if n is None or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _work(batch: Batch) -> int:
    """A batch's share of the model's work: its points, and attention's quadratic term."""
    b, n = batch.valid.shape
    return b * n * (n + 64)


# ---------------------------------------------------------------------------------- model switch
def _stack_attention(maps: Sequence[dict[str, torch.Tensor]]) -> dict[str, np.ndarray]:
    """``maps[layer][relation]`` ``(1, heads, N, N)`` -> ``{relation: (layers, heads, N, N)}`` float32."""
    relations = list(maps[0]) if maps else []
    return {r: torch.stack([layer[r][0] for layer in maps]).float().cpu().numpy() for r in relations}


# ---------------------------------------------------------------------------------- classifier
class SketchClassifier:
    """Classify sketches with a trained model.

    Args:
        model: maps a ``Batch`` to logits ``(B, C)``.
        classes: the ``C`` class names, in logit order.
        preprocessing: applied to every input sketch before its graph is built.
        graph_spec: the relations the model attends over.
        device: where the model runs (``"cpu"`` by default).
        batch_size: sketches per model call in ``predict_batch``.
        name: shown in ``repr`` and by the HTTP service.
        threads: threads that simplify a large batch in parallel (``preprocess_flat``; the same results
            with any number); default: torch's intra-op thread count.
        precision: ``"float32"`` (default, exact) or ``"bfloat16"``: the model runs under bfloat16
            autocast, faster on CPUs with native bfloat16 (AVX512-BF16 / AMX), with probabilities that
            move by up to ~2e-2 (``benchmarks/bench_predict.py --precision bfloat16`` measures the speed
            and the agreement with float32). Elsewhere it is emulated and several times slower: a
            ``RuntimeWarning`` says so (``sketchgraph.model.precision``).
        read_ahead: ``predict_batch`` reads and preprocesses the next chunk in a background thread while
            the model runs. Default (``None``): only when the model runs off the CPU. On the CPU the
            model's threads already fill the cores, and the two compete: on a 2-core machine the
            overlap made ``predict_batch`` 11-37% slower than doing the steps in turn
            (``benchmarks/bench_predict.py`` prints both rates).
        few_sketches: on the CPU, a model call of at most this many sketches runs on one intra-op thread
            (``intraop_threads``; default ``FEW_SKETCHES``, 0: never).
        parallel_batches: on the CPU, the batches of one ``predict_batch`` (or ``probabilities``) call run side
            by side, up to torch's thread count (and the cores this process may use) at once, each on its share of
            the threads (default ``True``;
            dense attention only). The model's matrices are small (100 points, width 96), so one thread per batch
            uses the cores better than every thread on one batch: ``predict_batch`` of 2,048 drawings went from
            688-840 to 920-1,037 sketches/s on 2 cores (``benchmarks/bench_predict.py``, with and without
            ``--serial-batches``). The results are the same to float rounding.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        classes: Sequence[str],
        *,
        preprocessing: Preprocessing = Preprocessing(),
        graph_spec: GraphSpec = GraphSpec(),
        device: str | torch.device = "cpu",
        batch_size: int = 256,
        name: str = "",
        threads: int | None = None,
        precision: str = "float32",
        read_ahead: bool | None = None,
        few_sketches: int = FEW_SKETCHES,
        parallel_batches: bool = True,
    ):
        if not _positive_int(batch_size):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        _check_fits(model, classes, preprocessing, graph_spec)
        self.device = usable_device(device)
        self.model = model.to(self.device).eval()
        self.classes: list[str] = list(classes)
        self.preprocessing = preprocessing
        self.graph_spec = graph_spec
        self.batch_size = int(batch_size)
        self.name = name
        self.threads = torch.get_num_threads() if threads is None else int(threads)
        self.precision = precision
        self.read_ahead = self.device.type != "cpu" if read_ahead is None else bool(read_ahead)
        self.few_sketches = int(few_sketches)
        self.parallel_batches = bool(parallel_batches)
        if precision == "bfloat16":
            warn_if_emulated_bf16(self.device, "SketchClassifier(precision='bfloat16')")
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike = SHIPPED_CHECKPOINT, device: str = "cpu", backend: str = "dense",
        *, cap: str | None = None, **kwargs: Any,
    ) -> SketchClassifier:
        """Load a checkpoint directory, or a shipped one by name (``"spg20"``); see ``resolve_checkpoint``.

        ``backend`` selects the attention implementation (``"dense"`` or ``"dgl"``); both give the
        same predictions. Preprocessing is the checkpoint's ``preprocessing`` (what training used),
        updated by its optional ``inference_preprocessing`` (e.g. ``{"cap": "adapt"}``: over-long drawings
        are re-simplified instead of truncated) and then by ``cap`` when given (``"truncate"`` / ``"adapt"``).
        """
        from .checkpoint import load_checkpoint

        path = resolve_checkpoint(name_or_path)
        model, config = load_checkpoint(path, device=usable_device(device))
        return cls.from_model(model, config, device, backend, cap=cap, where=str(path / "config.json"),
                              name=path.name, **kwargs)

    @classmethod
    def from_model(
        cls, model: torch.nn.Module, config: dict[str, Any], device: str = "cpu", backend: str = "dense", *,
        cap: str | None = None, where: str = "the checkpoint's config", **kwargs: Any,
    ) -> SketchClassifier:
        """A classifier of a loaded ``(model, config)`` (``load_checkpoint``'s pair) as ``from_pretrained`` builds
        it: the config's ``preprocessing`` updated by its ``inference_preprocessing``, then by ``cap``; its
        ``graph_spec``. ``CheckpointError`` naming ``where`` when the config does not fit the model."""
        set_backend(model, backend)
        try:
            preprocessing = Preprocessing.from_dict({
                **(config.get("preprocessing") or {}), **(config.get("inference_preprocessing") or {}),
            })
            graph_spec = GraphSpec.from_dict(config["graph_spec"]) if "graph_spec" in config else GraphSpec()
            _check_fits(model, config["classes"], preprocessing, graph_spec)
        except (TypeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{where} does not fit its model: {exc}") from None
        if cap is not None:
            preprocessing = replace(preprocessing, cap=cap)
            preprocessing.check_cap()
        return cls(model, config["classes"], preprocessing=preprocessing, graph_spec=graph_spec, device=device,
                   **kwargs)

    def __repr__(self) -> str:
        return (
            f"SketchClassifier(name={self.name!r}, classes={len(self.classes)}, "
            f"relations={self.graph_spec.relations}, device={str(self.device)!r})"
        )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    # ------------------------------------------------------------------ steps
    def sketch(self, x: Any) -> Sketch:
        """Input ``x`` as a ``Sketch`` with at least one point; ``SketchError`` otherwise."""
        sketch = as_sketch(x)
        if sketch.num_points == 0:
            raise SketchError("the drawing has no points")
        points = sketch.points()  # (N, 2)
        if not np.isfinite(points).all():
            raise SketchError("the drawing has NaN or infinite coordinates")
        # a Sketch built directly passed no reader: held to the readers' limits. One a reader rebased (its meta
        # keeps what was subtracted) was checked on the values as given, which float32 cannot give back exactly
        largest = float(np.abs(points).max())
        if COORD_ORIGIN not in sketch.meta and largest > MAX_COORDINATE:
            raise SketchError(f"the drawing has coordinates of magnitude beyond {MAX_COORDINATE:g} (found "
                              f"{largest:.6g})")
        times = sketch.times()
        if times is not None and TIME_ORIGIN not in sketch.meta and not (np.abs(times) <= MAX_TIME).all():
            raise SketchError(f"the drawing has times that are NaN, infinite or of magnitude beyond {MAX_TIME:g} ms")
        return sketch

    def graph(self, x: Any) -> SketchGraph:
        """The graph the model sees for input ``x`` (after the checkpoint's preprocessing)."""
        sketch = preprocess(self.sketch(x), self.preprocessing)
        return build_graph(sketch, self.graph_spec, self.preprocessing.max_points)

    def batch(self, sketches: Sequence[Sketch]) -> Batch:
        """One model input for checked sketches, padded to the longest, on ``device``."""
        return self._batches(sketches, sort=False)[0][1]

    def prepare(self, sketches: Sequence[Sketch]) -> FlatPrepared:
        """The checkpoint's preprocessing of checked sketches (see ``sketch``), flat: the per-drawing half of a
        prediction (a sketch's result does not depend on the others, so parts prepared apart may be joined
        with ``FlatPrepared.concat``). ``UnusableSketchesError`` names the sketches it refuses."""
        from .data.flat import preprocess_flat

        return preprocess_flat(sketches, self.preprocessing, threads=self.threads)

    def prepare_usable(self, sketches: Sequence[Sketch]) -> tuple[FlatPrepared | None, list[int], dict[int, str]]:
        """``prepare`` that skips the sketches preprocessing refuses (non-finite coordinates, degenerate ink; see
        ``UnusableSketchesError``): ``(prepared, usable, problems)``, the preparation of the sketches whose indices
        are ``usable`` (``None`` when there are none) and ``{index: reason}`` for the others. A ``SketchError`` that
        names no sketch (not an ``UnusableSketchesError``) has each sketch prepared alone, so only the ones refused
        are left out."""
        try:
            return self.prepare(sketches), list(range(len(sketches))), {}
        except UnusableSketchesError as exc:
            problems = exc.problems
        except SketchError as exc:
            if len(sketches) == 1:
                return None, [], {0: str(exc)}
            return self._prepare_each(sketches)
        usable = [i for i in range(len(sketches)) if i not in problems]
        return (self.prepare([sketches[i] for i in usable]) if usable else None), usable, problems

    def _prepare_each(self, sketches: Sequence[Sketch]) -> tuple[FlatPrepared | None, list[int], dict[int, str]]:
        """``prepare_usable``'s result from preparing each sketch alone."""
        from .data.flat import FlatPrepared

        parts: list[FlatPrepared] = []
        usable: list[int] = []
        problems: dict[int, str] = {}
        for i, sketch in enumerate(sketches):
            try:
                parts.append(self.prepare([sketch]))
                usable.append(i)
            except SketchError as exc:
                problems[i] = str(exc)
        return (FlatPrepared.concat(parts) if parts else None), usable, problems

    def predict_prepared(self, prepared: FlatPrepared, top_k: int = 5) -> list[list[Prediction]]:
        """Ranked predictions for ``prepare`` output, in order: the model half of ``predict_sketches``
        (``batch_size`` sketches of similar length per model call)."""
        _check_top_k(top_k)
        return self._rank(self._run(self._batches_of(prepared), len(prepared.lengths)), top_k)

    def _batches(
        self, sketches: Sequence[Sketch], *, sort: bool = True, partition: Callable | None = None
    ) -> list[tuple[np.ndarray, Batch]]:
        """``_batches_of`` the sketches, all preprocessed at once (``prepare``: the same numbers as
        ``preprocess`` per sketch)."""
        return self._batches_of(self.prepare(sketches), sort=sort, partition=partition)

    def _batches_of(
        self, flat: FlatPrepared, *, sort: bool = True, partition: Callable | None = None
    ) -> list[tuple[np.ndarray, Batch]]:
        """``(indices, Batch)`` pairs covering the prepared sketches, at most ``batch_size`` each (one ``Batch``
        when ``sort`` is off); with ``sort`` they are sorted by length and cut where the padded work is least
        (``partition``, default ``partition_by_length``), so batches carry little padding (the model's output
        does not depend on padding)."""
        from .data.loader import partition_by_length

        starts = np.cumsum(flat.lengths) - flat.lengths  # (S,)
        if sort:
            order = np.argsort(flat.lengths, kind="stable")
            cut = partition or partition_by_length
            groups = [order[a:b] for a, b in cut(flat.lengths[order], self.batch_size)]
        else:
            groups = [np.arange(len(flat.lengths))]
        relations = self.graph_spec.relations
        return [
            (idx, Batch.from_flat(flat.coords, flat.flags, starts[idx], flat.lengths[idx], relations).to(self.device))
            for idx in groups
        ]

    def probabilities(self, sketches: Sequence[Sketch]) -> torch.Tensor:
        """Softmax class probabilities ``(S, C)`` (float32, CPU) of checked sketches, in their order;
        ``batch_size`` sketches of similar length per model call."""
        return self._run(self._batches(sketches), len(sketches))

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bfloat16")

    def _run(self, batches: list[tuple[np.ndarray, Batch]], count: int) -> torch.Tensor:
        """Softmax probabilities ``(count, C)`` of ``_batches`` output, in the sketches' order."""
        probs = torch.empty(count, self.num_classes)
        cpu = self.device.type == "cpu"
        threads = torch.get_num_threads()
        workers = min(threads, usable_cpus(), len(batches)) if cpu and self.parallel_batches and self._dense() else 1
        with self._lock:
            if workers > 1:  # whole batches side by side, each on its share of the threads, largest first
                order = sorted(range(len(batches)), key=lambda i: -_work(batches[i][1]))
                with ThreadPoolExecutor(workers, thread_name_prefix="sketchgraph-model") as pool:
                    done = pool.map(lambda i: self._probabilities(batches[i][1], threads // workers), order)
                    for i, p in zip(order, done):
                        probs[torch.from_numpy(batches[i][0])] = p
            else:
                for idx, batch in batches:
                    probs[torch.from_numpy(idx)] = self._probabilities(
                        batch, 1 if cpu and len(idx) <= self.few_sketches else None)
        return probs

    def _probabilities(self, batch: Batch, threads: int | None) -> torch.Tensor:
        """Softmax probabilities ``(B, C)`` (float32, CPU) of one batch, the model on ``threads`` intra-op threads
        (``None``: the calling thread's count). ``CheckpointError`` for NaN or infinite scores."""
        with torch.inference_mode(), self._autocast(), intraop_threads(threads):
            logits = self.model(batch)  # (B, C)
        if not torch.isfinite(logits).all():  # never rank NaNs
            raise CheckpointError(f"the model of {self.name or 'this classifier'!r} gave NaN or infinite scores "
                                  f"({self.precision}, {self.device}): its numbers overflow")
        return torch.softmax(logits.float(), dim=-1).cpu()

    def _dense(self) -> bool:
        """Whether the model's attention is the dense backend (or it has none): DGL's calls are kept one at a
        time."""
        config = getattr(self.model, "config", None)
        return getattr(config, "backend", "dense") == "dense"

    def _rank(self, probs: torch.Tensor, top_k: int) -> list[list[Prediction]]:
        """``probs (B, C)`` -> per sketch, the ``top_k`` predictions, best first."""
        _check_top_k(top_k)
        scores, idx = probs.topk(min(int(top_k), probs.shape[-1]), dim=-1)  # (B, k)
        return [
            [Prediction(self.classes[i], s, i) for s, i in zip(row_s, row_i)]
            for row_s, row_i in zip(scores.tolist(), idx.tolist())
        ]

    # ------------------------------------------------------------------ public
    def predict_sketches(self, sketches: Sequence[Sketch], top_k: int = 5) -> list[list[Prediction]]:
        """Ranked predictions for checked sketches (see ``sketch``)."""
        return self._rank(self.probabilities(sketches), top_k)

    def predict_usable(
        self, sketches: Sequence[Sketch], top_k: int = 5
    ) -> tuple[list[list[Prediction] | None], dict[int, str]]:
        """``predict_sketches`` that skips the sketches preprocessing refuses (non-finite coordinates,
        degenerate ink; see ``UnusableSketchesError``): ``(ranked, problems)`` with ``ranked[i]`` ``None``
        and ``problems[i]`` the reason for each skipped sketch ``i``."""
        _check_top_k(top_k)
        prepared, usable, problems = self.prepare_usable(sketches)
        ranked: list[list[Prediction] | None] = [None] * len(sketches)
        if prepared is not None:
            for i, preds in zip(usable, self.predict_prepared(prepared, top_k)):
                ranked[i] = preds
        return ranked, problems

    def predict(self, x: Any, top_k: int = 5) -> list[Prediction]:
        """The ``top_k`` most likely classes of one sketch, best first (scores are probabilities); a ``top_k``
        above the number of classes gives them all.

        ``x`` is one sketch in any form the module docstring lists. A file path means the file's *first* sketch,
        however many it holds (the others are not read): ``predict_batch(path)`` classifies them all.

        Raises ``ValueError`` for a ``top_k`` that is not a positive integer, ``SketchError`` for input that
        cannot be read or classified (``FormatError``, a subclass, for a malformed record; ``UnusableSketchesError``
        for a drawing preprocessing refuses, such as one too long to simplify), ``FileNotFoundError`` for a path
        that does not exist."""
        _check_top_k(top_k)
        return self.predict_sketches([self.sketch(x)], top_k)[0]

    def classify_each(self, tagged: Iterable[tuple[Any, Any]], top_k: int = 5
                      ) -> Iterator[tuple[Any, Any, list[Prediction] | None, str | None]]:
        """``(tag, input, predictions, error)`` for each ``(tag, input)`` of ``tagged``, in order, classified in
        chunks of ``_READ_AHEAD * batch_size``: an input that cannot be read or preprocessed fails alone
        (``predictions`` ``None``, ``error`` the reason) and the others are classified. An input that is an
        exception (a record a reader could not read, passed on in its place) fails with its own message."""
        _check_top_k(top_k)
        for chunk in _chunks(tagged, _READ_AHEAD * self.batch_size):
            good: dict[int, Sketch] = {}
            errors: dict[int, str] = {}
            for i, (_, x) in enumerate(chunk):
                if isinstance(x, Exception):
                    errors[i] = str(x)
                    continue
                try:
                    good[i] = self.sketch(x)
                except (SketchError, OSError) as exc:  # OSError: a path item that is missing or unreadable
                    errors[i] = str(exc)
            ranked, problems = self.predict_usable(list(good.values()), top_k) if good else ([], {})
            errors.update({i: problems[j] for j, i in enumerate(good) if j in problems})
            by_item = dict(zip(good, ranked))
            for i, (tag, x) in enumerate(chunk):
                yield tag, x, by_item.get(i), errors.get(i)

    def _predict_file_each(self, path: str | os.PathLike, top_k: int,
                           on_error: Callable[[SketchError], None]) -> list[list[Prediction]]:
        """``predict_batch(path, on_error=...)``: one result per record of the file, ``[]`` for a record that
        could not be read (``_records_in_place``, passed through ``classify_each`` in its place) or classified,
        each error sent to ``on_error`` once, in the file's order. A refusal is a ``FormatError`` carrying the
        record's ``source``, ``line``, ``key_id`` and ``label``, as a read error does."""
        def tagged() -> Iterator[tuple[tuple[int | None, Place | None], Any]]:
            n = 0  # the record's index; an error about a whole file is none
            for place, x in _records_in_place(path):
                whole = getattr(x, "whole_file", False)
                yield (None if whole else n, place), x
                n += not whole

        out: list[list[Prediction]] = []
        for (n, place), x, preds, error in self.classify_each(tagged(), top_k):
            if error is not None:
                on_error(x if place is None else _refusal(n, place, x, error))
            if n is not None:
                out.append(preds or [])
        return out

    def predict_batch(self, xs: Iterable[Any] | str | os.PathLike, top_k: int = 5, *,
                      on_error: Callable[[SketchError], None] | None = None) -> list[list[Prediction]]:
        """``predict`` for many sketches: read and preprocessed ``_READ_AHEAD * batch_size`` at a time, then
        ``batch_size`` sketches of similar length per model call. With ``read_ahead`` the next chunk is
        read and preprocessed in a background thread while the model runs on the current one.

        ``xs`` is an iterable of inputs (one result per item, in order; a path item means that
        file's first sketch) or a file path (one result per sketch in the file). A bad item, a path item that does
        not exist included, raises ``SketchError`` naming its position (``item 3: no such file: x.ndjson``); with
        ``on_error`` it fails alone instead: ``on_error`` gets that error, the item's result is ``[]`` and the
        others are classified (``classify_each``, without read-ahead).

        For a file path (or a folder), without ``on_error`` the first record that cannot be read raises the
        reader's ``FormatError`` (file and line). With ``on_error``, every record of the file has its result, in
        the file's order, so the results line up with the records (``zip(results, records)``): a record that
        cannot be read goes to ``on_error`` as the reader's ``FormatError`` and one the preprocessing refuses as
        ``item N: face.ndjson:5: reason`` (``N`` its 0-based index among the file's records, as in
        ``sketchgraph predict --json``), and either gets ``[]``. An error about a whole file or the rest of it
        (an unreadable file in a folder, a truncated gzip stream) goes to ``on_error`` and adds no result.
        ``top_k`` is as in ``predict`` (``ValueError`` unless a positive integer; clamped to the number of
        classes); a whole-argument path that does not exist raises ``FileNotFoundError``.
        """
        _check_top_k(top_k)
        if on_error is not None and not callable(on_error):
            raise TypeError(f"on_error must be a function taking a SketchError, got {a_type(on_error)}")
        xs = _bytes_path(xs)
        if on_error is not None:
            if _is_path(xs):
                return self._predict_file_each(xs, top_k, on_error)
            out: list[list[Prediction]] = []
            for n, _, preds, error in self.classify_each(enumerate(_iter_inputs(xs)), top_k):
                if error is not None:
                    on_error(SketchError(f"item {n}: {error}{_one_drawing_hint(xs) if n == 0 else ''}"))
                out.append(preds or [])
            return out
        chunks = _chunks(_iter_inputs(xs), _READ_AHEAD * self.batch_size)

        def prepare(first: int) -> tuple[list[tuple[np.ndarray, Batch]], int]:
            sketches = []
            for x in next(chunks, []):
                try:
                    sketches.append(self.sketch(x))
                except (SketchError, OSError) as exc:  # OSError: a path item that is missing or unreadable
                    n = first + len(sketches)
                    raise SketchError(f"item {n}: {exc}{_one_drawing_hint(xs) if n == 0 else ''}") from None
            try:
                return (self._batches(sketches) if sketches else []), len(sketches)
            except UnusableSketchesError as exc:
                i, reason = next(iter(exc.problems.items()))
                raise SketchError(f"item {first + i}: {reason}") from None

        out = []
        with ThreadPoolExecutor(1, thread_name_prefix="sketchgraph-read-ahead") as pool:
            pending = pool.submit(prepare, 0) if self.read_ahead else None
            while True:
                batches, count = pending.result() if pending is not None else prepare(len(out))
                if not count:
                    return out
                if pending is not None:
                    pending = pool.submit(prepare, len(out) + count)
                out.extend(self._rank(self._run(batches, count), top_k))

    def attention_maps(self, x: Any) -> dict[str, np.ndarray]:
        """Attention weights of one sketch: ``{relation: (layers, heads, N, N)}`` float32, where row
        ``i`` is how query node ``i`` spreads its attention over key nodes ``j`` (0 outside the
        relation) and ``N`` is the number of points after preprocessing. For ``viz.plot_attention``.

        The model runs as it does for ``predict``: under ``precision="bfloat16"`` in bfloat16 autocast, so the maps
        are the ones behind the predictions (computed in bfloat16, returned as float32; they differ from float32's
        by about bfloat16's rounding).

        Raises ``NotImplementedError`` for models without attention (the baselines).
        """
        if "return_attention" not in inspect.signature(self.model.forward).parameters:
            raise NotImplementedError(f"{type(self.model).__name__} has no attention maps")
        batch = self.batch([self.sketch(x)])
        with self._lock, torch.inference_mode(), self._autocast():
            _, maps = self.model(batch, return_attention=True)
        return _stack_attention(maps)


# ---------------------------------------------------------------------------------- CLI
def add_classifier_arguments(p: argparse.ArgumentParser) -> None:
    """The options that load a ``SketchClassifier`` (``sketchgraph predict`` and ``sketchgraph serve``):
    ``--checkpoint``, ``--backend``, ``--precision``, ``--device``."""
    p.add_argument("--checkpoint", default=SHIPPED_CHECKPOINT,
                   help=f"checkpoint directory or shipped name (default {SHIPPED_CHECKPOINT})")
    p.add_argument("--backend", choices=BACKENDS, default="dense", help="attention implementation (default dense)")
    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="float32 (exact; default) or bfloat16 autocast (faster on CPUs with native bfloat16)")
    p.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, cuda:1, auto")


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="sketch files (.ndjson, .jsonl, .json, .svg, .npz, .bin; ndjson and JSON also "
                        "gzip-compressed, .ndjson.gz) or folders of them; - reads standard input (any of these "
                        "formats; ./- names a file '-')")
    add_classifier_arguments(p)
    p.add_argument("--top-k", type=int_option(1), default=5,
                   help="predictions per sketch (default 5; more than the classes gives them all)")
    p.add_argument("--json", action="store_true", help="one JSON object per sketch instead of a table")
    p.add_argument("--batch-size", type=int_option(1), default=256,
                   help="sketches per model call (default 256)")
    from .formats import FORMATS

    p.add_argument("--format", choices=FORMATS, default=None,
                   help="read every file as this format (default: from each file's name and content)")


def format_predictions(preds: Sequence[Prediction], *, width: int = 30) -> str:
    """A small text table: rank, label, percentage and a bar."""
    pad = max((len(p.label) for p in preds), default=0)
    return "\n".join(
        f"  {rank:>2}. {p.label:<{pad}}  {100 * p.score:5.1f}%  {'#' * round(width * p.score)}"
        for rank, p in enumerate(preds, 1)
    )


def _print_result(path: str, index: int | None, sketch: Sketch | None, preds: list[Prediction] | None,
                  error: str | None, as_json: bool, identity: tuple[str | None, str | None] = (None, None)) -> None:
    """One result: a table block on stdout, or one JSON line ``{"file", "index", "key_id", "label", "predictions"
    | "error"}`` (``label``: the record's own class name, such as Quick, Draw!'s ``word``; the guesses are
    ``predictions``). ``sketch`` is ``None`` for a record (or, with ``index`` ``None``, a whole file) that could not
    be read; ``identity`` is then its ``(key_id, label)`` as far as the reader could tell. A record with an
    ``error`` (unreadable, or read and refused) is reported on stderr only, not in the table; as JSON it still gets
    its line, with ``error``."""
    if as_json:
        key_id, label = (sketch.key_id, sketch.label) if sketch is not None else identity
        record: dict[str, Any] = {"file": path, "index": index, "key_id": key_id, "label": label}
        record.update({"error": error} if error else {"predictions": [p.to_dict() for p in preds or []]})
        print(json.dumps(record))
        return
    if sketch is None or error:  # reported on stderr only: the table stays results
        return
    about = "".join(f"  {k}={v}" for k, v in (("key_id", sketch.key_id), ("label", sketch.label)) if v)
    print(f"{_one_line(path)} [{index}]{_one_line(about)}\n{format_predictions(preds or [])}")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _one_line(text: str) -> str:
    """``text`` with its control characters escaped (``\\n``, ``\\t``, ``\\x1b``), so that a file name or key id
    holding one keeps the table's layout (and sends the terminal no escape sequence); ``--json`` gives it as it is."""
    return _CONTROL.sub(lambda m: repr(m[0])[1:-1], text)


STDIN = "-"  # ``sketchgraph predict -``: the sketches of standard input


def save_stdin(folder: Path, *, chunk: int = 1 << 20, prog: str = "sketchgraph predict") -> Path:
    """Copy standard input's bytes to a new file in ``folder`` until it ends, and return its path: ``sketchgraph
    predict -`` reads it as a file, since a format is sniffed from a file's first bytes before it is read from its
    start. The file's name means nothing (``FileRun`` reads it with ``from_name=False``: no class or key id comes
    from it) and is drawn at random. On a terminal, says on stderr to end the input with Ctrl-D; one
    Ctrl-D does (each read returns what one read of the stream gives). ``SketchError`` when standard input is closed
    or cannot be read, or the copy cannot be written (a full disk: it says to set ``TMPDIR``)."""
    source = getattr(sys.stdin, "buffer", None)
    if source is None:
        raise SketchError("standard input is closed: nothing to read for -")
    path = folder / f"stdin-{secrets.token_hex(8)}"
    try:
        if source.isatty():
            print(f"{prog}: reading sketches from standard input; end with Ctrl-D", file=sys.stderr)
        with open(path, "xb") as out:
            while True:
                try:
                    block = source.read1(chunk)
                except OSError as exc:
                    raise SketchError(f"cannot read standard input: {exc.strerror or exc}") from None
                if not block:
                    break
                out.write(block)
    except OSError as exc:
        raise SketchError(f"could not save standard input to {folder}: {exc.strerror or exc} (set TMPDIR to a "
                          "folder with more room, or pass the file itself)") from None
    return path


def check_file_arguments(files: Sequence[str | os.PathLike]) -> None:
    """The command line's FILE arguments, checked before the model loads and standard input is read: ``-``
    (``STDIN``) at most once (``SketchError``), every other path as ``require_paths`` checks it."""
    if (n := sum(1 for f in files if f == STDIN)) > 1:
        raise SketchError(f"{STDIN} (standard input) is given {n} times; it can be read once")
    require_paths(f for f in files if f != STDIN)


@contextmanager
def stdin_copy(files: Sequence[str | os.PathLike], prog: str = "sketchgraph predict") -> Iterator[str | None]:
    """The path of standard input's copy (``save_stdin``) when ``-`` (``STDIN``) is among ``files``, else ``None``;
    the copy's temporary folder is removed on leaving, even on SIGTERM (the CLI turns it into an exception)."""
    if STDIN not in files:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="sketchgraph-stdin-") as folder:
        yield str(save_stdin(Path(folder), prog=prog))


def require_paths(paths: Iterable[str | os.PathLike]) -> None:
    """``FileNotFoundError`` for the first of ``paths`` that does not exist, ``SketchError`` for one that is a pipe or
    another stream (``refuse_streams``): the CLI checks before loading the model, and such a path stops the run before
    it starts."""
    for path in paths:
        if not Path(path).exists():
            raise FileNotFoundError(f"no such sketch file: {path}")
        refuse_streams(path)


def expand_files(paths: Iterable[str | os.PathLike]) -> Iterator[str]:
    """Each named file, and each sketch file of a named folder (``sketch_files``), so a record's ``file`` and
    ``index`` are its own file's. A folder without any sketch file, or a prepared dataset's folder, is yielded
    itself, and a link in a folder that has a sketch file's name but leads to no file (``broken_links``) in its
    place: ``FileRun`` reports them all."""
    from .formats import sketch_files

    for path in paths:
        folder = Path(path).is_dir() and not _prepared_dataset(path)  # a prepared dataset stands for itself
        files = sketch_files(path, gzipped=True, broken_links=True) if folder else []
        yield from (str(f) for f in files) if files else [str(path)]


def _prepared_dataset(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder ``sketchgraph prepare`` wrote (its ``meta.json`` and ``coords.npy``): stricter
    than ``data.storage.is_prepared`` (``meta.json`` alone), so a folder of sketch files that also holds a
    ``meta.json`` of its own is still read."""
    return (Path(path) / "meta.json").is_file() and (Path(path) / "coords.npy").is_file()


def stderr_report(prog: str) -> Callable[[str], None]:
    """A ``FileRun`` report: each message printed on stderr after ``prog: ``."""
    return lambda message: print(f"{prog}: {message}", file=sys.stderr)


def _no_sketch_files() -> str:
    """What a folder without sketch files lacks: the suffixes a folder walk reads (``sketch_files``)."""
    from .formats.sniff import GZIP_SUFFIXES, SUFFIXES

    walked = ", ".join([*(suffix for suffix, kind in SUFFIXES.items() if kind != "npz"), *GZIP_SUFFIXES])
    return f"no sketch files in this folder or below ({walked}; an .npz file is read only when named)"


class FileRun:
    """``sketchgraph predict`` (or ``demo``) on one file: its records numbered in order, the skipped ones too (so
    ``[n]`` and ``"index"`` are one numbering), and what could not be read, reported on stderr at once and, as JSON
    lines, in its place among the results (an error about the file, or a part of it, takes no number: index
    ``None``). A folder stands for itself only when it holds no sketch file, and is reported so."""

    def __init__(self, path: str, format: str | None, as_json: bool, report: Callable[[str], object] | None = None,
                 *, name: str | None = None):
        """``report`` gets each "skipped ..." message; by default ``stderr_report("sketchgraph predict")``. ``name``:
        what the results and messages call the file (default ``path``; ``-`` for standard input saved to ``path``)."""
        self.path, self.format, self.as_json = path, format, as_json
        self.name = name or path
        self.report = report or stderr_report("sketchgraph predict")
        self.position = 0
        self.failed_records = self.failed_parts = 0
        #: (place in the order, index, error, (key_id, label), source) of what could not be read, not shown yet
        self.unread: deque[tuple[float, int | None, str, tuple[str | None, str | None], str | None]] = deque()
        #: the class each file's name gives, for the files whose readable records take it (no ``word``)
        self.named_sources: dict[str, str] = {}
        self._names: dict[tuple[str, bool], str] = {}  # label_from_path of (source, SPG or not), computed once

    def skipped(self, error: str, index: int | None, identity: tuple[str | None, str | None] = (None, None),
                source: str | None = None) -> None:
        """Report a record (``index``; ``identity`` its ``(key_id, label)`` when known, ``source`` its file) or the
        file or a part of it (``None``) that could not be read, and keep its error to print in its place
        (``print_unread``)."""
        if index is None:
            self.failed_parts += 1
            error = re.sub(rf"^{re.escape(self.path)}:(?:(\d+):)? ", lambda m: f"line {m[1]}: " if m[1] else "",
                           error)  # the reader's own file name (and line)
        else:
            self.failed_records += 1
        error = self._named(error)
        where = self.name if index is None else f"{self.name} [{index}]"
        self.report(_one_line(f"skipped {where}: {error}"))  # a name may hold a newline or an escape character
        self.unread.append((self.position - (0.5 if index is None else 0.0), index, error, identity, source))

    def unreadable(self, exc: SketchError) -> None:
        """The reader's ``on_error``."""
        if getattr(exc, "whole_file", False):
            self.skipped(str(exc), None)
        else:
            self.skipped(str(exc), self.position, (getattr(exc, "key_id", None), getattr(exc, "label", None)),
                         getattr(exc, "source", None))
            self.position += 1

    def refused(self, error: str, index: int, place: Place) -> str:
        """Report a record that was read but not classified (preprocessing refused it, see
        ``UnusableSketchesError``) as an unreadable one is reported, on stderr at once; the error with the record's
        place, as the reader places its errors (``face.ndjson:17: drawing too long to simplify ...``), to print in
        its place among the results. The records around it go on."""
        located = self._named(str(place.locate(FormatError(error))))
        self.failed_records += 1
        self.report(_one_line(f"skipped {self.name} [{index}]: {located}"))
        return located

    def _named(self, text: str) -> str:
        """``text`` (a reader's message) with the file called by ``name`` (a message that gives the file's name
        alone too: the saved copy of standard input has a name of its own, drawn at random)."""
        if self.name == self.path:
            return text
        return text.replace(self.path, self.name).replace(Path(self.path).name, self.name)

    def located_records(self) -> Iterator[tuple[tuple[int, Place], Sketch]]:
        """``((index, place), sketch)`` of every readable record, ``place`` where the reader found it (``refused``
        names it). A file that cannot be read at all (unknown format, unreadable, a broken link) or holds no
        sketch, or a folder without sketch files, is skipped, not fatal."""
        from .formats import read_located

        if Path(self.path).is_dir():  # expand_files yields a folder only when it holds no sketch file, or is prepared
            self.skipped(f"a prepared dataset (meta.json, coords.npy), not sketch files: sketchgraph evaluate "
                         f"CHECKPOINT {self.path} classifies it" if _prepared_dataset(self.path) else
                         _no_sketch_files(), None)
            return
        from .formats.base import broken_link

        broken = broken_link(self.path)  # met in a folder (a named one stops the run: require_paths)
        if broken is not None:
            self.skipped(broken, None)
            return
        if self.name == STDIN and os.path.getsize(self.path) == 0:  # no bytes to tell a format by
            self.skipped("nothing came on standard input", None)
            return
        try:
            # a copy of standard input has a random name (save_stdin): no class or key id is taken from it
            for place, sketch in read_located(self.path, self.format, on_error=self.unreadable,
                                              from_name=self.name == self.path):
                self._note_name(place.source, sketch)
                yield (self.position, place), sketch
                self.position += 1
        except (SketchError, OSError) as exc:
            why = f"cannot read it: {exc.strerror}" if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.skipped(why if self.position == 0 else f"stopped after record {self.position - 1}: {why}", None)
            return
        if self.position == 0 and not self.unread:
            self.skipped("contains no sketches", None)

    def _note_name(self, source: str, sketch: Sketch) -> None:
        """Note whether ``sketch``, read from ``source``, took its class from the file's name (it has no ``word``):
        then the records of that file that could not be read get that class as their label too, as ``evaluate``
        counts them (a line that is no JSON shows no word)."""
        if sketch.label is None or source in self.named_sources:
            return
        key = (source, sketch.parts is not None)
        if key not in self._names:
            from .formats import label_from_path

            self._names[key] = label_from_path(source, folder=source.lower().endswith(".svg"), spg=key[1])
        if sketch.label == self._names[key]:
            self.named_sources[source] = sketch.label

    def print_unread(self, before: float) -> None:
        """The skipped records placed before record ``before`` (all: ``inf``), in order, as JSON lines; one without
        a label gets the class its file's name gives when the file's readable records take it (``_note_name``)."""
        while self.unread and self.unread[0][0] < before:
            _, index, error, (key_id, label), source = self.unread.popleft()
            if label is None and source is not None:
                label = self.named_sources.get(source)
            _print_result(self.name, index, None, None, error, self.as_json, (key_id, label))


def run_cli(args: argparse.Namespace) -> int:
    """Classify every sketch of every file. A record that cannot be read or classified is reported on stderr
    (naming its file, its index and, as the reader does, its line), stays out of the table and, with ``--json``,
    gets its line in place with an ``error`` field; it makes the exit status 1, and the others still run."""
    with no_kernel_cache():  # a long run of model calls of ever new shapes (``sketchgraph.device``)
        return _run_cli(args)


def _run_cli(args: argparse.Namespace) -> int:
    _check_top_k(args.top_k)
    check_file_arguments(args.files)  # before reading standard input and loading the model
    clf = SketchClassifier.from_pretrained(  # before standard input: a wrong checkpoint is said at once
        args.checkpoint, device=args.device, backend=args.backend, batch_size=args.batch_size,
        precision=args.precision,
    )
    records = parts = 0  # sketches that could not be classified; files or parts of files that could not be read
    with stdin_copy(args.files) as saved:
        for path in expand_files(saved if f == STDIN else f for f in args.files):
            run = FileRun(path, args.format, args.json, name=STDIN if path == saved else None)
            for (index, place), sketch, preds, error in clf.classify_each(run.located_records(), args.top_k):
                run.print_unread(index)
                if error is not None:
                    error = run.refused(error, index, place)
                _print_result(run.name, index, sketch, preds, error, args.json)
            run.print_unread(float("inf"))
            records, parts = records + run.failed_records, parts + run.failed_parts
    sys.stdout.flush()
    unread = "file or part of a file" if parts == 1 else "files or parts of files"
    problems = [text for n, text in ((records, f"{counted(records, 'sketch')} could not be classified"),
                                     (parts, f"{parts:,} {unread} could not be read")) if n]
    if problems:
        print(f"sketchgraph predict: {', '.join(problems)}", file=sys.stderr)
    return 1 if problems else 0
