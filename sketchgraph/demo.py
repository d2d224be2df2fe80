"""``sketchgraph demo``: classify the project's example sketches and draw each one as a graph.

For every sketch of every example file it prints the top-5 predictions and writes
``<out>/<file stem>[_<i>].png``: the points the model sees (after the checkpoint's preprocessing),
stroke and temporal edges, and the prediction bars. Needs the shipped ``spg20`` checkpoint (or
``--checkpoint PATH``); without it the command stops with a message saying where it looked.

Files and folders are read as ``sketchgraph predict`` reads them: a record, a file or a drawing that cannot be
used is reported on stderr (``sketchgraph demo: skipped a.ndjson [1]: a.ndjson:2: invalid JSON``) and the
others are still classified and drawn; the exit status is then 1. A path that does not exist (or is a pipe) stops the
run before the model loads; a ``--top-k`` that is not a positive integer is a usage error (exit status 2) before
anything is loaded or created.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .formats.base import canonical_label
from .predict import (
    SHIPPED_CHECKPOINT,
    Prediction,
    SketchClassifier,
    _check_top_k,
    _positive_int_option,
    format_predictions,
)
from .sketch import Sketch
from .wording import counted

__all__ = ["DemoResult", "run_demo", "configure_parser", "run_cli"]

PROG = "sketchgraph demo"


@dataclass
class DemoResult:
    """One classified example: where it came from, what the model said, and its picture."""

    source: Path
    sketch: Sketch
    predictions: list[Prediction]
    image: Path


def run_demo(
    out: str | Path = "out/demo",
    checkpoint: str | Path = SHIPPED_CHECKPOINT,
    *,
    paths: Sequence[str | Path] | None = None,
    top_k: int = 5,
    verbose: bool = True,
    on_error: Callable[[str], object] | None = None,
) -> list[DemoResult]:
    """Classify and draw every sketch of ``paths``, files or folders (default:
    ``sketchgraph.examples.example_paths()``).

    A record, a file or a drawing that cannot be used is skipped: ``on_error`` gets its message
    (``"skipped a.ndjson [1]: a.ndjson:2: invalid JSON"``; default: printed on stderr after ``sketchgraph demo: ``)
    and the other sketches are still classified and drawn. A sketch's picture and ``[i]`` are numbered by its
    record in the file, the skipped ones included. A path that does not exist raises ``FileNotFoundError``, and a
    ``top_k`` that is not a positive integer ``ValueError``, before the model loads and ``out`` is created.

    Returns one ``DemoResult`` per sketch drawn; prints a table per sketch and a summary when ``verbose``.
    """
    from .predict import FileRun, expand_files, require_paths, stderr_report  # predict's reading of files
    from .viz import draw_graph

    if paths is None:
        from .examples import example_paths

        paths = example_paths()
    paths = list(paths)
    _check_top_k(top_k)
    require_paths(paths)
    clf = SketchClassifier.from_pretrained(checkpoint)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results: list[DemoResult] = []
    taken: set[str] = set()
    skipped = 0
    report = on_error or stderr_report(PROG)
    for name in expand_files(paths):
        path, run = Path(name), FileRun(name, None, as_json=False, report=report)
        classified = []
        for (i, place), sketch, preds, error in clf.classify_each(run.located_records(), top_k):  # all: the count
            if error is None:                                                                   # names the PNGs
                classified.append((i, sketch, preds))
            else:
                run.refused(error, i, place)
        several = run.position > 1  # records in the file, the skipped ones included
        for i, sketch, preds in classified:
            image = out / _unique(f"{path.stem}_{i}" if several else path.stem, taken)
            label = sketch.label or path.stem
            title = f"{label}: {preds[0].label} ({100 * preds[0].score:.0f}%)"
            draw_graph(clf.graph(sketch), image, prediction=preds, title=title)
            results.append(DemoResult(path, sketch, preds, image))
            if verbose:
                print(f"{path.name}{f' [{i}]' if several else ''}: {label}\n{format_predictions(preds)}")
        skipped += run.failed_records + run.failed_parts
    if verbose:
        known = {canonical_label(c) for c in clf.classes}
        labelled = [r for r in results if r.sketch.label and canonical_label(r.sketch.label) in known]
        hits = sum(canonical_label(r.predictions[0].label) == canonical_label(r.sketch.label) for r in labelled)
        score = f"; top-1 {hits}/{len(labelled)} on the labelled ones" if labelled else ""
        more = f"; {skipped} skipped (records, drawings or files that could not be used)" if skipped else ""
        print(f"\n{counted(len(results), 'sketch')} classified with {clf.name}{score}{more}; pictures in {out}/")
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
    """Add ``sketchgraph demo``'s arguments to ``p``: ``FILE...``, ``--out``, ``--checkpoint``, ``--top-k``."""
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="sketch files or folders of them (default: the bundled examples)")
    p.add_argument("--out", default="out/demo", help="folder for the PNGs (default out/demo)")
    p.add_argument("--checkpoint", default=SHIPPED_CHECKPOINT,
                   help=f"checkpoint directory or shipped name (default {SHIPPED_CHECKPOINT})")
    p.add_argument("--top-k", type=_positive_int_option, default=5, help="predictions per sketch (default 5)")


def run_cli(args: argparse.Namespace) -> int:
    """Classify and draw; status 1 when a record, drawing or file was skipped or nothing was drawn."""
    from .predict import stderr_report

    problems: list[str] = []
    printed = stderr_report(PROG)

    def report(message: str) -> None:
        printed(message)
        problems.append(message)

    results = run_demo(args.out, args.checkpoint, paths=args.files or None, top_k=args.top_k, on_error=report)
    return 0 if results and not problems else 1
