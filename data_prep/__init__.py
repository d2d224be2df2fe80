"""Dataset-specific preparation scripts on top of ``sketchgraph.data.prepare``.

- ``python -m data_prep.spg SPG_DIR OUT``: SPG-20 from its original coordinates, with SPG's split.
- ``python -m data_prep.quickdraw download ...`` / ``prepare414k DIR OUT``: Quick, Draw! files and the
  QuickDraw-414k protocol (345 classes x 1000 / 100 / 100).
- ``python -m data_prep.tuberlin ROOT OUT``: TU-Berlin SVG folders with a seeded per-class split.
- ``python -m data_prep.sketchrnn FILE.npz ... OUT``: sketch-rnn stroke-3 files and their own splits.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

__all__ = ["run_script"]


def run_script(prog: str, body: Callable[[], Any], also: tuple[type[Exception], ...] = ()) -> int:
    """Run a script's ``body``; its exit status is what ``body`` returns when that is an int, else 0. Bad input
    or a file problem (``ValueError``, which ``sketchgraph``'s ``SketchError`` is, or ``OSError``: an existing
    output folder, a missing input, an unknown protocol; and the exception types in ``also``) is one line
    ``prog: error: ...`` on stderr and exit status 1, not a traceback. Imports nothing of ``sketchgraph`` (so
    torch), which the downloader does not need."""
    try:
        status = body()
    except (ValueError, OSError, *also) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    return status if isinstance(status, int) else 0
