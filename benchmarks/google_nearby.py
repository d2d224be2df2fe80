"""Real Google Quick, Draw! drawings of the same objects under other names: a check of the shipped checkpoint
on Google's own drawing distribution (recognized and unrecognized, one-stroke drawings included).

    .venv/bin/python benchmarks/google_nearby.py                        # the shipped spg20 checkpoint
    .venv/bin/python benchmarks/google_nearby.py --checkpoint runs/x/best --out /tmp/nearby.json

The SPG-20 classes themselves are not in ``../shared/data/quickdraw_simplified`` (its 324 classes exclude
them), but four of its classes draw the same object as an SPG-20 class under another word. Their files hold
the first 25 drawings of Google's official ``full/simplified/<word>.ndjson`` (not selected by anyone: 92%
recognized, 14% a single stroke, against SPG's tidy drawings, almost all with 3 strokes or more:
``benchmarks/stroke_counts.py``). Each drawing is
classified as read by ``read_sketches`` and counts as a hit when the checkpoint's top-1 is
the SPG-20 class of the same object:

=================  ===============
Google word        SPG-20 class
=================  ===============
``clock``          ``alarm clock``
``smiley face``    ``face``
``mug``            ``coffee cup``
``cup``            ``coffee cup``
=================  ===============

The names are close but not identical (a wall clock has no bells, a cup may have no handle), so the hit
rate is a lower bound on what the checkpoint would score on those objects, and with 100 drawings its
standard error is about 4 points: use it to compare checkpoints and to see WHERE they fail (by stroke
count, by the ``recognized`` flag), not as the 20-class accuracy. Nothing here is used for training or
model selection. Prints a table; writes ``out/google_nearby.json`` (rates, and per drawing its key id and
prediction) and a gallery of the misses to ``out/google_nearby_misses.png`` (``--figure``). Both stay out of
the repository (``out/`` is ignored): they identify or show Google's drawings.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
os.environ.setdefault("DGLBACKEND", "pytorch")

from results_io import save_results  # noqa: E402

from sketchgraph.errors import FormatError  # noqa: E402
from sketchgraph.formats import canonical_label, read_sketches  # noqa: E402
from sketchgraph.predict import SketchClassifier  # noqa: E402
from sketchgraph.sketch import Sketch  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "quickdraw_simplified"
OUT = ROOT / "out" / "google_nearby.json"
FIGURE = ROOT / "out" / "google_nearby_misses.png"
PAIRS = {"clock": "alarm clock", "smiley face": "face", "mug": "coffee cup", "cup": "coffee cup"}


def load(root: Path, word: str) -> list[Sketch]:
    """The drawings of ``<root>/<word>.ndjson`` read by ``read_sketches`` (Google's simplified format; each
    ``Sketch`` keeps the record's ``key_id`` and ``recognized``), malformed lines reported and skipped."""
    path = root / f"{word}.ndjson"
    if not path.is_file():
        raise SystemExit(f"{path} not found: point --data at the quickdraw_simplified folder")

    def skipped(exc: FormatError) -> None:
        print(f"warning: {exc.source}:{exc.line}: skipped ({exc})", file=sys.stderr)

    return list(read_sketches(path, on_error=skipped))


def rate(hits: list[bool]) -> dict:
    return {"n": len(hits), "top1": float(np.mean(hits)) if hits else None}


def evaluate(clf: SketchClassifier, root: Path, pairs: dict[str, str], misses: list | None = None) -> dict:
    """Per pair and overall: top-1 / top-3 hit rates, split by stroke count and by ``recognized``. The drawings
    whose top-1 misses are appended to ``misses`` (when given) as ``(sketch, title)``."""
    rows: list[dict] = []
    per_pair = {}
    for word, target in pairs.items():
        records = load(root, word)
        ranked = clf.predict_batch(records, top_k=3)
        want = canonical_label(target)
        pair_rows = [{
            "key_id": r.key_id,
            "strokes": len(r.strokes),
            "recognized": r.recognized is not False,
            "hit": canonical_label(p[0].label) == want,
            "hit3": want in {canonical_label(q.label) for q in p},
            "predicted": p[0].label,
        } for r, p in zip(records, ranked)]
        rows += pair_rows
        if misses is not None:
            misses += [(r, f"{word} -> {x['predicted']} ({x['strokes']} str.)")
                       for r, x in zip(records, pair_rows) if not x["hit"]]
        per_pair[word] = {"target": target, **rate([x["hit"] for x in pair_rows]),
                          "top3": float(np.mean([x["hit3"] for x in pair_rows]))}
    groups = {
        "all": rows,
        "1-2 strokes": [x for x in rows if x["strokes"] <= 2],
        "3+ strokes": [x for x in rows if x["strokes"] >= 3],
        "recognized": [x for x in rows if x["recognized"]],
        "unrecognized": [x for x in rows if not x["recognized"]],
    }
    return {
        "pairs": per_pair,
        "groups": {g: {**rate([x["hit"] for x in xs]),
                       "top3": float(np.mean([x["hit3"] for x in xs])) if xs else None} for g, xs in groups.items()},
        "drawings": rows,
    }


def table(result: dict) -> str:
    lines = ["| drawings | n | top-1 = the same object | top-3 |", "|---|---:|---:|---:|"]
    for word, r in result["pairs"].items():
        lines.append(f"| `{word}` -> `{r['target']}` | {r['n']} | {100 * r['top1']:.0f}% | {100 * r['top3']:.0f}% |")
    for g, r in result["groups"].items():
        if r["n"]:
            lines.append(f"| {g} | {r['n']} | {100 * r['top1']:.1f}% | {100 * r['top3']:.1f}% |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="spg20", help="checkpoint directory or shipped name (default spg20)")
    p.add_argument("--data", type=Path, default=DATA, help=f"the quickdraw_simplified folder (default {DATA})")
    p.add_argument("--cap", choices=("truncate", "adapt"), default=None,
                   help="point-cap policy at inference (default: the checkpoint's)")
    p.add_argument("--out", type=Path, default=OUT, help=f"JSON results (default {OUT})")
    p.add_argument("--figure", type=Path, default=FIGURE, help=f"PNG gallery of the misses (default {FIGURE})")
    args = p.parse_args(argv)

    clf = SketchClassifier.from_pretrained(args.checkpoint, cap=args.cap)
    unknown = sorted({canonical_label(t) for t in PAIRS.values()} - {canonical_label(c) for c in clf.classes})
    if unknown:
        raise SystemExit(f"{args.checkpoint} does not know the classes {unknown}")
    misses: list = []
    result = evaluate(clf, args.data, PAIRS, misses)
    print(table(result))
    if misses:
        from sketchgraph.viz import draw_sketches

        draw_sketches([m[0] for m in misses], args.figure, titles=[m[1] for m in misses])
        print(f"wrote {args.figure} ({len(misses)} misses)", file=sys.stderr)
    save_results(args.out, "google_nearby.py", args.checkpoint, argv, data=str(args.data),
                 cap=clf.preprocessing.cap, **result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
