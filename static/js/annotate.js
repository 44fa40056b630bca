/* The annotation page: frames of one microtask, boxes/tracks/polygons/labels drawn with the mouse.
 *
 * No build step. The page embeds its data as JSON and talks to the worker API with the session
 * cookie and CSRF token. Coordinates are frame pixels, boxes [x1, y1, x2, y2], exactly as the API
 * takes them. Two modes share the workspace:
 *
 * - annotation (#assignment-data: the whitelisted view the worker API serves): one microtask,
 *   claim timer, heartbeat, release, submit, claim next;
 * - qualification (#qualification-data: the test's questions, never their answers): several
 *   questions, each with its own classes, frame size, frames and annotation state; the answers
 *   are posted together and the result is shown in place.
 */
(function () {
  "use strict";

  // ---- Keyframe interpolation: the same rule as tasks/interpolation.py (keep them in step) ----
  // Before the first keyframe: absent. At or after keyframe i (last one <= frame): absent if i is
  // outside; else linear towards keyframe i+1 when it exists and is visible; else i's box holds.
  function interpolateTrack(keyframes, frame) {
    let i = -1;
    for (let k = 0; k < keyframes.length; k++) {
      if (keyframes[k].frame <= frame) i = k;
      else break;
    }
    if (i < 0) return null;
    const a = keyframes[i];
    if (a.outside) return null;
    const b = keyframes[i + 1];
    if (!b || b.outside) return a.box.slice();
    const t = (frame - a.frame) / (b.frame - a.frame);
    return a.box.map((v, j) => v * (1 - t) + b.box[j] * t);
  }

  // ---- Polygon geometry ----
  function pointInPolygon(p, points) {
    let inside = false;
    for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
      const [xi, yi] = points[i], [xj, yj] = points[j];
      if ((yi > p[1]) !== (yj > p[1]) && p[0] < ((xj - xi) * (p[1] - yi)) / (yj - yi) + xi) inside = !inside;
    }
    return inside;
  }

  // The closest point to p on the closed polygon's edges: {index (edge i runs from point i to
  // point i+1), point, dist}.
  function nearestEdge(p, points) {
    let best = { index: -1, point: null, dist: Infinity };
    for (let i = 0; i < points.length; i++) {
      const a = points[i], b = points[(i + 1) % points.length];
      const dx = b[0] - a[0], dy = b[1] - a[1], len2 = dx * dx + dy * dy;
      const t = len2 ? Math.min(1, Math.max(0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2)) : 0;
      const q = [a[0] + t * dx, a[1] + t * dy];
      const dist = Math.hypot(p[0] - q[0], p[1] - q[1]);
      if (dist < best.dist) best = { index: i, point: q, dist: dist };
    }
    return best;
  }

  function polygonArea(points) {
    let s = 0;
    for (let i = 0; i < points.length; i++) {
      const a = points[i], b = points[(i + 1) % points.length];
      s += a[0] * b[1] - b[0] * a[1];
    }
    return Math.abs(s) / 2;
  }

  window.Crowdlabel = { interpolateTrack: interpolateTrack, pointInPolygon: pointInPolygon, nearestEdge: nearestEdge };

  const $ = (id) => document.getElementById(id);
  const dataEl = $("assignment-data") || $("qualification-data");
  if (!dataEl || !$("canvas")) return;
  const qualMode = dataEl.id === "qualification-data";
  const data = JSON.parse(dataEl.textContent);

  const canvas = $("canvas"), ctx = canvas.getContext("2d"), img = $("frame-img");
  const picker = $("class-picker"), scrub = $("scrub");

  // ---- Workspaces: one per microtask (annotation) or per question (qualification) ----
  function newState(payload) {
    const st = {
      idx: 0,
      tracks: [],        // track: {id, label, keyframes: [{frame, box, outside}]}
      boxes: [],         // bbox: {frame, label, box}
      polygons: [],      // polygon: {frame, label, points}
      labels: {},        // classify: {frame: label}
      selected: null,    // a track, box or polygon object
      drag: null,
      draft: null,       // polygon being drawn: [[x, y], ...]
      errorRefs: new Set(),
      errors: [],        // messages shown in #errors
      errorFrame: null,  // the frame of the first offending shape
      errorFocused: true,
      nextId: 1,
      empty: false,      // qualification: "nothing to annotate here" was ticked
    };
    if (payload) {
      st.tracks = payload.tracks || [];
      st.boxes = payload.boxes || [];
      st.polygons = payload.polygons || [];
      (payload.labels || []).forEach((l) => { st.labels[l.frame] = l.label; });
    }
    // Track ids continue after any loaded ones.
    st.nextId = st.tracks.reduce((m, t) => Math.max(m, t.id + 1), 1);
    return st;
  }

  function makeWorkspace(opts) {
    const t = opts.task;
    const w = {
      key: opts.key,
      number: opts.number,
      type: opts.type,
      classes: opts.classes,
      task: t,
      instructions: opts.instructions || "",
      W: t.width || 640,
      H: t.height || 360,
      frames: t.frames.map((f) => f.frame),
      images: t.frames.map((f) => { const im = new Image(); im.src = f.url; return im; }),
      state: newState(opts.payload),
    };
    w.images.forEach((im) => im.addEventListener("load", () => { if (ws === w) render(); }));
    return w;
  }

  let workspaces;
  if (qualMode) {
    workspaces = data.questions.map((q, i) => makeWorkspace({
      key: String(q.id), number: i + 1, type: data.annotation_type, classes: q.classes,
      instructions: q.instructions,
      task: { width: q.width, height: q.height, frames: q.frames, frame_start: q.frame_start, frame_end: q.frame_end },
    }));
  } else {
    workspaces = [makeWorkspace({
      key: String(data.id), number: 1, type: data.job.annotation_type, classes: data.job.classes,
      task: data.task, payload: data.submission && data.submission.payload,
    })];
  }

  // The current workspace, unpacked: every function below works on these.
  let ws, state, task, type, classes, W, H, frames, images;
  let readOnly = qualMode ? false : data.status !== "claimed";
  const session = {
    playing: null,
    active: 0,
    lastInput: Date.now(),
    deadline: qualMode ? null : new Date(data.deadline),
  };
  const frame = () => frames[state.idx];

  function use(w) {
    if (session.playing) togglePlay();
    if (state) { state.drag = null; state.draft = null; }
    ws = w; state = w.state; task = w.task; type = w.type; classes = w.classes;
    W = w.W; H = w.H; frames = w.frames; images = w.images;
    canvas.width = W; canvas.height = H;
    canvas.style.cursor = "";
    scrub.max = String(Math.max(0, frames.length - 1));
    if (qualMode) {
      picker.innerHTML = "";
      classes.forEach((c, i) => {
        const o = document.createElement("option");
        o.value = c; o.textContent = `${i + 1}. ${c}`;
        picker.appendChild(o);
      });
      const ins = $("q-instructions");
      if (ins) { ins.textContent = w.instructions || "Annotate the frame."; }
    }
    focusError();
  }

  // Once after a failed submission, show the frame of the question's first offending shape.
  function focusError() {
    if (state.errorFocused) return;
    state.errorFocused = true;
    if (state.errorFrame !== null && frames.includes(state.errorFrame)) state.idx = frames.indexOf(state.errorFrame);
  }

  // ---- Shapes on the current frame ----
  function shapesHere() {
    const f = frame();
    if (type === "track") {
      return state.tracks
        .map((t) => ({ ref: t, label: t.label, box: interpolateTrack(t.keyframes, f),
                       key: t.keyframes.some((k) => k.frame === f) }))
        .filter((s) => s.box);
    }
    if (type === "bbox") {
      return state.boxes.filter((b) => b.frame === f).map((b) => ({ ref: b, label: b.label, box: b.box, key: true }));
    }
    if (type === "polygon") {
      return state.polygons.filter((p) => p.frame === f).map((p) => ({ ref: p, label: p.label, points: p.points, box: bounds(p.points), key: true }));
    }
    return [];
  }

  function bounds(points) {
    const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
    return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
  }

  const colors = ["#ef4444", "#22c55e", "#3b82f6", "#eab308", "#a855f7", "#06b6d4", "#f97316", "#ec4899"];
  const colorOf = (label) => colors[Math.max(0, classes.indexOf(label)) % colors.length];
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  const round2 = (v) => Math.round(v * 100) / 100;
  const scale = () => W / canvas.getBoundingClientRect().width;

  // ---- Drawing ----
  function render() {
    const f = frame();
    const im = images[state.idx];
    if (im && im.src) img.src = im.src;
    ctx.clearRect(0, 0, W, H);
    const lw = 2 * scale();
    // The selected track's interpolated path across every frame (the preview).
    if (type === "track" && state.selected && state.tracks.includes(state.selected)) {
      ctx.strokeStyle = "rgba(255,255,255,0.7)"; ctx.lineWidth = lw; ctx.setLineDash([4 * scale(), 4 * scale()]);
      ctx.beginPath();
      let started = false;
      frames.forEach((fr) => {
        const b = interpolateTrack(state.selected.keyframes, fr);
        if (!b) { started = false; return; }
        const cx = (b[0] + b[2]) / 2, cy = (b[1] + b[3]) / 2;
        if (started) ctx.lineTo(cx, cy); else ctx.moveTo(cx, cy);
        started = true;
      });
      ctx.stroke(); ctx.setLineDash([]);
    }
    shapesHere().forEach((s) => {
      const sel = s.ref === state.selected;
      const bad = state.errorRefs.has(s.ref);
      ctx.strokeStyle = bad ? "#ff0000" : colorOf(s.label);
      ctx.lineWidth = sel ? lw * 2 : lw;
      ctx.setLineDash(s.key ? [] : [6 * scale(), 4 * scale()]);  // dashed = interpolated
      if (s.points) {
        ctx.beginPath();
        s.points.forEach((p, i) => (i ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1])));
        ctx.closePath(); ctx.stroke();
        if (sel && !readOnly) {
          // Vertex handles: drag to move, Alt+click or right-click to remove.
          const h = 4 * scale();
          ctx.fillStyle = "#fff"; ctx.lineWidth = lw / 2;
          s.points.forEach(([x, y]) => { ctx.fillRect(x - h, y - h, 2 * h, 2 * h); ctx.strokeRect(x - h, y - h, 2 * h, 2 * h); });
        }
      } else {
        const [x1, y1, x2, y2] = s.box;
        ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
        if (sel && !readOnly) {
          ctx.fillStyle = "#fff";
          const h = 5 * scale();
          [[x1, y1], [x2, y1], [x1, y2], [x2, y2]].forEach(([x, y]) => ctx.fillRect(x - h, y - h, 2 * h, 2 * h));
        }
      }
      ctx.setLineDash([]);
      ctx.fillStyle = bad ? "#ff0000" : colorOf(s.label);
      ctx.font = `${Math.round(13 * scale())}px sans-serif`;
      const tag = (type === "track" ? `#${s.ref.id} ` : "") + s.label;
      ctx.fillText(tag, s.box[0] + 2 * scale(), Math.max(12 * scale(), s.box[1] - 3 * scale()));
    });
    if (state.drag && state.drag.box) {
      const b = state.drag.box;
      ctx.strokeStyle = "#fff"; ctx.lineWidth = lw; ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
    }
    if (state.draft) {
      ctx.strokeStyle = "#fff"; ctx.lineWidth = lw; ctx.beginPath();
      state.draft.forEach((p, i) => (i ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1])));
      ctx.stroke();
    }
    $("frame-label").textContent = `frame ${f} (${state.idx + 1}/${frames.length})`;
    scrub.value = String(state.idx);
    renderObjects();
    renderTimeline();
    renderErrors();
    $("classify").innerHTML = "";
    if (type === "classify") renderClassify();
    if (qualMode) renderQuestions();
  }

  function renderObjects() {
    const list = $("objects");
    list.innerHTML = "";
    const items = type === "track" ? state.tracks : type === "bbox" ? state.boxes.filter((b) => b.frame === frame())
      : type === "polygon" ? state.polygons.filter((p) => p.frame === frame()) : [];
    items.forEach((o) => {
      const li = document.createElement("li");
      li.className = (o === state.selected ? "selected " : "") + (state.errorRefs.has(o) ? "bad" : "");
      li.textContent = (type === "track" ? `#${o.id} ${o.label} · ${o.keyframes.length} keyframe(s)`
        : type === "polygon" ? `${o.label} · ${o.points.length} points` : o.label);
      li.addEventListener("click", () => { select(o); });
      list.appendChild(li);
    });
    $("object-count").textContent = String(type === "track" ? state.tracks.length
      : type === "bbox" ? state.boxes.length : state.polygons.length);
  }

  function renderErrors() {
    const list = $("errors");
    list.innerHTML = "";
    state.errors.forEach((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      list.appendChild(li);
    });
  }

  function renderTimeline() {
    const tl = $("timeline");
    if (!tl) return;
    tl.innerHTML = "";
    const t = type === "track" && state.tracks.includes(state.selected) ? state.selected : null;
    frames.forEach((fr, i) => {
      const cell = document.createElement("span");
      let cls = "cell";
      if (i === state.idx) cls += " current";
      if (t) {
        const k = t.keyframes.find((kf) => kf.frame === fr);
        if (k) cls += k.outside ? " outside-key" : " key";
        else if (interpolateTrack(t.keyframes, fr)) cls += " interp";
      } else if (type === "bbox" && state.boxes.some((b) => b.frame === fr)) cls += " key";
      else if (type === "polygon" && state.polygons.some((p) => p.frame === fr)) cls += " key";
      else if (type === "classify" && state.labels[fr]) cls += " key";
      cell.className = cls;
      cell.title = `frame ${fr}`;
      cell.addEventListener("click", () => go(i));
      tl.appendChild(cell);
    });
  }

  function renderClassify() {
    const box = $("classify");
    box.innerHTML = "";
    classes.forEach((c, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = state.labels[frame()] === c ? "" : "secondary";
      b.textContent = `${i + 1}. ${c}`;
      b.disabled = readOnly;
      b.addEventListener("click", () => { state.labels[frame()] = c; touched(); render(); });
      box.appendChild(b);
    });
  }

  // ---- Editing ----
  function select(o) {
    state.selected = o;
    if (o && o.label) picker.value = o.label;
    render();
  }

  function setKeyframe(track, f, box, outside) {
    const kf = { frame: f, box: box.map(round2), outside: !!outside };
    const i = track.keyframes.findIndex((k) => k.frame === f);
    if (i >= 0) track.keyframes[i] = kf;
    else { track.keyframes.push(kf); track.keyframes.sort((a, b) => a.frame - b.frame); }
  }

  function normBox(x1, y1, x2, y2) {
    return [clamp(Math.min(x1, x2), 0, W), clamp(Math.min(y1, y2), 0, H),
            clamp(Math.max(x1, x2), 0, W), clamp(Math.max(y1, y2), 0, H)].map(round2);
  }

  function setBox(s, box) {
    if (type === "track") setKeyframe(s.ref, frame(), box, false);
    else s.ref.box = box;
  }

  function deleteSelected() {
    const o = state.selected;
    if (!o) return;
    state.tracks = state.tracks.filter((t) => t !== o);
    state.boxes = state.boxes.filter((b) => b !== o);
    state.polygons = state.polygons.filter((p) => p !== o);
    state.selected = null;
    touched(); render();
  }

  function point(ev) {
    const r = canvas.getBoundingClientRect();
    return [clamp((ev.clientX - r.left) * (W / r.width), 0, W), clamp((ev.clientY - r.top) * (H / r.height), 0, H)];
  }

  function hit(p) {
    const s = scale(), h = 8 * s;
    const here = shapesHere();
    const sel = here.find((x) => x.ref === state.selected);
    if (sel && !sel.points) {
      const [x1, y1, x2, y2] = sel.box;
      const corners = [[x1, y1], [x2, y1], [x1, y2], [x2, y2]];
      const c = corners.findIndex(([x, y]) => Math.abs(p[0] - x) <= h && Math.abs(p[1] - y) <= h);
      if (c >= 0) return { shape: sel, corner: c };
    }
    const inside = here.filter((x) => p[0] >= x.box[0] && p[0] <= x.box[2] && p[1] >= x.box[1] && p[1] <= x.box[3]);
    inside.sort((a, b) => (a.box[2] - a.box[0]) * (a.box[3] - a.box[1]) - (b.box[2] - b.box[0]) * (b.box[3] - b.box[1]));
    return inside.length ? { shape: inside[0], corner: -1 } : null;
  }

  // What is under p for polygon editing: a vertex or an edge of the selected polygon, else the
  // smallest polygon on this frame containing p.
  function polygonHit(p) {
    const tol = 8 * scale();
    const here = state.polygons.filter((o) => o.frame === frame());
    const sel = here.includes(state.selected) ? state.selected : null;
    if (sel) {
      let best = -1, bestDist = Infinity;
      sel.points.forEach((q, i) => {
        const d = Math.max(Math.abs(p[0] - q[0]), Math.abs(p[1] - q[1]));
        if (d <= tol && d < bestDist) { best = i; bestDist = d; }
      });
      if (best >= 0) return { kind: "vertex", poly: sel, index: best };
      const e = nearestEdge(p, sel.points);
      if (e.dist <= tol / 2 + 1) return { kind: "edge", poly: sel, index: e.index, at: e.point };
    }
    const inside = here.filter((o) => pointInPolygon(p, o.points));
    inside.sort((a, b) => polygonArea(a.points) - polygonArea(b.points));
    return inside.length ? { kind: "inside", poly: inside[0] } : null;
  }

  function removeVertex(poly, i) {
    if (poly.points.length <= 3) {
      showMessage("A polygon keeps at least 3 points; press Delete to remove the whole polygon.", false);
      return;
    }
    poly.points.splice(i, 1);
    touched(); render();
  }

  function insertVertex(poly, edge, at) {
    poly.points.splice(edge + 1, 0, at.map(round2));
    touched(); render();
  }

  function polygonMouseDown(ev, p) {
    if (state.draft) {
      if (ev.button !== 0) return;
      state.draft.push(p.map(round2));
      render();
      return;
    }
    const h = polygonHit(p);
    if (ev.button === 2 || (ev.button === 0 && ev.altKey)) {
      if (h && h.kind === "vertex") removeVertex(h.poly, h.index);
      return;
    }
    if (ev.button !== 0) return;
    if (!h) {
      state.selected = null;
      state.draft = [p.map(round2)];
      render();
      return;
    }
    if (h.poly !== state.selected) select(h.poly);
    if (h.kind === "vertex") state.drag = { mode: "vertex", poly: h.poly, index: h.index };
    else state.drag = { mode: "shift", poly: h.poly, start: p, orig: h.poly.points.map((q) => q.slice()) };
    render();
  }

  canvas.addEventListener("mousedown", (ev) => {
    if (readOnly || type === "classify") return;
    ev.preventDefault();
    const p = point(ev);
    if (type === "polygon") {
      polygonMouseDown(ev, p);
      return;
    }
    const h = hit(p);
    if (h) {
      select(h.shape.ref);
      state.drag = { mode: h.corner >= 0 ? "resize" : "move", corner: h.corner, start: p, shape: h.shape, orig: h.shape.box.slice() };
    } else {
      state.selected = null;
      state.drag = { mode: "draw", start: p, box: [p[0], p[1], p[0], p[1]] };
    }
    render();
  });

  canvas.addEventListener("contextmenu", (ev) => {
    if (type === "polygon") ev.preventDefault();  // right-click removes a vertex
  });

  // Cursor hints for polygon editing.
  canvas.addEventListener("mousemove", (ev) => {
    if (type !== "polygon" || readOnly || state.drag) return;
    const h = state.draft ? null : polygonHit(point(ev));
    canvas.style.cursor = !h ? "" : h.kind === "vertex" ? "pointer"
      : h.kind === "edge" ? "copy" : h.poly === state.selected ? "move" : "pointer";
  });

  window.addEventListener("mousemove", (ev) => {
    const d = state.drag;
    if (!d) return;
    const p = point(ev);
    if (d.mode === "vertex") {
      d.poly.points[d.index] = p.map(round2);
      render();
      return;
    }
    if (d.mode === "shift") {
      // Move the whole polygon, clamped so that it stays inside the frame.
      const b = bounds(d.orig);
      const dx = clamp(p[0] - d.start[0], -b[0], W - b[2]), dy = clamp(p[1] - d.start[1], -b[1], H - b[3]);
      d.poly.points = d.orig.map(([x, y]) => [round2(x + dx), round2(y + dy)]);
      render();
      return;
    }
    if (d.mode === "draw") {
      d.box = normBox(d.start[0], d.start[1], p[0], p[1]);
    } else if (d.mode === "move") {
      const [x1, y1, x2, y2] = d.orig, w = x2 - x1, h = y2 - y1;
      const nx = clamp(x1 + p[0] - d.start[0], 0, W - w), ny = clamp(y1 + p[1] - d.start[1], 0, H - h);
      d.box = [nx, ny, nx + w, ny + h].map(round2);
    } else {
      const b = d.orig.slice();
      if (d.corner === 0 || d.corner === 2) b[0] = p[0]; else b[2] = p[0];
      if (d.corner === 0 || d.corner === 1) b[1] = p[1]; else b[3] = p[1];
      d.box = normBox(b[0], b[1], b[2], b[3]);
    }
    if (d.mode !== "draw") setBox(d.shape, d.box);
    render();
  });

  window.addEventListener("mouseup", () => {
    const d = state.drag;
    if (!d) return;
    state.drag = null;
    if (d.mode === "draw" && d.box) {
      const b = d.box;
      if (b[2] - b[0] >= 3 && b[3] - b[1] >= 3) {
        const label = picker.value;
        if (type === "track") {
          const t = { id: state.nextId++, label: label, keyframes: [] };
          setKeyframe(t, frame(), b, false);
          state.tracks.push(t);
          state.selected = t;
        } else {
          const o = { frame: frame(), label: label, box: b };
          state.boxes.push(o);
          state.selected = o;
        }
      }
    }
    touched(); render();
  });

  // While drawing, a double-click closes the polygon; otherwise a double-click on an edge of the
  // selected polygon inserts a vertex there.
  canvas.addEventListener("dblclick", (ev) => {
    if (state.draft) { closePolygon(); return; }
    if (readOnly || type !== "polygon") return;
    const h = polygonHit(point(ev));
    if (h && h.kind === "edge") insertVertex(h.poly, h.index, h.at);
  });

  function closePolygon() {
    if (!state.draft) return;
    // A double-click adds the same point twice; drop exact repeats before closing.
    const pts = state.draft.filter((p, i, a) => i === 0 || p[0] !== a[i - 1][0] || p[1] !== a[i - 1][1]);
    state.draft = null;
    if (pts.length >= 3) {
      const o = { frame: frame(), label: picker.value, points: pts };
      state.polygons.push(o);
      state.selected = o;
    }
    touched(); render();
  }

  picker.addEventListener("change", () => {
    if (state.selected && !readOnly) { state.selected.label = picker.value; touched(); render(); }
  });

  // ---- Navigation and playback ----
  function go(i) {
    state.idx = clamp(i, 0, frames.length - 1);
    render();
  }
  scrub.addEventListener("input", () => go(Number(scrub.value)));
  $("prev").addEventListener("click", () => go(state.idx - 1));
  $("next").addEventListener("click", () => go(state.idx + 1));
  $("play").addEventListener("click", togglePlay);

  function togglePlay() {
    if (session.playing) { clearInterval(session.playing); session.playing = null; $("play").textContent = "▶ Play"; return; }
    const fps = Math.min(task.fps || 10, 30);
    $("play").textContent = "❚❚ Pause";
    session.playing = setInterval(() => {
      if (state.idx >= frames.length - 1) { togglePlay(); return; }
      go(state.idx + 1);
    }, 1000 / fps);
  }

  document.addEventListener("keydown", (ev) => {
    if (ev.target.tagName === "INPUT" || ev.target.tagName === "SELECT" || ev.target.tagName === "TEXTAREA") return;
    const k = ev.key;
    let handled = true;
    if (k === "ArrowRight" || k === "d") go(state.idx + (ev.shiftKey ? 10 : 1));
    else if (k === "ArrowLeft" || k === "a") go(state.idx - (ev.shiftKey ? 10 : 1));
    else if (k === "Home") go(0);
    else if (k === "End") go(frames.length - 1);
    else if (k === " ") togglePlay();
    else if (/^[1-9]$/.test(k) && Number(k) <= classes.length) {
      picker.value = classes[Number(k) - 1];
      if (type === "classify" && !readOnly) { state.labels[frame()] = picker.value; touched(); render(); }
      else picker.dispatchEvent(new Event("change"));
    } else if ((k === "Delete" || k === "Backspace") && !readOnly) deleteSelected();
    else if (k === "Escape") { state.draft = null; state.selected = null; render(); }
    else if (k === "Enter" && (ev.ctrlKey || ev.metaKey)) submit();
    else if (k === "Enter" && type === "polygon") closePolygon();
    else if ((k === "o" || k === "O") && type === "track" && !readOnly) toggleOutside();
    else if ((k === "k" || k === "K") && type === "track" && !readOnly) keyHere();
    else if ((k === "PageDown" || k === "PageUp") && qualMode) switchQuestion(ws.number - 1 + (k === "PageDown" ? 1 : -1));
    else handled = false;
    if (handled) ev.preventDefault();
  });

  function keyHere() {
    const t = state.selected;
    if (!t || !state.tracks.includes(t)) return;
    const b = interpolateTrack(t.keyframes, frame());
    if (b) { setKeyframe(t, frame(), b, false); touched(); render(); }
  }

  function toggleOutside() {
    const t = state.selected;
    if (!t || !state.tracks.includes(t)) return;
    const f = frame();
    const existing = t.keyframes.find((k) => k.frame === f);
    if (existing && existing.outside) { existing.outside = false; }
    else {
      const prev = t.keyframes.filter((k) => k.frame <= f && !k.outside).pop();
      const b = interpolateTrack(t.keyframes, f) || (prev && prev.box);
      if (!b || t.keyframes[0].frame >= f) return;  // a track cannot start outside
      setKeyframe(t, f, b, true);
    }
    touched(); render();
  }

  // ---- Time: remaining claim time, active time, heartbeat (annotation mode only) ----
  function touched() { session.lastInput = Date.now(); }
  ["mousemove", "keydown", "mousedown"].forEach((e) => document.addEventListener(e, touched, { passive: true }));
  if (!qualMode) {
    setInterval(() => {
      if (!document.hidden && Date.now() - session.lastInput < 30000) session.active += 1;
      const left = Math.max(0, Math.floor((session.deadline - Date.now()) / 1000));
      const el = $("timer");
      el.textContent = readOnly ? data.status : `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} left`;
      el.className = left < 120 && !readOnly ? "timer urgent" : "timer";
    }, 1000);
  }

  function csrf() {
    const m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  async function api(path, body) {
    let r;
    try {
      r = await fetch(path, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
        body: JSON.stringify(body || {}),
      });
    } catch (e) {
      return { ok: false, status: 0, json: { error: { message: "The server could not be reached; try again." } } };
    }
    let json = null;
    try { json = await r.json(); } catch (e) { json = null; }
    return { ok: r.ok, status: r.status, json: json };
  }

  if (!qualMode && !readOnly) {
    setInterval(async () => {
      const r = await api(`/api/work/assignments/${data.id}/heartbeat/`, { active_seconds: session.active });
      if (r.ok) session.deadline = new Date(r.json.deadline);
      else if (r.json) showMessage(r.json.error.message, true);
    }, 60000);
  }

  // ---- Submit, errors ----
  function payloadOf(st, kind) {
    if (kind === "track") return { tracks: st.tracks.map((t) => ({ id: t.id, label: t.label, keyframes: t.keyframes })) };
    if (kind === "bbox") return { boxes: st.boxes.map((b) => ({ frame: b.frame, label: b.label, box: b.box })) };
    if (kind === "polygon") return { polygons: st.polygons.map((p) => ({ frame: p.frame, label: p.label, points: p.points })) };
    return { labels: Object.keys(st.labels).map((f) => ({ frame: Number(f), label: st.labels[f] })) };
  }

  function describe(path, sent, st) {
    // "tracks[0].keyframes[2].box" -> "Object #1 (car), keyframe at frame 12: box"
    const m = path.match(/^(tracks|boxes|polygons|labels)\[(\d+)\](?:\.keyframes\[(\d+)\])?\.?(.*)$/);
    if (!m) return { text: path, ref: null, frame: null };
    const list = { tracks: st.tracks, boxes: st.boxes, polygons: st.polygons }[m[1]];
    const ref = list ? list[Number(m[2])] : null;
    const item = (sent[m[1]] || [])[Number(m[2])] || {};
    let text = m[1] === "tracks" ? `Object #${item.id} (${item.label})` : `${{ boxes: "box", polygons: "polygon", labels: "label" }[m[1]]} ${Number(m[2]) + 1} on frame ${item.frame}`;
    let at = typeof item.frame === "number" ? item.frame : null;
    if (m[3] !== undefined && item.keyframes && item.keyframes[Number(m[3])]) {
      at = item.keyframes[Number(m[3])].frame;
      text += `, keyframe at frame ${at}`;
    } else if (item.keyframes && item.keyframes.length && at === null) at = item.keyframes[0].frame;
    if (m[4]) text += `: ${m[4]}`;
    return { text: text, ref: ref, frame: at };
  }

  function clearErrors(st) {
    st.errors = [];
    st.errorRefs = new Set();
    st.errorFrame = null;
    st.errorFocused = false;
  }

  function addError(st, d, msgs) {
    if (d.ref) st.errorRefs.add(d.ref);
    if (st.errorFrame === null && d.frame !== null) st.errorFrame = d.frame;
    msgs.forEach((msg) => st.errors.push(d.text ? `${d.text} — ${msg}` : msg));
  }

  function showMessage(text, bad) {
    const el = $("message");
    el.textContent = text;
    el.className = bad ? "flash error" : "flash";
    el.hidden = !text;
  }

  async function submit() {
    if (qualMode) return submitTest();
    if (readOnly) return;
    const sent = payloadOf(state, type);
    $("submit").disabled = true;
    const r = await api(`/api/work/assignments/${data.id}/submit/`, { payload: sent, active_seconds: session.active });
    $("submit").disabled = false;
    clearErrors(state);
    if (r.ok) {
      showMessage("Submitted. Thank you!", false);
      $("done").hidden = false;
      $("submit").hidden = true; $("release").hidden = true;
      data.status = "submitted";
      render();
      return;
    }
    const err = (r.json && r.json.error) || { message: `The server answered ${r.status}.` };
    showMessage(err.message, true);
    Object.entries(err.fields || {}).forEach(([path, msgs]) => addError(state, describe(path, sent, state), msgs));
    render();
  }

  async function claimNext() {
    const r = await api("/api/work/claim/", {});
    if (r.ok) window.location.href = `/work/assignments/${r.json.id}/`;
    else showMessage((r.json && r.json.error.message) || "No work available.", true);
  }

  async function release() {
    const r = await api(`/api/work/assignments/${data.id}/release/`, {});
    if (r.ok) window.location.href = "/work/";
    else showMessage(r.json.error.message, true);
  }

  // ---- Qualification: questions, the test's answers, its result ----
  function hasContent(w) {
    const st = w.state;
    return st.tracks.length + st.boxes.length + st.polygons.length + Object.keys(st.labels).length > 0;
  }
  const answered = (w) => hasContent(w) || w.state.empty;

  function switchQuestion(i) {
    if (i < 0 || i >= workspaces.length || workspaces[i] === ws) return;
    use(workspaces[i]);
    render();
  }

  function renderQuestions() {
    $("q-label").textContent = `Question ${ws.number} of ${workspaces.length}`;
    $("q-prev").disabled = ws.number === 1;
    $("q-next").disabled = ws.number === workspaces.length;
    const nav = $("q-list");
    nav.innerHTML = "";
    workspaces.forEach((w, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = String(w.number);
      b.dataset.question = w.key;
      const bad = w.state.errors.length > 0;
      b.className = "q " + (w === ws ? "current " : "secondary ") + (bad ? "bad " : "") + (answered(w) ? "answered" : "");
      b.title = bad ? `Question ${w.number}: ${w.state.errors.join("; ")}` : answered(w) ? `Question ${w.number}: answered` : `Question ${w.number}: not answered yet`;
      b.addEventListener("click", () => switchQuestion(i));
      nav.appendChild(b);
    });
    const empty = $("q-empty");
    empty.checked = ws.state.empty && !hasContent(ws);
    empty.disabled = readOnly || hasContent(ws);
  }

  function showResult(res) {
    const el = $("result");
    const left = Math.max(0, data.max_attempts - res.attempts);
    el.innerHTML = "";
    const head = document.createElement("strong");
    head.className = "verdict";
    head.textContent = res.status === "passed" ? "Passed" : "Failed";
    el.appendChild(head);
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = ` — score ${Number(res.score).toFixed(2)} (${data.pass_score.toFixed(2)} needed). `;
    el.appendChild(score);
    if (res.status === "passed") {
      const a = document.createElement("a");
      a.href = data.board_url; a.id = "to-board"; a.textContent = "Find work on the job board";
      el.appendChild(a);
    } else {
      const more = document.createElement("span");
      more.className = "attempts-left";
      more.textContent = left > 0 ? `${left} attempt${left === 1 ? "" : "s"} left: adjust your answers and submit again.`
        : "No attempts left.";
      el.appendChild(more);
    }
    el.className = res.status === "passed" ? "flash result passed" : "flash error result failed";
    el.hidden = false;
    if (res.status === "passed" || left === 0) {
      readOnly = true;
      $("submit").hidden = true;
      workspaces.forEach((w) => { w.state.selected = null; w.state.draft = null; });
    }
  }

  async function submitTest() {
    if (readOnly) return;
    const answers = {}, sent = {};
    workspaces.forEach((w) => {
      clearErrors(w.state);
      if (answered(w)) { sent[w.key] = payloadOf(w.state, w.type); answers[w.key] = sent[w.key]; }
    });
    $("submit").disabled = true;
    const r = await api(data.submit_url, { answers: answers });
    $("submit").disabled = false;
    if (r.ok) {
      showMessage("", false);
      data.attempts = r.json.attempts;
      if ($("attempts-used")) $("attempts-used").textContent = String(r.json.attempts);
      showResult(r.json);
      render();
      return;
    }
    const err = (r.json && r.json.error) || { message: `The server answered ${r.status}.` };
    const byKey = {};
    workspaces.forEach((w) => { byKey[w.key] = w; });
    const general = [];
    Object.entries(err.fields || {}).forEach(([path, msgs]) => {
      const m = path.match(/^(\d+)(?:\.(.+))?$/);
      const w = m && byKey[m[1]];
      if (!w) { general.push(`${path}: ${msgs.join("; ")}`); return; }
      const d = m[2] ? describe(m[2], sent[w.key] || {}, w.state) : { text: "", ref: null, frame: null };
      addError(w.state, d, msgs);
    });
    const bad = workspaces.filter((w) => w.state.errors.length);
    let text = err.message;
    if (bad.length) text += ` See question${bad.length > 1 ? "s" : ""} ${bad.map((w) => w.number).join(", ")}.`;
    if (general.length) text += " " + general.join(" ");
    showMessage(text, true);
    if (bad.length && !bad.includes(ws)) use(bad[0]);
    else focusError();
    render();
  }

  // ---- Wiring ----
  $("submit").addEventListener("click", submit);
  if (qualMode) {
    $("q-prev").addEventListener("click", () => switchQuestion(ws.number - 2));
    $("q-next").addEventListener("click", () => switchQuestion(ws.number));
    $("q-empty").addEventListener("change", (ev) => { ws.state.empty = ev.target.checked; render(); });
  } else {
    $("claim-next").addEventListener("click", claimNext);
    $("release").addEventListener("click", release);
    if (readOnly) { $("submit").hidden = true; $("release").hidden = true; }
  }

  use(workspaces[0]);
  render();
})();
