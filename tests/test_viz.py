"""viz: graph drawings and attention grids render to readable PNGs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sketchgraph.graph import GraphSpec, build_graph
from sketchgraph.predict import Prediction, SketchClassifier
from sketchgraph.preprocess import preprocess
from sketchgraph.sketch import Sketch
from sketchgraph.viz import RELATION_STYLE, _edges, draw_graph, draw_sketches, plot_attention

HOUSE = [[[100, 300, 300, 100, 100], [300, 300, 150, 150, 300]], [[90, 200, 310], [160, 60, 160]]]
PREDS = [Prediction("house", 0.7, 3), Prediction("sun", 0.2, 4), Prediction("cat", 0.1, 1)]


def legend_texts(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


@pytest.mark.parametrize("source", ["sketch", "graph", "lists"])
@pytest.mark.parametrize("prediction", [None, PREDS, [p.to_dict() for p in PREDS], [("house", 0.7), ("sun", 0.3)]])
def test_draw_graph_png(tmp_path, source, prediction):
    sketch = Sketch.from_strokes(HOUSE, label="house")
    obj = {"sketch": sketch, "lists": HOUSE, "graph": build_graph(preprocess(sketch), GraphSpec())}[source]
    path = tmp_path / "out" / "house.png"
    fig = draw_graph(obj, path, prediction=prediction, dpi=50)
    with Image.open(path) as im:
        assert im.format == "PNG"
        width, height = im.size
    assert width == round(fig.get_figwidth() * 50) and height == round(fig.get_figheight() * 50)
    assert len(fig.axes) == (1 if prediction is None else 2)
    if prediction is not None:
        assert [t.get_text() for t in fig.axes[1].get_yticklabels()][-1] == "house"  # best on top


def test_long_names_are_shortened_and_the_true_class_matched_by_canonical_name():
    """Long class names are cut with "..." so they stay in their panel; "alarm_clock" is the class "alarm clock"
    (its bar is green); counts take their plural only when there are several."""
    long = "The Great Wall of China seen from the moon"
    fig = draw_graph(Sketch.from_strokes(HOUSE[:1], label="alarm_clock"),
                     prediction=[(long, 0.5), ("alarm clock", 0.3), ("crab", 0.2)])
    ticks = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert ticks[-1].endswith("...") and len(ticks[-1]) <= 18 and "alarm clock" in ticks
    green = [tuple(round(c, 3) for c in bar.get_facecolor()[:3]) for bar in fig.axes[1].patches]
    assert green.count((0.173, 0.627, 0.173)) == 1 and green[ticks.index("alarm clock")] == (0.173, 0.627, 0.173)
    assert fig.axes[0].get_title() == "alarm_clock: 5 points, 1 stroke"
    gallery = draw_sketches([Sketch.from_strokes([[[5], [5]]], label=long)])
    name, _, rest = gallery.axes[0].get_title().partition(" (")
    assert name == "The Great..." and rest == "1 stroke)"  # cut at a word boundary, within 16 characters


@pytest.mark.parametrize("relations", [("stroke1",), ("stroke1", "temporal"), ("stroke2", "temporal", "full")])
def test_legend_names_each_relation(relations):
    fig = draw_graph(Sketch.from_strokes(HOUSE), relations=relations)
    texts = legend_texts(fig)
    assert all(RELATION_STYLE[r]["label"] in texts for r in relations)
    assert "point (node)" in texts and "stroke end" in texts


@pytest.mark.parametrize("relation, expected", [
    ("stroke1", 4 + 2),  # two strokes of 5 and 3 points: 4 + 2 consecutive pairs
    ("temporal", 2),  # the pen-up jump between the strokes, and first <-> last point
    ("full", 8 * 7 // 2),
])
def test_edges_are_undirected_without_self_loops(relation, expected):
    graph = build_graph(Sketch.from_strokes(HOUSE), GraphSpec(("stroke1",)))  # other relations come from flags
    pairs = _edges(graph, relation)
    assert len(pairs) == expected and np.all(pairs[:, 0] < pairs[:, 1])


def test_plot_attention_from_classifier(tiny_checkpoint, tmp_path):
    clf = SketchClassifier.from_pretrained(tiny_checkpoint)
    maps = clf.attention_maps(Sketch.from_strokes(HOUSE))
    fig = plot_attention(maps, tmp_path / "attn.png", layer=0, dpi=40)
    heads = next(iter(maps.values())).shape[1]
    assert len(fig.axes) == len(maps) * heads + 1  # panels + colour bar
    assert (tmp_path / "attn.png").stat().st_size > 1000


def test_plot_attention_rejects_nothing():
    with pytest.raises(ValueError, match="no attention"):
        plot_attention({})


# ------------------------------------------------------------------------------------------ demo
def _example_files(tmp_path):
    from sketchgraph.formats import write_ndjson

    write_ndjson([Sketch.from_strokes(HOUSE, label="house")], tmp_path / "house.ndjson")
    sun = [[[0, 40, 80, 40, 0], [40, 0, 40, 80, 40]], [[90, 120], [40, 40]]]
    write_ndjson([Sketch.from_strokes(sun, label="sun"), Sketch.from_strokes(HOUSE, label="house")],
                 tmp_path / "two.ndjson")
    return [tmp_path / "house.ndjson", tmp_path / "two.ndjson"]


def test_demo_writes_a_png_per_sketch(tiny_checkpoint, tmp_path, capsys):
    from sketchgraph.cli import main

    files = _example_files(tmp_path)
    out = tmp_path / "demo"
    assert main(["demo", *map(str, files), "--out", str(out), "--checkpoint", str(tiny_checkpoint)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["house.png", "two_0.png", "two_1.png"]
    text = capsys.readouterr().out
    assert text.count("  1. ") == 3 and "3 sketches classified" in text and "top-1" in text


def test_demo_on_the_bundled_examples(tiny_checkpoint, tmp_path):
    examples = pytest.importorskip("sketchgraph.examples")
    from sketchgraph.demo import run_demo

    results = run_demo(tmp_path, tiny_checkpoint, verbose=False)
    assert len(results) >= len(examples.example_paths()) > 0
    assert all(r.image.is_file() and len(r.predictions) == 5 for r in results)


def test_demo_gives_every_sketch_its_own_picture(tiny_checkpoint, tmp_path):
    """Two files with the same stem, and a file of several sketches beside one named like its pictures."""
    from sketchgraph.demo import run_demo
    from sketchgraph.formats import write_ndjson, write_svg
    from sketchgraph.sketch import Sketch

    square = Sketch.from_strokes([[[0, 50, 50, 0, 0], [0, 0, 50, 50, 0]]], label="square")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    files = [write_svg(square, tmp_path / "a" / "x.svg"), tmp_path / "b" / "x.ndjson", tmp_path / "x_0.ndjson"]
    write_ndjson([square, square], files[1])
    write_ndjson([square], files[2])
    results = run_demo(tmp_path / "out", tiny_checkpoint, paths=files, verbose=False)
    images = [r.image.name for r in results]
    assert images == ["x.png", "x_0.png", "x_1.png", "x_0-2.png"]
    assert all(r.image.is_file() for r in results)


def test_demo_without_the_checkpoint_says_so(tmp_path, capsys, monkeypatch):
    from sketchgraph import predict
    from sketchgraph.cli import main

    monkeypatch.setattr(predict, "_CHECKPOINT_PACKAGES", ())
    monkeypatch.setattr(predict, "_CHECKOUT_CHECKPOINTS", tmp_path)
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 1
    assert "checkpoint 'spg20' not found" in capsys.readouterr().err


@pytest.mark.parametrize("n,cols,grid", [(1, 6, (1, 1)), (7, 3, (3, 3)), (12, 6, (2, 6))])
def test_draw_sketches_gallery(tmp_path, n, cols, grid):
    rng = np.random.default_rng(n)
    sketches = [Sketch([rng.uniform(0, 255, (int(rng.integers(1, 6)), 2)).astype(np.float32)
                        for _ in range(int(rng.integers(1, 4)))], label=f"s{i}") for i in range(n - 1)]
    items = [HOUSE, *sketches]  # lists are read like any other input
    path = tmp_path / "gallery.png"
    fig = draw_sketches(items, path, cols=cols, panel=1.0, dpi=40)
    with Image.open(path) as im:
        assert im.size == (grid[1] * 40, grid[0] * 40)
    visible = [ax for ax in fig.axes if ax.axison]
    assert len(fig.axes) == grid[0] * grid[1] and len(visible) == n
    assert visible[0].get_title() == "0 (2 strokes)"  # HOUSE has no label: its index
    assert visible[-1].get_title().startswith(f"s{n - 2}") if n > 1 else True
    assert sum(len(ax.get_lines()) for ax in visible) == 2 + sum(len(s.strokes) for s in sketches)
    ylim = visible[0].get_ylim()
    assert ylim[0] > ylim[1], "y points down, as on a canvas"


def test_draw_sketches_titles_and_errors():
    fig = draw_sketches([HOUSE, HOUSE], titles=["a -> b", "c"])
    assert [ax.get_title() for ax in fig.axes] == ["a -> b", "c"]
    with pytest.raises(ValueError, match="2 titles for 1 sketches"):
        draw_sketches([HOUSE], titles=["a", "b"])
    with pytest.raises(ValueError, match="at least one"):
        draw_sketches([])
