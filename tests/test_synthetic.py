"""The synthetic dataset generator: determinism, file layout, RAW-likeness, and learnability."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from sketchgraph.errors import SketchError
from sketchgraph.preprocess import simplify
from sketchgraph.synthetic import CLASSES, make_dataset, make_sketch, sketch_record, write_dataset


def digest(paths) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def test_classes():
    assert len(CLASSES) == 10 and len(set(CLASSES)) == 10
    assert set(CLASSES) == {"circle", "square", "triangle", "star", "house", "spiral", "zigzag", "cross", "heart",
                            "arrow"}


def test_deterministic_and_independent_of_the_request():
    a = make_dataset(3, seed=5)
    assert a == make_dataset(3, seed=5)
    assert a != make_dataset(3, seed=6)
    assert [s.label for s in a] == [c for c in CLASSES for _ in range(3)]
    assert len({s.key_id for s in a}) == 30 and all(len(s.key_id) == 16 and s.key_id.isdigit() for s in a)
    # sketch i of a class does not depend on how many were asked for, or on the other classes
    h = 3 * CLASSES.index("heart")
    assert make_dataset(5, seed=5, classes=["heart"])[:3] == a[h : h + 3]


def test_raw_like(synthetic_sketches):
    for sk in synthetic_sketches:
        assert sk.has_time and sk.recognized is True
        t = sk.times()
        assert t[0] == 0 and np.all(np.diff(t) >= 0)
        starts = np.cumsum(sk.stroke_lengths())[:-1]
        assert np.all(np.diff(t)[starts - 1] >= 80)  # pauses between strokes
        pts = sk.points()
        assert not np.array_equal(pts, np.round(pts))  # float coordinates
        assert sk.num_points > simplify(sk).num_points  # dense: simplification removes points
    spans = [np.ptp(sk.points(), axis=0).max() for sk in synthetic_sketches]
    assert min(spans) < 255 < max(spans)  # canvas sizes vary around the 255 frame


def test_write_dataset_splits_and_bytes(tmp_path):
    splits = {"train": 3, "valid": 1, "test": 1}
    paths = write_dataset(tmp_path / "a", 5, seed=1, splits=splits, classes=["star", "cross"])
    assert [p.name for p in paths] == [f"{c}_{s}.ndjson" for c in ("star", "cross") for s in splits]
    again = write_dataset(tmp_path / "b", 5, seed=1, splits=splits, classes=["star", "cross"])
    assert digest(paths) == digest(again)
    recs = [json.loads(line) for line in paths[0].read_text().splitlines()]
    assert len(recs) == 3 and list(recs[0]) == ["word", "key_id", "recognized", "drawing"]
    assert recs[0]["word"] == "star" and all(len(stroke) == 3 for stroke in recs[0]["drawing"])
    keys = [json.loads(line)["key_id"] for p in paths[:3] for line in p.read_text().splitlines()]
    assert keys == [s.key_id for s in make_dataset(5, seed=1, classes=["star"])]


@pytest.mark.parametrize(
    "splits, counts",
    [(None, [7]), ({"train": 0.8, "valid": 0.1, "test": 0.1}, [6, 1, 0]), ({"a": 0.5, "b": 0.5}, [4, 3])],
)
def test_write_dataset_counts(tmp_path, splits, counts):
    paths = write_dataset(tmp_path, 7, seed=0, splits=splits, classes=["circle"])
    assert [len(p.read_text().splitlines()) for p in paths] == counts
    if splits is None:
        assert [p.name for p in paths] == ["circle.ndjson"]


@pytest.mark.parametrize(
    "kwargs",
    [dict(splits={"train": 3, "test": 1}), dict(splits={"train": 0.5, "test": 0.2}), dict(format="svg"),
     dict(classes=["unicorn"]), dict(classes=[])],
)
def test_write_dataset_rejects(tmp_path, kwargs):
    with pytest.raises(SketchError):
        write_dataset(tmp_path, 5, seed=0, **kwargs)


def test_simplified_records():
    sk = make_sketch("house", np.random.default_rng(0))
    rec = sketch_record(sk, "simplified")
    expected = simplify(sk)
    assert rec["drawing"] == [[s[:, 0].astype(int).tolist(), s[:, 1].astype(int).tolist()] for s in expected.strokes]
    flat = [v for stroke in rec["drawing"] for axis in stroke for v in axis]
    assert all(isinstance(v, int) and 0 <= v <= 255 for v in flat)
    with pytest.raises(SketchError):
        make_sketch("unicorn", np.random.default_rng(0))


def test_read_back_with_the_formats_reader(synthetic_dir):
    from sketchgraph.formats import read_sketches

    sketches = list(read_sketches(synthetic_dir))
    assert len(sketches) == 100 and {s.label for s in sketches} == set(CLASSES)
    made = {s.key_id: s for s in make_dataset(10, seed=0)}
    for sk in sketches:
        ref = made[sk.key_id]
        assert sk.label == ref.label and sk.stroke_lengths().tolist() == ref.stroke_lengths().tolist()
        np.testing.assert_allclose(sk.points(), ref.points(), atol=0.006)  # written with 2 decimals
        np.testing.assert_array_equal(sk.times(), ref.times())


def raster(sk, n: int = 16) -> np.ndarray:
    """A simplified sketch drawn into an ``n x n`` image, flattened ``(n * n,)``."""
    from PIL import Image, ImageDraw

    im = Image.new("L", (n, n), 0)
    draw = ImageDraw.Draw(im)
    for s in sk.strokes:
        pts = [(float(x) * (n - 1) / 255, float(y) * (n - 1) / 255) for x, y in s]
        draw.line(pts, fill=255) if len(pts) > 1 else draw.point(pts, fill=255)
    return np.asarray(im, np.float32).ravel() / 255


def test_learnable_but_not_trivial():
    """A linear model on 16x16 rasters separates the classes; stroke and point counts do not."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    train = [simplify(s) for s in make_dataset(40, seed=0)]
    test = [simplify(s) for s in make_dataset(15, seed=1)]
    y_tr = np.array([CLASSES.index(s.label) for s in train])
    y_te = np.array([CLASSES.index(s.label) for s in test])
    pixels = LogisticRegression(max_iter=300, C=0.5).fit(np.stack([raster(s) for s in train]), y_tr)
    acc = (pixels.predict(np.stack([raster(s) for s in test])) == y_te).mean()
    counts = lambda ds: np.array([[s.num_strokes, s.num_points] for s in ds])  # noqa: E731
    trivial = RandomForestClassifier(50, random_state=0).fit(counts(train), y_tr)
    acc_trivial = (trivial.predict(counts(test)) == y_te).mean()
    assert acc >= 0.85, acc
    assert acc_trivial <= 0.75, acc_trivial
