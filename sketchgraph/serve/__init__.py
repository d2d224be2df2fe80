"""HTTP service for sketch recognition: ``create_app`` (FastAPI) and the drawing page.

Run it with ``sketchgraph serve`` (see ``sketchgraph.serve.app``); ``running_server`` starts an app
in a background thread for tests, benchmarks and notebooks; ``RequestBatcher`` lets concurrent requests
share model calls.
"""

from __future__ import annotations

from .app import MAX_BODY_BYTES, MAX_POINTS, MAX_STROKES, create_app
from .background import running_server
from .batching import RequestBatcher

__all__ = ["create_app", "running_server", "RequestBatcher", "MAX_BODY_BYTES", "MAX_POINTS", "MAX_STROKES"]
