"""sketchgraph: recognise free-hand sketches as graphs with the Multi-Graph Transformer."""

from __future__ import annotations

import os

os.environ.setdefault("DGLBACKEND", "pytorch")

from .errors import CheckpointError, EmptySketchError, FormatError, SketchError  # noqa: E402
from .graph import GraphSpec, SketchGraph, build_graph  # noqa: E402
from .preprocess import Preprocessing, cap_points, simplify  # noqa: E402
from .sketch import Sketch  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Sketch", "GraphSpec", "SketchGraph", "build_graph", "Preprocessing", "simplify", "cap_points",
    "SketchError", "FormatError", "EmptySketchError", "CheckpointError", "__version__",
]
