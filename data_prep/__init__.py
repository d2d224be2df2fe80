"""Dataset-specific preparation scripts on top of ``sketchgraph.data.prepare``.

- ``python -m data_prep.spg SPG_DIR OUT``: SPG-20 from its original coordinates, with SPG's split.
- ``python -m data_prep.quickdraw download ...`` / ``prepare414k DIR OUT``: Quick, Draw! files and the
  QuickDraw-414k protocol (345 classes x 1000 / 100 / 100).
- ``python -m data_prep.tuberlin ROOT OUT``: TU-Berlin SVG folders with a seeded per-class split.
- ``python -m data_prep.sketchrnn FILE.npz ... OUT``: sketch-rnn stroke-3 files and their own splits.

Run them from the repository root: ``data_prep`` belongs to the checkout and is not installed with the package.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sketchgraph.preprocess import Preprocessing

__all__ = ["RUN_FROM_ROOT", "run_script", "script_parser", "add_prepare_options", "preprocessing_of", "existing_folder",
           "positive_int", "resume_note"]

RUN_FROM_ROOT = ("Run it from the repository root: data_prep is part of the checkout, not of the installed "
                 "sketchgraph package (elsewhere python -m data_prep... fails with \"No module named 'data_prep'\").")
"""The epilog of every script's help."""


INTERRUPTED_STATUS = 130
"""The exit status after Ctrl-C (128 + SIGINT), as a shell reports it."""


def run_script(prog: str, body: Callable[[], Any], also: tuple[type[Exception], ...] = (), *,
               interrupted: str | None = None) -> int:
    """Run a script's ``body``; its exit status is what ``body`` returns when that is an int, else 0. Bad input
    or a file problem (``ValueError``, which ``sketchgraph``'s ``SketchError`` is, or ``OSError``: an existing
    output folder, a missing input, an unknown protocol; and the exception types in ``also``) is one line
    ``prog: error: ...`` on stderr and exit status 1, not a traceback. Ctrl-C is one line too, ``prog:
    interrupted (INTERRUPTED)`` with ``interrupted`` saying what is kept, and exit status 130; SIGTERM likewise
    (``prog: terminated (SIGTERM) (...)``, status 143: ``sketchgraph.signals``). Imports nothing of ``sketchgraph``
    that needs torch, which the downloader does not need."""
    from sketchgraph.signals import sigterm_as_interrupt

    received = None
    try:
        with sigterm_as_interrupt() as received:  # SIGTERM (kill, timeout, Slurm) is handled as Ctrl-C is
            status = body()
    except (ValueError, OSError, *also) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        said = exc.args[0] if exc.args else "interrupted"  # SIGTERM's says so
        print(f"{prog}: {said}" + (f" ({interrupted})" if interrupted else ""), file=sys.stderr)
        return received.status(INTERRUPTED_STATUS) if received is not None else INTERRUPTED_STATUS
    return status if isinstance(status, int) else 0


def resume_note(out: str | Path, *, resume: bool = True) -> str:
    """``sketchgraph.data.pipeline.resume_note``: what an interrupted ``prepare`` keeps (imported when called, so that
    the downloader imports no torch)."""
    from sketchgraph.data.pipeline import resume_note as note

    return note(out, resume=resume)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (``--workers 0`` or ``-3`` is refused, not silently taken)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def script_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The parser of ``python -m data_prep.<name>``, its help ending with ``RUN_FROM_ROOT``."""
    return argparse.ArgumentParser(prog=prog, description=description, epilog=RUN_FROM_ROOT)


def add_prepare_options(p: argparse.ArgumentParser, *, point_cap: bool = False) -> None:
    """The options the preparing scripts share: ``--cap`` and ``--max-points`` (with ``point_cap``; see
    ``preprocessing_of``), ``--workers``, ``--overwrite`` and ``--no-resume``."""
    if point_cap:
        from sketchgraph.options import add_point_cap_options
        from sketchgraph.preprocess import Preprocessing

        add_point_cap_options(p, Preprocessing().max_points, count=positive_int)
    p.add_argument("--workers", type=positive_int, default=2,
                   help="worker processes (default %(default)s); the output does not depend on it")
    p.add_argument("--overwrite", action="store_true", help="replace an existing prepared dataset at OUT")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="ignore the files an interrupted run cached in OUT.partial and read every file again")


def preprocessing_of(args: argparse.Namespace) -> Preprocessing:
    """The ``Preprocessing`` that a script's ``--cap`` and ``--max-points`` (``add_prepare_options(point_cap=True)``)
    ask for, Google's otherwise."""
    from sketchgraph.preprocess import Preprocessing

    return Preprocessing(max_points=args.max_points, cap=args.cap)


def existing_folder(path: str | Path, what: str) -> Path:
    """``path`` as a ``Path`` when it is a folder; else ``FileNotFoundError`` "no such folder: PATH (WHAT)" (or
    "not a folder" for a file)."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{'not a folder' if path.exists() else 'no such folder'}: {path} ({what})")
    return path
