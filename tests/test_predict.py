"""SketchClassifier: inputs, ranking, batching, errors, checkpoint resolution, thread safety, CLI."""

from __future__ import annotations

import io
import json
import math
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from sketchgraph import predict as predict_mod
from sketchgraph.cli import main
from sketchgraph.errors import CheckpointError, FormatError, SketchError, UnusableSketchesError
from sketchgraph.examples import example_path
from sketchgraph.formats import write_ndjson, write_stroke3_npz, write_svg
from sketchgraph.predict import Prediction, SketchClassifier, resolve_checkpoint
from sketchgraph.sketch import Sketch


def circle(cx: float, cy: float, r: float, n: int = 40) -> list[list[float]]:
    t = np.linspace(0, 2 * math.pi, n)
    return [(cx + r * np.cos(t)).tolist(), (cy + r * np.sin(t)).tolist()]


def shapes() -> list[Sketch]:
    """A few hand-made drawings in canvas pixels: house, sun, face, zigzag, a dot."""
    house = [[[100, 300, 300, 100, 100], [300, 300, 150, 150, 300]], [[90, 200, 310], [160, 60, 160]]]
    rays = [[[200 + 60 * math.cos(a), 200 + 110 * math.cos(a)], [200 + 60 * math.sin(a), 200 + 110 * math.sin(a)]]
            for a in np.linspace(0, 2 * math.pi, 8, endpoint=False)]
    sun = [circle(200, 200, 50), *rays]
    face = [circle(200, 200, 120, 60), circle(160, 170, 10, 12), circle(240, 170, 10, 12),
            [[150, 200, 250], [250, 280, 250]]]
    zigzag = [[list(range(0, 400, 20)), [0 if i % 2 else 50 for i in range(20)]]]
    dot = [[[5], [5]]]
    return [Sketch.from_strokes(s) for s in (house, sun, face, zigzag, dot)]


@pytest.fixture(scope="module")
def clf(tiny_checkpoint) -> SketchClassifier:
    return SketchClassifier.from_pretrained(tiny_checkpoint)


def same(a: list[Prediction], b: list[Prediction], tol: float = 1e-5) -> bool:
    return [p.label for p in a] == [p.label for p in b] and all(abs(p.score - q.score) < tol for p, q in zip(a, b))


# ------------------------------------------------------------------------------------------ ranking
def test_prediction_to_dict_is_its_fields():
    from dataclasses import asdict

    p = Prediction("face", 0.25, 3)
    assert p.to_dict() == asdict(p) == {"label": "face", "score": 0.25, "index": 3}


@pytest.mark.parametrize("top_k", [1, 3, 5, 50])
def test_predict_ranks_probabilities(clf, top_k):
    preds = clf.predict(shapes()[0], top_k=top_k)
    assert len(preds) == min(top_k, clf.num_classes)
    assert all(isinstance(p, Prediction) and clf.classes[p.index] == p.label for p in preds)
    scores = [p.score for p in preds]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    if top_k >= clf.num_classes:
        assert sum(scores) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("top_k", [0, -1, 2.5, True, "5"])
def test_bad_top_k(clf, top_k):
    with pytest.raises(ValueError, match="top_k"):
        clf.predict(shapes()[0], top_k=top_k)


def test_numpy_integers_are_integers(clf, tiny_checkpoint):
    assert same(clf.predict(shapes()[0], top_k=np.int64(3)), clf.predict(shapes()[0], top_k=3))
    assert SketchClassifier.from_pretrained(tiny_checkpoint, batch_size=np.int32(2)).batch_size == 2


@pytest.mark.parametrize("batch_size", [0, 1.5, True, "8"])
def test_bad_batch_size(tiny_checkpoint, batch_size):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        SketchClassifier.from_pretrained(tiny_checkpoint, batch_size=batch_size)


# ------------------------------------------------------------------------------------------ inputs
def _as_lists(sk: Sketch):
    return sk.to_lists()


def _with_times(sk: Sketch):
    lists = sk.to_lists()
    return [[xs, ys, [10.0 * i for i in range(len(xs))]] for xs, ys in lists]


def _json_line(sk: Sketch):
    return json.dumps({"drawing": sk.to_lists()})


def _record(sk: Sketch):
    return {"word": "house", "drawing": sk.to_lists()}


def _arrays(sk: Sketch):
    return [s.copy() for s in sk.strokes]


def _ndjson_path(sk: Sketch, tmp_path):
    path = tmp_path / "one.ndjson"
    write_ndjson([sk, shapes()[1]], path)  # predict() takes the file's first sketch
    return path


def _svg_path(sk: Sketch, tmp_path):
    return write_svg(sk, tmp_path / "one.svg")


def _str_path(sk: Sketch, tmp_path):
    return str(_ndjson_path(sk, tmp_path))


def _tuples(sk: Sketch):
    return [tuple(tuple(col) for col in stroke) for stroke in sk.to_lists()]


def _numpy_columns(sk: Sketch):
    return {"drawing": [[np.asarray(col) for col in stroke] for stroke in sk.to_lists()]}


@pytest.mark.parametrize("convert", [_as_lists, _with_times, _json_line, _record, _arrays, _tuples, _numpy_columns])
def test_input_forms_agree(clf, convert):
    sk = shapes()[0]
    assert same(clf.predict(convert(sk)), clf.predict(sk))


def test_stroke3_input(clf):
    sk = shapes()[1]
    assert same(clf.predict(sk.to_stroke3()), clf.predict(sk), tol=1e-4)


def test_an_array_of_points_with_times_is_not_taken_for_stroke3(clf):
    """(n, 3) rows of x, y, t look like stroke-3 (dx, dy, pen): the pen column must be 0 or 1, so they are
    refused with the way to pass them (a list of strokes), which classifies them as that one stroke."""
    xy = shapes()[3].strokes[0]
    xyt = np.column_stack([xy, 16.0 * np.arange(len(xy))])
    with pytest.raises(SketchError, match=r"row 1 has 16.*\[array\]"):
        clf.predict(xyt)
    assert same(clf.predict([xyt]), clf.predict(shapes()[3]), tol=1e-4)


def test_a_numpy_array_of_sketches_is_a_batch(clf):
    """sketch-rnn's .npz layout: a 1-d object array holding one stroke-3 array per sketch."""
    items = np.empty(3, dtype=object)
    items[:] = [sk.to_stroke3() for sk in shapes()[:3]]
    got = clf.predict_batch(items, top_k=2)
    assert all(same(g, clf.predict(sk, top_k=2), tol=1e-4) for g, sk in zip(got, shapes()[:3]))


def test_a_file_named_like_json_is_a_path_and_markup_is_refused(clf, tmp_path):
    path = write_svg(shapes()[0], tmp_path / "[wip] house.svg")
    assert same(clf.predict(str(path)), clf.predict(shapes()[0]), tol=1e-4)
    with pytest.raises(SketchError, match="markup, not a path"):
        clf.predict(path.read_text())
    with pytest.raises(SketchError, match="is a folder.*predict_batch"):
        clf.predict(tmp_path)


def test_huge_coordinates_keep_their_precision(clf):
    """Canvas offsets beyond float32's exact integers (2**24) are subtracted in float64 when read: the drawing
    classifies as at the origin (before, 9e8 left 5 distinct x values)."""
    lists = shapes()[2].to_lists()
    for offset in (1e8, 9e8):
        moved = [[[x + offset for x in xs], [y + offset for y in ys]] for xs, ys in lists]
        assert same(clf.predict(moved), clf.predict(lists), tol=1e-5)

@pytest.mark.parametrize("to_path", [_ndjson_path, _svg_path, _str_path])
def test_file_inputs(clf, tmp_path, to_path):
    sk = shapes()[0]
    assert same(clf.predict(to_path(sk, tmp_path)), clf.predict(sk), tol=1e-4)


@pytest.mark.parametrize("scale, shift", [(1.0, 0.0), (3.0, 0.0), (0.5, 1000.0)])
def test_raw_canvas_coordinates_are_normalised(clf, scale, shift):
    sk = shapes()[2]
    moved = Sketch([s * scale + shift for s in sk.strokes])
    assert same(clf.predict(moved), clf.predict(sk), tol=1e-4)


@pytest.mark.parametrize("bad, message", [
    ([], "no points"),
    ([[[], []]], "no points"),
    ([[[1, 2, 3], [1, 2]]], None),  # xs and ys of different lengths
    ([[[1, 2], [1, 2]], [[1, float("nan")], [1, 2]]], r"^stroke 1: coordinates contain NaN or infinity$"),
    ([[[1, float("inf")], [1, 2]]], r"^stroke 0: coordinates contain NaN or infinity$"),
    ([[1, 2, 3]], None),  # wrong nesting
    ([[[[0, 1]], [[0, 1]]]], "not lists"),  # one level too deep
    ([[["a", "b"], [1, 2]]], "must be numbers"),
    ([[[True, 50], [0, 1]]], "found a bool"),
    ([[0, 1, 2], [0, 1, 0]], r"got int as list 0 \(one stroke \[xs, ys\] given where a drawing"),
    ([[[0, 1, 2], [0, 1]]], r"its lists differ in length \(3, 2\)"),
    ([[[1, 2], [3, 4], [5, 6], [7, 8]]], None),  # four coordinate lists
    ("{not json", "JSON"),
    ("", "empty string"),  # not the current directory
    ("  ", "empty string"),
    ({"no_drawing": []}, "drawing"),
    (np.zeros((4, 4)), None),
    (42, "cannot make a Sketch"),
    # a Sketch built directly passes no reader: the classifier holds it to the readers' limits
    (Sketch([np.array([[1, 1e30], [2, 3]], np.float32)]), r"^the drawing has coordinates of magnitude beyond 1e\+09 "
                                                          r"\(found 1e\+30\)$"),
    (Sketch([np.array([[1, 1, 0], [2, 3, np.inf]], np.float32)]), r"^the drawing has times that are NaN, infinite "
                                                                  r"or of magnitude beyond 1e\+15 ms$"),
])
def test_bad_inputs_raise_sketch_error(clf, bad, message):
    with pytest.raises(SketchError, match=message):
        clf.predict(bad)


def test_values_within_the_limits_are_taken_however_far_apart(clf):
    """A reader rebases coordinates beyond 2**20 (and absolute clock times) on the drawing's own origin; the limits
    hold for the values as given, so values within +-1e9 (times within +-1e15 ms) spanning more are classified."""
    for drawing in ([[[-6e8, 6e8, 0], [0, 1, 5e8]]], [[[1, 2, 30], [3, 4, 9], [-9e14, 9e14, 9.1e14]]],
                    [[[998000000.05, 1e9, 999000000], [0, 10, 5]]]):  # rebased in float32, 1e9 comes back as more
        assert len(clf.predict({"drawing": drawing}, top_k=2)) == 2
    with pytest.raises(SketchError, match=r"^stroke 0: coordinates must be of magnitude <= 1e\+09"):
        clf.predict({"drawing": [[[-6e8, 1.1e9], [0, 1]]]})  # the reader's own check, as before


@pytest.mark.parametrize("several, hint", [
    (lambda f: [f, f], r"; this looks like a list of 2 sketches \(PosixPath\): predict takes one sketch, not in a "
                       r"list \(predict\(x\[0\]\)\); predict_batch takes a list of them$"),
    (lambda f: [{"drawing": [[[1, 2, 3], [4, 5, 6]]]}], r"this looks like a list of 1 sketch \(dict\)"),
    (lambda f: json.dumps([{"drawing": [[[1, 2, 3], [4, 5, 6]]]}]), r"this looks like a list of 1 sketch \(dict\)"),
    (lambda f: [[[[1, 2, 3], [4, 5, 6]]], [[[1, 2, 3], [4, 5, 6]]]],
     r"; one nesting level too many: a drawing is \[\[xs, ys\], \.\.\.\] \(one \[xs, ys\] per stroke\); for "
     r"several drawings, predict_batch\(\[drawing, \.\.\.\]\)$"),
])
def test_several_sketches_given_to_predict_are_told_to_use_predict_batch(clf, sketch_file, several, hint):
    """A very common slip: a list of paths, records or drawings given to ``predict``, which takes one; the message
    said only "stroke 0: expected [xs, ys] ..., got PosixPath"."""
    with pytest.raises(FormatError, match=r"^stroke 0: expected .*" + hint):
        clf.predict(several(sketch_file))
    lines = "\n".join(json.dumps({"drawing": [[[1, 2, 3], [4, 5, 6]]]}) for _ in range(3))  # an ndjson file's text
    with pytest.raises(FormatError, match=r"^not a JSON sketch: invalid JSON \(Extra data, column 1\); the text holds "
                                          r"several JSON values \(3 lines\): predict takes one sketch; "
                                          r"predict_batch\(text.splitlines\(\)\) classifies one per line$"):
        clf.predict(lines)


def test_predict_batch_says_what_it_expects(clf, sketch_file):
    """Not a sequence (None, a number): a ``SketchError`` saying what it takes, not ``'int' object is not iterable``;
    one drawing without the outer list: a hint; ``on_error`` that is no function: refused up front; a path given as
    bytes (``os.fsencode``, ``os.listdir(b".")``) is a path, as its ``str`` is."""
    for bad, got in ((None, "None"), (5, "an int")):
        with pytest.raises(SketchError, match=rf"^predict_batch expects a sequence of sketches or a file path, got "
                                              rf"{got}$"):
            clf.predict_batch(bad)
    one = [[[0, 10, 20, 30], [0, 20, 0, 20]], [[5, 6, 7], [1, 2, 3]]]
    hint = (r"; the argument looks like one drawing \(\[xs, ys\] per stroke\), not a list of sketches: "
            r"predict\(drawing\), or predict_batch\(\[drawing, \.\.\.\]\)$")
    with pytest.raises(SketchError, match=r"^item 0: stroke 0: expected .*" + hint):
        clf.predict_batch(one)
    errors: list[SketchError] = []
    assert clf.predict_batch(one, on_error=errors.append) == [[], []]
    assert re.search(hint, str(errors[0])) and not re.search(hint, str(errors[1]))
    assert [p.label for p in clf.predict(one, top_k=3)] == [p.label for p in clf.predict_batch([one], top_k=3)[0]]
    with pytest.raises(TypeError, match="^on_error must be a function taking a SketchError, got an int$"):
        clf.predict_batch([one], on_error=5)  # refused though no item fails
    expected = clf.predict_batch(sketch_file, top_k=2)
    assert clf.predict_batch(os.fsencode(sketch_file), top_k=2) == expected
    assert clf.predict(os.fsencode(sketch_file), top_k=2) == clf.predict(sketch_file, top_k=2)


def deny_reading(monkeypatch, path) -> None:
    """Opening ``path`` raises ``PermissionError`` as for a file the user may not read (the tests run as root,
    which chmod does not stop)."""
    import builtins

    real = builtins.open

    def denied(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", denied)


def test_an_unreadable_file_is_a_sketch_error(clf, sketch_file, monkeypatch):
    """Documented: input that cannot be read is a ``SketchError`` (a ``ValueError``); a file that cannot be
    opened (permissions, I/O) raised a bare ``PermissionError``. A missing one is still ``FileNotFoundError``."""
    deny_reading(monkeypatch, sketch_file)
    with pytest.raises(SketchError, match=rf"^{re.escape(str(sketch_file))}: cannot read it: Permission denied$"):
        clf.predict(sketch_file)
    with pytest.raises(FileNotFoundError):
        clf.predict(sketch_file.with_name("gone.ndjson"))


@pytest.mark.parametrize("rows, hint", [
    ([[0, 0, 0], [10, 0, 0], [0, 10, 1], [5, 5, 0]], r"\(stroke-3 rows \[dx, dy, pen_lifted\] given as lists\? pass "
                                                     r"them as an \(n, 3\) numpy array\)"),
    ([[0, 0, 0], [10, 0, 1]], r"\(one stroke \[xs, ys\] given where a drawing \[\[xs, ys\], \.\.\.\] belongs\? or "
                              r"stroke-3 rows"),  # also one stroke of 3 points
    ([[1, 2, 3], [4, 5, 6]], r"\(one stroke \[xs, ys\] given where a drawing \[\[xs, ys\], \.\.\.\] belongs\?\)"),
])
def test_stroke3_rows_given_as_lists_get_a_hint(clf, rows, hint):
    """sketch-rnn's stroke-3 rows as a Python list were told they might be one stroke; a list of [dx, dy, 0/1]
    rows is told to pass a numpy array (the stroke-3 input), with the other reading too when it fits."""
    with pytest.raises(FormatError, match=hint):
        clf.predict(rows)
    assert clf.predict(np.array(rows, np.float32)) if len(rows) > 3 else True


def test_a_sketch_object_with_nan_is_refused(clf):
    """Readers refuse NaN; a Sketch built directly is checked too (a checkpoint without simplification
    would otherwise return NaN scores)."""
    bad = Sketch([np.array([[0, 0], [np.nan, 5]], np.float32)])
    with pytest.raises(SketchError, match="NaN or infinite"):
        clf.predict(bad)
    with pytest.raises(SketchError, match="item 1: .*NaN or infinite"):
        clf.predict_batch([shapes()[0], bad])


@pytest.mark.parametrize("name", ["model.safetensors", "config.json"])
def test_a_checkpoint_file_names_its_directory(tiny_checkpoint, name):
    assert resolve_checkpoint(tiny_checkpoint / name) == tiny_checkpoint


def test_json_text_with_a_byte_order_mark(clf):
    text = json.dumps({"drawing": shapes()[0].to_lists()})
    assert same(clf.predict("\ufeff" + text), clf.predict(text), tol=1e-9)


def test_predict_batch_of_an_empty_string_is_an_error(clf):
    with pytest.raises(SketchError, match="empty string"):
        clf.predict_batch("")


def test_missing_file(clf, tmp_path):
    with pytest.raises(FileNotFoundError):
        clf.predict(tmp_path / "nothing.ndjson")


# ------------------------------------------------------------------------------------------ batches
@pytest.mark.parametrize("batch_size", [1, 2, 256])
def test_batch_equals_single(tiny_checkpoint, batch_size):
    clf = SketchClassifier.from_pretrained(tiny_checkpoint, batch_size=batch_size)
    sketches = shapes()
    batched = clf.predict_batch(iter(sketches), top_k=3)  # any iterable, consumed in chunks
    assert len(batched) == len(sketches)
    for sk, preds in zip(sketches, batched):
        assert same(preds, clf.predict(sk, top_k=3))


@pytest.mark.parametrize("writer", ["ndjson", "npz"])
def test_batch_of_a_file_is_all_its_sketches(clf, tmp_path, writer):
    sketches = shapes()[:4]
    if writer == "ndjson":
        path = tmp_path / "all.ndjson"
        write_ndjson(sketches, path)
    else:
        path = write_stroke3_npz(tmp_path / "all.npz", test=sketches, pickle_free=True)
    results = clf.predict_batch(path)
    assert len(results) == len(sketches)
    for sk, preds in zip(sketches, results):
        assert same(preds, clf.predict(sk), tol=1e-4)


def test_prepare_then_predict_prepared_is_predict(clf):
    """The two halves of a prediction, public for servers: parts prepared apart and joined give each sketch its
    single-call ranking, in order."""
    from sketchgraph.data.flat import FlatPrepared

    sketches = shapes()[:4]
    joined = FlatPrepared.concat([clf.prepare(sketches[:1]), clf.prepare(sketches[1:])])
    got = clf.predict_prepared(joined, top_k=3)
    assert len(got) == 4 and all(same(g, clf.predict(sk, top_k=3)) for g, sk in zip(got, sketches))


def test_batch_error_names_the_item(clf):
    sketches = shapes()[:2] + [[]]
    with pytest.raises(SketchError, match="item 2"):
        clf.predict_batch(sketches)


@pytest.mark.parametrize("read_ahead", [True, False])
def test_batch_pipelined_over_chunks(clf, monkeypatch, read_ahead):
    """Chunks of 2 sketches (read ahead in a thread or in turn, 2 preprocessing threads): the same results in
    input order as one at a time, and an error in a later chunk names its position in the whole input."""
    monkeypatch.setattr(predict_mod, "_READ_AHEAD", 1)
    small = SketchClassifier(clf.model, clf.classes, preprocessing=clf.preprocessing, graph_spec=clf.graph_spec,
                             batch_size=2, threads=2, read_ahead=read_ahead)
    assert small.read_ahead is read_ahead
    sketches = shapes() * 3  # 15 sketches -> 8 chunks
    results = small.predict_batch(iter(sketches))  # a one-shot iterator: read once, in order
    assert len(results) == len(sketches)
    assert all(same(a, clf.predict(sk), tol=1e-4) for a, sk in zip(results, sketches))
    with pytest.raises(SketchError, match="item 7"):
        small.predict_batch(sketches[:7] + [[]] + sketches[:4])


def test_read_ahead_default_follows_the_device(clf):
    """On the CPU the model's threads fill the cores, so the steps run in turn unless asked otherwise."""
    assert clf.read_ahead is False
    assert SketchClassifier(clf.model, clf.classes, read_ahead=True).read_ahead is True


@pytest.mark.parametrize("torch_threads", [1, 2, 3])
def test_a_call_on_few_sketches_runs_on_one_thread_of_the_caller_only(clf, torch_threads):
    """A model call of at most ``FEW_SKETCHES`` sketches runs on one intra-op thread (with a busy core, torch's two
    made ``predict``'s p99 160-172 ms instead of 10-14), in the calling thread only, its count restored after;
    larger calls use torch's count; the results are those of any thread count."""
    import threading

    import torch

    from sketchgraph.predict import FEW_SKETCHES

    seen = []
    hook = clf.model.register_forward_pre_hook(lambda module, args: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    torch.set_num_threads(torch_threads)
    try:
        sketches = shapes() * 4
        many = clf.probabilities(sketches[: FEW_SKETCHES + 1])  # one call: the lengths are alike
        few = [clf.predict(sk, top_k=20) for sk in sketches[:3]]
        assert seen == [torch_threads, 1, 1, 1] and torch.get_num_threads() == torch_threads
        other: list[int] = []
        worker = threading.Thread(target=lambda: (clf.predict(sketches[0]), other.append(torch.get_num_threads())))
        worker.start()
        worker.join()
        assert other == [torch_threads] and torch.get_num_threads() == torch_threads
        for sk, preds in zip(sketches, few):
            torch.set_num_threads(torch_threads)
            one = clf.probabilities([sk])[0]
            assert torch.allclose(torch.tensor([p.score for p in sorted(preds, key=lambda p: p.index)]), one,
                                  atol=1e-6)
        assert torch.allclose(many[:3], clf.probabilities(sketches[:3]), atol=1e-6)
    finally:
        hook.remove()
        torch.set_num_threads(before)


@pytest.mark.parametrize("backend", ["dense", "dgl"])
@pytest.mark.parametrize("torch_threads", [1, 2, 3])
def test_the_batches_of_one_call_run_side_by_side_with_the_same_results(tiny_checkpoint, backend, torch_threads):
    """On the CPU a call's batches run side by side (dense attention), up to torch's thread count at once, each on
    its share of the threads (the model's matrices are small: 920-1,037 sketches/s against 688-840 on 2 cores);
    the probabilities are those of one batch after the other, to float rounding, and the calling thread's count is
    kept. DGL's calls stay in the calling thread."""
    import threading

    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(torch_threads)
    try:
        sketches = [sk for k in range(6) for sk in shapes()[:4]] + shapes()[4:]  # lengths apart: several batches
        serial = SketchClassifier.from_pretrained(tiny_checkpoint, backend=backend, batch_size=4,
                                                  parallel_batches=False)
        parallel = SketchClassifier.from_pretrained(tiny_checkpoint, backend=backend, batch_size=4)
        seen = []
        parallel.model.register_forward_pre_hook(
            lambda module, args: seen.append((threading.current_thread().name, torch.get_num_threads())))
        batches = len(parallel._batches(sketches))
        expected = serial.probabilities(sketches)
        got = parallel.probabilities(sketches)
        assert batches >= 6 and len(seen) == batches and torch.get_num_threads() == torch_threads
        assert torch.allclose(got, expected, atol=1e-6) and got.argmax(1).equal(expected.argmax(1))
        workers = {name for name, _ in seen}
        if backend == "dense" and torch_threads > 1:
            assert all(name.startswith("sketchgraph-model") for name in workers) and len(workers) <= torch_threads
            assert {threads for _, threads in seen} == {torch_threads // min(torch_threads, batches)}
        else:
            assert workers == {threading.current_thread().name}
        ranked = parallel.predict_batch(sketches, top_k=3)
        assert [[p.label for p in r] for r in ranked] == [[p.label for p in r] for r in serial.predict_batch(
            sketches, top_k=3)]
    finally:
        torch.set_num_threads(before)


def test_nan_scores_in_a_batch_run_side_by_side_are_refused(tiny_checkpoint):
    """A model giving NaN scores in one of the batches run side by side is refused as in one after the other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        clf = SketchClassifier.from_pretrained(tiny_checkpoint, batch_size=4)
        calls = []

        def poison(module, args, output):
            calls.append(1)
            return output * float("nan") if len(calls) == 3 else output

        clf.model.register_forward_hook(poison)
        with pytest.raises(CheckpointError, match="NaN or infinite scores"):
            clf.probabilities([sk for k in range(6) for sk in shapes()])
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_preprocessing_threads_change_nothing(clf, monkeypatch, threads):
    import sketchgraph.data.flat as flat_module

    monkeypatch.setattr(flat_module, "MIN_THREAD_SKETCHES", 2)
    sketches = shapes() * 4
    multi = SketchClassifier(clf.model, clf.classes, preprocessing=clf.preprocessing, graph_spec=clf.graph_spec,
                             threads=threads)
    assert multi.probabilities(sketches).equal(clf.probabilities(sketches))


@pytest.mark.filterwarnings("ignore:.*no native bfloat16:RuntimeWarning")
def test_bfloat16_precision_agrees_with_float32(tiny_checkpoint):
    exact = SketchClassifier.from_pretrained(tiny_checkpoint)
    fast = SketchClassifier.from_pretrained(tiny_checkpoint, precision="bfloat16")
    a, b = exact.probabilities(shapes()), fast.probabilities(shapes())
    assert b.dtype == a.dtype and b.shape == a.shape
    assert 0 < (a - b).abs().max() < 0.05  # it did run in bfloat16, and stays close
    assert b.sum(-1).sub(1).abs().max() < 1e-5
    with pytest.raises(ValueError, match="precision"):
        SketchClassifier.from_pretrained(tiny_checkpoint, precision="float8")


@pytest.mark.parametrize("native", [True, False])
def test_bfloat16_warns_where_it_is_emulated(tiny_checkpoint, monkeypatch, native):
    import warnings

    import sketchgraph.model.precision as precision

    monkeypatch.setattr(precision, "native_bf16", lambda device: native)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        SketchClassifier.from_pretrained(tiny_checkpoint, precision="bfloat16")
        SketchClassifier.from_pretrained(tiny_checkpoint)  # float32 never warns
    messages = [str(w.message) for w in seen if issubclass(w.category, RuntimeWarning)]
    assert messages == ([] if native else [messages[0]])
    if not native:
        assert "precision='bfloat16'" in messages[0] and "slower than float32" in messages[0]


def test_native_bf16_reports_a_boolean():
    import platform

    import torch

    from sketchgraph.model.precision import native_bf16

    assert native_bf16("cpu") in (True, False)
    if platform.machine().lower() in ("x86_64", "amd64"):  # the bf16 instructions themselves, not AVX-512 alone
        assert native_bf16("cpu") == bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def test_concurrent_predictions_match_serial(clf):
    sketches = shapes() * 6
    serial = [clf.predict(sk) for sk in sketches]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(clf.predict, sketches))
    assert all(same(a, b) for a, b in zip(serial, parallel))


# ------------------------------------------------------------------------------------------ model
def test_backends_agree(tiny_checkpoint):
    pytest.importorskip("dgl")
    dense = SketchClassifier.from_pretrained(tiny_checkpoint, backend="dense")
    dgl = SketchClassifier.from_pretrained(tiny_checkpoint, backend="dgl")
    for sk in shapes():
        assert same(dense.predict(sk), dgl.predict(sk), tol=1e-4)


@pytest.mark.parametrize("device", ["meta", "xpu", "hpu"])
def test_devices_torch_cannot_serve_here_are_refused_by_name(tiny_checkpoint, sketch_file, capsys, device):
    with pytest.raises(ValueError, match=f"device '{device}(:0)?': sketchgraph runs on cpu, cuda or mps"):
        SketchClassifier.from_pretrained(tiny_checkpoint, device=device)
    assert main(["predict", str(sketch_file), "--checkpoint", str(tiny_checkpoint), "--device", device]) == 1
    err = capsys.readouterr().err
    assert "runs on cpu, cuda or mps" in err and "Traceback" not in err


def test_unknown_backend(tiny_checkpoint):
    with pytest.raises(ValueError, match="backend"):
        SketchClassifier.from_pretrained(tiny_checkpoint, backend="sparse")


def test_attention_maps(clf):
    sk = shapes()[1]
    maps = clf.attention_maps(sk)
    n = clf.graph(sk).num_nodes
    cfg = clf.model.config
    assert set(maps) == set(clf.graph_spec.relations)
    for rel, m in maps.items():
        assert m.shape == (cfg.layers, cfg.heads, n, n)
        np.testing.assert_allclose(m.sum(-1), 1.0, atol=1e-5)  # each query's weights sum to 1
        allowed = clf.graph(sk).dense_masks()[rel]
        assert np.all(m[:, :, ~allowed] == 0)  # nothing outside the relation


@pytest.mark.filterwarnings("ignore:.*no native bfloat16:RuntimeWarning")
def test_attention_maps_run_at_the_classifiers_precision(tiny_checkpoint, clf):
    """Under ``precision="bfloat16"`` the maps are computed as the predictions are, in bfloat16 autocast: close to
    float32's (and still float32 arrays), but not the same numbers."""
    fast = SketchClassifier.from_pretrained(tiny_checkpoint, precision="bfloat16")
    sk = shapes()[2]
    exact, rounded = clf.attention_maps(sk), fast.attention_maps(sk)
    assert set(exact) == set(rounded)
    gaps = [np.abs(exact[r] - rounded[r]).max() for r in exact]
    assert all(rounded[r].dtype == np.float32 and rounded[r].shape == exact[r].shape for r in exact)
    assert 0 < max(gaps) < 0.05, gaps


def test_classifier_is_in_eval_mode_and_reports_itself(clf):
    assert not clf.model.training
    assert "classes=5" in repr(clf) and clf.classes == ["apple", "cat", "dog", "house", "sun"]


# ------------------------------------------------------------------------------------------ checkpoints
def test_resolve_by_name_in_checkout(tiny_checkpoint, tmp_path, monkeypatch):
    shutil.copytree(tiny_checkpoint, tmp_path / "spg20")
    monkeypatch.setattr(predict_mod, "_CHECKPOINT_PACKAGES", ())
    monkeypatch.setattr(predict_mod, "_CHECKOUT_CHECKPOINTS", tmp_path)
    assert resolve_checkpoint("spg20") == tmp_path / "spg20"
    assert SketchClassifier.from_pretrained("spg20").name == "spg20"


def test_resolve_by_name_in_package_data_first(tiny_checkpoint, tmp_path, monkeypatch):
    package = tmp_path / "site" / "fake_ckpts"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    shutil.copytree(tiny_checkpoint, package / "spg20")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(predict_mod, "_CHECKPOINT_PACKAGES", ("not_installed_pkg", "fake_ckpts"))
    monkeypatch.setattr(predict_mod, "_CHECKOUT_CHECKPOINTS", tmp_path / "elsewhere")
    assert resolve_checkpoint("spg20").resolve() == (package / "spg20").resolve()
    sys.modules.pop("fake_ckpts", None)


def test_a_dataset_folder_named_like_the_shipped_checkpoint_does_not_hide_it(tiny_checkpoint, tmp_path, monkeypatch):
    """``spg20/`` in the current directory (a prepared dataset, no config.json) does not shadow the shipped
    ``spg20``; a folder that IS a checkpoint still wins, and ``./spg20`` (a path) always means the folder."""
    shipped = tmp_path / "shipped"
    shutil.copytree(tiny_checkpoint, shipped / "spg20")
    monkeypatch.setattr(predict_mod, "_CHECKPOINT_PACKAGES", ())
    monkeypatch.setattr(predict_mod, "_CHECKOUT_CHECKPOINTS", shipped)
    work = tmp_path / "work"
    (work / "spg20").mkdir(parents=True)
    (work / "spg20" / "meta.json").write_text("{}")
    monkeypatch.chdir(work)
    assert resolve_checkpoint("spg20") == shipped / "spg20"
    with pytest.raises(CheckpointError, match="config.json"):
        SketchClassifier.from_pretrained("./spg20")
    (work / "other").mkdir()  # no shipped checkpoint is called 'other'
    with pytest.raises(CheckpointError, match="config.json"):
        SketchClassifier.from_pretrained("other")  # its own error, not "not found"
    shutil.rmtree(work / "spg20")
    shutil.copytree(tiny_checkpoint, work / "spg20")
    assert resolve_checkpoint("spg20").resolve() == (work / "spg20").resolve()


@pytest.mark.parametrize("name", ["no-such-checkpoint", "spg20"])
def test_unknown_checkpoint_is_a_clear_error(name, monkeypatch, tmp_path):
    monkeypatch.setattr(predict_mod, "_CHECKPOINT_PACKAGES", ())
    monkeypatch.setattr(predict_mod, "_CHECKOUT_CHECKPOINTS", tmp_path)
    with pytest.raises(CheckpointError, match=f"checkpoint '{name}' not found; looked in"):
        SketchClassifier.from_pretrained(name)


def test_an_installed_package_does_not_look_for_a_checkout_folder(monkeypatch, tmp_path):
    """Installed, the package's parent is site-packages: its ``checkpoints/`` is no place a checkpoint is shipped,
    and the message listed it (``site-packages/checkpoints/spg21``)."""
    monkeypatch.setattr(predict_mod, "_CHECKPOINT_PACKAGES", ())
    monkeypatch.setattr(predict_mod, "_CHECKOUT_CHECKPOINTS", tmp_path / "site-packages" / "checkpoints")
    with pytest.raises(CheckpointError) as caught:
        resolve_checkpoint("spg21")
    assert str(caught.value) == ("checkpoint 'spg21' not found; looked in: the installed package (it holds none); "
                                 "shipped checkpoints: none")


def test_a_misspelt_checkpoint_name_lists_the_shipped_ones(tiny_checkpoint, monkeypatch, tmp_path):
    """Not found: the message names the shipped checkpoints and, for a near miss (a letter O for a zero), the one
    meant; a path gets the list but no guess."""
    shutil.copytree(tiny_checkpoint, tmp_path / "spg20")
    (tmp_path / "README.md").write_text("not a checkpoint")
    monkeypatch.setattr(predict_mod, "_CHECKPOINT_PACKAGES", ())
    monkeypatch.setattr(predict_mod, "_CHECKOUT_CHECKPOINTS", tmp_path)
    assert predict_mod.shipped_checkpoints() == ["spg20"]
    with pytest.raises(CheckpointError) as caught:
        resolve_checkpoint("spg2O")
    assert str(caught.value) == (f"checkpoint 'spg2O' not found (did you mean 'spg20'?); looked in: "
                                 f"{tmp_path / 'spg2O'}; shipped checkpoints: spg20")
    with pytest.raises(CheckpointError) as caught:
        resolve_checkpoint("runs/spg2O")
    assert str(caught.value) == "checkpoint 'runs/spg2O' not found; looked in: runs/spg2O; shipped checkpoints: spg20"


# ------------------------------------------------------------------------------------------ CLI
@pytest.fixture
def sketch_file(tmp_path):
    path = tmp_path / "shapes.ndjson"
    write_ndjson(shapes()[:3], path)
    return path


def test_cli_json(tiny_checkpoint, sketch_file, capsys):
    assert main(["predict", str(sketch_file), "--checkpoint", str(tiny_checkpoint), "--json", "--top-k", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["index"] for r in lines] == [0, 1, 2]
    clf = SketchClassifier.from_pretrained(tiny_checkpoint)
    for record, sk in zip(lines, shapes()):
        assert record["file"] == str(sketch_file)
        assert [p["label"] for p in record["predictions"]] == [p.label for p in clf.predict(sk, top_k=2)]


@pytest.mark.filterwarnings("ignore:.*no native bfloat16:RuntimeWarning")
def test_cli_bfloat16(tiny_checkpoint, sketch_file, capsys):
    args = ["predict", str(sketch_file), "--checkpoint", str(tiny_checkpoint), "--json", "--top-k", "20"]
    assert main(args) == 0
    exact = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main([*args, "--precision", "bfloat16"]) == 0
    fast = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for a, b in zip(exact, fast):
        pa = {p["label"]: p["score"] for p in a["predictions"]}
        pb = {p["label"]: p["score"] for p in b["predictions"]}
        assert pa.keys() == pb.keys() and 0 < max(abs(pa[k] - pb[k]) for k in pa) < 0.05


@pytest.mark.parametrize("backend", ["dense", "dgl"])
def test_cli_table(tiny_checkpoint, sketch_file, capsys, backend):
    assert main(["predict", str(sketch_file), "--checkpoint", str(tiny_checkpoint), "--backend", backend]) == 0
    out = capsys.readouterr().out
    assert out.count(f"{sketch_file} [") == 3 and "  5. " in out and "%" in out


def test_cli_folder_reports_each_file(tiny_checkpoint, tmp_path, capsys):
    """A folder is read file by file (sorted, recursively, .npz skipped as in ``read_sketches``): each
    record names its own file and its index in that file."""
    folder = tmp_path / "drawings"
    (folder / "sub").mkdir(parents=True)
    write_ndjson(shapes()[:2], folder / "b.ndjson")
    write_svg(shapes()[2], folder / "sub" / "a.svg")
    write_stroke3_npz(folder / "skipped.npz", train=shapes()[:1])
    assert main(["predict", str(folder), "--checkpoint", str(tiny_checkpoint), "--json", "--top-k", "1"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["file"], r["index"]) for r in records] == [
        (str(folder / "b.ndjson"), 0), (str(folder / "b.ndjson"), 1), (str(folder / "sub" / "a.svg"), 0)]
    clf = SketchClassifier.from_pretrained(tiny_checkpoint)
    assert records[2]["predictions"][0]["label"] == clf.predict(folder / "sub" / "a.svg", top_k=1)[0].label


IMAGES = {"png": ("PNG", "a PNG image"), "jpg": ("JPEG", "a JPEG image"), "gif": ("GIF", "a GIF image"),
          "pdf": ("PDF", "a PDF document")}


def image_file(folder, suffix: str):
    """A white 300 x 200 image (or one-page PDF) named ``apple.<suffix>``, and what the refusal calls it."""
    from PIL import Image

    pil_format, kind = IMAGES[suffix]
    path = folder / f"apple.{suffix}"
    Image.new("RGB", (300, 200), "white").save(path, pil_format)
    return path, kind


@pytest.mark.parametrize("suffix", list(IMAGES))
def test_an_image_is_refused_not_classified(clf, tmp_path, suffix):
    """An image used to be read as a Quick, Draw! .bin (a made-up prediction, or a "truncated record"): predict and
    predict_batch refuse it, saying what it is."""
    path, kind = image_file(tmp_path, suffix)
    said = f"{path}: this is {kind}, not a sketch file; sketchgraph reads stroke data"
    with pytest.raises(SketchError) as caught:
        clf.predict(path)
    assert str(caught.value).startswith(said)
    with pytest.raises(SketchError) as caught:
        clf.predict_batch(str(path))  # the whole argument: all its sketches
    assert str(caught.value).startswith(said)
    with pytest.raises(SketchError) as caught:
        clf.predict_batch([shapes()[0], path])
    assert str(caught.value).startswith(f"item 1: {said}")
    errors: list[SketchError] = []
    got = clf.predict_batch([path, shapes()[0]], on_error=errors.append)
    assert got[0] == [] and same(got[1], clf.predict(shapes()[0]))
    assert len(errors) == 1 and str(errors[0]).startswith(f"item 0: {said}")


@pytest.mark.parametrize("as_json", [True, False])
def test_cli_reports_an_image_as_a_file_it_could_not_read(tiny_checkpoint, tmp_path, capsys, as_json):
    """``sketchgraph predict apple.png``: the file could not be read (what it is, not "record 1 (byte 0): truncated
    record"), and no sketch is counted as read and unclassified; the other files still run."""
    png, _ = image_file(tmp_path, "png")
    good = tmp_path / "good.ndjson"
    write_ndjson(shapes()[:1], good)
    args = ["predict", str(png), str(good), "--checkpoint", str(tiny_checkpoint), *(["--json"] if as_json else [])]
    assert main(args) == 1
    captured = capsys.readouterr()
    said = "this is a PNG image, not a sketch file; sketchgraph reads stroke data"
    assert f"sketchgraph predict: skipped {png}: {said}" in captured.err
    assert captured.err.endswith("sketchgraph predict: 1 file or part of a file could not be read\n")
    assert "could not be classified" not in captured.err
    if as_json:
        records = [json.loads(line) for line in captured.out.splitlines()]
        assert [(r["file"], r["index"]) for r in records] == [(str(png), None), (str(good), 0)]
        assert records[0]["error"].startswith(said) and "predictions" in records[1]
    renamed = tmp_path / "apple.bin"  # an image named .bin: refused by the .bin reader, counted as a file all the same
    renamed.write_bytes(png.read_bytes())
    assert main(["predict", str(renamed), "--checkpoint", str(tiny_checkpoint)]) == 1
    err = capsys.readouterr().err
    assert "(this is a PNG image): not a .bin file" in err and "could not be classified" not in err
    assert err.endswith("sketchgraph predict: 1 file or part of a file could not be read\n")


NO_SKETCH_FILES = ("no sketch files in this folder or below (.ndjson, .jsonl, .json, .bin, .svg, .ndjson.gz, "
                   ".jsonl.gz, .json.gz; an .npz file is read only when named)")


@pytest.mark.parametrize("as_json", [True, False])
def test_cli_reports_a_folder_without_sketch_files(tiny_checkpoint, tmp_path, capsys, as_json):
    """An empty folder, or a tree with no file a folder walk reads, is reported like an unreadable file (stderr, a
    JSON line with index null, exit status 1) instead of passing silently; the other paths still run."""
    empty, tree = tmp_path / "empty", tmp_path / "tree"
    empty.mkdir()
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "notes.txt").write_text("hello\n")
    write_stroke3_npz(tree / "sub" / "splits.npz", train=shapes()[:1])  # read only when named
    write_ndjson(shapes()[:1], tree / ".hidden.ndjson")
    good = tmp_path / "good.ndjson"
    write_ndjson(shapes()[:1], good)
    files = [str(empty), str(tree), str(good)]
    assert main(["predict", *files, "--checkpoint", str(tiny_checkpoint), *(["--json"] if as_json else [])]) == 1
    captured = capsys.readouterr()
    for folder in files[:2]:
        assert f"sketchgraph predict: skipped {folder}: {NO_SKETCH_FILES}\n" in captured.err
    assert "2 files or parts of files could not be read" in captured.err
    if as_json:
        records = [json.loads(x) for x in captured.out.splitlines()]
        assert [(r["file"], r["index"], r.get("error")) for r in records] == [
            (files[0], None, NO_SKETCH_FILES), (files[1], None, NO_SKETCH_FILES), (files[2], 0, None)]
    else:
        assert captured.out.startswith(f"{good} [0]") and "no sketch files" not in captured.out


@pytest.mark.parametrize("as_json", [True, False])
@pytest.mark.parametrize("name, target, reason", [
    ("dangling.ndjson", "/nonexistent/cat.ndjson", "No such file or directory"),
    ("dangling.ndjson.gz", "gone.ndjson.gz", "No such file or directory"),  # relative, as the link holds it
    ("sub/dangling.svg", "../gone.svg", "No such file or directory"),
    ("loop.bin", "loop.bin", "Too many levels of symbolic links"),
])
def test_cli_reports_a_broken_link_in_a_folder(tiny_checkpoint, tmp_path, capsys, as_json, name, target, reason):
    """A link met in a folder walk that has a sketch file's name but leads to no file is reported like an
    unreadable file (stderr naming the link and where it points, a JSON line in its place with index null, counted
    as a file that could not be read, exit status 1), not skipped unsaid; the walk's other files still run. A
    broken link the walk would not read anyway (another suffix, hidden, an .npz) is still left out unsaid."""
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    write_ndjson(shapes()[:1], folder / "a.ndjson")
    write_ndjson(shapes()[1:2], folder / "z.ndjson")
    link = folder / name
    link.symlink_to(target)
    for other in ("notes.txt", ".hidden.ndjson", "splits.npz"):
        (folder / other).symlink_to("/nonexistent/" + other)
    assert main(["predict", str(folder), "--checkpoint", str(tiny_checkpoint), *(["--json"] if as_json else [])]) == 1
    captured = capsys.readouterr()
    said = f"a broken link to {target}: {reason}"
    assert captured.err == (f"sketchgraph predict: skipped {link}: {said}\n"
                            "sketchgraph predict: 1 file or part of a file could not be read\n")
    if as_json:
        records = [json.loads(x) for x in captured.out.splitlines()]
        assert [(r["file"], r["index"], r.get("error")) for r in records] == [
            (str(folder / "a.ndjson"), 0, None), (str(link), None, said), (str(folder / "z.ndjson"), 0, None)]
    else:
        assert [line.split(" [")[0] for line in captured.out.splitlines() if "[" in line] == [
            str(folder / "a.ndjson"), str(folder / "z.ndjson")]


def test_cli_a_folder_holding_only_a_broken_link_reports_the_link(tiny_checkpoint, tmp_path, capsys):
    """The link is the folder's one sketch file: reported as a broken link, not as a folder without sketch files."""
    (tmp_path / "cat.ndjson").symlink_to(tmp_path / "moved" / "cat.ndjson")
    assert main(["predict", str(tmp_path), "--checkpoint", str(tiny_checkpoint), "--json"]) == 1
    captured = capsys.readouterr()
    assert [json.loads(x) for x in captured.out.splitlines()] == [
        {"file": str(tmp_path / "cat.ndjson"), "index": None, "key_id": None, "label": None,
         "error": f"a broken link to {tmp_path / 'moved' / 'cat.ndjson'}: No such file or directory"}]
    assert "no sketch files" not in captured.err


@pytest.mark.parametrize("error, message", [
    (BrokenPipeError(32, "Broken pipe", "/tmp/some/fifo"), "sketchgraph export: error: [Errno 32] Broken pipe: "
                                                            "'/tmp/some/fifo'"),
    (BrokenPipeError(32, "Broken pipe"), ""),  # stdout's reader has gone: quiet
])
def test_cli_reports_a_named_broken_pipe_and_leaves_a_callers_stdout_alone(monkeypatch, capsys, error, message):
    """Only a closed stdout is a reader that has gone; a named file's broken pipe is an error like any other. Called
    from Python (argv given), main never redirects the process's stdout."""
    import sketchgraph.export

    def fail(args):
        raise error

    monkeypatch.setattr(sketchgraph.export, "run_cli", fail)
    assert main(["export", "x.pt"]) == 1
    print("still printing")
    captured = capsys.readouterr()
    assert captured.err.strip() == message and captured.out == "still printing\n"


def test_cli_shows_the_traceback_of_an_import_bug(monkeypatch):
    """A missing optional extra is one line (test_export); any other ImportError is a bug and keeps its traceback."""
    import sketchgraph.export

    def fail(args):
        raise ImportError("cannot import name 'no_such_name' from 'sketchgraph'")

    monkeypatch.setattr(sketchgraph.export, "run_cli", fail)
    with pytest.raises(ImportError, match="no_such_name"):
        main(["export", "x.pt"])


@pytest.mark.slow
def test_cli_stops_quietly_when_the_reader_closes_the_pipe(tiny_checkpoint, tmp_path):
    """``sketchgraph predict big.ndjson | head``: no "Broken pipe" error or exit-time traceback on stderr."""
    path = tmp_path / "many.ndjson"
    write_ndjson(shapes()[:4] * 500, path)  # about 0.5 MB of tables: far more than a pipe buffers
    cmd = [sys.executable, "-m", "sketchgraph", "predict", str(path), "--checkpoint", str(tiny_checkpoint)]
    proc = subprocess.Popen(cmd, env={**os.environ, "DGLBACKEND": "pytorch"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        proc.stdout.close()  # the reader goes away, as `head -1` does
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert first.startswith(f"{path} [0]")
    assert "Broken pipe" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err, err
    assert proc.returncode == 1


@pytest.mark.parametrize("command", ["predict", "serve", "demo", "export"])
def test_cli_help_gives_the_checkpoint_default(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    assert "checkpoint directory or shipped name (default spg20)" in " ".join(capsys.readouterr().out.split())


def test_cli_help_describes_the_tool_in_plain_words(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.split("\n\n")[1] == "Recognise free-hand sketches as graphs with the Multi-Graph Transformer (MGT)."
    assert "``" not in out


@pytest.mark.parametrize("args, message", [
    (["missing.ndjson"], "no such"),
    (["SKETCH", "--checkpoint", "no-such-checkpoint"], "not found"),
])
def test_cli_errors(sketch_file, capsys, args, message):
    args = [str(sketch_file) if a == "SKETCH" else a for a in args]
    assert main(["predict", *args]) == 1
    assert message in capsys.readouterr().err


def test_cli_reports_bad_records_and_goes_on(tiny_checkpoint, tmp_path, capsys):
    path = tmp_path / "mixed.ndjson"
    good = json.dumps({"drawing": shapes()[0].to_lists()})
    path.write_text("\n".join([good, "not json", json.dumps({"drawing": []}), good]) + "\n")
    assert main(["predict", str(path), "--checkpoint", str(tiny_checkpoint), "--json"]) == 1
    captured = capsys.readouterr()
    records = [json.loads(x) for x in captured.out.splitlines()]
    assert [r["index"] for r in records] == [0, 1, 2, 3]  # every record has its line, in order
    assert ["predictions" in r for r in records] == [True, False, False, True]
    assert "mixed.ndjson:2: invalid JSON" in records[1]["error"] and "no points" in records[2]["error"]
    assert captured.err.count("skipped") == 2 and "mixed.ndjson:2" in captured.err
    assert "[1]: " in captured.err and "[2]: " in captured.err  # the skipped ones in the same numbering


@pytest.mark.parametrize("as_json", [True, False])
def test_cli_skips_a_file_it_cannot_read_and_goes_on(tiny_checkpoint, tmp_path, capsys, as_json):
    """A file of unknown format, without sketches or not a readable .npz is reported and skipped (an error about
    the file takes no record number); the files after it still run."""
    good = tmp_path / "good.ndjson"
    good.write_text(json.dumps({"drawing": shapes()[0].to_lists()}) + "\n")
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "empty.ndjson").write_text("\n\n")
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "broken.json").write_text('{"drawing": [[[0, 1], [0, 1]]], ')
    files = [str(tmp_path / n) for n in ("notes.txt", "empty.ndjson", "broken.npz", "broken.json", "good.ndjson")]
    assert main(["predict", *files, "--checkpoint", str(tiny_checkpoint), *(["--json"] if as_json else [])]) == 1
    captured = capsys.readouterr()
    assert "skipped " + files[0] + ": cannot tell the format" in captured.err
    assert "skipped " + files[1] + ": contains no sketches" in captured.err
    assert "skipped " + files[2] + ": not a readable .npz file" in captured.err
    assert "skipped " + files[3] + ": line 1: not a valid JSON document" in captured.err
    assert "4 files or parts of files could not be read" in captured.err and "classified" not in captured.err
    if as_json:
        records = [json.loads(x) for x in captured.out.splitlines()]
        assert [(r["file"], r["index"], "error" in r) for r in records] == [
            *((f, None, True) for f in files[:4]), (files[4], 0, False)]
    else:
        assert captured.out.startswith(f"{files[4]} [0]") and "error" not in captured.out


def test_cli_a_broken_npz_split_takes_no_number(tiny_checkpoint, tmp_path, capsys, break_npz_split):
    """An .npz split that cannot be read is reported in its place, without a number: the records of the other
    split keep theirs."""
    path = break_npz_split(write_stroke3_npz(tmp_path / "two.npz", test=shapes()[:2], train=shapes()[2:3],
                                             pickle_free=True), "test")
    assert main(["predict", str(path), "--checkpoint", str(tiny_checkpoint), "--json"]) == 1
    records = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(r["index"], "error" in r) for r in records] in ([(None, True), (0, False)], [(0, False), (None, True)])


def test_cli_format_option_reads_an_oddly_named_file(tiny_checkpoint, tmp_path, capsys):
    """An SVG saved as .xml whose <svg> tag comes after a long prologue cannot be sniffed: the error points at
    --format, which reads it."""
    from sketchgraph.formats import write_svg

    svg = write_svg(shapes()[0], tmp_path / "a.svg").read_text()
    path = tmp_path / "drawing.xml"
    path.write_text('<?xml version="1.0"?>\n<!-- ' + "x" * 5000 + " -->\n" + svg.split("?>", 1)[-1])
    assert main(["predict", str(path), "--checkpoint", str(tiny_checkpoint), "--json"]) == 1
    assert "--format" in capsys.readouterr().err
    assert main(["predict", str(path), "--checkpoint", str(tiny_checkpoint), "--json", "--format", "svg"]) == 0
    (record,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert record["predictions"] == json.loads(json.dumps(
        [p.to_dict() for p in SketchClassifier.from_pretrained(tiny_checkpoint).predict(tmp_path / "a.svg")]))


def test_predict_batch_on_error_lets_a_bad_item_fail_alone(clf, tmp_path):
    good = shapes()[0]
    errors: list[SketchError] = []
    out = clf.predict_batch([good, [], good, DEGENERATE, tmp_path / "missing.ndjson"], top_k=2,
                            on_error=errors.append)
    assert len(out) == 5 and out[1] == out[3] == out[4] == [] and out[0] == out[2] == clf.predict(good, top_k=2)
    assert [str(e).split(":")[0] for e in errors] == ["item 1", "item 3", "item 4"]
    assert "too long to simplify" in str(errors[1]) and "missing.ndjson" in str(errors[2])
    path = tmp_path / "mixed.ndjson"
    path.write_text("\n".join([json.dumps({"drawing": good.to_lists()}), "not json",
                               json.dumps({"drawing": good.to_lists()})]) + "\n")
    errors.clear()
    out = clf.predict_batch(path, top_k=2, on_error=errors.append)
    assert out == [clf.predict(good, top_k=2), [], clf.predict(good, top_k=2)]  # in line with the records
    assert len(errors) == 1 and "mixed.ndjson:2" in str(errors[0])
    with pytest.raises(SketchError, match="item 1"):
        clf.predict_batch([good, []])  # without on_error the first bad item raises, as before


def test_predict_batch_of_a_file_with_on_error_keeps_every_record_in_its_place(clf, tiny_checkpoint, tmp_path,
                                                                                 capsys):
    """An evaluator zips ``predict_batch(path, on_error=...)`` with the file's records: a record that cannot be
    read (empty drawing, not JSON, ragged lists), or that the preprocessing refuses, gets ``[]`` in its place, and
    its error names its line and, for a refused one, its index among ALL the records (as ``predict --json``)."""
    a, b = shapes()[:2]
    lines = [json.dumps({"key_id": 7, "word": "cat", "drawing": []}),  # 0: unreadable, first
             json.dumps({"drawing": a.to_lists()}),             # 1
             "not json",                                        # 2: unreadable
             json.dumps({"drawing": [[[0, 1, 2], [0, 1]]]}),    # 3: unreadable (xs and ys differ in length)
             json.dumps({"drawing": DEGENERATE.to_lists()}),    # 4: read, refused by the simplification
             json.dumps({"drawing": b.to_lists()}),             # 5
             "",                                                # a blank line is not a record
             json.dumps({"drawing": []})]                       # 6: unreadable, last
    path = tmp_path / "gaps.ndjson"
    path.write_text("\n".join(lines) + "\n")
    errors: list[SketchError] = []
    out = clf.predict_batch(path, top_k=2, on_error=errors.append)

    def rounded(results: list[list[Prediction]]) -> list[list[tuple[str, float]]]:  # batching moves scores ~1e-8
        return [[(p.label, round(p.score, 5)) for p in preds] for preds in results]

    assert rounded(out) == rounded([[], clf.predict(a, top_k=2), [], [], [], clf.predict(b, top_k=2), []])
    by_place = {str(e).split(": ")[0]: str(e) for e in errors}  # in the file's order, read errors and refusals
    assert list(by_place) == [f"{path}:1", f"{path}:3", f"{path}:4", "item 4", f"{path}:8"]
    assert by_place["item 4"] == f"item 4: {path}:5: drawing too long to simplify: {TOO_LONG}"
    refused = errors[3]  # named as a read error names its record
    assert isinstance(refused, FormatError) and (refused.source, refused.line, refused.label) == (str(path), 5, "gaps")
    assert main(["predict", str(path), "--json", "--top-k", "2", "--checkpoint", str(tiny_checkpoint)]) == 1
    cli = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["index"] for r in cli] == list(range(7))  # the CLI numbers the records the same way
    assert [bool(r.get("predictions")) for r in cli] == [bool(x) for x in out]
    # a line that is no JSON gets the class the file's name gives, since the file's readable records take it (no
    # word), as evaluate counts it
    assert (cli[0]["key_id"], cli[0]["label"], cli[2]["key_id"], cli[2]["label"]) == ("7", "cat", None, "gaps")
    assert cli[3]["label"] == "gaps" and "error" in cli[0]  # no word: the file's name, as for a readable record
    first = next(e for e in errors if str(e).startswith(f"{path}:1:"))
    assert isinstance(first, FormatError) and (first.key_id, first.label) == ("7", "cat")
    folder = tmp_path / "folder"
    folder.mkdir()
    shutil.copy(path, folder / "gaps.ndjson")
    (folder / "noise.svg").write_text("not an svg")  # an SVG file is one record: unreadable, it gets []
    (folder / "meta.json").write_text('{"name": "meta"}')  # no sketch file: an error about the file, no result
    errors.clear()
    assert rounded(clf.predict_batch(folder, top_k=2, on_error=errors.append)) == rounded(out) + [[]]
    assert len(errors) == 7 and sum("noise.svg" in str(e) for e in errors) == 1
    # in the walk's order (gaps.ndjson, meta.json, noise.svg), the error about a whole file among them
    assert [Path(getattr(e, "source", None) or "").name for e in errors] == [
        "gaps.ndjson"] * 5 + ["meta.json", "noise.svg"]


DEGENERATE = Sketch.from_strokes([[[0, 255] * 5000, [0, 255] * 5000]])  # ~3.6M px of ink: simplification refuses
TOO_LONG = "3,605,884 px of strokes in the 255 frame (limit 2,000,000)"  # why, after "drawing too long to simplify: "


@pytest.mark.parametrize("as_json", [True, False])
def test_cli_reports_a_refused_drawing_like_an_unreadable_one(tiny_checkpoint, tmp_path, capsys, as_json):
    """A drawing that parses but cannot be simplified is reported on stderr with its file, index and line, as an
    unreadable record is, and stays out of the table; as JSON it has its line in place, its error placed as the
    reader places a parse error. Its chunk still runs."""
    path = tmp_path / "mixed.ndjson"
    good = json.dumps({"drawing": shapes()[0].to_lists()})
    refused = json.dumps({"key_id": "7", "word": "apple", "drawing": DEGENERATE.to_lists()})
    path.write_text("\n".join([good, "", refused, "not json", good]) + "\n")  # records 0-3 on lines 1, 3, 4, 5
    args = ["predict", str(path), "--checkpoint", str(tiny_checkpoint), *(["--json"] if as_json else [])]
    assert main(args) == 1
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert sorted(err[:2]) == [
        f"sketchgraph predict: skipped {path} [1]: {path}:3: drawing too long to simplify: {TOO_LONG}",
        f"sketchgraph predict: skipped {path} [2]: {path}:4: invalid JSON (Expecting value, column 1)",
    ]
    assert err[2:] == ["sketchgraph predict: 2 sketches could not be classified"]
    if as_json:
        records = [json.loads(x) for x in captured.out.splitlines()]
        assert [(r["index"], r["key_id"], r["label"], "error" in r) for r in records] == [
            (0, None, "mixed", False), (1, "7", "apple", True), (2, None, "mixed", True), (3, None, "mixed", False)]
        assert records[1]["error"] == f"{path}:3: drawing too long to simplify: {TOO_LONG}"
        assert records[0]["predictions"] == records[3]["predictions"] and len(records[0]["predictions"]) == 5
    else:
        assert [line.split(" [")[1][0] for line in captured.out.splitlines() if line.startswith(str(path))] == [
            "0", "3"]
        assert "error" not in captured.out and "too long" not in captured.out


@pytest.mark.parametrize("threads", [1, 2])
def test_unusable_drawings_are_named(clf, monkeypatch, threads):
    """predict_batch names the item; predict_usable answers the others as if alone; the threaded
    preprocessing numbers problems across its runs."""
    import sketchgraph.data.flat as flat_module

    monkeypatch.setattr(flat_module, "MIN_THREAD_SKETCHES", 2)
    clf = SketchClassifier(clf.model, clf.classes, preprocessing=clf.preprocessing, graph_spec=clf.graph_spec,
                           threads=threads)
    items = shapes() + [DEGENERATE] + shapes() + [DEGENERATE]  # positions 5 and 11
    with pytest.raises(SketchError, match=r"item 5: drawing too long to simplify"):
        clf.predict_batch(items)
    with pytest.raises(SketchError, match=r"^drawing too long to simplify") as caught:
        clf.predict(DEGENERATE)
    assert isinstance(caught.value, UnusableSketchesError) and list(caught.value.problems) == [0]
    ranked, problems = clf.predict_usable(items, top_k=3)
    assert sorted(problems) == [5, 11] and ranked[5] is None and ranked[11] is None
    assert all(same(ranked[i], clf.predict(items[i], top_k=3), tol=1e-5) for i in range(12) if i not in (5, 11))
    with pytest.raises(UnusableSketchesError, match=r"^sketch 5: .* \(and 1 more\)$"):
        clf.probabilities(items)


def test_cap_policy_from_checkpoint_and_override(tiny_checkpoint, tmp_path):
    import json
    import shutil

    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)
    assert SketchClassifier.from_pretrained(ckpt).preprocessing.cap == "truncate"
    config = json.loads((ckpt / "config.json").read_text())
    config["inference_preprocessing"] = {"cap": "adapt"}
    (ckpt / "config.json").write_text(json.dumps(config))
    assert SketchClassifier.from_pretrained(ckpt).preprocessing.cap == "adapt"
    assert SketchClassifier.from_pretrained(ckpt, cap="truncate").preprocessing.cap == "truncate"


def test_shipped_checkpoint_uses_adaptive_cap():
    assert SketchClassifier.from_pretrained("spg20").preprocessing.cap == "adapt"


def test_shipped_classes_are_quickdraw_words():
    """Labels equal the ``word`` of Google's Quick, Draw! files (``alarm clock``, not SPG's ``alarm_clock``),
    so a prediction can be compared with a RAW record's word as it is."""
    from data_prep.quickdraw import CATEGORIES

    classes = SketchClassifier.from_pretrained("spg20").classes
    assert len(classes) == 20 and set(classes) <= set(CATEGORIES)
    assert {"alarm clock", "coffee cup", "ice cream"} <= set(classes)


# ------------------------------------------------------------------------------------------ review fixes
def test_module_docstring_example_is_what_the_shipped_checkpoint_says():
    import doctest

    (test,) = [t for t in doctest.DocTestFinder().find(predict_mod) if t.name == "sketchgraph.predict"]
    runner = doctest.DocTestRunner()
    runner.run(test)
    assert runner.summarize(verbose=False) == doctest.TestResults(failed=0, attempted=3)


def test_cli_reads_gzipped_ndjson_and_folders_holding_it(tiny_checkpoint, tmp_path, capsys):
    """Google's files are often kept gzipped: a named .ndjson.gz and one in a folder are read as they are
    decompressed, a bad line reported with its decompressed line number."""
    import gzip

    plain = tmp_path / "plain.ndjson"
    write_ndjson(shapes()[:2], plain)
    lines = plain.read_text().splitlines()
    named = tmp_path / "named.ndjson.gz"
    named.write_bytes(gzip.compress("\n".join([lines[0], "not json", lines[1]]).encode()))
    (tmp_path / "folder" / "sub").mkdir(parents=True)
    walked = tmp_path / "folder" / "sub" / "walked.ndjson.gz"
    walked.write_bytes(gzip.compress(plain.read_bytes()))
    args = ["predict", str(plain), str(named), str(tmp_path / "folder"), "--checkpoint", str(tiny_checkpoint),
            "--json", "--top-k", "3"]
    assert main(args) == 1
    captured = capsys.readouterr()
    records = [json.loads(x) for x in captured.out.splitlines()]
    assert [(r["file"], r["index"]) for r in records] == [
        (str(plain), 0), (str(plain), 1), (str(named), 0), (str(named), 1), (str(named), 2), (str(walked), 0),
        (str(walked), 1)]
    assert records[3]["error"] == f"{named}:2: invalid JSON (Expecting value, column 1)"
    expected = [r["predictions"] for r in records[:2]]
    assert [records[2]["predictions"], records[4]["predictions"]] == expected
    assert [r["predictions"] for r in records[5:]] == expected
    assert f"skipped {named} [1]: {named}:2: invalid JSON" in captured.err


@pytest.mark.parametrize("read_ahead", [True, False])
def test_batch_a_missing_path_item_names_its_position(clf, tmp_path, read_ahead):
    small = SketchClassifier(clf.model, clf.classes, preprocessing=clf.preprocessing, graph_spec=clf.graph_spec,
                             read_ahead=read_ahead)
    missing = tmp_path / "nope.ndjson"
    with pytest.raises(SketchError, match=rf"^item 1: no such file: {re.escape(str(missing))}$"):
        small.predict_batch([shapes()[0], missing, shapes()[1]])


@pytest.mark.parametrize("bad, message", [
    ([np.array([["1", "2"], ["3", "4"]])], r"stroke 0: coordinates must be numbers, found a str array \(<U1\)"),
    ([np.array([[True, False], [False, True]])], r"stroke 0: coordinates must be numbers, found a bool array"),
    ({"drawing": [[np.array(["1", "2"]), np.array([3, 4])]]}, r"stroke 0: coordinates must be numbers, found a str"),
    (np.array([[10, 20, False], [30, 40, True]], dtype=object), r"stroke-3 data: .*found a bool$"),
    (np.array([["10", "20", "0"], ["30", "40", "1"]]), r"stroke-3 data: .*found a str array"),
])
def test_numpy_inputs_must_hold_numbers_as_lists_must(clf, bad, message):
    """numpy reads "1" and True as numbers: arrays of strings, booleans or other non-numbers are refused as list
    input is, not classified."""
    with pytest.raises(SketchError, match=message):
        clf.predict(bad)


@pytest.mark.parametrize("offset", [2**20 + 1.0, 1.6e7])
def test_coordinates_between_2_20_and_2_24_keep_their_precision(clf, offset):
    """Before, only offsets beyond 2**24 were rebased: at 1.6e7 float32 rounded the drawing to whole pixels."""
    lists = [[[0.2 * x for x in xs], [0.2 * y for y in ys]] for xs, ys in shapes()[2].to_lists()]  # ~50 px wide
    moved = [[[x + offset for x in xs], [y + offset for y in ys]] for xs, ys in lists]
    assert same(clf.predict(moved), clf.predict(lists), tol=1e-5)
    arrays = [np.array(stroke, np.float64).T for stroke in moved]
    assert same(clf.predict(arrays), clf.predict(lists), tol=1e-5)


def test_predict_batch_of_one_padded_array_says_to_pass_list_arr(clf):
    sketches = shapes()[:2]
    padded = np.stack([sk.to_stroke5(max_len=100) for sk in sketches])
    with pytest.raises(SketchError, match=r"shape \(2, 100, 5\): for its 2 stroke-5 sketches pass list\(arr\)$"):
        clf.predict_batch(padded)
    assert all(same(a, clf.predict(sk), tol=1e-4) for a, sk in zip(clf.predict_batch(list(padded)), sketches))


@pytest.mark.parametrize("text, kind", [("null", "null"), ("42", "number"), ("true", "boolean"),
                                        ('"cat"', "string")])
def test_json_text_that_is_no_sketch_is_neither_a_sketch_nor_a_file(clf, tmp_path, monkeypatch, text, kind):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SketchError, match=rf"^{re.escape(repr(text))} is neither a JSON sketch \(it is a JSON {kind}; "
                                          r"a sketch is an object \{\"drawing\": \.\.\.\} or a list of strokes\) "
                                          r"nor an existing file$"):
        clf.predict(text)
    write_ndjson(shapes()[:1], tmp_path / text)  # a file of that name is that file
    assert same(clf.predict(text), clf.predict(shapes()[0]), tol=1e-4)


def test_input_paths_expand_the_home_folder(clf, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write_ndjson(shapes()[:2], tmp_path / "x.ndjson")
    assert same(clf.predict("~/x.ndjson"), clf.predict(shapes()[0]), tol=1e-4)
    got = clf.predict_batch("~/x.ndjson")
    assert len(got) == 2 and same(got[1], clf.predict(shapes()[1]), tol=1e-4)
    assert same(clf.predict_batch(["~/x.ndjson"])[0], got[0])


@pytest.mark.parametrize("value", ["0", "-3", "2.5", "five"])
def test_cli_top_k_must_be_a_positive_integer(sketch_file, capsys, value):
    with pytest.raises(SystemExit) as exited:
        main(["predict", str(sketch_file), "--top-k", value])
    assert exited.value.code == 2
    assert f"error: argument --top-k: expected a positive integer, got {value!r}\n" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["x" * 10_000, "a" * 300, "a,b\n" * 2_000])
def test_a_string_too_long_for_a_path_says_so_without_echoing_it(clf, text):
    """A long string that is not JSON (a malformed CSV or JSON text, say) is no path: a ``SketchError`` saying so,
    with a short preview of it (before: a bare ``OSError`` ENAMETOOLONG carrying every character)."""
    with pytest.raises(SketchError, match=rf"^{re.escape(repr(text[:40]))}\.\.\. \({len(text):,} characters\) is "
                                          r"neither a JSON sketch nor a file name \(too long for a path\)$") as info:
        clf.predict(text)
    assert len(str(info.value)) < 200
    with pytest.raises(SketchError, match=r"^item 0: .* \(too long for a path\)$"):
        clf.predict_batch([text])


def test_a_pipe_is_refused_saying_to_save_it_to_a_file(clf, tmp_path):
    """A pipe cannot be sniffed and then read from its start: refused with a message saying so (before: "contains no
    sketches", although it held one)."""
    read, write = os.pipe()
    try:
        os.write(write, (json.dumps({"drawing": shapes()[0].to_lists()}) + "\n").encode())
        os.close(write)
        with pytest.raises(SketchError, match=rf"^/dev/fd/{read} is a pipe, which cannot be read twice .*: save it "
                                              r"to a file and pass that \(sketchgraph predict reads standard input "
                                              r"given as -\)$"):
            clf.predict(f"/dev/fd/{read}")
    finally:
        os.close(read)
    fifo = tmp_path / "named.ndjson"
    os.mkfifo(fifo)  # never opened: refused from its type
    for call in (clf.predict, clf.predict_batch):
        with pytest.raises(SketchError, match="is a pipe"):
            call(fifo)


def test_cli_refuses_a_pipe_before_loading_the_model(tmp_path, capsys):
    fifo = tmp_path / "named.ndjson"
    os.mkfifo(fifo)
    assert main(["predict", str(fifo), "--checkpoint", "no-such-checkpoint"]) == 1  # no "not found": nothing loaded
    err = capsys.readouterr().err
    assert err.startswith(f"sketchgraph predict: error: {fifo} is a pipe, which cannot be read twice")


def feed_stdin(monkeypatch, data: bytes) -> io.BytesIO:
    """Standard input holding ``data`` (``sys.stdin.buffer`` is what ``sketchgraph predict -`` reads)."""
    raw = io.BytesIO(data)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(raw))
    return raw


def test_cli_reads_standard_input_as_a_file_named_dash(tiny_checkpoint, sketch_file, monkeypatch, tmp_path, capsys):
    """``-`` is standard input, read like a file and named ``-`` in results and messages, among other files; a record
    without a class of its own gets none (not one made up from the saved copy's name), and the copy is removed."""
    good = shapes()[3]
    lines = [json.dumps({"drawing": good.to_lists()}), "not json", json.dumps({"key_id": "k9", "drawing": []})]
    feed_stdin(monkeypatch, ("\n".join(lines) + "\n").encode())
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    args = ["predict", "-", str(sketch_file), "--checkpoint", str(tiny_checkpoint), "--json", "--top-k", "2"]
    assert main(args) == 1
    out, err = capsys.readouterr()
    got = [json.loads(line) for line in out.splitlines()]
    clf = SketchClassifier.from_pretrained(tiny_checkpoint)
    assert got[:3] == [
        {"file": "-", "index": 0, "key_id": None, "label": None,
         "predictions": [p.to_dict() for p in clf.predict(good, top_k=2)]},
        {"file": "-", "index": 1, "key_id": None, "label": None,
         "error": "-:2: invalid JSON (Expecting value, column 1)"},
        {"file": "-", "index": 2, "key_id": "k9", "label": None, "error": "-:3: empty drawing (no points)"},
    ]
    assert [(r["file"], r["index"]) for r in got[3:]] == [(str(sketch_file), i) for i in range(3)]
    assert "sketchgraph predict: skipped - [1]: -:2: invalid JSON" in err
    assert not list(tmp_path.glob("sketchgraph-stdin-*"))  # the saved copy is gone


@pytest.mark.parametrize("kind", ["ndjson.gz", "svg", "npz"])
def test_cli_standard_input_in_any_format(tiny_checkpoint, tmp_path, monkeypatch, capsys, kind):
    """The format of standard input is told from its content, as a file's is; a class or key id the data holds is
    kept."""
    sketches = [s.replace(label="face", key_id=f"k{i}") for i, s in enumerate(shapes()[:2])]
    path = tmp_path / f"in.{kind}"
    if kind == "svg":
        sketches = sketches[:1]
        write_svg(sketches[0], path)
    elif kind == "npz":
        write_stroke3_npz(path, train=sketches)
    else:
        write_ndjson(sketches, path)
    feed_stdin(monkeypatch, path.read_bytes())
    assert main(["predict", "-", "--checkpoint", str(tiny_checkpoint), "--json", "--top-k", "1"]) == 0
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    clf = SketchClassifier.from_pretrained(tiny_checkpoint)
    assert [r["predictions"] for r in got] == [[p.to_dict() for p in clf.predict(s, top_k=1)] for s in sketches]
    assert {r["file"] for r in got} == {"-"}
    if kind != "npz":  # stroke-3 holds no class or key id
        assert [(r["label"], r["key_id"]) for r in got] == [(s.label, s.key_id) for s in sketches]


def test_cli_standard_input_empty_or_given_twice(tiny_checkpoint, sketch_file, monkeypatch, capsys):
    feed_stdin(monkeypatch, b"")
    assert main(["predict", "-", "--checkpoint", str(tiny_checkpoint), "--json"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out) == {"file": "-", "index": None, "key_id": None, "label": None,
                               "error": "nothing came on standard input"}
    assert "sketchgraph predict: skipped -: nothing came on standard input" in err
    raw = feed_stdin(monkeypatch, b"{}")
    assert main(["predict", "-", str(sketch_file), "-", "--checkpoint", "no-such-checkpoint"]) == 1
    assert "error: - (standard input) is given 2 times; it can be read once" in capsys.readouterr().err
    assert main(["predict", "-", "missing.ndjson", "--checkpoint", "no-such-checkpoint"]) == 1
    assert "error: no such sketch file: missing.ndjson" in capsys.readouterr().err
    assert raw.tell() == 0  # refused before standard input was read


@pytest.mark.parametrize("given", [None, ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16"),
                                   ("DNNL_PRIMITIVE_CACHE_CAPACITY", "16")])
def test_cli_turns_off_the_kernel_cache_for_its_run_unless_the_user_set_it(tiny_checkpoint, sketch_file, monkeypatch,
                                                                           capsys, given):
    """``sketchgraph predict`` and ``evaluate`` run model calls of ever new shapes, whose compiled GELU kernels
    oneDNN would keep (``sketchgraph.device.no_kernel_cache``): off while they run, then the variable is gone again;
    a size the user set, under either of oneDNN's names, is kept."""
    from sketchgraph import evaluate as evaluate_mod
    from sketchgraph.device import KERNEL_CACHE_ENV, KERNEL_CACHE_ENVS

    for name in KERNEL_CACHE_ENVS:
        monkeypatch.delenv(name, raising=False)
    if given:
        monkeypatch.setenv(*given)
    seen = []
    loading = SketchClassifier.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        seen.append(os.environ.get(KERNEL_CACHE_ENV))
        return loading(cls, *args, **kwargs)

    def stop(*args, **kwargs):
        seen.append(os.environ.get(KERNEL_CACHE_ENV))
        raise SketchError("stopped here")

    monkeypatch.setattr(SketchClassifier, "from_pretrained", classmethod(spy))
    monkeypatch.setattr(evaluate_mod, "evaluate", stop)
    assert main(["predict", str(sketch_file), "--checkpoint", str(tiny_checkpoint)]) == 0
    assert main(["evaluate", str(tiny_checkpoint), str(sketch_file)]) == 1
    want = given[1] if given and given[0] == KERNEL_CACHE_ENV else None if given else "0"
    assert seen == [want, want]
    assert os.environ.get(KERNEL_CACHE_ENV) == (given[1] if given and given[0] == KERNEL_CACHE_ENV else None)
    capsys.readouterr()


def test_cli_standard_input_keeps_a_class_or_key_id_of_its_own_whatever_it_is(tiny_checkpoint, monkeypatch, capsys):
    """No class or key id is taken from the saved copy's (random) name (``from_name=False``), and a record's own,
    even ``stdin``, stays."""
    record = {"word": "stdin", "key_id": "stdin", "drawing": shapes()[0].to_lists()}
    feed_stdin(monkeypatch, (json.dumps(record) + "\n").encode())
    assert main(["predict", "-", "--checkpoint", str(tiny_checkpoint), "--json", "--top-k", "1"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["file"], got["key_id"], got["label"]) == ("-", "stdin", "stdin")


def test_cli_a_message_naming_the_saved_copy_names_it_dash(tiny_checkpoint, monkeypatch, capsys):
    import gzip

    feed_stdin(monkeypatch, gzip.compress(example_path("apple").read_bytes()))  # gzip-compressed SVG: refused
    assert main(["predict", "-", "--checkpoint", str(tiny_checkpoint), "--json"]) == 1
    out, err = capsys.readouterr()
    assert "stdin-" not in out + err and "skipped -: " in err


class _Unreadable(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise OSError(9, "Bad file descriptor")


@pytest.mark.parametrize("stdin, says", [
    (None, "standard input is closed: nothing to read for -"),
    (io.TextIOWrapper(io.BufferedReader(_Unreadable())), "cannot read standard input: Bad file descriptor"),
])
def test_cli_standard_input_closed_or_unreadable_is_one_line(tiny_checkpoint, monkeypatch, capsys, stdin, says):
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["predict", "-", "--checkpoint", str(tiny_checkpoint)]) == 1
    err = capsys.readouterr().err
    assert f"sketchgraph predict: error: {says}" in err and "Traceback" not in err


def test_cli_a_wrong_checkpoint_is_said_before_standard_input_is_read(monkeypatch, capsys):
    raw = feed_stdin(monkeypatch, b"{}")
    assert main(["predict", "-", "--checkpoint", "no-such-checkpoint"]) == 1
    assert "no-such-checkpoint" in capsys.readouterr().err and raw.tell() == 0


def _sketchgraph_predict_stdin(tiny_checkpoint, tmp_path, **popen) -> subprocess.Popen:
    env = {**os.environ, "TMPDIR": str(tmp_path), "DGLBACKEND": "pytorch"}
    return subprocess.Popen([sys.executable, "-m", "sketchgraph", "predict", "-", "--checkpoint", str(tiny_checkpoint),
                             "--json", "--top-k", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            **popen)


def _wait_for(condition, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_cli_killed_while_reading_standard_input_leaves_no_copy(tiny_checkpoint, tmp_path):
    """SIGTERM (``kill``, ``timeout``) ends the run as Ctrl-C does: the saved part of standard input is removed."""
    child = _sketchgraph_predict_stdin(tiny_checkpoint, tmp_path, stdin=subprocess.PIPE)
    try:
        child.stdin.write(b'{"drawing": [[[0, 40, 80], [0, 30, 0]]]}\n')
        child.stdin.flush()
        _wait_for(lambda: any(tmp_path.glob("sketchgraph-stdin-*/stdin-*")))  # saving, standard input still open
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=60) == 143
    finally:
        child.kill()
        child.communicate()
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_cli_one_ctrl_d_ends_standard_input_on_a_terminal(tiny_checkpoint, tmp_path):
    import pty

    leader, follower = pty.openpty()
    child = _sketchgraph_predict_stdin(tiny_checkpoint, tmp_path, stdin=follower)
    os.close(follower)
    try:
        prompt = bytearray()

        def prompted() -> bool:
            if select.select([child.stderr], [], [], 0.1)[0]:
                prompt.extend(os.read(child.stderr.fileno(), 4096))
            return b"end with Ctrl-D" in prompt

        _wait_for(prompted)  # the model is loaded and standard input is being read
        os.write(leader, b'{"drawing": [[[0, 40, 80], [0, 30, 0]]]}\n')
        os.write(leader, b"\x04")  # one Ctrl-D at the start of a line: the end of the input
        out, _ = child.communicate(timeout=60)
    finally:
        child.kill()
        os.close(leader)
    assert child.returncode == 0 and json.loads(out)["file"] == "-"


@pytest.mark.slow
def test_cli_reads_a_real_pipe(tiny_checkpoint):
    """``... | sketchgraph predict -`` in a real process."""
    record = json.dumps({"word": "face", "drawing": shapes()[0].to_lists()}) + "\n"
    done = subprocess.run([sys.executable, "-m", "sketchgraph", "predict", "-", "--checkpoint", str(tiny_checkpoint),
                           "--json", "--top-k", "1"], input=record.encode(), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    (got,) = [json.loads(line) for line in done.stdout.decode().splitlines()]
    want = SketchClassifier.from_pretrained(tiny_checkpoint).predict(shapes()[0], top_k=1)
    assert (got["file"], got["label"], got["predictions"][0]["label"]) == ("-", "face", want[0].label)


@pytest.mark.parametrize("value", ["0", "-3", "2.5", "five"])
def test_cli_batch_size_must_be_a_positive_integer(sketch_file, capsys, value):
    """Checked by argparse (exit status 2, nothing loaded), as ``--top-k`` is; before: exit 1 after loading."""
    with pytest.raises(SystemExit) as exited:
        main(["predict", str(sketch_file), "--batch-size", value, "--checkpoint", "no-such-checkpoint"])
    assert exited.value.code == 2
    assert f"error: argument --batch-size: expected a positive integer, got {value!r}\n" in capsys.readouterr().err


def test_predict_docstring_says_a_path_means_its_first_sketch():
    assert "*first* sketch" in SketchClassifier.predict.__doc__


@pytest.mark.parametrize("env, prefix", [
    ({}, "sketchgraph predict: error: "),
    ({"WORLD_SIZE": "1", "RANK": "0"}, "sketchgraph predict: error: "),
    ({"WORLD_SIZE": "2", "RANK": "1"}, "sketchgraph predict: error (rank 1 of 2): "),
])
def test_cli_errors_name_the_rank_under_torchrun(tmp_path, capsys, monkeypatch, env, prefix):
    """Under torchrun every process reports its own error: the copies say which rank each comes from."""
    from sketchgraph.cli import main

    for key in ("WORLD_SIZE", "RANK"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["predict", str(tmp_path / "nope.ndjson")]) == 1
    assert capsys.readouterr().err.startswith(prefix)


def test_classify_each_passes_an_exception_input_through_as_its_error(clf):
    """A reader's error passed in a record's place (``sketchgraph evaluate`` keeps the files' order so) fails with
    its own message and takes no model call; the records around it are classified."""
    good = shapes()[0]
    error = FormatError("empty drawing (no points)", source="a.ndjson", line=2)
    out = list(clf.classify_each([("a", good), ("b", error), ("c", good)], top_k=2))
    assert [tag for tag, *_ in out] == ["a", "b", "c"] and out[1][1] is error
    assert out[1][2] is None and out[1][3] == "a.ndjson:2: empty drawing (no points)"
    assert out[0][2] == out[2][2] and out[0][3] is None


def test_predict_batch_of_a_folder_without_sketch_files_is_an_error(clf, tmp_path):
    """It returned ``[]`` with no error, which reads as "nothing to classify" where the folder was the wrong one;
    the CLI already reported such a folder."""
    (tmp_path / "notes.txt").write_text("no sketches here")
    for on_error in (None, [].append):
        with pytest.raises(SketchError, match=rf"^{re.escape(str(tmp_path))}: no sketch files in this folder or below"):
            clf.predict_batch(tmp_path, on_error=on_error)


def test_an_empty_file_whose_name_tells_no_format_says_it_is_empty(clf, tmp_path):
    empty = tmp_path / "drawing"
    empty.write_bytes(b"")
    with pytest.raises(SketchError, match=rf"^{re.escape(str(empty))}: the file is empty: no sketches$"):
        clf.predict(empty)


def test_cli_on_a_prepared_dataset_says_to_evaluate_it(tiny_checkpoint, easy_prepared, capsys):
    """A prepared dataset's folder got "errors.jsonl: contains no sketches" and "meta.json: ... not a sketch file";
    now one line saying what it is and which command reads it."""
    assert main(["predict", str(easy_prepared), "--checkpoint", str(tiny_checkpoint)]) == 1
    err = capsys.readouterr().err
    assert err == (f"sketchgraph predict: skipped {easy_prepared}: a prepared dataset (meta.json, coords.npy), not "
                   f"sketch files: sketchgraph evaluate CHECKPOINT {easy_prepared} classifies it\n"
                   "sketchgraph predict: 1 file or part of a file could not be read\n")


def test_a_folder_where_one_sketch_belongs_says_to_pass_it_to_predict_batch_itself(clf, tmp_path):
    """In ``predict`` or as an item of ``predict_batch``'s list: the message suggested ``predict_batch(folder)``
    inside a ``predict_batch`` call; it now says to pass the folder itself, not in a list."""
    folder = re.escape(str(tmp_path))
    said = (rf"{folder} is a folder, where one sketch belongs: predict_batch\({re.escape(repr(str(tmp_path)))}\), "
            r"given the folder itself \(not in a list\), classifies every sketch in it$")
    with pytest.raises(SketchError, match="^" + said):
        clf.predict(tmp_path)
    with pytest.raises(SketchError, match="^item 0: " + said):
        clf.predict_batch([tmp_path])


def test_one_stroke_as_an_n_by_2_array_gets_a_hint(clf):
    points = np.array([[0, 0], [10, 10], [20, 5]], np.float32)
    with pytest.raises(FormatError, match=r"got shape \(3, 2\) \(points \(x, y\) of one stroke\? strokes go in a "
                                          r"list: \[array\] for one stroke, \[a, b\] for two\)$"):
        clf.predict(points)
    assert clf.predict([points]) == clf.predict([[[0, 10, 20], [0, 10, 5]]])  # the hint's form works


def test_cli_a_file_it_may_not_read_is_skipped_saying_why(tiny_checkpoint, sketch_file, tmp_path, monkeypatch, capsys):
    """A file the user may not read: skipped with the reason in words (as predict() says it), not Python's
    ``[Errno 13] Permission denied: 'x'``; the other files are classified and the exit status is 1."""
    denied_file = tmp_path / "noperm.ndjson"
    shutil.copy(sketch_file, denied_file)
    deny_reading(monkeypatch, denied_file)
    assert main(["predict", str(denied_file), str(sketch_file), "--checkpoint", str(tiny_checkpoint), "--json"]) == 1
    captured = capsys.readouterr()
    assert f"sketchgraph predict: skipped {denied_file}: cannot read it: Permission denied" in captured.err.splitlines()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert rows[0] == {"file": str(denied_file), "index": None, "key_id": None, "label": None,
                       "error": "cannot read it: Permission denied"}
    assert [r["file"] for r in rows[1:]] == [str(sketch_file)] * 3 and all("predictions" in r for r in rows[1:])


def test_cli_json_labels_an_unreadable_record_as_evaluate_counts_it(tiny_checkpoint, tmp_path, capsys):
    """A line that is no JSON shows no word: ``predict --json`` gave it no label where ``evaluate`` counts it under
    the class the file's name gives, when the file's readable records take that class (SPG's files, no word). In a
    file whose records carry words, it stays unlabelled, as in evaluate."""
    from sketchgraph.formats import write_ndjson

    a, b = shapes()[:2]
    named, worded = tmp_path / "circle_test.ndjson", tmp_path / "mixed.ndjson"
    write_ndjson([a.replace(label=None), b.replace(label=None)], named)
    write_ndjson([a.replace(label="circle"), b.replace(label="square")], worded)
    for path in (named, worded):
        lines = path.read_text().splitlines()
        path.write_text("\n".join(["not json", *lines]) + "\n")
    assert main(["predict", str(named), str(worded), "--checkpoint", str(tiny_checkpoint), "--json"]) == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(Path(r["file"]).name, r["index"], r["key_id"], r["label"], "error" in r) for r in rows] == [
        ("circle_test.ndjson", 0, None, "circle", True), ("circle_test.ndjson", 1, None, "circle", False),
        ("circle_test.ndjson", 2, None, "circle", False),
        ("mixed.ndjson", 0, None, None, True), ("mixed.ndjson", 1, None, "circle", False),
        ("mixed.ndjson", 2, None, "square", False)]


def test_cli_table_escapes_control_characters_in_names(tiny_checkpoint, sketch_file, tmp_path, capsys):
    """A file name holding a newline split a table entry over two lines (and an escape character would reach the
    terminal); the table escapes them, ``--json`` keeps the name as it is."""
    odd = tmp_path / "two\nlines\x1b[31m.ndjson"
    shutil.copy(sketch_file, odd)
    assert main(["predict", str(odd), "--checkpoint", str(tiny_checkpoint), "--top-k", "1"]) == 0
    heads = [line for line in capsys.readouterr().out.splitlines() if "[0]" in line]
    assert heads == [f"{tmp_path}/two\\nlines\\x1b[31m.ndjson [0]  label=two\\nlines\\x1b[31m"]
    assert main(["predict", str(odd), "--checkpoint", str(tiny_checkpoint), "--json", "--top-k", "1"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["file"] == str(odd)
    with open(odd, "a") as f:
        f.write("not json\n")
    assert main(["predict", str(odd), "--checkpoint", str(tiny_checkpoint), "--top-k", "1"]) == 1
    assert f"sketchgraph predict: skipped {tmp_path}/two\\nlines\\x1b[31m.ndjson [3]: " in capsys.readouterr().err
