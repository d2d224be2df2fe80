"""viz: graph drawings and attention grids render to readable PNGs."""

from __future__ import annotations

import json

import matplotlib.colors as mcolors
import numpy as np
import pytest
from matplotlib.collections import LineCollection
from PIL import Image

from sketchgraph import viz
from sketchgraph.formats.base import canonical_label
from sketchgraph.graph import GraphSpec, build_graph
from sketchgraph.predict import Prediction, SketchClassifier
from sketchgraph.preprocess import Preprocessing, preprocess
from sketchgraph.sketch import Sketch
from sketchgraph.viz import RELATION_STYLE, _edges, draw_graph, draw_sketches, plot_attention

HOUSE = [[[100, 300, 300, 100, 100], [300, 300, 150, 150, 300]], [[90, 200, 310], [160, 60, 160]]]
PREDS = [Prediction("house", 0.7, 3), Prediction("sun", 0.2, 4), Prediction("cat", 0.1, 1)]


def legend_texts(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def check_edge_styles(fig, graph, relations) -> None:
    """The graph panel of ``fig`` has one edge collection per relation (``gid``), holding that relation's edges of
    ``graph``, drawn in the colour and line style of its legend entry; relations differ in colour, and stroke
    edges are solid where temporal edges are dashed."""
    ax = fig.axes[0]
    drawn = {c.get_gid(): c for c in ax.collections if isinstance(c, LineCollection)}
    assert list(drawn) == list(relations)
    handles = {h.get_label(): h for h in ax.get_legend().legend_handles}
    colours = {}
    for rel, collection in drawn.items():
        assert len(collection.get_segments()) == len(_edges(graph, rel)) > 0, rel
        handle = handles[collection.get_label()]
        colours[rel] = mcolors.to_hex(collection.get_edgecolor()[0])
        assert colours[rel] == mcolors.to_hex(handle.get_color()), rel
        solid = collection.get_linestyle()[0][1] is None  # (offset, dash pattern): None for a solid line
        assert solid == (handle.get_linestyle() == "-"), rel
        if rel.startswith("stroke"):
            assert solid, rel
        if rel == "temporal":
            assert not solid
    assert len(set(colours.values())) == len(colours), colours  # every relation in its own colour


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


@pytest.mark.parametrize("relations", [("stroke1",), ("stroke1", "temporal"), ("stroke2", "temporal", "full"),
                                       ("stroke1", "stroke2", "temporal", "full")])
def test_legend_names_each_relation_and_edges_match_it(relations):
    sketch = Sketch.from_strokes(HOUSE)
    fig = draw_graph(sketch, relations=relations, prediction=PREDS)
    texts = legend_texts(fig)
    assert all(RELATION_STYLE[r]["label"] in texts for r in relations)
    assert "point (node)" in texts and "stroke end" in texts
    check_edge_styles(fig, build_graph(preprocess(sketch), GraphSpec(("stroke1",))), relations)


def test_relation_styles_are_distinct():
    """Stroke and temporal edges (and the others) never share a colour; only stroke edges are solid."""
    colours = [mcolors.to_hex(s["color"]) for s in RELATION_STYLE.values()]
    assert len(set(colours)) == len(colours)
    assert RELATION_STYLE["temporal"]["linestyle"] != RELATION_STYLE["stroke1"]["linestyle"] == "-"


def test_draw_graph_of_a_raw_sketch_uses_the_preprocessing_it_is_given():
    """A raw sketch is preprocessed with ``preprocessing`` (default ``Preprocessing()``, which truncates); the
    module docstring says to pass ``clf.graph(x)`` or ``clf.preprocessing`` to draw what a model sees."""
    zigzag = Sketch.from_strokes([[list(range(0, 1500, 10)), [0 if i % 2 else 100 for i in range(150)]]])
    adapt = Preprocessing(cap="adapt")
    n = build_graph(preprocess(zigzag, adapt)).num_nodes
    assert n < 100
    assert draw_graph(zigzag).axes[0].get_title() == "sketch: 100 points, 1 stroke"
    assert draw_graph(zigzag, preprocessing=adapt).axes[0].get_title() == f"sketch: {n} points, 1 stroke"
    assert "clf.graph(x)" in viz.__doc__ and "as the model sees it" not in viz.__doc__


@pytest.mark.parametrize("relation, expected", [
    ("stroke1", 4 + 2),  # two strokes of 5 and 3 points: 4 + 2 consecutive pairs
    ("temporal", 2),  # the pen-up jump between the strokes, and first <-> last point
    ("full", 8 * 7 // 2),
])
def test_edges_are_undirected_without_self_loops(relation, expected):
    graph = build_graph(Sketch.from_strokes(HOUSE), GraphSpec(("stroke1",)))  # other relations come from flags
    pairs = _edges(graph, relation)
    assert len(pairs) == expected and np.all(pairs[:, 0] < pairs[:, 1])


def check_attention_panels(fig, maps, layer: int, heads) -> None:
    """Panel ``(r, c)`` shows ``maps[relation r][layer, heads[c]]``; rows are labelled with the relations in
    ``maps`` order, columns ``head h``; the last axes is the colour bar."""
    rels = list(maps)
    panels = np.array(fig.axes[:-1]).reshape(len(rels), len(heads))
    assert len(fig.axes) == len(rels) * len(heads) + 1
    assert [ax.get_ylabel() for ax in panels[:, 0]] == rels
    assert [ax.get_title() for ax in panels[0]] == [f"head {h}" for h in heads]
    assert all(ax.get_ylabel() == "" for ax in panels[:, 1:].ravel())
    assert all(ax.get_title() == "" for ax in panels[1:].ravel())
    for r, rel in enumerate(rels):
        for c, h in enumerate(heads):
            np.testing.assert_array_equal(panels[r, c].get_images()[0].get_array(), maps[rel][layer, h])


def test_plot_attention_from_classifier(tiny_checkpoint, tmp_path):
    clf = SketchClassifier.from_pretrained(tiny_checkpoint)
    maps = clf.attention_maps(Sketch.from_strokes(HOUSE))
    fig = plot_attention(maps, tmp_path / "attn.png", layer=0, dpi=40)
    heads = next(iter(maps.values())).shape[1]
    check_attention_panels(fig, maps, 0, list(range(heads)))
    assert (tmp_path / "attn.png").stat().st_size > 1000


def test_plot_attention_labels_each_panel_with_its_relation_and_head():
    """Every panel holds a different constant map, so a swapped row, column or label shows."""
    rels, layers, heads, n = ["stroke1", "stroke2", "temporal"], 3, 4, 5
    maps = {rel: np.stack([np.stack([np.full((n, n), (100 * r + 10 * layer + h) / 1000)
                                     for h in range(heads)]) for layer in range(layers)])
            for r, rel in enumerate(rels)}
    for layer, chosen in [(-1, None), (1, [3, 0]), (-3, [2]), (0, [-1, -4])]:  # negative heads count from the end
        fig = plot_attention(maps, layer=layer, heads=chosen)
        check_attention_panels(fig, maps, layer, list(range(heads)) if chosen is None else [h % heads for h in chosen])
        assert fig.get_suptitle().startswith(f"attention, layer {layer % layers + 1} of {layers}")


def texts_off_the_figure(fig) -> list[str]:
    """The texts of ``fig`` (titles, labels, colour bar) that are drawn, at least in part, outside the figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # the constrained layout is done when the figure is drawn
    renderer, box = canvas.get_renderer(), fig.bbox
    texts = [t for t in fig.findobj(lambda a: hasattr(a, "get_text") and a.get_visible()) if t.get_text()]
    assert len(texts) > 3  # a title, row labels, head titles, the colour bar's label
    off = []
    for t in texts:
        e = t.get_window_extent(renderer)
        if e.x0 < 0 or e.y0 < 0 or e.x1 > box.width or e.y1 > box.height:
            off.append(t.get_text())
    return off


@pytest.mark.parametrize("rels", [("temporal",), ("stroke1", "stroke2", "temporal")])
@pytest.mark.parametrize("heads", [0, [0, 1], None])
def test_plot_attention_keeps_its_title_and_labels_on_the_figure(rels, heads):
    """One head (docs/predict.md's ``heads=0``) used to give a figure too narrow for its default title and its row
    labels, which were cut at the left edge; every text now lies inside the figure, with any number of heads."""
    maps = {rel: np.random.default_rng(0).random((4, 4, 30, 30)) for rel in rels}
    fig = plot_attention(maps, layer=-1, heads=heads)
    assert texts_off_the_figure(fig) == []
    assert fig.get_suptitle() == "attention, layer 4 of 4 (rows: query, columns: key)"


HEADS_RANGE = r"heads must name at least one head in 0\.\.1 \(or -2\.\.-1, from the end, as for layer\), "


@pytest.mark.parametrize("kwargs, message", [
    (dict(heads=[]), HEADS_RANGE + r"got \[\]"),
    (dict(heads=[2]), HEADS_RANGE + r"got \[2\]"),
    (dict(heads=[-3]), r"or -2\.\.-1, from the end, as for layer\), got \[-3\]"),
    (dict(layer=3), r"layer 3 out of range: the maps have 3 layers \(-3\.\.2\)"),
    (dict(layer=-4), r"layer -4 out of range"),
])
def test_plot_attention_refuses_a_layer_or_heads_it_does_not_have(kwargs, message):
    maps = {"stroke1": np.zeros((3, 2, 4, 4)), "temporal": np.zeros((3, 2, 4, 4))}
    with pytest.raises(ValueError, match=message):
        plot_attention(maps, **kwargs)


def test_plot_attention_rejects_nothing_and_mismatched_maps():
    with pytest.raises(ValueError, match="no attention"):
        plot_attention({})
    with pytest.raises(ValueError, match=r"must all be \(layers, heads, N, N\)"):
        plot_attention({"stroke1": np.zeros((3, 2, 4, 4)), "temporal": np.zeros((2, 2, 4, 4))})
    with pytest.raises(ValueError, match=r"must all be \(layers, heads, N, N\)"):
        plot_attention({"stroke1": np.zeros((2, 4, 4))})


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
    assert sorted(p.name for p in out.iterdir()) == [".sketchgraph-demo.json", "house.png", "two_0.png", "two_1.png"]
    text = capsys.readouterr().out
    assert text.count("  1. ") == 3 and "3 sketches classified" in text and "top-1" in text


def test_demo_on_the_bundled_examples(tiny_checkpoint, tmp_path):
    examples = pytest.importorskip("sketchgraph.examples")
    from sketchgraph.demo import run_demo

    results = run_demo(tmp_path, tiny_checkpoint, verbose=False)
    assert len(results) >= len(examples.example_paths()) > 0
    assert all(r.image.is_file() and len(r.predictions) == 5 for r in results)


def test_make_demo_with_the_shipped_checkpoint(tmp_path, capsys, monkeypatch):
    """What ``make demo`` runs: the shipped checkpoint on the bundled examples. One PNG per example, a top-5 table
    each, every top-1 the example's own class, and every picture with both stroke and temporal edges, each in its
    legend's style."""
    from sketchgraph.demo import run_demo
    from sketchgraph.examples import example_paths
    from sketchgraph.predict import SHIPPED_CHECKPOINT, resolve_checkpoint

    try:
        resolve_checkpoint(SHIPPED_CHECKPOINT)
    except Exception as exc:  # noqa: BLE001 - CheckpointError: say where it should be
        pytest.fail(f"the demo needs the shipped checkpoint checkpoints/{SHIPPED_CHECKPOINT}: {exc}")
    figures = []

    def draw(graph, *args, **kwargs):
        figures.append((graph, draw_graph(graph, *args, **kwargs)))
        return figures[-1][1]

    monkeypatch.setattr(viz, "draw_graph", draw)
    results = run_demo(tmp_path, verbose=True)
    paths = example_paths()
    assert len(paths) == 7 and [r.source for r in results] == paths
    assert sorted(p.name for p in tmp_path.iterdir()) == [".sketchgraph-demo.json",
                                                          *sorted(f"{p.stem}.png" for p in paths)]
    for r in results:
        with Image.open(r.image) as im:
            assert im.format == "PNG"
    lines = capsys.readouterr().out.splitlines()
    for path, r in zip(paths, results):
        assert len(r.predictions) == 5
        assert canonical_label(r.predictions[0].label) == canonical_label(r.sketch.label), (path.name, r.predictions)
        at = lines.index(f"{path.name}: {r.sketch.label} -> {r.image}")  # the file, then its picture
        table = lines[at + 1:at + 6]
        assert [line[:6] for line in table] == [f"   {k}. " for k in range(1, 6)], table
        assert table[0].startswith(f"   1. {r.predictions[0].label} ")
    assert lines[-1].startswith("7 sketches classified with spg20; top-1 7/7 on the labelled ones")  # no limit note
    assert len(figures) == 7
    for graph, fig in figures:
        check_edge_styles(fig, graph, ("stroke1", "temporal"))


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


# ------------------------------------------------------------------------------------------ files, inputs, checks
MAGIC = {"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<?xml", "jpg": b"\xff\xd8\xff", "JPEG": b"\xff\xd8\xff",
         "tiff": b"II*\x00", "eps": b"%!PS"}


def _figures(tmp_path, name):
    """Each figure writer with one output path, by the prefix of its file's name."""
    from sketchgraph.evaluate import plot_confusion

    maps = {"stroke1": np.random.default_rng(0).random((2, 2, 5, 5))}
    return {
        "g": lambda: draw_graph(HOUSE, tmp_path / f"g_{name}", prediction=PREDS),
        "s": lambda: draw_sketches([HOUSE], tmp_path / f"s_{name}"),
        "a": lambda: plot_attention(maps, tmp_path / f"a_{name}"),
        "c": lambda: plot_confusion(np.eye(3) * 5, ["a", "b", "c"], tmp_path / f"c_{name}"),
    }


@pytest.mark.parametrize("suffix", list(MAGIC))
def test_every_figure_is_written_in_the_format_its_suffix_names(tmp_path, suffix):
    """A path ending .pdf or .svg got PNG bytes that no PDF viewer opens; no suffix still means PNG."""
    for writer, draw in _figures(tmp_path, f"x.{suffix}").items():
        draw()
        assert (tmp_path / f"{writer}_x.{suffix}").read_bytes().startswith(MAGIC[suffix]), writer
    for writer, draw in _figures(tmp_path, "plain").items():
        draw()
        assert (tmp_path / f"{writer}_plain").read_bytes().startswith(MAGIC["png"]), writer
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_figure_path_that_is_a_folder_or_no_figure_format_is_refused_before_drawing(tmp_path, monkeypatch):
    """A folder failed only after the figure was drawn, naming a hidden temporary file."""
    from matplotlib.figure import Figure

    monkeypatch.setattr(Figure, "__init__", lambda *a, **k: pytest.fail("a figure was drawn"))
    (tmp_path / "g_dir").mkdir()
    (tmp_path / "s_dir").mkdir()
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "c_dir").mkdir()
    for writer, draw in _figures(tmp_path, "dir").items():
        with pytest.raises(IsADirectoryError, match=rf"^cannot write a figure to {tmp_path / (writer + '_dir')}: it "
                                                    "is a folder; name a file in it"):
            draw()
    for draw in _figures(tmp_path, "x.txt").values():
        with pytest.raises(ValueError, match=r"'\.txt' is no figure format; name the file with one of \.png, \.pdf"):
            draw()
    from sketchgraph.evaluate import plot_confusion

    new = f"{tmp_path / 'new'}/"  # written as a folder, not there yet: it became a file called "new"
    for draw in (lambda: draw_sketches([HOUSE], new), lambda: plot_confusion(np.eye(3) * 5, ["a", "b", "c"], new)):
        with pytest.raises(IsADirectoryError, match=rf"^cannot write a figure to {tmp_path / 'new'}: it is written as "
                                                    r"a folder \(a final /\); name a file in it"):
            draw()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_dir", "c_dir", "g_dir", "s_dir"]


def test_sketch_files_are_drawn_from_their_paths(tmp_path):
    """Every other entry point takes a path; draw_graph parsed a path string as JSON ("invalid JSON")."""
    from sketchgraph.errors import SketchError
    from sketchgraph.formats import write_ndjson

    one, two = tmp_path / "house.ndjson", tmp_path / "two.ndjson"
    write_ndjson([Sketch.from_strokes(HOUSE, label="house")], one)
    write_ndjson([Sketch.from_strokes(HOUSE, label="a"), Sketch.from_strokes(HOUSE, label="b")], two)
    for given in (one, str(one)):
        assert draw_graph(given).axes[0].get_title().startswith("house: ")
    assert [ax.get_title() for ax in draw_sketches(two).axes] == ["a (2 strokes)", "b (2 strokes)"]
    assert [ax.get_title() for ax in draw_sketches(tmp_path).axes] == [  # a folder: all of its files' sketches
        "house (2 strokes)", "a (2 strokes)", "b (2 strokes)"]
    assert [ax.get_title() for ax in draw_sketches([one, str(one)]).axes] == ["house (2 strokes)"] * 2
    with pytest.raises(SketchError, match=r"holds several sketches, where one belongs: pick one"):
        draw_graph(two)
    with pytest.raises(SketchError, match=r"is a folder, where one sketch belongs: draw_sketches\("):
        draw_graph(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"^no such sketch file: nothere\.ndjson$"):
        draw_graph("nothere.ndjson")
    assert draw_graph(json.dumps(HOUSE)).axes[0].get_title().startswith("sketch: ")  # JSON text is still a drawing


@pytest.mark.parametrize("one", [Sketch.from_strokes(HOUSE), {"drawing": HOUSE}, np.zeros((4, 3))])
def test_draw_sketches_of_one_sketch_says_to_pass_a_list(one):
    with pytest.raises(TypeError, match=r"draw_sketches takes a sequence of sketches \(or a sketch file or folder\), "
                                        r"got an? \w+: for one sketch pass \[sketch\], or draw it with draw_graph"):
        draw_sketches(one)


@pytest.mark.parametrize("prediction, message", [
    ([("face", 5.1), ("pig", -2.3)], r"scores are probabilities in 0\.\.1 .* got 5\.1 for 'face': logits"),
    ([("face", 0.5), ("pig", -0.1)], r"got -0\.1 for 'pig'"),
    ([("face", float("nan"))], r"got nan for 'face'"),
    ([], r"prediction is empty"),
])
def test_draw_graph_refuses_predictions_that_are_no_probabilities(prediction, message):
    """Logits drew a 510% bar and a "-230.0%" inside the sketch's panel."""
    with pytest.raises(ValueError, match=message):
        draw_graph(HOUSE, prediction=prediction)


def test_a_long_prediction_list_draws_its_first_bars_and_says_of_how_many():
    preds = [(f"class number {i}", 1 / (i + 2)) for i in range(120)]
    ax = draw_graph(HOUSE, prediction=preds).axes[1]
    assert len(ax.patches) == viz.MAX_BARS == 20 and ax.get_title() == "top 20 of 120 predictions"
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == "class number 0"  # best at the top


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(layer=1.5), TypeError, r"^layer must be an integer, got a float \(1\.5\)$"),
    (dict(layer=True), TypeError, r"^layer must be an integer, got a bool \(True\)$"),
    (dict(heads=[0.7]), TypeError, r"^heads must be integers \(one, or a list of them\), got 0\.7 \(a float\)$"),
    (dict(heads=["1"]), TypeError, r"got '1' \(a str\)$"),
    (dict(heads=2), ValueError, r"got \[2\]"),
])
def test_plot_attention_refuses_a_layer_or_head_that_is_no_integer(kwargs, error, message):
    maps = {"stroke1": np.zeros((3, 2, 4, 4))}
    with pytest.raises(error, match=message):
        plot_attention(maps, **kwargs)


def test_plot_attention_takes_one_head_alone_and_numpy_integers():
    maps = {"stroke1": np.random.default_rng(0).random((3, 2, 4, 4))}
    for heads in (1, np.int64(1), [np.int64(-1)]):
        fig = plot_attention(maps, heads=heads, layer=np.int32(0))
        assert [ax.get_title() for ax in fig.axes[:-1]] == ["head 1"]
        assert np.array_equal(fig.axes[0].get_images()[0].get_array(), maps["stroke1"][0, 1])


def test_the_pictures_example_of_the_predict_docs_runs_as_written(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parent.parent / "docs" / "predict.md"
    blocks = re.findall(r"^```python\n(.*?)^```", doc.read_text(encoding="utf-8"), flags=re.S | re.M)
    (block,) = [b for b in blocks if "sketchgraph.viz" in b]
    monkeypatch.chdir(tmp_path)
    exec(compile(block, str(doc), "exec"), {})  # noqa: S102 - our own documentation
    assert (tmp_path / "graph.pdf").read_bytes().startswith(MAGIC["pdf"])
    assert (tmp_path / "examples.png").read_bytes().startswith(MAGIC["png"])
    assert (tmp_path / "attention.svg").read_bytes().startswith(MAGIC["svg"])
