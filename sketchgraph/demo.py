"""``sketchgraph demo``: classify the project's example sketches and draw each one as a graph.

For every sketch of every example file it prints the top-5 predictions and the picture it wrote,
``<out>/<file stem>[_<i>].png`` (``face.ndjson [1]: face -> out/demo/face_1.png``; a file found in a folder is
named by its path under that folder, ``sub/face.ndjson``). A picture has two panels: the graph the model sees (the
points after the checkpoint's preprocessing, with 1-hop stroke edges and temporal edges) and the prediction bars.
Needs the shipped ``spg20`` checkpoint (or ``--checkpoint PATH``); without it the command stops with a message
saying where it looked.

At most ``--limit`` sketches (``DEFAULT_LIMIT``, 50, in all; ``--limit 0`` for all) are classified and drawn, in
order; when that cuts, the summary ends with ``drew the first 50 of 70000 sketches; pass --limit 0 for all`` (the
others are read to be counted, not classified, and what is wrong with them is not reported). ``--format`` reads
every file as that format, as in ``sketchgraph predict``.

Files and folders are read as ``sketchgraph predict`` reads them: a record, a file or a drawing that cannot be
used is reported on stderr (``sketchgraph demo: skipped a.ndjson [1]: a.ndjson:2: invalid JSON``) and the
others are still classified and drawn; the exit status is then 1. A path that does not exist (or is a pipe), or an
``--out`` that cannot be a folder (an existing file, a path under a file), stops the run before the model loads; a
``--top-k`` that is not a positive integer, or a ``--limit`` that is not a non-negative one, is a usage error (exit
status 2) before anything is loaded or created.

Each PNG is written atomically (a temporary name, then a rename) and listed, with its SHA-256, in
``<out>/.sketchgraph-demo.json`` (``MANIFEST``, also replaced atomically). A later run into the same folder removes
the PNGs that list names and it does not draw again, when they are still as the demo wrote them, and says so on one
line (``removed 3 PNGs of an earlier run from out/demo/``); nothing else in the folder is ever removed: not a file
the list does not name, nor a name that is not a plain ``*.png`` file name in the folder (``../x.png``, an absolute
path), nor a file changed since. An unreadable list removes nothing and is replaced.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import numbers
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from .formats.base import atomic_write, canonical_label, nearest_existing
from .options import int_option
from .predict import (
    SHIPPED_CHECKPOINT,
    Prediction,
    SketchClassifier,
    _check_top_k,
    format_predictions,
)
from .sketch import Sketch
from .wording import counted

if TYPE_CHECKING:
    from .predict import FileRun

__all__ = ["DemoResult", "run_demo", "configure_parser", "run_cli", "DEFAULT_LIMIT", "MANIFEST"]

PROG = "sketchgraph demo"
#: the most sketches ``sketchgraph demo`` and ``run_demo`` draw, in all, unless told otherwise (0: all)
DEFAULT_LIMIT = 50
#: the file in ``out`` listing the PNGs the demo wrote there (name -> SHA-256), so that the next run into the same
#: folder removes those it does not draw again, and nothing else
MANIFEST = ".sketchgraph-demo.json"


@dataclass
class DemoResult:
    """One classified example: where it came from, what the model said, and its picture."""

    source: Path  # the file, Path("-") for standard input
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
    format: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[DemoResult]:
    """Classify and draw the sketches of ``paths``, files or folders (default:
    ``sketchgraph.examples.example_paths()``), at most ``limit`` of them in all (0: every one). ``-`` among
    ``paths`` reads standard input, as ``sketchgraph predict -`` does (after the model loads; its pictures are
    ``stdin.png``, ``stdin_<i>.png``).

    A record, a file or a drawing that cannot be used is skipped: ``on_error`` gets its message
    (``"skipped a.ndjson [1]: a.ndjson:2: invalid JSON"``; default: printed on stderr after ``sketchgraph demo: ``)
    and the other sketches are still classified and drawn. A sketch's picture and ``[i]`` are numbered by its
    record in the file, the skipped ones included. ``format`` reads every file as that format (default: from each
    file's name and content). Past ``limit`` sketches, the rest are read only to be counted (their problems are not
    reported). A path that does not exist raises ``FileNotFoundError``, an ``out`` that is a file or lies under one
    ``FileExistsError`` / ``NotADirectoryError``, a ``top_k`` that is not a positive integer or a ``limit`` that is
    not a non-negative one ``ValueError``, all before the model loads and ``out`` is created.

    Each picture is listed in ``out``'s ``MANIFEST`` as soon as it is written; at the end, the PNGs the previous
    run's manifest lists and this run did not draw are removed when still as written (``_remove_stale``), and the
    manifest then lists this run's pictures only. Files the manifest does not name are never touched.

    Returns one ``DemoResult`` per sketch drawn; prints, when ``verbose``, a table per sketch (with its file, as
    given or under the folder given, and its picture), how many PNGs of an earlier run it removed (when any) and a
    summary, which says when ``limit`` cut the run.
    """
    from .predict import STDIN, FileRun, check_file_arguments, expand_files, stderr_report, stdin_copy
    from .viz import draw_graph

    if paths is None:
        from .examples import example_paths

        paths = example_paths()
    paths = list(paths)
    _check_top_k(top_k)
    _check_limit(limit)
    check_file_arguments(paths)
    out = Path(out)
    _check_out(out)
    clf = SketchClassifier.from_pretrained(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    earlier = _read_manifest(out)  # the previous run's PNGs: removed at the end unless drawn again
    drawn: dict[str, str] = {}
    results: list[DemoResult] = []
    taken: set[str] = set()
    skipped = read = counted_only = 0
    report = on_error or stderr_report(PROG)
    with stdin_copy(paths, PROG) as saved:
        for given, name in ((arg, name) for arg in paths for name in expand_files([saved if arg == STDIN else arg])):
            from_stdin = name == saved  # its copy's name is random: the pictures are stdin*.png, the path -
            path, stem = (Path(STDIN), "stdin") if from_stdin else (Path(name), Path(name).stem)
            run = FileRun(name, format, as_json=False, report=report, name=STDIN if from_stdin else None)
            records = run.located_records()
            room = None if not limit else max(limit - read, 0)  # records this file may still hand to the model
            classified = []
            for (i, place), sketch, preds, error in clf.classify_each(islice(records, room), top_k):
                read += 1
                if error is None:
                    classified.append((i, sketch, preds))
                else:
                    run.refused(error, i, place)
            rest, failed = _count_rest(run, records)  # past the limit; also completes the file's record count
            counted_only += rest
            skipped += failed
            several = run.position > 1  # records in the file, the skipped ones included
            shown = STDIN if from_stdin else _shown_name(name, given)
            for i, sketch, preds in classified:
                image = out / _unique(f"{stem}_{i}" if several else stem, taken)
                label = sketch.label or stem
                title = f"{label}: {preds[0].label} ({100 * preds[0].score:.0f}%)"
                draw_graph(clf.graph(sketch), image, prediction=preds, title=title)
                _record_png(out, image, earlier, drawn)
                results.append(DemoResult(path, sketch, preds, image))
                if verbose:
                    print(f"{shown}{f' [{i}]' if several else ''}: {label} -> {image}\n{format_predictions(preds)}")
    removed = _remove_stale(out, earlier, drawn)
    if verbose:
        if removed:
            print(f"removed {counted(removed, 'PNG')} of an earlier run from {out}/")
        _print_summary(clf, results, out, skipped)
        if counted_only:
            print(f"drew the first {limit} of {counted(read + counted_only, 'sketch')}; pass --limit 0 for all")
    return results


def _is_our_png_name(name: object) -> bool:
    """Whether a manifest entry can name a PNG the demo wrote: a plain ``*.png`` file name right in ``out``, not a
    path (``sub/x.png``, ``../x.png``, ``/tmp/x.png``), ``.`` or ``..``."""
    return (isinstance(name, str) and name.endswith(".png") and "\0" not in name and name not in (".", "..")
            and PurePath(name).name == name)


def _is_sha256(digest: object) -> bool:
    """Whether ``digest`` is a SHA-256 as the manifest writes it: 64 lower-case hex digits."""
    return isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)


def _read_manifest(out: Path) -> dict[str, str]:
    """The PNGs (file name -> SHA-256) ``out``'s ``MANIFEST`` lists; {} when there is none or it cannot be read
    (not JSON, not the manifest's shape). Entries that cannot be a PNG the demo wrote in ``out``
    (``_is_our_png_name``) or without a SHA-256 are left out: they are not ours, and nothing is done with them."""
    try:
        record = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing, unreadable, not UTF-8, not JSON
        return {}
    pngs = record.get("pngs") if isinstance(record, dict) else None
    if not isinstance(pngs, dict):
        return {}
    return {name: digest for name, digest in pngs.items() if _is_our_png_name(name) and _is_sha256(digest)}


def _write_manifest(out: Path, pngs: dict[str, str]) -> None:
    """Replace ``out``'s ``MANIFEST`` (atomically: a temporary file, then a rename) by one listing ``pngs``."""
    text = json.dumps({"written_by": PROG, "pngs": dict(sorted(pngs.items()))}, indent=1)
    with atomic_write(out / MANIFEST, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def _sha256(path: Path) -> str | None:
    """The SHA-256 of the regular file ``path`` (not followed if a link); None when it is missing, not a regular
    file or cannot be read."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _record_png(out: Path, image: Path, earlier: dict[str, str], drawn: dict[str, str]) -> None:
    """List the PNG just written, ``image``, in ``drawn`` and in the manifest (with the previous run's PNGs still
    in it, so a run stopped half-way leaves every PNG of both listed for the next run to clean up)."""
    digest = _sha256(image)
    if digest is not None:
        drawn[image.name] = digest
        _write_manifest(out, {**earlier, **drawn})


def _remove_stale(out: Path, earlier: dict[str, str], drawn: dict[str, str]) -> int:
    """Remove the PNGs of an earlier run (``earlier``: name -> SHA-256 from its manifest) that this run did not draw
    (``drawn``), each only while it is the regular file the demo wrote (same SHA-256); then the manifest lists
    ``drawn`` and the ones that could not be removed. A PNG changed or replaced since is left and dropped from the
    list (no longer the demo's). Returns how many were removed."""
    removed, left = 0, {}
    for name, digest in earlier.items():
        if name in drawn or _sha256(out / name) != digest:
            continue
        try:
            (out / name).unlink()
            removed += 1
        except OSError:  # e.g. no permission: still ours, tried again next time
            left[name] = digest
    _write_manifest(out, {**left, **drawn})
    return removed


def _print_summary(clf: SketchClassifier, results: list[DemoResult], out: Path, skipped: int) -> None:
    """The last line: sketches classified, the top-1 score on the labelled ones, the skipped count, ``out``."""
    known = {canonical_label(c) for c in clf.classes}
    labelled = [r for r in results if r.sketch.label and canonical_label(r.sketch.label) in known]
    hits = sum(canonical_label(r.predictions[0].label) == canonical_label(r.sketch.label) for r in labelled)
    score = f"; top-1 {hits}/{len(labelled)} on the labelled ones" if labelled else ""
    more = f"; {skipped} skipped (records, drawings or files that could not be used)" if skipped else ""
    print(f"\n{counted(len(results), 'sketch')} classified with {clf.name}{score}{more}; pictures in {out}/")


def _count_rest(run: FileRun, records: Iterator) -> tuple[int, int]:
    """``(rest, failed)``: the readable records left in ``records`` (``run.located_records()``), read but not
    classified, and the records and parts of the file ``run`` failed to use before the first of them. Problems
    until that first record past the limit are reported as usual; those after it are not (not asked for)."""
    first = next(records, None)
    failed = run.failed_records + run.failed_parts
    if first is None:
        return 0, failed
    run.report = lambda message: None
    return 1 + sum(1 for _ in records), failed


def _shown_name(name: str, arg: str | os.PathLike) -> str:
    """How the printout names file ``name``, found from the argument ``arg``: its path under ``arg`` when ``arg``
    is a folder (``sub/face.ndjson``, so two ``face.ndjson`` of one folder differ), else its file name."""
    if Path(arg).is_dir():
        return os.path.relpath(name, arg)
    return Path(name).name


def _check_limit(limit: object) -> None:
    """``ValueError`` unless ``limit`` is an integer >= 0 (0: no limit)."""
    if isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 0:
        raise ValueError(f"limit must be a non-negative integer (0: all sketches), got {limit!r}")


def _check_out(out: Path) -> None:
    """Refuse, before the model loads, an ``out`` that cannot be the pictures' folder: an existing file
    (``FileExistsError``) or a path under a file (``NotADirectoryError``). Nothing is created here."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is an existing file, not a folder: demo writes its PNGs into a folder; "
                              "name a new or existing folder")
    above = nearest_existing(out)
    if not above.is_dir():
        raise NotADirectoryError(f"--out {out} cannot be created: {above} is a file, not a folder")


def _unique(stem: str, taken: set[str]) -> str:
    """``stem.png``, or ``stem-2.png``, ``stem-3.png``... when an earlier sketch of this run has that name."""
    name, k = f"{stem}.png", 1
    while name in taken:
        k += 1
        name = f"{stem}-{k}.png"
    taken.add(name)
    return name


def configure_parser(p: argparse.ArgumentParser) -> None:
    """Add ``sketchgraph demo``'s arguments to ``p``: ``FILE...``, ``--out``, ``--checkpoint``, ``--top-k``,
    ``--limit``, ``--format``."""
    from .formats import FORMATS

    p.add_argument("files", nargs="*", metavar="FILE",
                   help="sketch files or folders of them; - reads standard input (default: the bundled examples)")
    p.add_argument("--out", default="out/demo", help="folder for the PNGs (default out/demo)")
    p.add_argument("--checkpoint", default=SHIPPED_CHECKPOINT,
                   help=f"checkpoint directory or shipped name (default {SHIPPED_CHECKPOINT})")
    p.add_argument("--top-k", type=int_option(1), default=5, help="predictions per sketch (default 5)")
    p.add_argument("--limit", type=int_option(0, note=" (0: all)"), default=DEFAULT_LIMIT, metavar="N",
                   help=f"draw at most N sketches in all (default {DEFAULT_LIMIT}; 0: all of them)")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="read every file as this format (default: from each file's name and content)")


def run_cli(args: argparse.Namespace) -> int:
    """Classify and draw; status 1 when a record, drawing or file was skipped or nothing was drawn."""
    from .predict import stderr_report

    problems: list[str] = []
    printed = stderr_report(PROG)

    def report(message: str) -> None:
        printed(message)
        problems.append(message)

    results = run_demo(args.out, args.checkpoint, paths=args.files or None, top_k=args.top_k, on_error=report,
                       format=args.format, limit=args.limit)
    return 0 if results and not problems else 1
