"""Speed and fidelity of ``sketchgraph.preprocess.simplify`` (Google's Quick, Draw! simplification).

Speed (one process, one core, CPU time): ``simplify(sketch)`` one sketch at a time, and
``simplify_arrays`` on chunks of 256 sketches, on

- synthetic RAW drawings (``sketchgraph.synthetic``: float canvas px, ~2 strokes, ~75 points), and
- SPG-20's RAW drawings (``../shared/data/spg20/raw``: ~6.5 strokes, ~215 points), when present.

Fidelity (needs ``../shared/data``):

- SPG-20, all 16,000 drawings: ``simplify(raw)`` against the published split file of the same
  ``key_id``. SPG did not publish Google-simplified data: its splits are resampled to 256 points
  and centred in a 254 frame, so the split is mapped to the 255 frame (``normalize``) and compared
  by ``polyline_distance`` (shape) and by ``point_set_distance`` to ``simplify(split)``.
- Google's own simplified drawings (8,100 in ``quickdraw_simplified``): ``simplify`` again and
  compare to themselves (``point_set_distance``; rounding makes this only a near fixed point).

    python benchmarks/bench_simplify.py            # everything (~1-2 minutes)
    python benchmarks/bench_simplify.py --quick    # every 10th drawing for fidelity

Target: >= 2,000 RAW sketches/s on one core for typical Quick, Draw! drawings.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from sketchgraph.preprocess import (
    load_compiled_rdp,
    normalize,
    point_set_distance,
    polyline_distance,
    simplify,
    simplify_arrays,
)
from sketchgraph.sketch import Sketch
from sketchgraph.synthetic import make_dataset

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def speed(sketches: list[Sketch], repeats: int = 3) -> dict[str, float]:
    """Sketches per CPU-second, best of ``repeats``, one at a time and batched (chunks of 256)."""
    def one_by_one() -> None:
        for sk in sketches:
            simplify(sk)

    def batched() -> None:
        for a in range(0, len(sketches), 256):
            chunk = sketches[a : a + 256]
            simplify_arrays(np.concatenate([s.points() for s in chunk]),
                            np.concatenate([s.stroke_lengths() for s in chunk]), [s.num_strokes for s in chunk])

    out = {}
    for name, fn in (("per_sketch", one_by_one), ("batched_256", batched)):
        best = float("inf")
        for _ in range(repeats):
            t = time.process_time()
            fn()
            best = min(best, time.process_time() - t)
        out[name] = round(len(sketches) / best)
    out["strokes"] = round(float(np.mean([s.num_strokes for s in sketches])), 2)
    out["points"] = round(float(np.mean([s.num_points for s in sketches])), 1)
    return out


def read_ndjson(path: Path, step: int = 1) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for i, line in enumerate(f) if line.strip() and i % step == 0]


def summary(values: list[float]) -> dict[str, float]:
    v = np.asarray(values)
    return {"n": len(v), "median": round(float(np.median(v)), 3), "p95": round(float(np.percentile(v, 95)), 3),
            "mean": round(float(v.mean()), 3)}


def spg_fidelity(step: int) -> dict:
    splits = {}
    for path in sorted((DATA / "spg20" / "splits").glob("*.ndjson")):
        for rec in read_ndjson(path):
            splits[rec["key_id"]] = rec["drawing"]
    poly, psd = [], []
    for path in sorted((DATA / "spg20" / "raw").glob("*_raw.ndjson")):
        for rec in read_ndjson(path, step):
            ours = simplify(Sketch.from_strokes([s[:2] for s in rec["drawing"]]))
            theirs = normalize(Sketch.from_strokes([s[:2] for s in splits[rec["key_id"]]]))
            poly.append(polyline_distance(ours, theirs))
            psd.append(point_set_distance(ours, simplify(theirs)))
    return {"polyline_distance": summary(poly), "point_set_distance_to_simplified_split": summary(psd)}


def google_fixed_point(step: int) -> dict:
    dists, same = [], 0
    for path in sorted((DATA / "quickdraw_simplified").glob("*.ndjson")):
        for rec in read_ndjson(path, step):
            g = Sketch.from_strokes(rec["drawing"])
            s = simplify(g)
            same += s == g
            dists.append(point_set_distance(s, g))
    return {"point_set_distance": summary(dists), "identical": round(same / len(dists), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fidelity on every 10th drawing only")
    args = parser.parse_args()
    step = 10 if args.quick else 1
    # the steady state of a long-running process: the compiled RDP kernel is loaded before timing (a fresh
    # process simplifies its first ~1M resampled points with numpy, the same results, slower)
    report = {"compiled_rdp": load_compiled_rdp()}
    report["speed_synthetic_raw"] = speed(make_dataset(100, seed=0))
    if (DATA / "spg20").exists():
        raws = [Sketch.from_strokes([s[:2] for s in rec["drawing"]])
                for path in sorted((DATA / "spg20" / "raw").glob("*_raw.ndjson")) for rec in read_ndjson(path, 8)]
        report["speed_spg20_raw"] = speed(raws)
        report["fidelity_spg20_raw_vs_splits"] = spg_fidelity(step)
    if (DATA / "quickdraw_simplified").exists():
        report["google_simplified_resimplified"] = google_fixed_point(step)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
