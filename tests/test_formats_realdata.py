"""The readers on the real datasets in ``../shared/data`` (skipped when that folder is absent)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_data_path as data_path  # noqa: E402

from sketchgraph.formats import detect_format, read_sketches, render_png, write_bin, write_ndjson

SPG_CLASSES = ["airplane", "alarm_clock"]
SPG_COUNTS = {"train": 650, "valid": 50, "test": 100}


def part_names(cls: str) -> list[str]:
    return [line for line in data_path("spg20", "parts", f"{cls}.txt").read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("cls", SPG_CLASSES)
def test_spg_splits(cls):
    n_parts = len(part_names(cls))
    for split, count in SPG_COUNTS.items():
        path = data_path("spg20", "splits", f"{cls}_{split}.ndjson")
        assert detect_format(path) == "spg"
        sketches = list(read_sketches(path))
        assert len(sketches) == count
        for s in sketches:
            assert s.label == cls.replace("_", " ") and s.key_id and not s.has_time  # the Quick, Draw! word
            assert s.parts is not None and all(len(p) == len(st) for p, st in zip(s.parts, s.strokes))
            assert 0 <= min(p.min() for p in s.parts) and max(p.max() for p in s.parts) < n_parts
            lo, hi = s.points().min(), s.points().max()
            assert 0 <= lo and hi <= 255


@pytest.mark.parametrize("cls", SPG_CLASSES)
def test_spg_raw_matches_the_splits(cls):
    raw = list(read_sketches(data_path("spg20", "raw", f"{cls}_raw.ndjson")))
    assert len(raw) == 800
    assert all(s.label == cls.replace("_", " ") and s.parts is not None and "i" in s.meta for s in raw)
    splits = [data_path("spg20", "splits", f"{cls}_{split}.ndjson") for split in SPG_COUNTS]
    split_ids = {s.key_id for path in splits for s in read_sketches(path)}
    assert {s.key_id for s in raw} == split_ids


def test_spg_ndjson_rewrite_is_identical(tmp_path):
    src = data_path("spg20", "splits", "airplane_valid.ndjson")
    original = list(read_sketches(src))
    out = tmp_path / "airplane_valid.ndjson"
    write_ndjson(original, out, style="spg")
    back = list(read_sketches(out))
    assert [s.key_id for s in back] == [s.key_id for s in original]
    for a, b in zip(back, original):
        assert all(np.array_equal(x, y) for x, y in zip(a.strokes, b.strokes))
        assert all(np.array_equal(x, y) for x, y in zip(a.parts, b.parts))


def test_quickdraw_simplified_every_class():
    folder = data_path("quickdraw_simplified")
    files = sorted(folder.glob("*.ndjson"))
    assert len(files) == 324
    sketches = list(read_sketches(folder))  # a directory walk, in sorted file order
    assert len(sketches) == 25 * 324
    by_label: dict[str, int] = {}
    for s in sketches:
        by_label[s.label] = by_label.get(s.label, 0) + 1
        pts = s.points()
        assert s.parts is None and not s.has_time and s.recognized is not None
        assert pts.min() >= 0 and pts.max() <= 255 and (pts == np.round(pts)).all()
    assert by_label == {f.stem: 25 for f in files}  # the "word" field equals the file name
    assert "The Eiffel Tower" in by_label


def test_quickdraw_simplified_bin_round_trip(tmp_path):
    original = list(read_sketches(data_path("quickdraw_simplified", "The Eiffel Tower.ndjson")))
    out = tmp_path / "The Eiffel Tower.bin"
    write_bin(original, out)
    back = list(read_sketches(out))
    assert len(back) == 25
    for a, b in zip(back, original):
        assert (a.key_id, a.label, a.recognized) == (b.key_id, b.label, b.recognized)
        assert a.meta["countrycode"] == b.meta["countrycode"]
        assert all(np.array_equal(x, y) for x, y in zip(a.strokes, b.strokes))


@pytest.mark.parametrize(("name", "counts"), [("aaron_sheep", (7400, 300, 300)), ("omniglot", (None, 1000, 1000))])
def test_sketchrnn_npz(name, counts):
    path = data_path("sketchrnn", f"{name}.npz")
    assert detect_format(path) == "npz"
    for split, count in zip(("train", "valid", "test"), counts):
        if count is None:  # omniglot's 30,000 training sketches: the other splits suffice
            continue
        sketches = list(read_sketches(path, split=split))
        assert len(sketches) == count
        assert all(s.label == name and s.meta["split"] == split for s in sketches)
    first = next(iter(read_sketches(path, split="test")))
    x0, y0, x1, y1 = first.bounds
    assert 10 < max(x1 - x0, y1 - y0) < 2000 and first.num_strokes >= 1


TUBERLIN = {"airplane": range(1, 6), "alarm clock": range(81, 86), "angel": range(161, 166)}


@pytest.mark.parametrize(("cls", "number"), [(c, n) for c, ns in TUBERLIN.items() for n in ns])
def test_tuberlin_svg(tmp_path, cls, number):
    path = data_path("tuberlin_svg", cls, f"{number}.svg")
    (sketch,) = read_sketches(path)
    assert sketch.label == cls and sketch.key_id == str(number)
    assert sketch.num_strokes >= 5
    x0, y0, x1, y1 = sketch.bounds
    assert 0 <= x0 < x1 <= 800 and 0 <= y0 < y1 <= 800  # transforms applied: inside the viewBox
    assert max(x1 - x0, y1 - y0) > 300  # TU-Berlin sketches fill most of the frame
    img = np.asarray(render_png(sketch, tmp_path / f"{number}.png", size=128))
    assert (img < 128).sum() > 200
