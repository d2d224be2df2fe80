r"""Training-time augmentation of padded sketch batches (the loader's ``transform`` hook).

``SketchAugment(config)`` is called as ``transform(coords, flags, generator) -> (coords, flags)``
on a padded batch *before* the relation masks are built, so the masks always follow the augmented
flags. Everything is vectorised over the batch; no Python loop touches points or sketches.

Per sketch, independently:

1. **affine** (with probability ``affine_prob``): about the centre of the sketch's bounding box,
   :math:`x' = R(\theta)\,H(h)\,s\,(x - c) + c + t` with :math:`\theta \sim U(\pm\text{rotation})`
   degrees, :math:`s \sim U(1 \pm \text{scale})`, shear :math:`h \sim U(\pm\text{shear})` and
   :math:`t \sim U(\pm\text{translate})` times the bounding box's larger side;
2. **stroke shift**: each stroke moves by its own offset, uniform in ``±stroke_shift`` times the bounding
   box's larger side per axis (parts drawn a little out of place);
3. **jitter**: independent gaussian noise on every point, sigma ``jitter`` times the larger side;
4. **incomplete** (with probability ``incomplete_prob``): only the first fraction ``f ~ U(incomplete_min, 1)``
   of the points in drawing order is kept (a drawing stopped early, as many unrecognized Quick, Draw!
   drawings are); with probability ``incomplete_stroke_end`` the cut moves on to the end of the stroke it
   falls in, so the drawing stops between strokes rather than in the middle of one;
5. **stroke dropout**: each stroke is removed with probability ``stroke_drop``;
6. **point dropout**: each remaining point is removed with probability ``point_drop``;
7. **stroke merge** (with probability ``merge_prob``): pen-ups are removed, so consecutive strokes become
   one continuous line through the pen-up jump (a drawing made without lifting the pen: 14% of Google's
   Quick, Draw! drawings are a single stroke, while SPG has none: ``benchmarks/stroke_counts.py``). Half of the chosen
   sketches become a single stroke; the others lose each pen-up with probability ``r ~ U(0, 1)``. Only the
   flags change: the points stay where they are.

After dropout the kept points are moved to the front (order preserved) and the flags recomputed: a
point ends its stroke (101) when the next kept point belongs to another stroke or there is none, so
a stroke whose end point was dropped now ends at its last kept point. A sketch that would lose every
point keeps all of them instead. Stroke merging comes last, so dropout and truncation act on the strokes
as drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .graph import FLAG_CONTINUE, FLAG_END, FLAG_PAD

__all__ = ["AugmentConfig", "SketchAugment", "random_affine", "perturb", "drop_points", "merge_strokes"]


@dataclass
class AugmentConfig:
    """Augmentation strengths; the defaults do nothing.

    Attributes:
        affine_prob: probability that a sketch gets a random affine transform.
        rotation: maximum rotation in degrees (uniform in ``[-rotation, rotation]``).
        scale: maximum relative isotropic scale change (uniform in ``[1 - scale, 1 + scale]``). A model that
            fits each sketch into [-1, 1] (``coord_norm="unit"``, as the default ``mgt`` preset) undoes it, and
            ``translate`` too (the trainer says so at start for such a model); they act on raw-coordinate models
            (``mgt-paper``) and, a little, on the CNN raster.
        shear: maximum horizontal shear factor (uniform in ``[-shear, shear]``).
        translate: maximum shift per axis, as a fraction of the bounding box's larger side.
        stroke_shift: maximum per-stroke shift per axis, as a fraction of the bounding box's larger side.
        jitter: standard deviation of per-point gaussian noise, as a fraction of the larger side.
        incomplete_prob: probability that a sketch keeps only its first points (an unfinished drawing).
        incomplete_min: the smallest fraction of points an unfinished drawing keeps.
        incomplete_stroke_end: probability that an unfinished drawing keeps the rest of the stroke it was cut in.
        stroke_drop: probability of removing each stroke.
        point_drop: probability of removing each point.
        merge_prob: probability that a sketch's strokes are joined (pen-ups removed, see step 7).
    """

    affine_prob: float = 0.0
    rotation: float = 0.0
    scale: float = 0.0
    shear: float = 0.0
    translate: float = 0.0
    stroke_shift: float = 0.0
    jitter: float = 0.0
    incomplete_prob: float = 0.0
    incomplete_min: float = 0.5
    incomplete_stroke_end: float = 0.0
    stroke_drop: float = 0.0
    point_drop: float = 0.0
    merge_prob: float = 0.0

    def __post_init__(self) -> None:
        """``ValueError`` naming the field unless the probabilities are in [0, 1] and the strengths are finite
        numbers >= 0 (``scale`` < 1). NaN and infinity are refused: NaN passes no comparison, so it would silently
        turn a step off (``jitter=nan``), and infinity would make every augmented coordinate infinite."""
        for name in ("affine_prob", "incomplete_prob", "incomplete_min", "incomplete_stroke_end", "stroke_drop",
                     "point_drop", "merge_prob"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                what = "a fraction of the points" if name == "incomplete_min" else "a probability"
                raise ValueError(f"AugmentConfig.{name} must be {what} in [0, 1], got {v}")
        for name in ("rotation", "scale", "shear", "translate", "stroke_shift", "jitter"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"AugmentConfig.{name} must be a finite number >= 0, got {v}")
        if self.scale >= 1.0:
            raise ValueError(f"AugmentConfig.scale must be < 1 (it is a relative change), got {self.scale}")

    @property
    def has_affine(self) -> bool:
        return self.affine_prob > 0 and any((self.rotation, self.scale, self.shear, self.translate))

    @property
    def enabled(self) -> bool:
        """False when the transform is the identity (the loader can then skip it)."""
        return self.has_affine or self.has_noise or self.has_drop or self.merge_prob > 0

    @property
    def has_noise(self) -> bool:
        return self.stroke_shift > 0 or self.jitter > 0

    @property
    def has_drop(self) -> bool:
        return self.stroke_drop > 0 or self.point_drop > 0 or (self.incomplete_prob > 0 and self.incomplete_min < 1)


def _bounds(coords: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lo, hi)``, each ``(B, 2)``: the bounding box of each sketch's valid points (+-max float when empty)."""
    big = torch.finfo(coords.dtype).max
    lo = torch.where(valid[..., None], coords, big).amin(1)
    hi = torch.where(valid[..., None], coords, -big).amax(1)
    return lo, hi


def _stroke_index(flags: torch.Tensor) -> torch.Tensor:
    """``(B, N)`` index of the stroke each point belongs to (0-based, < N)."""
    end = (flags == FLAG_END).long()
    return torch.cumsum(end, 1) - end


def _uniform(n: int, bound: float, generator: torch.Generator | None) -> torch.Tensor:
    """``(n,)`` float32 uniform in ``[-bound, bound]``."""
    return (torch.rand(n, generator=generator) * 2.0 - 1.0) * bound


def random_affine(
    coords: torch.Tensor, valid: torch.Tensor, config: AugmentConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Apply a random affine transform per sketch (see the module docstring).

    Args:
        coords: ``(B, N, 2)`` float coordinates.
        valid: ``(B, N)`` bool, False on padding (padding stays 0).
        config: the strengths; sketches not selected (``affine_prob``) are returned bit-identical.
        generator: CPU generator for the random parameters.

    Returns:
        ``(B, N, 2)`` transformed coordinates (same dtype and device).
    """
    B = coords.shape[0]
    dev, dt = coords.device, coords.dtype
    apply = torch.rand(B, generator=generator) < config.affine_prob  # (B,)
    theta = _uniform(B, math.radians(config.rotation), generator)
    s = 1.0 + _uniform(B, config.scale, generator)
    h = _uniform(B, config.shear, generator)
    t = _uniform(2 * B, config.translate, generator).view(B, 2)
    cos, sin = torch.cos(theta), torch.sin(theta)
    # M = R(theta) @ [[1, h], [0, 1]] * s, as (B, 2, 2)
    m = torch.stack([cos, cos * h - sin, sin, sin * h + cos], 1).view(B, 2, 2) * s[:, None, None]
    m, t, apply = m.to(dev, dt), t.to(dev, dt), apply.to(dev)

    lo, hi = _bounds(coords, valid)  # (B, 2) each
    has_points = valid.any(1)[:, None]  # (B, 1)
    centre = torch.where(has_points, (lo + hi) / 2, 0.0)  # (B, 2)
    extent = torch.where(has_points, hi - lo, 0.0).amax(1, keepdim=True)  # (B, 1)
    out = torch.einsum("bij,bnj->bni", m, coords - centre[:, None]) + (centre + t * extent)[:, None]
    out = torch.where(valid[..., None], out, torch.zeros((), dtype=dt, device=dev))
    return torch.where(apply[:, None, None], out, coords)


def _extent(coords: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``(B,)`` larger side of each sketch's bounding box (0 for an empty one)."""
    lo, hi = _bounds(coords, valid)
    return torch.where(valid.any(1), (hi - lo).amax(1), 0.0)


def perturb(
    coords: torch.Tensor, flags: torch.Tensor, config: AugmentConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Per-stroke shifts and per-point jitter (module docstring, steps 2-3), scaled by each sketch's size.

    Args:
        coords: ``(B, N, 2)``. flags: ``(B, N)`` (padding stays 0).

    Returns:
        ``(B, N, 2)`` perturbed coordinates.
    """
    B, N = flags.shape
    valid = flags != FLAG_PAD
    size = _extent(coords, valid).cpu()[:, None, None]  # (B, 1, 1)
    delta = torch.zeros(B, N, 2)
    if config.stroke_shift > 0:
        shift = _uniform(B * N * 2, config.stroke_shift, generator).view(B, N, 2)  # (B, strokes, 2)
        sid = _stroke_index(flags).cpu()
        delta += torch.gather(shift, 1, sid[..., None].expand(B, N, 2))
    if config.jitter > 0:
        delta += torch.randn(B, N, 2, generator=generator) * config.jitter
    delta = (delta * size).to(coords.device, coords.dtype)
    return torch.where(valid[..., None], coords + delta, coords)


def drop_points(
    coords: torch.Tensor, flags: torch.Tensor, keep: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the points where ``keep`` is True, re-compact each sketch and recompute its flags.

    Args:
        coords: ``(B, N, 2)`` padded coordinates.
        flags: ``(B, N)`` flags (100 / 101 / 102), valid points first.
        keep: ``(B, N)`` bool, which points survive (ignored on padding). A sketch with no kept
            point keeps all of its points.

    Returns:
        ``(coords, flags)`` with the same shapes: kept points first in drawing order, padding 0 / 102,
        and 101 on the last kept point of every stroke that still has points.
    """
    B, N = flags.shape
    valid = flags != FLAG_PAD
    sid = _stroke_index(flags)  # (B, N)
    keep = keep & valid
    keep = torch.where(keep.any(1, keepdim=True), keep, valid)  # never empty a sketch
    order = torch.sort((~keep).to(torch.uint8), dim=1, stable=True).indices  # kept first, order kept
    new_valid = torch.arange(N, device=flags.device)[None, :] < keep.sum(1, keepdim=True)  # (B, N)
    new_coords = torch.gather(coords, 1, order[..., None].expand(B, N, coords.shape[-1]))
    new_coords = torch.where(new_valid[..., None], new_coords, torch.zeros((), dtype=coords.dtype))
    new_sid = torch.gather(sid, 1, order)  # (B, N)
    nxt_valid = torch.cat([new_valid[:, 1:], new_valid.new_zeros(B, 1)], 1)
    nxt_sid = torch.cat([new_sid[:, 1:], new_sid.new_full((B, 1), -1)], 1)
    is_end = ~nxt_valid | (nxt_sid != new_sid)
    new_flags = torch.where(is_end, FLAG_END, FLAG_CONTINUE)
    new_flags = torch.where(new_valid, new_flags, FLAG_PAD).to(flags.dtype)
    return new_coords, new_flags


def merge_strokes(flags: torch.Tensor, prob: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Remove pen-ups: the stroke-end flag (101) of a point that is not its sketch's last becomes 100.

    Each sketch is chosen with probability ``prob``; half of the chosen ones lose every pen-up (one
    continuous stroke), the others lose each pen-up with probability ``r ~ U(0, 1)`` drawn per sketch.

    Args:
        flags: ``(B, N)`` flags (100 / 101 / 102), valid points first.
        prob: the probability that a sketch is chosen.
        generator: CPU generator.

    Returns:
        ``(B, N)`` flags; padding and every sketch's last point unchanged.
    """
    B, N = flags.shape
    chosen = torch.rand(B, generator=generator) < prob  # (B,)
    rate = (2.0 * torch.rand(B, generator=generator)).clamp(max=1.0)  # (B,): 1 for half of them
    remove = (torch.rand(B, N, generator=generator) < rate[:, None]) & chosen[:, None]  # (B, N)
    nxt_valid = torch.cat([flags[:, 1:] != FLAG_PAD, flags.new_zeros(B, 1, dtype=torch.bool)], 1)
    pen_up = (flags == FLAG_END) & nxt_valid & remove.to(flags.device)  # 101 followed by another point
    return flags.masked_fill(pen_up, FLAG_CONTINUE)


class SketchAugment:
    """The loader ``transform``: ``(coords (B, N, 2), flags (B, N), generator) -> (coords, flags)``."""

    def __init__(self, config: AugmentConfig) -> None:
        self.config = config

    def __repr__(self) -> str:
        return f"SketchAugment({self.config})"

    def __call__(
        self, coords: torch.Tensor, flags: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        if not cfg.enabled:
            return coords, flags
        valid = flags != FLAG_PAD
        if cfg.has_affine:
            coords = random_affine(coords, valid, cfg, generator)
        if cfg.has_noise:
            coords = perturb(coords, flags, cfg, generator)
        if cfg.has_drop:
            B, N = flags.shape
            sid = _stroke_index(flags).cpu()  # (B, N) stroke index < N
            keep_stroke = torch.rand(B, N, generator=generator) >= cfg.stroke_drop  # (B, strokes)
            keep = torch.gather(keep_stroke, 1, sid) & (torch.rand(B, N, generator=generator) >= cfg.point_drop)
            if cfg.incomplete_prob > 0:
                cut = torch.rand(B, generator=generator) < cfg.incomplete_prob  # (B,)
                frac = cfg.incomplete_min + torch.rand(B, generator=generator) * (1 - cfg.incomplete_min)
                n_keep = torch.ceil(frac * valid.sum(1).cpu()).clamp(min=1).long()  # (B,) at least one point
                if cfg.incomplete_stroke_end > 0:  # the last kept point's stroke is kept whole
                    to_end = torch.rand(B, generator=generator) < cfg.incomplete_stroke_end  # (B,)
                    last_sid = torch.gather(sid, 1, (n_keep - 1)[:, None])  # (B, 1)
                    n_whole = ((sid <= last_sid) & valid.cpu()).sum(1)  # (B,) points up to that stroke's end
                    n_keep = torch.where(to_end, n_whole, n_keep)
                keep &= ~cut[:, None] | (torch.arange(N)[None, :] < n_keep[:, None])
            coords, flags = drop_points(coords, flags, keep.to(flags.device))
        if cfg.merge_prob > 0:
            flags = merge_strokes(flags, cfg.merge_prob, generator)
        return coords, flags
