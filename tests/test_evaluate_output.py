"""``sketchgraph evaluate`` on sketch files: what it keeps in memory, writes into ``--out`` and says on stderr and in
the summary (``sketchgraph.evaluate_files``)."""

from __future__ import annotations

import csv
import json
import math
import re
import tracemalloc

import numpy as np
import pytest
import torch

TINY_CLASSES = ["apple", "cat", "dog", "house", "sun"]  # the tiny_checkpoint fixture's
SHAPES_AS = {"circle": "apple", "square": "cat", "triangle": "dog", "house": "house", "star": "sun"}


def too_long(n: int) -> list:
    """A drawing the simplification refuses (millions of px of ink), its length growing with ``n``."""
    return [[[0, 255] * (5000 + n), [0, 255] * (5000 + n)]]


def write_lines(path, records):
    """An ndjson file of ``records`` (dicts, or text written as it is)."""
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def shape_records(n_per_class, seed=0, classes=SHAPES_AS):
    """Quick, Draw! RAW records of synthetic shapes, each with a ``word`` of the tiny checkpoint's classes."""
    from sketchgraph.synthetic import make_dataset, sketch_record

    sketches = make_dataset(n_per_class, seed=seed, classes=list(classes))
    return [{**sketch_record(sk, "raw"), "word": SHAPES_AS[sk.label]} for sk in sketches]


def ranked(probs: np.ndarray):
    """``predict``'s answer for one row of probabilities: every class, best first."""
    from sketchgraph.predict import Prediction

    order = np.argsort(-probs, kind="stable")
    return [Prediction(label=f"c{i}", score=float(probs[i]), index=int(i)) for i in order]


# ---------------------------------------------------------------------------------------------- memory, metrics
def test_the_tally_keeps_a_few_numbers_per_record_whatever_the_classes():
    """345 classes: a classified record costs a few bytes (its class, the predicted class, the true class's rank
    and its loss), not a row of probabilities (2,760 bytes in float64) nor a CSV row."""
    from sketchgraph.evaluate_files import Tally
    from sketchgraph.sketch import Sketch

    C, N = 345, 4000
    tally = Tally([f"c{i}" for i in range(C)], lambda message: None)
    sketch = Sketch([np.array([[0.0, 0.0], [1.0, 1.0]])], label="c3", key_id="1234567890123456")
    preds = ranked(np.random.default_rng(0).dirichlet(np.ones(C)).astype(np.float32))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(N):
            tally.classified("airplane.ndjson", n, sketch, preds)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert tally.records == len(tally.y_true) == N
    assert grown / N < 64, f"{grown / N:.0f} bytes per record"


def test_the_file_metrics_are_classification_metrics_of_the_log_probabilities():
    """The report kept from four numbers per record is ``classification_metrics``'s on the ``(M, C)``
    log-probabilities: top-k, confusion matrix, per-class figures, scikit-learn's report; the loss to 1e-9."""
    from sketchgraph.evaluate import classification_metrics
    from sketchgraph.evaluate_files import Tally, _metrics
    from sketchgraph.evaluate_inputs import ReadCounts
    from sketchgraph.sketch import Sketch

    C, M = 7, 300
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.full(C, 0.3), size=M).astype(np.float32)
    labels = rng.integers(0, C - 1, size=M)  # the last class has no sample
    classes = [f"c{i}" for i in range(C)]
    tally = Tally(classes, lambda message: None)
    for n, (row, label) in enumerate(zip(probs, labels)):
        sketch = Sketch([np.array([[0.0, 0.0], [1.0, 1.0]])], label=f"c{label}")
        tally.classified("a.ndjson", n, sketch, ranked(row))
    ks = (1, 2, 5, 10)
    got = _metrics(tally, ks, ReadCounts())
    logits = torch.from_numpy(probs.astype(np.float64)).clamp_min(2.0 ** -149).log()
    want = classification_metrics(logits, torch.from_numpy(labels), classes, ks=ks, present=list(range(C - 1)))
    assert got["loss"] == pytest.approx(want.pop("loss"), rel=1e-9)
    assert {k: got[k] for k in want} == want
    assert got["top1_counting_unclassified_as_wrong"] == got["top1"] == np.mean(probs.argmax(1) == labels)
    assert got["classes_not_in_files"] == ["c6"] and got["dataset_classes"] == classes[:-1]


def test_prepared_metrics_take_the_rank_of_each_label():
    """``classification_metrics`` is ``metrics_from_ranks`` of the top-1, the rank of the label (the number of
    logits above it, ``max(ks)`` when it is not among the best ``max(ks)``) and the cross-entropy."""
    from sketchgraph.evaluate import classification_metrics, metrics_from_ranks

    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0], [0.0, 3.0, 2.0, 1.0]])
    labels = torch.tensor([0, 0, 3])
    classes = ["a", "b", "c", "d"]
    report = classification_metrics(logits, labels, classes, ks=(1, 2))
    loss = torch.nn.functional.cross_entropy(logits, labels).item()
    same = metrics_from_ranks(np.array([0, 0, 3]), np.array([0, 3, 1]), np.array([0, 2, 2]), loss, classes, ks=(1, 2))
    assert report == same and (report["top1"], report["top2"]) == (1 / 3, 1 / 3)
    assert metrics_from_ranks(np.array([0, 0, 3]), np.array([0, 3, 1]), np.array([0, 3, 2]), loss, classes,
                              ks=(1, 4))["top4"] == 1.0


def test_predictions_are_written_as_they_come(tiny_checkpoint, tmp_path):
    """predictions.csv's rows go to a temporary file in ``--out`` while the records are classified (none is held
    until the end), renamed to predictions.csv once the run is done."""
    from sketchgraph.evaluate import evaluate

    records = shape_records(100, seed=2)  # 500 records: many more rows than a file's buffers hold
    path = write_lines(tmp_path / "a.ndjson", [*records, {"word": "cat", "drawing": []}])
    out = tmp_path / "eval"
    seen = []

    def warn(message):  # the last record's error: every row before it is on disk
        seen.append(message)
        temporary = [p for p in out.iterdir() if p.name.startswith(".predictions.csv.")]
        assert len(temporary) == 1 and not (out / "predictions.csv").exists()
        seen.append(temporary[0].read_text(encoding="utf-8").count("\n"))

    from sketchgraph.evaluate_files import evaluate_files

    evaluate_files(tiny_checkpoint, [path], out=out, progress=False, warn=warn, batch_size=64)
    assert seen[0].startswith(f"skipped {path} [500]: ") and 250 < seen[1] <= 501
    rows = list(csv.DictReader((out / "predictions.csv").open(encoding="utf-8")))
    assert [r["index"] for r in rows] == [str(i) for i in range(501)] and rows[-1]["correct"] == "0"
    assert sorted(p.name for p in out.iterdir()) == ["confusion.png", "confusions.csv", "predictions.csv",
                                                     "report.json"]
    assert evaluate(tiny_checkpoint, [path], progress=False)["num_samples"] == 500


# ---------------------------------------------------------------------------------------------- --out
def test_an_interrupted_run_leaves_no_earlier_report_beside_newer_files(tiny_checkpoint, tmp_path, monkeypatch):
    """Before writing, a run removes the files an earlier run left in ``--out`` and writes report.json last: when
    a later write fails, ``--out`` holds no report.json (nor an earlier predictions.csv), and no temporary file."""
    import sketchgraph.evaluate_files as evaluate_files
    from sketchgraph.evaluate import evaluate

    first = write_lines(tmp_path / "first.ndjson", shape_records(2, seed=3))
    second = write_lines(tmp_path / "second.ndjson", shape_records(3, seed=4))
    out = tmp_path / "eval"
    evaluate(tiny_checkpoint, [first], out=out, progress=False)
    assert json.loads((out / "report.json").read_text())["num_samples"] == 10

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(evaluate_files, "write_confusions_csv", broken)
    with pytest.raises(OSError, match="disk full"):
        evaluate(tiny_checkpoint, [second], out=out, progress=False)
    assert [p.name for p in out.iterdir()] == ["confusion.png"]  # the second run's, written before the failure
    monkeypatch.undo()
    report = evaluate(tiny_checkpoint, [second], out=out, progress=False)
    assert json.loads((out / "report.json").read_text())["num_samples"] == report["num_samples"] == 15


def test_a_run_that_fails_before_writing_keeps_the_earlier_files(tiny_checkpoint, tmp_path):
    """A run with nothing to count writes nothing: an earlier run's files stay as they were, and a new ``--out``
    folder is not left behind."""
    from sketchgraph.errors import SketchError
    from sketchgraph.evaluate import evaluate

    good = write_lines(tmp_path / "good.ndjson", shape_records(1, seed=5))
    moon = write_lines(tmp_path / "moon.ndjson", [{"word": "moon", "drawing": shape_records(1)[0]["drawing"]}])
    out = tmp_path / "eval"
    evaluate(tiny_checkpoint, [good], out=out, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(SketchError, match="no record is of one of the model's classes"):
        evaluate(tiny_checkpoint, [moon], out=out, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    with pytest.raises(SketchError):
        evaluate(tiny_checkpoint, [moon], out=tmp_path / "new" / "eval", progress=False)
    assert not (tmp_path / "new").exists()


def test_a_prepared_dataset_run_removes_the_predictions_of_a_files_run(tiny_checkpoint, tmp_path):
    """The prepared-dataset mode writes no predictions.csv, and removes one an earlier run on files left there."""
    from sketchgraph.cli import main
    from sketchgraph.evaluate import evaluate

    raw = tmp_path / "raw"
    raw.mkdir()
    records = shape_records(2, seed=6)
    for word in TINY_CLASSES:
        write_lines(raw / f"{word}_test.ndjson", [r for r in records if r["word"] == word])
    assert main(["prepare", str(raw), "--out", str(tmp_path / "prepared"), "--workers", "1"]) == 0
    out = tmp_path / "eval"
    evaluate(tiny_checkpoint, raw, out=out, progress=False)
    assert (out / "predictions.csv").is_file()
    report = evaluate(tiny_checkpoint, tmp_path / "prepared", "test", out=out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["confusion.png", "confusions.csv", "report.json"]
    assert json.loads((out / "report.json").read_text())["files"] == report["files"]
    assert "dataset_fingerprint" in report and "predictions_csv" not in report["files"]


# ---------------------------------------------------------------------------------------------- classes
def test_classes_without_records_or_without_a_classified_record_are_reported(tiny_checkpoint, tmp_path, capsys):
    """``classes_not_in_files`` names the model's classes the files hold no record of, and the summary says so; a
    class whose records could all not be classified (sun) is in ``classes_without_samples`` and
    ``per_class_strict``, which breaks the strict top-1 down per class."""
    from sketchgraph.cli import main

    records = [r for r in shape_records(2, seed=7) if r["word"] in ("apple", "cat")]
    path = write_lines(tmp_path / "a.ndjson", [*records, {"word": "sun", "drawing": too_long(0)},
                                               {"word": "cat", "drawing": []}])
    assert main(["evaluate", str(tiny_checkpoint), str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["classes_not_in_files"] == ["dog", "house"]
    assert report["dataset_classes"] == ["apple", "cat", "sun"] and report["classes_without_samples"] == ["sun"]
    strict = report["per_class_strict"]
    assert list(strict) == ["apple", "cat", "sun"]
    assert strict["sun"] == {"records": 1, "classified": 0, "correct": 0, "top1": 0.0}
    assert strict["cat"]["records"] == 3 and strict["cat"]["classified"] == 2
    assert sum(s["correct"] for s in strict.values()) / sum(s["records"] for s in strict.values()) == pytest.approx(
        report["top1_counting_unclassified_as_wrong"])
    assert main(["evaluate", str(tiny_checkpoint), str(path), "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "the files hold 3 of the model's 5 classes; none of: dog, house" in lines
    assert ("sun: none of its 1 sketch could be classified (left out of the per-class figures; counted as wrong in "
            "the strict top-1, see 'per_class_strict')") in lines
    assert not any(line.startswith("no samples of") for line in lines)


# ---------------------------------------------------------------------------------------------- stderr
def test_skipped_records_are_named_ten_per_reason_and_counted(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    """25 empty drawings and 12 too long ones (each of its own length): stderr names the first 10 of each reason,
    then says how many more there were; the report counts each reason (numbers left out, so the lengths group),
    and the summary lists them. The messages are written above the progress bar, never after it on its line."""
    import sys

    from sketchgraph.cli import main

    good = shape_records(1, seed=8)
    lines = [*good, *({"word": "cat", "drawing": []} for _ in range(25)),
             *({"word": "moon" if n % 2 else "dog", "drawing": too_long(n)} for n in range(12))]
    path = write_lines(tmp_path / "bad.ndjson", lines)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal: the bar is drawn
    assert main(["evaluate", str(tiny_checkpoint), str(path), "--out", str(tmp_path / "eval")]) == 0
    captured = capsys.readouterr()
    err = captured.err
    empty, long_ = "empty drawing (no points)", "drawing too long to simplify: # px of strokes in the # frame (limit #)"
    named = re.findall(rf"skipped {re.escape(str(path))} \[\d+\]: {re.escape(str(path))}:\d+: (\w+ \w+)", err)
    assert named.count("empty drawing") == 10 and named.count("drawing too") == 10 and len(named) == 20
    assert f"sketchgraph evaluate: ... and 15 more like this: {empty}\n" in err
    assert f"sketchgraph evaluate: ... and 2 more like this: {long_}\n" in err
    assert "\revaluate: " in err
    before = re.findall(r"(.)sketchgraph evaluate: ", err, flags=re.S)  # what precedes each message
    assert len(before) == 22 and set(before) <= {"\r", "\n"}
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["unclassified"]["reasons"] == {empty: 25, long_: 12}
    assert report["unclassified"]["count"] == 37 and report["unclassified"]["of_model_classes"] == 31
    assert len(report["unclassified"]["errors"]) == 10
    rows = list(csv.DictReader((tmp_path / "eval" / "predictions.csv").open(encoding="utf-8")))
    assert len(rows) == len(lines) and sum(bool(r["error"]) for r in rows) == 37
    out = captured.out.splitlines()
    head = out.index("37 sketches could not be read or classified (up to 10 of each reason named on stderr; each "
                     "reason counted in the report's 'unclassified'):")
    assert out[head + 1: head + 3] == [f"  {empty}: 25", f"  {long_}: 12"]


def test_the_reason_of_an_error_leaves_out_where_it_happened():
    from sketchgraph.evaluate_files import reason_of

    assert reason_of("d/a.ndjson:17: empty drawing (no points)", "d/a.ndjson") == "empty drawing (no points)"
    assert reason_of("a.bin: record 3 (byte 120): truncated record", "a.bin") == "truncated record"
    assert reason_of("a.npz: test[4]: no strokes", "a.npz") == "no strokes"
    assert reason_of("a.ndjson:2: invalid JSON (Expecting ',' delimiter, column 5,423)", "a.ndjson") == (
        "invalid JSON (Expecting ',' delimiter, column #)")


def test_help_names_the_strict_figure_and_what_is_read(capsys):
    """``sketchgraph evaluate --help`` says which figure leaves the unclassified records out and names the strict
    one, lists gzipped ndjson, says a folder walk reads no .npz file, and what ``--out`` does to earlier files."""
    from sketchgraph.cli import main

    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ("the first top-1 printed leaves out the records that could not be read or classified; "
            "top1_counting_unclassified_as_wrong, printed next when it differs, counts them as misses") in text
    assert ".ndjson.gz" in text and "a folder is walked for all but .npz files, which are read only when named" in text
    assert "left in DIR by an earlier run, are removed first, and report.json is written last" in text


def test_loss_is_the_mean_negative_log_probability_of_the_true_class():
    """The loss kept per record is ``-log p(true)`` (the probabilities renormalised, as cross-entropy of their
    logarithms does), a probability the softmax rounded to 0 taken as float32's smallest."""
    from sketchgraph.evaluate_files import Tally, _metrics
    from sketchgraph.evaluate_inputs import ReadCounts
    from sketchgraph.sketch import Sketch

    tally = Tally(["c0", "c1", "c2"], lambda message: None)
    drawing = [np.array([[0.0, 0.0], [1.0, 1.0]])]
    tally.classified("a.ndjson", 0, Sketch(drawing, label="c0"), ranked(np.array([0.5, 0.25, 0.25])))
    tally.classified("a.ndjson", 1, Sketch(drawing, label="c2"), ranked(np.array([0.5, 0.5, 0.0])))
    report = _metrics(tally, (1, 2), ReadCounts())
    assert report["loss"] == pytest.approx((math.log(2) + 149 * math.log(2)) / 2)
    assert (report["top1"], report["top2"]) == (0.5, 0.5)
