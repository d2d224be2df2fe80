"""Time of ``sketchgraph evaluate --sample-per-file N`` reading one large file of RAW Quick, Draw! lines.

Google's per-class RAW files hold 100,000+ drawings each, and the recipe for the held-out measurement
(docs/training.md) evaluates a sample of 1,000 of each. This script writes one such file of synthetic drawings
(``sketchgraph.synthetic``: float canvas px with ms times, the fields of Google's lines, 16-digit key ids; no data
from ``../shared``), then reads it as ``evaluate`` does (``evaluate_inputs.records``, with the excluded and repeated
drawings left out), two ways, and checks that both take the very same records:

- ``lines``: only the sampled lines are parsed (each line's key id read by ``line_key_id``), what ``evaluate`` does;
- ``every``: every record parsed, then the reservoir over them (what ``evaluate`` did before).

It prints records per second and the time of each; classification is not included (1,000 drawings take the same
time either way).

    python benchmarks/bench_evaluate_sample.py                       # 50,000 records, a sample of 1,000
    python benchmarks/bench_evaluate_sample.py --records 150000      # the size of Google's airplane file
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sketchgraph.evaluate_inputs import ReadCounts, Selection, records, sampled  # noqa: E402
from sketchgraph.synthetic import make_dataset, sketch_record  # noqa: E402


def write_file(path: Path, n: int, seed: int = 0) -> None:
    """``n`` lines of Google's RAW layout (``key_id``, ``word``, ``countrycode``, ``timestamp``, ``recognized``,
    ``drawing``); 500 distinct synthetic drawings, each line with its own key id."""
    drawings = [sketch_record(sk, "raw") for sk in make_dataset(100, seed=seed)]
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            record = drawings[i % len(drawings)]
            line = {"key_id": str(5_000_000_000_000_000 + i), "word": record["word"], "countrycode": "US",
                    "timestamp": "2017-03-01 00:00:00.00000 UTC", "recognized": rng.random() < 0.8,
                    "drawing": record["drawing"]}
            f.write(json.dumps(line, separators=(",", ":")) + "\n")


def read(path: Path, n: int, seed: int, parse_every: bool) -> tuple[list, ReadCounts, float]:
    """The records ``evaluate --sample-per-file n --seed seed`` takes of ``path``, its counts, and the seconds."""
    counts = ReadCounts()
    select = Selection(None, frozenset(), n, seed)
    rng = random.Random(f"{seed}:{path.name}")
    start = time.perf_counter()
    if parse_every:
        items = sampled(records(0, str(path), None, None, counts, select, set()), n, rng, counts)
    else:
        items = list(records(0, str(path), None, None, counts, select, set(), sample=rng))
    return [(tag.index, item.key_id) for tag, item in items], counts, time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000, help="lines in the file (default 50,000)")
    parser.add_argument("--sample", type=int, default=1_000, help="--sample-per-file N (default 1,000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "airplane.ndjson"
        write_file(path, args.records)
        size = path.stat().st_size
        write_file(Path(tmp) / "warm.ndjson", 20)
        read(Path(tmp) / "warm.ndjson", 10, args.seed, parse_every=True)  # the readers' first imports: not timed
        lines, lines_counts, lines_s = read(path, args.sample, args.seed, parse_every=False)
        every, every_counts, every_s = read(path, args.sample, args.seed, parse_every=True)
    if (lines, lines_counts) != (every, every_counts):
        raise SystemExit("the two ways took different records: a bug")
    result = {"records": args.records, "megabytes": round(size / 1e6, 1), "sample": args.sample,
              "lines_s": round(lines_s, 2), "every_s": round(every_s, 2),
              "lines_records_per_s": round(args.records / lines_s),
              "every_records_per_s": round(args.records / every_s),
              "speedup": round(every_s / lines_s, 1), "same_sample": True}
    print(f"{args.records:,} RAW lines ({result['megabytes']} MB), a sample of {args.sample:,}, the same records "
          f"both ways:\n  sampled lines parsed: {lines_s:.2f} s ({result['lines_records_per_s']:,} records/s)\n"
          f"  every record parsed:  {every_s:.2f} s ({result['every_records_per_s']:,} records/s)\n"
          f"  {result['speedup']}x")
    return result


if __name__ == "__main__":
    main()
