"""CPU dropout: ``sketchgraph.model.dropout`` against ``torch.nn.functional.dropout``, forward + backward.

    .venv/bin/python benchmarks/bench_dropout.py                 # (3264, 768): 64 sketches x 51 points x 768
    .venv/bin/python benchmarks/bench_dropout.py --rows 6400 --p 0.1

Also counts the dropout calls in one ``mgt-paper`` training forward pass (each runs on a (B, N, 768) input).
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F

os.environ.setdefault("DGLBACKEND", "pytorch")

from sketchgraph.batch import Batch  # noqa: E402
from sketchgraph.graph import FLAG_CONTINUE, FLAG_END  # noqa: E402
from sketchgraph.model import build_model  # noqa: E402
from sketchgraph.model.dropout import Dropout, dropout  # noqa: E402


def time_ms(fn, x: torch.Tensor, grad: torch.Tensor, repeats: int) -> float:
    """Median milliseconds of ``fn(x).backward(grad)``."""
    fn(x).backward(grad)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x).backward(grad)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] * 1e3


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=64 * 51)
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--p", type=float, default=0.25)
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args(argv)
    torch.manual_seed(0)
    x = torch.randn(args.rows, args.dim, requires_grad=True)
    grad = torch.randn(args.rows, args.dim)
    ours = time_ms(lambda t: dropout(t, args.p), x, grad, args.repeats)
    torch_ms = time_ms(lambda t: F.dropout(t, args.p, True), x, grad, args.repeats)
    print(f"({args.rows}, {args.dim}), p={args.p}, {torch.get_num_threads()} threads, forward + backward:")
    print(f"  nn.functional.dropout  {torch_ms:7.2f} ms")
    print(f"  sketchgraph dropout    {ours:7.2f} ms   ({torch_ms / ours:.1f}x faster)")

    model = build_model("mgt-paper", num_classes=20).train()
    calls: list[int] = []
    for m in model.modules():
        if isinstance(m, Dropout):
            m.register_forward_hook(lambda m, i, o: calls.append(1))
    flags = torch.full((2, 40), FLAG_CONTINUE)
    flags[:, [19, 39]] = FLAG_END  # two strokes of 20 points
    model(Batch.from_padded(torch.rand(2, 40, 2) * 255, flags, model.relations))
    print(f"mgt-paper: {len(calls)} dropout calls per training forward pass")


if __name__ == "__main__":
    main()
