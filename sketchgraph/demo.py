"""``sketchgraph demo``: classify the project's example sketches and draw each one as a graph.

For every sketch of every example file it prints the top-5 predictions and writes
``<out>/<file stem>[_<i>].png``: the points the model sees (after the checkpoint's preprocessing),
stroke and temporal edges, and the prediction bars. Needs the shipped ``spg20`` checkpoint (or
``--checkpoint PATH``); without it the command stops with a message saying where it looked.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .formats.base import canonical_label
from .predict import SHIPPED_CHECKPOINT, Prediction, SketchClassifier, format_predictions
from .sketch import Sketch

__all__ = ["DemoResult", "run_demo", "configure_parser", "run_cli"]


@dataclass
class DemoResult:
    """One classified example: where it came from, what the model said, and its picture."""

    source: Path
    sketch: Sketch
    predictions: list[Prediction]
    image: Path


def _sketches(path: Path) -> list[Sketch]:
    from .formats import read_sketches

    return list(read_sketches(path))


def run_demo(
    out: str | Path = "out/demo",
    checkpoint: str | Path = SHIPPED_CHECKPOINT,
    *,
    paths: Sequence[str | Path] | None = None,
    top_k: int = 5,
    verbose: bool = True,
) -> list[DemoResult]:
    """Classify and draw every sketch of ``paths`` (default: ``sketchgraph.examples.example_paths()``).

    Returns one ``DemoResult`` per sketch; prints a table per sketch and a summary when ``verbose``.
    """
    from .viz import draw_graph

    clf = SketchClassifier.from_pretrained(checkpoint)
    if paths is None:
        from .examples import example_paths

        paths = example_paths()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results: list[DemoResult] = []
    taken: set[str] = set()
    for path in map(Path, paths):
        sketches = _sketches(path)
        for i, sketch in enumerate(sketches):
            preds = clf.predict(sketch, top_k=top_k)
            image = out / _unique(f"{path.stem}" if len(sketches) == 1 else f"{path.stem}_{i}", taken)
            label = sketch.label or path.stem
            title = f"{label}: {preds[0].label} ({100 * preds[0].score:.0f}%)"
            draw_graph(clf.graph(sketch), image, prediction=preds, title=title)
            results.append(DemoResult(path, sketch, preds, image))
            if verbose:
                print(f"{path.name}{f' [{i}]' if len(sketches) > 1 else ''}: {label}\n{format_predictions(preds)}")
    if verbose:
        known = {canonical_label(c) for c in clf.classes}
        labelled = [r for r in results if r.sketch.label and canonical_label(r.sketch.label) in known]
        hits = sum(canonical_label(r.predictions[0].label) == canonical_label(r.sketch.label) for r in labelled)
        score = f"; top-1 {hits}/{len(labelled)} on the labelled ones" if labelled else ""
        print(f"\n{len(results)} sketches classified with {clf.name}{score}; pictures in {out}/")
    return results


def _unique(stem: str, taken: set[str]) -> str:
    """``stem.png``, or ``stem-2.png``, ``stem-3.png``... when an earlier sketch of this run has that name."""
    name, k = f"{stem}.png", 1
    while name in taken:
        k += 1
        name = f"{stem}-{k}.png"
    taken.add(name)
    return name


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", metavar="FILE", help="sketch files (default: the bundled examples)")
    p.add_argument("--out", default="out/demo", help="folder for the PNGs (default out/demo)")
    p.add_argument("--checkpoint", default=SHIPPED_CHECKPOINT, help="checkpoint directory or shipped name")
    p.add_argument("--top-k", type=int, default=5, help="predictions per sketch (default 5)")


def run_cli(args: argparse.Namespace) -> int:
    results = run_demo(args.out, args.checkpoint, paths=args.files or None, top_k=args.top_k)
    return 0 if results else 1
