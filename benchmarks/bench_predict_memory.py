"""Peak memory (and time) of ``sketchgraph predict`` over one large file, with and without oneDNN's kernel cache.

    .venv/bin/python benchmarks/bench_predict_memory.py                    # 64,000 drawings
    .venv/bin/python benchmarks/bench_predict_memory.py --records 16000

The file repeats SPG-20's raw drawings (``../shared/data/spg20/raw``: original pixel coordinates, as Google's RAW
files have them) until it holds ``--records`` lines; without that folder, smooth synthetic drawings. Each setting
runs ``python -m sketchgraph predict FILE --json`` in a child process, output thrown away, and reports the child's
peak resident memory (``getrusage``) and its wall time, model loading included.

- ``ONEDNN_PRIMITIVE_CACHE_CAPACITY=1024``: oneDNN's own default, what the command ran with before;
- ``ONEDNN_PRIMITIVE_CACHE_CAPACITY=0``: what ``sketchgraph predict`` and ``evaluate`` now set when the variable is
  unset (``sketchgraph.device.no_kernel_cache``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict import SHARED_RAW, synthetic_sketches  # noqa: E402

from sketchgraph.device import KERNEL_CACHE_ENV  # noqa: E402
from sketchgraph.formats import write_ndjson  # noqa: E402

SETTINGS = (("1024", "oneDNN's default cache (before)"), ("0", "no cache (the CLI's default now)"))


def write_input(path: Path, records: int) -> str:
    """``records`` ndjson lines at ``path``; what they are."""
    files = sorted(SHARED_RAW.glob("*.ndjson")) if SHARED_RAW.is_dir() else []
    if files:
        lines = [line for f in files for line in f.read_bytes().splitlines() if line.strip()]
        with open(path, "wb") as out:
            for line in itertools.islice(itertools.cycle(lines), records):
                out.write(line + b"\n")
        return f"SPG-20 raw drawings ({len(lines):,} distinct), repeated"
    sketches = synthetic_sketches(min(records, 4000), np.random.default_rng(0))
    write_ndjson((sketches[i % len(sketches)] for i in range(records)), path, style="raw")
    return "synthetic drawings (no ../shared/data)"


def run(path: Path, checkpoint: str, cache: str) -> tuple[float, float]:
    """``(peak RSS in GB, wall seconds)`` of one ``sketchgraph predict`` child."""
    env = {**os.environ, KERNEL_CACHE_ENV: cache, "DGLBACKEND": "pytorch"}
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: wait4 cannot stall on a full one
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "sketchgraph", "predict", str(path), "--json",
                                  "--checkpoint", checkpoint], stdout=subprocess.DEVNULL, stderr=errors, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode not in (0, 1):  # 1: some records could not be classified (reported), the rest ran
            errors.seek(0)
            said = errors.read().decode(errors="replace")
            raise SystemExit(f"sketchgraph predict failed ({child.returncode}):\n{said}")
    return usage.ru_maxrss / 2**20, wall  # ru_maxrss is in KiB on Linux


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=64_000, help="drawings in the file (default 64,000)")
    p.add_argument("--checkpoint", default="spg20")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        path = Path(tmp) / "drawings.ndjson"
        what = write_input(path, args.records)
        print(f"input: {args.records:,} drawings, {what}; {path.stat().st_size / 2**20:.0f} MB")
        for cache, meaning in SETTINGS:
            peak, wall = run(path, args.checkpoint, cache)
            print(f"{KERNEL_CACHE_ENV}={cache:<5} {meaning:<34} peak RSS {peak:5.2f} GB  {wall:6.1f} s  "
                  f"({args.records / wall:,.0f} sketches/s, model loading included)", flush=True)


if __name__ == "__main__":
    main()
