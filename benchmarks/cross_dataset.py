"""The shipped checkpoint on drawings from another dataset: TU-Berlin SVG sketches of its classes.

    python benchmarks/cross_dataset.py [--checkpoint spg20] [--out benchmarks/results/cross_dataset_tuberlin.json]

TU-Berlin (Eitz, Hays, Alexa 2012; CC BY 4.0) was drawn by other people, with other tools (800x800 SVG,
cubic Beziers, more detail, no time limit) than Quick, Draw!. Every SVG under ``../shared/data/tuberlin_svg``
whose folder names one of the checkpoint's classes (compared as ``canonical_label``) is classified through
``SketchClassifier.predict`` exactly as a user's file would be; the script prints each drawing's top-3 and the
top-1 / top-3 accuracy, and writes them as JSON. The sample here is small (the folder holds 5 drawings of each
of 2 shared classes), so this is a sanity check of transfer, not a benchmark.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
os.environ.setdefault("DGLBACKEND", "pytorch")

from results_io import save_results  # noqa: E402

from sketchgraph.formats import canonical_label, label_from_path  # noqa: E402
from sketchgraph.predict import SketchClassifier, resolve_checkpoint  # noqa: E402

TUBERLIN = ROOT.parent / "shared" / "data" / "tuberlin_svg"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="spg20")
    p.add_argument("--data", type=Path, default=TUBERLIN, help="a folder of <class>/<n>.svg files")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    if not args.data.is_dir():
        print(f"no TU-Berlin folder at {args.data}", file=sys.stderr)
        return 1
    path = resolve_checkpoint(args.checkpoint)
    clf = SketchClassifier.from_pretrained(path)
    known = {canonical_label(c): c for c in clf.classes}
    files = sorted(f for f in args.data.glob("*/*.svg") if canonical_label(label_from_path(f, folder=True)) in known)
    if not files:
        print(f"no SVGs of the checkpoint's classes under {args.data}", file=sys.stderr)
        return 1
    rows = []
    for f in files:
        truth = known[canonical_label(label_from_path(f, folder=True))]
        preds = clf.predict(f, top_k=3)
        rows.append({"file": f.relative_to(args.data).as_posix(), "class": truth,
                     "top3": [{"label": q.label, "score": round(q.score, 4)} for q in preds],
                     "top1_correct": preds[0].label == truth, "top3_correct": truth in {q.label for q in preds}})
        shown = ", ".join(f"{q.label} {100 * q.score:.0f}%" for q in preds)
        print(f"{rows[-1]['file']:<22} {'ok ' if rows[-1]['top1_correct'] else 'MISS'}  {shown}")
    top1 = sum(r["top1_correct"] for r in rows)
    top3 = sum(r["top3_correct"] for r in rows)
    classes = sorted({r["class"] for r in rows})
    print(f"\n{clf.name}: TU-Berlin top-1 {top1}/{len(rows)}, top-3 {top3}/{len(rows)} over {len(classes)} shared "
          f"classes ({', '.join(classes)}); chance is 1/{clf.num_classes}")
    if args.out:
        save_results(args.out, "cross_dataset.py", args.checkpoint, argv, dataset="TU-Berlin SVG", classes=classes,
                     n=len(rows), top1=top1 / len(rows), top3=top3 / len(rows), drawings=rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
