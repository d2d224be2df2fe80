"""``RequestBatcher``: concurrent ``predict`` calls share model calls (micro-batching).

One model call on 16 sketches costs little more than on one (the per-call work of 4 layers on a few hundred
rows is mostly fixed cost), so a server that runs each request alone spends most of its time on that fixed
cost. A worker thread takes every request that is waiting when it becomes free (at most ``max_batch``),
optionally waits ``max_wait_ms`` for more after the first, and answers them all from one model call. At low
load a request is served alone and at once (no added latency with the default ``max_wait_ms=0``); under load,
batches form by themselves while the model is busy.

Preprocessing (the checkpoint's simplification and point cap) is per-drawing work. For real drawings its cost
grows with the drawing's ink (``sketchgraph.preprocess.ink_length``, px of strokes in the 255 frame) and, by a fixed
cost per stroke, with its strokes (``INK_PER_STROKE`` px each: 20,000 one-point strokes, which have no ink, take about
0.1 s). ``preprocessing_work`` is their sum: an *estimate*, not a bound. A real drawing has about 1,000 px (under
3,200 at the 99th percentile; ``benchmarks/stroke_counts.py``) and a few dozen strokes at most, and is simplified in a
few milliseconds, cheapest together with its batch-mates: up to ``light_ink`` px of work a drawing is preprocessed on
the worker with its batch. A heavier one is preprocessed first on a small pool of its own (``heavy_workers`` threads)
and queued when ready, so heavy drawings wait for each other, however many arrive at once, and delay neither the
worker nor the callers' threads. The simplifier's cost is not linear in ink for every shape: on a drawing whose every
vertex survives (a full-width zigzag) each RDP level is a pass over its samples, so it costs up to
``RDP_MAX_DEPTH`` (64) passes, about a second at ``MAX_INK`` (``sketchgraph.preprocess``; without the depth limit it
grew with the square of the points: 32-38 s for a legal 7,000-point drawing). Waiting heavy
drawings are taken in the order they would be done if each started on arrival *at the linear estimate* (arrival time
plus ``SECONDS_PER_INK`` per px of work): among real drawings, a long one goes before a scribble that came just before
it, and no drawing is overtaken forever; the estimate only orders the queue. What bounds the backlog is
``max_heavy_waiting``: past that many heavy drawings waiting for a thread, ``submit`` refuses the next one
(``BatcherBusy``; the service answers 503 with ``Retry-After``). A request whose future is cancelled (its client went
away) is skipped when its turn comes, unprepared; one already being simplified runs to the end (the kernel cannot be
interrupted), its result unused.

Each request gets the ranking a single ``predict`` call would give (probabilities equal to float
rounding: preprocessing does not depend on the other drawings, and the model's output does not depend on
what else is in the batch). A drawing that preprocessing refuses fails alone (its future raises the
``SketchError``) and never spoils a batch.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

from ..data.flat import FlatPrepared
from ..device import usable_cpus
from ..errors import SketchError
from ..predict import Prediction, SketchClassifier, _check_top_k
from ..preprocess import ink_length
from ..sketch import Sketch

__all__ = ["RequestBatcher", "BatcherClosed", "BatcherBusy", "preprocessing_work", "LIGHT_INK", "SECONDS_PER_INK",
           "INK_PER_STROKE", "MAX_HEAVY_WAITING"]

LIGHT_INK = 8_000.0  # px of strokes in the 255 frame: 99.85% of real drawings, a few ms of simplification each
# about what simplification takes per px of ink for real-like drawings here (1.6M px of random points: 2 s on 2
# cores); only orders the heavy queue. Some legal shapes cost more (up to RDP_MAX_DEPTH passes over their samples)
SECONDS_PER_INK = 1.25e-6
INK_PER_STROKE = 8.0  # a stroke's own preprocessing costs about as much as this much ink (5-10 us a stroke here)
MAX_HEAVY_WAITING = 32  # heavy drawings waiting for a heavy thread; past it submit refuses (BatcherBusy)

_STOP = object()


class BatcherClosed(RuntimeError):
    """The batcher was closed (``RequestBatcher.close``): it takes no more drawings."""

    def __init__(self) -> None:
        super().__init__("the batcher is closed")


class BatcherBusy(RuntimeError):
    """``max_heavy_waiting`` heavy drawings already wait for a heavy thread: the batcher takes no more heavy ones
    until some are done (light drawings are still taken). Retry later."""

    def __init__(self, waiting: int) -> None:
        self.waiting = waiting
        super().__init__(f"too many large drawings are waiting to be simplified ({waiting}, the limit); retry later")


def preprocessing_work(sketch: Sketch) -> float:
    """The simplification's work for ``sketch`` in px of ink: its ``ink_length`` plus ``INK_PER_STROKE`` per
    stroke (``inf`` when a coordinate is not finite)."""
    return ink_length(sketch) + INK_PER_STROKE * len(sketch.strokes)


def _fail(future: Future, error: BaseException) -> None:
    """``future.set_exception(error)`` unless the future was cancelled meanwhile."""
    try:
        future.set_exception(error)
    except InvalidStateError:
        pass


@dataclass
class _Request:
    work: Sketch | FlatPrepared  # a light drawing, preprocessed with its batch; or a heavy one, already prepared
    top_k: int
    future: Future = field(default_factory=Future)
    waiting: bool = False  # a heavy drawing in the heavy queue, counted in RequestBatcher.heavy_waiting


class RequestBatcher:
    """Answer ``predict`` calls from many threads with shared model calls.

    Args:
        classifier: the model and its preprocessing.
        max_batch: most requests per model call (1: every request alone).
        max_wait_ms: after the first request of a batch, wait this long for more (0: take only what is
            already waiting).
        light_ink: drawings with at most this much preprocessing work (``preprocessing_work``: ink plus
            ``INK_PER_STROKE`` per stroke) are preprocessed on the worker with their batch; heavier ones on a pool
            of ``heavy_workers`` threads first (0: every drawing).
        heavy_workers: threads preprocessing heavy drawings (default: half the CPUs this process may use, at
            least 1; started with the first heavy drawing), so however many arrive at once, they queue among
            themselves and leave the other requests alone.
        max_heavy_waiting: most heavy drawings waiting for a heavy thread (those being prepared not counted, nor
            those whose future was cancelled); ``submit`` refuses a heavy drawing past it with ``BatcherBusy``.

    Attributes ``requests`` and ``batches`` count what was served (their ratio is the mean batch size).
    """

    def __init__(self, classifier: SketchClassifier, *, max_batch: int = 64, max_wait_ms: float = 0.0,
                 light_ink: float = LIGHT_INK, heavy_workers: int | None = None,
                 max_heavy_waiting: int = MAX_HEAVY_WAITING):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        heavy_workers = max(1, usable_cpus() // 2) if heavy_workers is None else heavy_workers
        if heavy_workers < 1:
            raise ValueError(f"heavy_workers must be >= 1, got {heavy_workers}")
        if max_heavy_waiting < 1:
            raise ValueError(f"max_heavy_waiting must be >= 1, got {max_heavy_waiting}")
        self.classifier = classifier
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.light_ink = light_ink
        self.max_heavy_waiting = max_heavy_waiting
        self.requests = 0
        self.batches = 0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closing = False  # close() was called: submit refuses
        self._closed = False  # the stop marker is queued: nothing more may be
        self._lock = threading.Lock()
        # heavy drawings are prepared in the order they would finish if each ran at once at the linear estimate
        # (arrival time + SECONDS_PER_INK * work): among real drawings a long one goes before a scribble that came
        # just before it, and none is overtaken forever; the estimate bounds no drawing's wait (see the docstring)
        self._heavy_queue: queue.PriorityQueue = queue.PriorityQueue()
        self._heavy_waiting = 0  # requests in _heavy_queue whose future is not done (cancelled ones leave at once)
        self._order = itertools.count()  # ties: first come, first served
        self._heavy_workers = heavy_workers
        self._heavy: list[threading.Thread] = []  # started with the first heavy drawing
        self._worker = threading.Thread(target=self._loop, name="sketchgraph-batcher", daemon=True)
        self._worker.start()

    def _work(self, sketch: Sketch) -> float:
        """The preprocessing work of ``sketch`` (0 without simplification: then it is cheap whatever the drawing)."""
        return preprocessing_work(sketch) if self.classifier.preprocessing.simplify else 0.0

    @property
    def heavy_waiting(self) -> int:
        """Heavy drawings waiting for a heavy thread (not counting those being prepared or cancelled)."""
        return self._heavy_waiting

    def submit(self, x: Any, top_k: int = 5) -> Future:
        """Check one sketch (anything ``SketchClassifier.predict`` takes) in the calling thread and queue it for a
        shared model call; a heavy one is first preprocessed on the batcher's own small pool of threads
        (``heavy_workers``), so neither the caller's thread nor the worker waits for it (see the module
        docstring). The future's result is its ``top_k`` predictions, best first, or the ``SketchError`` of a
        drawing preprocessing refuses. A bad ``top_k`` and unusable input (empty, malformed) raise
        (``ValueError`` / ``SketchError``) here, before anything is queued; so does a closed batcher
        (``BatcherClosed``, a ``RuntimeError``), and a heavy drawing while ``max_heavy_waiting`` others wait
        (``BatcherBusy``, a ``RuntimeError``). Cancel the future when its answer is no longer wanted: a heavy
        drawing still waiting is then skipped, and leaves the count of those waiting at once."""
        _check_top_k(top_k)
        if self._closing:  # do not check for nothing
            raise BatcherClosed
        request = _Request(self.classifier.sketch(x), top_k)
        work = self._work(request.work)
        if work <= self.light_ink:
            self._enqueue(request)
        else:
            with self._lock:  # never behind the heavy threads' stop markers
                if self._closing:
                    raise BatcherClosed
                if self._heavy_waiting >= self.max_heavy_waiting:
                    raise BatcherBusy(self._heavy_waiting)
                if not self._heavy:
                    self._heavy = [threading.Thread(target=self._heavy_loop, name=f"sketchgraph-heavy-{i}",
                                                    daemon=True) for i in range(self._heavy_workers)]
                    for thread in self._heavy:
                        thread.start()
                due = time.monotonic() + work * SECONDS_PER_INK
                request.waiting = True
                self._heavy_waiting += 1
                self._heavy_queue.put((due, next(self._order), request))
            # outside the lock: a future already done runs the callback at once
            request.future.add_done_callback(lambda _: self._stop_waiting(request))
        return request.future

    def _stop_waiting(self, request: _Request) -> None:
        """``request`` no longer counts as a heavy drawing waiting: a heavy thread took it, or its future is done
        (cancelled) while it waited."""
        with self._lock:
            if request.waiting:
                request.waiting = False
                self._heavy_waiting -= 1

    def _enqueue(self, request: _Request) -> None:
        with self._lock:  # never queue behind the stop marker
            if self._closed:
                raise BatcherClosed
            self._queue.put(request)

    def _heavy_loop(self) -> None:
        while (request := self._heavy_queue.get()[2]) is not None:
            self._stop_waiting(request)
            self._prepare_heavy(request)

    def _prepare_heavy(self, request: _Request) -> None:
        """On a heavy thread: preprocess a heavy drawing, then queue it (or fail its future). A request cancelled
        meanwhile (its client went away) is skipped, unprepared."""
        if request.future.cancelled():
            return
        try:
            request.work = self.classifier.prepare([request.work])
            self._enqueue(request)
        except Exception as exc:  # noqa: BLE001 - never lose a request silently (a refused drawing: its reason)
            _fail(request.future, exc)

    def predict(self, x: Any, top_k: int = 5, timeout: float | None = None) -> list[Prediction]:
        """``submit`` and wait: what ``SketchClassifier.predict(x, top_k)`` returns."""
        return self.submit(x, top_k).result(timeout)

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called (``submit`` then raises)."""
        return self._closing

    def close(self, *, finish_heavy: bool = True) -> None:
        """Serve what is queued and what the heavy pool is preparing, then stop the worker.

        ``finish_heavy=False``: do not wait for the heavy pool; the drawings it is still preparing (or has yet to
        prepare) then fail with ``BatcherClosed`` when ready, and its threads stop after them. For a server
        shutting down, whose requests were all answered or cancelled already: a cancelled request's drawing
        cannot be stopped halfway through its simplification, but nothing needs to wait for it."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            for _ in self._heavy:  # after every heavy drawing waiting (their work is finite)
                self._heavy_queue.put((float("inf"), next(self._order), None))
        if finish_heavy:
            for thread in self._heavy:  # heavy drawings in preparation join the queue first
                thread.join()
        with self._lock:
            self._closed = True
            self._queue.put(_STOP)
        self._worker.join()

    # ------------------------------------------------------------------ worker
    def _forward(self, work: Sequence[Sketch | FlatPrepared], top_k: int) -> list[list[Prediction] | SketchError]:
        """The shared step, on the worker thread: for each item of ``work`` (a light sketch or a prepared heavy
        one), its ``top_k`` ranking, or the ``SketchError`` of a light sketch preprocessing refuses. The light
        ones are preprocessed together, then everything goes through one model call (``batch_size`` drawings
        per call when there are more)."""
        clf = self.classifier
        out: list[list[Prediction] | SketchError] = [SketchError("not classified")] * len(work)
        ready = [i for i, w in enumerate(work) if isinstance(w, FlatPrepared)]
        light = [i for i, w in enumerate(work) if isinstance(w, Sketch)]
        parts = [work[i] for i in ready]
        if light:
            prepared, kept, problems = clf.prepare_usable([work[i] for i in light])
            for j, reason in problems.items():  # each refused drawing fails alone
                out[light[j]] = SketchError(reason)
            light = [light[j] for j in kept]
            if prepared is not None:
                parts.append(prepared)
        order = ready + light
        if order:
            for i, preds in zip(order, clf.predict_prepared(FlatPrepared.concat(parts), top_k)):
                out[i] = preds
        return out

    def _collect(self, first: _Request) -> tuple[list[_Request], bool]:
        """``first`` plus what arrives within the wait, up to ``max_batch``; and whether to stop after."""
        batch, deadline = [first], time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            try:
                left = deadline - time.monotonic()
                item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch, stop = self._collect(item)
            self._serve(batch)
            if stop:
                return

    def _serve(self, batch: list[_Request]) -> None:
        """Answer ``batch`` with one model call. A request whose future was cancelled while it waited
        is left out; nothing a request does can stop the worker."""
        batch = [r for r in batch if r.future.set_running_or_notify_cancel()]
        if not batch:
            return
        self.batches += 1
        self.requests += len(batch)
        try:
            ranked = self._forward([r.work for r in batch], max(r.top_k for r in batch))
        except Exception as exc:  # no drawing's fault (_forward answers refused drawings): every request gets it
            for request in batch:  # one exception object per request: tracebacks are per thread
                error = RuntimeError(f"the model call failed: {type(exc).__name__}: {exc}")
                error.__cause__ = exc
                request.future.set_exception(error)
            return
        for request, preds in zip(batch, ranked):
            if isinstance(preds, SketchError):
                request.future.set_exception(preds)
            else:
                request.future.set_result(preds[: request.top_k])
