"""The drawing page in a real headless Chromium against a live uvicorn server.

Needs Debian's chromium (``apt-get install -y chromium``, giving ``/usr/bin/chromium``) and the
``playwright`` Python package (no downloaded browser); skipped otherwise. The screenshot goes to
``artifacts/browser/drawing_page.png``.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

import pytest

from sketchgraph.predict import SketchClassifier
from sketchgraph.serve import create_app, running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "browser"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# a house: walls, roof, door; in canvas CSS pixels
HOUSE = [
    [(80, 300), (320, 300), (320, 160), (80, 160), (80, 300)],
    [(70, 170), (200, 60), (330, 170)],
    [(180, 300), (180, 230), (220, 230), (220, 300)],
]
PREDICTIONS = "#predictions .prediction"
SETTLED = '#predictions[data-busy="0"]'  # the answer to the latest strokes is on screen


@pytest.fixture(scope="module")
def clf(tiny_checkpoint) -> SketchClassifier:
    return SketchClassifier.from_pretrained(tiny_checkpoint)


@pytest.fixture(scope="module")
def page(clf):
    if not CHROMIUM.exists():
        pytest.skip(f"no {CHROMIUM}: install it with `apt-get install -y chromium`")
    sync_api = pytest.importorskip("playwright.sync_api")
    with running_server(create_app(clf)) as url, tempfile.TemporaryDirectory() as profile, \
            sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=ARGS,
            viewport={"width": 1000, "height": 720},
        )
        page = context.new_page()
        page.errors = []  # JS exceptions and console errors
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.on("console", lambda msg: msg.type == "error" and page.errors.append(msg.text))
        page.goto(url + "/")
        page.wait_for_selector("#pad")
        yield page
        context.close()


def draw(page, strokes) -> None:
    """Drag the mouse along each stroke on the canvas (pointer events, several moves per segment)."""
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        (x, y), rest = stroke[0], stroke[1:]
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=6)
        page.mouse.up()


def test_drawing_shows_live_top5(page, clf):
    page.click("#clear")
    with page.expect_request("**/predict") as first:
        draw(page, HOUSE[:1])
    assert first.value.method == "POST"
    draw(page, HOUSE[1:])
    page.wait_for_selector(SETTLED, state="attached")

    labels = page.locator(f"{PREDICTIONS} .label").all_inner_texts()
    widths = page.locator(f"{PREDICTIONS} .fill").evaluate_all("els => els.map(e => parseFloat(e.style.width))")
    assert len(labels) == 5 and set(labels) <= set(clf.classes)
    assert widths == sorted(widths, reverse=True) and widths[0] > 0
    assert "3 strokes" in page.inner_text("#status")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "drawing_page.png"), full_page=True)
    assert not page.errors, page.errors


def long_stroke(page, moves: int = 120, *, before_up=None) -> None:
    """One continuous stroke, a wave across the canvas: a mouse move every 16 ms (a 60 Hz pointer) without a
    pause; ``before_up()`` runs after the last move, with the button still down."""
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + 40, box["y"] + 200)
    page.mouse.down()
    for i in range(moves):
        page.mouse.move(box["x"] + 40 + 2.5 * i, box["y"] + 200 + 80 * math.sin(i / 10))
        page.wait_for_timeout(16)
    if before_up is not None:
        before_up()
    page.mouse.up()


def test_a_continuous_stroke_gets_predictions_while_it_is_drawn(page):
    """Requests go out while the pointer moves (throttled to one per ~120 ms), not only once it stops or lifts:
    a stroke of 120 moves 16 ms apart sends several, at most one per 120 ms, and its predictions are on screen
    before the button is released."""
    page.click("#clear")
    sent, seen = [], {}
    record = lambda req: req.url.endswith("/predict") and sent.append(req)  # noqa: E731
    page.on("request", record)
    try:
        start = time.monotonic()

        def before_up():
            seen.update(requests=len(sent), seconds=time.monotonic() - start,
                        predictions=page.locator(PREDICTIONS).count())

        long_stroke(page, before_up=before_up)
        page.wait_for_selector(SETTLED, state="attached")
    finally:
        page.remove_listener("request", record)
    assert seen["requests"] >= 2, seen  # before the fix: 0 (each move pushed the request back)
    assert seen["requests"] <= seen["seconds"] / 0.12 + 2, seen  # throttled, not one request per move
    assert seen["predictions"] == 5, seen
    assert len(sent) > seen["requests"]  # and one more when the stroke ends
    assert not page.errors, page.errors


def slow_answers(page, ms: int) -> None:
    """From now on every answer to predict reaches the page ``ms`` late (a slow server), unless the request is
    aborted meanwhile. ``window.__slow`` records ``most``, the most requests in flight at once, and ``aborted``,
    the bodies of those aborted. ``fast_answers`` undoes it."""
    page.evaluate("""(ms) => {
        window.__fetch = window.__fetch || window.fetch;
        const log = window.__slow = {now: 0, most: 0, aborted: []};
        window.fetch = (url, opts) => {
            if (!String(url).endsWith("predict")) return window.__fetch(url, opts);
            log.now++; log.most = Math.max(log.most, log.now);
            let settled = false;
            const settle = () => { if (!settled) { settled = true; log.now--; } };
            const signal = opts && opts.signal;
            return window.__fetch(url, opts).then((res) => new Promise((resolve, reject) => {
                const timer = setTimeout(() => resolve(res), ms);
                if (signal) signal.addEventListener("abort", () => {
                    clearTimeout(timer);
                    reject(new DOMException("The operation was aborted.", "AbortError"));
                });
            })).catch((err) => {
                if (err.name === "AbortError") log.aborted.push(JSON.parse(opts.body).drawing);
                throw err;
            }).finally(settle);
        };
    }""", ms)


def fast_answers(page) -> None:
    page.evaluate("() => { if (window.__fetch) window.fetch = window.__fetch; }")


def on_screen(page) -> list[str]:
    return [" ".join(t.split()) for t in page.locator(PREDICTIONS).all_inner_texts()]


def shown_for(clf, strokes) -> list[str]:
    """The top-5 rows the page shows for the answer to ``strokes``."""
    return [f"{p.label} {100 * p.score:.1f}%" for p in clf.predict(strokes)]


def test_a_slow_server_gets_one_request_at_a_time_and_the_latest_drawing(page, clf):
    """With answers 400 ms late, a 2 s stroke keeps at most one request in flight (before: a new one every 120 ms,
    however many were unanswered, so they piled up), still gets several answers while it is drawn, and what stays on
    screen is the answer to the whole stroke."""
    page.click("#clear")
    slow_answers(page, 400)
    try:
        bodies = posted(page, lambda: long_stroke(page, 120))
        most = page.evaluate("() => window.__slow.most")
    finally:
        fast_answers(page)
    assert most == 1
    assert len(bodies) >= 3  # a request whenever the previous one is answered
    points = int(page.inner_text("#status").split(", ")[1].split()[0])
    assert sum(len(s[0]) for s in bodies[-1]) == points  # the last one sent: the drawing as it ended
    assert on_screen(page) == shown_for(clf, bodies[-1])


def test_predictions_match_the_api_for_the_posted_strokes(page, clf):
    page.click("#clear")
    bodies = []
    page.on("request", lambda req: req.url.endswith("/predict") and bodies.append(req.post_data))
    draw(page, HOUSE)
    page.wait_for_selector(SETTLED, state="attached")
    last = json.loads(bodies[-1])
    assert len(last["drawing"]) == 3 and all(len(s) == 3 for s in last["drawing"])  # [xs, ys, ts] per stroke
    ts = [t for s in last["drawing"] for t in s[2]]
    assert ts == sorted(ts)  # times in ms since the first point
    want = [p.label for p in clf.predict(last["drawing"])]
    assert page.locator(f"{PREDICTIONS} .label").all_inner_texts() == want


def test_clear_and_undo(page):
    page.click("#clear")
    draw(page, HOUSE[:2])
    page.wait_for_selector(SETTLED, state="attached")
    assert page.locator(PREDICTIONS).count() == 5
    page.click("#undo")
    page.wait_for_selector(SETTLED, state="attached")
    assert page.inner_text("#status").startswith("1 stroke,")
    page.click("#clear")
    assert page.locator(PREDICTIONS).count() == 0
    assert page.inner_text("#status") == "Draw something."


def test_touch_pointer_events(page):
    """A finger drawing arrives as pointer events with pointerType 'touch'."""
    page.click("#clear")
    page.evaluate(
        """() => {
            const pad = document.getElementById('pad');
            const r = pad.getBoundingClientRect();
            const fire = (type, x, y) => pad.dispatchEvent(new PointerEvent(type, {
                bubbles: true, cancelable: true, pointerId: 7, pointerType: 'touch', isPrimary: true,
                button: 0, buttons: type === 'pointerup' ? 0 : 1, clientX: r.left + x, clientY: r.top + y}));
            fire('pointerdown', 50, 50);
            for (let i = 1; i <= 20; i++) fire('pointermove', 50 + 10 * i, 50 + 5 * i);
            fire('pointerup', 250, 150);
        }"""
    )
    page.wait_for_selector(SETTLED, state="attached")
    assert page.locator(PREDICTIONS).count() == 5
    assert page.inner_text("#status").startswith("1 stroke,")


def fire_pointers(page, events) -> None:
    """Dispatch synthetic touch pointer events ``(type, pointerId, x, y)`` on the canvas, in order."""
    page.evaluate(
        """(events) => {
            const pad = document.getElementById('pad');
            const r = pad.getBoundingClientRect();
            for (const [type, id, x, y] of events) pad.dispatchEvent(new PointerEvent(type, {
                bubbles: true, cancelable: true, pointerId: id, pointerType: 'touch', isPrimary: id === 1,
                button: type === 'pointermove' ? -1 : 0, buttons: type === 'pointerup' ? 0 : 1,
                clientX: r.left + pad.clientLeft + x, clientY: r.top + pad.clientTop + y}));
        }""",
        events,
    )


def posted(page, action) -> list:
    """The drawings POSTed to predict while ``action`` runs and the page settles."""
    bodies = []

    def record(req):
        if req.url.endswith("/predict"):
            bodies.append(json.loads(req.post_data)["drawing"])

    page.on("request", record)
    try:
        action()
        page.wait_for_selector(SETTLED, state="attached")
    finally:
        page.remove_listener("request", record)
    return bodies


def test_a_second_finger_does_not_spoil_the_stroke(page):
    page.click("#clear")
    events = [("pointerdown", 1, 50, 50), ("pointerdown", 2, 300, 300)]
    for i in range(1, 11):
        events += [("pointermove", 1, 50 + 10 * i, 50), ("pointermove", 2, 300, 300 - 10 * i)]
    events += [("pointerup", 2, 300, 200)] + [("pointermove", 1, 150, 50 + 10 * i) for i in range(1, 6)]
    events += [("pointerup", 1, 150, 100)]
    bodies = posted(page, lambda: fire_pointers(page, events))
    (stroke,) = bodies[-1]  # one stroke: the first finger's
    assert stroke[0] == [50 + 10 * i for i in range(11)] + [150] * 5
    assert stroke[1] == [50] * 11 + [50 + 10 * i for i in range(1, 6)]


def test_undo_to_empty_ignores_the_answer_still_on_its_way(page):
    page.click("#clear")
    page.evaluate("""() => {  // every answer reaches the page 800 ms late
        window.__fetch = window.__fetch || window.fetch;
        window.fetch = (...a) => window.__fetch(...a).then((res) => new Promise((r) => setTimeout(() => r(res), 800)));
    }""")
    try:
        with page.expect_request("**/predict"):
            fire_pointers(page, [("pointerdown", 1, 50, 50), ("pointermove", 1, 150, 80), ("pointerup", 1, 200, 90)])
        page.click("#undo")
        page.wait_for_timeout(1500)
        assert page.locator(PREDICTIONS).count() == 0 and page.inner_text("#status") == "Draw something."
        assert page.locator("#error").is_hidden()
    finally:
        page.evaluate("() => { window.fetch = window.__fetch; }")


def test_undo_aborts_the_request_on_its_way_and_never_shows_its_answer(page, clf):
    """Undo while the answer to strokes A+B is on its way: that request is aborted, and its answer, for a drawing
    that no longer exists, is never shown, not even until the answer for A arrives (before, it was shown first)."""
    page.click("#clear")
    a = [("pointerdown", 1, 50, 50), ("pointermove", 1, 150, 80), ("pointerup", 1, 200, 90)]
    b = [("pointerdown", 1, 60, 300), ("pointermove", 1, 200, 200), ("pointermove", 1, 300, 320),
         ("pointerup", 1, 300, 320)]
    first = posted(page, lambda: fire_pointers(page, a))[-1]
    slow_answers(page, 800)
    try:
        with page.expect_request("**/predict"):
            fire_pointers(page, b)
        page.evaluate("""() => {  // every list the page shows from now on
            window.__shown = [];
            new MutationObserver(() => window.__shown.push(
                [...document.querySelectorAll('#predictions .prediction')].map((li) => li.innerText)
            )).observe(document.getElementById('predictions'), {childList: true});
        }""")
        page.click("#undo")
        page.wait_for_selector(SETTLED, state="attached")
        aborted = page.evaluate("() => window.__slow.aborted")
        renders = [[" ".join(t.split()) for t in r] for r in page.evaluate("() => window.__shown")]
    finally:
        fast_answers(page)
    assert len(aborted) == 1 and len(aborted[0]) == 2  # A+B
    assert renders == [shown_for(clf, first)]  # only the answer for A
    assert on_screen(page) == shown_for(clf, first) and page.inner_text("#status").startswith("1 stroke,")


def test_the_canvas_follows_a_change_of_pixel_ratio(page):
    """A change of devicePixelRatio (a window moved to a screen of another density), which fires no resize event,
    sizes the canvas's backing store again: before, it kept the old ratio's size (blurry ink) until the window
    resized. Headless Chromium does not reliably report emulated ratio changes to media queries, so the page's own
    ``matchMedia`` lists are recorded and their "change" is fired as the browser fires it, with the ratio set."""
    other = page.context.new_page()
    other.add_init_script("""
        const realMatchMedia = window.matchMedia.bind(window);
        window.__queries = [];
        window.matchMedia = (query) => {
            const list = realMatchMedia(query);
            window.__queries.push([query, list]);
            return list;
        };
    """)
    try:
        other.goto(page.url)
        other.wait_for_selector("#pad")
        other.evaluate("() => { window.__resized = 0; window.addEventListener('resize', () => window.__resized++); }")
        for ratio in (2, 3):
            query = other.evaluate("""(ratio) => {
                const [query, list] = window.__queries[window.__queries.length - 1];
                window.devicePixelRatio = ratio;  // [Replaceable]: the ratio the page reads from now on
                list.dispatchEvent(new Event("change"));
                return query;
            }""", ratio)
            assert query == f"(resolution: {ratio - 1}dppx)"  # the listener was armed again for the new ratio
            pad = other.evaluate("() => { const p = document.getElementById('pad'); return [p.width, p.clientWidth]; }")
            assert pad[0] == round(pad[1] * ratio) and pad[1] > 100
        assert other.evaluate("() => window.__resized") == 0
    finally:
        other.close()


def test_a_smaller_window_rescales_the_drawing(page):
    page.click("#clear")
    draw(page, HOUSE)
    page.wait_for_selector(SETTLED, state="attached")
    before = page.evaluate("() => document.getElementById('pad').clientWidth")
    try:
        page.set_viewport_size({"width": 420, "height": 720})
        # the page's resize handler has run (it sizes the canvas bitmap to the new CSS width) before drawing on
        page.wait_for_function("() => { const p = document.getElementById('pad'); "
                               "return p.width === Math.round(p.clientWidth * (window.devicePixelRatio || 1)); }")
        after = page.evaluate("() => document.getElementById('pad').clientWidth")
        bodies = posted(page, lambda: fire_pointers(page, [("pointerdown", 1, 10, 10), ("pointermove", 1, 30, 30),
                                                           ("pointerup", 1, 30, 30)]))
        xs = [x for s in bodies[-1] for x in s[0]]
        assert after < before and len(bodies[-1]) == 4
        assert max(xs) == pytest.approx(330 * after / before, abs=1)  # the house shrank with the canvas
    finally:
        page.set_viewport_size({"width": 1000, "height": 720})


def test_the_page_works_under_a_sub_path_and_stops_at_the_point_limit(page, clf):
    from fastapi import FastAPI

    parent = FastAPI()
    parent.mount("/sketch", create_app(clf, max_points=40))
    with running_server(parent) as url:
        other = page.context.new_page()
        try:
            other.goto(url + "/sketch/")
            other.wait_for_function("() => document.getElementById('classes').textContent.length > 0")
            draw(other, HOUSE[:1])
            other.wait_for_selector(SETTLED, state="attached")
            assert other.locator(PREDICTIONS).count() == 5  # static files and the API found under /sketch
            bodies = posted(other, lambda: draw(other, HOUSE[1:] * 4))
            assert sum(len(s[0]) for s in bodies[-1]) <= 40
            error = other.locator("#error")
            # shown, not just present: after pointerup and the answer that followed it (which hid it before)
            assert error.is_visible() and "point limit" in error.inner_text()
            assert other.locator(PREDICTIONS).count() == 5
            # more ink: dropped, the message stays, and the unchanged drawing is not sent again and again
            bodies = posted(other, lambda: draw(other, HOUSE[:1] * 3))
            assert bodies == [] and error.is_visible() and "point limit" in error.inner_text()
            posted(other, lambda: other.click("#undo"))
            assert error.is_hidden() and other.locator(PREDICTIONS).count() == 5
        finally:
            other.close()


@pytest.mark.parametrize("limit", ["stroke", "ink"])
def test_the_page_stops_at_the_stroke_and_ink_limits(page, clf, monkeypatch, limit):
    """The page keeps to the stroke and ink limits /healthz gives, as to the point limit: a stroke past the first,
    a point past the second is not drawn nor sent, and a message says which limit until undo."""
    from sketchgraph.preprocess import ink_length
    from sketchgraph.serve import app as app_mod
    from sketchgraph.sketch import Sketch

    if limit == "ink":  # the ink a drawing may have, as /healthz says it (the server's own check stays)
        monkeypatch.setattr(app_mod, "MAX_INK", 600)
    with running_server(create_app(clf, max_strokes=2 if limit == "stroke" else 2000)) as url:
        other = page.context.new_page()
        try:
            with other.expect_response(lambda r: r.url.endswith("/healthz")):
                other.goto(url + "/")
            other.wait_for_function("() => document.getElementById('classes').textContent.length > 0")
            bodies = posted(other, lambda: draw(other, HOUSE))
            error = other.locator("#error")
            assert error.is_visible() and f"{limit} limit" in error.inner_text()
            if limit == "stroke":
                assert len(bodies[-1]) == 2 and max(len(b) for b in bodies) == 2
            else:  # the walls alone are ~810 px at 255 px: points stop short of 600 (the house has ~1,200)
                assert all(ink_length(Sketch.from_strokes(b)) <= 600 for b in bodies)
                assert ink_length(Sketch.from_strokes(bodies[-1])) > 500
            assert other.locator(PREDICTIONS).count() == 5
            posted(other, lambda: other.click("#undo"))
            assert error.is_hidden()
        finally:
            other.close()


@pytest.mark.parametrize("prefix", ["", "/sketch"])
def test_api_docs_render_offline_and_try_a_prediction(page, clf, prefix):
    """``/docs`` (Swagger UI) renders with every request off this server refused (no CDN), at the root and
    under a sub-path, and its "Try it out" on ``POST /predict`` with the schema's example body gets a 200 answer."""
    from fastapi import FastAPI

    app = create_app(clf)
    if prefix:
        app, inner = FastAPI(), app
        app.mount(prefix, inner)
    with running_server(app) as url:
        other = page.context.new_page()
        outside = []

        def local_only(route):
            if route.request.url.startswith(url):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        other.route("**/*", local_only)
        try:
            other.goto(f"{url}{prefix}/docs")
            other.wait_for_selector(".opblock-post", timeout=15_000)
            paths = other.locator(".opblock .opblock-summary-path").all_inner_texts()
            assert {"/predict", "/healthz", "/classes", "/stats"} <= {p.strip().replace("\u200b", "") for p in paths}
            other.click(".opblock-post .opblock-summary")
            other.click("button.try-out__btn")
            body = json.loads(other.input_value(".opblock-post textarea.body-param__text"))
            assert len(body["drawing"]) == 2  # the example drawing from the schema
            with other.expect_response(lambda r: r.url.endswith(f"{prefix}/predict")) as answer:
                other.click("button.execute")
            assert answer.value.status == 200
            assert len(answer.value.json()["predictions"]) == 5
            if not prefix:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                other.screenshot(path=str(ARTIFACTS / "api_docs.png"), full_page=True)
            assert not outside, outside
        finally:
            other.close()


FETCH_PREDICT = """async ([api, body]) => {
    try {
        const r = await fetch(api + "/predict", {method: "POST", headers: {"Content-Type": "application/json"}, body});
        return {status: r.status, body: await r.json()};
    } catch (e) {
        return {error: String(e)};
    }
}"""


def test_a_page_of_another_origin_calls_the_api_only_when_its_origin_is_allowed(page, clf):
    """A page served on another port (another origin) ``fetch``es ``POST /predict``: with ``cors_origins`` naming
    it, Chromium's preflight passes and the page reads the predictions and a 422's detail; from a server that does
    not allow it, Chromium blocks the call."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse

    site = FastAPI()
    site.get("/", response_class=HTMLResponse)(lambda: "<!doctype html><title>another site</title><p>hello")
    strokes = [[[x for x, _ in s], [y for _, y in s]] for s in HOUSE]
    body = json.dumps({"drawing": strokes, "top_k": 3})
    with running_server(site) as home, running_server(create_app(clf, cors_origins=[home])) as open_api, \
            running_server(create_app(clf)) as closed_api:
        other = page.context.new_page()
        try:
            other.goto(home + "/")
            got = other.evaluate(FETCH_PREDICT, [open_api, body])
            assert got.get("status") == 200, got
            assert [p["label"] for p in got["body"]["predictions"]] == [p.label for p in clf.predict(strokes, 3)]
            bad = other.evaluate(FETCH_PREDICT, [open_api, json.dumps({"drawing": []})])
            assert bad.get("status") == 422 and bad["body"]["detail"], bad  # the error is readable too
            blocked = other.evaluate(FETCH_PREDICT, [closed_api, body])
            assert "status" not in blocked and "Failed to fetch" in blocked["error"], blocked
        finally:
            other.close()
