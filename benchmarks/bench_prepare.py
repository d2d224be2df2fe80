"""Throughput of ``sketchgraph.data.prepare`` on generated Quick, Draw!-style files.

Two cases, each written to a temporary folder first (not timed) and prepared with ``--workers``:

1. simplified ndjson (integer 0..255 drawings, as Google's ``full/simplified`` files), 345 classes x
   1200 drawings = 414,000 (the size of QuickDraw-414k), prepared as QuickDraw-414k is: no
   re-simplification, normalised and capped at 100 points;
2. raw ndjson (float canvas coordinates plus millisecond times, as ``full/raw``; drawings from
   ``sketchgraph.synthetic``), simplified with Google's procedure while preparing.

    python benchmarks/bench_prepare.py                      # both, 2 workers
    python benchmarks/bench_prepare.py --skip simplified    # the raw case only

Targets on a 2-core machine: >= 10,000 simplified sketches/s, >= 3,000 raw sketches/s.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from sketchgraph.data import prepare
from sketchgraph.preprocess import Preprocessing
from sketchgraph.synthetic import CLASSES as SYNTH_CLASSES
from sketchgraph.synthetic import make_dataset, sketch_record

CLASSES = [f"class {i:03d}" for i in range(345)]


def _walks(rng: np.random.Generator, n_strokes: int, points: tuple[int, int], step: float) -> list[np.ndarray]:
    return [np.cumsum(rng.normal(0, step, size=(int(rng.integers(*points)), 2)), axis=0) + rng.uniform(0, 300, 2)
            for _ in range(n_strokes)]


def simplified_pool(rng: np.random.Generator, size: int) -> list[str]:
    """JSON drawings like Google's simplified ones: ~5 strokes, ~45 integer points in 0..255."""
    out = []
    for _ in range(size):
        strokes = _walks(rng, int(rng.integers(1, 10)), (2, 17), 12.0)
        allp = np.concatenate(strokes)
        lo, scale = allp.min(0), 255 / max(float((allp - allp.min(0)).max()), 1.0)
        xy = [np.round((s - lo) * scale).astype(int) for s in strokes]
        out.append(json.dumps([[s[:, 0].tolist(), s[:, 1].tolist()] for s in xy], separators=(",", ":")))
    return out


def raw_pool(size: int, seed: int = 0) -> list[str]:
    """JSON drawings like Google's raw ones, from ``sketchgraph.synthetic`` (hand-drawn-looking shapes
    on a canvas of random size, float px, sampled every ~16 ms with times)."""
    records = [sketch_record(sk, "raw") for sk in make_dataset(-(-size // len(SYNTH_CLASSES)), seed=seed)]
    return [json.dumps(r["drawing"], separators=(",", ":")) for r in records[:size]]


def write_files(folder: Path, per_class: int, pool: list[str], rng: np.random.Generator) -> int:
    """One ndjson file per class, lines built from ``pool`` by string formatting (fast)."""
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for ci, word in enumerate(CLASSES):
        pick = rng.integers(0, len(pool), per_class)
        lines = [
            f'{{"word":"{word}","countrycode":"US","timestamp":"2017-03-01 00:00:00.00000 UTC",'
            f'"recognized":true,"key_id":"{ci:03d}{i:013d}","drawing":{pool[j]}}}\n'
            for i, j in enumerate(pick.tolist())
        ]
        (folder / f"{word}.ndjson").write_text("".join(lines))
        total += per_class
    return total


def bench(name: str, folder: Path, out: Path, preprocessing: Preprocessing, workers: int) -> None:
    size = sum(p.stat().st_size for p in folder.iterdir())
    t0 = time.perf_counter()
    info = prepare([folder], out, preprocessing=preprocessing, workers=workers, progress=False, resume=False)
    dt = time.perf_counter() - t0
    n = info.counts["read"]
    print(f"{name:>10}: {n:,} sketches ({size / 1e6:,.0f} MB) -> {info.num_sketches:,} stored, "
          f"{info.meta['num_points']:,} points in {dt:.1f} s = {n / dt:,.0f} sketches/s, {size / 1e6 / dt:,.1f} MB/s "
          f"({workers} workers)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-class", type=int, default=1200, help="simplified drawings per class (default 1200)")
    p.add_argument("--raw-per-class", type=int, default=100, help="raw drawings per class (default 100)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--skip", choices=("simplified", "raw"), action="append", default=[])
    args = p.parse_args()
    rng = np.random.default_rng(0)
    print(f"cpus: {os.cpu_count()}, workers: {args.workers}")
    with tempfile.TemporaryDirectory(prefix="bench_prepare_") as tmp:
        tmp = Path(tmp)
        if "simplified" not in args.skip:
            t0 = time.perf_counter()
            write_files(tmp / "simplified", args.per_class, simplified_pool(rng, 4000), rng)
            print(f"(wrote the simplified input in {time.perf_counter() - t0:.1f} s)")
            bench("simplified", tmp / "simplified", tmp / "out_simplified", Preprocessing(simplify=False), args.workers)
        if "raw" not in args.skip:
            write_files(tmp / "raw", args.raw_per_class, raw_pool(2000), rng)
            bench("raw", tmp / "raw", tmp / "out_raw", Preprocessing(), args.workers)


if __name__ == "__main__":
    main()
