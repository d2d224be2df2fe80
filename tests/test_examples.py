"""The shipped example drawings: present as package data, readable, recognisable classes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sketchgraph.errors import SketchError
from sketchgraph.examples import EXAMPLES_DIR, example_path, example_paths, load_example
from sketchgraph.graph import build_graph
from sketchgraph.preprocess import preprocess

SPG20 = {"airplane", "alarm clock", "ambulance", "ant", "apple", "backpack", "basket", "butterfly", "cactus",
         "calculator", "campfire", "candle", "coffee cup", "crab", "duck", "face", "ice cream", "pig", "pineapple",
         "suitcase"}  # Quick, Draw!'s words
# name -> (format on disk, strokes)
EXPECTED = {
    "alarm_clock": ("raw", 11), "apple": ("svg", 4), "cactus": ("raw", 9), "candle": ("simplified", 5),
    "face": ("raw", 7), "ice_cream": ("simplified", 10), "suitcase": ("svg", 6),
}


def test_example_files():
    paths = example_paths()
    assert [p.stem for p in paths] == sorted(EXPECTED)
    assert all(p.parent == EXAMPLES_DIR and p.suffix in (".ndjson", ".svg") for p in paths)
    assert example_path("face").name == "face.ndjson"
    with pytest.raises(SketchError, match="no example"):
        example_path("unicorn")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_reads_and_builds_a_graph(name):
    kind, n_strokes = EXPECTED[name]
    sk = load_example(name)
    assert sk.label == name.replace("_", " ") and sk.label in SPG20  # file alarm_clock: word "alarm clock"
    assert sk.num_strokes == n_strokes
    pts = sk.points()
    if kind == "raw":
        assert sk.has_time and np.all(np.diff(sk.times()) >= 0)
        assert pts.min() > 255 and not np.array_equal(pts, np.round(pts))  # canvas px, floats
    if kind == "simplified":
        assert not sk.has_time and np.array_equal(pts, np.round(pts)) and pts.min() >= 0 and pts.max() <= 255
    g = build_graph(preprocess(sk))
    assert 20 <= g.num_nodes <= 100


# ------------------------------------------------------------------------------------------ demo
def test_demo_skips_what_it_cannot_use_and_draws_the_rest(tiny_checkpoint, tmp_path, capsys):
    """``sketchgraph demo`` reads files as ``predict`` does: a bad record, a drawing preprocessing refuses, a file
    of unknown format and a folder without sketch files are each reported on stderr and skipped; the other sketches
    are classified and drawn (pictures numbered by record), and the exit status is 1."""
    from sketchgraph.cli import main
    from sketchgraph.sketch import Sketch

    good = json.dumps({"word": "face", "drawing": load_example("face").to_lists()})
    degenerate = Sketch.from_strokes([[[0, 255] * 5000, [0, 255] * 5000]])  # too much ink to simplify
    mixed = tmp_path / "mixed.ndjson"
    mixed.write_text("\n".join([good, "not json", good, json.dumps({"drawing": degenerate.to_lists()})]) + "\n")
    notes, empty, out = tmp_path / "notes.txt", tmp_path / "empty", tmp_path / "out"
    notes.write_text("hello\n")
    empty.mkdir()
    paths = [mixed, notes, empty, example_path("apple")]
    assert main(["demo", *map(str, paths), "--out", str(out), "--checkpoint", str(tiny_checkpoint)]) == 1
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert err[0].startswith(f"sketchgraph demo: skipped {mixed} [1]: {mixed}:2: invalid JSON"), err
    assert err[1].startswith(f"sketchgraph demo: skipped {mixed} [3]: {mixed}:4: drawing too long to simplify"), err
    assert err[2].startswith(f"sketchgraph demo: skipped {notes}: cannot tell the format")
    assert err[3].startswith(f"sketchgraph demo: skipped {empty}: no sketch files") and len(err) == 4
    assert sorted(p.name for p in out.iterdir()) == ["apple.png", "mixed_0.png", "mixed_2.png"]
    assert "mixed.ndjson [2]: face" in captured.out and "3 sketches classified" in captured.out
    assert "4 skipped" in captured.out


def test_demo_checks_its_paths_before_loading_the_model(tmp_path, capsys):
    from sketchgraph.cli import main

    missing = tmp_path / "missing.ndjson"
    assert main(["demo", str(missing), "--checkpoint", "no-such-checkpoint", "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == f"sketchgraph demo: error: no such sketch file: {missing}\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", ["0", "-3", "five"])
def test_demo_top_k_is_checked_before_anything_loads(tmp_path, capsys, value):
    """An argparse usage error (exit status 2), as ``predict --top-k`` is: no model loaded, no ``--out`` folder made
    (before: exit 1 after loading the model and creating an empty folder)."""
    from sketchgraph.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["demo", "--top-k", value, "--checkpoint", "no-such-checkpoint", "--out", str(tmp_path / "out")])
    assert exited.value.code == 2
    assert f"error: argument --top-k: expected a positive integer, got {value!r}\n" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_run_demo_checks_top_k_before_loading_the_model(tmp_path):
    from sketchgraph.demo import run_demo

    with pytest.raises(ValueError, match="top_k must be a positive integer, got 0"):
        run_demo(tmp_path / "out", "no-such-checkpoint", top_k=0)
    assert not (tmp_path / "out").exists()
