"""``RequestBatcher``: concurrent ``predict`` calls share model calls (micro-batching).

One model call on 16 sketches costs little more than on one (the per-call work of 4 layers on a few hundred
rows is mostly fixed cost), so a server that runs each request alone spends most of its time on that fixed
cost. A worker thread takes every request that is waiting when it becomes free (at most ``max_batch``),
optionally waits ``max_wait_ms`` for more after the first, and answers them all from one model call. At low
load a request is served alone and at once (no added latency with the default ``max_wait_ms=0``); under load,
batches form by themselves while the model is busy.

Preprocessing (the checkpoint's simplification and point cap) is per-drawing work, and its cost grows with
the drawing's ink (``sketchgraph.preprocess.ink_length``, px of strokes in the 255 frame). A real drawing has
about 1,000 px (under 3,200 at the 99th percentile; ``benchmarks/stroke_counts.py``) and is simplified in a few
milliseconds, cheapest together with its batch-mates: up to ``light_ink`` px a drawing is preprocessed on the
worker with its batch. A heavier one
(a legal drawing of thousands of points can take seconds) is preprocessed by ``submit`` in the calling thread
before it is queued, so it delays its own request only, not the requests that share the worker.

Each request gets the ranking a single ``predict`` call would give (probabilities equal to float
rounding: preprocessing does not depend on the other drawings, and the model's output does not depend on
what else is in the batch). A drawing that preprocessing refuses fails alone (``submit`` raises
``SketchError`` for a heavy one, its future for a light one) and never spoils a batch.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ..data.flat import FlatPrepared
from ..errors import SketchError, UnusableSketchesError
from ..predict import Prediction, SketchClassifier, _check_top_k
from ..preprocess import ink_length
from ..sketch import Sketch

__all__ = ["RequestBatcher", "LIGHT_INK"]

LIGHT_INK = 4_000.0  # px of strokes in the 255 frame: over 99% of real drawings, a few ms of simplification each

_STOP = object()


@dataclass
class _Request:
    work: Sketch | FlatPrepared  # a light drawing, preprocessed with its batch; or a heavy one, already prepared
    top_k: int
    future: Future = field(default_factory=Future)


class RequestBatcher:
    """Answer ``predict`` calls from many threads with shared model calls.

    Args:
        classifier: the model and its preprocessing.
        max_batch: most requests per model call (1: every request alone).
        max_wait_ms: after the first request of a batch, wait this long for more (0: take only what is
            already waiting).
        light_ink: drawings with at most this much ink (``ink_length``) are preprocessed on the worker with
            their batch; heavier ones in ``submit``'s thread (0: every drawing in its own thread).

    Attributes ``requests`` and ``batches`` count what was served (their ratio is the mean batch size).
    """

    def __init__(self, classifier: SketchClassifier, *, max_batch: int = 64, max_wait_ms: float = 0.0,
                 light_ink: float = LIGHT_INK):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self.classifier = classifier
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.light_ink = light_ink
        self.requests = 0
        self.batches = 0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._loop, name="sketchgraph-batcher", daemon=True)
        self._worker.start()

    def _work(self, x: Any) -> Sketch | FlatPrepared:
        """What the worker gets for input ``x`` (anything ``SketchClassifier.predict`` takes), made in the calling
        thread: the checked sketch when it is light, else its preprocessing. ``SketchError`` when ``x`` is
        unusable or preprocessing refuses it."""
        sketch = self.classifier.sketch(x)
        if not self.classifier.preprocessing.simplify or ink_length(sketch) <= self.light_ink:
            return sketch  # without simplification, preprocessing is cheap whatever the drawing
        try:
            return self.classifier.prepare([sketch])
        except UnusableSketchesError as exc:
            raise SketchError(exc.problems[0]) from None

    def submit(self, x: Any, top_k: int = 5) -> Future:
        """Check one sketch (anything ``SketchClassifier.predict`` takes) in the calling thread, preprocess it
        there too when it is heavy (see the module docstring), then queue it for a shared model call; the
        future's result is its ``top_k`` predictions, best first. A bad ``top_k``, unusable input (empty,
        malformed) and a heavy drawing preprocessing refuses raise (``ValueError`` / ``SketchError``) here,
        before anything is queued; so does a closed batcher (``RuntimeError``)."""
        _check_top_k(top_k)
        if self._closed:  # do not preprocess for nothing
            raise RuntimeError("the batcher is closed")
        request = _Request(self._work(x), top_k)
        with self._lock:  # never queue behind the stop marker
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._queue.put(request)
        return request.future

    def predict(self, x: Any, top_k: int = 5, timeout: float | None = None) -> list[Prediction]:
        """``submit`` and wait: what ``SketchClassifier.predict(x, top_k)`` returns."""
        return self.submit(x, top_k).result(timeout)

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called (``submit`` then raises)."""
        return self._closed

    def close(self) -> None:
        """Serve what is queued, then stop the worker."""
        with self._lock:
            if self._closed:
                return
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
            try:
                parts.append(clf.prepare([work[i] for i in light]))
            except UnusableSketchesError as exc:  # each refused drawing fails alone
                for j, reason in exc.problems.items():
                    out[light[j]] = SketchError(reason)
                light = [i for j, i in enumerate(light) if j not in exc.problems]
                if light:
                    parts.append(clf.prepare([work[i] for i in light]))
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
