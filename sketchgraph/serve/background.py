"""Run an ASGI app with uvicorn in a background thread (tests, benchmarks, notebooks).

    >>> with running_server(create_app(clf)) as url:   # url = "http://127.0.0.1:<free port>"
    ...     httpx.get(url + "/healthz")
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .middleware import HEADER_TIMEOUT_S

__all__ = ["running_server"]


@contextmanager
def running_server(app: Any, host: str = "127.0.0.1", port: int = 0, *, timeout: float = 30.0,
                   lifespan: bool = False, shutdown_timeout: float | None = None,
                   header_timeout: float = HEADER_TIMEOUT_S) -> Iterator[str]:
    """Serve ``app`` on ``host:port`` (``port=0``: a free port) until the block ends; yields the base URL.

    ``lifespan``: run the app's startup and shutdown too (``sketchgraph serve`` does; off by default). When the
    block ends, the requests still running get ``shutdown_timeout`` seconds to finish before they are cancelled
    (``None``: as long as they take), as ``sketchgraph serve --shutdown-timeout`` gives them after SIGTERM; the
    block's end waits for the server to stop, at most ``timeout`` seconds. ``header_timeout``: as ``sketchgraph
    serve --header-timeout`` (``sketchgraph.serve.protocol``).

    Raises ``RuntimeError`` when the server does not start within ``timeout`` seconds.
    """
    import uvicorn

    from .protocol import header_timeout_protocol

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on" if lifespan else "off",
                            access_log=False, timeout_graceful_shutdown=shutdown_timeout,
                            http=header_timeout_protocol(header_timeout))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{host}:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout)
