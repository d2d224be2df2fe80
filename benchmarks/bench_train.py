"""Training throughput on a prepared dataset, data loading included, exactly as ``sketchgraph train`` runs it.

    .venv/bin/python benchmarks/bench_train.py --data prepared/spg20                    # mgt-paper and mgt
    .venv/bin/python benchmarks/bench_train.py --data prepared/spg20 --presets mgt-paper --bucket 1 32 --bf16-cpu
    .venv/bin/python benchmarks/bench_train.py --data prepared/spg20 --presets mgt-paper --official PATH

Each measurement is ``sketchgraph.train.measure_throughput`` of the run's config (preset with its own dropout
etc., Adam, optional ``--set key=value`` overrides): ``--steps`` batches of its epoch-1 training loader (shuffle,
length bucketing, collation of the relation masks) through ``Trainer.train_step`` (forward, backward, optimizer
step), after ``--warmup`` untimed ones. Reported: sketches/s, and the mean real and padded sketch length.

``--official PATH`` also times the official MGT implementation (a checkout of
github.com/PengBoXiangShang/multigraph_transformer; nothing of it is part of this repository) at the same size
on the SAME sketches, converted to its input format: padded to 100 points, additive ``-inf`` masks, Adam. Only
its model step is timed; its data loader, which builds three 100x100 masks per sketch in Python loops, is not,
so its figure is an upper bound on what the official training script reaches.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DGLBACKEND", "pytorch")

from sketchgraph.batch import Batch  # noqa: E402
from sketchgraph.train import TrainConfig, apply_overrides, measure_throughput  # noqa: E402

OFFICIAL_MODULE = "network/gra_transf_inpt5_new_dropout_2layerMLP_3_adj_mtx.py"


def load_official(path: Path, num_classes: int) -> torch.nn.Module:
    """The official MGT #17 (4 layers, 8 heads, 3 x 256 wide, dropout 0.25) built from a checkout at ``path``."""
    sys.modules.setdefault("ipdb", types.ModuleType("ipdb"))  # imported (unused) by the official code
    sys.path.insert(0, str(path))
    spec = importlib.util.spec_from_file_location("network.mgt_official", path / OFFICIAL_MODULE)
    if spec is None or not (path / OFFICIAL_MODULE).is_file():
        raise SystemExit(f"--official: {path / OFFICIAL_MODULE} not found")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.np = np  # the module uses numpy in make_model without importing it
    with open(os.devnull, "w") as quiet:  # make_model prints the whole network
        stdout, sys.stdout = sys.stdout, quiet
        try:
            return module.make_model(n_classes=num_classes, coord_input_dim=2, feat_input_dim=2, feat_dict_size=103,
                                     n_layers=4, n_heads=8, embed_dim=256, feedforward_dim=1024,
                                     normalization="batch", dropout=0.25, mlp_classifier_dropout=0.25)
        finally:
            sys.stdout = stdout


def official_inputs(batch: Batch, relations: tuple[str, ...], size: int = 100) -> tuple:
    """``batch`` in the official input format: everything padded to ``size`` points, masks additive -inf."""
    B, N = batch.flags.shape
    coords = torch.zeros(B, size, 2)
    coords[:, :N] = batch.coords
    flags = torch.full((B, size), 102, dtype=torch.long)
    flags[:, :N] = batch.flags
    pos = torch.arange(size).repeat(B, 1)
    masks = []
    for r in relations:
        m = torch.eye(size, dtype=torch.bool).repeat(B, 1, 1)
        m[:, :N, :N] = batch.masks[r]
        masks.append(torch.zeros(B, size, size).masked_fill(~m, float("-inf")))
    valid = torch.zeros(B, size, 1)
    valid[:, :N, 0] = batch.valid.float()
    return coords, flags, pos, *masks, valid


def time_official(path: Path, batches: list[Batch], num_classes: int, warmup: int) -> float:
    """Sketches/s of the official model's training step on ``batches`` (inputs prepared outside the timing)."""
    torch.manual_seed(0)
    net = load_official(path, num_classes)
    net.train()
    opt = torch.optim.Adam(net.parameters(), 5e-5)
    inputs = [official_inputs(b, ("stroke1", "stroke2", "temporal")) for b in batches]
    n, seconds = 0, 0.0
    for i, (batch, args) in enumerate(zip(batches, inputs)):
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(net(*args), batch.labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= warmup:
            seconds += time.perf_counter() - t0
            n += batch.size
    return n / seconds


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="prepared dataset directory")
    p.add_argument("--presets", nargs="*", default=["mgt-paper", "mgt"])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--bucket", type=int, nargs="*", default=[32], help="bucket sizes to measure (1 = off)")
    p.add_argument("--bf16-cpu", action="store_true", help="also measure with bfloat16 autocast on CPU")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="TrainConfig override")
    p.add_argument("--official", type=Path, help="checkout of the official MGT code: time it side by side")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{args.data}: batch {args.batch}, {args.steps} timed steps after {args.warmup}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'model':30s} {'params':>11s} {'bucket':>6s} {'bf16':>5s} {'points':>7s} {'padded':>7s} "
          f"{'train sk/s':>11s}")
    for preset in args.presets:
        for bucket in args.bucket:
            for bf16 in (False, True) if args.bf16_cpu else (False,):
                base = TrainConfig(data=args.data, out=str(ROOT / "runs" / "_bench_train"), preset=preset,
                                   batch_size=args.batch, optimizer="adam", lr=5e-5, schedule="constant",
                                   bucket=bucket, bf16_cpu=bf16, device="cpu", progress=False)
                cfg = apply_overrides(base, args.set)
                fig = measure_throughput(cfg, args.steps, args.warmup)
                batches = fig["batches"]
                print(f"{preset:30s} {fig['params']:11,d} {bucket:6d} {'yes' if bf16 else 'no':>5s} "
                      f"{fig['mean_points']:7.1f} {fig['mean_padded']:7.1f} {fig['sketches_per_s']:11.2f}", flush=True)
                if args.official and preset == "mgt-paper" and not bf16:
                    rate = time_official(args.official, batches, fig["num_classes"], min(args.warmup, len(batches) - 1))
                    print(f"{'official MGT (model step only)':30s} {'':11s} {bucket:6d} {'no':>5s} "
                          f"{fig['mean_points']:7.1f} {100.0:7.1f} {rate:11.2f}", flush=True)


if __name__ == "__main__":
    main()
