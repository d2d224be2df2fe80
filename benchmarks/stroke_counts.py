"""How SPG-20's drawings differ from Google's own: strokes and points per drawing, side by side.

    .venv/bin/python benchmarks/stroke_counts.py

Reads the 16,000 SPG-20 drawings in their original coordinates (``spg20/raw``, simplified as the classifier
does) and the 8,100 Google-simplified drawings of 324 other classes (``quickdraw_simplified``: the first 25
lines of each official file, recognized and unrecognized) from ``../shared/data``, and prints the share of
drawings with 1, 2, 3 and more strokes, mean strokes and points, and the share over the 100-point cap; for
Google also the recognized share and the same figures for unrecognized drawings. These are the figures
behind the stroke-merge augmentation (``merge_prob``) and the ``one-stroke`` robustness condition. Last, the
ink of each drawing set (``sketchgraph.preprocess.ink_length``: px of strokes in the 255 frame, the measure of
simplification work), the figures behind the server's ``LIGHT_INK`` threshold.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DGLBACKEND", "pytorch")

from sketchgraph.data.flat import flatten  # noqa: E402
from sketchgraph.formats import read_sketches  # noqa: E402
from sketchgraph.preprocess import ink_length, simplify_arrays  # noqa: E402
from sketchgraph.serve.batching import LIGHT_INK  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def summary(strokes: np.ndarray, points: np.ndarray) -> str:
    share = [f"{100 * np.mean(strokes == k):.1f}%" for k in (1, 2, 3)]
    return (f"n {len(strokes):>6,}  1 stroke {share[0]:>6}  2 strokes {share[1]:>6}  3 strokes {share[2]:>6}  "
            f"mean strokes {strokes.mean():5.2f}  mean points {points.mean():5.1f}  "
            f"over 100 points {100 * np.mean(points > 100):4.1f}%")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA, help=f"the shared data folder (default {DATA})")
    args = p.parse_args(argv)
    spg, google = args.data / "spg20" / "raw", args.data / "quickdraw_simplified"
    if not spg.is_dir() or not google.is_dir():
        raise SystemExit(f"need {spg} and {google}")
    skip = lambda exc: print(f"warning: {exc}", file=sys.stderr)  # noqa: E731
    spg_sketches = [s for f in sorted(spg.glob("*.ndjson")) for s in read_sketches(f, format="spg", on_error=skip)]
    flat = flatten(spg_sketches)
    _, lengths = simplify_arrays(flat.points, flat.stroke_lengths, flat.sketch_strokes)  # all at once
    first = np.cumsum(flat.sketch_strokes) - flat.sketch_strokes  # (S,) first stroke of each sketch
    s_strokes = np.add.reduceat((lengths > 0).astype(np.int64), first)  # (S,) non-empty strokes
    s_points = np.add.reduceat(lengths, first)  # (S,)
    g = [(len(s.strokes), s.num_points, s.recognized is not False, ink_length(s))
         for f in sorted(google.glob("*.ndjson")) for s in read_sketches(f, on_error=skip)]
    g_strokes, g_points, recognized, g_ink = (np.array(c) for c in zip(*g))
    print(f"SPG-20 (simplified raw) {summary(s_strokes, s_points)}")
    print(f"Google simplified       {summary(g_strokes, g_points)}  recognized {100 * recognized.mean():.1f}%")
    print(f"  of which unrecognized {summary(g_strokes[~recognized], g_points[~recognized])}")
    for name, ink in (("SPG-20 raw", np.array([ink_length(s) for s in spg_sketches])), ("Google simplified", g_ink)):
        p50, p90, p99, p999 = np.percentile(ink, [50, 90, 99, 99.9])
        print(f"ink, px in the 255 frame, {name:<17} median {p50:,.0f}  p90 {p90:,.0f}  p99 {p99:,.0f}  "
              f"p99.9 {p999:,.0f}  max {ink.max():,.0f}  over LIGHT_INK ({LIGHT_INK:,.0f}): "
              f"{100 * np.mean(ink > LIGHT_INK):.2f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
