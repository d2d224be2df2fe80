"""HTTP service for sketch recognition: ``create_app`` (FastAPI) and the drawing page.

Run it with ``sketchgraph serve`` (see ``sketchgraph.serve.app``); ``running_server`` starts an app
in a background thread for tests, benchmarks and notebooks.
"""

from __future__ import annotations

from .app import MAX_BODY_BYTES, MAX_POINTS, create_app
from .background import running_server

__all__ = ["create_app", "running_server", "MAX_BODY_BYTES", "MAX_POINTS"]
