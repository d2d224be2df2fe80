"""One way for the benchmark scripts to write their results: a JSON record that names the checkpoint, the
sha256 of its weights (so a model card only quotes results measured on its own weights) and the command that
reproduces it, written atomically (a killed run leaves the previous file, never half of a new one)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sketchgraph.checkpoint import weights_digest  # noqa: E402
from sketchgraph.formats import atomic_write  # noqa: E402
from sketchgraph.predict import resolve_checkpoint  # noqa: E402


def save_results(out: Path, script: str, checkpoint: str | Path, argv: Sequence[str] | None, **fields: Any) -> dict:
    """Write ``{"checkpoint", "weights_sha256", "command", **fields}`` to ``out`` and return it.

    ``script`` is the file name under ``benchmarks/``; ``argv`` the script's arguments (``None``: the
    process's own ``sys.argv[1:]``).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    record = {
        "checkpoint": str(checkpoint),
        "weights_sha256": weights_digest(resolve_checkpoint(checkpoint)),
        "command": " ".join(["python", f"benchmarks/{script}", *args]),
        **fields,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "w", encoding="utf-8") as f:
        f.write(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return record
