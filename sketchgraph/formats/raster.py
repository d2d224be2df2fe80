"""Raster output with pillow: ``rasterize`` (small uint8 arrays for the CNN baseline) and
``render_png`` (images for people). Both fit the sketch into the frame keeping its aspect ratio,
centred, y pointing down (no flip)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..sketch import Sketch
from .base import PathLike, atomic_write

__all__ = ["fit_points", "rasterize", "render_png"]


def fit_points(points: np.ndarray, size: float, padding: float) -> np.ndarray:
    """Scale and shift ``(N, 2)`` points into ``[padding, size - 1 - padding]`` keeping the aspect
    ratio, centred; returns ``(N, 2)`` float64 pixel coordinates. A single point lands in the middle."""
    pts = np.asarray(points, dtype=np.float64)[:, :2]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    extent = float((hi - lo).max())
    avail = max(size - 1 - 2 * padding, 0.0)
    scale = avail / extent if extent > 0 else 0.0
    offset = padding + (avail - (hi - lo) * scale) / 2 - lo * scale  # (2,)
    return pts * scale + offset


def _draw(draw: ImageDraw.ImageDraw, sketch: Sketch, size: float, padding: float, width: int, ink: int,
          joint: str | None) -> None:
    xy = fit_points(sketch.points(), size, padding)  # (N, 2)
    start = 0
    for n in sketch.stroke_lengths().tolist():
        seg = xy[start : start + n]
        start += n
        if n == 0:
            continue
        if n == 1 or (seg == seg[0]).all():
            x, y = seg[0]
            r = width / 2
            if width <= 1:
                draw.point((x, y), fill=ink)
            else:
                draw.ellipse((x - r, y - r, x + r, y + r), fill=ink)
        else:
            draw.line(seg.ravel().tolist(), fill=ink, width=width, joint=joint)


def rasterize(sketch: Sketch, size: int = 64, line_width: int = 1, padding: float | None = None) -> np.ndarray:
    """The sketch drawn as ink 255 on background 0, ``(size, size)`` uint8 (Quick, Draw!'s bitmap
    convention). ``padding`` defaults to ``line_width // 2 + 1`` pixels. Empty sketches give zeros."""
    img = Image.new("L", (size, size), 0)
    if sketch.num_points:
        pad = line_width // 2 + 1 if padding is None else padding
        _draw(ImageDraw.Draw(img), sketch, size, pad, line_width, 255, None)
    return np.asarray(img)


def render_png(
    sketch: Sketch,
    path: PathLike | None = None,
    size: int = 256,
    line_width: int = 2,
    padding: float | None = None,
    supersample: int = 2,
) -> Image.Image:
    """Black strokes on white, ``size`` x ``size``, mode ``"L"``; drawn ``supersample`` times larger
    and downsampled for smooth edges. ``padding`` defaults to 4% of ``size``. Saved atomically as
    PNG when ``path`` is given; the image is returned either way."""
    big = size * supersample
    img = Image.new("L", (big, big), 255)
    if sketch.num_points:
        pad = (0.04 * size if padding is None else padding) * supersample
        _draw(ImageDraw.Draw(img), sketch, big, pad, max(1, line_width * supersample), 0, "curve")
    if supersample > 1:
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    if path is not None:
        with atomic_write(Path(path), "wb") as f:
            img.save(f, format="PNG")
    return img
