"""uvicorn's h11 HTTP protocol with a deadline on each request's header block.

uvicorn times out an idle keep-alive connection, but not a client that sends a request's headers slowly, a byte at a
time, or never ends them: each such connection is held open for ever, and a few hundred of them use up the
server's file descriptors (a "slowloris"). ``header_timeout_protocol(seconds)`` gives a protocol class that closes
a connection whose next request's header block is not complete ``seconds`` after the connection opened or its last
response was sent. A request whose headers did arrive is then the body timeout's business (``BodyLimit``, 408).

The class is h11's, whatever else is installed (``httptools``, which ``uvicorn[standard]`` brings, would be picked
by ``http="auto"`` and has no such deadline): the model, not HTTP parsing, is what a request here costs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .middleware import HEADER_TIMEOUT_S

__all__ = ["header_timeout_protocol"]

_log = logging.getLogger("uvicorn.error")


class _HeaderDeadline(H11Protocol):
    """``H11Protocol`` closing a connection whose request headers are not complete within ``header_timeout``
    seconds of the connection opening, of the previous response, or of the end of the previous request when that
    came after its response (set by ``header_timeout_protocol``)."""

    header_timeout: float = HEADER_TIMEOUT_S
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        self._arm()  # the next request's header block; before the base class handles a pipelined one
        super().on_response_complete()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # the request line and headers are in
            self._disarm()
        elif self._header_timer is None and not self.transport.is_closing():
            # back to waiting for a request with no deadline running: a request whose body ended after its response
            # (an early answer that kept the connection) re-armed nothing
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            client = f"{self.client[0]}:{self.client[1]} - " if self.client else ""
            _log.info("%sno complete request headers within %g s: connection closed", client, self.header_timeout)
            self.transport.close()


def header_timeout_protocol(seconds: float = HEADER_TIMEOUT_S) -> type[H11Protocol]:
    """The protocol class for ``uvicorn.Config(http=...)``: h11, with a deadline of ``seconds`` (> 0) on each
    request's header block."""
    if not 0 < seconds < float("inf"):
        raise ValueError(f"header_timeout must be a positive number of seconds, got {seconds}")
    return type("H11WithHeaderDeadline", (_HeaderDeadline,), {"header_timeout": float(seconds)})
