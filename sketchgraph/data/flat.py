"""Batched preprocessing on flat arrays: ``preprocess`` for a whole chunk of sketches at once.

``preprocess_flat(sketches, config)`` gives, bit for bit, what ``preprocess(sketch, config)`` gives
for each sketch (``preprocess_reference``, the per-sketch loop, is kept for the tests): simplification
runs through ``simplify_arrays`` (the library's one implementation, whose results do not depend on
which other sketches share the batch), normalisation through the same framing kernel, and the point
cap and stroke flags are vectorised here.

Layout of a flat batch (``S`` sketches, ``T`` strokes, ``P`` points):

- ``points`` ``(P, 2)`` float32 and optional ``times`` ``(P,)`` float32, in drawing order;
- ``stroke_lengths`` ``(T,)`` int64 points per stroke; ``sketch_strokes`` ``(S,)`` int64 strokes per sketch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import UnusableSketchesError
from ..graph import FLAG_END, sketch_flags
from ..preprocess import Preprocessing, _frame, preprocess, simplify_arrays
from ..sketch import Sketch

__all__ = ["FlatSketches", "FlatPrepared", "flatten", "preprocess_flat", "preprocess_reference"]


@dataclass
class FlatSketches:
    """Sketches concatenated (see the module docstring for shapes).

    ``times`` ``(P,)`` holds the times of the sketches that have them (NaN elsewhere) and is ``None``
    when none has; ``timed`` ``(S,)`` says which sketches have times (default: all when ``times`` is
    given). Preprocessing keeps times only when every sketch has them.
    """

    points: np.ndarray
    stroke_lengths: np.ndarray
    sketch_strokes: np.ndarray
    times: np.ndarray | None = None
    timed: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.timed is None:
            self.timed = np.full(len(self.sketch_strokes), self.times is not None)

    @property
    def num_sketches(self) -> int:
        return len(self.sketch_strokes)

    @property
    def all_timed(self) -> bool:
        return self.times is not None and bool(self.timed.all())

    def sketch_points(self) -> np.ndarray:
        """``(S,)`` int64 points per sketch."""
        return _segment_sums(self.stroke_lengths, self.sketch_strokes)

    def take(self, idx: np.ndarray) -> FlatSketches:
        """Sketches ``idx`` ``(K,)`` (int indices, any order) as a new ``FlatSketches``."""
        idx = np.asarray(idx, dtype=np.int64)
        stroke_start = np.cumsum(self.sketch_strokes) - self.sketch_strokes
        ns = self.sketch_strokes[idx]
        strokes = _ranges(stroke_start[idx], ns)  # (T',) stroke indices
        point_start = np.cumsum(self.stroke_lengths) - self.stroke_lengths
        points = _ranges(point_start[strokes], self.stroke_lengths[strokes])
        timed = self.timed[idx]
        return FlatSketches(self.points[points], self.stroke_lengths[strokes], ns,
                            None if self.times is None or not timed.any() else self.times[points], timed)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + c) for s, c in zip(starts, counts)])``, vectorised."""
    counts = np.asarray(counts, dtype=np.int64)
    return np.repeat(np.asarray(starts, np.int64) - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))


@dataclass
class FlatPrepared:
    """Preprocessed sketches, ready to store.

    Attributes:
        coords: ``(P, 2)`` float32 coordinates.
        flags: ``(P,)`` uint8, 101 on the last point of each stroke, else 100.
        lengths: ``(S,)`` int64 points per sketch.
        times: ``(P,)`` float32 ms, or ``None`` (simplification drops times).
        dropped: ``(S,)`` int64 points removed by the cap (0 when not truncated).
    """

    coords: np.ndarray
    flags: np.ndarray
    lengths: np.ndarray
    times: np.ndarray | None
    dropped: np.ndarray

    @classmethod
    def empty(cls, with_times: bool = False) -> FlatPrepared:
        return cls(
            np.zeros((0, 2), np.float32), np.zeros(0, np.uint8), np.zeros(0, np.int64),
            np.zeros(0, np.float32) if with_times else None, np.zeros(0, np.int64),
        )

    @classmethod
    def concat(cls, parts: Sequence[FlatPrepared]) -> FlatPrepared:
        """Concatenate in order; times survive only if every non-empty part has them."""
        if not parts:
            return cls.empty()
        filled = [p for p in parts if len(p.lengths)]
        keep_t = bool(filled) and all(p.times is not None for p in filled)
        return cls(
            np.concatenate([p.coords for p in parts]),
            np.concatenate([p.flags for p in parts]),
            np.concatenate([p.lengths for p in parts]),
            np.concatenate([p.times for p in filled]) if keep_t else None,
            np.concatenate([p.dropped for p in parts]),
        )


def _segment_sums(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sums of consecutive runs: ``values`` split into runs of ``counts`` -> ``(len(counts),)``."""
    ends = np.cumsum(counts)
    csum = np.concatenate([[0], np.cumsum(values, dtype=np.int64)])
    return csum[ends] - csum[ends - counts]


def flatten(sketches: Sequence[Sketch]) -> FlatSketches:
    """Concatenate sketches into a ``FlatSketches`` (times kept for the sketches that have them)."""
    strokes = [s for sk in sketches for s in sk.strokes]
    timed = np.fromiter((sk.has_time for sk in sketches), bool, len(sketches))
    if strokes:
        points = np.concatenate([s[:, :2] for s in strokes]).astype(np.float32, copy=False)
    else:
        points = np.zeros((0, 2), np.float32)
    times = None
    if timed.any():
        nan = np.float32(np.nan)
        times = np.concatenate([s[:, 2] if s.shape[1] == 3 else np.full(len(s), nan, np.float32) for s in strokes])
    return FlatSketches(
        points=np.ascontiguousarray(points),
        stroke_lengths=np.fromiter((len(s) for s in strokes), np.int64, len(strokes)),
        sketch_strokes=np.fromiter((sk.num_strokes for sk in sketches), np.int64, len(sketches)),
        times=None if times is None else times.astype(np.float32, copy=False),
        timed=timed,
    )


def _replace_sketches(coords: np.ndarray, lengths: np.ndarray, sketch_strokes: np.ndarray, which: np.ndarray,
                      new_coords: np.ndarray, new_lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Swap the points of sketches ``which`` (K,) for new ones with the same strokes, vectorised.

    ``coords (P, 2)`` / ``lengths (T,)`` hold all sketches; ``new_coords (P', 2)`` / ``new_lengths (T',)`` the
    K replacements (stroke counts ``sketch_strokes[which]``). Points and strokes are merged by a stable sort
    on their sketch index, so drawing order is kept.
    """
    S = len(sketch_strokes)
    stroke_sketch = np.repeat(np.arange(S), sketch_strokes)  # (T,)
    point_sketch = np.repeat(stroke_sketch, lengths)  # (P,)
    replaced = np.zeros(S, dtype=bool)
    replaced[which] = True
    keep_stroke, keep_point = ~replaced[stroke_sketch], ~replaced[point_sketch]
    new_stroke_sketch = np.repeat(which, sketch_strokes[which])  # (T',)
    new_point_sketch = np.repeat(new_stroke_sketch, new_lengths)  # (P',)
    stroke_order = np.argsort(np.concatenate([stroke_sketch[keep_stroke], new_stroke_sketch]), kind="stable")
    point_order = np.argsort(np.concatenate([point_sketch[keep_point], new_point_sketch]), kind="stable")
    return (np.concatenate([coords[keep_point], new_coords])[point_order],
            np.concatenate([lengths[keep_stroke], new_lengths])[stroke_order])


# ------------------------------------------------------------------------------ cap + flags
def _cap(coords: np.ndarray, times: np.ndarray | None, stroke_lengths: np.ndarray, sketch_strokes: np.ndarray,
         max_points: int) -> FlatPrepared:
    """The point cap (keep each sketch's first ``max_points`` points) and flags, vectorised."""
    flags = sketch_flags(stroke_lengths).astype(np.uint8)  # (P,)
    sketch_points = _segment_sums(stroke_lengths, sketch_strokes)  # (S,)
    starts = np.cumsum(sketch_points) - sketch_points
    sid = np.repeat(np.arange(len(sketch_points)), sketch_points)
    rank = np.arange(len(flags)) - starts[sid]  # (P,) position within the sketch
    kept_n = np.minimum(sketch_points, max_points)
    keep = rank < max_points
    cut = sketch_points > max_points
    last = (starts + kept_n - 1)[cut]  # the last kept point of a truncated sketch ends its stroke
    flags[last] = FLAG_END
    return FlatPrepared(
        coords=coords[keep],
        flags=flags[keep],
        lengths=kept_n.astype(np.int64),
        times=None if times is None else times[keep],
        dropped=(sketch_points - kept_n).astype(np.int64),
    )


# Fewest sketches per thread worth a thread of their own (below that, thread start-up dominates).
MIN_THREAD_SKETCHES = 64


def preprocess_flat(sketches: Sequence[Sketch] | FlatSketches, config: Preprocessing = Preprocessing(),
                    size: float = 255.0, threads: int = 1) -> FlatPrepared:
    """``preprocess(sketch, config)`` for every sketch (each must have points), batched.

    Takes sketches or an already flat batch. Bit-identical to ``preprocess_reference``; times are kept
    only without simplification and only when every sketch has them.

    ``threads > 1`` splits a large batch that needs simplification into that many runs of consecutive
    sketches with about as many points each (at least ``MIN_THREAD_SKETCHES`` sketches per run) and
    simplifies them in parallel threads (numpy releases the GIL in its array kernels); every sketch's
    result is independent of the others in its batch, so the output is the same bits as with one thread.

    Raises ``UnusableSketchesError`` naming every sketch (its index in this batch) that cannot be
    simplified; callers that can skip sketches drop those and call again.
    """
    flat = sketches if isinstance(sketches, FlatSketches) else flatten(sketches)
    if not flat.num_sketches:
        return FlatPrepared.empty()
    runs = min(int(threads), flat.num_sketches // MIN_THREAD_SKETCHES)
    if config.simplify and runs > 1:
        return _preprocess_threaded(flat, config, size, runs)
    if config.simplify:
        coords, lengths = simplify_arrays(flat.points, flat.stroke_lengths, flat.sketch_strokes,
                                          epsilon=config.epsilon, size=size)
        for eps in config.adapt_epsilons():
            over = np.flatnonzero(_segment_sums(lengths, flat.sketch_strokes) > config.max_points)
            if not len(over):
                break
            sub = flat.take(over)
            new_coords, new_lengths = simplify_arrays(sub.points, sub.stroke_lengths, sub.sketch_strokes,
                                                      epsilon=eps, size=size)
            coords, lengths = _replace_sketches(coords, lengths, flat.sketch_strokes, over, new_coords, new_lengths)
        times = None
    else:
        coords = _frame(flat.points.astype(np.float64), flat.sketch_points(), size).astype(np.float32)
        lengths, times = flat.stroke_lengths, flat.times if flat.all_timed else None
    return _cap(coords, times, lengths, flat.sketch_strokes, config.max_points)


def _preprocess_threaded(flat: FlatSketches, config: Preprocessing, size: float, runs: int) -> FlatPrepared:
    """``preprocess_flat`` on ``runs`` point-balanced runs of consecutive sketches, one thread each."""
    from concurrent.futures import ThreadPoolExecutor

    csum = np.cumsum(flat.sketch_points())  # (S,)
    cuts = np.searchsorted(csum, csum[-1] * np.arange(1, runs) / runs)  # (runs - 1,) balanced by points
    bounds = np.unique(np.concatenate([[0], np.clip(cuts, 1, flat.num_sketches - 1), [flat.num_sketches]]))
    parts = [flat.take(np.arange(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]
    with ThreadPoolExecutor(len(parts), thread_name_prefix="sketchgraph-preprocess") as pool:
        futures = [pool.submit(preprocess_flat, part, config, size) for part in parts]
    done, problems = [], {}
    for first, future in zip(bounds[:-1].tolist(), futures):
        try:
            done.append(future.result())
        except UnusableSketchesError as exc:  # every run's problems, numbered in the whole batch
            problems.update({first + i: reason for i, reason in exc.problems.items()})
    if problems:
        raise UnusableSketchesError(problems, batch_size=flat.num_sketches)
    return FlatPrepared.concat(done)


def preprocess_reference(sketches: Sequence[Sketch], config: Preprocessing = Preprocessing()) -> FlatPrepared:
    """The slow reference: ``preprocess`` per sketch, then concatenated into a ``FlatPrepared``."""
    if not sketches:
        return FlatPrepared.empty()
    done = [preprocess(sk, config) for sk in sketches]
    flat = flatten(done)
    return FlatPrepared(
        coords=flat.points,
        flags=sketch_flags(flat.stroke_lengths).astype(np.uint8),
        lengths=flat.sketch_points(),
        times=flat.times if flat.all_timed else None,
        dropped=np.array([int(sk.meta.get("dropped_points", 0)) for sk in done], np.int64),
    )
