"""Augmentation: identity at zero strength, valid flags after dropout, affine geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sketchgraph.augment import AugmentConfig, SketchAugment, drop_points, merge_strokes, perturb, random_affine
from sketchgraph.graph import FLAG_END, FLAG_PAD, sketch_flags


def random_batch(seed: int, B: int = 16, N: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded batch of random sketches with 1..6 strokes and 1..N points."""
    rng = np.random.default_rng(seed)
    coords = torch.zeros(B, N, 2)
    flags = torch.full((B, N), FLAG_PAD, dtype=torch.long)
    for b in range(B):
        n = int(rng.integers(1, N + 1))
        cuts = np.sort(rng.choice(np.arange(1, n), size=min(n - 1, int(rng.integers(0, 6))), replace=False))
        lengths = np.diff(np.concatenate([[0], cuts, [n]]))
        flags[b, :n] = torch.from_numpy(sketch_flags(lengths))
        coords[b, :n] = torch.from_numpy(rng.uniform(0, 255, size=(n, 2)).astype(np.float32))
    return coords, flags


def assert_valid_flags(coords: torch.Tensor, flags: torch.Tensor) -> None:
    valid = flags != FLAG_PAD
    n = valid.sum(1)
    assert (n >= 1).all(), "a sketch lost every point"
    assert torch.equal(valid, torch.arange(flags.shape[1])[None] < n[:, None]), "valid points not contiguous"
    assert torch.isin(flags[valid], torch.tensor([100, 101])).all()
    assert (flags[torch.arange(len(n)), n - 1] == FLAG_END).all(), "last valid point must end a stroke"
    assert (coords[~valid] == 0).all()


@pytest.mark.parametrize(
    "config",
    [
        AugmentConfig(),
        AugmentConfig(affine_prob=0.0, rotation=30, scale=0.2, shear=0.3, translate=0.1),
        AugmentConfig(affine_prob=1.0),  # strengths 0: no affine at all
        AugmentConfig(incomplete_prob=1.0, incomplete_min=1.0),  # keeps every point
    ],
)
def test_identity_when_probabilities_zero(config):
    coords, flags = random_batch(0)
    out_c, out_f = SketchAugment(config)(coords, flags, torch.Generator().manual_seed(1))
    assert not config.enabled
    assert torch.equal(out_c, coords) and torch.equal(out_f, flags)


def test_drop_points_hand_example():
    # strokes [0 1 2] [3 4]; drop point 2 (end of stroke 0) and point 3
    flags = torch.tensor([[100, 100, 101, 100, 101, 102]])
    coords = torch.arange(12, dtype=torch.float32).view(1, 6, 2)
    keep = torch.tensor([[True, True, False, False, True, True]])
    c, f = drop_points(coords, flags, keep)
    assert f.tolist() == [[100, 101, 101, 102, 102, 102]]
    assert c[0, :3].tolist() == [[0, 1], [2, 3], [8, 9]]
    assert (c[0, 3:] == 0).all()


def test_drop_points_never_empties_a_sketch():
    coords, flags = random_batch(1)
    c, f = drop_points(coords, flags, torch.zeros_like(flags, dtype=torch.bool))
    assert torch.equal(c, coords) and torch.equal(f, flags)


@pytest.mark.parametrize("stroke_drop,point_drop", [(0.3, 0.0), (0.0, 0.3), (0.5, 0.5), (1.0, 0.0), (0.0, 0.95)])
def test_dropout_keeps_flags_valid(stroke_drop, point_drop):
    aug = SketchAugment(AugmentConfig(stroke_drop=stroke_drop, point_drop=point_drop))
    g = torch.Generator().manual_seed(2)
    for seed in range(5):
        coords, flags = random_batch(seed)
        c, f = aug(coords, flags, g)
        assert c.shape == coords.shape and f.shape == flags.shape
        assert_valid_flags(c, f)
        n_old, n_new = (flags != FLAG_PAD).sum(1), (f != FLAG_PAD).sum(1)
        assert (n_new <= n_old).all()
        # kept points are a subsequence of the original points (coordinates are distinct floats)
        for b in range(len(c)):
            old = [tuple(p) for p in coords[b, : n_old[b]].tolist()]
            idx = [old.index(tuple(p)) for p in c[b, : n_new[b]].tolist()]
            assert idx == sorted(idx)


def test_stroke_dropout_removes_whole_strokes():
    coords, flags = random_batch(3, B=64)
    c, f = SketchAugment(AugmentConfig(stroke_drop=0.4))(coords, flags, torch.Generator().manual_seed(0))

    def strokes(cc, ff):
        n = int((ff != FLAG_PAD).sum())
        ends = (torch.nonzero(ff[:n] == FLAG_END)[:, 0] + 1).tolist()
        return [tuple(map(tuple, cc[a:b].tolist())) for a, b in zip([0] + ends[:-1], ends)]

    kept = total = 0
    for b in range(len(c)):
        old, new = strokes(coords[b], flags[b]), strokes(c[b], f[b])
        assert set(new) <= set(old)
        kept, total = kept + len(new), total + len(old)
    assert 0.45 < kept / total < 0.75  # about 60% kept (plus the never-empty rule)


def test_point_dropout_rate():
    coords, flags = random_batch(4, B=256, N=100)
    c, f = SketchAugment(AugmentConfig(point_drop=0.25))(coords, flags, torch.Generator().manual_seed(0))
    frac = (f != FLAG_PAD).sum().item() / (flags != FLAG_PAD).sum().item()
    assert abs(frac - 0.75) < 0.02


def test_seeded_and_deterministic():
    coords, flags = random_batch(5)
    aug = SketchAugment(AugmentConfig(affine_prob=0.5, rotation=20, scale=0.1, point_drop=0.2, stroke_drop=0.1))
    a = aug(coords, flags, torch.Generator().manual_seed(7))
    b = aug(coords, flags, torch.Generator().manual_seed(7))
    c = aug(coords, flags, torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def _pairwise(c: torch.Tensor, n: int) -> torch.Tensor:
    return torch.cdist(c[:n].double(), c[:n].double())


@pytest.mark.parametrize("rotation,scale", [(45.0, 0.0), (180.0, 0.0), (0.0, 0.3), (90.0, 0.2)])
def test_affine_similarity_geometry(rotation, scale):
    """Rotation and isotropic scale multiply every pairwise distance by the same factor s."""
    coords, flags = random_batch(6)
    valid = flags != FLAG_PAD
    out = random_affine(coords, valid, AugmentConfig(affine_prob=1.0, rotation=rotation, scale=scale),
                        torch.Generator().manual_seed(0))
    assert (out[~valid] == 0).all()
    for b in range(len(out)):
        n = int(valid[b].sum())
        if n < 2:
            continue
        d0, d1 = _pairwise(coords[b], n), _pairwise(out[b], n)
        ratio = d1[d0 > 1] / d0[d0 > 1]
        assert ratio.std() < 1e-4
        assert 1 - scale - 1e-4 <= ratio.mean() <= 1 + scale + 1e-4
        # the bounding-box centre is fixed (no translation configured) for pure scaling
        if rotation == 0:
            lo, hi = coords[b, :n].amin(0), coords[b, :n].amax(0)
            lo2, hi2 = out[b, :n].amin(0), out[b, :n].amax(0)
            assert torch.allclose((lo + hi) / 2, (lo2 + hi2) / 2, atol=1e-3)


def test_affine_translation_bounded():
    coords, flags = random_batch(7)
    valid = flags != FLAG_PAD
    out = random_affine(coords, valid, AugmentConfig(affine_prob=1.0, translate=0.1), torch.Generator().manual_seed(0))
    shift = (out - coords)[valid]
    lo = torch.where(valid[..., None], coords, 1e9).amin(1)
    hi = torch.where(valid[..., None], coords, -1e9).amax(1)
    extent = (hi - lo).amax(1)  # (B,)
    per_sketch = (out - coords).abs().amax(1).amax(1)
    assert (per_sketch <= 0.1 * extent + 1e-3).all()
    assert shift.abs().max() > 0
    # a translation moves all points of a sketch by the same vector
    d = out - coords
    assert torch.allclose(torch.where(valid[..., None], d - d[:, :1], 0.0), torch.zeros_like(d), atol=1e-4)


def _extent(coords, flags):
    valid = (flags != FLAG_PAD)[..., None]
    hi = torch.where(valid, coords, -1e9).amax(1)
    lo = torch.where(valid, coords, 1e9).amin(1)
    return (hi - lo).amax(1)  # (B,)


def test_stroke_shift_moves_each_stroke_rigidly_within_bounds():
    coords, flags = random_batch(6, B=64)
    out = perturb(coords, flags, AugmentConfig(stroke_shift=0.1), torch.Generator().manual_seed(0))
    valid = flags != FLAG_PAD
    d = out - coords
    end = (flags == 101).long()
    sid = torch.cumsum(end, 1) - end
    size = _extent(coords, flags)
    for b in range(len(flags)):
        for s in sid[b][valid[b]].unique():
            pts = d[b][valid[b] & (sid[b] == s)]
            assert torch.allclose(pts, pts[:1].expand_as(pts), atol=1e-4)  # one offset per stroke
            assert (pts.abs() <= 0.1 * size[b] + 1e-3).all()
    assert (out[~valid] == 0).all() and torch.equal(flags, flags)
    assert d[valid].abs().mean() > 0.02 * size.mean()  # it does move strokes


def test_jitter_is_gaussian_with_the_size_relative_sigma():
    coords, flags = random_batch(7, B=256, N=100)
    out = perturb(coords, flags, AugmentConfig(jitter=0.02), torch.Generator().manual_seed(0))
    valid = flags != FLAG_PAD
    z = (out - coords) / _extent(coords, flags)[:, None, None]
    z = z[valid & (_extent(coords, flags) > 0)[:, None]]
    assert abs(z.mean().item()) < 0.001 and z.std().item() == pytest.approx(0.02, rel=0.03)
    assert (out[~valid] == 0).all()


@pytest.mark.parametrize("minimum", [0.3, 0.5, 0.9])
def test_incomplete_keeps_a_prefix_of_the_drawing(minimum):
    coords, flags = random_batch(8, B=256, N=60)
    c, f = SketchAugment(AugmentConfig(incomplete_prob=0.5, incomplete_min=minimum))(
        coords, flags, torch.Generator().manual_seed(0))
    assert_valid_flags(c, f)
    n0, n1 = (flags != FLAG_PAD).sum(1), (f != FLAG_PAD).sum(1)
    assert (n1 <= n0).all() and (n1 >= torch.ceil(minimum * n0)).all()
    for b in range(len(n0)):  # the kept points are the first ones, unchanged
        assert torch.equal(c[b, : n1[b]], coords[b, : n1[b]])
    cut = n1 < n0
    # about half of the sketches are chosen; short ones keep all points when ceil(f * n) == n
    assert (0.3 if minimum <= 0.5 else 0.15) < cut.float().mean() < 0.55


def test_rejects_bad_config():
    with pytest.raises(ValueError, match="probability"):
        AugmentConfig(point_drop=1.5)
    with pytest.raises(ValueError, match="incomplete_min must be a fraction of the points in"):
        AugmentConfig(incomplete_min=2.0)
    with pytest.raises(ValueError, match=">= 0"):
        AugmentConfig(jitter=-0.1)
    with pytest.raises(ValueError, match="scale"):
        AugmentConfig(scale=1.0)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("name", ["rotation", "scale", "shear", "translate", "stroke_shift", "jitter"])
def test_rejects_non_finite_strengths_by_name(name, value):
    """NaN passes no comparison: ``jitter=nan`` used to switch jitter off silently (``has_noise``: nan > 0 is
    False), and infinity made the coordinates infinite."""
    with pytest.raises(ValueError, match=rf"^AugmentConfig.{name} must be a finite number >= 0, got {value}$"):
        AugmentConfig(**{name: value})


@pytest.mark.parametrize("name", ["affine_prob", "incomplete_prob", "incomplete_min", "incomplete_stroke_end",
                                  "stroke_drop", "point_drop", "merge_prob"])
def test_rejects_nan_probabilities_by_name(name):
    what = "a fraction of the points" if name == "incomplete_min" else "a probability"
    with pytest.raises(ValueError, match=rf"^AugmentConfig.{name} must be {what} in \[0, 1\], got nan$"):
        AugmentConfig(**{name: float("nan")})


def test_merge_strokes_only_removes_pen_ups():
    coords, flags = random_batch(9, B=512, N=40)
    gen = torch.Generator().manual_seed(0)
    c, f = SketchAugment(AugmentConfig(merge_prob=0.6))(coords, flags, gen)
    assert torch.equal(c, coords), "merging moves no point"
    assert_valid_flags(c, f)
    assert torch.equal(f == FLAG_PAD, flags == FLAG_PAD)
    assert ((f == FLAG_END) <= (flags == FLAG_END)).all(), "a merge never adds a pen-up"
    strokes0, strokes1 = (flags == FLAG_END).sum(1), (f == FLAG_END).sum(1)
    multi = strokes0 > 1
    changed = (strokes1 < strokes0)[multi].float().mean().item()
    single = (strokes1 == 1)[multi].float().mean().item()
    # chosen with p 0.6; half of those become one stroke, the others lose some pen-ups (or, rarely, none)
    assert 0.45 < changed < 0.62
    assert 0.25 < single < 0.45


def test_merge_strokes_joins_the_stroke_relation_across_the_pen_up():
    from sketchgraph.graph import relation_masks

    flags = torch.tensor([[100, 101, 100, 101, 102]])
    merged = merge_strokes(flags, prob=1.0, generator=torch.Generator().manual_seed(0))
    assert merged.tolist() in ([[100, 100, 100, 101, 102]], [[100, 101, 100, 101, 102]])
    # with p=1 half the sketches lose every pen-up: over seeds, both outcomes occur and nothing else
    seen = {tuple(merge_strokes(flags, 1.0, torch.Generator().manual_seed(s))[0].tolist()) for s in range(40)}
    assert seen == {(100, 100, 100, 101, 102), (100, 101, 100, 101, 102)}
    one = torch.tensor([[100, 100, 100, 101, 102]])
    stroke1 = relation_masks(one, ("stroke1",))["stroke1"][0]
    assert bool(stroke1[1, 2]) and bool(stroke1[2, 1]), "the former pen-up jump is now a stroke edge"
    assert merge_strokes(flags, 0.0, torch.Generator().manual_seed(0)).tolist() == flags.tolist()


@pytest.mark.parametrize("stroke_end", [0.0, 0.5, 1.0])
def test_incomplete_stroke_end_stops_between_strokes(stroke_end):
    coords, flags = random_batch(10, B=400, N=60)
    c, f = SketchAugment(AugmentConfig(incomplete_prob=1.0, incomplete_min=0.3, incomplete_stroke_end=stroke_end))(
        coords, flags, torch.Generator().manual_seed(0))
    assert_valid_flags(c, f)
    n0, n1 = (flags != FLAG_PAD).sum(1), (f != FLAG_PAD).sum(1)
    at_stroke_end = flags[torch.arange(len(n1)), n1 - 1] == FLAG_END  # the original drawing had a pen-up there
    assert (n1 >= torch.ceil(0.3 * n0)).all()
    for b in range(len(n0)):
        assert torch.equal(c[b, : n1[b]], coords[b, : n1[b]])
    if stroke_end == 1.0:
        assert at_stroke_end.all(), "every unfinished drawing stops at the end of a stroke"
        assert torch.equal(f[:, :-1][f[:, :-1] != FLAG_PAD], flags[:, :-1][f[:, :-1] != FLAG_PAD])
    else:  # mid-stroke cuts remain: a random cut lands on a stroke end in about 20% of these drawings
        frac = at_stroke_end.float().mean().item()
        assert (0.5 < frac < 0.7) if stroke_end == 0.5 else (0.1 < frac < 0.3)
