"""The HTTP service: a JSON prediction API and a drawing page.

Endpoints (OpenAPI schema at ``/openapi.json``, browsable and callable at ``/docs``: Swagger UI, its script
served by this app, never by a CDN, so the page works offline):

- ``POST /predict`` ``{"drawing": [[xs, ys], ...] | [[xs, ys, ts], ...], "top_k": 5}`` ->
  ``{"predictions": [{"label": str, "score": float}, ...]}`` (best first, scores are probabilities).
  Coordinates are raw canvas pixels (or already simplified data); the checkpoint's preprocessing
  normalises them. ``ts`` (ms) are accepted and ignored by the model.
- ``GET /healthz`` -> ``{"status": "ok", "model": name, "classes": count, "max_points": limit}``.
- ``GET /classes`` -> ``{"classes": [...]}``.
- ``GET /stats`` -> ``{"requests": n, "model_calls": m, "mean_batch": n / m}`` (request batching at work).
- ``GET /`` -> the drawing page (``static/index.html``; self-contained, no CDN).

Every ``GET`` endpoint (the static files and ``/docs`` too) also answers ``HEAD``: the same status and headers,
no body (RFC 9110 requires ``HEAD`` wherever ``GET`` works).

Bad input never gives a 500: a malformed drawing (wrong nesting, NaN / infinity, a coordinate that is a
string or a boolean instead of a JSON number, empty, xs and ys of different lengths, more than ``max_points``
points) is ``422`` with a ``detail`` message (validation errors name the location, e.g.
``["body", "drawing", 0, 1, 2]``); a body larger than ``max_body_bytes`` (``MAX_BODY_BYTES`` = 1 MiB by
default, checked against ``Content-Length`` and against the bytes actually received) is ``413``; a body that
cannot be read as JSON (truncated, invalid UTF-8, a number of over 4,300 digits, nesting too deep) is ``422``
saying why; a body sent with another ``Content-Type`` than ``application/json`` (curl's ``-d`` default, a form)
is ``415`` saying so, and so is one sent with a ``Content-Encoding`` other than ``identity`` (gzip, br, ...:
only uncompressed bodies are read). A body that has not fully arrived ``body_timeout`` seconds after the request
began (``BODY_TIMEOUT_S`` = 30 s by default: 1 MiB needs about 35 KB/s) is ``408`` and its connection is
closed, so a client that sends headers and then goes quiet cannot hold a connection open, nor a shutdown: the
CLI's server also gives in-flight requests at most ``--shutdown-timeout`` (``SHUTDOWN_TIMEOUT_S`` = 5 s) to
finish after SIGTERM / Ctrl-C, then cancels them.

Concurrent requests share model calls (``RequestBatcher``, ``sketchgraph.serve.batching``): whatever is
waiting when the model becomes free, up to ``max_batch`` drawings, goes through one call. Each request
gets the result a single call would give (probabilities equal to float rounding); at low load a request
is served alone, with no added wait. Real drawings are simplified with their batch (a few ms each); a heavy one
(more than ``LIGHT_INK`` px of strokes: seconds for a legal drawing of thousands of points) is simplified first
on the batcher's own small pool, in the order each would finish if it started on arrival, so heavy drawings
delay only each other.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import socket
import threading
from collections.abc import AsyncIterator
from concurrent.futures import Future
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import SketchError
from ..predict import SHIPPED_CHECKPOINT, SketchClassifier, add_classifier_arguments
from ..preprocess import load_compiled_rdp
from ..sketch import Sketch
from .batching import RequestBatcher

__all__ = ["create_app", "listen", "MAX_BODY_BYTES", "MAX_POINTS", "MAX_TOP_K", "BODY_TIMEOUT_S", "SHUTDOWN_TIMEOUT_S",
           "configure_parser", "run_cli"]

MAX_BODY_BYTES = 1 << 20  # 1 MiB: ~30,000 points with times as JSON; a drawing is a few KiB
MAX_POINTS = 20_000  # points per drawing before preprocessing (bounds the simplification's work)
MAX_TOP_K = 100
BODY_TIMEOUT_S = 30.0  # a request body must have fully arrived this long after the request began (408 after)
SHUTDOWN_TIMEOUT_S = 5.0  # after SIGTERM / Ctrl-C, in-flight requests get this long before they are cancelled
STATIC = Path(__file__).with_name("static")
DOCS_STATIC = "docs-static"  # where the Swagger UI files are served (relative to the app's root)

# strict: a JSON number (integer or not), never a string ("10") or a boolean (true) that lax mode would coerce
FiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=True)]


class PredictRequest(BaseModel):
    """A drawing as Quick, Draw! strokes, and how many predictions to return."""

    drawing: list[list[list[FiniteFloat]]] = Field(
        description="strokes, each [xs, ys] or [xs, ys, ts] (ts in ms); canvas pixel coordinates",
        examples=[[[[10, 60, 110], [20, 80, 20]], [[10, 110], [100, 100]]]],
    )
    top_k: int = Field(5, ge=1, le=MAX_TOP_K, strict=True,
                       description="number of predictions (capped at the class count)")


class PredictionOut(BaseModel):
    label: str
    score: float = Field(description="softmax probability")


class PredictResponse(BaseModel):
    predictions: list[PredictionOut]


def check_drawing(drawing: list[list[list[float]]], max_points: int) -> Sketch:
    """A ``Sketch`` from request strokes, or ``SketchError`` saying what is wrong with them."""
    if not drawing:
        raise SketchError("drawing is empty: send at least one stroke [xs, ys]")
    total = 0
    for i, stroke in enumerate(drawing):
        if len(stroke) not in (2, 3):
            raise SketchError(f"stroke {i}: expected [xs, ys] or [xs, ys, ts], got {len(stroke)} lists")
        lengths = [len(c) for c in stroke]
        if len(set(lengths)) > 1:
            names = ("xs", "ys", "ts")[: len(stroke)]
            detail = ", ".join(f"{n} has {k}" for n, k in zip(names, lengths))
            raise SketchError(f"stroke {i}: coordinate lists differ in length ({detail})")
        total += lengths[0]
    if total == 0:
        raise SketchError("drawing has no points")
    if total > max_points:
        raise SketchError(f"drawing has {total} points; at most {max_points} are accepted")
    return Sketch.from_strokes(drawing)


class _TooLarge(Exception):
    """The body received so far exceeds the limit."""


class BodyLimit:
    """ASGI middleware that reads a request's body before the app sees it, and answers instead of the app:

    - ``415`` when a body has a content coding other than ``identity`` (``Content-Encoding: gzip``, ...):
      the app reads plain JSON only, and a compressed body would otherwise be a misleading "not UTF-8" ``422``;
    - ``413`` when the body exceeds ``max_bytes`` (by its ``Content-Length`` or by the bytes actually received);
    - ``408`` when the body has not fully arrived ``timeout`` seconds after the request began (a client that
      sends its headers and then goes quiet, or trickles bytes), closing the connection; without it such a
      client holds its connection, and a graceful shutdown, forever;
    - ``400`` for a ``Content-Length`` that is not a number.
    """

    def __init__(self, app: Any, max_bytes: int, timeout: float = BODY_TIMEOUT_S):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def _reply(self, send: Any, status: int, detail: str, headers: tuple[tuple[bytes, bytes], ...] = ()
                     ) -> None:
        body = json.dumps({"detail": detail}).encode()
        head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": body})

    async def _read(self, receive: Any) -> bytes | None:
        """The whole body (``None``: the client went away); ``_TooLarge`` past ``max_bytes``."""
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                return None
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        has_body = headers.get(b"content-length", b"0").strip() not in (b"0", b"") or b"transfer-encoding" in headers
        codings = [c.strip().lower() for name, value in scope["headers"] if name == b"content-encoding"
                   for c in value.decode("latin-1").split(",") if c.strip()]
        if has_body and any(c != "identity" for c in codings):
            return await self._reply(
                send, 415, f"request bodies with Content-Encoding {', '.join(codings)!r} are not supported: "
                           "send the JSON uncompressed (identity)", ((b"accept-encoding", b"identity"),))
        too_big = f"request body larger than {self.max_bytes} bytes"
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                return await self._reply(send, 400, "invalid Content-Length header")
            if size > self.max_bytes:
                return await self._reply(send, 413, too_big)
        try:
            async with asyncio.timeout(self.timeout):
                body = await self._read(receive)
        except _TooLarge:
            return await self._reply(send, 413, too_big)
        except TimeoutError:
            return await self._reply(send, 408, f"request body not received within {self.timeout:g} s",
                                     ((b"connection", b"close"),))
        if body is None:
            return
        pending = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay() -> dict:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)


class HeadAsGet:
    """ASGI middleware: ``HEAD`` is answered as ``GET`` is, without the body (same status and headers,
    ``Content-Length`` included), as RFC 9110 requires wherever ``GET`` works. A path with no ``GET`` still
    answers ``405``."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)

        async def headers_only(message: dict) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


def docs_assets() -> Path:
    """The folder holding ``swagger-ui-bundle.js``, ``swagger-ui.css`` and ``favicon.png``: the copies packaged
    by ``fastapi-offline`` (Swagger UI 5, which renders the OpenAPI 3.1 schema FastAPI writes). Only its files
    are used, not its code."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the API docs pages need the fastapi-offline package: pip install fastapi-offline")
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    missing = [n for n in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")
               if not (folder / n).is_file()]
    if missing:
        raise RuntimeError(f"fastapi-offline at {folder.parent} lacks {', '.join(missing)}; reinstall it")
    return folder


def create_app(
    classifier_or_checkpoint: SketchClassifier | str | os.PathLike = SHIPPED_CHECKPOINT,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_points: int = MAX_POINTS,
    device: str = "cpu",
    backend: str = "dense",
    precision: str = "float32",
    max_batch: int = 64,
    max_wait_ms: float = 0.0,
    body_timeout: float = BODY_TIMEOUT_S,
    heavy_workers: int | None = None,
) -> FastAPI:
    """The FastAPI app serving ``classifier_or_checkpoint`` (a ``SketchClassifier``, or a checkpoint
    path / shipped name loaded with ``device``, ``backend`` and ``precision``); limits (``body_timeout``:
    seconds for a request body to arrive) as in the module docstring; ``max_batch``, ``max_wait_ms`` and
    ``heavy_workers`` configure the ``RequestBatcher`` (``app.state.batcher``)."""
    if max_body_bytes < 1 or max_points < 1:
        raise ValueError(f"max_body_bytes and max_points must be >= 1, got {max_body_bytes} and {max_points}")
    if not 0 < body_timeout < float("inf"):
        raise ValueError(f"body_timeout must be a positive number of seconds, got {body_timeout}")
    clf = (
        classifier_or_checkpoint
        if isinstance(classifier_or_checkpoint, SketchClassifier)
        else SketchClassifier.from_pretrained(classifier_or_checkpoint, device=device, backend=backend,
                                              precision=precision)
    )
    # a long-running process: load the compiled simplification kernel now, and let the first request not pay
    # for it or for torch's first-call set-up
    load_compiled_rdp()
    clf.predict([[[0, 40, 80], [0, 30, 0]]])
    from .. import __version__

    def new_batcher() -> RequestBatcher:
        return RequestBatcher(clf, max_batch=max_batch, max_wait_ms=max_wait_ms, heavy_workers=heavy_workers)

    replacing = threading.Lock()

    def batcher() -> RequestBatcher:
        """The app's batcher; a new one when a shutdown closed it and the app is started again, or a request
        comes anyway (an app used without its lifespan, as a ``TestClient`` outside ``with`` is)."""
        with replacing:
            if app.state.batcher.closed:
                app.state.batcher = new_batcher()
            return app.state.batcher

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher()  # started again after a shutdown: a new batcher
        yield
        await asyncio.to_thread(app.state.batcher.close)  # answer what is queued, stop the worker thread

    app = FastAPI(
        title="sketchgraph",
        version=__version__,
        description="Free-hand sketch recognition with the Multi-Graph Transformer. Draw at `/`.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's own pages load Swagger UI / ReDoc from a CDN: ours is below (ReDoc's page
        redoc_url=None,  # fetches a logo from a CDN even with its script served locally, so there is none)
    )
    app.state.classifier = clf
    app.state.batcher = new_batcher()
    index_html = (STATIC / "index.html").read_text(encoding="utf-8")

    @app.exception_handler(SketchError)
    async def bad_sketch(request: Request, exc: SketchError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        json_media = media == "application/json" or (media.startswith("application/") and media.endswith("+json"))
        if request.method == "POST" and not json_media:
            # FastAPI did not parse such a body as JSON; its "Input should be a valid dictionary" misleads
            return JSONResponse({"detail": f"send the drawing as JSON with 'Content-Type: application/json' "
                                           f"(got {media or 'no Content-Type'!r})"}, status_code=415)
        # FastAPI's default echoes each offending input back, which fails to encode for NaN (a 500)
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # a JSON body json.loads cannot read (not a syntax error: a number too long, nesting too deep)
            why = exc.__cause__ or exc.detail
            return JSONResponse({"detail": f"the body is not JSON this server can read: {why}"}, status_code=422)
        return await http_exception_handler(request, exc)

    @app.post("/predict", response_model=PredictResponse, responses={
        408: {"description": "body not received within the body timeout"},
        413: {"description": "body larger than the limit"},
        415: {"description": "body not sent as JSON, or compressed (Content-Encoding other than identity)"},
        422: {"description": "a drawing that is malformed or cannot be read"}})
    async def predict(req: PredictRequest) -> dict:
        """Classify one drawing; the ``top_k`` most likely classes, best first."""
        # async: a waiting request holds no worker thread, so batches are not capped by the thread pool and
        # the other endpoints stay responsive under load. The checks (milliseconds) run in a thread, off the
        # event loop; a heavy drawing's preprocessing (seconds) runs on the batcher's heavy pool, so neither
        # that thread nor the model's waits for it
        def queue() -> Future:
            return batcher().submit(check_drawing(req.drawing, max_points), top_k=req.top_k)

        preds = await asyncio.wrap_future(await asyncio.to_thread(queue))
        return {"predictions": [{"label": p.label, "score": p.score} for p in preds]}

    @app.get("/healthz")
    def healthz() -> dict:
        """Liveness: the model is loaded; also the most points a drawing may have."""
        return {"status": "ok", "model": clf.name, "classes": clf.num_classes, "max_points": max_points}

    @app.get("/stats")
    def stats() -> dict:
        """Requests answered so far, the model calls that answered them, and the mean batch size."""
        n, calls = app.state.batcher.requests, app.state.batcher.batches
        return {"requests": n, "model_calls": calls, "mean_batch": round(n / calls, 3) if calls else None}

    @app.get("/classes")
    def classes() -> dict:
        """The class names the model knows, in logit order."""
        return {"classes": clf.classes}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return index_html

    # The API docs page, with its script served from here (``docs_assets()``). Every URL is relative to the
    # page, so it works with the app mounted under a sub-path too.
    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="openapi.json", title=f"{app.title} API", swagger_js_url=f"{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_STATIC}/swagger-ui.css", swagger_favicon_url=f"{DOCS_STATIC}/favicon.png",
            oauth2_redirect_url=None)

    app.mount(f"/{DOCS_STATIC}", StaticFiles(directory=docs_assets()), name="docs-static")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, timeout=body_timeout)
    app.add_middleware(HeadAsGet)
    return app


# ---------------------------------------------------------------------------------- CLI
def _bounded(lo: int, hi: int | None) -> Any:
    """An argparse type: an integer in ``[lo, hi]``."""
    def parse(text: str) -> int:
        value = int(text)
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{value} is not in {lo}..{hi if hi is not None else ''}")
        return value
    return parse


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not in 0..inf (a finite number)")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text} is not in 0..inf (a finite number above 0)")
    return value


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=_bounded(0, 65535), default=8000, help="port (default 8000)")
    add_classifier_arguments(p)
    p.add_argument("--max-body-bytes", type=_bounded(1, None), default=MAX_BODY_BYTES,
                   help="request body limit (413 above)")
    p.add_argument("--max-batch", type=_bounded(1, None), default=64,
                   help="most concurrent requests answered by one model call (1: each alone; default 64)")
    p.add_argument("--max-wait-ms", type=_non_negative_float, default=0.0,
                   help="wait this long for more requests to batch (default 0: only those already waiting)")
    p.add_argument("--heavy-workers", type=_bounded(1, None), default=None,
                   help="threads simplifying heavy drawings, apart from the model's (default: half the CPUs)")
    p.add_argument("--body-timeout", type=_positive_float, default=BODY_TIMEOUT_S, metavar="SECONDS",
                   help=f"a request body must arrive within this long (408 after; default {BODY_TIMEOUT_S:g})")
    p.add_argument("--shutdown-timeout", type=_non_negative_float, default=SHUTDOWN_TIMEOUT_S, metavar="SECONDS",
                   help="after SIGTERM / Ctrl-C, cancel requests still running after this long "
                        f"(default {SHUTDOWN_TIMEOUT_S:g})")


def listen(host: str, port: int) -> list[socket.socket]:
    """Listening TCP sockets on every address ``host`` resolves to (``""``: all interfaces; ``localhost``: its
    IPv4 and IPv6 addresses, as uvicorn binds them), all on one port (``port`` 0: a free one, see
    ``getsockname()``); ``OSError`` naming the address when it is taken or not this machine's."""
    sockets: list[socket.socket] = []
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in dict.fromkeys(infos):
            if sockets:  # port 0: every address on the port the first one got
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            try:
                sock = socket.socket(family, kind, proto)
            except OSError:  # an address family this machine lacks (no IPv6)
                continue
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(2048)  # listening now: a second server on this port fails here, not after loading
        if not sockets:
            raise OSError(f"no usable address for {host!r}")
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sockets


def run_cli(args: argparse.Namespace) -> int:
    import uvicorn

    sockets = listen(args.host, args.port)  # before the model loads: a taken port fails at once; port 0 gets one
    try:
        app = create_app(args.checkpoint, device=args.device, backend=args.backend, precision=args.precision,
                         max_body_bytes=args.max_body_bytes, max_batch=args.max_batch,
                         max_wait_ms=args.max_wait_ms, body_timeout=args.body_timeout,
                         heavy_workers=args.heavy_workers)
        host, port = sockets[0].getsockname()[:2]
        where = f"[{host}]" if ":" in host else host
        print(f"sketchgraph serve: drawing page at http://{where}:{port}/  (API docs at /docs)", flush=True)
        try:
            config = uvicorn.Config(app, log_level="info", timeout_graceful_shutdown=args.shutdown_timeout)
            uvicorn.Server(config).run(sockets=sockets)
        except KeyboardInterrupt:  # Ctrl-C: uvicorn has shut down cleanly and re-raises the signal
            pass
    finally:
        for sock in sockets:
            sock.close()
    return 0
