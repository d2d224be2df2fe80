"""Latency of ``SketchClassifier.predict`` (one sketch) and throughput of ``predict_batch``, preprocessing included.

    .venv/bin/python benchmarks/bench_predict.py                          # the shipped spg20 checkpoint
    .venv/bin/python benchmarks/bench_predict.py --checkpoint runs/spg20/best --backend dgl
    .venv/bin/python benchmarks/bench_predict.py --preset mgt             # random weights, no checkpoint needed
    .venv/bin/python benchmarks/bench_predict.py --precision bfloat16     # bfloat16 autocast, with its agreement
    .venv/bin/python benchmarks/bench_predict.py --busy 1 --batch 0       # one core kept busy by another process
    .venv/bin/python benchmarks/bench_predict.py --busy 1 --batch 0 --few-sketches 0   # every call on torch's threads

Inputs are Quick, Draw! drawings in their original pixel coordinates (SPG-20 ``raw/`` from ``../shared/data``,
what a canvas sends: full simplification runs on every call); without that folder, smooth synthetic
drawings. Targets: ``predict`` p50 <= 10 ms; ``predict_batch`` >= 1,000 sketches/s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("DGLBACKEND", "pytorch")

from sketchgraph.data.flat import preprocess_flat  # noqa: E402
from sketchgraph.graph import GraphSpec  # noqa: E402
from sketchgraph.predict import PRECISIONS, SketchClassifier, resolve_checkpoint  # noqa: E402
from sketchgraph.preprocess import load_compiled_rdp  # noqa: E402
from sketchgraph.sketch import Sketch  # noqa: E402

SHARED_RAW = Path(__file__).resolve().parents[2] / "shared" / "data" / "spg20" / "raw"
TARGET_P50_MS, TARGET_PER_S = 10.0, 1000.0


def real_sketches(n: int) -> list[Sketch] | None:
    """Up to ``n`` SPG-20 raw drawings, round-robin over the classes (None when the data is absent)."""
    files = sorted(SHARED_RAW.glob("*.ndjson")) if SHARED_RAW.is_dir() else []
    if not files:
        return None
    from sketchgraph.formats import read_sketches

    per_class = -(-n // len(files))
    out = []
    for f in files:
        for i, sk in enumerate(read_sketches(f, on_error=lambda exc: None)):  # skip the few malformed records
            if i == per_class:
                break
            out.append(sk)
    return out[:n]


def synthetic_sketches(n: int, rng: np.random.Generator) -> list[Sketch]:
    """Smooth closed curves and lines in a 600-pixel canvas, 1-6 strokes, ~30-80 points each."""
    out = []
    for _ in range(n):
        strokes = []
        for _ in range(rng.integers(1, 7)):
            t = np.linspace(0, 2 * np.pi * rng.uniform(0.3, 1.0), rng.integers(30, 80))
            r = rng.uniform(20, 200) * (1 + 0.2 * np.sin(rng.integers(2, 6) * t))
            c = rng.uniform(100, 500, 2)
            strokes.append(np.column_stack([c[0] + r * np.cos(t), c[1] + r * np.sin(t)]).astype(np.float32))
        out.append(Sketch(strokes))
    return out


def load_classifier(args: argparse.Namespace) -> tuple[SketchClassifier, str]:
    if args.preset is None:  # a checkpoint that fails to load is an error, never a silent switch to random weights
        path = resolve_checkpoint(args.checkpoint)
        clf = SketchClassifier.from_pretrained(path, backend=args.backend, precision=args.precision)
        return clf, f"checkpoint {path}"
    from sketchgraph.model import build_model

    torch.manual_seed(0)
    model = build_model(args.preset, num_classes=20, backend=args.backend)
    clf = SketchClassifier(model, [f"class{i}" for i in range(20)], graph_spec=GraphSpec(model.relations),
                           precision=args.precision)
    return clf, f"preset {args.preset!r} (random weights, 20 classes)"


def time_predict_batch(clf: SketchClassifier, batch: list[Sketch], repeats: int
                       ) -> tuple[list, list[float], list[float]]:
    """``repeats`` timed ``predict_batch`` passes: the last ranking, sketches per wall-clock second and per
    CPU-second of this process, one rate per pass."""
    ranked, rates, cpu_rates = [], [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        ranked = clf.predict_batch(batch)
        rates.append(len(batch) / (time.perf_counter() - t0))
        cpu_rates.append(len(batch) / (time.process_time() - c0))
    return ranked, rates, cpu_rates


def batching_report(clf: SketchClassifier, batch: list[Sketch], repeats: int) -> None:
    """Padding and model CPU time of the length-partitioned batches ``predict_batch`` uses, against fixed
    batches of ``batch_size`` from the same sorted chunks (model calls only, CPU seconds: steadier than wall
    time on a shared machine)."""
    from sketchgraph.data.loader import partition_by_length
    from sketchgraph.predict import _READ_AHEAD

    def fixed(lengths: np.ndarray, max_batch: int) -> list[tuple[int, int]]:
        return [(i, min(i + max_batch, len(lengths))) for i in range(0, len(lengths), max_batch)]

    chunk = _READ_AHEAD * clf.batch_size
    found = {}
    for name, cut in (("length-partitioned", partition_by_length), ("fixed", fixed)):
        batches = [b for i in range(0, len(batch), chunk) for b in clf._batches(batch[i : i + chunk], partition=cut)]
        valid = sum(int(b.valid.sum()) for _, b in batches)
        padded = sum(b.valid.numel() for _, b in batches)
        square = sum(int((b.lengths.double() ** 2).sum()) for _, b in batches)
        padded_sq = sum(b.valid.shape[0] * b.valid.shape[1] ** 2 for _, b in batches)
        cpu = []
        for _ in range(repeats):
            c0 = time.process_time()
            clf._run(batches, len(batch))
            cpu.append(time.process_time() - c0)
        found[name] = float(np.median(cpu))
        print(f"  {name} batches: {len(batches)} model calls, padding +{100 * (padded / valid - 1):.0f}% of the points"
              f" (+{100 * (padded_sq / square - 1):.0f}% of the attention work), model alone"
              f" {len(batch) / found[name]:,.0f} sketches per CPU-second")
    print(f"  model CPU time, length-partitioned vs fixed: {found['length-partitioned'] / found['fixed']:.2f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="spg20")
    p.add_argument("--preset", default=None, help="benchmark a fresh model of this preset instead")
    p.add_argument("--backend", choices=("dense", "dgl"), default="dense")
    p.add_argument("--single", type=int, default=200, help="sketches for the one-at-a-time latency")
    p.add_argument("--batch", type=int, default=2048, help="sketches for the batch throughput (0: none)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--precision", choices=PRECISIONS, default="float32")
    p.add_argument("--repeats", type=int, default=3, help="timed predict_batch passes (median and best shown)")
    p.add_argument("--few-sketches", type=int, default=None,
                   help="model calls of at most this many sketches run on one thread (default: the classifier's, "
                        "sketchgraph.predict.FEW_SKETCHES; 0: never, torch's count for every call)")
    p.add_argument("--serial-batches", action="store_true",
                   help="run predict_batch's batches one after the other, each on every thread (parallel_batches "
                        "off; default: side by side, each on its share of the threads)")
    p.add_argument("--busy", type=int, default=0,
                   help="processes spinning on a core meanwhile (a machine doing other work; default none)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        run(args)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def run(args: argparse.Namespace) -> None:
    """The measurements ``main`` asked for."""

    clf, what = load_classifier(args)
    if args.few_sketches is not None:
        clf.few_sketches = args.few_sketches
    clf.parallel_batches = not args.serial_batches
    # the steady state of a long-running process (a server loads it at start-up; elsewhere the first ~1M
    # resampled points of a process are simplified with numpy: the same results, slower)
    compiled = load_compiled_rdp()
    sketches = real_sketches(max(args.single, args.batch))
    source = "SPG-20 raw drawings (original pixel coordinates)"
    if sketches is None:
        sketches = synthetic_sketches(max(args.single, args.batch), np.random.default_rng(0))
        source = "synthetic smooth drawings (../shared/data absent)"
    points = np.mean([s.num_points for s in sketches])
    print(f"model: {what}; backend {args.backend}; {torch.get_num_threads()} torch threads; RDP kernel:"
          f" {'compiled (loaded before timing)' if compiled else 'numpy (numba unavailable)'}"
          + (f"; {args.busy} other process{'es' * (args.busy > 1)} spinning on a core" if args.busy else "")
          + f"; calls of at most {clf.few_sketches} sketches on one thread"
          + f"; batches {'side by side' if clf.parallel_batches else 'one after the other'}")
    print(f"inputs: {len(sketches)} {source}, {points:.0f} points on average before preprocessing")

    for sk in sketches[:10]:  # warm-up
        clf.predict(sk)
    times = []
    for sk in sketches[: args.single]:
        t0 = time.perf_counter()
        clf.predict(sk)
        times.append(time.perf_counter() - t0)
    p50, p90, p99 = (1000 * np.percentile(times, q) for q in (50, 90, 99))
    print(f"predict (one sketch, preprocessing included): p50 {p50:.2f} ms  p90 {p90:.2f} ms  p99 {p99:.2f} ms"
          f"  [target p50 <= {TARGET_P50_MS:.0f} ms: {'PASS' if p50 <= TARGET_P50_MS else 'FAIL'}]")
    if not args.batch:
        return

    batch = sketches[: args.batch]
    clf.predict_batch(batch[: clf.batch_size])  # warm-up
    pre_rates = {}
    for threads in sorted({1, clf.threads}):
        for _ in range(2):  # the best of two: the first pass also pays for fresh memory
            t0 = time.perf_counter()
            preprocess_flat(batch, clf.preprocessing, threads=threads)
            pre_rates[threads] = max(pre_rates.get(threads, 0.0), len(batch) / (time.perf_counter() - t0))
    ranked, rates, cpu_rates = time_predict_batch(clf, batch, args.repeats)
    rate = float(np.median(rates))
    print(f"predict_batch ({len(batch)} sketches, batches of at most {clf.batch_size}, {clf.precision}): median"
          f" {rate:,.0f} sketches/s over {args.repeats} passes (best {max(rates):,.0f})"
          f"  [target >= {TARGET_PER_S:,.0f}/s: {'PASS' if rate >= TARGET_PER_S else 'FAIL'}]")
    print(f"  {np.median(cpu_rates):,.0f} sketches per CPU-second of this process (wall-clock rates drop when"
          " other processes share the cores)")
    clf.read_ahead = not clf.read_ahead
    other = time_predict_batch(clf, batch, args.repeats)[1]
    clf.read_ahead = not clf.read_ahead
    print(f"  read_ahead={clf.read_ahead} (this classifier's default): median {rate:,.0f}/s; read_ahead="
          f"{not clf.read_ahead}: median {np.median(other):,.0f}/s (best {max(other):,.0f})")
    print("  preprocessing alone (preprocess_flat): "
          + ", ".join(f"{rate:,.0f} sketches/s with {n} thread{'s' * (n > 1)}" for n, rate in pre_rates.items()))
    batching_report(clf, batch, args.repeats)
    if clf.precision != "float32":
        clf.precision = "float32"
        exact = clf.predict_batch(batch)
        same = np.mean([a[0].index == b[0].index for a, b in zip(ranked, exact)])
        diff = max(abs(p.score - q.score) for a, b in zip(ranked, exact) for p, q in zip(a, b) if p.index == q.index)
        print(f"  top-1 agreement with float32: {100 * same:.2f}% of {len(batch)}; largest score change {diff:.4f}")


if __name__ == "__main__":
    main()
