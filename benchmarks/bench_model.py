"""Parameters, MACs per sketch and CPU throughput of every model preset.

    .venv/bin/python benchmarks/bench_model.py                       # all presets, 20 classes
    .venv/bin/python benchmarks/bench_model.py --presets mgt cnn --steps 10 --backend dgl

Batches are random-walk sketches of 30-100 points (a few strokes each), padded to the batch's longest, as the
training loader does. MACs are per sketch at the benchmark lengths and at 100 points (the paper's setting).
Train = forward + backward + Adam step; inference = forward under ``torch.inference_mode``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

os.environ.setdefault("DGLBACKEND", "pytorch")

from sketchgraph.batch import Batch  # noqa: E402
from sketchgraph.graph import RELATIONS, sketch_flags  # noqa: E402
from sketchgraph.model import build_model, count_macs, list_presets  # noqa: E402


def random_sketches(n: int, lengths: tuple[int, int], rng: np.random.Generator, num_classes: int) -> Batch:
    """``n`` random-walk sketches with lengths uniform in ``lengths`` and 1-8 strokes, in 0..255 coordinates."""
    sizes = rng.integers(lengths[0], lengths[1] + 1, n)
    coords, flags = [], []
    for size in sizes:
        strokes = rng.integers(1, min(8, size) + 1)
        cuts = np.sort(rng.choice(np.arange(1, size), strokes - 1, replace=False))
        flags.append(sketch_flags(np.diff(np.r_[0, cuts, size])))
        walk = np.cumsum(rng.normal(0, 12, (size, 2)), 0)
        walk -= walk.min(0)
        coords.append(walk * (255 / max(walk.max(), 1e-6)))
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    return Batch.from_flat(np.concatenate(coords), np.concatenate(flags), starts, sizes, RELATIONS,
                           labels=rng.integers(0, num_classes, n))


def throughput(model: torch.nn.Module, batches: list[Batch], *, train: bool) -> tuple[float, float]:
    """Sketches per wall-clock second and per CPU second (all threads) over ``batches`` (the first is a
    warm-up). On a shared machine the wall-clock rate is noisy; ``threads x`` the CPU rate bounds what the same
    threads would do on idle cores."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4) if train else None
    model.train(train)
    done, elapsed, cpu = 0, 0.0, 0.0
    for i, batch in enumerate(batches):
        t0, c0 = time.perf_counter(), time.process_time()
        if train:
            loss = torch.nn.functional.cross_entropy(model(batch), batch.labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
        else:
            with torch.inference_mode():
                model(batch)
        if i:
            elapsed += time.perf_counter() - t0
            cpu += time.process_time() - c0
            done += batch.size
    return done / elapsed, done / cpu


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="*", default=list_presets())
    p.add_argument("--classes", type=int, default=20)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=3, help="timed batches per measurement (plus one warm-up)")
    p.add_argument("--min-points", type=int, default=30)
    p.add_argument("--max-points", type=int, default=100)
    p.add_argument("--backend", default="dense", choices=("dense", "dgl"))
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    batches = [random_sketches(args.batch, (args.min_points, args.max_points), rng, args.classes)
               for _ in range(args.steps + 1)]
    full = random_sketches(8, (100, 100), rng, args.classes)
    mean_len = np.mean([b.lengths.float().mean().item() for b in batches])
    print(f"batch {args.batch}, {args.min_points}-{args.max_points} points (mean {mean_len:.1f}), "
          f"{torch.get_num_threads()} threads, backend {args.backend}, {args.classes} classes")
    print(f"{'preset':22s} {'params':>11s} {'MMACs/sk':>9s} {'@100pts':>9s} {'train sk/s':>11s} {'sk/cpu-s':>9s} "
          f"{'infer sk/s':>11s} {'sk/cpu-s':>9s}")
    for name in args.presets:
        model = build_model(name, args.classes)
        if args.backend == "dgl" and hasattr(model, "set_backend"):
            model.set_backend("dgl")
        params = sum(p.numel() for p in model.parameters())
        macs, macs100 = count_macs(model, batches[0]), count_macs(model, full)
        tr, tr_cpu = throughput(model, batches, train=True)
        inf, inf_cpu = throughput(model, batches, train=False)
        print(f"{name:22s} {params:11,d} {macs / 1e6:9.1f} {macs100 / 1e6:9.1f} {tr:11.1f} {tr_cpu:9.1f} "
              f"{inf:11.1f} {inf_cpu:9.1f}", flush=True)


if __name__ == "__main__":
    main()
