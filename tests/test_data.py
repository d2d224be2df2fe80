"""Prepared datasets: prepare -> files on disk -> PreparedDataset -> loader batches."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import sketchgraph.data.pipeline as prepare_module
import sketchgraph.data.sources as sources_module
from sketchgraph.cli import main as cli_main
from sketchgraph.data import PreparedDataset, Protocol, is_prepared, make_loader, parse_protocol, prepare
from sketchgraph.data.flat import preprocess_flat, preprocess_reference
from sketchgraph.data.storage import PARTIAL_MARKER
from sketchgraph.errors import SketchError
from sketchgraph.formats import parse_record, read_sketches
from sketchgraph.graph import FLAG_END, FLAG_PAD, relation_masks
from sketchgraph.preprocess import Preprocessing, preprocess
from sketchgraph.synthetic import CLASSES as SYNTH
from sketchgraph.synthetic import write_dataset

CLASSES = ("cat", "dog", "sun")


# ---------------------------------------------------------------------------------------- fixtures
def random_record(rng: np.random.Generator, style: str, label: str, key: str) -> dict:
    """A Quick, Draw!-like record: 1-5 random-walk strokes; ``raw`` has float coordinates and times."""
    strokes = [np.cumsum(rng.normal(0, 6, size=(int(rng.integers(1, 40)), 2)), axis=0) + rng.uniform(0, 400, size=2)
               for _ in range(int(rng.integers(1, 6)))]
    drawing, t = [], 0.0
    if style == "simplified":  # Google's frame: top-left at 0, the larger extent exactly 255
        lo = np.concatenate(strokes).min(0)
        scale = 255 / max(float((np.concatenate(strokes) - lo).max()), 1e-9)
        for xy in strokes:
            xy = np.round((xy - lo) * scale).astype(int)
            drawing.append([xy[:, 0].tolist(), xy[:, 1].tolist()])
    else:
        for xy in strokes:
            ts = t + np.cumsum(rng.uniform(5, 30, size=len(xy)))
            t = float(ts[-1]) + 100
            drawing.append([np.round(xy[:, 0], 3).tolist(), np.round(xy[:, 1], 3).tolist(), np.round(ts).tolist()])
    return {"word": label, "countrycode": "XX", "recognized": bool(rng.random() < 0.8), "key_id": key,
            "drawing": drawing}


def write_records(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def key(seed: int, class_index: int, i: int) -> str:
    """A 16-digit Quick, Draw!-style drawing id, unique across seeds, classes and records."""
    return str(5_000_000_000_000_000 + seed * 10**8 + class_index * 10**6 + i)


def make_files(root: Path, style: str = "simplified", n: int = 30, seed: int = 0, suffix: str = "") -> list[Path]:
    """One ndjson file per class with ``n`` random records (key ids unique across classes and seeds)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    return [
        write_records(root / f"{c}{suffix}.ndjson",
                      [random_record(rng, style, c, key(seed, ci, i)) for i in range(n)])
        for ci, c in enumerate(CLASSES)
    ]


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of ~2 KB, so every file is cut into many tasks."""
    monkeypatch.setattr(sources_module, "CHUNK_BYTES", 2048)


def dir_bytes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def run(inputs, out, **kw):
    kw.setdefault("workers", 1)
    kw.setdefault("progress", False)
    return prepare(inputs, out, **kw)


# ---------------------------------------------------------------------------------------- preprocessing
@pytest.mark.parametrize("style", ["simplified", "raw"])
@pytest.mark.parametrize("config", [Preprocessing(), Preprocessing(simplify=False), Preprocessing(max_points=12),
                                    Preprocessing(epsilon=0.5, max_points=1000)])
@pytest.mark.parametrize("threads", [1, 3])
def test_preprocess_flat_matches_the_reference(tmp_path, monkeypatch, style, config, threads):
    import sketchgraph.data.flat as flat_module

    monkeypatch.setattr(flat_module, "MIN_THREAD_SKETCHES", 8)  # 40 sketches -> 3 threads of ~13
    (path,) = make_files(tmp_path, style, n=40)[:1]
    sketches = list(read_sketches(path))
    fast, slow = preprocess_flat(sketches, config, threads=threads), preprocess_reference(sketches, config)
    for name in ("coords", "flags", "lengths", "dropped", "times"):
        a, b = getattr(fast, name), getattr(slow, name)
        assert (a is None) == (b is None)
        if a is not None:
            assert a.dtype == b.dtype and np.array_equal(a, b), name


# ---------------------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("style,config", [("simplified", Preprocessing(simplify=False)), ("raw", Preprocessing()),
                                          ("raw", Preprocessing(simplify=False, max_points=20))])
def test_round_trip(tmp_path, style, config):
    files = make_files(tmp_path / "in", style)
    info = run(files, tmp_path / "out", preprocessing=config)
    ds = PreparedDataset(info.path)
    originals = [sk for f in files for sk in read_sketches(f)]
    assert len(ds) == len(originals) == info.num_sketches == 90
    assert ds.classes == list(CLASSES) and info.splits == {"all": 90}
    assert ds.coords.dtype == (np.int16 if config.simplify or style == "simplified" else np.float32)
    assert (ds.times is not None) == (style == "raw" and not config.simplify)
    for i, original in enumerate(originals):
        expected, got = preprocess(original, config), ds.sketch(i)
        assert got.label == original.label and got.key_id == original.key_id
        assert len(got.strokes) == len(expected.strokes)
        for a, b in zip(got.strokes, expected.strokes):
            assert np.array_equal(a, b)
    assert info.counts["truncated"] == sum("dropped_points" in preprocess(o, config).meta for o in originals)


# ---------------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("style", ["simplified", "raw"])
def test_same_bytes_for_any_worker_count_and_path(tmp_path, small_chunks, style):
    files = make_files(tmp_path / "in", style, n=40)
    a = run(files, tmp_path / "a", workers=1)
    b = run(list(reversed(files)), tmp_path / "b", workers=2)
    c = run(files, tmp_path / "c", workers=2, fast=False)
    ref = dir_bytes(a.path)
    assert ref == dir_bytes(b.path) == dir_bytes(c.path)
    assert set(ref) == {"coords.npy", "flags.npy", "offsets.npy", "labels.npy", "split.npy", "key_ids.npy",
                        "meta.json", "errors.jsonl"}


# ---------------------------------------------------------------------------------------- resume / atomicity
class Boom(RuntimeError):
    pass


def test_resume_after_a_kill(tmp_path, monkeypatch, small_chunks):
    files = make_files(tmp_path / "in", n=20)
    clean = run(files, tmp_path / "clean")
    real = prepare_module.run_task
    seen: list[int] = []

    def dies_on_second_file(task, options):
        if task.source.index == 1:
            raise Boom("killed")
        return real(task, options)

    monkeypatch.setattr(prepare_module, "run_task", dies_on_second_file)
    out = tmp_path / "out"
    with pytest.raises(Boom):
        run(files, out)
    assert not out.exists() and not is_prepared(out)
    assert sorted(p.name for p in (tmp_path / "out.partial" / "shards").iterdir()) == ["000000.json", "000000.npz"]

    def counting(task, options):
        seen.append(task.source.index)
        return real(task, options)

    monkeypatch.setattr(prepare_module, "run_task", counting)
    info = run(files, out)
    assert info.resumed_files == 1 and 0 not in seen and set(seen) == {1, 2}
    assert dir_bytes(out) == dir_bytes(clean.path)
    assert not (tmp_path / "out.partial").exists()


def test_no_resume_recomputes(tmp_path, monkeypatch):
    files = make_files(tmp_path / "in", n=5)
    shards = tmp_path / "out.partial" / "shards"
    shards.mkdir(parents=True)
    (tmp_path / "out.partial" / PARTIAL_MARKER).write_text("")  # prepare's own work folder
    (shards / "000000.json").write_text(json.dumps({"fingerprint": "stale"}))
    (shards / "000000.npz").write_bytes(b"junk")
    info = run(files, tmp_path / "out", resume=True)  # a stale shard is ignored (fingerprint differs)
    assert info.resumed_files == 0 and info.num_sketches == 15


def test_existing_dataset_is_kept_unless_overwrite(tmp_path):
    files = make_files(tmp_path / "in", n=5)
    out = tmp_path / "out"
    run(files, out)
    before = dir_bytes(out)
    with pytest.raises(FileExistsError):
        run(files[:1], out)
    assert dir_bytes(out) == before
    info = run(files[:1], out, overwrite=True)
    assert info.num_sketches == 5 and PreparedDataset(out).classes == ["cat"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"] and not (out / PARTIAL_MARKER).exists()


def test_refuses_to_replace_a_foreign_directory(tmp_path):
    files = make_files(tmp_path / "in", n=3)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        run(files, tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "precious.txt").exists()


def test_not_a_dataset(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a prepared dataset"):
        PreparedDataset(tmp_path)
    files = make_files(tmp_path / "in", n=3)
    run(files, tmp_path / "out")
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    meta["format_version"] = 999
    (tmp_path / "out" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(SketchError, match="format 999"):
        PreparedDataset(tmp_path / "out")


# ---------------------------------------------------------------------------------------- bad records
@pytest.mark.parametrize("chunked", [False, True])
def test_malformed_and_empty_records(tmp_path, monkeypatch, chunked):
    if chunked:
        monkeypatch.setattr(sources_module, "CHUNK_BYTES", 300)
    rng = np.random.default_rng(1)
    good = [random_record(rng, "simplified", "cat", f"k{i}") for i in range(6)]
    lines = [good[0], "{not json", good[1], {"key_id": "x"}, "", good[2],
             {"word": "cat", "drawing": [[[1, 2], [3]]]}, {"word": "cat", "key_id": "e", "drawing": []},
             good[3], {"word": "cat", "drawing": [[["a"], [1]]]}, good[4], "   ", good[5]]
    path = write_records(tmp_path / "cat.ndjson", lines)
    info = run([path], tmp_path / "out")
    assert info.num_sketches == 6
    c = info.counts
    assert (c["read"], c["malformed"], c["empty"], c["kept"]) == (11, 4, 1, 6)
    errors = [json.loads(x) for x in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
    assert [(e["line"], e["kind"]) for e in errors] == [(2, "malformed"), (4, "malformed"), (7, "malformed"),
                                                        (8, "empty"), (10, "malformed")]
    assert all(e["message"].startswith(f"{path}:{e['line']}: ") for e in errors)
    assert PreparedDataset(info.path).meta["counts"] == c
    assert [s.key_id for s in map(PreparedDataset(info.path).sketch, range(6))] == [f"k{i}" for i in range(6)]


def test_an_unreadable_npz_split_counts_apart_from_records(tmp_path, break_npz_split):
    """An .npz split that cannot be read at all is reported as ``unreadable``: it is no record, so ``read`` counts
    the records of the other split only, and they keep their own numbers."""
    from sketchgraph.formats import write_stroke3_npz
    from sketchgraph.sketch import Sketch

    def square(k: float) -> Sketch:
        return Sketch.from_strokes([[[0, 50 * k, 50 * k, 0, 0], [0, 0, 50, 50 + k, 0]]])

    path = break_npz_split(write_stroke3_npz(tmp_path / "cat.npz", train=[square(k) for k in (1, 2, 3)],
                                             valid=[square(k) for k in (4, 5)], pickle_free=True), "valid")
    info = run([path], tmp_path / "out")
    c = info.counts
    assert (c["read"], c["malformed"], c["unreadable"], c["kept"], c["not_selected"]) == (3, 0, 1, 3, 0)
    errors = [json.loads(x) for x in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in errors] == ["unreadable"] and "split 'valid'" in errors[0]["message"]


DEGENERATE = [[[0, 255] * 5000, [0, 255] * 5000]]  # 10,000 corner-to-corner jumps: ~3.6M px of ink > MAX_INK


@pytest.mark.parametrize("fast", [True, False])
def test_unusable_records_are_reported_and_skipped(tmp_path, small_chunks, fast):
    """A record the simplification refuses (degenerate ink; non-finite coordinates are refused earlier, when
    parsing) is an error with its line, not the end of the run; a protocol picks among the usable records."""
    rng = np.random.default_rng(2)
    lines = [random_record(rng, "raw", "cat", f"k{i}") for i in range(12)]
    lines[3] = {"word": "cat", "key_id": "bad", "drawing": DEGENERATE}
    lines[8] = {"word": "cat", "key_id": "bad2", "drawing": [[[0, 9, 0] * 3000, [0, 9, 9] * 3000]]}
    path = write_records(tmp_path / "cat.ndjson", lines)
    info = run([path], tmp_path / "out", preprocessing=Preprocessing(), protocol="train=6,valid=2,test=2", fast=fast)
    c = info.counts
    assert (c["read"], c["malformed"], c["not_selected"], c["kept"]) == (12, 2, 0, 10)
    errors = [json.loads(x) for x in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
    assert [(e["line"], e["kind"]) for e in errors] == [(4, "malformed"), (9, "malformed")]
    assert all("too long to simplify" in e["message"] for e in errors)
    assert errors[0]["message"].startswith(f"{path}:4: ")
    keys = {bytes(k).decode() for k in PreparedDataset(info.path).key_ids}
    assert keys == {f"k{i}" for i in range(12)} - {"k3", "k8"}


# ---------------------------------------------------------------------------------------- splits
def test_splits_from_file_names(tmp_path):
    root = tmp_path / "in"
    for split, n in (("train", 8), ("valid", 2), ("test", 3)):
        make_files(root, n=n, seed=n, suffix=f"_{split}")
    for split_files in (None, "auto"):
        info = run([root], tmp_path / f"out_{split_files}", split_files=split_files)
        assert info.splits == {"train": 24, "valid": 6, "test": 9} and info.classes == list(CLASSES)
        ds = PreparedDataset(info.path)
        assert list(ds.meta["splits"]) == ["train", "valid", "test"]
        assert ds.meta["class_counts"]["dog"] == {"train": 8, "valid": 2, "test": 3}
    make_files(tmp_path / "plain", n=2, suffix="")  # no split in any name: one split "all"
    assert run([tmp_path / "plain"], tmp_path / "one").splits == {"all": 6}
    with pytest.raises(SketchError, match="_train/_valid/_test"):
        run([tmp_path / "plain"], tmp_path / "bad", split_files="auto")


@pytest.mark.parametrize("stray", ["extra.ndjson", "notes.json", "dog/1.svg"])
def test_a_stray_untagged_file_among_tagged_ones_is_refused_before_reading(tmp_path, monkeypatch, stray):
    """One file without _train/_valid/_test among tagged ones used to put every sketch in one split 'all' without
    a word, which train then refused; it is refused at once, naming the file, and nothing is read."""
    root = tmp_path / "in"
    for split, n in (("train", 4), ("test", 2)):
        make_files(root, n=n, seed=n, suffix=f"_{split}")
    (root / stray).parent.mkdir(exist_ok=True)
    if stray.endswith(".svg"):
        (root / stray).write_text('<svg xmlns="http://www.w3.org/2000/svg"><path d="M 0 0 L 9 9"/></svg>')
    else:
        write_records(root / stray, [random_record(np.random.default_rng(5), "simplified", "cat", "17")])
    read = []
    monkeypatch.setattr(prepare_module, "_read_sources", lambda *a, **k: read.append(a) or 1 / 0)
    with pytest.raises(SketchError) as refused:
        run([root], tmp_path / "out")
    assert str(refused.value) == (
        f"6 input files have a split at the end of the name (<class>_train / _valid / _test), and 1 has no split (e.g. "
        f"{root / stray}): the splits cannot come from the names, and everything in one split 'all' would leave no "
        "train split. Nothing was read: rename or move the untagged files (or name only the files to read), or split "
        "every class by a seeded sample (--protocol train=0.8,valid=0.1,test=0.1)")
    assert read == [] and not (tmp_path / "out").exists()
    monkeypatch.undo()
    info = run([root], tmp_path / "out", protocol="train=0.5,test=0.5")  # the way out the message gives
    assert set(info.splits) == {"train", "test"}


def test_an_npz_among_untagged_files_is_said_to_hold_its_splits_inside(tmp_path):
    """An ``.npz`` (its splits are arrays inside it) and an untagged ``.ndjson``: the refusal said "1 input file has a
    split at the end of the name", which the ``.npz``'s name has not."""
    import re

    from sketchgraph.formats.npz import write_stroke3_npz
    from sketchgraph.sketch import Sketch

    untagged = make_files(tmp_path / "in", n=2)[0]
    sheep = Sketch.from_strokes([[[0, 10, 20], [0, 5, 0]]])
    write_stroke3_npz(tmp_path / "sheep.npz", train=[sheep] * 3, valid=[sheep], test=[sheep])
    with pytest.raises(SketchError, match=rf"^1 \.npz file holds its splits inside, and 1 has no split \(e\.g\. "
                                          rf"{re.escape(str(untagged))}\): the splits cannot come from the names"):
        run([tmp_path / "sheep.npz", untagged], tmp_path / "out")


@pytest.mark.parametrize("packing", ["name.ndjson.gz", "gzip content named .ndjson"])
def test_named_gzip_files_keep_their_split_and_records(tmp_path, small_chunks, packing):
    """A gzip-compressed ndjson file named on the command line is prepared as its plain form is: its split comes from
    the name without ``.gz`` and, under any name, it is read whole as it is decompressed (never cut into byte
    ranges of the compressed data)."""
    import gzip

    plain = [f for split, n in (("train", 6), ("test", 3))
             for f in make_files(tmp_path / "plain", n=n, seed=n, suffix=f"_{split}")]
    packed = []
    for f in plain:
        out = (tmp_path / "packed" / (f.name + ".gz" if packing.startswith("name") else f.name))
        out.parent.mkdir(exist_ok=True)
        out.write_bytes(gzip.compress(f.read_bytes()))
        packed.append(out)
    want, got = run(plain, tmp_path / "out_plain"), run(packed, tmp_path / "out_packed")
    assert got.splits == want.splits == {"train": 18, "test": 9} and got.classes == want.classes
    keys = [sorted(bytes(k).decode() for k in PreparedDataset(i.path).key_ids) for i in (want, got)]
    assert keys[0] == keys[1] and len(keys[0]) == 27


@pytest.mark.parametrize("indent", [None, 2], ids=["one-line", "pretty"])
def test_a_json_document_named_ndjson_is_prepared_as_the_readers_read_it(tmp_path, small_chunks, indent):
    """A JSON list of records in files named ``.ndjson`` (as some exporters write them): ``predict`` and every
    reader take it whole, and ``prepare`` cut it into byte ranges of lines, each malformed, storing nothing."""
    plain = make_files(tmp_path / "plain", n=8)
    docs = []
    for f in plain:
        records = [json.loads(line) for line in f.read_text().splitlines()]
        out = tmp_path / "docs" / f.name
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(records, indent=indent))
        docs.append(out)
    want, got = run(plain, tmp_path / "out_plain"), run(docs, tmp_path / "out_docs")
    assert got.splits == want.splits and sum(got.splits.values()) == 8 * len(CLASSES)
    keys = [sorted(bytes(k).decode() for k in PreparedDataset(i.path).key_ids) for i in (want, got)]
    assert keys[0] == keys[1]


@pytest.mark.parametrize("fmt", ["raw", "simplified"])
def test_synthetic_dataset(tmp_path, fmt):
    write_dataset(tmp_path / "in", 5, seed=0, format=fmt, splits={"train": 3, "valid": 1, "test": 1})
    cfg = Preprocessing(simplify=fmt == "raw")
    a = run([tmp_path / "in"], tmp_path / "a", preprocessing=cfg)
    b = run([tmp_path / "in"], tmp_path / "b", preprocessing=cfg, fast=False)
    assert a.splits == {"train": 3 * len(SYNTH), "valid": len(SYNTH), "test": len(SYNTH)}
    assert a.classes == sorted(SYNTH) and dir_bytes(a.path) == dir_bytes(b.path)


def test_splits_by_key_id(tmp_path):
    files = make_files(tmp_path / "raw", "raw", n=10)
    splits = tmp_path / "splits"
    splits.mkdir()
    for f, c in zip(files, CLASSES):
        recs = [json.loads(line) for line in f.read_text().splitlines()]
        write_records(splits / f"{c}_train.ndjson", [{"key_id": r["key_id"]} for r in recs[:6]])
        write_records(splits / f"{c}_valid.ndjson", [{"key_id": r["key_id"]} for r in recs[6:7]])
        write_records(splits / f"{c}_test.ndjson", [{"key_id": r["key_id"]} for r in recs[7:9]])
    info = run(files, tmp_path / "out", split_files=splits)
    assert info.splits == {"train": 18, "valid": 3, "test": 6}
    assert info.counts["not_selected"] == 3  # the 10th record of each class is in no split file
    ds = PreparedDataset(info.path)
    valid = ds.split("valid")
    assert sorted(valid.sketch(j).key_id for j in range(len(valid))) == [key(0, ci, 6) for ci in range(3)]
    assert ds.meta["split_method"]["kind"] == "keys" and ds.meta["split_method"]["key_ids"] == 27
    assert ds.meta["split_method"]["key_ids_found"] == 27
    with open(splits / f"{CLASSES[0]}_valid.ndjson", "a") as f:
        f.write(json.dumps({"key_id": "nowhere"}) + "\n")
    method = run(files, tmp_path / "more", split_files=splits).meta["split_method"]
    assert (method["key_ids"], method["key_ids_found"]) == (28, 27)
    write_records(splits / "cat_test.ndjson", [{"key_id": key(0, 0, 0)}])  # also in train
    with pytest.raises(SketchError, match=key(0, 0, 0)):
        run(files, tmp_path / "dup", split_files=splits)


def test_protocol_counts_recognized_and_seeds(tmp_path, small_chunks):
    files = make_files(tmp_path / "in", n=40)
    proto = Protocol({"train": 10, "valid": 3, "test": 4}, recognized_only=True)
    a = run(files, tmp_path / "a", protocol=proto, seed=1)
    b = run(files, tmp_path / "b", protocol=proto, seed=1, workers=2)
    c = run(files, tmp_path / "c", protocol=proto, seed=2)
    assert a.splits == {"train": 30, "valid": 9, "test": 12}
    assert dir_bytes(a.path) == dir_bytes(b.path)
    keys = lambda info: {bytes(k) for k in PreparedDataset(info.path).key_ids}  # noqa: E731
    assert keys(a) != keys(c)
    # the fingerprint follows the content, not the folder: equal for a and b, different for another split seed
    fingerprint = lambda info: PreparedDataset(info.path).fingerprint  # noqa: E731
    assert fingerprint(a) == fingerprint(b) != fingerprint(c)
    assert len(fingerprint(a)) == 64 and int(fingerprint(a), 16) >= 0
    recognized = {r["key_id"] for f in files for r in map(json.loads, f.read_text().splitlines()) if r["recognized"]}
    assert {k.decode() for k in keys(a)} <= recognized
    ds = PreparedDataset(a.path)
    assert all(v == {"train": 10, "valid": 3, "test": 4} for v in ds.meta["class_counts"].values())
    with pytest.raises(SketchError, match="needs 100 eligible"):
        run(files, tmp_path / "short", protocol="train=80,valid=10,test=10")
    frac = run(files, tmp_path / "frac", protocol="train=0.5,valid=0.25,test=0.25")
    assert frac.splits == {"train": 60, "valid": 30, "test": 30}


def test_times_survive_selection(tmp_path, small_chunks):
    files = make_files(tmp_path / "in", "raw", n=30)
    info = run(files, tmp_path / "out", preprocessing=Preprocessing(simplify=False), protocol="train=2,valid=1")
    ds = PreparedDataset(info.path)  # most chunks keep no sketch at all; the kept ones have times
    assert ds.meta["has_times"] and ds.times is not None and len(ds.times) == len(ds.coords)
    originals = {sk.key_id: sk for f in files for sk in read_sketches(f)}
    for i in range(len(ds)):
        got = ds.sketch(i)
        assert np.array_equal(got.times(), originals[got.key_id].times()[: got.num_points])


def test_counts_in_messages_are_singular_for_one(tmp_path, capsys):
    """The summary and the protocol's shortfall said "1 classes", "1 sketches" and "1 classes have fewer"."""
    from sketchgraph.wording import counted

    assert [counted(n, "class") for n in (0, 1, 2)] == ["0 classes", "1 class", "2 classes"]
    assert (counted(1, "sketch"), counted(1200, "sketch"), counted(3, "record")) == ("1 sketch", "1,200 sketches",
                                                                                    "3 records")
    assert (counted(2, "epoch"), counted(2, "eligible sketch"), counted(3, "training epoch")) == (
        "2 epochs", "2 eligible sketches", "3 training epochs")  # "epoches" before
    make_files(tmp_path / "in", n=2)
    run([tmp_path / "in" / f"{CLASSES[0]}.ndjson"], tmp_path / "one", protocol="train=1", progress=True)
    assert f"prepared 1 sketch, 1 class (train 1) -> {tmp_path / 'one'}\n  read 2 records in" in capsys.readouterr().out
    with pytest.raises(SketchError, match=f"needs 3 eligible sketches per class; 1 class has fewer: {CLASSES[0]} "):
        run([tmp_path / "in" / f"{CLASSES[0]}.ndjson"], tmp_path / "short", protocol="train=2,test=1")
    with pytest.raises(SketchError, match=f"needs 3 eligible sketches per class; {len(CLASSES)} classes have fewer"):
        run(sorted((tmp_path / "in").iterdir()), tmp_path / "short", protocol="train=3")


def test_protocol_with_split_files_is_an_error(tmp_path):
    files = make_files(tmp_path / "in", n=3)
    with pytest.raises(ValueError, match="either"):
        run(files, tmp_path / "out", protocol="train=1", split_files="auto")


# ---------------------------------------------------------------------------------------- loading
@pytest.fixture
def dataset(tmp_path) -> PreparedDataset:
    files = make_files(tmp_path / "in", "raw", n=40)
    info = run(files, tmp_path / "out", preprocessing=Preprocessing(max_points=50))
    return PreparedDataset(info.path)


@pytest.mark.parametrize("pad_to", [None, 64])
def test_collate_pads_and_masks(dataset, pad_to):
    rels = ("stroke1", "stroke2", "temporal")
    split = dataset.split("all")
    loader = make_loader(split, 16, shuffle=False, relations=rels, pad_to=pad_to)
    batch = next(iter(loader))
    lengths = split.lengths()[:16]
    N = pad_to or int(lengths.max())
    assert batch.coords.shape == (16, N, 2) and batch.flags.shape == (16, N)
    assert torch.equal(batch.lengths, torch.as_tensor(lengths))
    assert torch.equal(batch.labels, torch.as_tensor(split.labels[:16]))
    expected = relation_masks(batch.flags, rels, pad_self_loops=True)
    assert all(torch.equal(batch.masks[r], expected[r]) for r in rels)
    for b in range(16):
        sk = split.sketch(b)
        n = sk.num_points
        assert torch.equal(batch.coords[b, :n], torch.from_numpy(sk.points()))
        assert (batch.flags[b, n:] == FLAG_PAD).all() and batch.flags[b, n - 1] == FLAG_END


def test_dgl_graph_counts(dataset):
    rels = ("stroke1", "temporal")
    batch = next(iter(make_loader(dataset.split("all"), 8, shuffle=False, relations=rels)))
    g, node_index = batch.dgl()
    assert g.num_nodes("point") == int(batch.lengths.sum()) == len(node_index)
    for r in rels:
        assert g.num_edges(("point", r, "point")) == int((batch.masks[r] & batch.valid[:, :, None]).sum())
    assert g.batch_size == 8


def test_loader_is_deterministic_with_a_seed(dataset):
    def order(seed, **kw):
        return [tuple(b.labels.tolist()) + tuple(b.lengths.tolist())
                for b in make_loader(dataset.split("all"), 7, shuffle=True, seed=seed, relations=(), **kw)]

    assert order(3) == order(3) and order(3) != order(4)
    assert len(order(3, drop_last=True)) == 120 // 7
    assert order(3, num_workers=1) == order(3)  # the dataset pickles by path into the worker


def _record_worker_signals(folder: Path, worker_id: int) -> None:
    """A user's ``worker_init_fn``: writes how the worker takes the stop signals, once make_loader's own ran."""
    import signal

    from sketchgraph.signals import STOP_SIGNALS

    blocked = bool(signal.pthread_sigmask(signal.SIG_BLOCK, set()) & STOP_SIGNALS)
    (folder / f"worker{worker_id}").write_text(f"{signal.getsignal(signal.SIGINT) is signal.SIG_IGN} "
                                               f"{signal.getsignal(signal.SIGTERM).__name__} {blocked}")


def test_loader_workers_ignore_ctrl_c_and_end_quietly_on_sigterm(dataset, tmp_path):
    """A SIGTERM sent to the whole process group (``timeout``, Slurm) killed the loader workers too, and torch then
    stopped the run with "DataLoader worker is killed by signal" instead of the interrupt: the workers ignore
    Ctrl-C, exit quietly on SIGTERM (the main process stops the run), have both unblocked, and a caller's
    ``worker_init_fn`` still runs, after."""
    from functools import partial

    loader = make_loader(dataset.split("all"), 8, shuffle=False, relations=(), num_workers=2,
                         worker_init_fn=partial(_record_worker_signals, tmp_path))
    assert sum(len(b.labels) for b in loader) == 120
    assert sorted(p.read_text() for p in tmp_path.glob("worker*")) == ["True _exit_quietly False"] * 2


def test_a_signal_while_the_loader_workers_start_waits_until_they_have(dataset, monkeypatch):
    """Ctrl-C while an epoch's loader forked its workers raised in the middle of building the iterator, whose
    clean-up then failed ("no attribute '_workers_status'") after the run's last line: it now takes effect once the
    iterator is whole."""
    import signal

    from torch.utils.data import DataLoader

    built = []
    real = DataLoader._get_iterator

    def interrupted_while_building(self):
        os.kill(os.getpid(), signal.SIGINT)  # lands here, before the workers are started
        built.append(real(self))
        return built[-1]

    monkeypatch.setattr(DataLoader, "_get_iterator", interrupted_while_building)
    loader = make_loader(dataset.split("all"), 8, shuffle=False, relations=(), num_workers=2)
    with pytest.raises(KeyboardInterrupt):
        iter(loader)
    assert len(built) == 1 and hasattr(built[0], "_workers_status")  # built whole: its clean-up works
    built[0]._shutdown_workers()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_transform_hook(dataset):
    calls = []

    def drop_last_point(coords, flags, generator):
        assert isinstance(generator, torch.Generator)
        calls.append(torch.rand(1, generator=generator).item())
        n = (flags != FLAG_PAD).sum(1)  # (B,)
        keep = n > 1
        rows = torch.arange(len(n))[keep]
        flags = flags.clone()
        flags[rows, n[keep] - 1] = FLAG_PAD
        flags[rows, n[keep] - 2] = FLAG_END
        return coords, flags

    def first_batch(seed):
        return next(iter(make_loader(dataset.split("all"), 8, shuffle=False, seed=seed, transform=drop_last_point)))

    plain = next(iter(make_loader(dataset.split("all"), 8, shuffle=False)))
    batch = first_batch(5)
    assert torch.equal(batch.lengths, (plain.lengths - 1).clamp(min=1))
    assert all(torch.equal(batch.masks[r], relation_masks(batch.flags, [r], pad_self_loops=True)[r])
               for r in batch.masks)
    first_batch(5)
    assert calls[0] == calls[1]  # the generator is seeded from the loader's seed


def test_sketch_split_is_a_dataset(dataset):
    split = dataset.split("all")
    assert len(split) == 120 and split[3] == 3
    assert np.array_equal(split.__getitems__([5, 1]), [5, 1])
    with pytest.raises(KeyError):
        dataset.split("train")
    with pytest.raises(IndexError):
        dataset.sketch(len(dataset))


# ---------------------------------------------------------------------------------------- CLI
def test_cli_prepare(tmp_path, capsys):
    make_files(tmp_path / "in", "raw", n=12)
    out = tmp_path / "out"
    rc = cli_main(["prepare", str(tmp_path / "in"), "--out", str(out), "--protocol", "train=6,valid=2,test=2",
                   "--relations", "stroke1,temporal", "--max-points", "30", "--workers", "1", "--seed", "3"])
    assert rc == 0
    assert "prepared 30 sketches, 3 classes (train 18 / valid 6 / test 6)" in capsys.readouterr().out
    meta = PreparedDataset(out).meta
    assert meta["graph_spec"] == {"relations": ["stroke1", "temporal"]}
    assert meta["preprocessing"] == {"simplify": True, "epsilon": 2.0, "max_points": 30, "cap": "truncate"}
    assert meta["split_method"] == {"kind": "protocol", "seed": 3, "protocol": {
        "name": "custom", "sizes": {"train": 6, "valid": 2, "test": 2}, "recognized_only": False},
        "empty_splits": []}
    assert cli_main(["prepare", str(tmp_path / "in"), "--out", str(out), "--quiet"]) == 1  # exists
    assert cli_main(["prepare", str(tmp_path / "in"), "--out", str(out), "--quiet", "--overwrite",
                     "--no-simplify"]) == 0
    assert PreparedDataset(out).meta["preprocessing"]["simplify"] is False



@pytest.mark.parametrize("flags, rerun", [([], "rerun the same command"),
                                          (["--no-resume"], "rerun the same command without --no-resume")])
def test_cli_prepare_interrupted_says_what_it_keeps_and_how_to_resume(tmp_path, capsys, monkeypatch, flags, rerun):
    import sketchgraph.data.cli as data_cli

    out = tmp_path / "out"

    def interrupted(args):
        (tmp_path / "out.partial").mkdir()  # a source file was read
        raise KeyboardInterrupt

    monkeypatch.setattr(data_cli, "_run", interrupted)
    assert cli_main(["prepare", str(tmp_path), "--out", str(out), *flags]) == 130
    assert capsys.readouterr().err == (f"sketchgraph prepare: interrupted (the source files read so far are cached "
                                       f"in {tmp_path / 'out.partial'}; {rerun} to resume)\n")


# ---------------------------------------------------------------------------------------- length partition
def _partition_cost(lengths, bounds, quad, call):
    return sum((b - a) * lengths[b - 1] * (1 + lengths[b - 1] / quad) + call for a, b in bounds)


def _all_partitions(n, max_batch):
    """Every way to cut range(n) into consecutive batches of at most max_batch."""
    for mask in range(2 ** max(n - 1, 0)):
        cuts = [0] + [i + 1 for i in range(n - 1) if mask >> i & 1] + [n]
        bounds = list(zip(cuts[:-1], cuts[1:]))
        if all(b - a <= max_batch for a, b in bounds):
            yield bounds


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("max_batch", [1, 3, 8])
def test_partition_by_length_is_the_cheapest_cut(seed, max_batch):
    from sketchgraph.data.loader import partition_by_length

    rng = np.random.default_rng(seed)
    lengths = np.sort(rng.integers(1, 101, size=int(rng.integers(1, 10))))
    quad, call = 128.0, float(rng.choice([0.0, 50.0, 400.0]))
    bounds = partition_by_length(lengths, max_batch, quad=quad, call=call)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(lengths)
    assert all(b1 == a2 for (_, b1), (a2, _) in zip(bounds[:-1], bounds[1:])), "consecutive, no gap"
    assert all(0 < b - a <= max_batch for a, b in bounds)
    best = min(_partition_cost(lengths, p, quad, call) for p in _all_partitions(len(lengths), max_batch))
    assert _partition_cost(lengths, bounds, quad, call) == pytest.approx(best)


def test_partition_by_length_pads_less_than_fixed_batches():
    from sketchgraph.data.loader import partition_by_length

    lengths = np.sort(np.random.default_rng(0).gamma(6.0, 9.0, size=1024).clip(2, 100).round())
    bounds = partition_by_length(lengths, 256)
    padded = sum((b - a) * lengths[b - 1] for a, b in bounds)
    fixed = sum(len(lengths[i : i + 256]) * lengths[i : i + 256].max() for i in range(0, 1024, 256))
    assert padded < 0.9 * fixed and padded >= lengths.sum()
    assert partition_by_length(np.array([]), 4) == []
    with pytest.raises(ValueError, match="ascending"):
        partition_by_length(np.array([3, 1]), 4)
    with pytest.raises(ValueError, match="max_batch"):
        partition_by_length(np.array([1]), 0)


# ---------------------------------------------------------------------------------------- repeated drawings
def stored_keys(path: Path) -> dict[str, list[str]]:
    ds = PreparedDataset(path)
    return {name: sorted(ds.split(name).sketch(j).key_id for j in range(len(ds.split(name))))
            for name in ds.meta["splits"]}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_drawing_repeated_within_and_across_files_is_stored_once(tmp_path, small_chunks, workers):
    """Copies of a drawing (same Quick, Draw! key_id) never land in two splits: the first in input order is kept,
    every repeat is a "duplicate" error with its line, and the protocol still gets its counts of distinct drawings."""
    files = make_files(tmp_path / "in", n=30)
    lines = files[0].read_text().splitlines()
    files[0].write_text("\n".join(lines + lines[:5]) + "\n")  # 5 repeats at the end of the same file (lines 31-35)
    copy = tmp_path / "in" / "zz_copy.ndjson"
    copy.write_text("\n".join(lines[10:20]) + "\n")  # 10 repeats in another file
    info = run(sorted((tmp_path / "in").iterdir()), tmp_path / "out", protocol="train=20,valid=5,test=5",
               workers=workers)
    keys = stored_keys(info.path)
    every = [k for name in keys for k in keys[name]]
    assert len(every) == len(set(every)) == 30 * len(CLASSES)
    assert info.counts["duplicate"] == 15 and info.counts["malformed"] == 0
    errors = [json.loads(x) for x in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
    repeats = [(Path(e["source"]).name, e["line"]) for e in errors if e["kind"] == "duplicate"]
    want = [(files[0].name, n) for n in range(31, 36)] + [(copy.name, n) for n in range(1, 11)]
    assert sorted(repeats) == sorted(want)
    assert all("the first is kept" in e["message"] for e in errors)
    again = run(sorted((tmp_path / "in").iterdir()), tmp_path / "again", protocol="train=20,valid=5,test=5")
    assert stored_keys(again.path) == keys  # the same drawings whatever the worker count


def test_a_drawing_repeated_across_bin_files_is_named_by_record(tmp_path):
    """.bin files have records, not lines: a repeat across them says "record N", as the reader's own messages do."""
    from sketchgraph.formats import write_bin

    files = make_files(tmp_path / "plain", n=6)
    (tmp_path / "in").mkdir()
    sketches = list(read_sketches(files[0]))
    write_bin(sketches, tmp_path / "in" / "cat.bin")
    write_bin(sketches[2:4], tmp_path / "in" / "cat_more.bin")
    info = run([tmp_path / "in"], tmp_path / "out")
    assert info.counts["duplicate"] == 2
    messages = [e["message"] for e in errors_of(info.path) if e["kind"] == "duplicate"]
    bins = (tmp_path / "in").as_posix()
    assert messages == [f"{bins}/cat_more.bin record {n}: key_id {sketches[n + 1].key_id} repeats {bins}/cat.bin "
                        f"record {n + 2}; the first is kept" for n in (1, 2)]


def test_short_key_ids_numbered_per_file_are_not_copies(tmp_path):
    """"0".."9" in cat.ndjson and in dog.ndjson are two classes' own numbering, not repeated drawings."""
    rng = np.random.default_rng(5)
    (tmp_path / "in").mkdir()
    for c in ("cat", "dog"):
        write_records(tmp_path / "in" / f"{c}.ndjson", [random_record(rng, "simplified", c, str(i)) for i in range(10)])
    info = run([tmp_path / "in"], tmp_path / "out")
    assert (info.num_sketches, info.classes, info.counts["duplicate"]) == (20, ["cat", "dog"], 0)


def test_one_file_named_twice_is_read_once(tmp_path, monkeypatch):
    files = make_files(tmp_path / "in", n=5)
    monkeypatch.chdir(tmp_path)
    info = run([tmp_path / "in", Path("in") / files[0].name, files[0]], tmp_path / "out")
    assert info.num_sketches == 5 * len(CLASSES) and info.counts["duplicate"] == 0
    assert len(info.meta["sources"]) == len(CLASSES)


def test_output_inside_an_input_folder_is_not_read_back(tmp_path):
    make_files(tmp_path / "in", n=5)
    first = run([tmp_path / "in"], tmp_path / "in" / "prep")
    second = run([tmp_path / "in"], tmp_path / "in" / "prep", overwrite=True)
    assert (first.counts, first.num_sketches) == (second.counts, second.num_sketches)
    assert [s["path"] for s in second.meta["sources"]] == [s["path"] for s in first.meta["sources"]]
    assert second.meta["left_out"] == []  # its own output is no news


def test_a_shard_is_incomplete_while_it_is_rewritten(tmp_path, monkeypatch):
    """Shard.save removes the old sidecar first, so a kill while the new arrays are written leaves no old
    sidecar paired with new data."""
    from sketchgraph.data.shard import Shard

    stem = tmp_path / "000000"
    Shard.empty().save(stem, {"fingerprint": "old"})
    assert Shard.load_info(stem)["fingerprint"] == "old"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", killed)
    with pytest.raises(KeyboardInterrupt):
        Shard.empty().save(stem, {"fingerprint": "new"})
    assert Shard.load_info(stem) is None


def test_records_of_a_whole_file_are_numbered_as_in_the_file(tmp_path):
    """A .json document is read whole: a drawing the simplification refuses is reported with its own record
    number even after malformed records, named as the reader names records (``record 4``, not ``cat.json:4``, a
    line it is not on), and the errors are in record order whichever check found them."""
    rng = np.random.default_rng(3)
    records = [random_record(rng, "raw", "cat", "k0"), {"word": "cat"}, random_record(rng, "raw", "cat", "k2"),
               {"word": "cat", "key_id": "bad", "drawing": DEGENERATE}, {"word": "cat"},
               random_record(rng, "raw", "cat", "k5")]
    path = tmp_path / "cat.json"
    path.write_text(json.dumps(records))
    info = run([path], tmp_path / "out", preprocessing=Preprocessing())
    assert info.num_sketches == 3
    errors = [json.loads(x) for x in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
    assert [(e["line"], e["kind"]) for e in errors] == [(None, "malformed")] * 3
    assert [e["message"] for e in errors] == [
        f"{path}: record 2: record has no 'drawing' field (fields: ['word'])",
        f"{path}: record 4: drawing too long to simplify: " + errors[1]["message"].split("simplify: ", 1)[1],
        f"{path}: record 5: record has no 'drawing' field (fields: ['word'])"]


@pytest.mark.parametrize("args, rc, message", [
    (["--protocol", "train=5,train=7"], 2, "names split 'train' twice"),
    (["--protocol", "train=abc"], 2, "must be a number"),
    (["--protocol", "train=10,valdi=5"], 2,
     "argument --protocol: split 'valdi' (did you mean 'valid'?) in the protocol {'train': 10, 'valdi': 5}: the usual "
     "splits are train, valid, test"),
    (["--split-files", "nosuchdir"], 1, "no such split file or directory: nosuchdir"),
    (["--protocol", "train=5", "--split-files", "SPLITS"], 1, "either --split-files or --protocol (split_files or "
                                                             "protocol), not both"),
    (["--max-points", "0"], 2, "argument --max-points: expected a positive integer, got '0'"),
    (["--epsilon", "-1"], 2, "argument --epsilon: expected a finite number >= 0, got '-1'"),
    (["--workers", "0"], 2, "argument --workers: expected a positive integer, got '0'"),
    (["--workers", "-1"], 2, "argument --workers: expected a positive integer, got '-1'"),
    # adapt was accepted, every long drawing truncated, and meta.json said "adapt"
    (["--cap", "adapt", "--no-simplify"], 1, "cap 'adapt' simplifies a long drawing again with a coarser tolerance, "
                                             "so it needs simplification: without it (--no-simplify, "
                                             "simplify=False) only 'truncate' applies"),
])
def test_prepare_cli_reports_bad_options(tmp_path, capsys, args, rc, message):
    make_files(tmp_path / "in", n=3)
    args = ["prepare", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--quiet",
            *(str(tmp_path / "in") if a == "SPLITS" else a for a in args)]
    if rc == 2:  # argparse refuses the option value itself
        with pytest.raises(SystemExit) as exit_:
            cli_main(args)
        assert exit_.value.code == 2
    else:
        assert cli_main(args) == rc
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_protocol_refuses_near_misses_of_the_usual_split_names(tmp_path):
    """A typo in a split name (``valdi``) used to prepare a dataset that ``train`` then refused for its missing
    ``valid`` split; the protocol refuses near misses, by the API too, and other names still work."""
    make_files(tmp_path / "in", n=3)
    with pytest.raises(ValueError, match=r"split 'vaild' \(did you mean 'valid'\?\), 'tests' \(did you mean 'test'\?\) "
                                         r"in the protocol .*: the usual splits are train, valid, test"):
        run([tmp_path / "in"], tmp_path / "out", protocol={"train": 1, "vaild": 1, "tests": 1})
    with pytest.raises(ValueError, match=r"'Train' \(did you mean 'train'\?\)"):
        Protocol({"Train": 0.5})
    assert not (tmp_path / "out").exists()
    assert parse_protocol("valid=1,test=1,train=2").sizes == {"valid": 1, "test": 1, "train": 2}
    info = run([tmp_path / "in"], tmp_path / "out", protocol={"train": 1, "val": 1, "holdout": 1})  # custom names
    assert set(info.splits) == {"train", "val", "holdout"}


def test_prepare_help_says_what_the_point_cap_does_under_each_policy(capsys):
    """--max-points said "truncating", which --cap adapt does not do first."""
    with pytest.raises(SystemExit):
        cli_main(["prepare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ("--max-points MAX_POINTS point cap per sketch (default 100): a longer drawing is truncated to it, or "
            "simplified again, coarser, with --cap adapt") in text


def test_prepare_into_the_current_folder_names_it(tmp_path, monkeypatch, capsys):
    make_files(tmp_path / "in", n=3)
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    assert cli_main(["prepare", str(tmp_path / "in"), "--out", ".", "--quiet"]) == 0
    assert is_prepared(tmp_path / "here") and not (tmp_path / "here.partial").exists()


def test_format_ndjson_is_forced_and_keeps_the_chunks(tmp_path):
    """``--format ndjson`` read an SVG as an SVG (it meant "sniff"), where ``sketchgraph predict --format ndjson``
    reads it as ndjson; ndjson files keep their style, so they are still read in parallel chunks."""
    from sketchgraph.data.sources import expand_inputs
    from sketchgraph.formats import write_svg
    from sketchgraph.sketch import Sketch

    svg = tmp_path / "in" / "house.svg"
    svg.parent.mkdir()
    write_svg(Sketch.from_strokes([[[0, 10, 20], [0, 10, 0]]], label="house"), svg)
    files = make_files(tmp_path / "in", "raw", n=3)
    by_name = {s.path.name: s for s in expand_inputs([tmp_path / "in"], format="ndjson")}
    assert by_name["house.svg"].format == "ndjson" and not by_name["house.svg"].chunked
    assert {by_name[f.name].format for f in files} == {"raw"} and all(by_name[f.name].chunked for f in files)
    assert {s.format for s in expand_inputs([tmp_path / "in"])} == {"raw", "svg"}  # without it: each file's own


def test_prepare_says_and_exits_1_when_an_input_gave_nothing(tmp_path, capsys):
    """A file that could not be read at all, or whose records all failed, may be a whole class missing: the
    dataset is written with the rest, but the exit status is 1 (a script running prepare && train stops to look),
    and the summary names the files."""
    files = make_files(tmp_path / "in", n=4)
    (tmp_path / "in" / "junk.ndjson").write_bytes(b"\x00\x01binary")
    (tmp_path / "in" / "table.ndjson").write_text("a,b,c\n1,2,3\n")
    out = tmp_path / "out"
    assert cli_main(["prepare", str(tmp_path / "in"), "--out", str(out), "--workers", "1"]) == 1
    captured = capsys.readouterr()
    assert is_prepared(out) and json.loads((out / "meta.json").read_text())["splits"] == {"all": 4 * len(files)}
    assert (f"  warning: 1 input file held records but gave no sketch (none of their records could be read, or each "
            f"repeated a key_id read before): "
            f"{(tmp_path / 'in' / 'table.ndjson').as_posix()}") in captured.out.splitlines()
    assert captured.err.splitlines()[-1] == (
        f"sketchgraph prepare: 1 file or part of a file could not be read at all and 1 input file gave no sketch "
        f"(named in the summary above, and in {out / 'meta.json'}); the dataset was written with the rest: exit "
        "status 1")
    (tmp_path / "in" / "junk.ndjson").unlink()
    (tmp_path / "in" / "table.ndjson").unlink()
    (tmp_path / "in" / "pig.ndjson").symlink_to(tmp_path / "gone" / "pig.ndjson")  # a class, moved away
    assert cli_main(["prepare", str(tmp_path / "in"), "--out", str(out), "--quiet", "--overwrite"]) == 1
    assert capsys.readouterr().err.splitlines()[-1].startswith("sketchgraph prepare: 1 broken link in the input "
                                                               "folders (named in the summary above")
    left_out = json.loads((out / "meta.json").read_text())["left_out"]
    assert left_out == [{"path": (tmp_path / "in" / "pig.ndjson").as_posix(),
                         "reason": f"a broken link to {tmp_path / 'gone' / 'pig.ndjson'}: No such file or directory"}]
    (tmp_path / "in" / "pig.ndjson").unlink()
    assert cli_main(["prepare", str(tmp_path / "in"), "--out", str(out), "--quiet", "--overwrite"]) == 0


def test_an_input_whose_records_all_repeat_another_inputs_is_said_to_be_a_copy(tmp_path, capsys):
    """A copy of another input gives no sketch because every key_id repeats: the warning said "none of their records
    could be read", though each was read and dropped as a repeat (errors.jsonl: ``duplicate``)."""
    files = make_files(tmp_path / "in", n=3)
    copy = tmp_path / "in" / f"{files[0].stem}_copy.ndjson"
    copy.write_bytes(files[0].read_bytes())
    assert cli_main(["prepare", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--workers", "1"]) == 1
    assert (f"  warning: 1 input file held records but gave no sketch (each of their records repeated a key_id read "
            f"before: copies of other inputs?): {copy.as_posix()}") in capsys.readouterr().out.splitlines()


def test_a_protocol_that_draws_nothing_from_some_files_of_a_class_is_no_failure(tmp_path, capsys):
    """A class spread over several files (SPG's _train/_valid/_test): a small --protocol draw often takes nothing
    from one of them, and that was reported as a file that gave no sketch, with exit status 1, though every class
    was there. Under a protocol only files whose records were all unusable count."""
    for split in ("train", "valid", "test"):
        make_files(tmp_path / "in", n=20, seed={"train": 0, "valid": 1, "test": 2}[split], suffix=f"_{split}")
    args = ["prepare", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--protocol", "train=1,valid=1,test=1",
            "--workers", "1"]
    assert cli_main(args) == 0
    captured = capsys.readouterr()
    assert "gave no sketch" not in captured.out + captured.err
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert sum(not s["kept"] for s in meta["sources"]) > 0  # files the draw took nothing from, as meant


def test_prepare_warns_of_inputs_the_split_files_leave_out_and_of_name_splits_a_protocol_ignores(tmp_path, capsys):
    """Split files that list no drawing of a class dropped the class in silence ("not selected"); a --protocol over
    files whose names carry splits drew new ones without a word; one class is no classifier's dataset."""
    files = make_files(tmp_path / "in", n=6)
    keep = files[0]
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / f"{keep.stem}_train.ndjson").write_text(keep.read_text())
    run([*files], tmp_path / "out", split_files=splits, progress=True)
    out = capsys.readouterr().out.splitlines()
    barren = sorted(f.as_posix() for f in files[1:])
    assert (f"  warning: {len(barren)} input files held records but gave no sketch (none of their records is in the "
            "split files, or none could be read or was new: a class left out?): " + ", ".join(barren[:5])
            + (" ..." if len(barren) > 5 else "")) in out
    assert any(line.startswith("  warning: 1 class (") and "needs at least two" in line for line in out)
    tagged = make_files(tmp_path / "tagged", n=6, suffix="_train")
    run(tagged, tmp_path / "drawn", protocol=parse_protocol("train=2,valid=2,test=2"), progress=True)
    assert (f"  note: {len(tagged)} input files carry a split in their names (_train / _valid / _test); --protocol "
            "drew the splits anew instead (leave it out to keep them)") in capsys.readouterr().out.splitlines()


def test_a_run_killed_between_the_publish_renames_gets_the_old_dataset_back(tmp_path, monkeypatch):
    """publish moves out aside to .out.replaced-<pid>, then renames out.partial to out; a kill between them leaves no
    out. The next prepare moves the old dataset back before anything else (and a finished publish leaves nothing
    beside out)."""
    files = make_files(tmp_path / "in", n=5)
    out = tmp_path / "out"
    first = run(files, out)
    real_replace = os.replace

    def killed_before_the_second_rename(src, dst):
        if Path(src) == tmp_path / "out.partial":
            raise Boom("killed")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", killed_before_the_second_rename)
    with pytest.raises(Boom):
        run(files[:1], out, overwrite=True)
    monkeypatch.undo()
    assert not out.exists() and (tmp_path / f".out.replaced-{os.getpid()}" / "meta.json").is_file()
    with pytest.raises(FileExistsError, match="already holds a prepared dataset"):
        run(files, out)
    assert PreparedDataset(out).classes == list(CLASSES) and PreparedDataset(out).meta["counts"] == first.counts
    run(files[:1], out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]
    assert PreparedDataset(out).classes == ["cat"] and not (out / PARTIAL_MARKER).exists()


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("kind", ["notes", "a copy of a dataset"])
def test_a_users_out_old_is_left_alone(tmp_path, kind, overwrite):
    """OUT.old is a common name for a user's own backup: prepare neither deletes it nor moves it into OUT, whether it
    creates OUT or replaces it (--overwrite)."""
    files = make_files(tmp_path / "in", n=5)
    out, backup = tmp_path / "out", tmp_path / "out.old"
    if kind == "notes":
        backup.mkdir()
    else:
        shutil.copytree(run(files[1:], tmp_path / "elsewhere").path, backup)
    (backup / "NOTE.txt").write_text("precious")
    before = dir_bytes(backup)
    if overwrite:
        run(files, out)
    info = run(files[:1], out, overwrite=overwrite)
    assert dir_bytes(backup) == before
    assert info.num_sketches == 5 and PreparedDataset(out).classes == ["cat"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_users_out_partial_is_refused_and_left_alone(tmp_path, overwrite):
    """prepare builds OUT in OUT.partial: a folder of that name that prepare did not make (no marker file) is refused
    and kept as it is, not emptied and renamed to OUT; prepare's own work folder is reused (resume)."""
    files = make_files(tmp_path / "in", n=5)
    out, partial = tmp_path / "out", tmp_path / "out.partial"
    if overwrite:
        run(files, out)
    partial.mkdir()
    (partial / "NOTE.txt").write_text("precious")
    with pytest.raises(FileExistsError, match=r"out.partial exists and is not a work folder of sketchgraph prepare"):
        run(files[:1], out, overwrite=overwrite, resume=not overwrite)
    assert dir_bytes(partial) == {"NOTE.txt": b"precious"}
    assert PreparedDataset(out).classes == list(CLASSES) if overwrite else not out.exists()


@pytest.mark.parametrize("extra, accepted", [
    ({}, True),  # shards only
    ({"coords.npy": b"x", "meta.json": b"{"}, True),  # and the arrays write_dataset was writing when killed
    ({"NOTE.txt": b"precious"}, False),  # not prepare's: something of the user's is in it
])
def test_a_work_folder_left_by_an_older_prepare_is_taken_back(tmp_path, extra, accepted):
    """A prepare from before the marker file left OUT.partial with only its cached shards (and maybe the arrays it
    was writing): that is recognised and reused, so an upgrade needs no manual cleanup; anything else is refused."""
    files = make_files(tmp_path / "in", n=5)
    out, partial = tmp_path / "out", tmp_path / "out.partial"
    (partial / "shards").mkdir(parents=True)
    for name in ("000000.npz", "000000.json", "000001.tmp.npz"):
        (partial / "shards" / name).write_bytes(b"cached")
    for name, data in extra.items():
        (partial / name).write_bytes(data)
    if accepted:
        info = run(files, out, resume=False)
        assert info.num_sketches == 5 * len(CLASSES) and not partial.exists()
    else:
        with pytest.raises(FileExistsError, match="is not a work folder of sketchgraph prepare"):
            run(files, out, resume=False)
        assert (partial / "NOTE.txt").read_bytes() == b"precious" and not out.exists()


def test_one_class_spelt_differently_is_one_class(tmp_path, capsys):
    """``alarm clock`` / ``alarm_clock`` / ``alarm  clock`` are one class, stored with single spaces whatever the
    counts or the protocol's pick, and reported; case is kept (``Bee`` / ``bee``), and ``t-shirt`` and ``t shirt``
    stay two."""
    rng = np.random.default_rng(9)
    (tmp_path / "in").mkdir()
    spellings = [("a.ndjson", "alarm_clock", 9), ("b.ndjson", "alarm clock", 2), ("c.ndjson", "alarm  clock", 2),
                 ("d.ndjson", "Bee", 2), ("e.ndjson", "bee", 2), ("f.ndjson", "t-shirt", 2), ("g.ndjson", "t shirt", 2),
                 ("h.ndjson", "caf\u00e9", 2), ("i.ndjson", "cafe\u0301", 2)]  # NFC and NFD (macOS file names)
    for n, (name, word, count) in enumerate(spellings):
        write_records(tmp_path / "in" / name, [random_record(rng, "simplified", word, key(9, n, i))
                                               for i in range(count)])
    info = run([tmp_path / "in"], tmp_path / "out", progress=True)
    assert info.classes == ["Bee", "alarm clock", "bee", "caf\u00e9", "t shirt", "t-shirt"]
    assert info.meta["merged_labels"] == {"alarm  clock": "alarm clock", "alarm_clock": "alarm clock",
                                          "cafe\u0301": "caf\u00e9"}
    ds = PreparedDataset(info.path)
    assert ds.meta["class_counts"]["alarm clock"] == {"all": 13}
    assert np.bincount(ds.labels).tolist() == [2, 13, 2, 4, 2, 2]
    out = capsys.readouterr().out
    assert "class 'alarm_clock' stored as 'alarm clock'" in out
    assert "class 'cafe\\u0301' (decomposed) stored as 'caf\u00e9'" in out
    one = run([tmp_path / "in" / "a.ndjson"], tmp_path / "one")
    assert one.meta["merged_labels"] == {} and one.classes == ["alarm_clock"]  # one spelling: kept as it is
    picked = run([tmp_path / "in"], tmp_path / "picked", protocol="train=1")
    assert "alarm clock" in picked.classes and "alarm_clock" not in picked.classes


# ---------------------------------------------------------------------------------------- what a walk reads
def errors_of(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("stray, reason", [
    ("prepA", "a prepared dataset (its meta.json and errors.jsonl are no sketch files)"),
    ("prepB.partial", "the work folder of a prepare (DIR.partial: cached shards)"),
    ("arrays", "the arrays of a prepared dataset"),
])
def test_a_folder_walk_leaves_other_prepared_datasets_out(tmp_path, capsys, stray, reason):
    """Another prepared dataset in an input folder (``prepare data --out data/prep_v1``, later ``--out
    data/prep_v2``) had its errors.jsonl and meta.json read as sketch files, and their untagged names flipped the
    splits to one 'all'; so did the shard files of a .partial work folder. The walk does not go into them, and says
    so in the summary and meta.json."""
    root = tmp_path / "in"
    for split, n in (("train", 4), ("test", 2)):
        make_files(root, n=n, seed=n, suffix=f"_{split}")
    with open(root / "cat_train.ndjson", "a") as f:
        f.write("{not json\n")  # so the first dataset has an errors.jsonl
    first = run([root], root / "prepA")
    assert first.counts["malformed"] == 1 and (root / "prepA" / "errors.jsonl").stat().st_size
    if stray != "prepA":
        (root / "prepA").rename(root / stray)
        (root / stray / "meta.json").unlink()
        (root / stray / "shards").mkdir()
        (root / stray / "shards" / "000000.json").write_text('{"fingerprint": "x", "stats": {}, "errors": []}')
        if stray == "arrays":
            shutil.rmtree(root / stray / "shards")
    second = run([root], tmp_path / "out", progress=True)
    assert second.splits == first.splits == {"train": 12, "test": 6}
    assert [Path(s["path"]).name for s in second.meta["sources"]] == [s.name for s in sorted(root.glob("*.ndjson"))]
    assert second.meta["left_out"] == [{"path": (root / stray).as_posix(), "reason": reason}]
    assert f"  left out of the inputs (1):\n    {(root / stray).as_posix()}: {reason}\n" in capsys.readouterr().out
    assert second.counts == first.counts


@pytest.mark.parametrize("workers", [1, 2])
def test_a_folder_walk_reads_gzipped_ndjson_and_names_the_npz_it_leaves_out(tmp_path, small_chunks, capsys, workers):
    """A folder walk skipped .ndjson.gz / .jsonl.gz / .json.gz without a word, losing whole classes. They are read,
    each whole (never cut into byte ranges of compressed data), with the split and class of the name without .gz;
    an .npz, read only when named, is listed as left out, also when it is all the folder holds."""
    import gzip

    from sketchgraph.data.sources import expand_inputs
    from sketchgraph.formats import write_stroke3_npz
    from sketchgraph.formats.sniff import NPZ_NOT_WALKED

    plain = make_files(tmp_path / "plain", n=30, suffix="_train")  # cat, dog, sun: ~10 KB each, many chunks
    walk = tmp_path / "walk"
    (walk / "sub").mkdir(parents=True)
    shutil.copy(plain[0], walk / "cat_train.ndjson")
    (walk / "dog_train.jsonl.gz").write_bytes(gzip.compress(plain[1].read_bytes()))
    records = [json.loads(x) for x in plain[2].read_text().splitlines()]
    (walk / "sub" / "sun_train.json.gz").write_bytes(gzip.compress(json.dumps(records).encode()))
    npz = write_stroke3_npz(walk / "sub" / "owl.npz", train=[parse_record(records[0])], pickle_free=True)
    sources = expand_inputs([walk])
    assert [(s.path.name, s.label, s.tag, s.chunked) for s in sources] == [
        ("cat_train.ndjson", "cat", "train", True), ("dog_train.jsonl.gz", "dog", "train", False),
        ("sun_train.json.gz", "sun", "train", False)]
    info = run([walk], tmp_path / "out", workers=workers, progress=True)
    want = run(plain, tmp_path / "want")
    assert info.splits == want.splits == {"train": 90} and info.classes == list(CLASSES)
    assert stored_keys(info.path) == stored_keys(want.path)
    assert info.meta["left_out"] == [{"path": npz.as_posix(), "reason": NPZ_NOT_WALKED}]
    assert f"    {npz.as_posix()}: {NPZ_NOT_WALKED}" in capsys.readouterr().out
    only = tmp_path / "only"
    only.mkdir()
    shutil.copy(npz, only / "owl.npz")
    with pytest.raises(SketchError) as nothing:
        run([only], tmp_path / "none")
    assert str(nothing.value) == (f"no sketch files in {only}\n  left out of the inputs (1):\n"
                                  f"    {(only / 'owl.npz').as_posix()}: {NPZ_NOT_WALKED}")
    assert run([only / "owl.npz"], tmp_path / "named").splits == {"train": 1}  # named: read


@pytest.mark.parametrize("packing", ["plain", "gzip"])
def test_a_gzipped_file_numbers_its_records_by_line_as_the_plain_one(tmp_path, small_chunks, packing):
    """A gzip-compressed ndjson file is read whole (``read_located``), and its records are numbered by their line in
    the decompressed file, as the plain file's chunks are, so blank lines do not shift the line a refused drawing
    or a repeated key_id is reported at (it used to be the record count)."""
    import gzip

    rng = np.random.default_rng(4)
    good = [random_record(rng, "raw", "cat", key(4, 0, i)) for i in range(6)]
    lines = [good[0], "", good[1], "{bad", "", {"word": "cat", "key_id": "x", "drawing": DEGENERATE}, good[2],
             "   ", good[1], good[3]]
    path = write_records(tmp_path / "cat_train.ndjson", lines)
    if packing == "gzip":
        path = tmp_path / "cat_train.ndjson.gz"
        path.write_bytes(gzip.compress((tmp_path / "cat_train.ndjson").read_bytes()))
        (tmp_path / "cat_train.ndjson").unlink()
    info = run([path], tmp_path / "out", preprocessing=Preprocessing())
    assert info.num_sketches == 4
    assert [(e["line"], e["kind"]) for e in errors_of(info.path)] == [(4, "malformed"), (6, "malformed"),
                                                                      (9, "duplicate")]
    assert [e["message"].split(": ", 1)[0] for e in errors_of(info.path)] == [f"{path}:4", f"{path}:6", f"{path}:9"]
    repeat = errors_of(info.path)[2]["message"]  # within a chunk, or across two (the file's name then)
    assert repeat.endswith((f"key_id {key(4, 0, 1)} repeats line 3; the first is kept",
                            f"key_id {key(4, 0, 1)} repeats {path.as_posix()}:3; the first is kept"))


@pytest.mark.parametrize("workers", [1, 2])
def test_errors_are_listed_by_source_then_line(tmp_path, small_chunks, workers):
    """errors.jsonl lists every error by source, then line, whichever check found it: the reader (malformed),
    the simplification (degenerate ink), a repeat within the file or one across files (which used to come last)."""
    rng = np.random.default_rng(6)
    first = [random_record(rng, "raw", "cat", key(6, 0, i)) for i in range(3)]
    second = [random_record(rng, "raw", "dog", key(6, 1, i)) for i in range(3)]
    (tmp_path / "in").mkdir()
    a = write_records(tmp_path / "in" / "a.ndjson", [first[0], "{bad", first[1], first[2]])
    b = write_records(tmp_path / "in" / "b.ndjson", [
        first[1],  # 1: repeats a.ndjson:3
        "{bad",  # 2
        second[0],  # 3
        second[0],  # 4: repeats line 3
        {"word": "dog", "key_id": "y", "drawing": DEGENERATE},  # 5
        first[2],  # 6: repeats a.ndjson:4
        second[1],
    ])
    info = run([tmp_path / "in"], tmp_path / "out", preprocessing=Preprocessing(), workers=workers)
    got = [(Path(e["source"]).name, e["line"], e["kind"]) for e in errors_of(info.path)]
    assert got == [(a.name, 2, "malformed"), (b.name, 1, "duplicate"), (b.name, 2, "malformed"),
                   (b.name, 4, "duplicate"), (b.name, 5, "malformed"), (b.name, 6, "duplicate")]
    assert all(set(e) == {"source", "line", "kind", "message"} for e in errors_of(info.path))


# ---------------------------------------------------------------------------------------- when nothing is left
@pytest.mark.parametrize("case", ["all malformed", "wrong --format", "nothing selected"])
def test_when_no_sketch_survives_the_error_gives_the_counts_and_the_first_errors(tmp_path, case):
    """The error said only "no sketches left to store (all malformed, empty or not selected)": it now gives the
    counts and the first errors with file:line (all of them in OUT.partial/errors.jsonl), and the files that held
    no record or were left out."""
    root = tmp_path / "in"
    root.mkdir()
    options = {}
    if case == "all malformed":
        write_records(root / "x.ndjson", ["garbage", {"word": "x"}] * 4)
        (root / "blank.ndjson").write_text("\n\n")
        (root / "empty.json").write_bytes(b"")
    elif case == "wrong --format":
        make_files(root, n=2)
        options["format"] = "bin"
    else:
        make_files(root, n=2)
        (tmp_path / "splits").mkdir()
        write_records(tmp_path / "splits" / "cat_train.ndjson", [{"key_id": "1"}])
        options["split_files"] = tmp_path / "splits"
    with pytest.raises(SketchError) as nothing:
        run([root], tmp_path / "out", **options)
    message, kept = str(nothing.value).rsplit("\n", 1)
    assert kept.startswith(f"(the files read so far are kept in {tmp_path / 'out'}.partial: ")  # what it leaves
    listed = tmp_path / "out.partial" / "errors.jsonl"
    if case == "all malformed":
        x = root / "x.ndjson"
        assert message == "\n".join([
            "no sketches left to store: read 8 records from 2 input files; malformed 8, empty 0, repeated key_ids 0, "
            "not selected 0, files or parts of files unreadable 0",
            f"  first errors (all 8 in {listed}):",
            f"    {x}:1: invalid JSON (Expecting value, column 1)",
            f"    {x}:2: record has no 'drawing' field (fields: ['word'])",
            f"    {x}:3: invalid JSON (Expecting value, column 1)",
            f"    {x}:4: record has no 'drawing' field (fields: ['word'])",
            f"    {x}:5: invalid JSON (Expecting value, column 1)",
            "    ... and 3 more",
            f"  1 input file held no record: {(root / 'blank.ndjson').as_posix()}",
            "  left out of the inputs (1):",
            f"    {(root / 'empty.json').as_posix()}: an empty file (0 bytes)"])
        assert len(listed.read_text().splitlines()) == 8
    elif case == "wrong --format":
        # no record was read: each file is unreadable as a .bin, not a malformed record 1
        assert message.startswith("no sketches left to store: read 0 records from 3 input files; malformed 0, ")
        assert "files or parts of files unreadable 3\n" in message
        assert f"    {root / 'cat.ndjson'}: record 1 (byte 0): " in message
    else:
        assert message == ("no sketches left to store: read 6 records from 3 input files; malformed 0, empty 0, "
                           "repeated key_ids 0, not selected 6, files or parts of files unreadable 0\n"
                           "  every sketch read was left out by the split files or the protocol (see --split-files, "
                           "--protocol)")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------- consistent refusals
@pytest.mark.parametrize("suffix", [".ndjson", ".json", ".jsonl", ".bin", ".svg", ".npz"])
def test_an_empty_file_is_left_out_and_said_so_whatever_its_format(tmp_path, capsys, suffix):
    """An empty .json was "unreadable", an empty .svg a malformed record, an empty .npz unreadable, while an empty
    .ndjson or .bin went by without a word: every empty file is now left out alike, named or walked, and listed
    (a walk leaves an .npz out anyway, and says that)."""
    from sketchgraph.formats.sniff import NPZ_NOT_WALKED

    root = tmp_path / "in"
    make_files(root, n=3)
    empty = root / f"nothing{suffix}"
    empty.write_bytes(b"")
    for inputs in ([root], [*sorted(root.glob("*.ndjson")), empty]):
        out = tmp_path / f"out{len(inputs)}"
        info = run(inputs, out, progress=True)
        reason = NPZ_NOT_WALKED if suffix == ".npz" and inputs == [root] else "an empty file (0 bytes)"
        assert info.num_sketches == 9 and info.meta["left_out"] == [{"path": empty.as_posix(), "reason": reason}]
        assert (info.counts["malformed"], info.counts["unreadable"], errors_of(out)) == (0, 0, [])
        assert f"    {empty.as_posix()}: {reason}" in capsys.readouterr().out
        assert [Path(s["path"]).name for s in info.meta["sources"]] == [f"{c}.ndjson" for c in CLASSES]


@pytest.mark.parametrize("name, content", [("blank.ndjson", "\n  \n"), ("blank.json", " \n"), ("none.json", "[]")])
def test_a_file_holding_no_record_is_named_in_the_summary(tmp_path, capsys, name, content):
    """A file with no record in it (blank lines, an empty JSON list, white space as a .json document, which was
    "not a valid JSON document") is named in the summary and meta.json, not silently taken."""
    root = tmp_path / "in"
    make_files(root, n=3)
    (root / name).write_text(content)
    info = run([root], tmp_path / "out", progress=True)
    assert info.meta["files_without_records"] == [(root / name).as_posix()] and errors_of(info.path) == []
    assert f"  warning: 1 input file held no record: {(root / name).as_posix()}" in capsys.readouterr().out


@pytest.mark.parametrize("word, shown", [(123, "an int: 123"), (["cat"], 'a list: ["cat"]'), (True, "a bool: true"),
                                         ({"en": "cat"}, 'a dict: {"en": "cat"}')])
@pytest.mark.parametrize("suffix", [".ndjson", ".json"])
def test_a_word_that_is_not_a_string_is_a_malformed_record(tmp_path, word, shown, suffix):
    """"word": 123 was silently replaced by the file name's class; it is refused with its line (or record), and
    "word": null still means no word."""
    rng = np.random.default_rng(7)
    records = [random_record(rng, "simplified", "dog", key(7, 0, i)) for i in range(3)]
    records[1]["word"] = word
    records[2]["word"] = None
    path = tmp_path / f"cat{suffix}"
    path.write_text(json.dumps(records) if suffix == ".json" else "".join(json.dumps(r) + "\n" for r in records))
    info = run([path], tmp_path / "out")
    assert info.classes == ["cat", "dog"] and info.num_sketches == 2  # record 3: no word, the file's class
    (error,) = errors_of(info.path)
    where = f"{path}: record 2" if suffix == ".json" else f"{path}:2"
    assert error["message"] == f"{where}: 'word' (the class name) must be a string, found {shown}"


@pytest.mark.parametrize("drawing", [[[[True, 2], [3, 4]]], [[[1, 2], [3, 4]], [[1, 0], [0, False]]],
                                     [[[True, False], [1, 2]]], [[[0.5, 1], [2, True]]]])
@pytest.mark.parametrize("suffix", [".ndjson", ".json"])
def test_booleans_are_not_coordinates(tmp_path, drawing, suffix):
    """true / false among coordinates were read as 1 / 0 (the service refuses them): refused, naming the stroke."""
    rng = np.random.default_rng(8)
    records = [random_record(rng, "simplified", "cat", key(8, 0, i)) for i in range(2)]
    records.insert(1, {"word": "cat", "key_id": key(8, 0, 9), "drawing": drawing})
    path = tmp_path / f"cat{suffix}"
    path.write_text(json.dumps(records) if suffix == ".json" else "".join(json.dumps(r) + "\n" for r in records))
    info = run([path], tmp_path / "out")
    assert info.num_sketches == 2
    (error,) = errors_of(info.path)
    stroke = 1 if len(drawing) == 2 else 0
    where = f"{path}: record 2" if suffix == ".json" else f"{path}:2"
    assert error["message"] == f"{where}: stroke {stroke}: coordinates must be numbers, found a bool"


def test_prepare_help_says_what_relations_do_and_do_not_do(capsys):
    """--relations only sets the masks make_loader builds by default; train and evaluate use the model's own."""
    with pytest.raises(SystemExit):
        cli_main(["prepare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ("recorded in meta.json as the relation masks the Python API's make_loader(split) builds when given none. "
            "sketchgraph train and evaluate do not use it: they build the model's own relations (its preset's, "
            "recorded in the checkpoint)") in text


def test_a_walked_gzip_file_a_forced_format_cannot_read_is_reported_not_fatal(tmp_path):
    """With --format bin (or svg, npz), a gzip-compressed file the walk now picks up is refused by the reader before
    any record: that is one unreadable file in errors.jsonl, and the other files are still prepared."""
    import gzip

    from sketchgraph.formats import write_bin

    plain = make_files(tmp_path / "plain", n=4)
    root = tmp_path / "in"
    root.mkdir()
    write_bin(read_sketches(plain[0]), root / "cat.bin")
    packed = root / "dog.ndjson.gz"
    packed.write_bytes(gzip.compress(plain[1].read_bytes()))
    info = run([root], tmp_path / "out", format="bin")
    assert info.num_sketches == 4 and info.classes == ["cat"] and info.counts["unreadable"] == 1
    (error,) = errors_of(info.path)
    assert (error["source"], error["line"], error["kind"]) == (str(packed), None, "unreadable")
    assert error["message"].startswith(f"{packed}: gzip-compressed, and only ndjson or JSON is read compressed")


@pytest.mark.parametrize("named", [False, True])
def test_a_gzip_copy_beside_its_plain_file_is_read_once(tmp_path, named):
    """After ``gunzip -k`` a folder holds cat.ndjson and cat.ndjson.gz: the drawings are read once (those without a
    key id would otherwise be stored twice), and the .gz is listed as left out."""
    import gzip

    from sketchgraph.data.sources import GZIP_COPY

    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    records = [random_record(rng, "simplified", "cat", "") for _ in range(5)]
    for r in records:
        r.pop("key_id", None)
    plain = write_records(folder / "cat.ndjson", records)
    copy = folder / "cat.ndjson.gz"
    copy.write_bytes(gzip.compress(plain.read_bytes()))
    info = run([plain, copy] if named else [folder], tmp_path / "out")
    assert info.splits == {"all": 5}
    assert info.meta["left_out"] == [{"path": copy.as_posix(), "reason": GZIP_COPY.format(name="cat.ndjson")}]
    alone = run([copy], tmp_path / "alone")  # without its plain copy the .gz is read
    assert alone.splits == {"all": 5}


# ---------------------------------------------------------------------------------------- damaged datasets
def _cut(name: str, keep: float):
    """Damage: ``name`` cut to ``keep`` of its bytes (a copy stopped short)."""
    def damage(folder: Path) -> None:
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: int(len(data) * keep)])
    return damage


def _edit(name: str, change):
    """Damage: array ``name`` replaced by ``change(array)`` (a well-formed ``.npy`` that disagrees with the rest)."""
    def damage(folder: Path) -> None:
        array = np.load(folder / f"{name}.npy")
        np.save(folder / f"{name}.npy", change(array), allow_pickle=True)
    return damage


def _edit_meta(change):
    def damage(folder: Path) -> None:
        meta = json.loads((folder / "meta.json").read_text())
        change(meta)
        (folder / "meta.json").write_text(json.dumps(meta))
    return damage


def _set(array: np.ndarray, index, value) -> np.ndarray:
    array[index] = value
    return array


def _move_one_sketch_to_another_split(split: np.ndarray) -> np.ndarray:
    split[0] = (split[0] + 1) % (split.max() + 1)
    return split


DAMAGES = {  # what a damaged or half-copied dataset looks like -> (the file named, what the message says)
    "coords cut in half": (_cut("coords.npy", 0.5), "coords.npy", "cannot be read (mmap length"),
    "offsets cut in half": (_cut("offsets.npy", 0.5), "offsets.npy", "cannot be read (mmap length"),
    "labels cut in half": (_cut("labels.npy", 0.5), "labels.npy", "cannot be read (mmap length"),
    "flags header cut": (_cut("flags.npy", 0.005), "flags.npy", "cannot be read (EOF: reading array header"),
    "flags missing": (lambda d: (d / "flags.npy").unlink(), "flags.npy", "is missing"),
    "key_ids missing": (lambda d: (d / "key_ids.npy").unlink(), "key_ids.npy", "is missing"),
    "meta.json empty": (lambda d: (d / "meta.json").write_text(""), "meta.json", "is not valid JSON"),
    "meta.json cut": (_cut("meta.json", 0.5), "meta.json", "is not valid JSON"),
    "meta.json a list": (lambda d: (d / "meta.json").write_text("[]"), "meta.json", "holds a list, not a JSON object"),
    "meta.json without classes": (_edit_meta(lambda m: m.pop("classes")), "meta.json", "lacks 'classes'"),
    "num_points a string": (_edit_meta(lambda m: m.update(num_points="7")), "meta.json",
                            "'num_points' is \"7\", not a count"),
    "splits not adding up": (_edit_meta(lambda m: m["splits"].update(train=1)), "meta.json", "add up to"),
    "split shorter": (_edit("split", lambda a: a[:100]), "split.npy", "has shape (100,), not (480,)"),
    "labels shorter": (_edit("labels", lambda a: a[:10]), "labels.npy", "has shape (10,), not (480,)"),
    "a label out of range": (_edit("labels", lambda a: _set(a, 3, 99)), "labels.npy",
                             "sketch 3 has label 99, outside the 4 classes"),
    "labels as int64": (_edit("labels", lambda a: a.astype(np.int64)), "labels.npy", "has dtype int64, not int32"),
    "labels pickled": (_edit("labels", lambda a: a.astype(object)), "labels.npy", "cannot be read"),
    "a split out of range": (_edit("split", lambda a: _set(a, 2, 7)), "split.npy", "sketch 2 is in split 7"),
    "split sizes differ from meta.json": (_edit("split", _move_one_sketch_to_another_split), "split.npy",
                                          "sketches in the splits, meta.json says"),
    "coords shorter but whole": (_edit("coords", lambda a: a[: len(a) // 2]), "coords.npy", "has shape"),
    "offsets not rising": (_edit("offsets", lambda a: _set(a, 5, a[7])), "offsets.npy",
                           "does not rise from 0 by at least 1 point per sketch (entry 6"),
    "offsets not starting at 0": (_edit("offsets", lambda a: _set(a, 0, 1)), "offsets.npy", "does not rise from 0"),
    "offsets ending short": (_edit("offsets", lambda a: _set(a, -1, a[-1] - 1)), "offsets.npy", "ends at"),
    "no stroke end": (_edit("flags", lambda a: _set(a, slice(None), 100)), "flags.npy",
                      "the last point of sketch 0 does not end a stroke"),
    "times where meta.json has none": (lambda d: np.save(d / "times.npy", np.zeros(7031, np.float32)), "times.npy",
                                       "is there, but meta.json says the dataset has no times"),
    "times missing": (_edit_meta(lambda m: m.update(has_times=True)), "times.npy", "is missing"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_dataset_is_refused_when_opened_naming_the_file(easy_prepared, tmp_path, damage):
    """A truncated, half-copied or inconsistent dataset used to fail later with an unnamed error (``mmap length is
    greater than file size``, an IndexError from the loss) or to train on the wrong sketches with no error at all
    (a short split.npy, offsets that fall back). Opening it raises a SketchError naming the file and the dataset."""
    folder = tmp_path / "copy"
    shutil.copytree(easy_prepared, folder)
    change, file, message = DAMAGES[damage]
    change(folder)
    with pytest.raises(SketchError) as err:
        PreparedDataset(folder)
    text = str(err.value)
    assert text.startswith(f"{folder / file}: ") and message in text, text
    assert f"The prepared dataset {folder} is damaged or incomplete" in text and "prepare it again" in text


def test_an_intact_dataset_opens_and_a_worker_refuses_one_changed_under_it(easy_prepared, tmp_path):
    """The checks pass on an intact dataset; a DataLoader worker re-opens it by path and refuses it when its meta.json
    is no longer the one the run opened (prepared again with --overwrite while training)."""
    import pickle

    folder = tmp_path / "copy"
    shutil.copytree(easy_prepared, folder)
    dataset = PreparedDataset(folder)
    assert len(pickle.loads(pickle.dumps(dataset))) == len(dataset) == 480
    state = pickle.dumps(dataset)
    _edit_meta(lambda m: m.update(split_method={"kind": "protocol", "seed": 1}))(folder)
    with pytest.raises(SketchError, match=rf"^{folder} changed on disk while in use"):
        pickle.loads(state)


# ---------------------------------------------------------------------------------------- key ids
@pytest.mark.parametrize("workers", [1, 2])
def test_one_over_long_key_id_does_not_widen_every_key_id(tmp_path, small_chunks, workers):
    """key_ids are fixed-width arrays: one key_id of 50,000 characters made key_ids.npy 100 MB for 2,000 sketches
    (and prepare's memory 2.6 GB). It is not stored (the drawing is kept, with no key_id) and said so; the other key ids
    are kept as they were."""
    from sketchgraph.data.shard import MAX_KEY_ID_CHARS

    records = [{"word": "cat", "key_id": "k" * 50_000 if i == 3 else str(10**15 + i),
                "drawing": [[[0, 10, 20], [0, 5, 0]], [[5, 5], [0, 20 + i % 7]]]} for i in range(200)]
    records[7]["key_id"] = "m" * MAX_KEY_ID_CHARS  # the longest stored
    (tmp_path / "in").mkdir()
    write_records(tmp_path / "in" / "cat.ndjson", records)
    info = run([tmp_path / "in"], tmp_path / "out", workers=workers)
    dataset = PreparedDataset(info.path)
    keys = [k.decode() for k in dataset.key_ids.tolist()]
    assert len(keys) == 200 and keys[3] == "" and keys[7] == "m" * MAX_KEY_ID_CHARS
    assert keys[:3] + keys[4:7] == [str(10**15 + i) for i in (0, 1, 2, 4, 5, 6)]
    assert dataset.key_ids.dtype.itemsize == MAX_KEY_ID_CHARS
    assert (tmp_path / "out" / "key_ids.npy").stat().st_size < 200 * MAX_KEY_ID_CHARS + 1000
    assert info.counts["long_key_ids"] == 1 and info.num_sketches == 200
    source = (tmp_path / "in" / "cat.ndjson").as_posix()
    assert errors_of(tmp_path / "out") == [{
        "source": source, "line": 4, "kind": "long_key_id",
        "message": f"{source}:4: key_id of more than 256 characters, the most stored: the drawing is kept without "
                   "a key_id",
    }]


def test_an_over_long_key_id_never_widens_the_records_read(tmp_path, monkeypatch):
    """Not only the stored key_ids: the records read from a chunk hold at most MAX_KEY_ID_CHARS + 1 characters of
    a key_id, so one 50,000-character key_id does not cost every record of the chunk 200 KB while it is read."""
    from sketchgraph.data.shard import MAX_KEY_ID_CHARS, Shard

    widths = []
    original = Shard.drop_long_key_ids

    def spy(self, source):
        widths.append(self.key_ids.dtype.itemsize // np.dtype("U1").itemsize)
        return original(self, source)

    monkeypatch.setattr(Shard, "drop_long_key_ids", spy)
    records = [{"word": "cat", "key_id": "k" * 50_000 if i == 3 else str(10**15 + i),
                "drawing": [[[0, 10, 20], [0, 5, 0]]]} for i in range(20)]
    (tmp_path / "in").mkdir()
    write_records(tmp_path / "in" / "cat.ndjson", records)
    info = run([tmp_path / "in"], tmp_path / "out", workers=1)
    assert widths and max(widths) == MAX_KEY_ID_CHARS + 1 and info.counts["long_key_ids"] == 1


def test_prepare_syncs_the_dataset_to_disk_before_publishing_it(tmp_path, sync_events):
    """The renames are atomic against a kill, not against a power loss, after which a renamed folder could hold empty
    files: every file of the dataset, and the folder, are synced before the rename, the parent after it; a cached
    shard's arrays before the sidecar that vouches for them."""
    files = make_files(tmp_path / "in", n=5)
    events = sync_events
    run(files, tmp_path / "out")
    partial, out = os.path.realpath(tmp_path / "out.partial"), os.path.realpath(tmp_path / "out")
    published = events.index(("replace", partial, out))
    synced = {e[1] for e in events[:published] if e[0] == "fsync"}
    assert {os.path.join(partial, name) for name in os.listdir(out)} | {partial} <= synced
    assert ("fsync", os.path.realpath(tmp_path)) in events[published:]
    sidecars = [i for i, e in enumerate(events) if e[0] == "replace" and e[1].endswith(".tmp.json")]
    assert len(sidecars) == 3
    for i in sidecars:
        arrays = events[i][1].replace(".tmp.json", ".tmp.npz")
        assert ("fsync", arrays) in events[:i]


# ------------------------------------------------------------------------------ prepare CLI: help, refusals
def _value_options_without_default(configure) -> list[str]:
    """The options taking a value (not flags, not required) whose help does not state a default."""
    import argparse

    parser = argparse.ArgumentParser()
    configure(parser)
    return [a.option_strings[-1] for a in parser._actions
            if a.option_strings and a.nargs != 0 and not a.required and "default" not in (a.help or "")]


def test_every_prepare_option_states_its_default():
    """``--cap`` (truncate) and ``--protocol`` (none) did not say what they default to."""
    from sketchgraph.data.cli import configure_parser

    assert _value_options_without_default(configure_parser) == []


def test_the_api_says_what_a_refusal_after_reading_leaves_in_the_work_folder(tmp_path):
    """Only the CLI said that a refusal after reading leaves OUT.partial (and what a re-run does with it); a refusal
    before anything is read says nothing of the kind."""
    make_files(tmp_path / "in", n=12)
    out = tmp_path / "out"
    with pytest.raises(SketchError) as refused:
        run([tmp_path / "in"], out, protocol="train=10,valid=5")
    assert str(refused.value).startswith("protocol train=10,valid=5 needs 15 eligible sketches per class; ")
    assert str(refused.value).endswith(
        f"\n(the files read so far are kept in {out}.partial: a re-run on the same files with the same "
        "preprocessing, protocol, seed and split files reuses them instead of reading them again; delete that "
        "folder, or pass --no-resume (resume=False in Python), to start over)")
    (tmp_path / "none").mkdir()
    with pytest.raises(SketchError) as refused:
        run([tmp_path / "none"], tmp_path / "out2")
    assert "kept in" not in str(refused.value) and not (tmp_path / "out2.partial").exists()


def test_a_protocol_refusal_names_the_option_and_the_work_folder_it_leaves(tmp_path, capsys):
    """A ``--protocol`` asking more sketches than a class has is refused after reading: the error said "protocol
    'custom'" (the library's name for the user's own sizes) and did not mention OUT.partial, which it leaves behind
    (by design: the files read are cached there, and an identical re-run reuses them)."""
    make_files(tmp_path / "in", n=12)
    out = tmp_path / "out"
    args = ["prepare", str(tmp_path / "in"), "--out", str(out), "--protocol", "train=10,valid=5", "--quiet",
            "--workers", "1"]
    assert cli_main(args) == 1
    assert (refusal := capsys.readouterr().err) == (
        "sketchgraph prepare: error: --protocol train=10,valid=5 needs 15 eligible sketches per class; 3 classes have "
        "fewer: cat (12), dog (12), sun (12)\n"
        f"(the files read so far are kept in {out}.partial: a re-run on the same files with the same preprocessing, "
        "protocol, seed and split files reuses them instead of reading them again; delete that folder, or pass "
        "--no-resume (resume=False in Python), to start over)\n")
    shards = sorted((out.parent / "out.partial" / "shards").iterdir())
    assert [p.name for p in shards] == [f"00000{i}.{ext}" for i in range(3) for ext in ("json", "npz")]
    written = [p.stat().st_mtime_ns for p in shards]
    assert cli_main(args) == 1  # the same run again: the cached shards are read, not rewritten
    assert [p.stat().st_mtime_ns for p in shards] == written and capsys.readouterr().err == refusal
    assert not out.exists()
    (tmp_path / "empty").mkdir()  # refused before any work folder is made: no note
    assert cli_main(["prepare", str(tmp_path / "empty"), "--out", str(tmp_path / "other"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"sketchgraph prepare: error: no sketch files in {tmp_path / 'empty'}")
    assert ".partial" not in err and not (tmp_path / "other.partial").exists()


def test_opening_a_dataset_folder_that_does_not_exist_says_so(tmp_path):
    """A typo in ``train --data`` said "not a prepared dataset (no meta.json); run sketchgraph prepare"."""
    with pytest.raises(FileNotFoundError) as missing:
        PreparedDataset(tmp_path / "nope")
    assert str(missing.value) == f"no such folder: {tmp_path / 'nope'}"
    with pytest.raises(FileNotFoundError, match=r"not a prepared dataset \(no meta\.json\); run `sketchgraph prepare`"):
        PreparedDataset(tmp_path)
