// The drawing page: pointer events -> strokes [[xs, ys, ts], ...] -> POST predict while you draw (throttled:
// at most one request per THROTTLE_MS while the pointer moves, one at once when a stroke ends) -> top-5 bars.
// At most one request is in flight: a drawing that changes meanwhile is sent (as it is then) once that one is
// answered, so a slow server never gets a pile of stale requests. Clear and Undo abort the one in flight (its
// drawing no longer exists) and no answer sent before them is shown.
// Coordinates are canvas CSS pixels (rescaled with the canvas when the window resizes) and ts milliseconds
// since the first point, from each event's own time stamp (the server's checkpoint simplifies and normalises
// them). One pointer draws at a time. URLs are relative, so the page also works mounted under a sub-path.
// The server's limits per drawing (GET healthz: points, strokes, ink) are kept to here: what would go past one
// is not drawn, and a message says which. Self-contained: no libraries, no CDN.
(() => {
  "use strict";
  const TOP_K = 5;
  const THROTTLE_MS = 120;  // while the pointer moves, at most one request per this many ms

  const pad = document.getElementById("pad");
  const ctx = pad.getContext("2d");
  const list = document.getElementById("predictions");
  const status = document.getElementById("status");
  const errorBox = document.getElementById("error");

  let strokes = [];        // finished strokes, each [xs, ys, ts]
  let current = null;      // the stroke being drawn, or null
  let pointer = null;      // pointerId drawing `current`
  let width = null;        // canvas CSS width the stored points refer to
  // the server's limits per drawing (GET healthz); ink: px of strokes once the drawing's larger side is 255 px
  const limits = {point: Infinity, stroke: Infinity, ink: Infinity};
  let t0 = null;           // time of the first point of the drawing
  let timer = null;        // timer of the request that is due, or null
  let lastSent = -Infinity;  // performance.now() when the latest request went out
  let limitHit = null;     // the limit ("point", "stroke", "ink") ink was refused at: its message stays until
                           // undo or clear
  let sent = 0;            // id of the latest request
  let shown = 0;           // id of the latest response drawn
  let inflight = null;     // {id, controller} of the request awaiting its answer, or null (one at a time)
  let pending = false;     // the drawing changed while a request was in flight: send it when that one is answered

  // ---------------------------------------------------------------- canvas
  // The backing store is the CSS size times devicePixelRatio (sharp ink): sized again when the window resizes and
  // when the ratio changes, which a window moved to a screen of another density does without a resize event.
  function watchPixelRatio() {
    if (!window.matchMedia) return;
    const query = window.matchMedia(`(resolution: ${window.devicePixelRatio || 1}dppx)`);
    query.addEventListener("change", () => { resize(); watchPixelRatio(); }, {once: true});
  }

  function resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = pad.clientWidth;
    if (width && w && w !== width) {  // keep the drawing in view: rescale what is stored
      const f = w / width;
      strokes.concat(current ? [current] : []).forEach((s) => {
        for (let i = 0; i < s[0].length; i++) {
          s[0][i] = Math.round(s[0][i] * f * 10) / 10;
          s[1][i] = Math.round(s[1][i] * f * 10) / 10;
        }
      });
    }
    width = w || width;
    pad.width = Math.round(w * dpr);
    pad.height = Math.round(w * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    redraw();
  }

  function drawStroke(s) {
    const [xs, ys] = s;
    if (xs.length === 0) return;
    ctx.beginPath();
    ctx.moveTo(xs[0], ys[0]);
    if (xs.length === 1) ctx.lineTo(xs[0] + 0.01, ys[0]);
    for (let i = 1; i < xs.length; i++) ctx.lineTo(xs[i], ys[i]);
    ctx.stroke();
  }

  function redraw() {
    ctx.clearRect(0, 0, pad.width, pad.height);
    ctx.lineWidth = 3;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = "#1b1f24";
    strokes.forEach(drawStroke);
    if (current) drawStroke(current);
  }

  function point(ev) {
    const r = pad.getBoundingClientRect();  // its border box: the drawing area starts clientLeft/Top inside
    const now = ev.timeStamp || performance.now();  // the event's own time (coalesced events have their own)
    if (t0 === null) t0 = now;
    return [Math.round((ev.clientX - r.left - pad.clientLeft) * 10) / 10,
            Math.round((ev.clientY - r.top - pad.clientTop) * 10) / 10, Math.max(0, Math.round(now - t0))];
  }

  function pointCount() {
    return drawing().reduce((n, s) => n + s[0].length, 0);
  }

  // The drawing's ink as the server measures it (sketchgraph.preprocess.ink_length) with (x, y) added to the
  // current stroke: the length of its strokes once scaled so that its larger side is 255 px.
  function inkWith(x, y) {
    let minX = x, maxX = x, minY = y, maxY = y, length = 0;
    const last = current[0].length - 1;
    for (const [xs, ys] of strokes.concat([current])) {
      for (let i = 0; i < xs.length; i++) {
        minX = Math.min(minX, xs[i]); maxX = Math.max(maxX, xs[i]);
        minY = Math.min(minY, ys[i]); maxY = Math.max(maxY, ys[i]);
        if (i > 0) length += Math.hypot(xs[i] - xs[i - 1], ys[i] - ys[i - 1]);
      }
    }
    if (last >= 0) length += Math.hypot(x - current[0][last], y - current[1][last]);
    const extent = Math.max(maxX - minX, maxY - minY);
    return extent > 0 ? length * 255 / extent : 0;
  }

  // Ink refused at `limit`: the message says so until undo or clear.
  function refuse(limit) {
    limitHit = limit;
    showError(limitMessage());
    return false;
  }

  // Adds the event's point to the current stroke; false when it adds nothing (the same point, or a limit).
  function append(ev) {
    const [x, y, t] = point(ev);
    const [xs, ys, ts] = current;
    const n = xs.length;
    if (n && xs[n - 1] === x && ys[n - 1] === y) return false;
    // the server would refuse the drawing: stop taking points
    if (pointCount() >= limits.point) return refuse("point");
    if (limits.ink < Infinity && inkWith(x, y) > limits.ink) return refuse("ink");
    xs.push(x); ys.push(y); ts.push(t);
    if (n) {
      ctx.beginPath();
      ctx.moveTo(xs[n - 1], ys[n - 1]);
      ctx.lineTo(x, y);
      ctx.stroke();
    }
    return true;
  }

  // ---------------------------------------------------------------- pointer events (mouse, pen, touch)
  pad.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0) return;  // primary button, pen tip or finger only (not a pen's eraser or barrel button)
    ev.preventDefault();
    if (current) return;  // another finger or pen is drawing
    if (strokes.length >= limits.stroke) { refuse("stroke"); return; }
    pointer = ev.pointerId;
    try { pad.setPointerCapture(ev.pointerId); } catch (_) { /* synthetic events have no active pointer */ }
    current = [[], [], []];
    append(ev);
    redraw();
  });

  pad.addEventListener("pointermove", (ev) => {
    if (!current || ev.pointerId !== pointer) return;
    ev.preventDefault();
    const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
    let added = false;
    for (const e of events.length ? events : [ev]) added = append(e) || added;
    if (added) throttle();  // nothing new (e.g. at the point limit): nothing to send
  });

  function finish(ev) {
    if (!current || ev.pointerId !== pointer) return;
    const drew = current[0].length > 0;
    if (drew) strokes.push(current);
    current = null;
    pointer = null;
    if (drew || timer !== null) schedule(0);  // a stroke that added no point changes nothing
  }
  ["pointerup", "pointercancel", "lostpointercapture"].forEach((name) => pad.addEventListener(name, finish));

  // ---------------------------------------------------------------- predictions
  function drawing() {
    return current && current[0].length ? strokes.concat([current]) : strokes.slice();
  }

  // A request after `delay` ms, instead of the one that was due (a finished stroke, undo: 0, at once).
  function schedule(delay) {
    clearTimeout(timer);
    timer = setTimeout(() => { timer = null; predict(); }, delay);
    setBusy();
  }

  // While the pointer moves: a request now when none went out in the last THROTTLE_MS, else one when that time
  // is up, carrying the drawing as it is then. Later moves do not push it back (that would be a debounce, and a
  // continuous stroke would get no prediction until the pointer stops).
  function throttle() {
    if (timer !== null) return;  // a request is already due
    schedule(Math.max(0, lastSent + THROTTLE_MS - performance.now()));
  }

  // data-busy="0" once the answer to the latest drawing is on screen (tests and screen readers wait on it)
  function setBusy() {
    list.dataset.busy = timer !== null || pending || shown !== sent ? "1" : "0";
  }

  // The drawing was cleared or undone: the request in flight is for a drawing that no longer exists. Abort it
  // (the server then skips its work) and never show an answer sent before now.
  function supersede() {
    if (inflight) inflight.controller.abort();
    inflight = null;
    pending = false;
    sent++; shown = sent;
  }

  function updateStatus() {
    const d = drawing();
    const points = d.reduce((n, s) => n + s[0].length, 0);
    status.textContent = d.length ? `${d.length} stroke${d.length > 1 ? "s" : ""}, ${points} points` : "Draw something.";
  }

  async function predict() {
    updateStatus();
    const d = drawing();
    if (!d.length) {  // nothing to classify: answers still on the way are for an older drawing
      supersede();
      errorBox.hidden = true;
      render([]); setBusy(); return;
    }
    if (inflight) {  // latest wins: the drawing as it is when the answer comes is sent then
      pending = true;
      setBusy(); return;
    }
    const id = ++sent;
    const mine = {id, controller: new AbortController()};
    inflight = mine;
    lastSent = performance.now();
    setBusy();
    try {
      const res = await fetch("predict", {
        method: "POST",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify({drawing: d, top_k: TOP_K}),
        signal: mine.controller.signal,
      });
      const text = await res.text();
      if (id < shown) return;  // a newer answer is already on screen
      shown = id;
      let body = null;
      try { body = JSON.parse(text); } catch (_) { /* a proxy's HTML error page, say */ }
      if (!res.ok || body === null) {
        const detail = body && body.detail !== undefined ? body.detail : `HTTP ${res.status} ${res.statusText}`;
        throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
      }
      hideError();
      render(body.predictions);
    } catch (err) {
      if (id < shown || err.name === "AbortError") return;  // aborted: superseded by Clear or Undo
      shown = id;
      render([]);  // no stale answer next to an error
      showError(`Could not classify: ${err.message}`);
    } finally {
      if (inflight === mine) {  // not superseded: the drawing changed meanwhile goes now
        inflight = null;
        if (pending) { pending = false; predict(); }
      }
      setBusy();
    }
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function limitMessage() {
    const reached = limitHit === "ink"
      ? `the ink limit (${limits.ink} px of strokes with the drawing scaled to 255 px)`
      : `the ${limits[limitHit]} ${limitHit} limit`;
    return `This drawing has reached ${reached}: undo or clear to go on.`;
  }

  // After a good answer: no error, except a limit's, which holds until undo or clear (ink is still being
  // dropped, however well the points already taken are classified).
  function hideError() {
    if (limitHit) showError(limitMessage());
    else errorBox.hidden = true;
  }

  function render(predictions) {
    list.replaceChildren(...predictions.map((p) => {
      const li = document.createElement("li");
      li.className = "prediction";
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = p.label;
      label.title = p.label;
      const bar = document.createElement("div");
      bar.className = "bar";
      const fill = document.createElement("div");
      fill.className = "fill";
      fill.style.width = `${(100 * p.score).toFixed(1)}%`;
      bar.appendChild(fill);
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = `${(100 * p.score).toFixed(1)}%`;
      li.append(label, bar, score);
      return li;
    }));
  }

  // ---------------------------------------------------------------- buttons
  document.getElementById("clear").addEventListener("click", () => {
    strokes = []; current = null; pointer = null; t0 = null; limitHit = null;
    supersede();
    clearTimeout(timer);
    timer = null;
    errorBox.hidden = true;
    redraw(); render([]); updateStatus(); setBusy();
  });

  document.getElementById("undo").addEventListener("click", () => {
    strokes.pop();
    limitHit = null;  // room again (ink refused later says so again)
    if (!strokes.length) t0 = null;
    supersede();  // an answer on its way is for the drawing before the undo
    redraw(); schedule(0);
  });

  fetch("classes").then((r) => r.json()).then((b) => {
    document.getElementById("classes").textContent = b.classes.join(", ");
  }).catch(() => { document.getElementById("known").hidden = true; });
  fetch("healthz").then((r) => r.json()).then((b) => {
    [["point", b.max_points], ["stroke", b.max_strokes], ["ink", b.max_ink]].forEach(([name, value]) => {
      if (value > 0) limits[name] = value;
    });
  }).catch(() => { /* no limit known: the server's 422 says it */ });

  window.addEventListener("resize", resize);
  watchPixelRatio();
  resize();
})();
