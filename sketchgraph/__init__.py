"""sketchgraph: recognise free-hand sketches as graphs with the Multi-Graph Transformer.

Importing the package is light: it sets ``DGLBACKEND`` and defines ``__version__``; the public names (``Sketch``,
``build_graph``, ``SketchClassifier``, ...) are imported on first use (PEP 562), so ``sketchgraph --help`` /
``--version`` and the ``data_prep`` downloader do not load torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

DGL_BACKEND = "pytorch"
"""The only DGL backend sketchgraph's graphs and models are written for."""


def _use_pytorch_backend() -> None:
    """Point ``DGLBACKEND`` at pytorch before dgl is imported. A value inherited from the environment for another
    backend (``tensorflow``, ``mxnet``) would make ``--backend dgl`` fail deep inside dgl, so it is overridden for
    this process, with a ``RuntimeWarning`` saying so (once dgl is imported its backend is fixed: left alone)."""
    current = os.environ.get("DGLBACKEND", "")
    if current == DGL_BACKEND or "dgl" in sys.modules:
        return
    if current:
        warnings.warn(f"DGLBACKEND={current!r} in the environment: sketchgraph uses dgl with the pytorch backend "
                      f"only, so DGLBACKEND is set to {DGL_BACKEND!r} for this process", RuntimeWarning,
                      stacklevel=3)
    os.environ["DGLBACKEND"] = DGL_BACKEND


_use_pytorch_backend()

_LAZY: dict[str, str] = {
    "Sketch": ".sketch",
    "GraphSpec": ".graph", "SketchGraph": ".graph", "build_graph": ".graph",
    "Preprocessing": ".preprocess", "simplify": ".preprocess", "cap_points": ".preprocess",
    "SketchError": ".errors", "FormatError": ".errors", "EmptySketchError": ".errors", "CheckpointError": ".errors",
    "SketchClassifier": ".predict", "Prediction": ".predict",
}
"""Public name -> the submodule defining it, imported on first access (``.graph`` and ``.sketch`` load torch)."""

__all__ = [
    "Sketch", "GraphSpec", "SketchGraph", "build_graph", "Preprocessing", "simplify", "cap_points",
    "SketchError", "FormatError", "EmptySketchError", "CheckpointError", "SketchClassifier", "Prediction",
    "__version__",
]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time these come from __getattr__
    from .errors import CheckpointError, EmptySketchError, FormatError, SketchError
    from .graph import GraphSpec, SketchGraph, build_graph
    from .predict import Prediction, SketchClassifier
    from .preprocess import Preprocessing, cap_points, simplify
    from .sketch import Sketch


def __getattr__(name: str) -> Any:
    """A public name, imported from its submodule on first access and then cached in the package (PEP 562); any
    other name that is a submodule's (``sketchgraph.preprocess``, ``sketchgraph.formats``) imports that submodule,
    as an eager ``__init__`` would have made it reachable. Other names are an ``AttributeError``, found without
    importing anything."""
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value
        return value
    if (name.isidentifier() and not name.startswith("__")  # no dotted name, whose parent find_spec would import
            and importlib.util.find_spec(f"{__name__}.{name}") is not None):
        return importlib.import_module(f".{name}", __name__)  # the import binds it in the package too
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's attributes with the lazy public names (for ``dir()`` and tab completion)."""
    return sorted(set(globals()) | set(_LAZY))
