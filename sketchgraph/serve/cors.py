"""Cross-origin calls to the API from web pages served elsewhere (CORS): ``sketchgraph serve --cors-origin``.

By default a browser lets only the server's own drawing page call ``POST /predict``: a page from another origin
(your web app on ``http://localhost:3000``, a site on ``https://example.org``) has its requests blocked by the
browser, because the answers carry no ``Access-Control-Allow-Origin`` header. ``allow_origins(app, origins)``
allows the pages of the given origins (``*``: any page) to call every endpoint:

- a browser's preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from an allowed origin gets ``200``
  allowing ``GET``, ``HEAD`` and ``POST`` with a ``Content-Type`` header (and, for a page on a public address
  calling a server on a private one, ``Access-Control-Allow-Private-Network``); from another origin, ``400``
  ``Disallowed CORS origin``, and the browser blocks the call;
- every answer to an allowed origin, errors included (``408``, ``413``, ``415``, ``422``, ``503``), carries
  ``Access-Control-Allow-Origin``, so the page can read the error's ``detail``; ``Retry-After`` is exposed to it.

No cookies or credentials are involved (the API has none), so ``*`` is safe to use for a public demo.

An origin is ``scheme://host[:port]``, as a browser sends it in its ``Origin`` header. ``origin(text)`` writes what
a user types the way the browser does (lower-case scheme and host, no default port, no trailing ``/``), since the
header is matched exactly, and refuses anything that cannot match (a path, a query, another scheme, ``null``) with
a ``ValueError`` saying why.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

__all__ = ["ANY_ORIGIN", "origin", "allow_origins", "ALLOWED_METHODS", "ALLOWED_HEADERS", "EXPOSED_HEADERS"]

ANY_ORIGIN = "*"
ALLOWED_METHODS = ("GET", "HEAD", "POST")
ALLOWED_HEADERS = ("Content-Type",)  # the only header a call needs beyond those browsers always allow
EXPOSED_HEADERS = ("Retry-After",)  # readable by the page: the 503 for too many heavy drawings has it
MAX_AGE_S = 600  # how long a browser may reuse a preflight's answer
_DEFAULT_PORTS = {"http": 80, "https": 443}
_EXAMPLE = "e.g. http://localhost:3000 or https://example.org"


def origin(text: str) -> str:
    """The origin ``text`` names, written as a browser's ``Origin`` header gives it (``HTTP://LocalHost:80/`` ->
    ``http://localhost``), or ``*`` (any origin).

    Raises ``ValueError`` saying what is wrong when ``text`` is not an http(s) origin: another scheme, ``null`` (the
    origin of a page opened from a file, shared by every such page), user info, a path, a query, a fragment, no
    host, or a bad port.
    """
    raw = text.strip()
    if raw == ANY_ORIGIN:
        return ANY_ORIGIN
    if raw.lower() == "null":
        raise ValueError(f"{text!r}: 'null' is the origin of every page opened from a file (file://) or sandboxed; "
                         "serve your page over http, or allow any origin with *")
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not raw[len(parts.scheme):].startswith("://"):
        raise ValueError(f"{text!r} is not an origin: it must be http://HOST[:PORT] or https://HOST[:PORT] "
                         f"({_EXAMPLE}), or * for any")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{text!r}: an origin has no user name or password")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "?" in raw or "#" in raw:
        raise ValueError(f"{text!r}: an origin has no path, query or fragment; browsers send "
                         f"{scheme}://{parts.netloc.lower()}")
    host = parts.hostname
    if not host:
        raise ValueError(f"{text!r}: no host ({_EXAMPLE})")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{text!r}: the port must be a number in 0..65535") from None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    return f"{scheme}://{netloc}"


def allow_origins(app: ASGIApp, origins: Iterable[str]) -> list[str]:
    """Let pages of ``origins`` (see ``origin``; ``*`` among them: any page) call ``app`` from a browser, as the
    module docstring says. Call it after every other ``add_middleware``, so the CORS layer is the outermost and
    its headers reach every answer. Returns the origins allowed, as matched (``[]``: nothing added, the app
    answers same-origin pages only); ``ValueError`` for an origin that is not one."""
    allowed = list(dict.fromkeys(origin(o) for o in origins))
    if ANY_ORIGIN in allowed:
        allowed = [ANY_ORIGIN]
    if allowed:
        app.add_middleware(  # type: ignore[attr-defined]
            CORSMiddleware, allow_origins=allowed, allow_methods=list(ALLOWED_METHODS),
            allow_headers=list(ALLOWED_HEADERS), expose_headers=list(EXPOSED_HEADERS), allow_private_network=True,
            max_age=MAX_AGE_S)
    return allowed
