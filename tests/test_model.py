"""Models: parameter counts, dense == dgl attention, masks, padding invariance, configs, MACs, learning."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sketchgraph.batch import Batch
from sketchgraph.graph import RELATIONS, sketch_flags
from sketchgraph.model import GraphAttention, build_model, count_macs, list_presets, rasterize_batch
from sketchgraph.model.registry import PRESETS, model_config_dict, model_from_config

# parameters at 20 classes (mgt-paper at 345 classes is checked separately)
PARAMS_20 = {
    "mgt": 337_844,
    "mgt-paper": 39_651_604,
    "mgt-small": 2_490_964,
    "mgt-stroke2-temporal": 27_855_124,
    "gt-full": 13_696_276,
    "gt-stroke2": 13_696_276,
    "cnn": 393_460,
    "bigru": 5_557_524,
}
MGT_PRESETS = [n for n, p in PRESETS.items() if p.arch == "mgt"]
# small versions of each MGT preset (same layout, relations and norms), so exhaustive checks stay fast
SMALL = {n: dict(embed_dim=8, heads=2, layers=2, classifier=(16,)) for n in MGT_PRESETS}
SMALL["mgt"] = dict(embed_dim=24, layers=2, classifier=(16,))


def random_batch(lengths, *, seed=0, pad_to=None, dtype=torch.float32, num_classes=5) -> Batch:
    """Random sketches with the given point counts, random stroke splits, coordinates in 0..255."""
    rng = np.random.default_rng(seed)
    coords, flags = [], []
    for n in lengths:
        cuts = np.sort(rng.choice(np.arange(1, n), rng.integers(0, n // 4 + 1), replace=False)) if n > 1 else []
        flags.append(sketch_flags(np.diff(np.r_[0, cuts, n])))
        coords.append(rng.uniform(0, 255, (n, 2)))
    lengths = np.asarray(lengths)
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    b = Batch.from_flat(np.concatenate(coords), np.concatenate(flags), starts, lengths, RELATIONS,
                        labels=rng.integers(0, num_classes, len(lengths)), pad_to=pad_to)
    b.coords = b.coords.to(dtype)
    return b


LENGTHS = [7, 1, 23, 12, 2]  # includes a one-point sketch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small tensors: one thread is as fast and does not fight other processes for the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", list_presets())
def test_presets_shapes_and_params(name):
    torch.manual_seed(0)
    model = build_model(name, 20)
    assert sum(p.numel() for p in model.parameters()) == PARAMS_20[name]
    model.eval()
    out = model(random_batch(LENGTHS))
    assert out.shape == (len(LENGTHS), 20) and torch.isfinite(out).all()
    json.dumps(model_config_dict(model))


def test_mgt_paper_has_the_papers_parameter_count():
    model = build_model("mgt-paper", 345)
    assert sum(p.numel() for p in model.parameters()) == 39_984_729
    cfg = model.config
    assert (cfg.width, cfg.head_width, cfg.layers, cfg.heads, cfg.layout) == (768, 96, 4, 8, "per_relation")


def _run(model, batch):
    model.zero_grad()
    out = model(batch)
    (out * torch.linspace(-1, 1, out.shape[1], dtype=out.dtype)).sum().backward()
    return out.detach(), {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", MGT_PRESETS)
def test_dense_and_dgl_backends_agree(name):
    """Outputs and every parameter gradient agree within 1e-5 (train mode: BatchNorm uses batch statistics).

    float64, because the paper presets feed raw 0..255 coordinates: their first-layer attention logits are large,
    so in float32 the two (correct) summation orders differ by up to ~1e-2 relative in a few first-layer gradients.
    The batch includes a sketch at the 100-point cap."""
    torch.manual_seed(0)
    model = build_model(name, 5, dropout=0.0, classifier_dropout=0.0, **SMALL[name]).double().train()
    batch = random_batch(LENGTHS + [100], dtype=torch.float64)
    out_dense, grads_dense = _run(model, batch)
    out_dgl, grads_dgl = _run(model.set_backend("dgl"), batch)
    torch.testing.assert_close(out_dgl, out_dense, rtol=1e-5, atol=1e-5)
    assert grads_dense.keys() == grads_dgl.keys() and len(grads_dense) == len(list(model.parameters()))
    for k in grads_dense:
        torch.testing.assert_close(grads_dgl[k], grads_dense[k], rtol=1e-5, atol=1e-5, msg=k)


def test_dense_and_dgl_agree_in_float32_for_the_default():
    torch.manual_seed(0)
    model = build_model("mgt", 5, classifier_dropout=0.0).train()
    batch = random_batch([40, 1, 63, 17, 100, 3])
    out_dense, grads_dense = _run(model, batch)
    out_dgl, grads_dgl = _run(model.set_backend("dgl"), batch)
    torch.testing.assert_close(out_dgl, out_dense, rtol=1e-5, atol=1e-5)
    for k in grads_dense:
        torch.testing.assert_close(grads_dgl[k], grads_dense[k], rtol=1e-5, atol=1e-5, msg=k)


@pytest.mark.parametrize("name", ["mgt-paper", "mgt"])
def test_dense_and_dgl_agree_under_bfloat16_autocast(name):
    """Raw 0..255 coordinates give attention scores far below -88: DGL's bfloat16 edge softmax alone returns
    NaN there, so the DGL backend takes it in float32 and agrees with the dense one."""
    torch.manual_seed(0)
    model = build_model(name, 5, **SMALL[name]).eval()
    batch = random_batch([30, 100, 12])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        dense = model.set_backend("dense")(batch).float()
        dgl = model.set_backend("dgl")(batch).float()
    assert torch.isfinite(dgl).all()
    torch.testing.assert_close(dgl, dense, rtol=0.05, atol=0.05)


def test_batch_norm_trains_on_a_batch_of_one_point():
    """A training batch whose only valid node is one point cannot have batch statistics: the running ones
    normalise it instead of an error."""
    model = build_model("mgt-small", 5, **SMALL["mgt-small"]).train()
    out = model(random_batch([1]))
    assert out.shape == (1, 5) and torch.isfinite(out).all()


def test_normalize_coords_is_finite_in_float16_on_padding():
    from sketchgraph.model import normalize_coords

    coords = torch.tensor([[[5.0, 5.0], [0.0, 0.0]]], dtype=torch.float16)  # a one-point sketch, one padding row
    out = normalize_coords(coords, torch.tensor([[True, False]]))
    assert torch.equal(out, torch.zeros_like(out))


@pytest.mark.parametrize("backend", ["dense", "dgl"])
@pytest.mark.parametrize("name", ["mgt", "mgt-paper", "gt-full"])
def test_attention_follows_the_graph_relations(name, backend):
    """Returned weights are exactly 0 outside each relation's mask and rows sum to 1; with normalised coordinates
    (the paper presets' raw 0..255 ones saturate the softmax to exact zeros) they are positive inside."""
    torch.manual_seed(0)
    model = build_model(name, 5, backend=backend, **SMALL[name]).eval()
    batch = random_batch(LENGTHS)
    logits, maps = model(batch, return_attention=True)
    torch.testing.assert_close(logits, model(batch))
    valid = batch.valid
    assert len(maps) == model.config.layers
    for layer in maps:
        assert set(layer) == set(model.config.relations)
        for rel, w in layer.items():
            B, N = valid.shape
            assert w.shape == (B, model.config.heads, N, N)
            allowed = (batch.masks[rel] & valid[:, :, None])[:, None].expand_as(w)
            assert (w[~allowed] == 0).all()
            if model.config.coord_norm == "unit":
                assert (w[allowed] > 0).all()
            torch.testing.assert_close(w.sum(-1), valid[:, None].expand(B, w.shape[1], N).to(w.dtype))


def test_fused_and_plain_dense_attention_agree():
    torch.manual_seed(0)
    attn = GraphAttention(12, relations=("stroke1", "temporal"), heads=2, head_dim=5).eval()
    batch = random_batch(LENGTHS)
    x = torch.randn(*batch.valid.shape, 12)
    fused, _ = attn(x, batch)
    plain, w = attn(x, batch, need_weights=True)
    torch.testing.assert_close(fused, plain)
    assert (fused[~batch.valid] == 0).all() and set(w) == {"stroke1", "temporal"}


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("name", ["mgt", "mgt-small", "gt-full"])
def test_padding_rows_without_self_loops_stay_finite(name, fused):
    """A hand-built batch whose padding rows may attend to nothing (softmax of all -inf: NaN on those rows)
    must give the same logits and attention maps as the usual one: padding rows are cleared with where(), which
    drops NaN, not with a product by 0, which keeps it."""
    from dataclasses import replace

    from sketchgraph.graph import relation_masks

    torch.manual_seed(0)
    model = build_model(name, 5, **SMALL.get(name, {})).eval()
    for m in model.modules():
        if isinstance(m, GraphAttention):
            m.fused = fused
    batch = random_batch(LENGTHS)
    bare = replace(batch, masks=relation_masks(batch.flags, RELATIONS, pad_self_loops=False), _bias={}, _dgl=None)
    assert not bare.masks["temporal"][~batch.valid].any()  # really no allowed key on padding rows
    torch.testing.assert_close(model(bare), model(batch))
    _, maps = model(bare, return_attention=True)
    _, ref = model(batch, return_attention=True)
    for got, want in zip(maps, ref):
        for rel in want:
            assert torch.isfinite(got[rel]).all()
            torch.testing.assert_close(got[rel], want[rel])


@pytest.mark.parametrize("name", list_presets())
def test_padding_does_not_change_logits(name):
    torch.manual_seed(0)
    overrides = SMALL.get(name, {"dropout": 0.0})
    model = build_model(name, 5, **overrides).eval()
    tight, padded = random_batch(LENGTHS), random_batch(LENGTHS, pad_to=100)
    torch.testing.assert_close(model(padded), model(tight), rtol=1e-5, atol=1e-5)
    if name in MGT_PRESETS:  # also with batch statistics: BatchNorm ignores padding nodes
        model = build_model(name, 5, dropout=0.0, classifier_dropout=0.0, **overrides).train()
        torch.testing.assert_close(model(padded), model(tight), rtol=1e-5, atol=1e-5)


def test_too_many_points_is_an_error():
    model = build_model("mgt", 5, **SMALL["mgt"])
    with pytest.raises(ValueError, match="at most 100"):
        model(random_batch([101]))


@pytest.mark.parametrize("name", list_presets())
def test_config_round_trip_rebuilds_the_same_model(name):
    torch.manual_seed(0)
    model = build_model(name, 7, **SMALL.get(name, {})).eval()
    cfg = json.loads(json.dumps(model_config_dict(model)))
    assert cfg["preset"] == name and cfg["num_classes"] == 7
    clone = model_from_config(cfg).eval()
    assert clone.config == model.config and type(clone) is type(model)
    clone.load_state_dict(model.state_dict())  # strict: same names and shapes
    batch = random_batch(LENGTHS)
    torch.testing.assert_close(clone(batch), model(batch))


def test_unknown_preset_and_bad_config_are_errors():
    with pytest.raises(ValueError, match="unknown model preset"):
        build_model("resnet", 5)
    with pytest.raises(ValueError, match="layout"):
        build_model("mgt", 5, layout="sideways")


@pytest.mark.parametrize("preset, fields, message", [
    ("mgt", dict(layers=0), r"^MGTConfig.layers must be an integer >= 1, got 0$"),
    ("mgt", dict(heads=0), r"^MGTConfig.heads must be an integer >= 1, got 0$"),
    ("mgt", dict(embed_dim=-3), r"^MGTConfig.embed_dim must be an integer >= 1, got -3$"),
    ("mgt", dict(layers=1.5), r"^MGTConfig.layers must be an integer >= 1, got 1.5$"),
    ("mgt", dict(layers=True), r"^MGTConfig.layers must be an integer >= 1, got True$"),
    ("mgt", dict(head_dim=0), r"^MGTConfig.head_dim must be an integer >= 1 \(or unset: width // heads\), got 0$"),
    ("mgt", dict(ffn_dim=-1), r"^MGTConfig.ffn_dim must be an integer >= 0 "),
    ("mgt", dict(dropout=1.0), r"^MGTConfig.dropout must be a probability in \[0, 1\), got 1.0$"),
    ("mgt", dict(classifier_dropout=float("nan")), r"^MGTConfig.classifier_dropout must be a probability"),
    ("mgt", dict(classifier=5), r"^MGTConfig.classifier must be a list of layer widths, got 5$"),
    ("mgt", dict(classifier=(8, 0)), r"^MGTConfig.classifier\[1\] must be an integer >= 1, got 0$"),
    ("mgt", dict(relations="full"), r"^MGTConfig.relations must be a list of names, got 'full'$"),
    ("mgt", dict(head_dim=None, heads=5),
     r"^MGTConfig.heads: the width 96 is not divisible by 15 heads; set head_dim$"),
    ("mgt-paper", dict(embed_dim=0), r"^MGTConfig.embed_dim must be an integer >= 1, got 0$"),
    ("cnn", dict(channels=(4, 0)), r"^CNNConfig.channels\[1\] must be an integer >= 1, got 0$"),
    ("cnn", dict(image_size=8), r"^CNNConfig.image_size must be an integer >= 16 \(at least 8, and each of the 4 "
                                r"blocks halves it\), got 8$"),
    ("cnn", dict(line_width=2), r"^CNNConfig.line_width must be odd \(lines widen symmetrically\), got 2$"),
    ("cnn", dict(dropout=-0.1), r"^CNNConfig.dropout must be a probability in \[0, 1\), got -0.1$"),
    ("bigru", dict(hidden=0), r"^BiGRUConfig.hidden must be an integer >= 1, got 0$"),
    ("bigru", dict(layers=0), r"^BiGRUConfig.layers must be an integer >= 1, got 0$"),
    ("bigru", dict(classifier=(0,)), r"^BiGRUConfig.classifier\[0\] must be an integer >= 1, got 0$"),
    ("bigru", dict(coord_norm="box"), r"^BiGRUConfig.coord_norm must be 'none' or 'unit', got 'box'$"),
])
def test_config_sizes_and_rates_are_checked_by_name(preset, fields, message):
    """Sizes < 1, non-integers, bools and out-of-range dropouts used to build (``heads=0``, ``layers=-1``,
    ``embed_dim=0`` trained) or fail deep inside torch; each is refused naming its field."""
    with pytest.raises(ValueError, match=message):
        build_model(preset, 5, **fields)


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_config_passes_its_checks(name):
    """Every registry preset's config (and a 1-class one) passes the range checks, without building weights."""
    from sketchgraph.model.registry import ARCHS

    preset = PRESETS[name]
    cfg = ARCHS[preset.arch][0](**preset.fields, num_classes=1, preset=name)
    assert cfg.num_classes == 1


def _one_sketch(strokes):
    """Batch of one sketch from a list of strokes [(x, y), ...]."""
    pts = np.concatenate([np.asarray(s, dtype=np.float32) for s in strokes])
    flags = sketch_flags([len(s) for s in strokes])
    return torch.from_numpy(pts)[None], torch.from_numpy(flags)[None]


def test_rasterize_draws_a_horizontal_line_across_the_frame():
    coords, flags = _one_sketch([[(0, 0), (10, 0)]])
    img = rasterize_batch(coords, flags, 64, margin=2)[0, 0]
    rows = img.sum(1).nonzero().flatten()
    assert len(rows) == 1 and rows.item() in (31, 32)  # centred vertically
    assert img[rows.item()].nonzero().flatten().tolist() == list(range(2, 62))  # fitted to the margins
    assert img.sum() == 60


def test_rasterize_draws_the_diagonal_keeps_aspect_and_skips_pen_up():
    coords, flags = _one_sketch([[(0, 0), (5, 5), (10, 10)]])
    img = rasterize_batch(coords, flags, 32, margin=0)[0, 0]
    assert torch.equal(img, torch.eye(32))
    # two vertical strokes: the pen-up jump between them is not drawn; aspect kept (height 20 spans the frame)
    coords, flags = _one_sketch([[(0, 0), (0, 20)], [(10, 0), (10, 20)]])
    img = rasterize_batch(coords, flags, 21, margin=0)[0, 0]
    assert img.sum() == 42 and img[:, 5].sum() == 21 and img[:, 15].sum() == 21
    # a one-point stroke is a dot; padding draws nothing; wider lines by dilation
    batch = random_batch([1, 9, 3], pad_to=20)
    imgs = rasterize_batch(batch.coords, batch.flags, 16, line_width=3)
    assert imgs.shape == (3, 1, 16, 16) and imgs[0].sum() == 9 and set(imgs.unique().tolist()) <= {0.0, 1.0}


def test_count_macs_gives_3_96_gmacs_for_the_official_model():
    batch = random_batch([100, 100])
    paper = count_macs(build_model("mgt-paper", 345), batch)
    assert abs(paper - 3.96e9) < 0.01e9
    assert count_macs(build_model("mgt", 345), batch) * 10 < paper


def _toy_task(n_per_class=12, seed=0):
    """Four separable classes of 1-3 stroke sketches: horizontal lines, vertical lines, circles, crosses."""
    rng = np.random.default_rng(seed)
    coords, flags, labels = [], [], []
    for label in range(4):
        for _ in range(n_per_class):
            n = int(rng.integers(8, 30))
            t = np.linspace(0, 1, n)
            if label == 0:
                strokes = [np.c_[t * 200, 100 + rng.normal(0, 3, n)]]
            elif label == 1:
                strokes = [np.c_[100 + rng.normal(0, 3, n), t * 200]]
            elif label == 2:
                strokes = [np.c_[100 + 80 * np.cos(2 * np.pi * t), 100 + 80 * np.sin(2 * np.pi * t)]]
            else:
                strokes = [np.c_[t * 200, t * 200], np.c_[t * 200, 200 - t * 200]]
            strokes = [s + rng.normal(0, 2, s.shape) + rng.uniform(0, 50, 2) for s in strokes]
            coords.append(np.concatenate(strokes))
            flags.append(sketch_flags([len(s) for s in strokes]))
            labels.append(label)
    lengths = np.array([len(f) for f in flags])
    return Batch.from_flat(np.concatenate(coords), np.concatenate(flags), np.r_[0, np.cumsum(lengths)[:-1]],
                           lengths, ("stroke1", "stroke2", "temporal"), labels=np.array(labels))


def test_default_model_learns_a_toy_task():
    torch.manual_seed(0)
    batch = _toy_task()
    model = build_model("mgt", 4)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(25):
        loss = torch.nn.functional.cross_entropy(model.train()(batch), batch.labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = (model.eval()(batch).argmax(1) == batch.labels).float().mean().item()
    assert acc > 0.9, acc
