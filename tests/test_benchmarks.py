"""The benchmark scripts' own logic: robustness input conditions and the Google nearby-classes check."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from sketchgraph.examples import example_path, load_example
from sketchgraph.predict import SketchClassifier
from sketchgraph.sketch import Sketch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def robustness():
    return load_script("robustness")


@pytest.fixture(scope="module")
def clf():
    return SketchClassifier.from_pretrained("spg20")


def strokes_of(n: int, seed: int = 0) -> Sketch:
    rng = np.random.default_rng(seed)
    return Sketch([rng.uniform(0, 255, (int(rng.integers(1, 9)), 2)).astype(np.float32) for _ in range(n)])


def test_one_stroke_joins_every_stroke_in_order(robustness):
    sketch = strokes_of(7)
    out = robustness.one_stroke(sketch, np.random.default_rng(0))
    assert len(out.strokes) == 1
    np.testing.assert_array_equal(out.strokes[0], np.concatenate(sketch.strokes))


@pytest.mark.parametrize("seed", range(5))
def test_merged_keeps_points_and_removes_about_half_the_pen_ups(robustness, seed):
    sketch = strokes_of(41, seed)
    out = robustness.merged(sketch, np.random.default_rng(seed))
    np.testing.assert_array_equal(np.concatenate(out.strokes), np.concatenate(sketch.strokes))
    removed = len(sketch.strokes) - len(out.strokes)
    assert 8 <= removed <= 32  # Binomial(40, 1/2): 20 +- 3 sd
    ends = np.cumsum([len(s) for s in out.strokes])
    assert set(ends) <= set(np.cumsum([len(s) for s in sketch.strokes])), "strokes join only at pen-ups"


@pytest.mark.parametrize("n", [1, 2, 5, 20])
def test_first_strokes_is_a_prefix_of_the_strokes(robustness, n):
    sketch = strokes_of(n)
    for seed in range(10):
        out = robustness.first_strokes(sketch, np.random.default_rng(seed))
        k = len(out.strokes)
        assert max(1, math.ceil(0.5 * n)) <= k <= max(1, math.ceil(0.9 * n))
        for a, b in zip(out.strokes, sketch.strokes[:k]):
            np.testing.assert_array_equal(a, b)


def test_conditions_seeded_by_their_place_in_the_full_list_not_in_the_selection(robustness, clf):
    """A condition gets the same random inputs whether it runs alone or after others."""
    sketches = [load_example("face"), load_example("cactus")]
    alone = robustness.evaluate(clf, sketches, ["reference", "merged"], seed=3)
    together = robustness.evaluate(clf, sketches, ["reference", "jitter", "incomplete", "merged"], seed=3)
    assert alone["merged"] == together["merged"]


def test_results_count_the_drawings_a_condition_left_as_stored(robustness, clf):
    """``unchanged`` counts inputs identical to the stored drawing, ``top1_changed`` scores the others alone; a
    condition that sends another kind of input (a RAW line, lists) has neither."""
    from sketchgraph.formats import canonical_label
    from sketchgraph.sketch import Sketch

    one = Sketch([np.array([[0.0, 0], [50, 40], [90, 10]])], label="face", key_id="one")
    stored = [load_example(name) for name in ("face", "cactus")]  # x, y only, as load_test_split gives them
    sketches = [Sketch([st[:, :2] for st in s.strokes], label=s.label, key_id=s.key_id) for s in stored] + [one]
    r = robustness.evaluate(clf, sketches, ["reference", "first-strokes", "one-stroke", "canvas"], seed=0)
    assert (r["reference"]["unchanged"], r["reference"]["top1_changed"]) == (3, None)
    rng = np.random.default_rng([0, list(robustness.CONDITIONS).index("first-strokes")])  # the condition's stream
    cut = [robustness.first_strokes(s, rng) for s in sketches]
    assert r["first-strokes"]["unchanged"] == sum(len(c.strokes) == len(s.strokes) for c, s in zip(cut, sketches))
    assert r["one-stroke"]["unchanged"] == 1  # only the drawing that already was one stroke
    assert r["canvas"]["unchanged"] is None and r["canvas"]["top1_changed"] is None
    joined = clf.predict_batch([robustness.one_stroke(s, None) for s in sketches[:2]], top_k=1)
    hits = [canonical_label(p[0].label) == canonical_label(s.label) for p, s in zip(joined, sketches)]
    assert r["one-stroke"]["top1_changed"] == pytest.approx(np.mean(hits))


def write_ndjson(path: Path, drawings: list, recognized: bool = True, junk: bool = False) -> None:
    lines = [json.dumps({"word": path.stem, "key_id": str(i), "recognized": recognized, "drawing": d})
             for i, d in enumerate(drawings)]
    if junk:
        lines.insert(1, '{"word": "x", "drawing": [')  # truncated record
    path.write_text("\n".join(lines) + "\n")


def test_google_nearby_counts_hits_and_groups(tmp_path, clf, capsys):
    nearby = load_script("google_nearby")
    face = json.loads(example_path("face").read_text().splitlines()[0])["drawing"]
    clock = json.loads(example_path("alarm_clock").read_text().splitlines()[0])["drawing"]
    one_stroke_face = [[sum((s[0] for s in face), []), sum((s[1] for s in face), [])]]
    write_ndjson(tmp_path / "smiley face.ndjson", [face, one_stroke_face], junk=True)
    write_ndjson(tmp_path / "clock.ndjson", [clock], recognized=False)

    misses: list = []
    result = nearby.evaluate(clf, tmp_path, {"smiley face": "face", "clock": "alarm clock"}, misses)
    assert "smiley face.ndjson:2: skipped" in capsys.readouterr().err
    rows = result["drawings"]
    assert [r["strokes"] for r in rows] == [len(face), 1, len(clock)]
    expected = [clf.predict(d, top_k=1)[0].label for d in (face, one_stroke_face, clock)]
    assert [r["predicted"] for r in rows] == expected
    assert [r["hit"] for r in rows] == [p == t for p, t in zip(expected, ["face", "face", "alarm clock"])]
    groups = result["groups"]
    assert groups["all"]["n"] == 3 and groups["1-2 strokes"]["n"] == 1 and groups["unrecognized"]["n"] == 1
    assert groups["all"]["top1"] == pytest.approx(np.mean([r["hit"] for r in rows]))
    assert result["pairs"]["clock"]["n"] == 1 and result["pairs"]["smiley face"]["n"] == 2
    assert "| all | 3 |" in nearby.table(result)
    drawings = [face, one_stroke_face, clock]
    as_arrays = [[np.asarray(st, dtype=np.float32).T for st in d] for d, r in zip(drawings, rows) if not r["hit"]]
    assert len(misses) == len(as_arrays)
    for (sketch, _), expected in zip(misses, as_arrays):  # the missed drawings, as read
        assert len(sketch.strokes) == len(expected)
        for got, want in zip(sketch.strokes, expected):
            np.testing.assert_array_equal(got[:, :2], want)
    assert all(" -> " in m[1] for m in misses)


def test_google_nearby_missing_file_is_a_clear_error(tmp_path):
    nearby = load_script("google_nearby")
    with pytest.raises(SystemExit, match="mug.ndjson not found"):
        nearby.load(tmp_path, "mug")


@pytest.mark.realdata
@pytest.mark.slow
def test_shipped_robustness_results_reproduce(robustness, shared_data_path):
    """The committed robustness results of the shipped weights come out again, and the checkpoint reads
    drawings made without lifting the pen (SPG has none: the stroke-merge augmentation is what teaches it)."""
    from sketchgraph.checkpoint import weights_digest
    from sketchgraph.predict import resolve_checkpoint

    record = json.loads((BENCHMARKS / "results" / "robustness_adapt.json").read_text())
    assert record["weights_sha256"] == weights_digest(resolve_checkpoint("spg20")), "results of other weights"
    clf = SketchClassifier.from_pretrained("spg20", batch_size=256)  # as the script runs it
    sketches = robustness.load_test_split(shared_data_path("spg20"))
    names = ["reference", "one-stroke", "merged", "first-strokes"]
    results = robustness.evaluate(clf, sketches, names, seed=record["seed"])
    for name in names:
        assert results[name]["top1"] == pytest.approx(record["conditions"][name]["top1"], abs=1e-9), name
    assert results["reference"]["top1"] >= 0.96 and results["one-stroke"]["top1"] >= 0.9


@pytest.mark.parametrize("setup", ["user folder", "a file", "the run's parent"])
def test_ship_spg20_never_replaces_a_folder_that_is_not_a_checkpoint(tmp_path, setup, capsys):
    """``--out`` naming a user's folder (or the run's own parent) is refused before anything is evaluated or
    removed; the folder is left as it was."""
    ship = load_script("ship_spg20")
    run = tmp_path / "myrun" / "best"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    out = {"user folder": tmp_path / "notes", "a file": tmp_path / "notes.txt", "the run's parent": run.parent}[setup]
    if setup == "user folder":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    elif setup == "a file":
        out.write_text("mine")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as exc:
        ship.main([str(run), str(tmp_path / "no-data"), "--out", str(out)])
    assert exc.value.code == 2 and "--out" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("models, message", [("mgt,typo", "unknown \\['typo'\\]"), (" , ", "empty list")])
def test_spg20_benchmark_checks_model_names_before_training(tmp_path, models, message, capsys):
    bench = load_script("spg20_benchmark")
    with pytest.raises(SystemExit):
        bench.main(["--data", str(tmp_path / "none"), "--models", models, "--results", str(tmp_path / "r")])
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "r").exists()


def test_spg20_benchmark_replaces_a_models_earlier_run(tmp_path, monkeypatch):
    """Each model trains into WORK/<model>; running one again passes --overwrite (train refuses an OUT holding a
    run otherwise), and the command it runs is one ``sketchgraph train`` accepts."""
    import argparse
    import types

    from sketchgraph.cli import build_parser

    bench = load_script("spg20_benchmark")
    commands = []

    class Ran(Exception):
        pass

    def fake_run(cmd, **kwargs):
        commands.append(cmd)
        raise Ran

    monkeypatch.setattr(bench, "measure_train_speed", lambda *args, **kwargs: 1000.0)
    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    data = types.SimpleNamespace(split=lambda name: range(100))
    args = argparse.Namespace(max_epochs=3, budget=1.0, work=str(tmp_path), data="prepared/spg20")
    with pytest.raises(Ran):
        bench.run_model("mgt", args, data)
    words = commands[0][commands[0].index("train"):]
    parsed = build_parser(words).parse_args(words)
    assert parsed.overwrite and parsed.out == str(tmp_path / "mgt") and not parsed.resume


@pytest.mark.slow
def test_bench_serve_runs_with_a_heavy_client(tmp_path):
    """The load check end to end, small: a real server, 4 clients, and one client posting the heavy drawing (legal:
    answered 200, or the script exits 1), reported on its own line."""
    import subprocess

    out = subprocess.run([sys.executable, str(BENCHMARKS / "bench_serve.py"), "--requests", "24", "--clients", "4",
                          "--heavy", "1"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "24 requests, 4 concurrent clients" in out.stdout and "errors: 0" in out.stdout
    assert re.search(r"meanwhile [1-9]\d* heavy drawings from 1 client", out.stdout)


def test_bench_evaluate_sample_takes_the_same_records_both_ways(capsys):
    """The sampled-lines reading and the reservoir over every parsed record take the same records (the script
    stops otherwise), on a file of Google's RAW layout."""
    result = load_script("bench_evaluate_sample").main(["--records", "600", "--sample", "50", "--seed", "3"])
    assert result["same_sample"] and result["records"] == 600 and result["sample"] == 50
    assert "a sample of 50, the same records both ways" in capsys.readouterr().out


@pytest.mark.slow
def test_bench_predict_memory_runs_sketchgraph_predict_with_each_kernel_cache(tmp_path):
    """Both settings run the command to its end on a file of the asked size and report a peak memory and a time."""
    import subprocess

    out = subprocess.run([sys.executable, str(BENCHMARKS / "bench_predict_memory.py"), "--records", "300"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("input: 300 drawings, ")
    rows = re.findall(r"^ONEDNN_PRIMITIVE_CACHE_CAPACITY=(\d+) .* peak RSS +(\d+\.\d\d) GB +(\d+\.\d) s", out.stdout,
                      re.M)
    assert [r[0] for r in rows] == ["1024", "0"]
    assert all(0.05 < float(gb) < 8 and float(s) > 0 for _, gb, s in rows)
