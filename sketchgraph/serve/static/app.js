// The drawing page: pointer events -> strokes [[xs, ys, ts], ...] -> debounced POST /predict -> top-5 bars.
// Coordinates are canvas CSS pixels and ts milliseconds since the first point (the server's checkpoint
// simplifies and normalises them). Self-contained: no libraries, no CDN.
(() => {
  "use strict";
  const TOP_K = 5;
  const DEBOUNCE_MS = 120;

  const pad = document.getElementById("pad");
  const ctx = pad.getContext("2d");
  const list = document.getElementById("predictions");
  const status = document.getElementById("status");
  const errorBox = document.getElementById("error");

  let strokes = [];        // finished strokes, each [xs, ys, ts]
  let current = null;      // the stroke being drawn, or null
  let t0 = null;           // time of the first point of the drawing
  let timer = null;        // debounce timer
  let sent = 0;            // id of the latest request
  let shown = 0;           // id of the latest response drawn

  // ---------------------------------------------------------------- canvas
  function resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = pad.clientWidth;
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
    const r = pad.getBoundingClientRect();
    const now = performance.now();
    if (t0 === null) t0 = now;
    return [Math.round((ev.clientX - r.left) * 10) / 10, Math.round((ev.clientY - r.top) * 10) / 10,
            Math.round(now - t0)];
  }

  function append(ev) {
    const [x, y, t] = point(ev);
    const [xs, ys, ts] = current;
    const n = xs.length;
    if (n && xs[n - 1] === x && ys[n - 1] === y) return;
    xs.push(x); ys.push(y); ts.push(t);
    if (n) {
      ctx.beginPath();
      ctx.moveTo(xs[n - 1], ys[n - 1]);
      ctx.lineTo(x, y);
      ctx.stroke();
    }
  }

  // ---------------------------------------------------------------- pointer events (mouse, pen, touch)
  pad.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0 && ev.pointerType === "mouse") return;
    ev.preventDefault();
    try { pad.setPointerCapture(ev.pointerId); } catch (_) { /* synthetic events have no active pointer */ }
    current = [[], [], []];
    append(ev);
    redraw();
  });

  pad.addEventListener("pointermove", (ev) => {
    if (!current) return;
    ev.preventDefault();
    const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
    (events.length ? events : [ev]).forEach(append);
    schedule(DEBOUNCE_MS);
  });

  function finish() {
    if (!current) return;
    if (current[0].length) strokes.push(current);
    current = null;
    schedule(0);
  }
  ["pointerup", "pointercancel", "lostpointercapture"].forEach((name) => pad.addEventListener(name, finish));

  // ---------------------------------------------------------------- predictions
  function drawing() {
    return current && current[0].length ? strokes.concat([current]) : strokes.slice();
  }

  function schedule(delay) {
    clearTimeout(timer);
    timer = setTimeout(() => { timer = null; predict(); }, delay);
    setBusy();
  }

  // data-busy="0" once the answer to the latest drawing is on screen (tests and screen readers wait on it)
  function setBusy() {
    list.dataset.busy = timer !== null || shown !== sent ? "1" : "0";
  }

  function updateStatus() {
    const d = drawing();
    const points = d.reduce((n, s) => n + s[0].length, 0);
    status.textContent = d.length ? `${d.length} stroke${d.length > 1 ? "s" : ""}, ${points} points` : "Draw something.";
  }

  async function predict() {
    updateStatus();
    const d = drawing();
    if (!d.length) { render([]); setBusy(); return; }
    const id = ++sent;
    setBusy();
    try {
      const res = await fetch("/predict", {
        method: "POST",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify({drawing: d, top_k: TOP_K}),
      });
      const body = await res.json();
      if (id < shown) return;  // a newer answer is already on screen
      shown = id;
      if (!res.ok) throw new Error(typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail));
      errorBox.hidden = true;
      render(body.predictions);
    } catch (err) {
      if (id < shown) return;
      shown = id;
      errorBox.textContent = `Could not classify: ${err.message}`;
      errorBox.hidden = false;
    } finally {
      setBusy();
    }
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
    strokes = []; current = null; t0 = null; sent++; shown = sent;
    clearTimeout(timer);
    timer = null;
    errorBox.hidden = true;
    redraw(); render([]); updateStatus(); setBusy();
  });

  document.getElementById("undo").addEventListener("click", () => {
    strokes.pop();
    if (!strokes.length) t0 = null;
    redraw(); schedule(0);
  });

  fetch("/classes").then((r) => r.json()).then((b) => {
    document.getElementById("classes").textContent = b.classes.join(", ");
  }).catch(() => { document.getElementById("known").hidden = true; });

  window.addEventListener("resize", resize);
  resize();
})();
