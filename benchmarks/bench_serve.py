"""Load test of ``sketchgraph serve``: concurrent clients on loopback, latency percentiles, zero errors.

    .venv/bin/python benchmarks/bench_serve.py                          # spg20, 16 clients, 800 requests
    .venv/bin/python benchmarks/bench_serve.py --clients 64 --requests 2000 --checkpoint runs/spg20/best
    .venv/bin/python benchmarks/bench_serve.py --max-batch 1             # every request alone (no batching)
    .venv/bin/python benchmarks/bench_serve.py --heavy 1                 # ... while a client sends heavy drawings

The server runs in its own process (``python -m sketchgraph serve`` on a free 127.0.0.1 port), so clients and
server do not share an interpreter. Each client thread posts drawings (SPG-20 raw drawings from
``../shared/data`` as ``{"drawing": [[xs, ys], ...]}``, or synthetic ones) until the request budget is spent.
Exits non-zero if any request fails or returns something other than 5 predictions.

``--heavy N`` adds N clients that keep posting a legal but heavy drawing (12,000 random points: about 1.6M px of
ink, seconds of simplification) while the others run; the latencies reported are still those of the ordinary
drawings, so they show whether heavy drawings hold up everyone else (they should not: the server simplifies a
heavy drawing on a small pool of its own). The heavy requests are counted and timed on their own line.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DGLBACKEND", "pytorch")

from bench_predict import real_sketches, synthetic_sketches  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def checkpoint_dir(name: str, tmp: str) -> str:
    """``name`` when it resolves, else a random-weight ``mgt`` checkpoint written to ``tmp``."""
    from sketchgraph.predict import resolve_checkpoint

    try:
        return str(resolve_checkpoint(name))
    except ValueError as exc:
        print(f"({exc}; serving random weights of preset 'mgt' instead)")
    import torch

    from sketchgraph.checkpoint import save_checkpoint
    from sketchgraph.graph import GraphSpec
    from sketchgraph.model import build_model
    from sketchgraph.preprocess import Preprocessing

    torch.manual_seed(0)
    model = build_model("mgt", num_classes=20)
    path = save_checkpoint(Path(tmp) / "random-mgt", model, classes=[f"class{i}" for i in range(20)],
                           preprocessing=Preprocessing(), graph_spec=GraphSpec(model.relations))
    return str(path)


def start_server(checkpoint: str, port: int, extra: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "sketchgraph", "serve", "--checkpoint", checkpoint, "--port", str(port), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("server did not become healthy within 120 s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="spg20")
    p.add_argument("--clients", type=int, default=16, help="concurrent client threads")
    p.add_argument("--requests", type=int, default=800, help="total requests (bounded)")
    p.add_argument("--max-batch", type=int, default=64, help="the server's --max-batch (1: no request batching)")
    p.add_argument("--max-wait-ms", type=float, default=0.0, help="the server's --max-wait-ms")
    p.add_argument("--heavy", type=int, default=0, help="extra clients posting heavy drawings meanwhile")
    args = p.parse_args()

    sketches = real_sketches(200) or synthetic_sketches(200, np.random.default_rng(0))
    bodies = [{"drawing": [[s[:, 0].tolist(), s[:, 1].tolist()] for s in sk.strokes], "top_k": 5}
              for sk in sketches]
    rng = np.random.default_rng(0)
    heavy_body = {"drawing": [rng.uniform(0, 500, (2, 12_000)).round(2).tolist()], "top_k": 5}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = start_server(checkpoint_dir(args.checkpoint, tmp), port,
                              ["--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)])
        url = f"http://127.0.0.1:{port}"
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        counter = iter(range(args.requests))

        done = threading.Event()
        heavy_latencies: list[float] = []

        def timed_post(http: httpx.Client, body: dict, times: list[float], what: str = "") -> None:
            """POST ``body``; its latency goes to ``times``, a failure (not 200 with 5 predictions) to ``errors``."""
            t0 = time.perf_counter()
            try:
                r = http.post("/predict", json=body)
                ok = r.status_code == 200 and len(r.json()["predictions"]) == 5
                problem = None if ok else f"{what}HTTP {r.status_code}: {r.text[:200]}"
            except httpx.HTTPError as exc:
                problem = f"{what}{type(exc).__name__}: {exc}"
            with lock:
                times.append(time.perf_counter() - t0)
                if problem:
                    errors.append(problem)

        def client(_: int) -> None:
            with httpx.Client(base_url=url, timeout=60) as http:
                while True:
                    with lock:
                        i = next(counter, None)
                    if i is None:
                        return
                    timed_post(http, bodies[i % len(bodies)], latencies)

        def heavy_client() -> None:
            with httpx.Client(base_url=url, timeout=120) as http:
                while not done.is_set():
                    timed_post(http, heavy_body, heavy_latencies, "heavy: ")

        heavy = [threading.Thread(target=heavy_client) for _ in range(args.heavy)]
        try:
            for thread in heavy:
                thread.start()
            if heavy:
                time.sleep(0.5)  # the heavy drawings are being simplified when the others start
            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(client, range(args.clients)))
            wall = time.perf_counter() - t0
            done.set()
            for thread in heavy:
                thread.join()
            stats = httpx.get(url + "/stats", timeout=10).json()
        finally:
            server.terminate()
            server.wait(30)

    ms = 1000 * np.array(latencies)
    print(f"server: --max-batch {args.max_batch} --max-wait-ms {args.max_wait_ms:g}; {stats['requests']} requests"
          f" answered by {stats['model_calls']} model calls (mean batch {stats['mean_batch']})")
    print(f"{len(latencies)} requests, {args.clients} concurrent clients, {wall:.1f} s: "
          f"{len(latencies) / wall:,.0f} requests/s")
    print(f"latency p50 {np.percentile(ms, 50):.1f} ms  p90 {np.percentile(ms, 90):.1f} ms  "
          f"p99 {np.percentile(ms, 99):.1f} ms  max {ms.max():.1f} ms")
    if args.heavy:
        print(f"meanwhile {len(heavy_latencies)} heavy drawings from {args.heavy} client(s), "
              f"mean {np.mean(heavy_latencies):.2f} s each")
    print(f"errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    if errors or len(latencies) != args.requests:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
