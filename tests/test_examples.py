"""The shipped example drawings: present as package data, readable, recognisable classes."""

from __future__ import annotations

import json
import tempfile

import numpy as np
import pytest

from sketchgraph.demo import MANIFEST
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
    assert example_path("alarm clock") == example_path("alarm_clock")  # a class name as a model's classes spell it
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
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "apple.png", "mixed_0.png", "mixed_2.png"]
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


def _squares(path, n: int) -> None:
    """An ndjson file of ``n`` labelled squares at ``path``."""
    from sketchgraph.formats import write_ndjson
    from sketchgraph.sketch import Sketch

    path.parent.mkdir(parents=True, exist_ok=True)
    square = Sketch.from_strokes([[[0, 50, 50, 0, 0], [0, 0, 50, 50, 0]]], label="square")
    write_ndjson([square] * n, path)


def test_demo_prints_each_file_under_its_folder_and_its_picture(tiny_checkpoint, tmp_path, capsys):
    """Two ``face.ndjson`` of one folder printed apart (``sub/face.ndjson``), and each table headed by its PNG (the
    printout used to say ``face.ndjson [0]: square`` for both files, and no picture)."""
    from sketchgraph.cli import main

    folder, out = tmp_path / "in", tmp_path / "out"
    _squares(folder / "face.ndjson", 2)
    _squares(folder / "sub" / "face.ndjson", 1)
    assert main(["demo", str(folder), "--out", str(out), "--checkpoint", str(tiny_checkpoint), "--top-k", "1"]) == 0
    heads = [line for line in capsys.readouterr().out.splitlines() if " -> " in line]
    assert heads == [f"face.ndjson [0]: square -> {out / 'face_0.png'}",
                     f"face.ndjson [1]: square -> {out / 'face_1.png'}",
                     f"sub/face.ndjson: square -> {out / 'face.png'}"]
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "face.png", "face_0.png", "face_1.png"]


def test_demo_reads_files_as_the_format_it_is_given(tiny_checkpoint, tmp_path, capsys):
    """``--format`` (the reader's hint says to pass it) reads every file as that format, as in ``predict``: an ndjson
    record in a ``.svg`` file is skipped without it and drawn with ``--format simplified``."""
    from sketchgraph.cli import main

    misnamed, out = tmp_path / "x.svg", tmp_path / "out"
    _squares(tmp_path / "x.ndjson", 1)
    (tmp_path / "x.ndjson").rename(misnamed)
    args = ["demo", str(misnamed), "--out", str(out), "--checkpoint", str(tiny_checkpoint)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"sketchgraph demo: skipped {misnamed} [0]: {misnamed}:1: invalid SVG/XML"), err
    assert main([*args, "--format", "simplified"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and f"x.svg: square -> {out / 'x.png'}" in captured.out
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "x.png"]


def test_demo_reads_standard_input_as_predict_does(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    """``-`` is standard input, as in ``predict``: named ``-`` in the printout, drawn as ``stdin_<i>.png`` (not the
    random name of its saved copy, which is gone afterwards), beside a file; given twice it is refused before the
    model loads; an empty one is skipped and makes the exit status 1."""
    from test_predict import feed_stdin

    from sketchgraph.cli import main

    _squares(tmp_path / "two.ndjson", 2)
    _squares(tmp_path / "one.ndjson", 1)
    out = tmp_path / "out"
    feed_stdin(monkeypatch, (tmp_path / "two.ndjson").read_bytes())
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the copy of standard input is saved
    args = ["--out", str(out), "--checkpoint", str(tiny_checkpoint), "--top-k", "1"]
    assert main(["demo", "-", str(tmp_path / "one.ndjson"), *args]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert f"- [0]: square -> {out / 'stdin_0.png'}\n" in captured.out
    assert f"- [1]: square -> {out / 'stdin_1.png'}\n" in captured.out
    assert f"one.ndjson: square -> {out / 'one.png'}\n" in captured.out
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "one.png", "stdin_0.png", "stdin_1.png"]
    assert not list(tmp_path.glob("sketchgraph-stdin-*"))  # the saved copy is gone
    assert main(["demo", "-", "-", "--checkpoint", "no-such-checkpoint", "--out", str(out)]) == 1  # as predict
    assert capsys.readouterr().err == ("sketchgraph demo: error: - (standard input) is given 2 times; it can be read "
                                       "once\n")
    feed_stdin(monkeypatch, b"")
    assert main(["demo", "-", *args]) == 1
    assert "sketchgraph demo: skipped -: nothing came on standard input\n" in capsys.readouterr().err


def test_demo_draws_at_most_limit_sketches_and_says_so(tiny_checkpoint, tmp_path, capsys):
    """``--limit N`` draws the first N sketches in all and the summary says how many there were; ``--limit 0``
    draws them all, with no such line. A bad record past the limit is not reported (it was not asked for)."""
    from sketchgraph.cli import main

    a, b, out = tmp_path / "a.ndjson", tmp_path / "b.ndjson", tmp_path / "out"
    _squares(a, 3)
    _squares(b, 2)
    with b.open("a") as f:
        f.write("not json\n")
    args = ["demo", str(a), str(b), "--checkpoint", str(tiny_checkpoint), "--top-k", "1"]
    assert main([*args, "--out", str(out), "--limit", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.splitlines()[-1] == "drew the first 2 of 5 sketches; pass --limit 0 for all"
    assert "2 sketches classified" in captured.out
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "a_0.png", "a_1.png"]  # numbered as a file of 3 records

    assert main([*args, "--out", str(tmp_path / "all"), "--limit", "0"]) == 1  # the bad record is reported now
    captured = capsys.readouterr()
    assert "5 sketches classified" in captured.out and "drew the first" not in captured.out
    assert captured.err.startswith(f"sketchgraph demo: skipped {b} [2]: {b}:3: invalid JSON")
    assert len(list((tmp_path / "all").glob("*.png"))) == 5


def test_demo_limit_default_leaves_make_demo_whole(tiny_checkpoint, tmp_path, capsys):
    """The default limit (50 sketches) is far above the 7 bundled examples ``make demo`` draws."""
    from sketchgraph.cli import main
    from sketchgraph.demo import DEFAULT_LIMIT

    assert DEFAULT_LIMIT == 50 > len(example_paths())
    assert main(["demo", "--out", str(tmp_path), "--checkpoint", str(tiny_checkpoint), "--top-k", "1"]) == 0
    text = capsys.readouterr().out
    assert "drew the first" not in text and f"{len(example_paths())} sketches classified" in text


@pytest.mark.parametrize("value", ["-1", "two", "1.5"])
def test_demo_limit_is_checked_before_anything_loads(tmp_path, capsys, value):
    from sketchgraph.cli import main
    from sketchgraph.demo import run_demo

    with pytest.raises(SystemExit) as exited:
        main(["demo", "--limit", value, "--checkpoint", "no-such-checkpoint", "--out", str(tmp_path / "out")])
    assert exited.value.code == 2
    assert f"error: argument --limit: expected an integer >= 0 (0: all), got {value!r}\n" in \
        capsys.readouterr().err
    with pytest.raises(ValueError, match=r"^limit must be a non-negative integer \(0: all sketches\), got -1$"):
        run_demo(tmp_path / "out", "no-such-checkpoint", limit=-1)
    assert not (tmp_path / "out").exists()


def test_demo_refuses_an_out_that_cannot_be_a_folder_before_loading_the_model(tmp_path, capsys):
    """An existing file (it used to fail with "[Errno 17] File exists" after the model had loaded), or a path under
    one: one line, before the (missing) checkpoint is looked for."""
    from sketchgraph.cli import main

    a_file = tmp_path / "taken.png"
    a_file.write_bytes(b"x")
    cases = [(a_file, f"--out {a_file} is an existing file, not a folder: demo writes its PNGs into a folder; "
                      "name a new or existing folder"),
             (a_file / "sub", f"--out {a_file / 'sub'} cannot be created: {a_file} is a file, not a folder")]
    for out, message in cases:
        assert main(["demo", str(example_path("face")), "--out", str(out), "--checkpoint", "no-such-checkpoint"]) == 1
        assert capsys.readouterr().err == f"sketchgraph demo: error: {message}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["taken.png"]


def _manifest(out) -> dict:
    """The PNGs (name -> SHA-256) ``out``'s demo manifest lists."""
    return json.loads((out / MANIFEST).read_text(encoding="utf-8"))["pngs"]


def _sha256(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_demo_rerun_removes_the_pngs_of_an_earlier_run_it_does_not_draw(tiny_checkpoint, tmp_path, capsys):
    """A run into a folder of an earlier run that drew more (``a_2.png`` used to stay, looking like this run's
    output) removes the extra PNGs and says so on one line; the PNGs it draws again are replaced, and the manifest
    lists this run's pictures only. A run that removes nothing says nothing about it."""
    from sketchgraph.cli import main

    a, b, out = tmp_path / "a.ndjson", tmp_path / "b.ndjson", tmp_path / "out"
    _squares(a, 3)
    _squares(b, 1)
    args = ["demo", "--out", str(out), "--checkpoint", str(tiny_checkpoint), "--top-k", "1"]
    assert main([*args, str(a), str(b)]) == 0
    assert "removed" not in capsys.readouterr().out
    assert sorted(_manifest(out)) == ["a_0.png", "a_1.png", "a_2.png", "b.png"]
    assert _manifest(out)["a_1.png"] == _sha256(out / "a_1.png")

    assert main([*args, str(a), "--limit", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-4:] == [f"removed 3 PNGs of an earlier run from {out}/", "",  # a_1, a_2, b; before the summary
                          f"1 sketch classified with tiny; pictures in {out}/",
                          "drew the first 1 of 3 sketches; pass --limit 0 for all"], lines
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "a_0.png"]
    assert _manifest(out) == {"a_0.png": _sha256(out / "a_0.png")}
    assert not list(out.glob(f".{MANIFEST}.*")) and not list(out.glob(".a_*"))  # no temporary file left


def test_demo_never_removes_a_file_it_did_not_write(tiny_checkpoint, tmp_path, capsys):
    """``--out`` may hold the user's own files: a PNG and a note put there before the first run, one put there
    between runs, and a demo PNG the user replaced with a picture of their own all survive a rerun that draws less;
    the replaced one is no longer listed as the demo's."""
    from sketchgraph.demo import run_demo

    a, out = tmp_path / "a.ndjson", tmp_path / "out"
    _squares(a, 4)
    out.mkdir()
    (out / "mine.png").write_bytes(b"my own picture")
    (out / "notes.txt").write_text("keep me\n")
    run_demo(out, tiny_checkpoint, paths=[a], top_k=1, verbose=False)
    (out / "later.png").write_bytes(b"added between runs")
    (out / "a_3.png").write_bytes(b"the user's picture under the demo's name")
    run_demo(out, tiny_checkpoint, paths=[a], top_k=1, verbose=True, limit=1)
    assert "removed 2 PNGs of an earlier run" in capsys.readouterr().out  # a_1, a_2; not the replaced a_3
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "a_0.png", "a_3.png", "later.png", "mine.png",
                                                     "notes.txt"]
    assert (out / "mine.png").read_bytes() == b"my own picture" and (out / "notes.txt").read_text() == "keep me\n"
    assert (out / "a_3.png").read_bytes() == b"the user's picture under the demo's name"
    assert sorted(_manifest(out)) == ["a_0.png"]


@pytest.mark.parametrize("manifest", ["not json {", '["a.png"]', '{"pngs": ["a_1.png"]}', "\udcff"])
def test_demo_with_an_unreadable_manifest_removes_nothing_and_replaces_it(tiny_checkpoint, tmp_path, manifest):
    from sketchgraph.demo import run_demo

    a, out = tmp_path / "a.ndjson", tmp_path / "out"
    _squares(a, 2)
    run_demo(out, tiny_checkpoint, paths=[a], top_k=1, verbose=False)
    (out / MANIFEST).write_bytes(manifest.encode("utf-8", "surrogateescape"))
    run_demo(out, tiny_checkpoint, paths=[a], top_k=1, verbose=False, limit=1)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "a_0.png", "a_1.png"]  # a_1 is not known as ours
    assert sorted(_manifest(out)) == ["a_0.png"]


def test_demo_manifest_entries_outside_its_folder_are_not_its_own(tiny_checkpoint, tmp_path, capsys):
    """A manifest naming files outside ``--out`` (``../x.png``, an absolute path, a subfolder, a link leading out),
    even with their true SHA-256, removes none of them: only plain PNG file names in the folder are the demo's."""
    from sketchgraph.demo import run_demo

    a, out = tmp_path / "a.ndjson", tmp_path / "out"
    _squares(a, 1)
    (out / "sub").mkdir(parents=True)
    outside, absolute, inner, target = (tmp_path / "x.png", tmp_path / "abs.png", out / "sub" / "y.png",
                                        tmp_path / "target.png")
    for i, path in enumerate((outside, absolute, inner, target)):
        path.write_bytes(b"not the demo's %d" % i)
    (out / "link.png").symlink_to(target)
    (out / "notes.txt").write_text("mine\n")
    listed = {"../x.png": outside, str(absolute): absolute, "sub/y.png": inner, "link.png": target,
              "notes.txt": out / "notes.txt", "..": outside}
    (out / MANIFEST).write_text(json.dumps({"pngs": {name: _sha256(path) for name, path in listed.items()}}))
    run_demo(out, tiny_checkpoint, paths=[a], top_k=1, verbose=True)
    assert "removed" not in capsys.readouterr().out
    for i, path in enumerate((outside, absolute, inner, target)):
        assert path.read_bytes() == b"not the demo's %d" % i
    assert (out / "link.png").is_symlink() and (out / "notes.txt").read_text() == "mine\n"
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "a.png", "link.png", "notes.txt", "sub"]
    assert sorted(_manifest(out)) == ["a.png"]
