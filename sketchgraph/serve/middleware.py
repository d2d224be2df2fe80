"""ASGI middleware around the app: what is answered before the app reads a request, or instead of it.

- ``BodyLimit``: reads a request's body first (``413`` too large, ``415`` compressed, ``408`` too slow);
- ``ShutdownReply``: a request cancelled before its answer began (the server shutting down) gets a JSON ``503``;
- ``HeadAsGet``: ``HEAD`` is answered wherever ``GET`` is, and a ``405`` on such a path allows both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

__all__ = ["BodyLimit", "HeadAsGet", "ShutdownReply", "send_json", "BODY_TIMEOUT_S", "HEADER_TIMEOUT_S", "CLOSE",
           "SHUTTING_DOWN"]

BODY_TIMEOUT_S = 30.0  # a request body must have fully arrived this long after the request began (408 after)
HEADER_TIMEOUT_S = 10.0  # a request's header block must be complete this long after the connection opened or the last
# response (sketchgraph serve --header-timeout; sketchgraph.serve.protocol)
CLOSE = (b"connection", b"close")
SHUTTING_DOWN = "server shutting down; retry"

Headers = tuple[tuple[bytes, bytes], ...]


async def send_json(send: Any, status: int, detail: str, headers: Headers = ()) -> None:
    """Answer ``{"detail": detail}`` with ``status`` (and ``headers``) through the ASGI ``send``."""
    body = json.dumps({"detail": detail}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    """The body received so far exceeds the limit."""


class BodyLimit:
    """ASGI middleware that reads a request's body before the app sees it, and answers instead of the app:

    - ``415`` when a body has a content coding other than ``identity`` (``Content-Encoding: gzip``, ...):
      the app reads plain JSON only, and a compressed body would otherwise be a misleading "not UTF-8" ``422``;
    - ``413`` when the body exceeds ``max_bytes`` (by its ``Content-Length`` or by the bytes actually received);
    - ``408`` when the body has not fully arrived ``timeout`` seconds after the request began (a client that
      sends its headers and then goes quiet, or trickles bytes); without it such a client holds its
      connection, and a graceful shutdown, forever;
    - ``400`` for a ``Content-Length`` that is not a number (a server that checks the header itself, as uvicorn
      does, answers this before the app).

    The ``408``, ``413`` and ``415`` close the connection (``Connection: close``): the rest of a body that was
    not read is not waited for, however slowly it trickles in.
    """

    def __init__(self, app: Any, max_bytes: int, timeout: float = BODY_TIMEOUT_S):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

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
            return await send_json(
                send, 415, f"request bodies with Content-Encoding {', '.join(codings)!r} are not supported: "
                           "send the JSON uncompressed (identity)", ((b"accept-encoding", b"identity"), CLOSE))
        too_big = f"request body larger than {self.max_bytes} bytes"
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                return await send_json(send, 400, "invalid Content-Length header", (CLOSE,))
            if size > self.max_bytes:
                return await send_json(send, 413, too_big, (CLOSE,))
        try:
            async with asyncio.timeout(self.timeout):
                body = await self._read(receive)
        except _TooLarge:
            return await send_json(send, 413, too_big, (CLOSE,))
        except TimeoutError:
            return await send_json(send, 408, f"request body not received within {self.timeout:g} s", (CLOSE,))
        if body is None:
            return
        pending = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay() -> dict:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)


class ShutdownReply:
    """ASGI middleware: a request cancelled before its response started gets ``503`` ``{"detail": "server
    shutting down; retry"}`` with ``Connection: close``, and its task ends there.

    A server shutting down gracefully cancels the requests still running when its timeout expires
    (``uvicorn --timeout-graceful-shutdown``, ``sketchgraph serve --shutdown-timeout``), a request still receiving
    its body or one waiting for the model alike; without this, uvicorn answers them a text/plain ``500``. The
    cancellation has gone through the app by then, and the request is answered: it is not raised further, since
    uvicorn would log each such request as an application error with its traceback (uvicorn says once how many it
    cancelled; the access log shows each 503). A response already started (its status sent) cannot be replaced:
    the cancellation goes on, and uvicorn closes its connection.
    """

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def watched(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except asyncio.CancelledError:
            if started:
                raise
            with contextlib.suppress(Exception):  # a client already gone: nobody to answer
                await send_json(send, 503, SHUTTING_DOWN, (CLOSE,))


def _allow_head(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``HEAD`` added to an ``Allow`` that lists ``GET`` without it."""
    out = []
    for name, value in headers:
        if name.lower() == b"allow":
            methods = [m.strip() for m in value.split(b",") if m.strip()]
            if b"GET" in methods and b"HEAD" not in methods:
                value = b", ".join([*methods, b"HEAD"])
        out.append((name, value))
    return out


class HeadAsGet:
    """ASGI middleware: ``HEAD`` is answered as ``GET`` is, without the body (same status and headers,
    ``Content-Length`` included), as RFC 9110 requires wherever ``GET`` works. A path with no ``GET`` still
    answers ``405``; a ``405`` whose ``Allow`` lists ``GET`` lists ``HEAD`` too."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        head = scope["method"] == "HEAD"

        async def answer(message: dict) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                message = {**message, "headers": _allow_head(list(message.get("headers", [])))}
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"} if head else scope, receive, answer)
