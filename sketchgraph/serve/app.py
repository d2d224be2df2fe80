"""The HTTP service: a JSON prediction API and a drawing page.

Endpoints (OpenAPI schema at ``/openapi.json``, with the request's rules and every answer's body; browsable and
callable at ``/docs``: Swagger UI, its script served by this app, never by a CDN, so the page works offline):

- ``POST /predict`` ``{"drawing": [[xs, ys], ...] | [[xs, ys, ts], ...], "top_k": 5}`` ->
  ``{"predictions": [{"label": str, "score": float}, ...]}`` (best first, scores are probabilities).
  Coordinates are raw canvas pixels (or already simplified data); the checkpoint's preprocessing
  normalises them. ``ts`` (ms) are accepted and ignored by the model. ``top_k`` is any positive integer (default
  5); above the number of classes it gives them all, as ``SketchClassifier.predict`` does. A Quick, Draw! record's
  other keys (``word``, ``countrycode``, ``key_id``, ``recognized``, ``timestamp``) are accepted and ignored; other
  fields are refused (``422`` naming the field, and the field meant when the name is a near miss: ``topk`` ->
  ``top_k``).
- ``GET /healthz`` -> ``{"status": "ok", "model": name, "classes": count, "max_points": ..., "max_strokes": ...,
  "max_ink": ..., "max_coordinate": ..., "max_time": ..., "max_body_bytes": ...}``: the drawing limits below, and
  the body limit.
- ``GET /classes`` -> ``{"classes": [...]}``.
- ``GET /stats`` -> ``{"requests": n, "model_calls": m, "mean_batch": n / m}`` (request batching at work).
- ``GET /`` -> the drawing page (``static/index.html``, served here only; self-contained, no CDN).

Cross-origin calls: by default only the drawing page served here may call the API from a browser;
``create_app(cors_origins=[...])`` (``sketchgraph serve --cors-origin ORIGIN``) lets pages of other origins call it
too (``sketchgraph.serve.cors``).

Every ``GET`` endpoint (the static files and ``/docs`` too) also answers ``HEAD``: the same status and headers,
no body (RFC 9110 requires ``HEAD`` wherever ``GET`` works); a ``405`` there says ``Allow: GET, HEAD``.

A drawing's limits: at most ``max_points`` points (``MAX_POINTS`` = 20,000) and ``max_strokes`` strokes
(``MAX_STROKES`` = 2,000, empty ones included; real drawings have a few dozen at most); coordinates of magnitude
at most ``MAX_COORDINATE`` = 1e9; and at most ``MAX_INK`` = 2,000,000 px of strokes once the drawing is scaled so
that its larger side is 255 px (``sketchgraph.preprocess``; real drawings have about 1,000, while 20,000 random
points across a canvas have about 2.7 million). Each stroke is ``[xs, ys]`` or ``[xs, ys, ts]``, all strokes
alike, the lists of a stroke of one length.

Bad input never gives a 500. A malformed drawing (wrong nesting, NaN / infinity, a coordinate that is a string or
a boolean instead of a JSON number, empty, lists of different lengths, over a limit) is ``422``; so is a body that
cannot be read as JSON (a syntax error: json's reason with line and column; invalid UTF-8, an integer of over
4,300 digits, nesting too deep), and one holding more ``[`` and ``{`` (JSON arrays and objects; those inside
strings count too) than a drawing of ``max_strokes`` strokes needs (counted before parsing, which would hold the
event loop: ``sketchgraph.serve.parsing``). A body
larger than ``max_body_bytes`` (``MAX_BODY_BYTES`` = 1 MiB by default, checked against ``Content-Length`` and
against the bytes actually received) is ``413``; a body sent with another ``Content-Type`` than
``application/json`` (curl's ``-d`` default, a form) is ``415`` saying so, and so is one sent with a
``Content-Encoding`` other than ``identity`` (gzip, br, ...: only uncompressed bodies are read). A body that has
not fully arrived ``body_timeout`` seconds after the request began (``BODY_TIMEOUT_S`` = 30 s by default: 1 MiB
needs about 35 KB/s) is ``408``. The ``408``, ``413`` and ``415`` close the connection, so a client that has sent
its headers cannot hold a connection open by sending its body slowly or not at all. (A client that never
completes its header block is the HTTP server's business, before this app sees a request: uvicorn has no deadline
for it, so ``sketchgraph serve`` and ``running_server`` run uvicorn with ``sketchgraph.serve.protocol``'s, which
closes such a connection after ``--header-timeout`` seconds; this app served by plain uvicorn has none. Put a
reverse proxy in front of a server open to the internet all the same.) ``detail`` is a list of ``{loc, msg,
type}`` for a body that is not valid JSON or breaks the schema (``loc`` names where, e.g.
``["body", "drawing", 0, 1, 2]``; a drawing's first wrong value only, and at most ``parsing.MAX_ISSUES`` issues
then one saying how many more), and a sentence for everything else.

Shutdown: the CLI's server gives requests in flight at most ``--shutdown-timeout`` (``SHUTDOWN_TIMEOUT_S`` = 5 s)
to finish after SIGTERM / Ctrl-C, then cancels them; each then gets ``503`` ``{"detail": "server shutting down;
retry"}`` with ``Connection: close`` (``ShutdownReply``), and the server exits without waiting for a heavy drawing
still being simplified for one of them.

Concurrent requests share model calls (``RequestBatcher``, ``sketchgraph.serve.batching``): whatever is
waiting when the model becomes free, up to ``max_batch`` drawings, goes through one call. Each request
gets the result a single call would give (probabilities equal to float rounding); at low load a request
is served alone, with no added wait. Real drawings are simplified with their batch (a few ms each); a heavy one
(more than ``LIGHT_INK`` px of preprocessing work: its ink plus ``INK_PER_STROKE`` per stroke; a legal drawing of
thousands of points can take seconds, some shapes much longer) is simplified first on the batcher's own small pool,
so heavy drawings delay only each other. At most ``max_heavy_waiting`` (``MAX_HEAVY_WAITING`` = 32) heavy drawings
wait for that pool; one more gets ``503`` ``{"detail": "too many large drawings are waiting to be simplified ...;
retry later"}`` with ``Retry-After: 5`` (``BUSY_RETRY_AFTER_S``), while light drawings are still answered. A request
whose client disconnects while it waits is cancelled: a drawing not yet simplified never is, and one still waiting
for the model is left out of its batch (one being simplified runs to the end, its answer unused).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import socket
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Future
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from ..errors import SketchError
from ..options import float_option, int_option
from ..predict import SHIPPED_CHECKPOINT, SketchClassifier, add_classifier_arguments
from ..preprocess import MAX_INK, load_compiled_rdp
from ..sketch import MAX_COORDINATE, MAX_TIME
from .batching import MAX_HEAVY_WAITING, BatcherBusy, BatcherClosed, RequestBatcher
from .cors import ANY_ORIGIN, allow_origins, origin, origins
from .middleware import BODY_TIMEOUT_S, HEADER_TIMEOUT_S, SHUTTING_DOWN, BodyLimit, HeadAsGet, ShutdownReply
from .parsing import DrawingLimits, UnreadableBody, read_drawing
from .schemas import (
    ClassList,
    Health,
    Message,
    PredictRequest,
    PredictResponse,
    Stats,
    Unprocessable,
)

__all__ = ["create_app", "listen", "MAX_BODY_BYTES", "MAX_POINTS", "MAX_STROKES", "MAX_INK", "MAX_COORDINATE",
           "BODY_TIMEOUT_S", "SHUTDOWN_TIMEOUT_S", "MAX_HEAVY_WAITING", "BUSY_RETRY_AFTER_S",
           "configure_parser", "run_cli"]

MAX_BODY_BYTES = 1 << 20  # 1 MiB: ~30,000 points with times as JSON; a drawing is a few KiB
MAX_POINTS = 20_000  # points per drawing before preprocessing (bounds the simplification's work)
MAX_STROKES = 2_000  # strokes per drawing (real ones have a few dozen at most; bounds parsing and preprocessing)
SHUTDOWN_TIMEOUT_S = 5.0  # after SIGTERM / Ctrl-C, in-flight requests get this long before they are cancelled
BUSY_RETRY_AFTER_S = 5  # Retry-After of the 503 a heavy drawing gets while MAX_HEAVY_WAITING others wait
CLIENT_GONE = 499  # the status logged for a request whose client disconnected before its answer (nginx's)
CLOSE_HEADERS = {"connection": "close"}  # an answer after which the client must open a new connection
STATIC = Path(__file__).with_name("static")
DOCS_STATIC = "docs-static"  # where the Swagger UI files are served (relative to the app's root)

_ERRORS: dict[int | str, dict[str, Any]] = {
    408: {"model": Message, "description": "the body did not fully arrive within the body timeout; the "
                                           "connection is closed"},
    413: {"model": Message, "description": "body larger than the limit; the connection is closed"},
    415: {"model": Message, "description": "body not sent as JSON (Content-Type other than application/json or "
                                           "application/*+json), or compressed (Content-Encoding other than "
                                           "identity); the connection is closed"},
    422: {"model": Unprocessable, "description": "a body that is not JSON this server reads, breaks the schema, or "
                                                 "holds a drawing that breaks a rule (see the request body)"},
    503: {"model": Message, "description": "the server is shutting down and stopped this request: retry (another "
                                           "instance, or this one once restarted); the connection is closed. Or: "
                                           "too many large drawings already wait to be simplified; retry after "
                                           "the Retry-After header's seconds"},
}


def drawing_rules(limits: DrawingLimits) -> str:
    """The rules a ``POST /predict`` drawing must keep to, as one paragraph (the request's OpenAPI description)."""
    return (f"A drawing has 1 to {limits.max_strokes:,} strokes, each `[xs, ys]` or `[xs, ys, ts]` (all strokes "
            f"alike: ts everywhere or nowhere), the lists of a stroke of one length; at most {limits.max_points:,} "
            f"points in all; coordinates are JSON numbers (not strings or booleans) of magnitude at most "
            f"{MAX_COORDINATE:,.0f}, and times (ts, in ms; the model does not use them) finite numbers of magnitude at "
            f"most {MAX_TIME:.0e}; and its strokes add up to at most {MAX_INK:,} px once the drawing is scaled so "
            "that its larger side is 255 px (pen-up jumps excluded; real drawings have about 1,000, and 20,000 "
            "random points across a canvas go over it). The body holds at most "
            f"{limits.max_containers:,} '[' and '{{' characters in all, those inside strings included (counted "
            "before it is parsed, as JSON arrays and objects). Each rule "
            "broken gets a 422 saying which; `GET /healthz` gives the limits. The body's fields are `drawing` and "
            "`top_k` (a positive integer, default 5; above the number of classes, every class is returned); a Quick, "
            "Draw! record's `word`, `countrycode`, `key_id`, `recognized` and `timestamp` are accepted and ignored, "
            "so a dataset line can be posted as it is: any other field gets a 422 naming it.")


def _json_media(media: str) -> bool:
    """Whether a ``Content-Type``'s media type (lower case, no parameters) is JSON, as FastAPI reads it."""
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class PageAssets(StaticFiles):
    """The drawing page's scripts and styles (``/static/...``). The page itself is served at ``/`` only: its URLs
    are relative to it, so a copy at ``/static/index.html`` would load nothing (404, as for any other path)."""

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        if Path(path).name.lower() == "index.html":
            return "", None
        return super().lookup_path(path)


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
    max_strokes: int = MAX_STROKES,
    device: str = "cpu",
    backend: str = "dense",
    precision: str = "float32",
    max_batch: int = 64,
    max_wait_ms: float = 0.0,
    body_timeout: float = BODY_TIMEOUT_S,
    heavy_workers: int | None = None,
    max_heavy_waiting: int = MAX_HEAVY_WAITING,
    cors_origins: Sequence[str] = (),
) -> FastAPI:
    """The FastAPI app serving ``classifier_or_checkpoint`` (a ``SketchClassifier``, or a checkpoint
    path / shipped name loaded with ``device``, ``backend`` and ``precision``); limits (``body_timeout``:
    seconds for a request body to arrive) as in the module docstring; ``max_batch``, ``max_wait_ms``,
    ``heavy_workers`` and ``max_heavy_waiting`` configure the ``RequestBatcher`` (``app.state.batcher``).
    ``cors_origins``: web pages of these origins (``*``: any) may call the API from a browser
    (``sketchgraph.serve.cors``; ``app.state.cors_origins`` lists them as matched); none by default."""
    allowed_origins = origins(cors_origins)  # a bad origin fails before the model loads
    if max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be >= 1, got {max_body_bytes}")
    limits = DrawingLimits(max_points, max_strokes)
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
        return RequestBatcher(clf, max_batch=max_batch, max_wait_ms=max_wait_ms, heavy_workers=heavy_workers,
                              max_heavy_waiting=max_heavy_waiting)

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
        # every request has been answered or cancelled by now: answer what is queued, stop the worker thread, and
        # do not wait for a heavy drawing still being simplified (its request is gone)
        await asyncio.to_thread(app.state.batcher.close, finish_heavy=False)

    app = FastAPI(
        title="sketchgraph",
        version=__version__,
        description=(
            "Free-hand sketch recognition with the Multi-Graph Transformer. Draw at `/`.\n\n"
            f"{drawing_rules(limits)} Bodies of at most {max_body_bytes:,} bytes (413 above), arriving "
            f"within {body_timeout:g} s (408 after).\n\n"
            "Errors are JSON `{\"detail\": ...}`: a list of `{loc, msg, type}` for a body that is not valid JSON "
            "or breaks the schema (`loc` names where, e.g. `[\"body\", \"drawing\", 0, 1, 2]`), a sentence for "
            "everything else (a drawing that breaks a rule, 408, 413, 415, 503). A 503 with `Retry-After` says "
            f"that {max_heavy_waiting:,} large drawings already wait to be simplified: retry after that long."),
        lifespan=lifespan,
        docs_url=None,  # FastAPI's own pages load Swagger UI / ReDoc from a CDN: ours is below (ReDoc's page
        redoc_url=None,  # fetches a logo from a CDN even with its script served locally, so there is none)
    )
    app.state.classifier = clf
    app.state.batcher = new_batcher()
    index_html = (STATIC / "index.html").read_text(encoding="utf-8")

    async def unprocessable(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    app.add_exception_handler(SketchError, unprocessable)
    app.add_exception_handler(UnreadableBody, unprocessable)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes each offending input back, which fails to encode for NaN (a 500)
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(BatcherClosed)
    async def closing(request: Request, exc: BatcherClosed) -> JSONResponse:
        return JSONResponse({"detail": SHUTTING_DOWN}, status_code=503, headers=CLOSE_HEADERS)

    @app.exception_handler(BatcherBusy)
    async def busy(request: Request, exc: BatcherBusy) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503,
                            headers={"retry-after": str(BUSY_RETRY_AFTER_S)})

    def openapi() -> dict[str, Any]:
        """FastAPI's schema, plus ``PredictRequest``: ``/predict`` reads its body itself (see ``predict``)."""
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            schema.setdefault("components", {}).setdefault("schemas", {})["PredictRequest"] = \
                PredictRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    request_body = {"description": drawing_rules(limits), "required": True, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}}}

    @app.post("/predict", response_model=PredictResponse, responses=_ERRORS,
              openapi_extra={"requestBody": request_body})
    async def predict(request: Request) -> dict:
        """Classify one drawing; the ``top_k`` most likely classes, best first."""
        # The body is read here, not by FastAPI, which parses and validates it on the event loop: JSON parsing,
        # validation and the drawing's checks run in a thread, and a body too complex to parse quickly is refused
        # unparsed (sketchgraph.serve.parsing). async: a waiting request holds no worker thread, so batches are
        # not capped by the thread pool and the other endpoints stay responsive under load. A heavy drawing's
        # preprocessing (seconds) runs on the batcher's heavy pool, so neither that thread nor the model's waits
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not _json_media(media):
            raise HTTPException(415, f"send the drawing as JSON with 'Content-Type: application/json' "
                                     f"(got {media or 'no Content-Type'!r})", headers=CLOSE_HEADERS)
        body = await request.body()

        def queue() -> Future:
            sketch, top_k = read_drawing(body, limits)
            return batcher().submit(sketch, top_k=top_k)

        future = await asyncio.to_thread(queue)
        preds = await _answer_unless_gone(future, request)
        if preds is None:  # nobody to answer: the work was cancelled, what was not done yet is skipped
            return JSONResponse({"detail": "client disconnected"}, status_code=CLIENT_GONE)
        return {"predictions": [{"label": p.label, "score": p.score} for p in preds]}

    @app.get("/healthz", response_model=Health)
    def healthz() -> Health:
        """Liveness: the model is loaded; also the limits a drawing must keep to."""
        return Health(status="ok", model=clf.name, classes=clf.num_classes, max_points=limits.max_points,
                      max_strokes=limits.max_strokes, max_ink=MAX_INK, max_coordinate=MAX_COORDINATE,
                      max_time=MAX_TIME, max_body_bytes=max_body_bytes)

    @app.get("/stats", response_model=Stats)
    def stats() -> Stats:
        """Requests answered so far, the model calls that answered them, and the mean batch size."""
        n, calls = app.state.batcher.requests, app.state.batcher.batches
        return Stats(requests=n, model_calls=calls, mean_batch=round(n / calls, 3) if calls else None)

    @app.get("/classes", response_model=ClassList)
    def classes() -> ClassList:
        """The class names the model knows, in logit order."""
        return ClassList(classes=clf.classes)

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
    app.mount("/static", PageAssets(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, timeout=body_timeout)
    app.add_middleware(ShutdownReply)  # outside BodyLimit: a request cancelled while its body arrives too
    app.add_middleware(HeadAsGet)
    allow_origins(app, allowed_origins)  # last: outermost, its headers reach every answer
    app.state.cors_origins = allowed_origins
    return app


async def _client_gone(request: Request) -> None:
    """Returns once ``request``'s client has disconnected (its body already read: the next message the server
    gives is ``http.disconnect``, sent when the connection closes or after the response is complete)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _answer_unless_gone(future: Future, request: Request) -> Any:
    """``future``'s result, or ``None`` when the client disconnects first: then ``future`` is cancelled, so the
    batcher skips its drawing (unless its simplification or model call has begun). A cancelled wait (the server
    shutting down) cancels ``future`` too."""
    answer = asyncio.wrap_future(future)
    gone = asyncio.ensure_future(_client_gone(request))
    try:
        await asyncio.wait({answer, gone}, return_when=asyncio.FIRST_COMPLETED)
        if answer.done():
            return answer.result()
        if gone.exception() is not None:  # the connection cannot be watched: wait for the answer regardless
            return await answer
        future.cancel()
        return None
    finally:
        gone.cancel()
        if not answer.done():
            answer.cancel()  # cancels future as well


# ---------------------------------------------------------------------------------- CLI
def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int_option(0, 65535), default=8000, help="port (default 8000)")
    add_classifier_arguments(p)
    p.add_argument("--max-body-bytes", type=int_option(1), default=MAX_BODY_BYTES,
                   help=f"request body limit in bytes (413 above; default {MAX_BODY_BYTES:,}, 1 MiB)")
    p.add_argument("--max-batch", type=int_option(1), default=64,
                   help="most concurrent requests answered by one model call (1: each alone; default 64)")
    p.add_argument("--max-wait-ms", type=float_option(0), default=0.0,
                   help="wait this long for more requests to batch (default 0: only those already waiting)")
    p.add_argument("--heavy-workers", type=int_option(1), default=None,
                   help="threads simplifying heavy drawings, apart from the model's (default: half the CPUs)")
    p.add_argument("--max-heavy-waiting", type=int_option(1), default=MAX_HEAVY_WAITING,
                   help="most heavy drawings waiting to be simplified; more get 503 with Retry-After (default "
                        f"{MAX_HEAVY_WAITING})")
    p.add_argument("--body-timeout", type=float_option(0, above=True), default=BODY_TIMEOUT_S, metavar="SECONDS",
                   help=f"a request body must arrive within this long (408 after; default {BODY_TIMEOUT_S:g})")
    p.add_argument("--header-timeout", type=float_option(0, above=True), default=HEADER_TIMEOUT_S, metavar="SECONDS",
                   help="a request's header block must arrive within this long of the connection opening or of the "
                        f"previous response, else the connection is closed (default {HEADER_TIMEOUT_S:g})")
    p.add_argument("--shutdown-timeout", type=float_option(0), default=SHUTDOWN_TIMEOUT_S, metavar="SECONDS",
                   help="after SIGTERM / Ctrl-C, cancel requests still running after this long: they get 503 "
                        f"(default {SHUTDOWN_TIMEOUT_S:g})")
    p.add_argument("--cors-origin", type=_origin_option, action="append", default=[], metavar="ORIGIN",
                   help="let web pages of this origin call the API from a browser (CORS), e.g. "
                        "http://localhost:3000; repeat for more, * for any (default: only this server's own page)")


def _origin_option(text: str) -> str:
    """argparse type of ``--cors-origin``: ``cors.origin``, its ``ValueError`` as a usage error."""
    try:
        return origin(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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


def _listening_line(host: str, port: int) -> str:
    """Where to browse to: the address listened on; for all interfaces (``0.0.0.0``, ``::``), which is no address
    to browse to, this machine's loopback, saying that other machines reach it by this machine's name or address."""
    wildcard = host in ("0.0.0.0", "::")
    shown = ("127.0.0.1" if host == "0.0.0.0" else "::1") if wildcard else host
    where = f"[{shown}]" if ":" in shown else shown
    line = f"drawing page at http://{where}:{port}/  (API docs at /docs)"
    if wildcard:
        line += f"; listening on all interfaces ({host}): from other machines, use this machine's name or address"
    return line


def run_cli(args: argparse.Namespace) -> int:
    import uvicorn

    from .protocol import header_timeout_protocol

    sockets = listen(args.host, args.port)  # before the model loads: a taken port fails at once; port 0 gets one
    try:
        app = create_app(args.checkpoint, device=args.device, backend=args.backend, precision=args.precision,
                         max_body_bytes=args.max_body_bytes, max_batch=args.max_batch,
                         max_wait_ms=args.max_wait_ms, body_timeout=args.body_timeout,
                         heavy_workers=args.heavy_workers, max_heavy_waiting=args.max_heavy_waiting,
                         cors_origins=args.cors_origin)
        host, port = sockets[0].getsockname()[:2]
        print(f"sketchgraph serve: {_listening_line(host, port)}", flush=True)
        if app.state.cors_origins:
            pages = ("any web page" if app.state.cors_origins == [ANY_ORIGIN]
                     else f"web pages of {', '.join(app.state.cors_origins)}")
            print(f"sketchgraph serve: {pages} may call the API (CORS)", flush=True)
        try:
            config = uvicorn.Config(app, log_level="info", timeout_graceful_shutdown=args.shutdown_timeout,
                                    http=header_timeout_protocol(args.header_timeout))
            uvicorn.Server(config).run(sockets=sockets)
        except KeyboardInterrupt:  # Ctrl-C: uvicorn has shut down cleanly and re-raises the signal
            pass
    finally:
        for sock in sockets:
            sock.close()
    return 0
