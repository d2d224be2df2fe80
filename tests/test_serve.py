"""The HTTP service: endpoints, input validation (422), body limit (413), concurrency, the page."""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import logging
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import httpx
import pytest
from fastapi.testclient import TestClient

from sketchgraph.errors import SketchError
from sketchgraph.predict import SketchClassifier
from sketchgraph.preprocess import MAX_INK
from sketchgraph.serve import RequestBatcher, create_app, parsing, running_server
from sketchgraph.serve import app as app_mod
from sketchgraph.serve.app import STATIC
from sketchgraph.serve.batching import MAX_HEAVY_WAITING, BatcherBusy, BatcherClosed
from sketchgraph.serve.middleware import BodyLimit, ShutdownReply
from sketchgraph.serve.schemas import Message, Unprocessable

HOUSE = [[[100, 300, 300, 100, 100], [300, 300, 150, 150, 300]], [[90, 200, 310], [160, 60, 160]]]
LIMIT = 4096
STROKES = 50  # the module client's stroke limit
SHUTTING_DOWN = {"detail": "server shutting down; retry"}


def drawing(i: int) -> list:
    """A different small drawing for each ``i``: a polygon plus a line."""
    k = 3 + i % 7
    xs = [round(100 + 80 * math.cos(2 * math.pi * j / k + i), 2) for j in range(k + 1)]
    ys = [round(100 + 60 * math.sin(2 * math.pi * j / k + i), 2) for j in range(k + 1)]
    return [[xs, ys], [[10, 50 + 10 * i], [200, 180]]]


@pytest.fixture(scope="module")
def clf(tiny_checkpoint) -> SketchClassifier:
    return SketchClassifier.from_pretrained(tiny_checkpoint)


@pytest.fixture(scope="module")
def client(clf):
    with TestClient(create_app(clf, max_body_bytes=LIMIT, max_points=500, max_strokes=STROKES)) as c:
        yield c


def expected(clf, strokes, top_k=5) -> list[dict]:
    return [{"label": p.label, "score": p.score} for p in clf.predict(strokes, top_k=top_k)]


def assert_same(got: list[dict], want: list[dict]) -> None:
    assert [p["label"] for p in got] == [p["label"] for p in want]
    assert all(abs(a["score"] - b["score"]) < 1e-5 for a, b in zip(got, want))


# ------------------------------------------------------------------------------------------ endpoints
def test_healthz_and_classes(client, clf):
    assert client.get("/healthz").json() == {"status": "ok", "model": clf.name, "classes": 5, "max_points": 500,
                                             "max_strokes": STROKES, "max_ink": 2_000_000, "max_coordinate": 1e9,
                                             "max_time": 1e15, "max_body_bytes": LIMIT}
    assert client.get("/classes").json() == {"classes": clf.classes}


def test_the_limits_healthz_gives_are_the_ones_enforced(client):
    """A drawing at each limit /healthz gives is classified, one just past it gets a 422 naming the limit."""
    limits = client.get("/healthz").json()
    assert limits["max_ink"] == MAX_INK  # exceeding it: test_unsimplifiable_drawing_is_422

    def post(strokes: list) -> httpx.Response:
        return client.post("/predict", json={"drawing": strokes})

    big = limits["max_coordinate"]
    assert post([[[big, 0], [0, 1]]]).status_code == 200
    assert post([[[-big, big], [0, 1]]]).status_code == 200  # a span of 2e9: each value is within the limit
    r = post([[[int(big) + 1, 0], [0, 1]]])  # shown with every digit, never as the limit itself
    assert r.status_code == 422 and r.json() == {
        "detail": "stroke 0: coordinates must be of magnitude <= 1e+09, found 1000000001"}
    dots = [[[i], [i % 7]] for i in range(limits["max_strokes"])]
    assert post(dots).status_code == 200
    r = post([*dots, [[], []]])  # an empty stroke counts
    assert r.status_code == 422 and r.json() == {"detail": f"drawing has {STROKES + 1} strokes; at most {STROKES} "
                                                           "are accepted"}
    n = limits["max_points"]
    assert post([[list(range(n)), list(range(n))]]).status_code == 200
    assert "at most 500" in post([[list(range(n + 1)), list(range(n + 1))]]).json()["detail"]
    ts = limits["max_time"]
    assert post([[[1, 2], [3, 4], [0, ts]]]).status_code == 200
    assert post([[[1, 2], [3, 4], [-ts, ts]]]).status_code == 200
    r = post([[[1, 2], [3, 4], [0, ts * 10]]])
    assert r.status_code == 422 and "1e+15" in r.text
    body = json.dumps({"drawing": HOUSE, "top_k": 1}).encode()
    padded = body[:-1] + b" " * (limits["max_body_bytes"] - len(body)) + b"}"
    for extra, status in ((0, 200), (1, 413)):
        r = client.post("/predict", content=padded + b" " * extra, headers={"content-type": "application/json"})
        assert r.status_code == status, r.text


def test_unsimplifiable_drawing_is_422(clf):
    """Within the default limits but ~3.6M px of ink: preprocessing refuses it, the request gets 422."""
    with TestClient(create_app(clf)) as c:
        assert c.post("/predict", json={"drawing": [[[0, 255] * 240, [0, 255] * 240]]}).status_code == 200
        r = c.post("/predict", json={"drawing": [[[0, 255] * 5000, [0, 255] * 5000]]})
        assert r.status_code == 422 and "too long to simplify" in r.json()["detail"]
        assert f"(limit {c.get('/healthz').json()['max_ink']:,})" in r.json()["detail"]


def test_stats_count_requests_and_model_calls(clf):
    with TestClient(create_app(clf)) as c:
        assert c.get("/stats").json() == {"requests": 0, "model_calls": 0, "mean_batch": None}
        for _ in range(3):
            assert c.post("/predict", json={"drawing": HOUSE}).status_code == 200
        assert c.post("/predict", json={"drawing": []}).status_code == 422  # refused before the model
        assert c.get("/stats").json() == {"requests": 3, "model_calls": 3, "mean_batch": 1.0}


def test_shutdown_stops_the_batcher_and_a_restart_makes_a_new_one(clf):
    app = create_app(clf)
    first = app.state.batcher
    with TestClient(app) as c:
        assert c.post("/predict", json={"drawing": HOUSE}).status_code == 200
    assert first.closed and not first._worker.is_alive()
    with TestClient(app) as c:
        assert c.post("/predict", json={"drawing": HOUSE}).status_code == 200
        assert app.state.batcher is not first and c.get("/stats").json()["requests"] == 1
    assert app.state.batcher.closed
    # used again without its lifespan (no "with"): the first request makes a new batcher instead of a 500
    assert TestClient(app).post("/predict", json={"drawing": HOUSE}).status_code == 200
    assert not app.state.batcher.closed
    app.state.batcher.close()


@pytest.mark.parametrize("strokes", [HOUSE, [[xs, ys, list(range(0, 10 * len(xs), 10))] for xs, ys in HOUSE]])
@pytest.mark.parametrize("top_k", [1, 5, 100, 1000, 10**30])  # above the class count: all of them, as predict gives
def test_predict(client, clf, strokes, top_k):
    r = client.post("/predict", json={"drawing": strokes, "top_k": top_k})
    assert r.status_code == 200, r.text
    assert_same(r.json()["predictions"], expected(clf, HOUSE, top_k))
    assert len(r.json()["predictions"]) == min(top_k, 5)


@pytest.mark.parametrize("empty", [[[], []], [[], [], []]])
def test_an_empty_stroke_of_either_width_is_ignored(client, clf, empty):
    """An empty stroke holds no points and no times: it does not decide whether the drawing's strokes have ts."""
    for strokes in (HOUSE, [[xs, ys, list(range(len(xs)))] for xs, ys in HOUSE]):
        r = client.post("/predict", json={"drawing": [empty, *strokes, empty]})
        assert r.status_code == 200, r.text
        assert_same(r.json()["predictions"], expected(clf, HOUSE))


@pytest.mark.parametrize("offset", [1.6e7, 5e8])
def test_a_drawing_far_from_the_origin_keeps_its_detail(client, offset):
    """Coordinates beyond 2**20 are rebased in float64 as the readers do: float32 alone would round a small
    drawing at 1.6e7 to whole pixels (and at 5e8 to 32 px), and its answer would change."""
    small = [[[x * 0.05 for x in xs], [y * 0.05 for y in ys]] for xs, ys in HOUSE]
    moved = [[[x + offset for x in xs], [y + offset for y in ys]] for xs, ys in small]
    got = client.post("/predict", json={"drawing": moved, "top_k": 5})
    want = client.post("/predict", json={"drawing": small, "top_k": 5})
    assert got.status_code == want.status_code == 200, got.text
    assert_same(got.json()["predictions"], want.json()["predictions"])


@pytest.mark.parametrize("strokes", [
    [[[5], [5]]],  # one point
    [[[5, 5, 5], [7, 7, 7]]],  # one repeated point
    [[[3, 3], [0, 400]], [[3], [200]]],  # zero width
    [[[-1e8, 1e8], [0.5, -0.5]]],  # a huge range
    [[list(range(400)), [(i * 37) % 101 for i in range(400)]]],  # more points than the cap
])
def test_degenerate_drawings_are_classified(client, strokes):
    r = client.post("/predict", json={"drawing": strokes})
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == 5


def test_default_top_k_is_5(client):
    assert len(client.post("/predict", json={"drawing": HOUSE}).json()["predictions"]) == 5


@pytest.mark.parametrize("body, message", [
    ({"drawing": []}, "empty"),
    ({"drawing": [[[], []]]}, "no points"),
    ({"drawing": [[[1, 2, 3], [1, 2]]]}, "differ in length"),
    ({"drawing": [[[1, 2], [1, 2], [1, 2], [1, 2]]]}, "expected \\[xs, ys\\]"),
    ({"drawing": [[1, 2], [3, 4]]}, r"one stroke \[xs, ys\] given where a drawing"),  # one level of nesting short
    ({"drawing": [[[[1], [2]]]]}, "valid number"),  # one level too deep
    ({"drawing": [[["a", "b"], [1, 2]]]}, "valid number"),
    ({"drawing": [[[1, "10"], [1, 2]]]}, "valid number"),  # a number in a string is not a number
    ({"drawing": [[[1, 2], [True, 2]]]}, "valid number"),  # nor is a boolean
    ({"drawing": HOUSE, "top_k": 0}, "greater than or equal to 1"),
    ({"drawing": HOUSE, "top_k": True}, "valid integer"),
    ({"drawing": HOUSE, "top_k": "3"}, "valid integer"),
    ({"top_k": 3}, "drawing"),
    ({"drawing": [[list(range(501)), list(range(501))]]}, "at most 500"),
    ({"drawing": [[[1e300, 2], [1, 2]]]}, r"coordinates must be of magnitude <= 1e\+09, found 1e\+300"),
    ({"drawing": [[[i], [i]] for i in range(STROKES + 1)]}, f"{STROKES + 1} strokes; at most {STROKES} are"),
    ({"drawing": [[[], []]] * STROKES + [[[1, 2], [1, 2]]]}, f"{STROKES + 1} strokes; at most {STROKES} are"),
])
def test_malformed_drawings_are_422(client, body, message):
    r = client.post("/predict", json=body)
    assert r.status_code == 422
    assert re.search(message, json.dumps(r.json()["detail"]))
    Unprocessable.model_validate(r.json())  # the shape the OpenAPI schema gives


@pytest.mark.parametrize("stroke", [[[10, 60, 110], [20, 80, 20]], [[10, 60, 110], [20, 80, 20], [0, 5, 9]],
                                    [[10], []]])
def test_one_stroke_sent_as_the_drawing_is_one_issue_with_the_apis_hint(client, stroke):
    """``{"drawing": [xs, ys]}`` (one level of lists short) is one issue at the drawing saying what was meant, as the
    Python API's readers say it, instead of one bare "valid list" issue per number."""
    r = client.post("/predict", json={"drawing": stroke})
    assert r.status_code == 422, r.text
    assert r.json() == {"detail": [{
        "loc": ["body", "drawing"], "type": "list_type",
        "msg": "Input should be a list of strokes [[xs, ys], ...], got lists of numbers (one stroke [xs, ys] given "
               "where a drawing [[xs, ys], ...] belongs?)"}]}
    Unprocessable.model_validate(r.json())
    mixed = client.post("/predict", json={"drawing": [[1, 2], [[3], [4]]]})  # not one stroke: pydantic's own issues
    assert mixed.status_code == 422 and "one stroke" not in mixed.text and "valid list" in mixed.text


@pytest.mark.parametrize("field, hint", [("topk", "; did you mean 'top_k'?"), ("Top_K", "; did you mean 'top_k'?"),
                                         ("drawings", "; did you mean 'drawing'?"), ("colour", "")])
def test_unknown_fields_are_422_naming_them(client, field, hint):
    """A misspelt ``top_k`` used to be ignored (5 predictions for ``"topk": 1``): any field other than ``drawing``
    and ``top_k`` is refused by name, with the field meant when the name is a near miss."""
    r = client.post("/predict", json={"drawing": HOUSE, field: 1})
    assert r.status_code == 422, r.text
    assert r.json() == {"detail": [{
        "loc": ["body", field], "type": "extra_forbidden",
        "msg": f"Extra inputs are not permitted: the fields are 'drawing' and 'top_k', not {field!r}{hint}"}]}


def test_a_quickdraw_record_posted_whole_is_classified(client):
    """A Quick, Draw! ndjson line posted as the body (a client forwarding dataset lines) is classified as its bare
    drawing is: its other keys are accepted and ignored, as the Python API reads such a dict; any other field is
    still refused, and the schema says which keys are ignored."""
    record = {"word": "cat", "countrycode": "US", "key_id": "5616442776403968", "recognized": True,
              "timestamp": "2017-03-11 14:47:44.05242 UTC", "drawing": HOUSE}
    bare = client.post("/predict", json={"drawing": HOUSE, "top_k": 3})
    whole = client.post("/predict", json={**record, "top_k": 3})
    assert bare.status_code == whole.status_code == 200, whole.text
    assert whole.json() == bare.json() and len(whole.json()["predictions"]) == 3
    odd = {"word": None, "countrycode": 7, "key_id": 5616442776403968, "recognized": "yes", "timestamp": [1]}
    assert client.post("/predict", json={**odd, "drawing": HOUSE, "top_k": 3}).json() == bare.json()  # unread
    r = client.post("/predict", json={**record, "topk": 1})
    assert r.status_code == 422 and r.json() == {"detail": [{
        "loc": ["body", "topk"], "type": "extra_forbidden",
        "msg": "Extra inputs are not permitted: the fields are 'drawing' and 'top_k', not 'topk'; did you mean "
               "'top_k'?"}]}
    properties = client.get("/openapi.json").json()["components"]["schemas"]["PredictRequest"]["properties"]
    for key in ("word", "countrycode", "key_id", "recognized", "timestamp"):
        assert properties[key]["description"].startswith("ignored: a Quick, Draw! record's key"), key


def test_serve_options_state_their_defaults():
    parser = argparse.ArgumentParser()
    app_mod.configure_parser(parser)
    helps = {a.option_strings[0]: a.help for a in parser._actions if a.option_strings and a.dest != "help"}
    assert "default 1,048,576, 1 MiB" in helps["--max-body-bytes"]
    assert all("default" in text for text in helps.values()), helps


@pytest.mark.parametrize("many, loc", [
    ('{"drawing": [[[' + ",".join(['"a"'] * 50_000) + "], [1]]]}", [0, 0, 0]),  # a wrong value 50,000 times
    ('{"drawing": [[[1], [2]], ' + ",".join(['[["a"], [1]]'] * STROKES) + "]}", [1, 0, 0]),  # in every stroke
    ('{"drawing": [[[1], [2]]], ' + ",".join(f'"k{i}": 0' for i in range(30_000)) + "}", None),  # unknown fields
])
def test_a_body_of_many_wrong_values_gets_a_short_answer(clf, many, loc):
    """Each wrong value was an issue of its own: a body of many thousands of strings took seconds of the server
    (the event loop's too) and gave an answer many times its size. A drawing's values stop at the first wrong one;
    other issues are listed up to ``MAX_ISSUES``, then one says how many more there are."""
    with TestClient(create_app(clf, max_strokes=STROKES + 1)) as c:
        start = time.perf_counter()
        r = c.post("/predict", content=many, headers={"content-type": "application/json"})
        took = time.perf_counter() - start
    assert r.status_code == 422 and len(r.content) < 8_000, r.text[:300]
    issues = Unprocessable.model_validate(r.json()).detail
    if loc is None:
        assert len(issues) == parsing.MAX_ISSUES + 1 and issues[0].loc == ["body", "k0"]
        assert issues[-1].msg == f"and {30_000 - parsing.MAX_ISSUES:,} more issues (the first 20 are listed)"
    else:
        assert len(issues) == 1 and issues[0].msg == "Input should be a valid number"
        assert issues[0].loc == ["body", "drawing", *loc]
    assert took < 5, took  # a generous bound for a shared 2-core machine: the cost was seconds per request


@pytest.mark.parametrize("where, limit", [(0, "coordinates of magnitude <= 1e+09"), (2, "times (ts) of magnitude "
                                                                                         "<= 1e+15")])
def test_an_integer_beyond_float_range_is_said_to_be_too_large(client, where, limit):
    """An integer of 400 digits is a valid JSON number, too large for a float: it was "Input should be a valid
    number", while 1e308 in its place was said to be too large."""
    stroke = [[1, 2], [3, 4], [5, 6]]
    stroke[where][1] = "9" * 400
    raw = json.dumps({"drawing": [stroke]}).replace('"' + "9" * 400 + '"', "9" * 400)
    r = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json() == {"detail": [{
        "loc": ["body", "drawing", 0, where, 1], "type": "float_type",
        "msg": f"Input should be a valid number: this integer of 400 digits is too large; a drawing has {limit}"}]}


@pytest.mark.parametrize("value", ["10", "1e3", True, False, None, [1]])
def test_coordinates_are_strict_json_numbers(client, value):
    """A coordinate must be a JSON number: a string or a boolean is refused (not coerced), at its location."""
    r = client.post("/predict", json={"drawing": [[[10, 60, 110], [20, 80, 20]], [[10, 110], [100, value]]]})
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", "drawing", 1, 1, 1] and error["msg"] == "Input should be a valid number"
    ints_and_floats = [[[10, 60.5, 110], [20, 80, 20.25]], [[10, 110], [100, 1e2]]]
    assert client.post("/predict", json={"drawing": ints_and_floats}).status_code == 200


@pytest.mark.parametrize("raw", [
    '{"drawing": [[[1, NaN], [1, 2]]]}',
    '{"drawing": [[[1, Infinity], [1, 2]]]}',
    '{"drawing": [[[1, -Infinity], [1, 2]]]}',
    '{"drawing": [[[1e400, 2], [1, 2]]]}',
    '{"drawing": [[[1, 2], [1, 2]]]',  # truncated JSON
    "not json at all",
    "[1, 2, 3]",
    b'{"drawing": [[[1, 2], [1, 2]]], "x": "\xff"}',  # not UTF-8
])
def test_non_finite_and_unparsable_bodies_are_422(client, raw):
    r = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


@pytest.mark.parametrize("raw, message", [
    # json.loads refuses over 4,300 digits, and tells its caller to call sys.set_int_max_str_digits: not said
    ('{"drawing": [[[%s, 2], [1, 2]]]}' % ("9" * 5000), "a number is too long (an integer may have at most 4,300 "
                                                        "digits)"),
    ('{"drawing": ' + "[" * 5000 + "]" * 5000 + "}", "arrays or objects nested too deeply"),  # past the parser
])
def test_json_the_parser_refuses_is_422_saying_why(clf, raw, message):
    with TestClient(create_app(clf)) as c:  # the default 1 MiB limit
        r = c.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json() == {"detail": f"the body is not JSON this server can read: {message}"}


@pytest.mark.parametrize("raw, loc, message", [
    ('{"drawing": [[[10, 60, 110], [20, 80, 20]]], "top_k": 3} garbage', 57, "Extra data (line 1, column 58)"),
    ('{"drawing": [[[1, 2], [1, 2]]]', 30, "Expecting ',' delimiter (line 1, column 31)"),
    ('{\n  "drawing": [[[1, 2], [1, 2]]],\n  "top_k": 3,\n}', 49,
     "Expecting property name enclosed in double quotes (line 4, column 1)"),
    ("not json at all", 0, "Expecting value (line 1, column 1)"),
])
def test_json_syntax_errors_say_why_and_where(client, raw, loc, message):
    r = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json() == {"detail": [{"loc": ["body", loc], "msg": f"JSON decode error: {message}",
                                    "type": "json_invalid"}]}


def test_a_body_with_more_arrays_than_the_stroke_limit_needs_is_refused_unparsed(client, clf, monkeypatch):
    """Parsing many small arrays holds the GIL, so the event loop, for long (a second for the 1 MB body of 100,000
    one-point strokes below): a body with more '[' and '{' than a drawing of ``max_strokes`` strokes has (4 a
    stroke, 2 more, 64 spare) is refused before ``json.loads`` sees it; one within that count is parsed."""
    parsed = []

    def loads(body: bytes):
        parsed.append(len(body))
        return json.loads(body)

    monkeypatch.setattr(parsing, "json", SimpleNamespace(loads=loads, JSONDecodeError=json.JSONDecodeError))
    limit = 2 + 4 * STROKES + 64
    extra = {"x": [[]] * (limit - (2 + 4 * STROKES) - 1)}  # a list of lists: the body is at the limit exactly
    r = client.post("/predict", json={"drawing": [[[i], [i], [i]] for i in range(STROKES)], **extra})
    assert r.status_code == 422 and len(parsed) == 1  # parsed, then refused for its unknown field
    assert [e["loc"] for e in r.json()["detail"]] == [["body", "x"]]
    r = client.post("/predict", json={"drawing": [[[i], [i], [i]] for i in range(STROKES)], **extra, "y": []})
    assert r.status_code == 422 and len(parsed) == 1
    assert r.json() == {"detail": f"the body has {limit + 1} '[' and '{{' (JSON arrays and objects, counted with any "
                                  f"inside strings); a drawing of at most {STROKES} strokes needs at most {limit}: "
                                  "refused without parsing it"}
    with TestClient(create_app(clf)) as c:  # the default limits: 1 MiB, 2,000 strokes
        body = json.dumps({"drawing": [[[0], [0]]] * 100_000}, separators=(",", ":"))
        r = c.post("/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and len(parsed) == 1 and "a drawing of at most 2,000 strokes" in r.json()["detail"]


def test_a_body_is_parsed_and_checked_off_the_event_loop(clf, monkeypatch):
    """While a request's body is being parsed (here: held), /healthz is answered."""
    entered, release = threading.Event(), threading.Event()
    original = parsing.parse_json

    def held(body: bytes, limits: parsing.DrawingLimits):
        entered.set()
        release.wait(30)
        return original(body, limits)

    monkeypatch.setattr(parsing, "parse_json", held)
    with running_server(create_app(clf)) as url, httpx.Client(base_url=url, timeout=60) as http, \
            ThreadPoolExecutor(1) as pool:
        try:
            slow = pool.submit(http.post, "/predict", json={"drawing": HOUSE})
            assert entered.wait(30)
            assert http.get("/healthz", timeout=10).status_code == 200  # timed out when FastAPI parsed the body
            assert not slow.done()
        finally:
            release.set()
        assert slow.result(30).status_code == 200


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain", "text/x+json"])
def test_a_body_not_sent_as_json_is_415_saying_so(client, content_type):
    headers = {"content-type": content_type} if content_type else {}
    r = client.post("/predict", content=json.dumps({"drawing": HOUSE}), headers=headers)
    assert r.status_code == 415 and "Content-Type: application/json" in r.json()["detail"]
    assert r.headers["connection"] == "close"
    assert client.post("/predict", content=json.dumps({"drawing": HOUSE}),
                       headers={"content-type": "application/json; charset=utf-8"}).status_code == 200


@pytest.mark.parametrize("coding", ["gzip", "br", "deflate", "identity, gzip", "GZIP"])
def test_a_compressed_body_is_415_saying_only_identity_is_read(client, coding):
    """A body with a content coding gets 415 naming it (and ``Accept-Encoding: identity``), not a 422 about
    UTF-8 or JSON; ``identity`` is the plain body."""
    body = json.dumps({"drawing": HOUSE}).encode()
    raw = gzip.compress(body) if "gzip" in coding.lower() else body  # "br" / "deflate" announced, not applied
    r = client.post("/predict", content=raw, headers={"content-type": "application/json", "content-encoding": coding})
    assert r.status_code == 415, r.text
    assert coding.lower() in r.json()["detail"] and "not supported" in r.json()["detail"]
    assert "identity" in r.json()["detail"] and r.headers["accept-encoding"] == "identity"
    assert r.headers["connection"] == "close" and Message.model_validate(r.json())
    plain = {"content-type": "application/json", "content-encoding": "identity"}
    r = client.post("/predict", content=body, headers=plain)
    assert r.status_code == 200
    for path in ("/healthz", "/classes", "/"):  # no body, nothing to decode: the header is harmless there
        assert client.get(path, headers={"content-encoding": coding}).status_code == 200


def test_body_limit_by_content_length(client):
    big = {"drawing": [[list(range(2000)), list(range(2000))]]}
    r = client.post("/predict", json=big)
    assert r.status_code == 413 and r.headers["connection"] == "close"
    assert str(LIMIT) in r.json()["detail"]


def test_body_limit_by_bytes_received(client):
    """A chunked body (no Content-Length) is counted as it arrives."""
    chunks = (b"x" * 1024 for _ in range(8))
    r = client.post("/predict", content=chunks, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.headers["connection"] == "close"


def test_bad_content_length_is_400(client, clf):
    app = BodyLimit(None, 10)
    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "headers": [(b"content-length", b"ten")]}
    asyncio.run(app(scope, None, send))
    assert sent[0]["status"] == 400 and (b"connection", b"close") in sent[0]["headers"]


def test_body_just_under_the_limit_is_accepted(client, clf):
    body = json.dumps({"drawing": HOUSE})
    body += " " * (LIMIT - len(body))
    r = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200


@pytest.mark.parametrize("path", ["/", "/healthz", "/classes", "/stats", "/docs", "/openapi.json", "/static/app.js",
                                  "/docs-static/swagger-ui.css"])
def test_head_works_wherever_get_does(client, path):
    """HEAD: GET's status and headers (length and type included), no body."""
    got, head = client.get(path), client.head(path)
    assert got.status_code == head.status_code == 200
    assert head.content == b"" and len(got.content) > 0
    assert head.headers["content-length"] == got.headers["content-length"] == str(len(got.content))
    assert head.headers["content-type"] == got.headers["content-type"]


def test_head_on_a_post_only_path_is_still_405(client):
    r = client.head("/predict")
    assert r.status_code == 405 and r.headers["allow"] == "POST" and r.content == b""


@pytest.mark.parametrize("path", ["/healthz", "/classes", "/stats", "/"])
def test_a_405_on_a_get_path_allows_head_too(client, path):
    r = client.post(path)
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"


def test_openapi_docs(client):
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/predict", "/healthz", "/classes"} <= set(schema["paths"])


def test_openapi_gives_the_request_rules_and_every_answer_body(client):
    """``/predict`` reads its body itself, yet its schema is the model's; the rules the schema cannot say are in
    the request's description; every answer, errors included, has a body schema."""
    schema = client.get("/openapi.json").json()
    models = schema["components"]["schemas"]
    post = schema["paths"]["/predict"]["post"]
    body = post["requestBody"]
    assert body["required"] and body["content"] == {
        "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}}
    assert models["PredictRequest"]["required"] == ["drawing"]
    assert models["PredictRequest"]["properties"]["drawing"]["examples"]  # the body "Try it out" starts with
    assert models["PredictRequest"]["additionalProperties"] is False  # other fields are refused
    assert "maximum" not in models["PredictRequest"]["properties"]["top_k"]  # any top_k, as the Python API takes
    for rule in (f"1 to {STROKES} strokes", "at most 500 points", "2,000,000 px", "1,000,000,000",
                 "at most 1e+15", "above the number of classes, every class is returned",
                 "any other field gets a 422 naming it",
                 f"at most {2 + 4 * STROKES + 64} '[' and '{{' characters in all, those inside strings included"):
        assert rule in body["description"] and rule in schema["info"]["description"]

    def model(answer: dict) -> str:
        return answer["content"]["application/json"]["schema"]["$ref"].removeprefix("#/components/schemas/")

    assert {code: model(a) for code, a in post["responses"].items()} == {
        "200": "PredictResponse", "408": "Message", "413": "Message", "415": "Message", "422": "Unprocessable",
        "503": "Message"}
    assert {path: model(schema["paths"][path]["get"]["responses"]["200"]) for path in ("/healthz", "/classes",
                                                                                        "/stats")} == {
        "/healthz": "Health", "/classes": "ClassList", "/stats": "Stats"}
    assert set(models["Health"]["properties"]) == set(client.get("/healthz").json())
    assert set(models["Stats"]["properties"]) == set(client.get("/stats").json())
    assert set(models["Unprocessable"]["properties"]["detail"]["anyOf"][1]["items"]["$ref"].split("/")[-1:]) == {
        "Issue"}


# ------------------------------------------------------------------------------------------ the page
def test_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    for copy in ("/static/index.html", "/static/INDEX.HTML", "/static/./index.html"):  # its relative URLs: broken there
        assert client.get(copy).status_code == 404, copy


@pytest.mark.parametrize("name", ["index.html", "app.js", "style.css"])
def test_page_is_self_contained(name):
    text = (STATIC / name).read_text()
    assert not re.search(r"https?://|(src|href)\s*=\s*[\"']?//|@import", text), "external resource"


# ------------------------------------------------------------------------------------------ concurrency
def test_concurrent_requests_on_a_live_server(clf):
    bodies = [{"drawing": drawing(i), "top_k": 3} for i in range(48)]
    want = [expected(clf, b["drawing"], 3) for b in bodies]
    with running_server(create_app(clf)) as url, httpx.Client(base_url=url, timeout=60) as http:
        def call(body):
            r = http.post("/predict", json=body)
            assert r.status_code == 200, r.text
            return r.json()["predictions"]

        with ThreadPoolExecutor(16) as pool:
            got = list(pool.map(call, bodies))
        assert http.get("/healthz").status_code == 200
        stats = http.get("/stats").json()
    assert stats["requests"] == 48 and 1 <= stats["model_calls"] <= 48
    assert stats["mean_batch"] == round(48 / stats["model_calls"], 3)
    for g, w in zip(got, want):
        assert_same(g, w)


HEAVY = [[list(range(0, 3000, 3)), [0 if i % 2 else 200 for i in range(1000)]]]  # ~17,000 px of ink, 1,000 points


def hold_heavy_simplification(monkeypatch, wait: float = 30) -> tuple[threading.Event, threading.Event]:
    """``(entered, release)``: from now on, a ``preprocess_flat`` call holding a drawing of ``HEAVY``'s 1,000 points
    sets ``entered`` and then waits for ``release`` (at most ``wait`` s) before it simplifies."""
    from sketchgraph.data import flat

    entered, release = threading.Event(), threading.Event()
    original = flat.preprocess_flat

    def held(sketches, *args, **kwargs):
        if isinstance(sketches, list) and any(s.num_points == 1000 for s in sketches):
            entered.set()
            release.wait(wait)
        return original(sketches, *args, **kwargs)

    monkeypatch.setattr(flat, "preprocess_flat", held)
    return entered, release


def test_heavy_drawings_do_not_hold_up_light_requests(clf, monkeypatch):
    """Heavy drawings are simplified on the batcher's own pool: while 8 of them wait there (more than the
    threads that run requests' checks), a light request is answered, and /healthz too."""
    entered, release = hold_heavy_simplification(monkeypatch)
    with running_server(create_app(clf)) as url, httpx.Client(base_url=url, timeout=60) as http, \
            ThreadPoolExecutor(8) as pool:
        try:
            slow = [pool.submit(http.post, "/predict", json={"drawing": HEAVY}) for _ in range(8)]
            assert entered.wait(30)
            time.sleep(0.5)  # all 8 are in
            light = http.post("/predict", json={"drawing": HOUSE}, timeout=10)  # timed out before the fix
            assert light.status_code == 200 and not any(f.done() for f in slow)
            assert http.get("/healthz", timeout=10).status_code == 200
        finally:
            release.set()
        assert all(f.result(60).status_code == 200 for f in slow)
    assert_same(light.json()["predictions"], expected(clf, HOUSE))


def stalled_upload(url: str, length: int = 100) -> socket.socket:
    """A connection that sends a request's headers and 5 of its ``length`` body bytes, then goes quiet."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n{\"dra" % length)
    return sock


def answer_then_close(sock: socket.socket) -> tuple[bytes, dict]:
    """The status line and the JSON body the server sends on ``sock``, read until it closes the connection (a
    socket timeout fails the test: the connection stayed open)."""
    answer = b""
    while chunk := sock.recv(4096):
        answer += chunk
    head, body = answer.split(b"\r\n\r\n", 1)
    assert b"\r\nconnection: close\r\n" in head.lower() + b"\r\n"
    assert b"\r\ncontent-type: application/json\r\n" in head.lower() + b"\r\n"
    return head.split(b"\r\n", 1)[0], json.loads(body)


def test_a_stalled_body_is_408_and_its_connection_closed(clf):
    with running_server(create_app(clf, body_timeout=0.5)) as url:
        with stalled_upload(url) as sock:
            start = time.monotonic()
            status, body = answer_then_close(sock)
            waited = time.monotonic() - start
        assert status == b"HTTP/1.1 408 Request Timeout"
        assert body == {"detail": "request body not received within 0.5 s"}
        assert 0.4 < waited < 10
        assert httpx.post(url + "/predict", json={"drawing": HOUSE}).status_code == 200  # others unaffected


@pytest.mark.parametrize("sent", [b"", b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Ty"],
                         ids=["nothing", "half the headers"])
def test_headers_not_complete_in_time_close_the_connection(clf, sent):
    """A client that opens a connection and sends nothing, or its headers a byte now and then (a "slowloris"), was
    held open for ever: uvicorn's timeouts start only once the headers are in. Now ``header_timeout`` closes it;
    a keep-alive connection's next request gets the same deadline, and a prompt client is not disturbed."""
    import socket

    with running_server(create_app(clf), header_timeout=0.5) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            start = time.monotonic()
            sock.sendall(sent)
            assert sock.recv(4096) == b""  # closed by the server, without an answer
            assert 0.4 < time.monotonic() - start < 8
        with httpx.Client(base_url=url, timeout=30) as http:  # keep-alive: each request in time, all answered
            for _ in range(3):
                assert http.post("/predict", json={"drawing": HOUSE}).status_code == 200
                time.sleep(0.3)
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # a first request in time
                first = sock.recv(65536)
                assert first.startswith(b"HTTP/1.1 200 ")
                start = time.monotonic()
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")  # the next one's headers never end
                while sock.recv(65536):
                    pass
                assert time.monotonic() - start < 8


def test_the_header_deadline_holds_after_an_early_answer_too():
    """An app that answers before reading the body, keeping the connection: the body's end brought the connection
    back to waiting for a request with no deadline running (the one armed at the answer was disarmed by the body),
    so it was held open for ever. The deadline is armed again there."""
    import socket

    async def early(scope, receive, send):  # any app served with running_server: answers at once
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    with running_server(early, header_timeout=0.5) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab")
            assert sock.recv(4096).startswith(b"HTTP/1.1 404 ")
            time.sleep(0.7)  # past the deadline armed at the answer, which the rest of the body disarms
            start = time.monotonic()
            sock.sendall(b"cd")  # the body's end: back to waiting for a request
            while sock.recv(4096):
                pass
            assert time.monotonic() - start < 5


def test_a_413_closes_the_connection_while_the_body_still_trickles_in(clf):
    """The rest of a body too large to read is not waited for: the 413 closes the connection, however slowly the
    client goes on sending (before, the server read it all, past the body timeout)."""
    with running_server(create_app(clf, max_body_bytes=LIMIT)) as url, stalled_upload(url, 2_000_000) as sock:
        sock.settimeout(10)
        stop = threading.Event()

        def trickle() -> None:
            while not stop.wait(0.1):
                try:
                    sock.sendall(b" ")
                except OSError:  # closed by the server
                    return

        sender = threading.Thread(target=trickle)
        sender.start()
        try:
            status, body = answer_then_close(sock)
        finally:
            stop.set()
            sender.join()
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert body == {"detail": f"request body larger than {LIMIT} bytes"}


@pytest.mark.parametrize("started", [False, True])
def test_a_request_cancelled_before_its_answer_began_gets_503(started):
    """``ShutdownReply`` answers a request cancelled before its response started 503 (JSON, ``Connection: close``)
    and ends it there (raised on, uvicorn logged every such request as an application error, with a traceback); a
    response already started is left as it is, and the cancellation goes on."""
    sent = []

    async def app(scope, receive, send):
        if started:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        raise asyncio.CancelledError

    async def send(message):
        sent.append(message)

    if started:
        with pytest.raises(asyncio.CancelledError):
            asyncio.run(ShutdownReply(app)({"type": "http"}, None, send))
        assert [m["status"] for m in sent] == [200]
    else:
        asyncio.run(ShutdownReply(app)({"type": "http"}, None, send))
        assert sent[0]["status"] == 503 and (b"connection", b"close") in sent[0]["headers"]
        assert (b"content-type", b"application/json") in sent[0]["headers"]
        assert json.loads(sent[1]["body"]) == SHUTTING_DOWN


def test_a_request_still_computing_at_shutdown_gets_503_and_the_server_does_not_wait_for_it(clf, monkeypatch):
    """When the graceful shutdown's timeout expires, uvicorn cancels the requests still running: one whose heavy
    drawing is still being simplified gets a JSON 503 with ``Connection: close`` (uvicorn's text/plain 500
    before), and the server stops without waiting for that simplification (it waited before)."""
    entered, release = hold_heavy_simplification(monkeypatch, wait=60)
    logged = []
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(record.getMessage())
    uvicorn_log = logging.getLogger("uvicorn.error")
    try:
        with ThreadPoolExecutor(1) as pool:
            with running_server(create_app(clf), lifespan=True, shutdown_timeout=0.5) as url:
                uvicorn_log.addHandler(handler)  # after uvicorn set its logging up, which drops other handlers
                pending = pool.submit(httpx.post, url + "/predict", json={"drawing": HEAVY}, timeout=60)
                assert entered.wait(30)
                start = time.monotonic()
            stopped = time.monotonic() - start  # the block's end waits for the server to stop (at most 30 s)
            r = pending.result(30)
    finally:
        release.set()
        uvicorn_log.removeHandler(handler)
    # one line from uvicorn, no "Exception in ASGI application" and its traceback per request
    assert logged == ["Cancel 1 running task(s), timeout graceful shutdown exceeded"], logged
    assert r.status_code == 503 and r.json() == SHUTTING_DOWN and Message.model_validate(r.json())
    assert r.headers["connection"] == "close" and r.headers["content-type"] == "application/json"
    assert stopped < 10


def test_an_upload_still_arriving_at_shutdown_gets_503(clf):
    with running_server(create_app(clf, body_timeout=300), shutdown_timeout=0.3) as url:
        sock = stalled_upload(url)
        time.sleep(0.5)  # the request is in the app, waiting for its body
    with sock:
        assert answer_then_close(sock) == (b"HTTP/1.1 503 Service Unavailable", SHUTTING_DOWN)


def test_a_request_the_closed_batcher_refuses_gets_503(client, monkeypatch):
    def closed(*args, **kwargs):
        raise BatcherClosed

    monkeypatch.setattr(RequestBatcher, "submit", closed)
    r = client.post("/predict", json={"drawing": HOUSE})
    assert r.status_code == 503 and r.json() == SHUTTING_DOWN and r.headers["connection"] == "close"


def test_a_heavy_drawing_the_busy_batcher_refuses_gets_503_with_retry_after(client, monkeypatch):
    """When ``max_heavy_waiting`` large drawings already wait to be simplified, the next gets a JSON 503 saying so,
    with ``Retry-After`` (a 500 before: the batcher's queue had no bound), and the connection stays usable."""
    def busy(*args, **kwargs):
        raise BatcherBusy(MAX_HEAVY_WAITING)

    monkeypatch.setattr(RequestBatcher, "submit", busy)
    r = client.post("/predict", json={"drawing": HOUSE})
    assert r.status_code == 503 and Message.model_validate(r.json())
    assert r.json() == {"detail": f"too many large drawings are waiting to be simplified ({MAX_HEAVY_WAITING}, the "
                                  "limit); retry later"}
    assert r.headers["retry-after"] == str(app_mod.BUSY_RETRY_AFTER_S) and r.headers.get("connection") != "close"
    assert "Retry-After" in client.get("/openapi.json").json()["paths"]["/predict"]["post"]["responses"]["503"][
        "description"]


def test_the_heavy_waiting_limit_reaches_the_batcher(clf):
    app = create_app(clf, max_heavy_waiting=3)
    assert app.state.batcher.max_heavy_waiting == 3
    app.state.batcher.close()


@pytest.mark.parametrize("heavy", [False, True])
def test_a_drawing_preprocessing_refuses_with_any_sketch_error_is_422(clf, monkeypatch, heavy):
    """A refusal that is a plain ``SketchError`` (no ``UnusableSketchesError``: a simplification over a work budget,
    say) is a 422 with its reason, on the light path as on the heavy one (a 500 on the light path before)."""
    from sketchgraph.data import flat

    original = flat.preprocess_flat
    points = 1000 if heavy else 8  # HEAVY's, or HOUSE's

    def refusing(sketches, *args, **kwargs):
        if isinstance(sketches, list) and any(s.num_points == points for s in sketches):
            raise SketchError("drawing too complex to simplify")
        return original(sketches, *args, **kwargs)

    monkeypatch.setattr(flat, "preprocess_flat", refusing)
    with TestClient(create_app(clf)) as c:
        r = c.post("/predict", json={"drawing": HEAVY if heavy else HOUSE})
        assert r.status_code == 422 and r.json() == {"detail": "drawing too complex to simplify"}
        assert c.post("/predict", json={"drawing": drawing(1)}).status_code == 200


HEAVY2 = [[list(range(0, 3600, 3)), [0 if i % 2 else 200 for i in range(1200)]]]  # heavy too, 1,200 points


def test_a_disconnected_clients_drawing_is_never_simplified(clf, monkeypatch, preprocessed_points):
    """A request whose client disconnects while its heavy drawing waits for the heavy thread is cancelled: it
    leaves the queue at once and its drawing is never simplified (before, it waited, then was simplified for
    nobody)."""
    entered, release = hold_heavy_simplification(monkeypatch)
    simplified = preprocessed_points
    app = create_app(clf, heavy_workers=1)
    batcher = app.state.batcher
    body = json.dumps({"drawing": HEAVY2}).encode()

    def wait_for(condition) -> bool:
        deadline = time.monotonic() + 10
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.02)
        return condition()

    with running_server(app) as url, ThreadPoolExecutor(1) as pool:
        try:
            first = pool.submit(httpx.post, url + "/predict", json={"drawing": HEAVY}, timeout=60)
            assert entered.wait(30)
            host, port = url.removeprefix("http://").rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=30) as sock:
                sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                assert wait_for(lambda: batcher.heavy_waiting == 1)
            assert wait_for(lambda: batcher.heavy_waiting == 0)  # stayed 1 until the first was done, before
        finally:
            release.set()
        assert first.result(60).status_code == 200
        assert httpx.post(url + "/predict", json={"drawing": HOUSE}).status_code == 200  # the worker goes on
    assert 1200 not in simplified and 1000 in simplified


def test_create_app_refuses_a_body_timeout_that_is_not_positive(clf):
    for bad in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="body_timeout"):
            create_app(clf, body_timeout=bad)


@pytest.mark.slow
def test_sigterm_ends_the_server_despite_a_stalled_upload(tiny_checkpoint):
    """``sketchgraph serve`` gives in-flight requests ``--shutdown-timeout`` seconds after SIGTERM, then answers them
    503 and exits, even with a client that sent headers and went quiet (the body timeout here is far longer)."""
    env = {**os.environ, "DGLBACKEND": "pytorch"}
    cmd = [sys.executable, "-m", "sketchgraph", "serve", "--checkpoint", str(tiny_checkpoint), "--port", "0",
           "--body-timeout", "300", "--shutdown-timeout", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = re.search(r"http://[\d.]+:\d+", proc.stdout.readline()).group(0)
        deadline = time.monotonic() + 60
        while True:  # the socket listens before the model loads: wait until the app answers
            try:
                if httpx.get(url + "/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "the server did not start"
            time.sleep(0.1)
        with stalled_upload(url) as sock:
            time.sleep(0.3)  # the request is in the app, waiting for its body
            start = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert answer_then_close(sock) == (b"HTTP/1.1 503 Service Unavailable", SHUTTING_DOWN)  # 500 before
            proc.wait(30)  # before the fix: still running
            assert time.monotonic() - start < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


@pytest.mark.parametrize("chunked", [False, True])
def test_body_limit_on_a_live_server(clf, chunked):
    body = json.dumps({"drawing": [[list(range(20000)), list(range(20000))]]}).encode()  # > LIMIT
    content = (body[i : i + 1000] for i in range(0, len(body), 1000)) if chunked else body
    with running_server(create_app(clf, max_body_bytes=LIMIT)) as url:
        r = httpx.post(url + "/predict", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 413 and str(LIMIT) in r.json()["detail"]


# ------------------------------------------------------------------------------------------ app and CLI
def test_create_app_from_checkpoint_path(tiny_checkpoint):
    with TestClient(create_app(str(tiny_checkpoint))) as c:
        assert c.get("/healthz").json()["model"] == tiny_checkpoint.name


@pytest.mark.filterwarnings("ignore:.*no native bfloat16:RuntimeWarning")
@pytest.mark.parametrize("args", [["--port", "70000"], ["--port", "-1"], ["--max-body-bytes", "0"],
                                  ["--max-batch", "0"], ["--max-wait-ms", "-1"], ["--max-wait-ms", "nan"],
                                  ["--body-timeout", "0"], ["--body-timeout", "inf"], ["--shutdown-timeout", "-1"],
                                  ["--header-timeout", "0"], ["--header-timeout", "nan"],
                                  ["--heavy-workers", "0"], ["--max-heavy-waiting", "0"], ["--port", "http"]])
def test_cli_refuses_impossible_ports_and_limits(args, capsys):
    parser = argparse.ArgumentParser()
    app_mod.configure_parser(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(args)
    wanted = {"--port": "an integer in 0..65535", "--body-timeout": "a finite number > 0",
              "--header-timeout": "a finite number > 0"}.get(args[0]) or (
        "a finite number >= 0" if args[0] in ("--max-wait-ms", "--shutdown-timeout") else "a positive integer")
    assert f"argument {args[0]}: expected {wanted}, got {args[1]!r}" in capsys.readouterr().err


def test_create_app_refuses_a_body_limit_below_one_byte(clf):
    with pytest.raises(ValueError, match="max_body_bytes"):
        create_app(clf, max_body_bytes=0)
    for points, strokes in ((0, 10), (10, 0)):
        with pytest.raises(ValueError, match="max_points and max_strokes must be >= 1"):
            create_app(clf, max_points=points, max_strokes=strokes)


def test_cli_runs_uvicorn(tiny_checkpoint, monkeypatch, capsys):
    import uvicorn

    seen = {}

    def run(server, sockets):
        seen.update(app=server.config.app, port=sockets[0].getsockname()[1], host=sockets[0].getsockname()[0],
                    shutdown=server.config.timeout_graceful_shutdown,
                    header_timeout=server.config.http.header_timeout,
                    body_timeout=[m.kwargs.get("timeout") for m in server.config.app.user_middleware
                                  if m.cls is BodyLimit])
        raise KeyboardInterrupt  # as uvicorn does after a Ctrl-C shutdown: run_cli returns 0, no traceback

    monkeypatch.setattr(uvicorn.Server, "run", run)
    parser = argparse.ArgumentParser()
    app_mod.configure_parser(parser)
    args = parser.parse_args(["--checkpoint", str(tiny_checkpoint), "--port", "0"])
    assert app_mod.run_cli(args) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] > 0
    assert f"http://127.0.0.1:{seen['port']}/" in capsys.readouterr().out  # the port it got, not 0
    assert seen["app"].state.classifier.precision == "float32"
    assert (seen["app"].state.batcher.max_batch, seen["app"].state.batcher.max_wait) == (64, 0.0)
    assert (seen["shutdown"], seen["body_timeout"], seen["header_timeout"]) == (
        app_mod.SHUTDOWN_TIMEOUT_S, [app_mod.BODY_TIMEOUT_S], app_mod.HEADER_TIMEOUT_S)
    assert app_mod.run_cli(parser.parse_args(["--checkpoint", str(tiny_checkpoint), "--body-timeout", "2.5",
                                              "--shutdown-timeout", "0", "--header-timeout", "3", "--port", "0"])) == 0
    assert (seen["shutdown"], seen["body_timeout"], seen["header_timeout"]) == (0.0, [2.5], 3.0)
    assert app_mod.run_cli(parser.parse_args(["--checkpoint", str(tiny_checkpoint), "--max-batch", "4",
                                              "--max-wait-ms", "2.5", "--heavy-workers", "3", "--max-heavy-waiting",
                                              "7", "--port", "0"])) == 0
    batcher = seen["app"].state.batcher
    assert (batcher.max_batch, batcher.max_wait, batcher._heavy_workers, batcher.max_heavy_waiting) == (4, 0.0025, 3, 7)
    assert app_mod.run_cli(parser.parse_args(["--checkpoint", str(tiny_checkpoint), "--precision", "bfloat16",
                                              "--port", "0"])) == 0
    assert seen["app"].state.classifier.precision == "bfloat16"


def test_listen_binds_every_address_of_the_host_on_one_port():
    sockets = app_mod.listen("", 0)  # all interfaces: IPv4 (and IPv6 where the machine has it)
    try:
        ports = {s.getsockname()[1] for s in sockets}
        assert len(ports) == 1 and ports != {0}
        assert "0.0.0.0" in {s.getsockname()[0] for s in sockets}
        with socket.create_connection(("127.0.0.1", ports.pop()), timeout=5):
            pass  # listening already, before any server runs
    finally:
        for s in sockets:
            s.close()


def test_cli_port_taken_is_one_line_before_the_model_loads(tiny_checkpoint, monkeypatch, capsys):
    from sketchgraph.cli import main

    (taken,) = app_mod.listen("127.0.0.1", 0)  # bound and listening, as a server still loading its model is
    loaded = []
    monkeypatch.setattr(app_mod, "create_app", lambda *a, **k: loaded.append(1))
    try:
        port = str(taken.getsockname()[1])
        assert main(["serve", "--checkpoint", str(tiny_checkpoint), "--port", port]) == 1
    finally:
        taken.close()
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err and not loaded


def test_docs_pages_use_local_assets(client):
    """``/docs`` points at files this app serves (relative URLs), none at a CDN; FastAPI's CDN ``/redoc`` is off."""
    import re

    html = client.get("/docs").text
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", html)
    assert not [u for u in urls if "//" in u], urls
    local = [u for u in urls if u.startswith("docs-static/")]
    assert len(local) == 3 and "openapi.json" in urls, urls
    for u in local:
        r = client.get("/" + u)
        assert r.status_code == 200 and len(r.content) > 1000, u
    assert client.get("/redoc").status_code == 404
    assert client.get("/docs-static/swagger-ui-bundle.js").text.count("SwaggerUIBundle") > 0


@pytest.mark.parametrize("host, url, everywhere", [
    ("127.0.0.1", "http://127.0.0.1:8000/", False),
    ("::1", "http://[::1]:8000/", False),
    ("0.0.0.0", "http://127.0.0.1:8000/", True),  # no address to browse to: this machine's loopback
    ("::", "http://[::1]:8000/", True),
])
def test_the_printed_address_is_one_to_browse_to(host, url, everywhere):
    from sketchgraph.serve.app import _listening_line

    line = _listening_line(host, 8000)
    assert line.startswith(f"drawing page at {url}  (API docs at /docs)")
    assert ("listening on all interfaces" in line) == everywhere
