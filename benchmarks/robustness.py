"""Robustness of a checkpoint to the input a user actually sends: SPG-20 accuracy under simulated input conditions.

    .venv/bin/python benchmarks/robustness.py                                  # the shipped spg20 checkpoint
    .venv/bin/python benchmarks/robustness.py --checkpoint runs/spg20/best --per-class 20   # a quick look
    .venv/bin/python benchmarks/robustness.py --checkpoint runs/x/best --split valid       # compare candidates

The 2,000 SPG-20 test drawings, or the 1,000 valid ones with ``--split valid`` (SPG's published split:
``splits/<class>_<split>.ndjson`` gives the key ids, the drawings come from ``raw/<class>_raw.ndjson`` in
``../shared/data/spg20``, read with
``sketchgraph.formats.read_sketches``) are classified with ``SketchClassifier.predict_batch`` under:

=============  ==============================================================================================
condition      what the classifier receives
=============  ==============================================================================================
``reference``  the drawing as stored (its Quick, Draw! coordinates; what the checkpoint was evaluated on)
``canvas``     a RAW ndjson line as a drawing page would post it: float canvas pixels at a random scale
               (0.3x-4x, log-uniform) and offset (0-600 px), with synthetic millisecond timestamps
``simplified`` Google's "simplified" format: our ``simplify`` applied first, rounded to integers, then sent as
               plain ``[[xs, ys], ...]`` lists (the classifier simplifies again; this must be harmless)
``dense``      every stroke resampled along its arc length so the drawing has > 300 raw points (a high
               sampling-rate pen or touch screen)
``jitter``     mild hand tremor: independent gaussian noise on every point, sigma 1-2% of the drawing's size
=============  ==============================================================================================

Two more stand in for the messier drawings of the full Quick, Draw! data (SPG's are all recognized, tidy ones;
many unrecognized drawings are unfinished or have parts out of place): ``incomplete`` (only the first 50-90% of
the raw points, in drawing order) and ``misplaced`` (each stroke shifted by its own offset, up to 5% of the
drawing's size per axis).

Three more test the pen-up structure. SPG has no one-stroke drawing and 0.7% two-stroke ones, while in
Google's Quick, Draw! data 14% of the drawings are a single stroke and 15% two (8,100 drawings of 324 other
classes in ``../shared/data/quickdraw_simplified``; ``benchmarks/stroke_counts.py`` prints both):
``one-stroke`` (every pen-up removed: the drawing as one continuous line through its pen-up jumps),
``merged`` (each pen-up removed with probability 1/2) and ``first-strokes`` (only the first 50-90% of the
strokes, a drawing stopped between strokes).

Two diagnostics tell the two effects of ``jitter`` apart: ``jitter-smooth`` (the same sigma, but correlated
over ~10 consecutive raw points: a slow wobble, closer to real tremor) and ``jitter-simplified`` (the same
noise added to the Google-simplified points, after simplification instead of before it: the shape changes, the
zig-zag points of jittered raw input do not appear).

Reported per condition: top-1 / top-5 accuracy, the change from ``reference``, how often the top-1 class is
the same as for ``reference``, the mean number of points before and after preprocessing (the model
sees at most 100), and, for the conditions that hand over a ``Sketch``, how many drawings they left exactly as
stored (``unchanged``: ``first-strokes`` keeps the first ceil(u * n) strokes, so many drawings of 2-5 strokes stay
whole) with the top-1 on the others alone (``top1_changed``). A table is printed and
``benchmarks/results/robustness.json`` written.

This is a proxy: Google's RAW Quick, Draw! files (true canvas coordinates and timings) for these 20
classes are not available here, so the stored SPG drawings stand in for them and the canvas, timing,
density and jitter effects are simulated from them. Seeded (``--seed``): the same numbers on every run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
os.environ.setdefault("DGLBACKEND", "pytorch")

from results_io import save_results  # noqa: E402

from sketchgraph.formats import canonical_label, label_from_path, read_sketches  # noqa: E402
from sketchgraph.predict import SketchClassifier  # noqa: E402
from sketchgraph.preprocess import cap_points, preprocess, simplify  # noqa: E402
from sketchgraph.sketch import Sketch  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "spg20"
OUT = ROOT / "benchmarks" / "results" / "robustness.json"
DENSE_MIN_POINTS = 300
SMOOTH_WIDTH = 10


# ------------------------------------------------------------------------------------------ data
def load_test_split(root: Path, per_class: int | None = None, split: str = "test") -> list[Sketch]:
    """SPG-20 drawings of ``split`` (``test`` or ``valid``), class by class: key ids from
    ``splits/<class>_<split>.ndjson``, drawings from ``raw/<class>_raw.ndjson`` (malformed raw records are
    skipped), labels from the file names."""
    raw_files = sorted((root / "raw").glob("*_raw.ndjson"))
    if not raw_files or not (root / "splits").is_dir():
        raise SystemExit(f"{root} does not look like SPG-20 (expected raw/<class>_raw.ndjson and splits/)")
    out: list[Sketch] = []
    for raw in raw_files:
        cls = raw.name[: -len("_raw.ndjson")]
        wanted = [s.key_id for s in read_sketches(root / "splits" / f"{cls}_{split}.ndjson", on_error=lambda e: None)]
        wanted = wanted[:per_class] if per_class else wanted
        keep = set(wanted)
        found = {s.key_id: s for s in read_sketches(raw, format="spg", on_error=lambda e: None) if s.key_id in keep}
        missing = keep - set(found)
        if missing:
            print(f"warning: {cls}: {len(missing)} {split} key ids not in {raw.name}", file=sys.stderr)
        word = label_from_path(raw, spg=True)  # alarm_clock_raw.ndjson -> "alarm clock"
        out += [Sketch([st[:, :2] for st in found[k].strokes], label=word, key_id=k) for k in wanted if k in found]
    return out


# ------------------------------------------------------------------------------------------ conditions
def _size(sketch: Sketch) -> float:
    x0, y0, x1, y1 = sketch.bounds
    return max(x1 - x0, y1 - y0, 1.0)


def reference(sketch: Sketch, rng: np.random.Generator) -> Sketch:
    return sketch


def canvas(sketch: Sketch, rng: np.random.Generator) -> str:
    """A RAW ndjson line: scaled, shifted float canvas pixels plus ms timestamps (10-25 ms between samples
    of a stroke, 150-500 ms pen-up pauses)."""
    scale = math.exp(rng.uniform(math.log(0.3), math.log(4.0)))
    offset = rng.uniform(0, 600, 2)
    x0, y0, _, _ = sketch.bounds
    t, drawing = float(rng.uniform(0, 50)), []
    for st in sketch.strokes:
        xy = (st - (x0, y0)) * scale + offset + rng.uniform(-0.5, 0.5, st.shape)  # sub-pixel canvas floats
        ts = t + np.concatenate([[0.0], np.cumsum(rng.uniform(10, 25, len(st) - 1))])
        t = float(ts[-1]) + rng.uniform(150, 500)
        drawing.append([np.round(xy[:, 0], 2).tolist(), np.round(xy[:, 1], 2).tolist(), np.round(ts).tolist()])
    return json.dumps({"word": sketch.label, "key_id": sketch.key_id, "drawing": drawing})


def simplified(sketch: Sketch, rng: np.random.Generator) -> list:
    """``[[xs, ys], ...]`` integer lists, as in Google's simplified files."""
    return [[np.rint(s[:, 0]).astype(int).tolist(), np.rint(s[:, 1]).astype(int).tolist()]
            for s in simplify(sketch).strokes]


def dense(sketch: Sketch, rng: np.random.Generator) -> Sketch:
    """Each stroke resampled at a uniform arc-length spacing chosen so the drawing has > 300 points."""
    lengths = [np.linalg.norm(np.diff(s, axis=0), axis=1) for s in sketch.strokes]  # per-segment lengths
    total = sum(float(seg.sum()) for seg in lengths)
    spacing = total / (DENSE_MIN_POINTS * 1.3) if total > 0 else 1.0
    strokes = []
    for s, seg in zip(sketch.strokes, lengths):
        arc = np.concatenate([[0.0], np.cumsum(seg)])  # (n,)
        if arc[-1] == 0:
            strokes.append(s)
            continue
        at = np.linspace(0.0, arc[-1], max(int(math.ceil(arc[-1] / spacing)) + 1, 2))
        strokes.append(np.column_stack([np.interp(at, arc, s[:, 0]), np.interp(at, arc, s[:, 1])]).astype(np.float32))
    return sketch.replace(strokes=strokes)


def jitter(sketch: Sketch, rng: np.random.Generator) -> Sketch:
    """Independent gaussian noise on every raw point, sigma 1-2% of the drawing's size."""
    sigma = rng.uniform(0.01, 0.02) * _size(sketch)
    strokes = [(s + rng.normal(0.0, sigma, s.shape)).astype(np.float32) for s in sketch.strokes]
    return sketch.replace(strokes=strokes)


def _smooth_noise(n: int, sigma: float, rng: np.random.Generator, width: int = SMOOTH_WIDTH) -> np.ndarray:
    """``(n, 2)`` gaussian noise correlated along the stroke (moving average over ``width`` points), std ``sigma``."""
    white = rng.normal(0.0, 1.0, (n + width - 1, 2))
    kernel = np.ones(width) / math.sqrt(width)  # unit variance after filtering
    return sigma * np.column_stack([np.convolve(white[:, c], kernel, mode="valid") for c in range(2)])


def jitter_smooth(sketch: Sketch, rng: np.random.Generator) -> Sketch:
    """Tremor as a slow wobble: the same sigma as ``jitter``, but correlated over ~10 consecutive raw points."""
    sigma = rng.uniform(0.01, 0.02) * _size(sketch)
    strokes = [(s + _smooth_noise(len(s), sigma, rng)).astype(np.float32) for s in sketch.strokes]
    return sketch.replace(strokes=strokes)


def jitter_simplified(sketch: Sketch, rng: np.random.Generator) -> Sketch:
    """``jitter``'s noise on the Google-simplified points (diagnostic: the geometry changes, the number of
    points the model sees does not)."""
    simple = simplify(sketch)
    sigma = rng.uniform(0.01, 0.02) * _size(simple)
    strokes = [(s + rng.normal(0.0, sigma, s.shape)).astype(np.float32) for s in simple.strokes]
    return sketch.replace(strokes=strokes)


def incomplete(sketch: Sketch, rng: np.random.Generator) -> Sketch:
    """An unfinished drawing: only the first 50-90% of its raw points, in drawing order (at least one)."""
    return cap_points(sketch, max(1, math.ceil(rng.uniform(0.5, 0.9) * sketch.num_points)))


def misplaced(sketch: Sketch, rng: np.random.Generator) -> Sketch:
    """Parts drawn out of place: every stroke shifted by its own offset, uniform in +-5% of the size per axis."""
    size = _size(sketch)
    strokes = [(s + rng.uniform(-0.05, 0.05, 2) * size).astype(np.float32) for s in sketch.strokes]
    return sketch.replace(strokes=strokes)


def one_stroke(sketch: Sketch, rng: np.random.Generator) -> Sketch:
    """Drawn without lifting the pen: all strokes joined, in drawing order, into one."""
    return sketch.replace(strokes=[np.concatenate(sketch.strokes, 0)])


def merged(sketch: Sketch, rng: np.random.Generator) -> Sketch:
    """Each pen-up removed with probability 1/2 (the stroke runs on into the next one)."""
    strokes = [sketch.strokes[0]]
    for st in sketch.strokes[1:]:
        if rng.random() < 0.5:
            strokes[-1] = np.concatenate([strokes[-1], st], 0)
        else:
            strokes.append(st)
    return sketch.replace(strokes=strokes)


def first_strokes(sketch: Sketch, rng: np.random.Generator) -> Sketch:
    """Stopped between strokes: only the first ceil(u * n) of the n strokes, u uniform in 50-90% (at least one;
    rounded up, so a drawing of 2-5 strokes is often left whole: see ``unchanged`` in the results)."""
    n = len(sketch.strokes)
    return sketch.replace(strokes=sketch.strokes[: max(1, math.ceil(rng.uniform(0.5, 0.9) * n))])


CONDITIONS: dict[str, tuple[Callable[[Sketch, np.random.Generator], object], str]] = {
    "reference": (reference, "stored SPG coordinates (the reference)"),
    "canvas": (canvas, "RAW ndjson: canvas px, scale 0.3-4x, offset, ms times"),
    "simplified": (simplified, "Google-simplified ints ([[xs, ys]] lists)"),
    "dense": (dense, f"resampled to > {DENSE_MIN_POINTS} raw points"),
    "jitter": (jitter, "gaussian jitter, sigma 1-2% of size"),
    "jitter-smooth": (jitter_smooth, "the same sigma, correlated over ~10 points"),
    "jitter-simplified": (jitter_simplified, "jitter's noise on the simplified points"),
    "incomplete": (incomplete, "unfinished: the first 50-90% of the points"),
    "misplaced": (misplaced, "each stroke shifted by up to 5% of the size"),
    # appended last, so the conditions above keep their random streams (seeded by position)
    "one-stroke": (one_stroke, "one continuous stroke: every pen-up removed"),
    "merged": (merged, "each pen-up removed with probability 1/2"),
    "first-strokes": (first_strokes, "unfinished: the first 50-90% of the strokes"),
}


# ------------------------------------------------------------------------------------------ evaluation
def evaluate(clf: SketchClassifier, sketches: list[Sketch], names: list[str], seed: int) -> dict[str, dict]:
    labels = [canonical_label(s.label) for s in sketches]
    results: dict[str, dict] = {}
    ref_top1: list[str] | None = None
    for name in names:
        make, about = CONDITIONS[name]
        rng = np.random.default_rng([seed, list(CONDITIONS).index(name)])  # the same stream in any selection
        inputs = [make(s, rng) for s in sketches]
        # drawings the condition handed over exactly as stored (None: it sends another kind of input)
        kept = [_same_drawing(x, s) for x, s in zip(inputs, sketches)] if all(
            isinstance(x, Sketch) for x in inputs) else None
        raw_points = [clf.sketch(x).num_points for x in inputs]
        seen = [min(preprocess(clf.sketch(x), clf.preprocessing).num_points, clf.preprocessing.max_points)
                for x in inputs]
        t0 = time.perf_counter()
        ranked = clf.predict_batch(inputs, top_k=5)
        elapsed = time.perf_counter() - t0
        top1 = [canonical_label(r[0].label) for r in ranked]
        ref_top1 = top1 if ref_top1 is None else ref_top1
        results[name] = {
            "description": about,
            "n": len(sketches),
            "top1": float(np.mean([p == y for p, y in zip(top1, labels)])),
            "top5": float(np.mean([y in {canonical_label(p.label) for p in r} for r, y in zip(ranked, labels)])),
            "same_top1_as_reference": float(np.mean([a == b for a, b in zip(top1, ref_top1)])),
            "unchanged": None if kept is None else int(sum(kept)),
            "top1_changed": None if kept is None or all(kept) else float(np.mean(
                [p == y for p, y, k in zip(top1, labels, kept) if not k])),
            "raw_points_mean": float(np.mean(raw_points)),
            "raw_points_min": int(np.min(raw_points)),
            "model_points_mean": float(np.mean(seen)),
        }
        print(f"  {name:<17} top-1 {results[name]['top1']:.4f}  ({elapsed:.1f} s)", file=sys.stderr)
    ref = results[names[0]]
    for r in results.values():
        r["top1_change"] = r["top1"] - ref["top1"]
        r["top5_change"] = r["top5"] - ref["top5"]
    return results


def _same_drawing(x: Sketch, stored: Sketch) -> bool:
    """Whether ``x`` has exactly ``stored``'s strokes (same count, same points)."""
    return len(x.strokes) == len(stored.strokes) and all(
        a.shape == b.shape and np.array_equal(a, b) for a, b in zip(x.strokes, stored.strokes))


def table(results: dict[str, dict]) -> str:
    head = ("| condition | input | top-1 | top-5 | top-1 vs ref | same top-1 as ref | raw points (mean) "
            "| model points (mean) | left as stored | top-1 of the others |")
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        unchanged = "-" if r.get("unchanged") is None else f"{r['unchanged']} / {r['n']}"
        changed = "-" if r.get("top1_changed") is None else f"{100 * r['top1_changed']:.2f}%"
        lines.append(
            f"| {name} | {r['description']} | {100 * r['top1']:.2f}% | {100 * r['top5']:.2f}% "
            f"| {100 * r['top1_change']:+.2f} pt | {100 * r['same_top1_as_reference']:.1f}% "
            f"| {r['raw_points_mean']:.0f} | {r['model_points_mean']:.1f} | {unchanged} | {changed} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="spg20", help="checkpoint directory or shipped name (default spg20)")
    p.add_argument("--data", type=Path, default=DATA, help=f"the SPG-20 folder (default {DATA})")
    p.add_argument("--split", choices=("test", "valid"), default="test",
                   help="SPG split (default test; use valid to compare candidate checkpoints)")
    p.add_argument("--per-class", type=int, default=None, help="drawings per class (default: all)")
    p.add_argument("--conditions", default=",".join(CONDITIONS), help="comma-separated, reference first")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--cap", choices=("truncate", "adapt"), default=None,
                   help="point-cap policy at inference (default: the checkpoint's)")
    p.add_argument("--out", type=Path, default=OUT, help="JSON results (default benchmarks/results/robustness.json)")
    args = p.parse_args(argv)

    names = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = [c for c in names if c not in CONDITIONS]
    if unknown or not names:
        p.error(f"unknown conditions {unknown}; choose from {list(CONDITIONS)}")
    if names[0] != "reference":
        names.insert(0, "reference")
    import torch

    torch.manual_seed(args.seed)
    clf = SketchClassifier.from_pretrained(args.checkpoint, batch_size=args.batch_size, cap=args.cap)
    sketches = load_test_split(args.data, args.per_class, args.split)
    strangers = sorted({canonical_label(s.label) for s in sketches} - {canonical_label(c) for c in clf.classes})
    if strangers:
        raise SystemExit(f"{args.checkpoint} does not know the classes {strangers}")
    print(f"{clf!r}: {len(sketches)} SPG-20 {args.split} drawings, {torch.get_num_threads()} threads", file=sys.stderr)
    results = evaluate(clf, sketches, names, args.seed)
    print(table(results))
    save_results(
        args.out, "robustness.py", args.checkpoint, argv,
        data=str(args.data),
        split=f"SPG-20 {args.split} (splits/<class>_{args.split}.ndjson key ids, raw/<class>_raw.ndjson drawings)",
        n=len(sketches),
        seed=args.seed,
        cap=clf.preprocessing.cap,
        note="proxy: Google's RAW Quick, Draw! files for these classes are not available; canvas coordinates, "
             "timestamps, dense sampling, jitter and pen-up changes are simulated from the stored SPG drawings",
        conditions=results,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
