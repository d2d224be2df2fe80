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

RDP's recursion depth (``--depth``): the levels of recursion every drawing in ``../shared/data`` needs (SPG-20
raw, Google-simplified, sketch-rnn, TU-Berlin), against ``RDP_MAX_DEPTH``, and the time of the worst cases the
limit is for (a full-width zig-zag, a tight spiral, both legal drawings) with and without it.

    python benchmarks/bench_simplify.py            # everything (~1-2 minutes)
    python benchmarks/bench_simplify.py --quick    # every 10th drawing for fidelity
    python benchmarks/bench_simplify.py --depth    # the depth limit alone (~1 minute)

Target: >= 2,000 RAW sketches/s on one core for typical Quick, Draw! drawings.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from sketchgraph.preprocess import (
    RDP_MAX_DEPTH,
    Preprocessing,
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


def _resampled(sketches: list[Sketch]) -> tuple[np.ndarray, np.ndarray]:
    """The 1-px samples RDP runs on, as ``simplify_arrays`` makes them: ``(M, 2)`` and ``(T,)`` per stroke."""
    from sketchgraph.data.flat import flatten
    from sketchgraph.preprocess import rdp_input

    flat = flatten(sketches)
    return rdp_input(flat.points, flat.stroke_lengths, flat.sketch_strokes)


def depth_needed(sketches: list[Sketch], epsilon: float = 2.0) -> int:
    """The fewest RDP levels that keep, in every stroke of ``sketches``, what an unlimited recursion keeps."""
    from sketchgraph.preprocess import _rdp_flat

    res, lengths = _resampled(sketches)
    unlimited = _rdp_flat(res, lengths, epsilon, max_depth=int(lengths.max()) + 1)  # a split needs 1 point
    lo, hi = 0, int(lengths.max()) + 1  # the same as unlimited at hi; keeping more levels keeps a superset
    while lo < hi:
        mid = (lo + hi) // 2
        if np.array_equal(_rdp_flat(res, lengths, epsilon, max_depth=mid), unlimited):
            hi = mid
        else:
            lo = mid + 1
    return lo


def shared_drawings() -> dict[str, list[Sketch]]:
    """Every drawing in ``../shared/data`` that can be simplified, by source (sources that are absent are left out)."""
    from sketchgraph.formats import read_sketches

    sources = {
        "spg20 raw": (sorted((DATA / "spg20" / "raw").glob("*_raw.ndjson")), "spg"),
        "quickdraw_simplified": (sorted((DATA / "quickdraw_simplified").glob("*.ndjson")), None),
        "sketchrnn": (sorted((DATA / "sketchrnn").glob("*.npz")), None),
        "tuberlin_svg": (sorted((DATA / "tuberlin_svg").glob("*/*.svg")), None),
    }
    out = {}
    for name, (paths, fmt) in sources.items():
        kw = {"format": fmt} if fmt else {}
        sketches = [s for path in paths for s in read_sketches(path, on_error=lambda e: None, **kw) if s.num_points]
        if sketches:
            out[name] = sketches
    return out


def worst_cases() -> dict[str, Sketch]:
    """Legal drawings on which unlimited RDP is quadratic: every vertex survives, and each split peels one off."""
    zig = np.array([[(i % 2) * 255.0, i * 255.0 / 7000] for i in range(7000)])  # 7,000 points, 1.78M px of ink
    theta = np.linspace(0, 2 * np.pi * 2000, 20000)  # 20,000 points (the service's limit), 2,000 turns
    radius = 127 * (1 - theta / theta.max()) + 0.5
    spiral = np.c_[128 + radius * np.cos(theta), 128 + radius * np.sin(theta)]
    return {"zig-zag, 7,000 points": Sketch([zig]), "spiral, 20,000 points": Sketch([spiral])}


def depth_report() -> dict:
    """``--depth``: the levels real drawings need, and the worst cases timed with and without the limit."""
    import sketchgraph.preprocess as P
    from sketchgraph.preprocess import preprocess

    report: dict = {"rdp_max_depth": RDP_MAX_DEPTH, "levels_needed": {}}
    for name, sketches in shared_drawings().items():
        report["levels_needed"][name] = {"drawings": len(sketches), "levels": depth_needed(sketches)}
    adapt = Preprocessing(cap="adapt")
    for name, sketch in worst_cases().items():
        row = {"ink_px": round(P.ink_length(sketch))}
        for label, depth in (("limited", RDP_MAX_DEPTH), ("unlimited (one simplify only)", None)):
            if depth is None:  # the quadratic pass, once: it takes tens of seconds
                res, lengths = _resampled([sketch])
                t0 = time.process_time()
                P._rdp_flat(res, lengths, 2.0, max_depth=int(lengths.max()) + 1)
                row[label] = {"rdp_one_pass_s": round(time.process_time() - t0, 2)}
                continue
            t0 = time.process_time()
            points = simplify(sketch).num_points
            t1 = time.process_time()
            preprocess(sketch, adapt)
            row[label] = {"simplify_s": round(t1 - t0, 2), "points_kept": points,
                          "preprocess_adapt_s": round(time.process_time() - t1, 2)}
        report[name] = row
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fidelity on every 10th drawing only")
    parser.add_argument("--depth", action="store_true", help="RDP's recursion depth alone (see above)")
    args = parser.parse_args()
    if args.depth:
        load_compiled_rdp()
        print(json.dumps(depth_report(), indent=2))
        return
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
