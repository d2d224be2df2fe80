"""``RequestBatcher``: concurrent predictions share model calls, each gets what a single call gives."""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from sketchgraph.errors import SketchError
from sketchgraph.predict import Prediction, SketchClassifier
from sketchgraph.preprocess import ink_length
from sketchgraph.serve import RequestBatcher
from sketchgraph.serve.batching import LIGHT_INK, BatcherBusy, BatcherClosed, preprocessing_work
from sketchgraph.sketch import Sketch


@pytest.fixture(scope="module")
def clf(tiny_checkpoint) -> SketchClassifier:
    return SketchClassifier.from_pretrained(tiny_checkpoint)


def sketch(i: int) -> Sketch:
    """A different drawing for each ``i``: a polygon of 3-9 corners plus a line (5-60 points)."""
    k = 3 + i % 7
    t = np.linspace(0, 2 * math.pi, 4 * k + 1)
    ring = np.column_stack([100 + 80 * np.cos(t + i), 100 + 60 * np.sin(t + i)])
    line = np.array([[10, 50 + 10 * i], [200, 180]], dtype=float)
    return Sketch.from_strokes([ring, line])


def zigzag() -> Sketch:
    """A heavy but legal drawing: about 25,000 px of ink in the 255 frame (> LIGHT_INK)."""
    return Sketch.from_strokes([[list(range(0, 400, 2)), [0 if j % 2 else 200 for j in range(200)]]])


def dots(n: int) -> Sketch:
    """``n`` one-point strokes: no ink at all, yet ``n`` strokes' worth of preprocessing."""
    return Sketch.from_strokes([[[i % 50], [i // 50]] for i in range(n)])


def degenerate() -> Sketch:
    """Passes the request checks but not preprocessing: ~3.6M px of ink in the 255 frame (> MAX_INK)."""
    return Sketch.from_strokes([np.tile([[0.0, 0.0], [1.0, 1.0]], (5000, 1))])


def same(got, want) -> bool:
    return [p.label for p in got] == [p.label for p in want] and all(
        abs(a.score - b.score) < 1e-5 for a, b in zip(got, want)
    )


class Gated(RequestBatcher):
    """A batcher whose model calls wait for ``gate``, so later requests queue up meanwhile; ``sizes`` records
    the drawings per model call."""

    def __init__(self, clf: SketchClassifier, **kwargs):
        self.gate, self.entered, self.sizes = threading.Event(), threading.Event(), []
        super().__init__(clf, **kwargs)

    def _forward(self, prepared, top_k):
        self.sizes.append(len(prepared))
        self.entered.set()
        self.gate.wait(30)
        return super()._forward(prepared, top_k)


def busy(clf, max_batch: int = 64) -> tuple[Gated, object]:
    """A gated batcher busy with ``sketch(0)``: what is submitted next queues up until ``gate`` is set.
    Returns the batcher and the first request's future."""
    batcher = Gated(clf, max_batch=max_batch)
    first = batcher.submit(sketch(0), 5)
    assert batcher.entered.wait(30)
    return batcher, first


def test_queued_requests_share_one_model_call(clf):
    """Request 0 occupies the model; the 20 that arrive meanwhile go through one call (max_batch 64), each
    with its own top_k and the result a single predict gives."""
    batcher, first = busy(clf)
    futures = [batcher.submit(sketch(i), 1 + i % 7) for i in range(1, 21)]
    batcher.gate.set()
    results = [first.result(30)] + [f.result(30) for f in futures]
    assert batcher.sizes == [1, 20]
    assert (batcher.requests, batcher.batches) == (21, 2)
    for i, preds in enumerate(results):
        k = 5 if i == 0 else 1 + i % 7
        assert len(preds) == min(k, clf.num_classes)
        assert same(preds, clf.predict(sketch(i), top_k=k))
    batcher.close()


@pytest.mark.parametrize("max_batch", [1, 3])
def test_max_batch_is_respected(clf, max_batch):
    batcher, first = busy(clf, max_batch)
    futures = [batcher.submit(sketch(i)) for i in range(1, 8)]
    batcher.gate.set()
    assert all(same(f.result(30), clf.predict(sketch(i))) for i, f in enumerate([first, *futures]))
    assert batcher.sizes == [1] + [max_batch] * (7 // max_batch) + ([7 % max_batch] if 7 % max_batch else [])
    batcher.close()


def test_a_bad_drawing_fails_alone(clf):
    """A heavy drawing preprocessing refuses fails alone (its preprocessing, on the heavy pool, fails its future)
    and never reaches a batch; the requests around it share their model call as usual."""
    batcher, first = busy(clf)
    futures = {i: batcher.submit(sketch(i)) for i in (1, 2, 4, 5)}
    with pytest.raises(SketchError, match="too long to simplify"):
        batcher.submit(degenerate()).result(30)
    batcher.gate.set()
    assert same(first.result(30), clf.predict(sketch(0)))
    assert all(same(f.result(30), clf.predict(sketch(i))) for i, f in futures.items())
    assert batcher.sizes == [1, 4] and batcher.requests == 5
    batcher.close()


def test_a_cancelled_request_is_left_out_and_the_worker_goes_on(clf):
    """A request cancelled while it waits is not served; its batch-mates and later requests still are."""
    batcher, first = busy(clf)
    futures = [batcher.submit(sketch(i)) for i in range(1, 4)]
    assert futures[1].cancel()
    batcher.gate.set()
    for i, f in enumerate([first, *futures]):
        if i != 2:
            assert same(f.result(30), clf.predict(sketch(i)))
    assert batcher.sizes == [1, 2] and batcher.requests == 3
    assert same(batcher.submit(sketch(5)).result(30), clf.predict(sketch(5)))
    batcher.close()


class Failing(RequestBatcher):
    def _forward(self, prepared, top_k):
        raise MemoryError("no room")


def test_a_failed_model_call_fails_each_request_on_its_own(clf):
    batcher = Failing(clf)
    errors = []
    for f in [batcher.submit(sketch(i)) for i in range(3)]:
        with pytest.raises(RuntimeError, match="model call failed: MemoryError: no room") as info:
            f.result(30)
        errors.append(info.value)
    assert len({id(e) for e in errors}) == 3 and all(isinstance(e.__cause__, MemoryError) for e in errors)
    batcher.close()


class HeldPreprocessing:
    """Monkeypatches ``preprocess_flat`` (what every prediction's preprocessing runs) so that a call on
    ``heavy`` (a drawing known by identity) stands for seconds of simplification: it waits for ``release``
    (``entered`` is set when it starts)."""

    def __init__(self, monkeypatch, heavy: Sketch):
        from sketchgraph.data import flat

        self.heavy, self.entered, self.release = heavy, threading.Event(), threading.Event()
        original = flat.preprocess_flat

        def held(sketches, *args, **kwargs):
            if isinstance(sketches, list) and any(s is heavy for s in sketches):
                self.entered.set()
                self.release.wait(30)
            return original(sketches, *args, **kwargs)

        monkeypatch.setattr(flat, "preprocess_flat", held)


def test_a_drawing_in_preprocessing_does_not_hold_up_the_others(clf, monkeypatch):
    """A heavy drawing is preprocessed on the heavy pool: while it is still being simplified, a light
    request submitted after it is answered; the heavy one is answered after it is released, with the ranking a
    single ``predict`` gives."""
    heavy = zigzag()
    assert ink_length(heavy) > LIGHT_INK >= ink_length(sketch(1))
    batcher = RequestBatcher(clf)
    slow, light = light_while_held(batcher, HeldPreprocessing(monkeypatch, heavy), heavy)  # waited before the fix
    assert same(slow, clf.predict(zigzag()))
    assert same(light, clf.predict(sketch(1), top_k=3))
    assert (batcher.requests, batcher.batches) == (2, 2)
    batcher.close()


def light_while_held(batcher: RequestBatcher, held: HeldPreprocessing, heavy: Sketch
                     ) -> tuple[list[Prediction], list[Prediction]]:
    """``(heavy's top-5, a light sketch's top-3)``: ``heavy`` is submitted first and held in preprocessing; the
    light request must be answered while it still is."""
    with ThreadPoolExecutor(1) as pool:
        try:
            slow = pool.submit(batcher.predict, heavy, 5, 60)
            assert held.entered.wait(30)
            light = batcher.predict(sketch(1), 3, timeout=10)
            assert not slow.done()
        finally:
            held.release.set()
        return slow.result(30), light


def test_a_drawing_of_many_strokes_is_heavy_although_it_has_no_ink(clf, monkeypatch):
    """Each stroke costs preprocessing work of its own: 2,000 one-point strokes (no ink) are prepared on the heavy
    pool, so while they are, a light request is answered; a real drawing's strokes keep it light."""
    many = dots(2000)
    assert ink_length(many) == 0 and preprocessing_work(many) > LIGHT_INK
    assert all(preprocessing_work(sketch(i)) <= LIGHT_INK for i in range(10))
    batcher = RequestBatcher(clf)
    slow, light = light_while_held(batcher, HeldPreprocessing(monkeypatch, many), many)  # waited when ink alone counted
    assert same(slow, clf.predict(dots(2000)))
    assert same(light, clf.predict(sketch(1), top_k=3))
    batcher.close()


class CountedPreprocessing:
    """Records how many sketches each ``preprocess_flat`` call gets."""

    def __init__(self, monkeypatch):
        from sketchgraph.data import flat

        self.sizes: list[int] = []
        original = flat.preprocess_flat

        def counted(sketches, *args, **kwargs):
            self.sizes.append(len(sketches))
            return original(sketches, *args, **kwargs)

        monkeypatch.setattr(flat, "preprocess_flat", counted)


def test_light_drawings_are_preprocessed_together_on_the_worker(clf, monkeypatch):
    """Real drawings (light) are simplified with their batch in one call, the cheapest way; a heavy one alone, on
    the heavy pool. Every answer is the single-call ranking, in the request's order."""
    batcher, first = busy(clf)
    calls = CountedPreprocessing(monkeypatch)
    futures = [batcher.submit(sketch(i), 3) for i in (1, 2, 3)]
    heavy = batcher.submit(zigzag(), 3)
    futures += [batcher.submit(sketch(i), 3) for i in (4, 5)]
    deadline = time.monotonic() + 30
    while batcher._queue.qsize() < 6 and time.monotonic() < deadline:  # the heavy one joins when prepared
        time.sleep(0.01)
    assert calls.sizes == [1]  # the heavy one, on the heavy pool
    batcher.gate.set()
    got = [f.result(30) for f in futures]
    # the heavy one first; then the worker's two batches: sketch(0) alone, the five light ones in one call
    assert calls.sizes == [1, 1, 5] and batcher.sizes == [1, 6]
    assert same(heavy.result(30), clf.predict(zigzag(), top_k=3))
    assert all(same(g, clf.predict(sketch(i), top_k=3)) for i, g in zip((1, 2, 3, 4, 5), got))
    batcher.close()


def test_many_heavy_drawings_at_once_wait_for_each_other_not_for_the_rest(clf, monkeypatch):
    """However many heavy drawings arrive, ``submit`` returns at once (the callers' threads are not held: a server
    runs them from a bounded pool) and they queue on the heavy pool, while a light request is answered."""
    heavy = zigzag()
    held = HeldPreprocessing(monkeypatch, heavy)
    batcher = RequestBatcher(clf, heavy_workers=1)
    try:
        start = time.monotonic()
        slow = [batcher.submit(heavy, 3) for _ in range(10)]
        assert time.monotonic() - start < 5 and held.entered.wait(30)
        assert same(batcher.predict(sketch(1), 3, timeout=10), clf.predict(sketch(1), top_k=3))
        assert not any(f.done() for f in slow)
    finally:
        held.release.set()
    want = clf.predict(zigzag(), top_k=3)
    assert all(same(f.result(60), want) for f in slow)
    batcher.close()


@pytest.mark.parametrize("pause, want", [
    (0.0, [200, 40, 40, 40, 1000]),  # a long real-like drawing that arrives just after a scribble goes first
    (0.2, [200, 1000, 40, 40, 40]),  # but one that waited longer than its extra work is not starved by them
])
def test_heavy_drawings_are_taken_by_arrival_plus_expected_work(clf, monkeypatch, pause, want, preprocessed_points):
    """While the heavy thread is busy, a scribble and then (``pause`` s later) three lighter heavy drawings come:
    they are prepared in the order each would finish if it started on arrival."""
    first = zigzag()
    held = HeldPreprocessing(monkeypatch, first)
    order = preprocessed_points
    giant = Sketch.from_strokes([[list(range(0, 2000, 2)), [0 if j % 2 else 255 for j in range(1000)]]])
    lighter = Sketch.from_strokes([[list(range(0, 400, 10)), [0 if j % 2 else 400 for j in range(40)]]])
    assert ink_length(giant) > ink_length(lighter) > LIGHT_INK  # expected work: ~0.04 s and ~0.01 s
    batcher = RequestBatcher(clf, heavy_workers=1)
    try:
        futures = [batcher.submit(first)]
        assert held.entered.wait(30)
        futures.append(batcher.submit(giant))
        time.sleep(pause)
        futures += [batcher.submit(lighter) for _ in range(3)]
    finally:
        held.release.set()
    got = [f.result(60) for f in futures]
    assert order == want
    assert all(same(g, clf.predict(sk)) for g, sk in zip(got, (first, giant, lighter, lighter, lighter)))
    batcher.close()


def test_heavy_threads_start_with_the_first_heavy_drawing(clf):
    def heavy_threads() -> int:
        return sum(t.name.startswith("sketchgraph-heavy") and t.is_alive() for t in threading.enumerate())

    before = heavy_threads()
    batcher = RequestBatcher(clf, heavy_workers=2)
    batcher.predict(sketch(1))
    assert heavy_threads() == before  # light requests only: none
    batcher.predict(zigzag())
    assert heavy_threads() == before + 2
    batcher.close()
    assert heavy_threads() == before


def test_close_serves_the_heavy_drawings_in_preparation(clf):
    batcher = RequestBatcher(clf, heavy_workers=1)
    futures = [batcher.submit(zigzag(), 2) for _ in range(3)]
    batcher.close()
    assert all(f.done() and same(f.result(0), clf.predict(zigzag(), top_k=2)) for f in futures)
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(zigzag())
    with pytest.raises(ValueError, match="heavy_workers"):
        RequestBatcher(clf, heavy_workers=0)


def test_close_can_leave_the_heavy_drawing_in_preparation(clf, monkeypatch):
    """``close(finish_heavy=False)`` (a server shutting down, its requests cancelled) returns while a heavy drawing
    is still being simplified; that drawing then fails with ``BatcherClosed`` and its thread stops."""
    heavy = zigzag()
    held = HeldPreprocessing(monkeypatch, heavy)
    batcher = RequestBatcher(clf, heavy_workers=1)
    try:
        future = batcher.submit(heavy)
        assert held.entered.wait(30)
        waiting = batcher.submit(heavy)  # queued behind it on the heavy pool
        start = time.monotonic()
        batcher.close(finish_heavy=False)
        assert time.monotonic() - start < 5 and not batcher._worker.is_alive()
    finally:
        held.release.set()
    for f in (future, waiting):
        with pytest.raises(BatcherClosed, match="the batcher is closed"):
            f.result(30)
    for thread in batcher._heavy:
        thread.join(30)
        assert not thread.is_alive()


def test_a_light_drawing_preprocessing_refuses_fails_alone_on_the_worker(clf):
    """With every drawing counted light, preprocessing happens on the worker: a refused one fails alone (its
    future raises the reason), its batch-mates are answered from the same model call."""
    batcher = Gated(clf, light_ink=float("inf"))
    first = batcher.submit(sketch(0), 5)
    assert batcher.entered.wait(30)
    futures = {i: batcher.submit(sketch(i)) for i in (1, 2)}
    bad = batcher.submit(degenerate())  # accepted: only the worker's preprocessing finds it out
    batcher.gate.set()
    with pytest.raises(SketchError, match="too long to simplify"):
        bad.result(30)
    assert same(first.result(30), clf.predict(sketch(0)))
    assert all(same(f.result(30), clf.predict(sketch(i))) for i, f in futures.items())
    assert batcher.sizes == [1, 3] and batcher.requests == 4
    batcher.close()


def test_many_threads_without_a_gate(clf):
    """Free-running: 64 requests from 16 threads, every answer right, fewer model calls than requests is
    allowed but not required (it depends on timing), the counts add up."""
    batcher = RequestBatcher(clf, max_batch=8, max_wait_ms=2)
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda i: batcher.predict(sketch(i), 3, timeout=60), range(64)))
    assert all(same(g, clf.predict(sketch(i), top_k=3)) for i, g in enumerate(got))
    assert batcher.requests == 64 and 8 <= batcher.batches <= 64
    batcher.close()


def test_arguments_and_close(clf):
    with pytest.raises(ValueError, match="max_batch"):
        RequestBatcher(clf, max_batch=0)
    with pytest.raises(ValueError, match="max_wait_ms"):
        RequestBatcher(clf, max_wait_ms=-1)
    batcher = RequestBatcher(clf)
    with pytest.raises(ValueError):
        batcher.submit(sketch(0), top_k=0)
    with pytest.raises(SketchError, match="no points"):  # refused before it could spoil a batch
        batcher.submit(Sketch.from_strokes([]))
    assert same(batcher.predict([[[0, 50, 100], [0, 80, 0]]], 2), clf.predict([[[0, 50, 100], [0, 80, 0]]], 2))
    pending = batcher.submit(sketch(1))
    batcher.close()  # serves what is queued first
    assert same(pending.result(0), clf.predict(sketch(1)))
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(sketch(0))


def test_live_server_batches_more_requests_than_its_thread_pool(clf):
    """The endpoint awaits its answer instead of holding a worker thread (the framework's pool has 40), so 60
    requests queued behind a busy model go through one call, and /healthz answers meanwhile."""
    import httpx

    from sketchgraph.serve import create_app, running_server

    app = create_app(clf)
    app.state.batcher.close()
    app.state.batcher = gated = Gated(clf, max_batch=64)
    body = {"drawing": [[[0, 50, 100], [0, 80, 0]]], "top_k": 2}
    with running_server(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        with ThreadPoolExecutor(61) as pool:
            first = pool.submit(http.post, "/predict", json=body)
            assert gated.entered.wait(30)
            rest = [pool.submit(http.post, "/predict", json=body) for _ in range(60)]
            deadline = time.monotonic() + 30
            while app.state.batcher._queue.qsize() < 60 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert http.get("/healthz").status_code == 200  # not starved while 60 requests wait
            gated.gate.set()
            answers = [f.result(60) for f in [first, *rest]]
    assert all(r.status_code == 200 for r in answers)
    assert gated.sizes == [1, 60]
    app.state.batcher.close()


def test_heavy_drawings_past_the_waiting_limit_are_refused_as_busy(clf, monkeypatch):
    """At most ``max_heavy_waiting`` heavy drawings wait for a heavy thread: the next one is refused at once
    (``BatcherBusy``), a light one still goes through, and a waiting one that is cancelled frees its place at once
    (before, the heavy queue grew without bound)."""
    heavy = zigzag()
    held = HeldPreprocessing(monkeypatch, heavy)
    batcher = RequestBatcher(clf, heavy_workers=1, max_heavy_waiting=2)
    try:
        first = batcher.submit(heavy)
        assert held.entered.wait(30)  # on the heavy thread: not waiting
        waiting = [batcher.submit(zigzag()) for _ in range(2)]
        assert batcher.heavy_waiting == 2
        with pytest.raises(BatcherBusy, match=r"too many large drawings are waiting to be simplified \(2, the limit\)"):
            batcher.submit(zigzag())
        assert same(batcher.predict(sketch(1), 3, timeout=10), clf.predict(sketch(1), top_k=3))
        assert waiting[0].cancel() and batcher.heavy_waiting == 1
        waiting.append(batcher.submit(zigzag()))
    finally:
        held.release.set()
    want = clf.predict(zigzag())
    assert all(same(f.result(60), want) for f in (first, waiting[1], waiting[2]))
    assert batcher.heavy_waiting == 0
    batcher.close()
    with pytest.raises(ValueError, match="max_heavy_waiting"):
        RequestBatcher(clf, max_heavy_waiting=0)


def test_a_refusal_that_names_no_drawing_fails_only_that_light_drawing(clf, monkeypatch):
    """Preprocessing may refuse a drawing with a plain ``SketchError`` (one that is no ``UnusableSketchesError``
    naming it in its batch, such as a simplification over a work budget): the light batch is then prepared drawing
    by drawing, so only that one fails, with the reason, and its batch-mates are answered (before, every request of
    the batch failed as a broken model call)."""
    from sketchgraph.data import flat

    bad = sketch(9)
    original = flat.preprocess_flat

    def refusing(sketches, *args, **kwargs):
        if isinstance(sketches, list) and any(s is bad for s in sketches):
            raise SketchError("drawing too complex to simplify")
        return original(sketches, *args, **kwargs)

    monkeypatch.setattr(flat, "preprocess_flat", refusing)
    batcher, first = busy(clf)
    futures = {i: batcher.submit(sketch(i)) for i in (1, 2)}
    refused = batcher.submit(bad)
    batcher.gate.set()
    with pytest.raises(SketchError, match="^drawing too complex to simplify$"):
        refused.result(30)
    assert all(same(f.result(30), clf.predict(sketch(i))) for i, f in futures.items())
    assert same(first.result(30), clf.predict(sketch(0)))
    with pytest.raises(SketchError, match="^drawing too complex to simplify$"):  # alone in its batch too
        batcher.submit(bad).result(30)
    batcher.close()
