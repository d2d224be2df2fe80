"""The project's own example sketches, shipped inside the package (so they are found both in a
checkout and after ``pip install .``).

Hand-authored drawings of SPG-20 classes, in a mix of formats (all CC0):

================  ===================================================  ==========================
file              what                                                 format
================  ===================================================  ==========================
alarm_clock       dial, bells, knob, ticks, hands, legs (11 strokes)    RAW ndjson (px floats, ms)
apple             body, stem, leaf, highlight (4 strokes)               SVG (Beziers, group transform)
cactus            trunk, arms, ground, spines (9 strokes)               RAW ndjson
candle            body, top, wick, flame, drip (5 strokes)              simplified ndjson (0..255)
face              head, eyes, brows, nose, mouth (7 strokes)            RAW ndjson
ice_cream         cone, scoop, waffle lines, cherry (10 strokes)        simplified ndjson
suitcase          body, handle, straps, lock (6 strokes)                SVG (nested transforms)
================  ===================================================  ==========================

    >>> from sketchgraph.examples import example_paths, load_example
    >>> [p.name for p in example_paths()][:2]
    ['alarm_clock.ndjson', 'apple.svg']
    >>> load_example("face").label
    'face'
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SketchError
from ..sketch import Sketch

__all__ = ["EXAMPLES_DIR", "example_paths", "example_path", "load_example"]

EXAMPLES_DIR = Path(__file__).resolve().parent
_SUFFIXES = (".ndjson", ".svg")


def example_paths() -> list[Path]:
    """The example files, sorted by name (``.ndjson`` and ``.svg``)."""
    return sorted(p for p in EXAMPLES_DIR.iterdir() if p.suffix in _SUFFIXES and p.is_file())


def example_path(name: str) -> Path:
    """The file of example ``name``: its stem (``"face"``, ``"alarm_clock"``) or the class name it draws, as a
    model's ``classes`` spell it (``"alarm clock"``); ``SketchError`` if there is none."""
    for p in example_paths():
        if p.stem in (name, name.replace(" ", "_")):
            return p
    raise SketchError(f"no example {name!r}; choose from {[p.stem for p in example_paths()]}")


def load_example(name: str) -> Sketch:
    """Example ``name`` read with ``sketchgraph.formats.read_sketches`` (RAW ones keep their times)."""
    from ..formats import read_sketches

    return next(iter(read_sketches(example_path(name))))
