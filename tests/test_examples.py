"""The shipped example drawings: present as package data, readable, recognisable classes."""

from __future__ import annotations

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
