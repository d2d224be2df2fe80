"""Time to collate one batch from a prepared dataset (memory-mapped, vectorised gather).

Builds a small prepared dataset from generated Quick, Draw!-style sketches in a temporary folder,
then times ``FlatCollate`` on random batches of 256 sketches: padded tensors plus the three MGT
relation masks (``stroke1``, ``stroke2``, ``temporal``), and the same plus the batched DGL graph::

    python benchmarks/bench_collate.py
    python benchmarks/bench_collate.py --batch 192 --repeats 50
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("DGLBACKEND", "pytorch")

from sketchgraph.data import FlatCollate, PreparedDataset, prepare  # noqa: E402
from sketchgraph.preprocess import Preprocessing  # noqa: E402

RELATIONS = ("stroke1", "stroke2", "temporal")


def write_input(folder: Path, n: int, rng: np.random.Generator) -> None:
    """``n`` simplified-style drawings (0..255 integers), ~5 strokes of 2-30 points."""
    folder.mkdir(parents=True)
    lines = []
    for i in range(n):
        strokes = [np.cumsum(rng.normal(0, 10, size=(int(rng.integers(2, 30)), 2)), axis=0)
                   for _ in range(int(rng.integers(1, 9)))]
        allp = np.concatenate(strokes)
        lo, scale = allp.min(0), 255 / max(float((allp - allp.min(0)).max()), 1.0)
        xy = [np.round((s - lo) * scale).astype(int) for s in strokes]
        drawing = [[s[:, 0].tolist(), s[:, 1].tolist()] for s in xy]
        lines.append(json.dumps({"word": f"c{i % 10}", "key_id": str(i), "drawing": drawing}))
    (folder / "sketches.ndjson").write_text("\n".join(lines) + "\n")


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median and best wall time of ``fn()`` in ms (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times)), float(np.min(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sketches", type=int, default=5000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="bench_collate_") as tmp:
        tmp = Path(tmp)
        write_input(tmp / "in", args.sketches, rng)
        prepare([tmp / "in"], tmp / "data", preprocessing=Preprocessing(simplify=False), workers=1, progress=False)
        ds = PreparedDataset(tmp / "data")
        collate = FlatCollate(ds, RELATIONS)
        batches = [rng.choice(len(ds), args.batch, replace=False) for _ in range(args.repeats + 1)]
        it = iter(batches * 2)
        b = collate(batches[0])
        print(f"batch of {args.batch} sketches, padded to {b.coords.shape[1]} points, relations {RELATIONS}")
        med, best = timed(lambda: collate(next(it)), args.repeats)
        print(f"collate, masks:            {med:7.2f} ms median ({best:.2f} best)")
        it = iter(batches * 2)
        med, best = timed(lambda: collate(next(it)).dgl(), args.repeats)
        print(f"collate, masks + DGL graph: {med:7.2f} ms median ({best:.2f} best)")
        it = iter(batches * 2)
        med, best = timed(lambda: FlatCollate(ds, ())(next(it)), args.repeats)
        print(f"collate, no masks:         {med:7.2f} ms median ({best:.2f} best)")


if __name__ == "__main__":
    main()
