"""The dataset scripts in ``data_prep/`` on generated files, and on ``../shared/data`` when present."""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_data_path as data_path  # noqa: E402

from data_prep.quickdraw import CATEGORIES, prepare_414k
from data_prep.sketchrnn import prepare_sketchrnn
from data_prep.spg import EXPECTED_SPLITS, prepare_spg
from data_prep.tuberlin import prepare_tuberlin
from sketchgraph.data import PreparedDataset
from sketchgraph.formats import write_stroke3_npz, write_svg
from sketchgraph.sketch import Sketch


def random_strokes(rng: np.random.Generator, scale: float = 100.0) -> list[np.ndarray]:
    """1-4 random-walk strokes of 2-20 points, ``(n, 2)`` float."""
    return [np.cumsum(rng.normal(0, scale / 20, size=(int(rng.integers(2, 20)), 2)), axis=0) + scale
            for _ in range(int(rng.integers(1, 5)))]


def lines(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


# ---------------------------------------------------------------------------------------- Quick, Draw!
def test_categories():
    assert len(CATEGORIES) == len(set(CATEGORIES)) == 345
    assert list(CATEGORIES) == sorted(CATEGORIES, key=str.lower)
    assert {"The Eiffel Tower", "zigzag", "alarm clock", "t-shirt", "teddy-bear"} <= set(CATEGORIES)


@pytest.mark.realdata
def test_categories_match_the_shared_files():
    names = {p.stem for p in data_path("quickdraw_simplified").glob("*.ndjson")}
    spg = {p.name.removesuffix("_raw.ndjson").replace("_", " ") for p in data_path("spg20", "raw").glob("*.ndjson")}
    assert len(names) == 324 and len(spg) == 20
    assert names | spg | {"zigzag"} == set(CATEGORIES)


def test_prepare_414k(tmp_path, capsys):
    rng = np.random.default_rng(0)
    folder = tmp_path / "qd"
    folder.mkdir()
    for ci, word in enumerate(("cat", "The Eiffel Tower")):
        records = []
        for i in range(1300):
            xy = [np.clip(np.round(s), 0, 255).astype(int) for s in random_strokes(rng)]
            records.append({"word": word, "recognized": i % 13 != 0, "key_id": f"{ci}{i:06d}",
                            "drawing": [[s[:, 0].tolist(), s[:, 1].tolist()] for s in xy]})
        (folder / f"{word}.ndjson").write_text(lines(records))
    (folder / "dog.bin").write_bytes(b"\0" * 10)  # a file of another kind beside them: left out, and said so
    info = prepare_414k(folder, tmp_path / "out", workers=1, progress=False)
    assert info.splits == {"train": 2000, "valid": 200, "test": 200}
    assert ("note: 1 file of another kind left out (dog.bin): prepare414k reads the .ndjson files\n"
            in capsys.readouterr().err)
    ds = PreparedDataset(info.path)
    assert ds.meta["split_method"]["protocol"]["name"] == "quickdraw414k"
    assert ds.meta["preprocessing"]["simplify"] is False
    assert all(int(bytes(k)[1:]) % 13 for k in ds.key_ids)  # recognized drawings only


def quickdraw_file(path: Path, word: str, kind: str, n: int = 3, seed: int = 0) -> Path:
    """``n`` Quick, Draw!-like records of ``kind`` (``simplified``: integer [xs, ys]; ``raw``: [xs, ys, ts])."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        drawing, t = [], 0
        for s in random_strokes(rng):
            xy = np.round(s).astype(int)
            stroke = [xy[:, 0].tolist(), xy[:, 1].tolist()]
            if kind == "raw":
                stroke.append(list(range(t, t + 10 * len(xy), 10)))
                t += 10 * len(xy) + 100
            drawing.append(stroke)
        records.append({"word": word, "recognized": True, "key_id": f"{seed}{i:015d}", "drawing": drawing})
    path.write_text(lines(records))
    return path


@pytest.mark.parametrize("kind", ["simplified", "raw"])
def test_prepare_414k_sniffs_every_file(tmp_path, monkeypatch, kind):
    """Whether to simplify was decided from the first file alone (here one whose first lines are no records, which
    sniffed as simplified); every file is sniffed, and files that tell nothing (empty, unreadable) abstain."""
    import sketchgraph.data

    folder = tmp_path / "qd"
    folder.mkdir()
    (folder / "aaa.ndjson").write_text("not a record\n" * 6)
    (folder / "bbb.ndjson").write_bytes(b"")
    for seed, word in enumerate(("cat", "dog")):
        quickdraw_file(folder / f"{word}.ndjson", word, kind, seed=seed)
    called = []
    monkeypatch.setattr(sketchgraph.data, "prepare", lambda files, out, **kw: called.append(kw["preprocessing"]))
    prepare_414k(folder, tmp_path / "out", progress=False)
    assert [p.simplify for p in called] == [kind == "raw"]


@pytest.mark.parametrize("odd, message", [
    ("raw", "the folder mixes raw and simplified Quick, Draw! files (e.g. {qd}/dog.ndjson is raw, {qd}/cat.ndjson is "
            "simplified): raw drawings must be simplified, simplified ones must not be simplified again, so keep each "
            "kind in its own folder (download --kind raw and --kind simplified into different --out folders)"),
    ("spg", "{qd}/dog.ndjson looks like spg ndjson, not a Quick, Draw! simplified or raw file; move it out of the "
            "folder"),
])
def test_prepare_414k_refuses_a_folder_of_mixed_kinds(tmp_path, monkeypatch, capsys, odd, message):
    """A raw file among simplified ones was only capped at 100 points, not simplified: its drawings were cut to
    their first strokes. Such a folder is refused before anything is read, naming a file of each kind."""
    import sketchgraph.data
    from data_prep.quickdraw import main

    qd = tmp_path / "qd"
    qd.mkdir()
    quickdraw_file(qd / "cat.ndjson", "cat", "simplified")
    if odd == "raw":
        quickdraw_file(qd / "dog.ndjson", "dog", "raw", seed=1)
    else:
        (qd / "dog.ndjson").write_text(lines([{"key_id": "1", "drawing": [[[0, 5, 9], [0, 5, 0], [0, 0, 1]]]}]))
    monkeypatch.setattr(sketchgraph.data, "prepare", lambda *a, **k: pytest.fail("prepare was called"))
    with pytest.raises(ValueError) as refused:
        prepare_414k(qd, tmp_path / "out", progress=False)
    assert str(refused.value) == message.format(qd=qd)
    assert main(["prepare414k", str(qd), str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err.endswith(f"python -m data_prep.quickdraw: error: {message.format(qd=qd)}\n")


# ---------------------------------------------------------------------------------------- SPG
def write_spg(root: Path, classes=("ant", "alarm_clock"), counts=(("train", 6), ("valid", 2), ("test", 3))):
    """A tiny SPG-like folder: raw/<class>_raw.ndjson (with one 4-list stroke) + splits/."""
    rng = np.random.default_rng(1)
    (root / "raw").mkdir(parents=True)
    (root / "splits").mkdir()
    for c in classes:
        n = sum(k for _, k in counts) + 1
        raw = []
        for i in range(n):
            strokes = random_strokes(rng)
            drawing = [[np.round(s[:, 0]).tolist(), np.round(s[:, 1]).tolist(), [i % 3] * len(s)] for s in strokes]
            if i == 0:
                drawing[0].append([1] * len(strokes[0]))  # SPG's raw files hold a few such strokes
            raw.append({"i": i, "key_id": f"{c}-{i}", "drawing": drawing})
        (root / "raw" / f"{c}_raw.ndjson").write_text(lines(raw))
        start = 0
        for split, k in counts:
            (root / "splits" / f"{c}_{split}.ndjson").write_text(lines(raw[start : start + k]))
            start += k


def test_spg_on_a_generated_folder(tmp_path):
    write_spg(tmp_path / "spg")
    info = prepare_spg(tmp_path / "spg", tmp_path / "out", workers=1, progress=False)
    assert info.splits == {"train": 12, "valid": 4, "test": 6} and info.classes == ["alarm clock", "ant"]
    assert info.counts["malformed"] == 0 and info.counts["not_selected"] == 2
    assert PreparedDataset(info.path).meta["split_method"]["kind"] == "keys"


@pytest.mark.parametrize("layout", ["SPG", "data/SPG"])
def test_spg_in_sketchgnns_own_layout(tmp_path, layout):
    """SketchGNN's folders (SPG/ and SPG256/train/, in a clone or its data/) give the same dataset as raw/ and
    splits/; its _res files are not split files."""
    write_spg(tmp_path / "ours")
    root = tmp_path / "SketchGNN"
    raw, split = root / layout, root / layout.replace("SPG", "SPG256/train")
    shutil.copytree(tmp_path / "ours" / "raw", raw)
    shutil.copytree(tmp_path / "ours" / "splits", split)
    (split / "ant_res.ndjson").write_text('{"key_id": "ant-1", "result": 1}\n')
    ours = prepare_spg(tmp_path / "ours", tmp_path / "a", workers=1, progress=False)
    theirs = prepare_spg(root, tmp_path / "b", workers=1, progress=False)
    assert theirs.splits == ours.splits == {"train": 12, "valid": 4, "test": 6} and theirs.classes == ours.classes
    with pytest.raises(FileNotFoundError, match="does not look like SPG: expected raw/<class>_raw.ndjson"):
        prepare_spg(tmp_path / "a", tmp_path / "c", workers=1, progress=False)


@pytest.mark.realdata
@pytest.mark.slow
def test_spg_real(tmp_path):
    root = data_path("spg20")
    t0 = time.perf_counter()
    info = prepare_spg(root, tmp_path / "spg20", workers=2, progress=False)
    seconds = time.perf_counter() - t0
    assert info.splits == EXPECTED_SPLITS and len(info.classes) == 20
    assert info.counts["malformed"] == 0 and info.counts["empty"] == 0 and info.counts["not_selected"] == 0
    ds = PreparedDataset(info.path)
    assert ds.coords.dtype == np.int16 and int(np.asarray(ds.coords).max()) <= 255
    assert ds.lengths().max() <= 100
    print(f"SPG-20 prepared in {seconds:.1f} s")

    # the shipped checkpoint reproduces the test accuracy on its model card from a fresh preparation
    from sketchgraph.evaluate import evaluate
    from sketchgraph.predict import resolve_checkpoint

    shipped = resolve_checkpoint("spg20")
    card = json.loads((shipped / "config.json").read_text())["metrics"]
    report = evaluate(shipped, info.path, "test", progress=False)
    assert report["num_samples"] == 2000
    assert report["top1"] == pytest.approx(card["test_top1"], abs=1e-9) and report["top1"] >= 0.96
    assert f"{card['test_top1']:.2%}" in (shipped / "README.md").read_text()


# ---------------------------------------------------------------------------------------- sketch-rnn
def test_sketchrnn(tmp_path, capsys):
    rng = np.random.default_rng(2)
    files = []
    for name, sizes in (("cat", (5, 2, 3)), ("sketchrnn_dog", (4, 1, 1))):
        splits = {s: [Sketch.from_strokes([np.round(x) for x in random_strokes(rng)]).to_stroke3() for _ in range(n)]
                  for s, n in zip(("train", "valid", "test"), sizes)}
        files.append(write_stroke3_npz(tmp_path / f"{name}.npz", **splits))
    info = prepare_sketchrnn(files, tmp_path / "out", workers=1, progress=False)
    assert info.splits == {"train": 9, "valid": 3, "test": 4} and info.classes == ["cat", "dog"]
    ds = PreparedDataset(info.path)
    assert ds.meta["class_counts"]["dog"] == {"train": 4, "valid": 1, "test": 1}
    with pytest.raises(ValueError, match="npz"):
        prepare_sketchrnn([tmp_path / "x.ndjson"], tmp_path / "bad")
    with pytest.raises(ValueError, match=r"^give one or more sketch-rnn \.npz files$"):
        prepare_sketchrnn([], tmp_path / "bad")
    from data_prep.sketchrnn import main as sketchrnn_main

    capsys.readouterr()
    assert sketchrnn_main([str(tmp_path / "out2"), *map(str, files)]) == 1  # OUT first: the last file taken as OUT
    assert capsys.readouterr().err == (f"python -m data_prep.sketchrnn: error: not a sketch-rnn .npz file: "
                                       f"{tmp_path / 'out2'} (give the .npz files first, then the folder to create: "
                                       "FILE.npz ... OUT)\n")


# ---------------------------------------------------------------------------------------- TU-Berlin
def test_tuberlin_on_generated_svgs(tmp_path):
    rng = np.random.default_rng(3)
    for c in ("airplane", "alarm clock"):
        (tmp_path / "svg" / c).mkdir(parents=True)
        for i in range(10):
            write_svg(Sketch.from_strokes([s * 4 for s in random_strokes(rng)]), tmp_path / "svg" / c / f"{i}.svg")
    info = prepare_tuberlin(tmp_path / "svg", tmp_path / "out", workers=1, progress=False)
    assert info.splits == {"train": 14, "valid": 2, "test": 4} and info.classes == ["airplane", "alarm clock"]
    again = prepare_tuberlin(tmp_path / "svg", tmp_path / "again", workers=2, progress=False)
    assert (tmp_path / "out" / "key_ids.npy").read_bytes() == (tmp_path / "again" / "key_ids.npy").read_bytes()
    other = prepare_tuberlin(tmp_path / "svg", tmp_path / "other", seed=1, workers=1, progress=False)
    assert other.splits == info.splits
    assert (np.load(other.path / "split.npy") != np.load(info.path / "split.npy")).any()
    assert again.splits == info.splits


def test_a_split_that_comes_out_empty_is_warned_about(tmp_path, capsys):
    """5 drawings per class under the default 70/10/20 fractions: valid rounds to 0 for every class."""
    rng = np.random.default_rng(5)
    for c in ("airplane", "cat"):
        (tmp_path / "svg" / c).mkdir(parents=True)
        for i in range(5):
            write_svg(Sketch.from_strokes([s * 4 for s in random_strokes(rng)]), tmp_path / "svg" / c / f"{i}.svg")
    info = prepare_tuberlin(tmp_path / "svg", tmp_path / "out", workers=1)
    assert "valid" not in info.splits and info.meta["split_method"]["empty_splits"] == ["valid"]
    assert "warning: split 'valid' is empty" in capsys.readouterr().out


@pytest.mark.realdata
def test_tuberlin_real_sample(tmp_path):
    info = prepare_tuberlin(data_path("tuberlin_svg"), tmp_path / "out", protocol="train=3,valid=1,test=1",
                            workers=1, progress=False)
    assert info.splits == {"train": 9, "valid": 3, "test": 3}
    assert info.classes == ["airplane", "alarm clock", "angel"]


# ---------------------------------------------------------------------------------------- the scripts' errors
def test_scripts_report_user_mistakes_in_one_line(tmp_path, capsys):
    """An existing output, a missing input, a bad protocol: ``prog: error: ...`` and exit 1, no traceback."""
    from data_prep import quickdraw, sketchrnn, spg, tuberlin

    write_spg(tmp_path / "spg")
    args = [str(tmp_path / "spg"), str(tmp_path / "out"), "--workers", "1"]
    assert spg.main(args) == 1  # the generated folder is not the 20-class SPG: a warning, but prepared
    assert (tmp_path / "out" / "meta.json").exists()
    capsys.readouterr()
    cases = [
        (spg.main, args, "already holds a prepared dataset"),
        (spg.main, [str(tmp_path / "nowhere"), str(tmp_path / "o2")], f"no such folder: {tmp_path / 'nowhere'} ("),
        (spg.main, [str(tmp_path / "svg"), str(tmp_path / "o2")], "does not look like SPG"),
        (tuberlin.main, [str(tmp_path / "nowhere"), str(tmp_path / "o3")], f"no such folder: {tmp_path / 'nowhere'}"),
        (quickdraw.main, ["prepare414k", str(tmp_path / "nowhere"), str(tmp_path / "o3")],
         f"no such folder: {tmp_path / 'nowhere'}"),
        (tuberlin.main, [str(tmp_path / "spg"), str(tmp_path / "o3")], "no <class>/<n>.svg"),
        (sketchrnn.main, [str(tmp_path / "a.npz"), str(tmp_path / "o4")], "a.npz"),
    ]
    rng = np.random.default_rng(4)
    (tmp_path / "svg" / "cat").mkdir(parents=True)
    for i in range(3):
        write_svg(Sketch.from_strokes([s * 4 for s in random_strokes(rng)]), tmp_path / "svg" / "cat" / f"{i}.svg")
    cases.append((tuberlin.main, [str(tmp_path / "svg"), str(tmp_path / "o5"), "--protocol", "bogus"], "protocol"))
    for main, argv, message in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert "error:" in err and message in err and "Traceback" not in err, err


def parsers_of(main) -> list[argparse.ArgumentParser]:
    """The parser a script's ``main`` builds, and its subcommands' parsers."""
    built: list[argparse.ArgumentParser] = []

    def capture(self, *args, **kwargs):
        built.append(self)
        raise SystemExit(0)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(argparse.ArgumentParser, "parse_args", capture)
        with pytest.raises(SystemExit):
            main([])
    subcommands = [a for a in built[0]._actions if isinstance(a, argparse._SubParsersAction)]
    return [built[0], *(p for action in subcommands for p in action.choices.values())]


@pytest.mark.parametrize("script", ["spg", "tuberlin", "sketchrnn", "quickdraw"])
def test_every_script_says_where_to_run_it_and_explains_every_option(script):
    """data_prep is not installed with the package: each script's help says to run it from the repository root;
    and no option is left without a help text (--max-points, --workers, --overwrite, --seed had none)."""
    for parser in parsers_of(importlib.import_module(f"data_prep.{script}").main):
        assert "Run it from the repository root" in parser.format_help(), parser.prog
        bare = [a.dest for a in parser._actions if not a.help and not isinstance(a, argparse._SubParsersAction)]
        assert not bare, (parser.prog, bare)


# ---------------------------------------------------------------------------------------- Ctrl-C, options, odd folders
def not_interrupting(call: Callable[[], int]) -> int:
    """``call()``; a ``KeyboardInterrupt`` it lets out fails the test (instead of stopping the whole pytest run)."""
    try:
        return call()
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped: a traceback, not one line")


def test_ctrl_c_is_one_line_and_exit_status_130(capsys):
    from data_prep import run_script

    def interrupted() -> None:
        raise KeyboardInterrupt

    kept = "partial downloads are kept; rerun to resume"
    assert not_interrupting(lambda: run_script("prog", interrupted, interrupted=kept)) == 130
    assert capsys.readouterr().err == "prog: interrupted (partial downloads are kept; rerun to resume)\n"
    assert not_interrupting(lambda: run_script("prog", interrupted)) == 130
    assert capsys.readouterr().err == "prog: interrupted\n"


@pytest.mark.parametrize("argv, kept", [
    (["download", "--classes", "cat", "--out", "{tmp}/qd"], "partial downloads are kept; rerun to resume"),
    (["prepare414k", "{tmp}/qd", "{tmp}/out"],
     "the source files read so far are cached in {tmp}/out.partial; rerun the same command to resume"),
    (["prepare414k", "{tmp}/qd", "{tmp}/out", "--no-resume"],  # the same command would read everything again
     "the source files read so far are cached in {tmp}/out.partial; rerun the same command without --no-resume to "
     "resume"),
])
def test_the_scripts_say_what_an_interruption_keeps(tmp_path, monkeypatch, capsys, argv, kept):
    from data_prep import quickdraw

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(quickdraw, "download", interrupted)
    monkeypatch.setattr(quickdraw, "prepare_414k", interrupted)
    assert not_interrupting(lambda: quickdraw.main([a.format(tmp=tmp_path) for a in argv])) == 130
    assert capsys.readouterr().err == f"python -m data_prep.quickdraw: interrupted ({kept.format(tmp=tmp_path)})\n"


@pytest.mark.parametrize("workers", ["0", "-3", "two"])
def test_workers_must_be_a_positive_number(tmp_path, capsys, workers):
    from data_prep import spg

    with pytest.raises(SystemExit) as exited:
        spg.main([str(tmp_path), str(tmp_path / "out"), "--workers", workers])
    assert exited.value.code == 2
    assert "argument --workers: must be " in capsys.readouterr().err


def _script_inputs(script: str, root: Path) -> list[str]:
    """Generated inputs of a preparing script: an SPG folder, TU-Berlin class folders, or sketch-rnn files."""
    rng = np.random.default_rng(4)
    if script == "spg":
        write_spg(root)
        return [str(root)]
    if script == "tuberlin":
        for c in ("airplane", "cat"):
            (root / c).mkdir(parents=True)
            for i in range(10):
                write_svg(Sketch.from_strokes([s * 4 for s in random_strokes(rng)]), root / c / f"{i}.svg")
        return [str(root)]
    root.mkdir()
    files = []
    for name in ("cat", "dog"):
        splits = {s: [Sketch.from_strokes([np.round(x) for x in random_strokes(rng)]).to_stroke3() for _ in range(4)]
                  for s in ("train", "valid", "test")}
        files.append(str(write_stroke3_npz(root / f"{name}.npz", **splits)))
    return files


@pytest.mark.parametrize("script", ["spg", "tuberlin", "sketchrnn"])
def test_preparing_scripts_take_the_point_cap_and_its_policy(tmp_path, capsys, script):
    """``--cap adapt`` (re-simplify a drawing over the cap instead of cutting its last strokes) was only in
    ``sketchgraph prepare``; the scripts truncated always. Each now takes it, records it in ``meta.json``, and cuts
    fewer points than ``truncate``; ``--max-points 0`` is a usage error (it was taken as given)."""
    module = importlib.import_module(f"data_prep.{script}")
    inputs = _script_inputs(script, tmp_path / "in")
    cut = {}
    for cap in ("truncate", "adapt"):
        out = tmp_path / cap
        status = module.main([*inputs, str(out), "--max-points", "12", "--cap", cap, "--workers", "1"])
        assert status == (1 if script == "spg" else 0)  # spg: a folder that is not the whole SPG-20 warns, status 1
        meta = json.loads((out / "meta.json").read_text())
        assert meta["preprocessing"] == {"simplify": True, "epsilon": 2.0, "max_points": 12, "cap": cap}
        cut[cap] = meta["counts"]["dropped_points"]
    assert 0 <= cut["adapt"] < cut["truncate"]
    with pytest.raises(SystemExit) as exited:
        module.main([*inputs, str(tmp_path / "zero"), "--max-points", "0"])
    assert exited.value.code == 2 and "argument --max-points: must be >= 1, got 0" in capsys.readouterr().err


def test_spg_help_says_a_subset_warns_and_exits_1(capsys):
    from data_prep import spg

    with pytest.raises(SystemExit):
        spg.main(["--help"])
    assert "still prepared, but with a warning and exit status 1" in " ".join(capsys.readouterr().out.split())


def test_prepare_414k_says_what_to_do_with_binary_files(tmp_path):
    folder = tmp_path / "qd"
    folder.mkdir()
    for word in ("cat", "dog"):
        (folder / f"{word}.bin").write_bytes(b"\0" * 10)
    with pytest.raises(FileNotFoundError) as refused:
        prepare_414k(folder, tmp_path / "out", progress=False)
    assert str(refused.value) == (f"prepare414k reads simplified or raw .ndjson files; found 2 .bin files in {folder} "
                                  "(download --kind simplified or --kind raw)")


def test_prepare_414k_reads_gzipped_files(tmp_path, monkeypatch):
    """``cat.ndjson.gz`` is read (the reader decompresses it); one beside ``cat.ndjson`` is the same drawings."""
    import gzip

    import sketchgraph.data

    folder = tmp_path / "qd"
    folder.mkdir()
    quickdraw_file(folder / "cat.ndjson", "cat", "raw")
    (folder / "cat.ndjson.gz").write_bytes(gzip.compress((folder / "cat.ndjson").read_bytes()))
    quickdraw_file(tmp_path / "dog.ndjson", "dog", "raw", seed=1)
    (folder / "dog.ndjson.gz").write_bytes(gzip.compress((tmp_path / "dog.ndjson").read_bytes()))
    called = []
    monkeypatch.setattr(sketchgraph.data, "prepare", lambda files, out, **kw: called.append((files, kw)))
    prepare_414k(folder, tmp_path / "out", progress=False)
    ((files, kw),) = called
    assert files == [folder / "cat.ndjson", folder / "dog.ndjson.gz"] and kw["preprocessing"].simplify
