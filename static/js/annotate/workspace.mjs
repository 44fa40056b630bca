/* The workspace editor: a canvas over the frame images where the shapes of one workspace are
 * drawn and edited with mouse and keyboard, with the object list, the timeline and the transport.
 *
 * DOM only: every computation (geometry, interpolation) comes from core.mjs. A page (page.mjs)
 * makes one editor and switches it between workspaces: one per microtask when annotating, one
 * per question in a qualification test. What differs between those pages reaches the editor
 * through ``hooks``; the editor knows no URL and sends nothing to the server.
 */

import {
  bounds,
  clamp,
  closedPolygon,
  cornerAt,
  interpolateTrack,
  moveBox,
  nearestEdge,
  normBox,
  resizeBox,
  round2,
  shiftPolygon,
  smallestBoxAt,
  smallestPolygonAt,
  vertexAt,
  withKeyframe,
  withOutsideToggled,
} from "./core.mjs";

const COLORS = ["#ef4444", "#22c55e", "#3b82f6", "#eab308", "#a855f7", "#06b6d4", "#f97316", "#ec4899"];

/* The editing state of one workspace, optionally loaded from a submitted payload. */
export function newState(payload) {
  const st = {
    idx: 0,
    tracks: [], // track: {id, label, keyframes: [{frame, box, outside}]}
    boxes: [], // bbox: {frame, label, box}
    polygons: [], // polygon: {frame, label, points}
    labels: {}, // classify: {frame: label}
    selected: null, // a track, box or polygon object
    drag: null,
    draft: null, // polygon being drawn: [[x, y], ...]
    errorRefs: new Set(),
    errors: [], // messages shown in #errors
    errorFrame: null, // the frame of the first offending shape
    errorFocused: true,
    nextId: 1,
    empty: false, // qualification: "nothing to annotate here" was ticked
  };
  if (payload) {
    st.tracks = payload.tracks || [];
    st.boxes = payload.boxes || [];
    st.polygons = payload.polygons || [];
    (payload.labels || []).forEach((l) => {
      st.labels[l.frame] = l.label;
    });
  }
  // Track ids continue after any loaded ones.
  st.nextId = st.tracks.reduce((m, t) => Math.max(m, t.id + 1), 1);
  return st;
}

/* Forget the errors of a failed submission (before the next one). */
export function clearErrors(st) {
  st.errors = [];
  st.errorRefs = new Set();
  st.errorFrame = null;
  st.errorFocused = false;
}

/* Record messages about one item: ``d`` is core's describeErrorPath result, ``ref`` the state's
 * object it names (or null). */
export function addError(st, d, ref, msgs) {
  if (ref) st.errorRefs.add(ref);
  if (st.errorFrame === null && d.frame !== null) st.errorFrame = d.frame;
  msgs.forEach((msg) => st.errors.push(d.text ? `${d.text} — ${msg}` : msg));
}

/* The state's object at ``key``/``index`` of a payload built by core's payloadOf (same order). */
export function itemOf(st, key, index) {
  const list = { tracks: st.tracks, boxes: st.boxes, polygons: st.polygons }[key];
  return (list && list[index]) || null;
}

/* The editor over the workspace page's elements.
 *
 * hooks: changed() after every edit (activity for the active-time count), message(text, bad),
 * rendered() after every render (the page's own parts), keydown(ev) for keys the editor does not
 * handle (returns true when handled). */
export function createEditor(hooks) {
  const $ = (id) => document.getElementById(id);
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  const img = $("frame-img");
  const picker = $("class-picker");
  const scrub = $("scrub");

  // The current workspace, unpacked: every function below works on these.
  let ws = null;
  let state;
  let task;
  let type;
  let classes;
  let W;
  let H;
  let frames;
  let images;
  let readOnly = false;
  let playing = null;
  const frame = () => frames[state.idx];
  const scale = () => W / canvas.getBoundingClientRect().width;
  const colorOf = (label) => COLORS[Math.max(0, classes.indexOf(label)) % COLORS.length];

  function changed() {
    hooks.changed();
  }

  /* A workspace: one microtask or one question. ``opts``: key, number, type, classes, task
   * ({width, height, frames: [{frame, url}], fps}), instructions, payload. */
  function workspace(opts) {
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
      images: t.frames.map((f) => {
        const im = new Image();
        im.src = f.url;
        return im;
      }),
      state: newState(opts.payload),
    };
    w.images.forEach((im) =>
      im.addEventListener("load", () => {
        if (ws === w) render();
      }),
    );
    return w;
  }

  function use(w) {
    if (playing) togglePlay();
    if (state) {
      state.drag = null;
      state.draft = null;
    }
    ws = w;
    state = w.state;
    task = w.task;
    type = w.type;
    classes = w.classes;
    W = w.W;
    H = w.H;
    frames = w.frames;
    images = w.images;
    canvas.width = W;
    canvas.height = H;
    canvas.style.cursor = "";
    scrub.max = String(Math.max(0, frames.length - 1));
    picker.innerHTML = "";
    classes.forEach((c, i) => {
      const o = document.createElement("option");
      o.value = c;
      o.textContent = `${i + 1}. ${c}`;
      picker.appendChild(o);
    });
    focusError();
  }

  // Once after a failed submission, show the frame of the workspace's first offending shape.
  function focusError() {
    if (state.errorFocused) return;
    state.errorFocused = true;
    if (state.errorFrame !== null && frames.includes(state.errorFrame)) {
      state.idx = frames.indexOf(state.errorFrame);
    }
  }

  // ---- Shapes on the current frame ----
  function shapesHere() {
    const f = frame();
    if (type === "track") {
      return state.tracks
        .map((t) => ({
          ref: t,
          label: t.label,
          box: interpolateTrack(t.keyframes, f),
          key: t.keyframes.some((k) => k.frame === f),
        }))
        .filter((s) => s.box);
    }
    if (type === "bbox") {
      return state.boxes
        .filter((b) => b.frame === f)
        .map((b) => ({ ref: b, label: b.label, box: b.box, key: true }));
    }
    if (type === "polygon") {
      return state.polygons
        .filter((p) => p.frame === f)
        .map((p) => ({ ref: p, label: p.label, points: p.points, box: bounds(p.points), key: true }));
    }
    return [];
  }

  // ---- Drawing ----
  function render() {
    const f = frame();
    const im = images[state.idx];
    if (im && im.src) img.src = im.src;
    ctx.clearRect(0, 0, W, H);
    const lw = 2 * scale();
    // The selected track's interpolated path across every frame (the preview).
    if (type === "track" && state.selected && state.tracks.includes(state.selected)) {
      ctx.strokeStyle = "rgba(255,255,255,0.7)";
      ctx.lineWidth = lw;
      ctx.setLineDash([4 * scale(), 4 * scale()]);
      ctx.beginPath();
      let started = false;
      frames.forEach((fr) => {
        const b = interpolateTrack(state.selected.keyframes, fr);
        if (!b) {
          started = false;
          return;
        }
        const cx = (b[0] + b[2]) / 2;
        const cy = (b[1] + b[3]) / 2;
        if (started) ctx.lineTo(cx, cy);
        else ctx.moveTo(cx, cy);
        started = true;
      });
      ctx.stroke();
      ctx.setLineDash([]);
    }
    shapesHere().forEach((s) => drawShape(s, lw));
    if (state.drag && state.drag.box) {
      const b = state.drag.box;
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = lw;
      ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
    }
    if (state.draft) {
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = lw;
      ctx.beginPath();
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
    hooks.rendered();
  }

  function drawShape(s, lw) {
    const sel = s.ref === state.selected;
    const bad = state.errorRefs.has(s.ref);
    ctx.strokeStyle = bad ? "#ff0000" : colorOf(s.label);
    ctx.lineWidth = sel ? lw * 2 : lw;
    ctx.setLineDash(s.key ? [] : [6 * scale(), 4 * scale()]); // dashed = interpolated
    if (s.points) {
      ctx.beginPath();
      s.points.forEach((p, i) => (i ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1])));
      ctx.closePath();
      ctx.stroke();
      if (sel && !readOnly) {
        // Vertex handles: drag to move, Alt+click or right-click to remove.
        const h = 4 * scale();
        ctx.fillStyle = "#fff";
        ctx.lineWidth = lw / 2;
        s.points.forEach(([x, y]) => {
          ctx.fillRect(x - h, y - h, 2 * h, 2 * h);
          ctx.strokeRect(x - h, y - h, 2 * h, 2 * h);
        });
      }
    } else {
      const [x1, y1, x2, y2] = s.box;
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      if (sel && !readOnly) {
        ctx.fillStyle = "#fff";
        const h = 5 * scale();
        [[x1, y1], [x2, y1], [x1, y2], [x2, y2]].forEach(([x, y]) =>
          ctx.fillRect(x - h, y - h, 2 * h, 2 * h),
        );
      }
    }
    ctx.setLineDash([]);
    ctx.fillStyle = bad ? "#ff0000" : colorOf(s.label);
    ctx.font = `${Math.round(13 * scale())}px sans-serif`;
    const tag = (type === "track" ? `#${s.ref.id} ` : "") + s.label;
    ctx.fillText(tag, s.box[0] + 2 * scale(), Math.max(12 * scale(), s.box[1] - 3 * scale()));
  }

  function renderObjects() {
    const list = $("objects");
    list.innerHTML = "";
    const items =
      type === "track"
        ? state.tracks
        : type === "bbox"
          ? state.boxes.filter((b) => b.frame === frame())
          : type === "polygon"
            ? state.polygons.filter((p) => p.frame === frame())
            : [];
    items.forEach((o) => {
      const li = document.createElement("li");
      li.className = (o === state.selected ? "selected " : "") + (state.errorRefs.has(o) ? "bad" : "");
      li.textContent =
        type === "track"
          ? `#${o.id} ${o.label} · ${o.keyframes.length} keyframe(s)`
          : type === "polygon"
            ? `${o.label} · ${o.points.length} points`
            : o.label;
      li.addEventListener("click", () => select(o));
      list.appendChild(li);
    });
    $("object-count").textContent = String(
      type === "track" ? state.tracks.length : type === "bbox" ? state.boxes.length : state.polygons.length,
    );
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
      b.addEventListener("click", () => {
        state.labels[frame()] = c;
        changed();
        render();
      });
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
    track.keyframes = withKeyframe(track.keyframes, f, box, outside);
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
    changed();
    render();
  }

  // The mouse position in frame pixels (the canvas is scaled by CSS), inside the frame.
  function point(ev) {
    const r = canvas.getBoundingClientRect();
    return [clamp((ev.clientX - r.left) * (W / r.width), 0, W), clamp((ev.clientY - r.top) * (H / r.height), 0, H)];
  }

  // What is under p for box editing: a corner of the selected box, else the smallest box here.
  function hit(p) {
    const here = shapesHere();
    const sel = here.find((x) => x.ref === state.selected);
    if (sel && !sel.points) {
      const c = cornerAt(sel.box, p, 8 * scale());
      if (c >= 0) return { shape: sel, corner: c };
    }
    const shape = smallestBoxAt(here, p);
    return shape ? { shape, corner: -1 } : null;
  }

  // What is under p for polygon editing: a vertex or an edge of the selected polygon, else the
  // smallest polygon on this frame containing p.
  function polygonHit(p) {
    const tol = 8 * scale();
    const here = state.polygons.filter((o) => o.frame === frame());
    const sel = here.includes(state.selected) ? state.selected : null;
    if (sel) {
      const v = vertexAt(sel.points, p, tol);
      if (v >= 0) return { kind: "vertex", poly: sel, index: v };
      const e = nearestEdge(p, sel.points);
      if (e.dist <= tol / 2 + 1) return { kind: "edge", poly: sel, index: e.index, at: e.point };
    }
    const poly = smallestPolygonAt(here, p);
    return poly ? { kind: "inside", poly } : null;
  }

  function removeVertex(poly, i) {
    if (poly.points.length <= 3) {
      hooks.message("A polygon keeps at least 3 points; press Delete to remove the whole polygon.", false);
      return;
    }
    poly.points.splice(i, 1);
    changed();
    render();
  }

  function insertVertex(poly, edge, at) {
    poly.points.splice(edge + 1, 0, at.map(round2));
    changed();
    render();
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
      state.drag = {
        mode: h.corner >= 0 ? "resize" : "move",
        corner: h.corner,
        start: p,
        shape: h.shape,
        orig: h.shape.box.slice(),
      };
    } else {
      state.selected = null;
      state.drag = { mode: "draw", start: p, box: [p[0], p[1], p[0], p[1]] };
    }
    render();
  });

  canvas.addEventListener("contextmenu", (ev) => {
    if (type === "polygon") ev.preventDefault(); // right-click removes a vertex
  });

  // Cursor hints for polygon editing.
  canvas.addEventListener("mousemove", (ev) => {
    if (type !== "polygon" || readOnly || state.drag) return;
    const h = state.draft ? null : polygonHit(point(ev));
    canvas.style.cursor = !h
      ? ""
      : h.kind === "vertex"
        ? "pointer"
        : h.kind === "edge"
          ? "copy"
          : h.poly === state.selected
            ? "move"
            : "pointer";
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
      d.poly.points = shiftPolygon(d.orig, d.start, p, W, H);
      render();
      return;
    }
    if (d.mode === "draw") d.box = normBox(d.start[0], d.start[1], p[0], p[1], W, H);
    else if (d.mode === "move") d.box = moveBox(d.orig, d.start, p, W, H);
    else d.box = resizeBox(d.orig, d.corner, p, W, H);
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
          const t = { id: state.nextId++, label, keyframes: [] };
          setKeyframe(t, frame(), b, false);
          state.tracks.push(t);
          state.selected = t;
        } else {
          const o = { frame: frame(), label, box: b };
          state.boxes.push(o);
          state.selected = o;
        }
      }
    }
    changed();
    render();
  });

  // While drawing, a double-click closes the polygon; otherwise a double-click on an edge of the
  // selected polygon inserts a vertex there.
  canvas.addEventListener("dblclick", (ev) => {
    if (state.draft) {
      closePolygon();
      return;
    }
    if (readOnly || type !== "polygon") return;
    const h = polygonHit(point(ev));
    if (h && h.kind === "edge") insertVertex(h.poly, h.index, h.at);
  });

  function closePolygon() {
    if (!state.draft) return;
    const pts = closedPolygon(state.draft);
    state.draft = null;
    if (pts.length >= 3) {
      const o = { frame: frame(), label: picker.value, points: pts };
      state.polygons.push(o);
      state.selected = o;
    }
    changed();
    render();
  }

  picker.addEventListener("change", () => {
    if (state.selected && !readOnly) {
      state.selected.label = picker.value;
      changed();
      render();
    }
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
    if (playing) {
      clearInterval(playing);
      playing = null;
      $("play").textContent = "▶ Play";
      return;
    }
    const fps = Math.min(task.fps || 10, 30);
    $("play").textContent = "❚❚ Pause";
    playing = setInterval(() => {
      if (state.idx >= frames.length - 1) {
        togglePlay();
        return;
      }
      go(state.idx + 1);
    }, 1000 / fps);
  }

  document.addEventListener("keydown", (ev) => {
    const tag = ev.target.tagName;
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
    const k = ev.key;
    let handled = true;
    if (k === "ArrowRight" || k === "d") go(state.idx + (ev.shiftKey ? 10 : 1));
    else if (k === "ArrowLeft" || k === "a") go(state.idx - (ev.shiftKey ? 10 : 1));
    else if (k === "Home") go(0);
    else if (k === "End") go(frames.length - 1);
    else if (k === " ") togglePlay();
    else if (/^[1-9]$/.test(k) && Number(k) <= classes.length) {
      picker.value = classes[Number(k) - 1];
      if (type === "classify" && !readOnly) {
        state.labels[frame()] = picker.value;
        changed();
        render();
      } else picker.dispatchEvent(new Event("change"));
    } else if ((k === "Delete" || k === "Backspace") && !readOnly) deleteSelected();
    else if (k === "Escape") {
      state.draft = null;
      state.selected = null;
      render();
    } else if (k === "Enter" && !(ev.ctrlKey || ev.metaKey) && type === "polygon") closePolygon();
    else if ((k === "o" || k === "O") && type === "track" && !readOnly) toggleOutside();
    else if ((k === "k" || k === "K") && type === "track" && !readOnly) keyHere();
    else handled = hooks.keydown(ev);
    if (handled) ev.preventDefault();
  });

  function keyHere() {
    const t = state.selected;
    if (!t || !state.tracks.includes(t)) return;
    const b = interpolateTrack(t.keyframes, frame());
    if (b) {
      setKeyframe(t, frame(), b, false);
      changed();
      render();
    }
  }

  function toggleOutside() {
    const t = state.selected;
    if (!t || !state.tracks.includes(t)) return;
    const keyframes = withOutsideToggled(t.keyframes, frame());
    if (!keyframes) return;
    t.keyframes = keyframes;
    changed();
    render();
  }

  return {
    workspace,
    use,
    render,
    focusError,
    current: () => ws,
    setReadOnly(value) {
      readOnly = value;
    },
    isReadOnly: () => readOnly,
  };
}
