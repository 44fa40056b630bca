/* The workspace editor: a canvas over the frame images where the shapes of one workspace are
 * drawn and edited with mouse, touch and keyboard, with the object list, the timeline, the
 * transport, undo and redo, and zoom and pan.
 *
 * DOM only: every computation (geometry, interpolation) comes from core.mjs. A page (page.mjs)
 * makes one editor and switches it between workspaces: one per microtask when annotating, one
 * per question in a qualification test. What differs between those pages reaches the editor
 * through ``hooks``; the editor knows no URL and sends nothing to the server.
 */

import {
  FIT,
  bounds,
  canRedo,
  canUndo,
  clamp,
  closedPolygon,
  cornerAt,
  editsOf,
  historyNew,
  historyPush,
  historyRedo,
  historyUndo,
  interpolateTrack,
  moveBox,
  nearestEdge,
  normBox,
  objectCounts,
  panBy,
  resizeBox,
  round2,
  shiftPolygon,
  smallestBoxAt,
  smallestPolygonAt,
  vertexAt,
  withKeyframe,
  withOutsideToggled,
  zoomAbout,
} from "./core.mjs";
import { activeAt, mountEventLanes } from "./events.mjs";
import * as maskOps from "./masks.mjs";

// The mask painting tools (their buttons are #tool-<name>, shown on mask jobs, and but for the
// outline on track jobs with masks, where they paint the selected track's keyframe mask).
const MASK_TOOLS = ["brush", "eraser", "fill", "outline"];
const TRACK_MASK_TOOLS = ["brush", "eraser", "fill"];
import {
  describeRelation,
  keepDeclared,
  keyframesWithAttribute,
  liveRelations,
  readInput,
  relationProblem,
  relationsFromPayload,
  relationsRestore,
  specsFor,
  trackAttributesAt,
  withAttribute,
} from "./attributes.mjs";

// The widest bitmap the canvas gets when zoomed in (a 16x zoom of a 1080p frame would be 30k).
const MAX_BACKING_WIDTH = 4096;
const COLORS = ["#ef4444", "#22c55e", "#3b82f6", "#eab308", "#a855f7", "#06b6d4", "#f97316", "#ec4899"];

/* The editing state of one workspace, optionally loaded from a submitted payload. */
export function newState(payload) {
  const st = {
    idx: 0,
    tracks: [], // track: {id, label, keyframes: [{frame, box, outside}]}
    boxes: [], // bbox: {frame, label, box}
    polygons: [], // polygon: {frame, label, points}
    masks: [], // mask: {frame, label, rle} (one instance each; masks.mjs paints them)
    labels: {}, // classify: {frame: label}
    events: [], // event: {label, start, end} (events.mjs draws them on the timeline's lanes)
    selected: null, // a track, box or polygon object
    drag: null,
    draft: null, // polygon being drawn: [[x, y], ...]
    errorRefs: new Set(),
    errors: [], // messages shown in #errors
    errorFrame: null, // the frame of the first offending shape
    errorFocused: true,
    nextId: 1,
    empty: false, // qualification: "nothing to annotate here" was ticked
    relations: [], // {subject, predicate, object}: the objects themselves (attributes.mjs)
    relSubject: null, // the relation tool's chosen subject
  };
  if (payload) {
    st.tracks = payload.tracks || [];
    st.boxes = payload.boxes || [];
    st.polygons = payload.polygons || [];
    st.events = payload.events || [];
    st.masks = payload.masks || [];
    (payload.labels || []).forEach((l) => {
      st.labels[l.frame] = l.label;
    });
    const kind = payload.tracks ? "track" : payload.polygons ? "polygon" : "bbox";
    st.relations = relationsFromPayload(payload, st, kind);
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
  const list = { tracks: st.tracks, boxes: st.boxes, polygons: st.polygons, masks: st.masks, events: st.events }[key];
  return (list && list[index]) || null;
}

/* The editor over the workspace page's elements.
 *
 * hooks: changed() after every edit, undo and redo included (activity for the active-time count,
 * the draft kept as you go), message(text, bad), rendered() after every render (the page's own
 * parts), keydown(ev) for keys the editor does not handle (returns true when handled), and
 * optionally overlay(ctx, {frame, scale, selected}) to draw over the shapes (tracker.mjs).
 *
 * Tools: "edit" (the default: drag a shape to move it, a corner to resize it, empty space to draw
 * a box), "draw" (every drag draws a new shape, even inside another one: the bicycle under its
 * rider; a click still selects) and "pan" (drag to move the zoomed frame). Zoom with the wheel,
 * +/-/0 or two fingers; the canvas's on-screen rectangle follows the view, so frame coordinates
 * are read from it unchanged (see ``point``). */
export function createEditor(hooks) {
  const $ = (id) => document.getElementById(id);
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  const img = $("frame-img");
  const picker = $("class-picker");
  const scrub = $("scrub");
  const stage = $("stage");
  const viewport = $("viewport");
  const laneEl = $("event-lanes");

  // The current workspace, unpacked: every function below works on these.
  let ws = null;
  let state;
  let task;
  let type;
  let classes;
  let eventLabels = [];
  let attributes;
  let predicates;
  let trackMasks = false;
  let W;
  let H;
  let frames;
  let images;
  let readOnly = false;
  let playing = null;
  let tool = "edit";
  const frame = () => frames[state.idx];
  // Frame pixels per CSS pixel on screen (zoom included): line widths and handles stay the
  // same size on screen whatever the zoom.
  const scale = () => W / canvas.getBoundingClientRect().width;
  // Whether the mask tools paint the selected track's keyframe mask (a track job with masks).
  const paintsTrackMasks = () => type === "track" && trackMasks;
  const colorOf = (label) => COLORS[Math.max(0, classes.indexOf(label)) % COLORS.length];

  // Every edit ends here: one undo step (an edit that changed nothing is none), then the page.
  function changed() {
    ws.history = historyPush(ws.history, editsOf(state));
    hooks.changed();
  }

  // Put the edits of a snapshot (editsOf) back into the state: undo, redo, a cancelled gesture.
  function restoreEdits(snapshot) {
    const e = JSON.parse(snapshot);
    state.tracks = e.tracks;
    state.boxes = e.boxes;
    state.polygons = e.polygons;
    state.masks = e.masks || [];
    state.labels = e.labels;
    state.events = e.events || [];
    state.nextId = e.nextId;
    state.relations = relationsRestore(e.relations, state);
    state.relSubject = null;
    state.selected = null;
    state.selectedEvent = null;
    state.drag = null;
    state.draft = null;
  }

  // One step through the history (``can``: whether there is one, ``step``: taking it).
  function travel(can, step) {
    if (readOnly || !can(ws.history)) return;
    ws.history = step(ws.history);
    restoreEdits(ws.history.present);
    hooks.changed();
    render();
  }
  const undo = () => travel(canUndo, historyUndo);
  const redo = () => travel(canRedo, historyRedo);

  /* Replace the workspace's shapes with those of ``payload`` (a restored draft); undo starts
   * from there. */
  function load(payload) {
    const fresh = newState(payload);
    restoreEdits(editsOf(fresh));
    ws.history = historyNew(editsOf(state));
    render();
  }

  // ---- Zoom and pan (the view lives with the workspace: each question keeps its own) ----
  const stageSize = () => [viewport.offsetWidth, viewport.offsetHeight];

  function applyView() {
    const v = ws.view;
    viewport.style.transform = `translate(${v.x}px, ${v.y}px) scale(${v.zoom})`;
    const level = $("zoom-level");
    if (level) level.textContent = `${Math.round(v.zoom * 100)}%`;
  }

  function setView(v) {
    ws.view = v;
    applyView();
    render(); // line widths and labels follow the zoom
  }

  function zoomBy(factor, p) {
    const [w, h] = stageSize();
    setView(zoomAbout(ws.view, factor, p || [w / 2, h / 2], w, h));
  }

  stage.addEventListener(
    "wheel",
    (ev) => {
      ev.preventDefault();
      const r = stage.getBoundingClientRect();
      zoomBy(Math.exp(-ev.deltaY * 0.002), [ev.clientX - r.left, ev.clientY - r.top]);
    },
    { passive: false },
  );

  function setTool(t) {
    tool = t;
    ["edit", "draw", "pan", ...MASK_TOOLS].forEach((name) => {
      const b = $(`tool-${name}`);
      if (b) {
        b.setAttribute("aria-pressed", String(name === t));
        b.className = name === t ? "tool active" : "tool secondary";
      }
    });
    canvas.dataset.tool = t;
    canvas.style.cursor = t === "pan" ? "grab" : "";
    if (state) state.draft = null;
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
      eventLabels: opts.eventLabels || [],
      attributes: opts.attributes || {}, // the job's attributes per class
      predicates: opts.predicates || [], // the job's relation predicates
      trackMasks: !!opts.trackMasks, // a track job asking for a mask on each keyframe
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
      view: { ...FIT },
    };
    w.history = historyNew(editsOf(w.state));
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
    eventLabels = w.eventLabels;
    attributes = w.attributes;
    predicates = w.predicates;
    trackMasks = w.trackMasks;
    W = w.W;
    H = w.H;
    frames = w.frames;
    images = w.images;
    canvas.width = W;
    canvas.height = H;
    // The stage keeps the frame's shape before its image has loaded.
    viewport.style.aspectRatio = `${W} / ${H}`;
    setTool("edit");
    applyView();
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

  // ---- Events: lanes under the timeline (events.mjs) ----
  const lanes =
    laneEl &&
    mountEventLanes(laneEl, {
      state: () => state,
      range: () => ({
        first: task.frame_start ?? frames[0],
        last: task.frame_end ?? frames[frames.length - 1],
      }),
      // An event job's lanes are its classes; a track job's, its event labels, for the
      // selected track only (its events carry the track's id).
      labels: () => (type === "event" ? classes : eventLabels),
      trackJob: () => type === "track",
      track: () => (type === "track" && state.tracks.includes(state.selected) ? state.selected.id : undefined),
      frame: () => frame(),
      go: (f) => {
        // The shown frame nearest to f.
        let best = 0;
        frames.forEach((fr, i) => {
          if (Math.abs(fr - f) < Math.abs(frames[best] - f)) best = i;
        });
        state.idx = best;
      },
      changed: () => changed(),
      render: () => render(),
      readOnly: () => readOnly,
      select: (e) => {
        // A track's event is selected beside its track (the lanes show the selected track's).
        if (type === "track") {
          state.selectedEvent = e;
          return;
        }
        state.selected = e;
        if (e && e.label) picker.value = e.label;
      },
      message: (text, bad) => hooks.message(text, bad),
    });

  // ---- Shapes on the current frame ----
  function shapesHere() {
    const f = frame();
    if (type === "track") {
      return state.tracks
        .map((t) => {
          const kf = t.keyframes.find((k) => k.frame === f);
          // A keyframe's mask is drawn on its frame only: masks are not interpolated.
          const rle = kf && !kf.outside && kf.mask ? { rle: kf.mask } : {};
          return { ref: t, label: t.label, box: interpolateTrack(t.keyframes, f), key: !!kf, ...rle };
        })
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
    if (type === "mask") {
      return state.masks
        .filter((m) => m.frame === f)
        .map((m) => ({ ref: m, label: m.label, rle: m.rle, box: maskOps.rleBounds(m.rle) || [0, 0, 1, 1], key: true }));
    }
    return [];
  }

  // ---- Masks: painted on a bitmap of the frame, kept as RLE (masks.mjs) ----
  const maskCanvas = document.createElement("canvas");

  function drawMask(s) {
    const sel = s.ref === state.selected;
    const bad = state.errorRefs.has(s.ref);
    const hex = bad ? "#ff0000" : colorOf(s.label);
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    const bits = maskOps.decode(s.rle);
    maskCanvas.width = W;
    maskCanvas.height = H;
    const mctx = maskCanvas.getContext("2d");
    const data = mctx.createImageData(W, H);
    const alpha = sel ? 150 : 95;
    for (let i = 0; i < bits.length; i++) {
      if (!bits[i]) continue;
      data.data[4 * i] = r;
      data.data[4 * i + 1] = g;
      data.data[4 * i + 2] = b;
      data.data[4 * i + 3] = alpha;
    }
    mctx.putImageData(data, 0, 0);
    ctx.drawImage(maskCanvas, 0, 0, W, H);
    if (type !== "track") drawTag(s.label, s.box, hex, sel); // a track's box carries its tag
  }

  const brushRadius = () => Number(($("brush-size") || { value: 12 }).value) / 2;

  // The mask the brush paints into: the selected one on this frame, else a new one.
  function paintTarget(create) {
    const m = state.selected;
    if (m && state.masks.includes(m) && m.frame === frame()) return m;
    if (!create) return null;
    const fresh = { frame: frame(), label: picker.value, rle: maskOps.encode(new Uint8Array(W * H), H, W) };
    state.masks.push(fresh);
    state.selected = fresh;
    return fresh;
  }

  function maskAt(p) {
    const x = Math.min(W - 1, Math.floor(p[0]));
    const y = Math.min(H - 1, Math.floor(p[1]));
    const here = state.masks.filter((m) => m.frame === frame());
    // The smallest mask under the point: a car on the road is picked before the road.
    const under = here.filter((m) => maskOps.decode(m.rle)[y * W + x]);
    under.sort((a, b) => maskOps.area(a.rle) - maskOps.area(b.rle));
    return under[0] || null;
  }

  function maskMouseDown(ev, p) {
    if (ev.button !== 0) return;
    if (tool === "outline") {
      state.draft = state.draft || [];
      state.draft.push(p.map(round2));
      render();
      return;
    }
    if (tool === "brush" || tool === "eraser") {
      const m = paintTarget(tool === "brush");
      if (!m) {
        hooks.message("Select a mask to erase from.", false);
        return;
      }
      const bits = maskOps.decode(m.rle);
      const value = tool === "brush" ? 1 : 0;
      maskOps.stamp(bits, W, H, p[0], p[1], brushRadius(), value);
      m.rle = maskOps.encode(bits, H, W);
      state.drag = { mode: "paint", mask: m, bits, last: p, value };
      render();
      return;
    }
    if (tool === "fill") {
      const m = paintTarget(false);
      if (!m) {
        hooks.message("Select the mask whose outline to fill.", false);
        return;
      }
      const bits = maskOps.decode(m.rle);
      if (maskOps.fill(bits, W, H, p[0], p[1]) > 0) {
        m.rle = maskOps.encode(bits, H, W);
        changed();
      }
      render();
      return;
    }
    select(maskAt(p)); // Select (and Draw): pick the mask under the point
  }

  // Polygon to mask: the closed outline is painted into the selected mask (or a new one).
  function closeOutline() {
    const pts = closedPolygon(state.draft || []);
    state.draft = null;
    if (pts.length < 3) return render();
    if (maskOps.polygonSelfIntersects(pts)) {
      hooks.message("The outline crosses itself; draw it again without crossing.", true);
      return render();
    }
    const m = paintTarget(true);
    const bits = maskOps.decode(m.rle);
    maskOps.polygonToBits(bits, W, H, pts);
    m.rle = maskOps.encode(bits, H, W);
    dropEmptyMasks();
    changed();
    render();
  }

  // A track job with masks: the tools paint the selected track's mask on this frame, which
  // becomes a keyframe (masks.mjs keyframesWithMask: its box grows to hold the mask).
  function trackMaskMouseDown(ev, p) {
    if (ev.button !== 0) return;
    const t = state.tracks.includes(state.selected) ? state.selected : null;
    if (!t) {
      hooks.message("Select the object (its track) whose mask to paint.", false);
      return;
    }
    const f = frame();
    const box = interpolateTrack(t.keyframes, f);
    if (!box) {
      hooks.message("The object is not in the frame here: draw its box first.", false);
      return;
    }
    const kf = t.keyframes.find((k) => k.frame === f);
    const had = kf && kf.mask;
    if (!had && tool !== "brush") {
      hooks.message("Paint the object's mask on this frame with the brush first.", false);
      return;
    }
    const bits = had ? maskOps.decode(kf.mask) : new Uint8Array(W * H);
    // What the paint drag writes to: the track's keyframe mask at this frame.
    const target = {
      get rle() {
        const k = t.keyframes.find((x) => x.frame === f);
        return k && k.mask;
      },
      set rle(value) {
        t.keyframes = maskOps.keyframesWithMask(t.keyframes, f, box, value);
      },
    };
    if (tool === "fill") {
      if (maskOps.fill(bits, W, H, p[0], p[1]) > 0) {
        target.rle = maskOps.encode(bits, H, W);
        changed();
      }
      render();
      return;
    }
    const value = tool === "brush" ? 1 : 0;
    maskOps.stamp(bits, W, H, p[0], p[1], brushRadius(), value);
    target.rle = maskOps.encode(bits, H, W);
    state.drag = { mode: "paint", mask: target, bits, last: p, value };
    render();
  }

  // A mask erased to nothing is no mask (the server refuses empty ones).
  function dropEmptyMasks() {
    state.masks = state.masks.filter((m) => maskOps.area(m.rle) > 0);
    if (state.selected && type === "mask" && !state.masks.includes(state.selected)) state.selected = null;
  }

  // ---- Drawing ----
  function render() {
    const f = frame();
    const im = images[state.idx];
    if (im && im.src) img.src = im.src;
    fitBackingStore();
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
    if (hooks.underlay) hooks.underlay(ctx, f, scale()); // machine suggestions (proposals.mjs), under
    shapesHere().forEach((s) => {
      if (s.rle) drawMask(s);
      if (!s.rle || type === "track") drawShape(s, lw); // a track's mask lies under its box
    });
    if (hooks.overlay) hooks.overlay(ctx, { frame: f, scale: scale(), selected: state.selected });
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
    renderTools();
    renderTimeline();
    if (lanes) {
      const trackEvents = type === "track" && eventLabels.length > 0;
      laneEl.hidden = type !== "event" && !trackEvents;
      if (type === "event") {
        lanes.render();
        drawEventTags();
      } else if (trackEvents) lanes.render();
    }
    renderErrors();
    renderAttributes();
    renderRelations();
    $("classify").innerHTML = "";
    if (type === "classify") renderClassify();
    hooks.rendered();
  }

  // The outline of a shape as the current path.
  function outline(s) {
    ctx.beginPath();
    if (s.points) {
      s.points.forEach((p, i) => (i ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1])));
      ctx.closePath();
    } else {
      const [x1, y1, x2, y2] = s.box;
      ctx.rect(x1, y1, x2 - x1, y2 - y1);
    }
  }

  /* Give the canvas as many pixels as it covers on screen (zoom and the display's density
   * included, within a bound), and draw in frame pixels through the transform: lines and class
   * tags stay sharp instead of being stretched from a frame-sized bitmap. Positions are read in
   * frame pixels from the on-screen rectangle (``point``), so nothing else changes. */
  function fitBackingStore() {
    const shown = canvas.getBoundingClientRect().width * (window.devicePixelRatio || 1);
    const width = Math.round(clamp(shown || W, Math.min(W, 320), MAX_BACKING_WIDTH));
    if (canvas.width !== width) {
      canvas.width = width;
      canvas.height = Math.round((width * H) / W);
    }
    ctx.setTransform(canvas.width / W, 0, 0, canvas.height / H, 0, 0);
  }

  function drawShape(s, lw) {
    const sel = s.ref === state.selected;
    const bad = state.errorRefs.has(s.ref);
    const color = bad ? "#ff0000" : colorOf(s.label);
    if (sel) {
      // The selection: a tinted fill and a white halo under a thicker outline.
      outline(s);
      ctx.globalAlpha = 0.18;
      ctx.fillStyle = color;
      ctx.fill();
      ctx.globalAlpha = 1;
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = lw * 4;
      ctx.stroke();
    }
    ctx.strokeStyle = color;
    ctx.lineWidth = sel ? lw * 2 : lw;
    ctx.setLineDash(s.key ? [] : [6 * scale(), 4 * scale()]); // dashed = interpolated
    if (s.points) {
      outline(s);
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
      outline(s);
      ctx.stroke();
      if (sel && !readOnly) {
        ctx.fillStyle = "#fff";
        const h = 5 * scale();
        [[x1, y1], [x2, y1], [x1, y2], [x2, y2]].forEach(([x, y]) =>
          ctx.fillRect(x - h, y - h, 2 * h, 2 * h),
        );
      }
    }
    ctx.setLineDash([]);
    drawTag((type === "track" ? `#${s.ref.id} ` : "") + s.label, s.box, color, sel);
  }

  // The class of a shape, readable on any image: white text on a dark tag with the class's
  // colour down its side, above the shape's top-left corner (inside it at the frame's top).
  function drawTag(text, box, color, sel) {
    const k = scale();
    const size = 13 * k;
    ctx.font = `${sel ? "bold " : ""}${size}px sans-serif`;
    const pad = 4 * k;
    const w = ctx.measureText(text).width + 2 * pad + 3 * k;
    const h = size + 2 * pad;
    const x = clamp(box[0], 0, Math.max(0, W - w));
    const y = box[1] - h >= 0 ? box[1] - h : box[1];
    ctx.fillStyle = "rgba(17, 24, 39, 0.85)";
    ctx.fillRect(x, y, w, h);
    ctx.fillStyle = color;
    ctx.fillRect(x, y, 3 * k, h);
    ctx.fillStyle = "#fff";
    ctx.textBaseline = "middle";
    ctx.fillText(text, x + 3 * k + pad, y + h / 2);
    ctx.textBaseline = "alphabetic";
  }

  // The events going on at the shown frame, as tags down the frame's left side.
  function drawEventTags() {
    const k = scale();
    activeAt(state.events, frame()).forEach((e, i) => {
      drawTag(`${e.label} ${e.start}-${e.end}`, [4 * k, (26 * i + 26) * k, 0, 0], colorOf(e.label), e === state.selected);
    });
  }

  function renderObjects() {
    const list = $("objects");
    list.innerHTML = "";
    const f = frame();
    const items =
      type === "track"
        ? state.tracks
        : type === "bbox"
          ? state.boxes.filter((b) => b.frame === frame())
          : type === "polygon"
            ? state.polygons.filter((p) => p.frame === frame())
            : type === "event"
              ? state.events
            : type === "mask"
              ? state.masks.filter((m) => m.frame === frame())
              : [];
    items.forEach((o) => {
      const li = document.createElement("li");
      const away = type === "track" && !interpolateTrack(o.keyframes, f);
      li.className =
        (o === state.selected ? "selected " : "") + (state.errorRefs.has(o) ? "bad " : "") + (away ? "away" : "");
      li.textContent =
        type === "track"
          ? `#${o.id} ${o.label} · ${o.keyframes.length} keyframe(s)${away ? " · not on this frame" : ""}`
          : type === "polygon"
            ? `${o.label} · ${o.points.length} points`
            : type === "event"
              ? `${o.label} · frames ${o.start}-${o.end}`
            : type === "mask"
              ? `${o.label} · ${maskOps.area(o.rle)} px`
              : o.label;
      li.addEventListener("click", () => select(o));
      list.appendChild(li);
    });
    // Which objects the list shows, and both counts, each saying what it counts.
    const counts = objectCounts(state, type, f);
    $("frame-count").textContent = String(counts.here);
    $("object-count").textContent = String(counts.total);
    const caption = $("objects-caption");
    if (caption) {
      caption.textContent =
        type === "track"
          ? "Every object (track) of this task"
          : type === "event"
            ? "Every event of this task: drag on a lane below to add one"
            : type === "classify"
              ? ""
              : "On this frame";
    }
  }

  // The buttons that do what keys do, for a tablet without a keyboard.
  function renderTools() {
    $("undo").disabled = readOnly || !canUndo(ws.history);
    $("redo").disabled = readOnly || !canRedo(ws.history);
    $("delete-selected").disabled = readOnly || !(state.selected || state.selectedEvent);
    $("close-polygon").hidden = !(type === "polygon" || (type === "mask" && tool === "outline")) || readOnly;
    $("close-polygon").disabled = !state.draft;
    const maskTools = $("mask-tools");
    if (maskTools) maskTools.hidden = !(type === "mask" || paintsTrackMasks()) || readOnly;
    // On tracks a mask belongs to the selected track: no outline tool, no "new mask".
    ["tool-outline", "new-mask"].forEach((id) => {
      if ($(id)) $(id).hidden = type !== "mask";
    });
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
      else if (type === "mask" && state.masks.some((m) => m.frame === fr)) cls += " key";
      else if (type === "classify" && state.labels[fr]) cls += " key";
      else if (type === "event" && activeAt(state.events, fr).length) cls += " key";
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

  // ---- Attributes of the selected object, relations between objects (attributes.mjs) ----
  const element = (tag, props) => Object.assign(document.createElement(tag), props || {});

  // One control per attribute of the selected object's class: a checkbox, a select or a number
  // with its bounds. On a track the values are those at this frame, and a change makes (or goes
  // on) a keyframe here.
  function renderAttributes() {
    const panel = $("attributes");
    if (!panel) return;
    panel.innerHTML = "";
    const o = state.selected;
    const specs = o && type !== "classify" ? specsFor(attributes, o.label) : [];
    panel.hidden = !specs.length;
    if (!specs.length) return;
    const isTrack = type === "track";
    const values = isTrack ? trackAttributesAt(o, frame()) : o.attributes || {};
    panel.appendChild(
      element("h3", { textContent: isTrack ? `Attributes at frame ${frame()}` : "Attributes" }),
    );
    specs.forEach((spec) => {
      const label = element("label", { className: "attribute" });
      label.dataset.attribute = spec.name;
      let input;
      if (spec.type === "bool") {
        input = element("input", { type: "checkbox", checked: values[spec.name] === true });
      } else if (spec.type === "choice") {
        input = element("select");
        input.appendChild(element("option", { value: "", textContent: "—" }));
        spec.values.forEach((v) => input.appendChild(element("option", { value: v, textContent: v })));
        input.value = values[spec.name] === undefined ? "" : values[spec.name];
      } else {
        input = element("input", { type: "number", step: "any" });
        if (spec.min !== undefined && spec.min !== null) input.min = String(spec.min);
        if (spec.max !== undefined && spec.max !== null) input.max = String(spec.max);
        input.value = values[spec.name] === undefined ? "" : String(values[spec.name]);
      }
      input.name = `attr-${spec.name}`;
      input.disabled = readOnly;
      input.addEventListener("change", () => {
        const read = readInput(spec, spec.type === "bool" ? input.checked : input.value);
        if (read.error) {
          hooks.message(`${spec.name} ${read.error}`, true);
          render();
          return;
        }
        if (!setAttribute(o, spec.name, read.value)) return;
        changed();
        render();
      });
      label.append(spec.type === "bool" ? input : "", `${spec.name} `, spec.type === "bool" ? "" : input);
      panel.appendChild(label);
    });
  }

  function setAttribute(o, name, value) {
    if (type !== "track") {
      const next = withAttribute(o.attributes, name, value);
      if (next) o.attributes = next;
      else delete o.attributes;
      return true;
    }
    const f = frame();
    const keyframes = keyframesWithAttribute(o.keyframes, f, interpolateTrack(o.keyframes, f), name, value);
    if (!keyframes) {
      hooks.message(`#${o.id} is not on frame ${f}: go to a frame where it is to change it.`, true);
      return false;
    }
    o.keyframes = keyframes;
    return true;
  }

  // The relation tool: pick a subject (the selected object), a predicate, then select the
  // object and add; the list shows the relations of this frame (of every frame for tracks).
  function renderRelations() {
    const panel = $("relations");
    if (!panel) return;
    panel.innerHTML = "";
    panel.hidden = !predicates.length || type === "classify";
    if (panel.hidden) return;
    panel.appendChild(element("h3", { textContent: "Relations" }));
    const subject = state.relSubject;
    const pick = element("button", {
      type: "button",
      id: "relation-subject",
      className: "secondary",
      textContent: subject ? `Subject: ${describeObject(subject)}` : "Set subject to the selected object",
      disabled: readOnly || !state.selected,
    });
    pick.addEventListener("click", () => {
      state.relSubject = state.selected;
      render();
    });
    const predicate = element("select", { id: "relation-predicate", disabled: readOnly });
    predicates.forEach((p) => predicate.appendChild(element("option", { value: p, textContent: p })));
    predicate.value = state.relPredicate && predicates.includes(state.relPredicate) ? state.relPredicate : predicates[0];
    predicate.addEventListener("change", () => {
      state.relPredicate = predicate.value;
    });
    const add = element("button", {
      type: "button",
      id: "relation-add",
      textContent: "Relate to the selected object",
      disabled: readOnly || !subject || !state.selected,
    });
    add.addEventListener("click", () => {
      const problem = relationProblem(state.relations, subject, predicate.value, state.selected, predicates, type);
      if (problem) {
        hooks.message(`Relation not added: ${problem}.`, true);
        return;
      }
      state.relations = [...state.relations, { subject, predicate: predicate.value, object: state.selected }];
      state.relPredicate = predicate.value;
      state.relSubject = null;
      changed();
      render();
    });
    panel.append(pick, predicate, add);
    const list = element("ul", { className: "relation-list" });
    state.relations
      .filter((r) => type === "track" || r.subject.frame === frame())
      .forEach((r) => {
        const li = element("li", { textContent: describeRelation(r, type) });
        const remove = element("button", { type: "button", className: "secondary", textContent: "×", disabled: readOnly });
        remove.title = "Remove this relation";
        remove.addEventListener("click", () => {
          state.relations = state.relations.filter((x) => x !== r);
          changed();
          render();
        });
        li.appendChild(remove);
        list.appendChild(li);
      });
    panel.appendChild(list);
  }

  const describeObject = (o) => (type === "track" ? `#${o.id} ${o.label}` : `${o.label} (frame ${o.frame})`);

  // ---- Editing ----
  function select(o) {
    state.selected = o;
    state.selectedEvent = null;
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
    if (type === "track" && state.events.includes(state.selectedEvent)) {
      state.events = state.events.filter((e) => e !== state.selectedEvent);
      state.selectedEvent = null;
      changed();
      render();
      return;
    }
    const o = state.selected;
    if (!o) return;
    // A track's events go with it (the server refuses an event on a track that is not there).
    const isTrack = state.tracks.includes(o);
    state.events = state.events.filter((e) => e !== o && !(isTrack && e.track === o.id));
    state.tracks = state.tracks.filter((t) => t !== o);
    state.boxes = state.boxes.filter((b) => b !== o);
    state.polygons = state.polygons.filter((p) => p !== o);
    state.masks = state.masks.filter((m) => m !== o);
    state.relations = liveRelations(state.relations, state, type);
    if (state.relSubject === o) state.relSubject = null;
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
    if (!h || tool === "draw") {
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

  // ---- Pointer input: mouse, pen and touch alike ----
  // Fingers on the canvas: two of them pinch (zoom) and move (pan) the view.
  const pointers = new Map();
  let pinch = null;

  const stagePoint = (x, y) => {
    const r = stage.getBoundingClientRect();
    return [x - r.left, y - r.top];
  };

  function startPinch() {
    // A gesture the first finger began is not an edit: put the shapes back as they were.
    if (state.drag && state.drag.mode !== "pan" && state.drag.mode !== "draw") restoreEdits(ws.history.present);
    state.drag = null;
    const [a, b] = [...pointers.values()];
    pinch = {
      dist: Math.hypot(a[0] - b[0], a[1] - b[1]) || 1,
      mid: stagePoint((a[0] + b[0]) / 2, (a[1] + b[1]) / 2),
      view: ws.view,
    };
    render();
  }

  canvas.addEventListener("pointerdown", (ev) => {
    pointers.set(ev.pointerId, [ev.clientX, ev.clientY]);
    if (pointers.size === 2) {
      startPinch();
      return;
    }
    if (pointers.size > 2) return;
    ev.preventDefault();
    if (tool === "pan" || ev.button === 1) {
      state.drag = { mode: "pan", start: [ev.clientX, ev.clientY], orig: ws.view };
      canvas.style.cursor = "grabbing";
      return;
    }
    if (readOnly || type === "classify" || type === "event") return;
    const p = point(ev);
    if (type === "polygon") {
      polygonMouseDown(ev, p);
      return;
    }
    if (type === "mask") {
      maskMouseDown(ev, p);
      return;
    }
    if (paintsTrackMasks() && TRACK_MASK_TOOLS.includes(tool)) {
      trackMaskMouseDown(ev, p);
      return;
    }
    if (ev.button !== 0) return;
    const h = tool === "draw" ? null : hit(p);
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
      state.drag = { mode: "draw", start: p, box: [p[0], p[1], p[0], p[1]] };
    }
    render();
  });

  canvas.addEventListener("contextmenu", (ev) => {
    if (type === "polygon") ev.preventDefault(); // right-click removes a vertex
  });

  // Cursor hints for polygon editing.
  canvas.addEventListener("pointermove", (ev) => {
    if (type !== "polygon" || readOnly || state.drag || tool !== "edit") return;
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

  window.addEventListener("pointermove", (ev) => {
    if (pointers.has(ev.pointerId)) pointers.set(ev.pointerId, [ev.clientX, ev.clientY]);
    if (pinch) {
      if (pointers.size !== 2) return;
      const [a, b] = [...pointers.values()];
      const mid = stagePoint((a[0] + b[0]) / 2, (a[1] + b[1]) / 2);
      const [w, h] = stageSize();
      const zoomed = zoomAbout(pinch.view, Math.hypot(a[0] - b[0], a[1] - b[1]) / pinch.dist, pinch.mid, w, h);
      setView(panBy(zoomed, mid[0] - pinch.mid[0], mid[1] - pinch.mid[1], w, h));
      return;
    }
    const d = state.drag;
    if (!d) return;
    if (d.mode === "pan") {
      const [w, h] = stageSize();
      setView(panBy(d.orig, ev.clientX - d.start[0], ev.clientY - d.start[1], w, h));
      return;
    }
    const p = point(ev);
    if (d.mode === "paint") {
      maskOps.stroke(d.bits, W, H, d.last, p, brushRadius(), d.value);
      d.last = p;
      d.mask.rle = maskOps.encode(d.bits, H, W);
      render();
      return;
    }
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

  function pointerEnd(ev) {
    pointers.delete(ev.pointerId);
    if (pinch) {
      if (pointers.size < 2) pinch = null;
      return;
    }
    const d = state.drag;
    if (!d) return;
    state.drag = null;
    if (d.mode === "pan") {
      canvas.style.cursor = tool === "pan" ? "grab" : "";
      return;
    }
    if (d.mode === "paint") dropEmptyMasks();
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
      } else {
        // A click, not a drag: select what is under it (in draw mode too), or nothing.
        const shape = smallestBoxAt(shapesHere(), d.start);
        state.selected = shape ? shape.ref : null;
        if (shape && shape.label) picker.value = shape.label;
      }
    }
    changed();
    render();
  }
  window.addEventListener("pointerup", pointerEnd);
  window.addEventListener("pointercancel", pointerEnd);

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
    if (type === "mask") {
      closeOutline();
      return;
    }
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
      keepDeclared(state.selected, specsFor(attributes, picker.value)); // another class's go
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
    if (document.querySelector("dialog[open]")) return; // the dialog has the keys (Esc closes it)
    const k = ev.key;
    const mod = ev.ctrlKey || ev.metaKey;
    let handled = true;
    if (mod && (k === "z" || k === "Z") && !ev.shiftKey) undo();
    else if (mod && (((k === "z" || k === "Z") && ev.shiftKey) || k === "y" || k === "Y")) redo();
    else if (mod && !ev.altKey && k !== "Enter") handled = false; // the browser's own shortcuts
    else if (k === "+" || k === "=") zoomBy(1.25);
    else if (k === "-" || k === "_") zoomBy(0.8);
    else if (k === "0") setView({ ...FIT });
    else if ((k === "n" || k === "N") && !readOnly && type !== "classify") setTool(tool === "draw" ? "edit" : "draw");
    else if (k === "h" || k === "H") setTool(tool === "pan" ? "edit" : "pan");
    else if (k === "?" && $("help")) $("help").open = !$("help").open;
    else if (k === "ArrowRight" || k === "d") go(state.idx + (ev.shiftKey ? 10 : 1));
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
      setTool("edit");
      render();
    } else if (k === "Enter" && !(ev.ctrlKey || ev.metaKey) && (type === "polygon" || type === "mask")) closePolygon();
    else if ((type === "mask" || paintsTrackMasks()) && !readOnly && (k === "b" || k === "B")) setTool("brush");
    else if ((type === "mask" || paintsTrackMasks()) && !readOnly && (k === "e" || k === "E")) setTool("eraser");
    else if ((type === "mask" || paintsTrackMasks()) && !readOnly && (k === "f" || k === "F")) setTool("fill");
    else if (type === "mask" && !readOnly && (k === "p" || k === "P")) setTool("outline");
    else if ((type === "mask" || paintsTrackMasks()) && (k === "[" || k === "]") && $("brush-size")) {
      const size = $("brush-size");
      size.value = String(clamp(Number(size.value) + (k === "]" ? 2 : -2), Number(size.min), Number(size.max)));
    }
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

  $("undo").addEventListener("click", undo);
  $("delete-selected").addEventListener("click", () => !readOnly && deleteSelected());
  $("close-polygon").addEventListener("click", closePolygon);
  $("redo").addEventListener("click", redo);
  $("zoom-in").addEventListener("click", () => zoomBy(1.25));
  $("zoom-out").addEventListener("click", () => zoomBy(0.8));
  $("zoom-fit").addEventListener("click", () => setView({ ...FIT }));
  ["edit", "draw", "pan"].forEach((name) => $(`tool-${name}`).addEventListener("click", () => setTool(name)));
  MASK_TOOLS.forEach((name) => {
    const b = $(`tool-${name}`);
    if (b) b.addEventListener("click", () => setTool(name));
  });
  const newMask = $("new-mask");
  if (newMask) {
    newMask.addEventListener("click", () => {
      state.selected = null; // the next brush stroke starts a new mask (a new instance)
      if (tool !== "brush" && tool !== "outline") setTool("brush");
      render();
    });
  }

  /* Add payload items of the workspace's type (accepted proposals) as one edit. */
  function add(items) {
    if (readOnly || !items.length) return;
    items.forEach((item) => {
      if (type === "track") state.tracks.push({ ...item, id: state.nextId++ });
      else if (type === "bbox") state.boxes.push(item);
      else if (type === "polygon") state.polygons.push(item);
    });
    changed();
    render();
  }

  return {
    workspace,
    use,
    render,
    add,
    focusError,
    load,
    go,
    undo,
    redo,
    setTool,
    current: () => ws,
    frame: () => frame(),
    selectedTrack: () => (type === "track" && state.tracks.includes(state.selected) ? state.selected : null),
    trackById: (id) => (type === "track" ? state.tracks.find((t) => t.id === id) || null : null),
    /* Replace a track's keyframes as one edit (one undo step). */
    setKeyframes(track, keyframes) {
      if (readOnly || !state.tracks.includes(track)) return;
      track.keyframes = keyframes;
      changed();
      render();
    },
    setReadOnly(value) {
      readOnly = value;
    },
    isReadOnly: () => readOnly,
  };
}
