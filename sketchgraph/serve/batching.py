"""``RequestBatcher``: concurrent ``predict`` calls share model calls (micro-batching).

One model call on 16 sketches costs little more than on one (the per-call work of 4 layers on a few hundred
rows is mostly fixed cost), so a server that runs each request alone spends most of its time on that fixed
cost. A worker thread takes every request that is waiting when it becomes free (at most ``max_batch``),
optionally waits ``max_wait_ms`` for more after the first, and answers them all from one
``SketchClassifier.predict_usable`` call. At low load a request is served alone and at once (no added
latency with the default ``max_wait_ms=0``); under load, batches form by themselves while the model is busy.

Each request gets the ranking a single ``predict`` call would give (probabilities equal to float
rounding: the model's output does not depend on what else is in the batch). A drawing that preprocessing
refuses fails alone (``SketchError``); the rest of its batch is answered.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ..errors import SketchError
from ..predict import Prediction, SketchClassifier, _check_top_k
from ..sketch import Sketch

__all__ = ["RequestBatcher"]

_STOP = object()


@dataclass
class _Request:
    sketch: Sketch
    top_k: int
    future: Future = field(default_factory=Future)


class RequestBatcher:
    """Answer ``predict`` calls from many threads with shared model calls.

    Args:
        classifier: the model and its preprocessing.
        max_batch: most requests per model call (1: every request alone).
        max_wait_ms: after the first request of a batch, wait this long for more (0: take only what is
            already waiting).

    Attributes ``requests`` and ``batches`` count what was served (their ratio is the mean batch size).
    """

    def __init__(self, classifier: SketchClassifier, *, max_batch: int = 64, max_wait_ms: float = 0.0):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self.classifier = classifier
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.requests = 0
        self.batches = 0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._loop, name="sketchgraph-batcher", daemon=True)
        self._worker.start()

    def submit(self, x: Any, top_k: int = 5) -> Future:
        """Queue one sketch (anything ``SketchClassifier.predict`` takes); the future's result is its ``top_k``
        predictions, best first, or the ``SketchError`` its preprocessing raised. Unusable input (empty,
        malformed) and a bad ``top_k`` raise here, before anything is queued."""
        _check_top_k(top_k)
        request = _Request(self.classifier.sketch(x), top_k)
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
            ranked, problems = self.classifier.predict_usable([r.sketch for r in batch],
                                                              max(r.top_k for r in batch))
        except Exception as exc:  # not the drawings' fault (those are in problems): every request gets it
            for request in batch:  # one exception object per request: tracebacks are per thread
                error = RuntimeError(f"the model call failed: {type(exc).__name__}: {exc}")
                error.__cause__ = exc
                request.future.set_exception(error)
            return
        for i, request in enumerate(batch):
            if i in problems:
                request.future.set_exception(SketchError(problems[i]))
            else:
                request.future.set_result(ranked[i][: request.top_k])
