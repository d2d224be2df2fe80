"""Cross-origin calls to the API from web pages served elsewhere (CORS): ``sketchgraph serve --cors-origin``.

By default a browser lets only the server's own drawing page call ``POST /predict``: a page from another origin
(your web app on ``http://localhost:3000``, a site on ``https://example.org``) has its requests blocked by the
browser, because the answers carry no ``Access-Control-Allow-Origin`` header. ``allow_origins(app, origins(...))``
allows the pages of the given origins (``*``: any page) to call every endpoint:

- a browser's preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from an allowed origin gets ``200``
  allowing ``GET``, ``HEAD`` and ``POST`` with a ``Content-Type`` header (and, for a page on a public address
  calling a server on a private one, ``Access-Control-Allow-Private-Network``); from another origin, ``400``
  ``Disallowed CORS origin``, and the browser blocks the call;
- every answer to an allowed origin, errors included (``408``, ``413``, ``415``, ``422``, ``503``; not a ``500``,
  the server's own failure, which Starlette answers outside every middleware), carries ``Access-Control-Allow-Origin``,
  so the page can read the error's ``detail``; ``Retry-After`` is exposed to it;
- a preflight that declares a body (browsers send none) is answered with ``Connection: close``, so no client can hold
  a connection open by trickling one in (the body timeout of ``BodyLimit`` never sees a preflight).

No cookies or credentials are involved (the API has none), so ``*`` is safe to use for a public demo.

An origin is ``scheme://host[:port]``, as a browser sends it in its ``Origin`` header. ``origin(text)`` writes what
a user types the way the browser does (lower-case scheme and host, a non-ASCII host name in IDNA, an IPv6 address
compressed, no default port, no trailing ``/``), since the header is matched exactly, and refuses anything that
cannot match (a path, a query, another scheme, ``null``, a wildcard, an IPv4 address not in full) with a
``ValueError`` saying why.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp

__all__ = ["ANY_ORIGIN", "origin", "origins", "allow_origins", "ALLOWED_METHODS", "ALLOWED_HEADERS", "EXPOSED_HEADERS"]

ANY_ORIGIN = "*"
ALLOWED_METHODS = ("GET", "HEAD", "POST")
ALLOWED_HEADERS = ("Content-Type",)  # the only header a call needs beyond those browsers always allow
EXPOSED_HEADERS = ("Retry-After",)  # readable by the page: the 503 for too many heavy drawings has it
MAX_AGE_S = 600  # how long a browser may reuse a preflight's answer
_DEFAULT_PORTS = {"http": 80, "https": 443}
_EXAMPLE = "e.g. http://localhost:3000 or https://example.org"
_HOST = re.compile(r"[a-z0-9_.-]+")


def origin(text: str) -> str:
    """The origin ``text`` names, written as a browser's ``Origin`` header gives it (``HTTP://LocalHost:80/`` ->
    ``http://localhost``, ``http://bücher.de`` -> ``http://xn--bcher-kva.de``, ``http://[0:0:0:0:0:0:0:1]`` ->
    ``http://[::1]``), or ``*`` (any origin).

    Raises ``ValueError`` saying what is wrong when ``text`` is not one literal http(s) origin: another scheme,
    ``null`` (the origin of a page opened from a file, shared by every such page), several origins in one value,
    user info, a path, a query, a fragment, no host, a wildcard or other character a host cannot have, an IPv4
    address not written in full (``127.1``), or a bad port.
    """
    raw = text.strip()
    if raw == ANY_ORIGIN:
        return ANY_ORIGIN
    if raw.lower() == "null":
        raise ValueError(f"{text!r}: 'null' is the origin of every page opened from a file (file://) or sandboxed; "
                         "serve your page over http, or allow any origin with *")
    if "," in raw or len(raw.split()) > 1:
        raise ValueError(f"{text!r}: one origin per value; give each its own --cors-origin")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535", a port that is no number
        what = ("the port must be a number in 0..65535" if "ort" in str(exc)
                else f"{exc} (an IPv6 host goes in brackets: http://[::1]:3000)")
        raise ValueError(f"{text!r}: {what}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not raw[len(parts.scheme):].startswith("://"):
        raise ValueError(f"{text!r} is not an origin: it must be http://HOST[:PORT] or https://HOST[:PORT] "
                         f"({_EXAMPLE}), or * for any")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{text!r}: an origin has no user name or password")
    host = parts.hostname
    if not host:
        raise ValueError(f"{text!r}: no host ({_EXAMPLE})")
    written = f"{scheme}://{_host(text, host)}{'' if port in (None, _DEFAULT_PORTS[scheme]) else f':{port}'}"
    if parts.path not in ("", "/") or parts.query or parts.fragment or "?" in raw or "#" in raw:
        raise ValueError(f"{text!r}: an origin has no path, query or fragment; browsers send {written}")
    return written


def _host(text: str, host: str) -> str:
    """``host`` (lower case, as ``urlsplit`` gives it) as browsers write it in an origin: an IP address in its
    canonical form (IPv6 compressed, in brackets), a name in ASCII (IDNA); ``ValueError`` naming ``text`` for a host
    no browser would send."""
    if ":" in host:
        try:
            return f"[{ipaddress.IPv6Address(host.split('%')[0]).compressed}]"
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} is not an IPv6 address") from None
    try:
        name = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{text!r}: {host!r} is not a host name") from None
    if not _HOST.fullmatch(name):
        raise ValueError(f"{text!r}: a host has letters, digits, '-', '_' and '.' only (no wildcards: allow one "
                         "origin per --cors-origin, or any with *)")
    last = name.rstrip(".").rsplit(".", 1)[-1]
    if last.isdigit() or last.startswith("0x"):  # browsers read such a host as an IPv4 address
        try:
            return str(ipaddress.IPv4Address(name.rstrip(".")))
        except ValueError:
            raise ValueError(f"{text!r}: write the IPv4 address in full, as four numbers (127.0.0.1)") from None
    return name


class _CORS(CORSMiddleware):
    """Starlette's CORS layer, whose preflight answer closes the connection when the preflight declares a body.

    The layer answers a preflight itself, before ``BodyLimit`` (inside it) could time its body out; browsers send
    preflights without one, so a preflight that says a body follows is a client that could trickle it in to hold the
    connection open: after ``Connection: close`` the server stops reading."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        declared = request_headers.get("content-length", "0").strip() not in ("", "0")
        if declared or "transfer-encoding" in request_headers:
            response.headers["connection"] = "close"
        return response


def origins(texts: str | Iterable[str]) -> list[str]:
    """The origins ``texts`` name (one string: one origin), each written by ``origin``, once each, in order; ``["*"]``
    when ``*`` is among them. ``ValueError`` for one that is not an origin."""
    allowed = list(dict.fromkeys(origin(t) for t in ([texts] if isinstance(texts, str) else texts)))
    return [ANY_ORIGIN] if ANY_ORIGIN in allowed else allowed


def allow_origins(app: ASGIApp, allowed: list[str]) -> None:
    """Let pages of ``allowed`` (``origins``' list; ``["*"]``: any page) call ``app`` from a browser, as the module
    docstring says; nothing for ``[]`` (the app answers same-origin pages only). Call it after every other
    ``add_middleware``, so the CORS layer is the outermost and its headers reach every answer."""
    if allowed:
        app.add_middleware(  # type: ignore[attr-defined]
            _CORS, allow_origins=allowed, allow_methods=list(ALLOWED_METHODS),
            allow_headers=list(ALLOWED_HEADERS), expose_headers=list(EXPOSED_HEADERS), allow_private_network=True,
            max_age=MAX_AGE_S)
