"""Cross-origin calls to the HTTP service (CORS): ``create_app(cors_origins=...)``, ``serve --cors-origin``.

The real browser's side (a page of another origin calling the API, allowed and not) is in ``test_browser.py``.
"""

from __future__ import annotations

import argparse
import re

import pytest
from fastapi.testclient import TestClient

from sketchgraph.predict import SketchClassifier
from sketchgraph.serve import app as app_mod
from sketchgraph.serve import create_app
from sketchgraph.serve.cors import ANY_ORIGIN, origin

HOUSE = [[[100, 300, 300, 100, 100], [300, 300, 150, 150, 300]], [[90, 200, 310], [160, 60, 160]]]
MINE, OTHER = "http://localhost:3000", "https://elsewhere.example"
PREFLIGHT = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}
LIMIT = 2048


@pytest.fixture(scope="module")
def clf(tiny_checkpoint) -> SketchClassifier:
    return SketchClassifier.from_pretrained(tiny_checkpoint)


@pytest.fixture(scope="module")
def allowed(clf):
    """Pages of ``MINE`` (given as a user might type it) and of https://example.org may call the API."""
    with TestClient(create_app(clf, max_body_bytes=LIMIT,
                               cors_origins=["HTTP://LocalHost:3000/", "https://example.org"])) as c:
        yield c


@pytest.fixture(scope="module")
def closed(clf):
    """The default: no other origin."""
    with TestClient(create_app(clf, max_body_bytes=LIMIT)) as c:
        yield c


@pytest.mark.parametrize("text, want", [
    ("http://localhost:3000", "http://localhost:3000"),
    ("HTTP://LocalHost:3000/", "http://localhost:3000"),
    ("https://Example.org:443", "https://example.org"),
    ("http://example.org:80/", "http://example.org"),
    ("https://example.org:8443", "https://example.org:8443"),
    ("http://example.org:443", "http://example.org:443"),  # 443 is https's default, not http's
    ("http://[::1]:8080", "http://[::1]:8080"),
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
    ("http://Bücher.de:8080", "http://xn--bcher-kva.de:8080"),  # browsers send the IDNA form
    ("http://[0:0:0:0:0:0:0:1]:3000", "http://[::1]:3000"),  # and IPv6 compressed
    ("http://example.org.", "http://example.org."),
    ("  *  ", "*"),
])
def test_an_origin_is_written_as_the_browser_sends_it(text, want):
    assert origin(text) == want


@pytest.mark.parametrize("text, says", [
    ("localhost:3000", "is not an origin: it must be http://HOST[:PORT]"),
    ("ftp://example.org", "is not an origin"),
    ("http:/example.org", "is not an origin"),
    ("", "is not an origin"),
    ("null", "opened from a file"),
    ("http://example.org/app", "no path, query or fragment; browsers send http://example.org"),
    ("http://Example.org:8080/app/", "browsers send http://example.org:8080"),
    ("http://example.org?x=1", "no path, query or fragment"),
    ("http://example.org/#top", "no path, query or fragment"),
    ("http://user:secret@example.org", "no user name or password"),
    ("http://:3000", "no host"),
    ("http://example.org:99999", "the port must be a number in 0..65535"),
    ("http://example.org:http", "the port must be a number"),
    ("http://[::1", "an IPv6 host goes in brackets"),
    ("https://*", "no wildcards"),
    ("http://*.example.org", "no wildcards"),
    ("http://127.1", "write the IPv4 address in full"),
    ("http://1.2.3.4.5", "write the IPv4 address in full"),
    ("http://a.com,http://b.com", "one origin per value; give each its own --cors-origin"),
    ("http://a.com http://b.com", "one origin per value"),
    ("http:///x", "no host"),
])
def test_what_cannot_be_an_origin_is_refused_saying_why(text, says):
    with pytest.raises(ValueError, match="^" + re.escape(repr(text))) as err:
        origin(text)
    assert says in str(err.value)


def test_the_origins_allowed_are_listed_as_matched(allowed, closed, clf):
    assert allowed.app.state.cors_origins == [MINE, "https://example.org"]
    assert closed.app.state.cors_origins == []
    with TestClient(create_app(clf, cors_origins=[MINE, "*", OTHER])) as c:
        assert c.app.state.cors_origins == [ANY_ORIGIN]  # * covers the rest
    with TestClient(create_app(clf, cors_origins=MINE)) as c:  # one origin as a string, not its characters
        assert c.app.state.cors_origins == [MINE]


def test_a_bad_origin_fails_before_the_model_loads(tmp_path):
    with pytest.raises(ValueError, match="no path, query or fragment"):
        create_app(tmp_path / "no-such-checkpoint", cors_origins=["http://example.org/app"])


def test_preflight_from_an_allowed_origin(allowed):
    r = allowed.options("/predict", headers={"origin": MINE, **PREFLIGHT})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == MINE
    assert {m.strip() for m in r.headers["access-control-allow-methods"].split(",")} == {"GET", "HEAD", "POST"}
    assert "content-type" in r.headers["access-control-allow-headers"].lower()
    assert int(r.headers["access-control-max-age"]) > 0
    assert "Origin" in r.headers["vary"]  # caches keep one answer per origin


def test_preflight_from_another_origin_is_refused(allowed, closed):
    r = allowed.options("/predict", headers={"origin": OTHER, **PREFLIGHT})
    assert r.status_code == 400 and r.text == "Disallowed CORS origin"
    assert "access-control-allow-origin" not in r.headers
    r = closed.options("/predict", headers={"origin": MINE, **PREFLIGHT})  # no CORS at all: the route is POST only
    assert r.status_code == 405 and "access-control-allow-origin" not in r.headers


def test_a_preflight_that_declares_a_body_closes_the_connection(allowed):
    """Browsers send none; a client could trickle one in past the body timeout, which the CORS layer (answering
    before ``BodyLimit``) does not apply: the answer closes the connection instead."""
    for who in (MINE, OTHER):
        for extra in ({"content-length": "100000"}, {"transfer-encoding": "chunked"}):
            r = allowed.options("/predict", headers={"origin": who, **PREFLIGHT, **extra})
            assert r.headers["connection"] == "close"
    r = allowed.options("/predict", headers={"origin": MINE, **PREFLIGHT})
    assert "connection" not in r.headers  # a browser's preflight keeps its connection


def test_a_trickled_preflight_body_cannot_hold_a_real_connection(clf):
    """On a real server: the preflight is answered and the connection closed, though its body never comes."""
    import socket

    from sketchgraph.serve import running_server

    with running_server(create_app(clf, body_timeout=60, cors_origins=[MINE])) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"OPTIONS /predict HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n"
                         b"Access-Control-Request-Method: POST\r\nContent-Length: 100000\r\n\r\nab")
            answer = b""
            while chunk := sock.recv(65536):  # ends when the server closes, long before the 60 s body timeout
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ") and b"connection: close" in answer.lower()


def test_preflight_for_a_method_or_header_not_needed_is_refused(allowed):
    r = allowed.options("/predict", headers={"origin": MINE, "access-control-request-method": "DELETE"})
    assert r.status_code == 400 and "method" in r.text
    r = allowed.options("/predict", headers={"origin": MINE, **PREFLIGHT,
                                             "access-control-request-headers": "content-type, x-secret"})
    assert r.status_code == 400 and "headers" in r.text


def test_a_public_page_may_call_a_server_on_a_private_network(allowed):
    r = allowed.options("/predict", headers={"origin": "https://example.org", **PREFLIGHT,
                                             "access-control-request-private-network": "true"})
    assert r.status_code == 200 and r.headers["access-control-allow-private-network"] == "true"


def test_a_prediction_for_an_allowed_origin_carries_the_header(allowed, clf):
    r = allowed.post("/predict", json={"drawing": HOUSE, "top_k": 3}, headers={"origin": MINE})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == MINE and "Origin" in r.headers["vary"]
    assert r.headers["access-control-expose-headers"] == "Retry-After"
    want = clf.predict(HOUSE, top_k=3)
    assert [p["label"] for p in r.json()["predictions"]] == [p.label for p in want]
    assert [p["score"] for p in r.json()["predictions"]] == pytest.approx([p.score for p in want], abs=1e-5)


def test_every_answer_varies_by_origin_when_cors_is_on(allowed):
    """A cache must not give a same-origin answer (no ``Access-Control-Allow-Origin``) to a page of another origin:
    with CORS on, answers without an ``Origin`` in the request say ``Vary: Origin`` too, static files included."""
    for path in ("/healthz", "/static/app.js", "/"):
        r = allowed.get(path)
        assert r.status_code == 200 and "Origin" in r.headers["vary"], path


def test_other_origins_and_the_default_app_get_no_header(allowed, closed):
    """The server still answers (a browser, not the server, blocks the page from reading it)."""
    for client, who in ((allowed, OTHER), (closed, MINE)):
        r = client.post("/predict", json={"drawing": HOUSE}, headers={"origin": who})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    r = closed.post("/predict", json={"drawing": HOUSE})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers and "vary" not in r.headers


@pytest.mark.parametrize("call, status", [
    (lambda c, h: c.post("/predict", json={"drawing": []}, headers=h), 422),
    (lambda c, h: c.post("/predict", content=b"{", headers={**h, "content-type": "application/json"}), 422),
    (lambda c, h: c.post("/predict", json={"drawing": [[[0] * 1000, [0] * 1000]]}, headers=h), 413),
    (lambda c, h: c.post("/predict", content=b"drawing=1", headers={**h, "content-type": "text/plain"}), 415),
    (lambda c, h: c.get("/healthz", headers=h), 200),
    (lambda c, h: c.head("/classes", headers=h), 200),
    (lambda c, h: c.get("/no-such-page", headers=h), 404),
])
def test_every_answer_to_an_allowed_origin_carries_the_header(allowed, call, status):
    """Errors too, so the page can read their detail."""
    r = call(allowed, {"origin": MINE})
    assert r.status_code == status
    assert r.headers["access-control-allow-origin"] == MINE
    if status != 200 and r.request.method != "HEAD":
        assert r.json()["detail"]


def test_any_origin(clf):
    with TestClient(create_app(clf, cors_origins=["*"])) as c:
        pre = c.options("/predict", headers={"origin": OTHER, **PREFLIGHT})
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "*"
        r = c.post("/predict", json={"drawing": HOUSE}, headers={"origin": OTHER})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"


def test_cli_takes_origins_and_refuses_what_is_not_one(capsys):
    parser = argparse.ArgumentParser()
    app_mod.configure_parser(parser)
    assert parser.parse_args([]).cors_origin == []
    args = parser.parse_args(["--cors-origin", "HTTP://LocalHost:3000/", "--cors-origin", "*"])
    assert args.cors_origin == [MINE, "*"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--cors-origin", "localhost:3000"])
    assert "argument --cors-origin: 'localhost:3000' is not an origin" in capsys.readouterr().err


def test_cli_passes_the_origins_to_the_app_and_says_so(tiny_checkpoint, monkeypatch, capsys):
    import uvicorn

    seen = {}

    def run(server, sockets):
        seen["app"] = server.config.app
        raise KeyboardInterrupt

    monkeypatch.setattr(uvicorn.Server, "run", run)
    parser = argparse.ArgumentParser()
    app_mod.configure_parser(parser)
    base = ["--checkpoint", str(tiny_checkpoint), "--port", "0"]
    assert app_mod.run_cli(parser.parse_args([*base, "--cors-origin", MINE, "--cors-origin", OTHER])) == 0
    assert seen["app"].state.cors_origins == [MINE, OTHER]
    assert f"web pages of {MINE}, {OTHER} may call the API (CORS)" in capsys.readouterr().out
    assert app_mod.run_cli(parser.parse_args([*base, "--cors-origin", "*"])) == 0
    assert "any web page may call the API (CORS)" in capsys.readouterr().out
    assert app_mod.run_cli(parser.parse_args(base)) == 0
    assert seen["app"].state.cors_origins == [] and "CORS" not in capsys.readouterr().out
