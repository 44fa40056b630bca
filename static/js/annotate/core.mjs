/* The annotation page's pure core: geometry, keyframe interpolation, submission payloads and the
 * server's error paths.
 *
 * No DOM, no network, no globals, no state: plain data in, plain data out. The page
 * (workspace.mjs, page.mjs) and the Node tests (tests/js/) import the same functions, and the
 * cases in tests/vectors/*.json are checked against this module AND its Python twins
 * (tasks/interpolation.py, tasks/annotations.py), so the two implementations cannot drift.
 *
 * Coordinates are frame pixels with the origin top-left: boxes [x1, y1, x2, y2], polygon points
 * [[x, y], ...], exactly as the worker API takes them. Events' own helpers live in events.mjs
 * (its pure part); the payload and counting functions here call them.
 */

import { activeAt, eventsPayload } from "./events.mjs";
import { relationsPayload, relationsSnapshot } from "./attributes.mjs";

// ---- Numbers ----

export const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

/* Round to 2 decimals exactly as numpy's ``np.round(x, 2)`` does (the server rounds stored
 * per-frame boxes that way in tasks/interpolation.py): scale by 100, round half to even, scale
 * back. Math.round alone rounds halves up, so 0.125 would become 0.13 here and 0.12 there. */
export function round2(v) {
  const y = v * 100;
  let r = Math.round(y); // ties go towards +Infinity...
  if (r - y === 0.5 && r % 2 !== 0) r -= 1; // ...unless that lands on an odd number
  return r / 100;
}

// ---- Boxes ----

/* The box spanned by two corners in any order, clamped to a W x H frame, rounded. */
export function normBox(x1, y1, x2, y2, W, H) {
  return [
    clamp(Math.min(x1, x2), 0, W),
    clamp(Math.min(y1, y2), 0, H),
    clamp(Math.max(x1, x2), 0, W),
    clamp(Math.max(y1, y2), 0, H),
  ].map(round2);
}

/* ``box`` dragged from ``start`` to ``p``: same size, kept inside the frame. */
export function moveBox(box, start, p, W, H) {
  const [x1, y1, x2, y2] = box;
  const w = x2 - x1;
  const h = y2 - y1;
  const nx = clamp(x1 + p[0] - start[0], 0, W - w);
  const ny = clamp(y1 + p[1] - start[1], 0, H - h);
  return [nx, ny, nx + w, ny + h].map(round2);
}

/* ``box`` with corner ``corner`` (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) moved to
 * ``p``; dragging a corner past the opposite one flips the box rather than inverting it. */
export function resizeBox(box, corner, p, W, H) {
  const b = box.slice();
  if (corner === 0 || corner === 2) b[0] = p[0];
  else b[2] = p[0];
  if (corner === 0 || corner === 1) b[1] = p[1];
  else b[3] = p[1];
  return normBox(b[0], b[1], b[2], b[3], W, H);
}

export const boxArea = (b) => (b[2] - b[0]) * (b[3] - b[1]);

export const inBox = (p, b) => p[0] >= b[0] && p[0] <= b[2] && p[1] >= b[1] && p[1] <= b[3];

/* The index of the corner of ``box`` within ``tol`` of ``p`` (same numbering as resizeBox), or -1. */
export function cornerAt(box, p, tol) {
  const [x1, y1, x2, y2] = box;
  const corners = [[x1, y1], [x2, y1], [x1, y2], [x2, y2]];
  return corners.findIndex(([x, y]) => Math.abs(p[0] - x) <= tol && Math.abs(p[1] - y) <= tol);
}

/* The smallest item whose ``box`` contains ``p`` (so a small box inside a big one stays
 * reachable), or undefined. */
export function smallestBoxAt(items, p) {
  const inside = items.filter((x) => inBox(p, x.box));
  inside.sort((a, b) => boxArea(a.box) - boxArea(b.box));
  return inside[0];
}

// ---- Polygons ----

/* The bounding box [x1, y1, x2, y2] of some points. */
export function bounds(points) {
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

/* Even-odd rule: whether ``p`` is inside the closed polygon. */
export function pointInPolygon(p, points) {
  let inside = false;
  for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
    const [xi, yi] = points[i];
    const [xj, yj] = points[j];
    if (yi > p[1] !== yj > p[1] && p[0] < ((xj - xi) * (p[1] - yi)) / (yj - yi) + xi) {
      inside = !inside;
    }
  }
  return inside;
}

/* The closest point to ``p`` on the closed polygon's edges: {index (edge i runs from point i to
 * point i+1), point, dist}. */
export function nearestEdge(p, points) {
  let best = { index: -1, point: null, dist: Infinity };
  for (let i = 0; i < points.length; i++) {
    const a = points[i];
    const b = points[(i + 1) % points.length];
    const dx = b[0] - a[0];
    const dy = b[1] - a[1];
    const len2 = dx * dx + dy * dy;
    const t = len2 ? clamp(((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2, 0, 1) : 0;
    const q = [a[0] + t * dx, a[1] + t * dy];
    const dist = Math.hypot(p[0] - q[0], p[1] - q[1]);
    if (dist < best.dist) best = { index: i, point: q, dist };
  }
  return best;
}

/* Shoelace area, the same formula as ``polygon_area`` in tasks/annotations.py. */
export function polygonArea(points) {
  let s = 0;
  for (let i = 0; i < points.length; i++) {
    const a = points[i];
    const b = points[(i + 1) % points.length];
    s += a[0] * b[1] - b[0] * a[1];
  }
  return Math.abs(s) / 2;
}

/* The index of the vertex nearest ``p`` within ``tol`` (Chebyshev distance), or -1. */
export function vertexAt(points, p, tol) {
  let best = -1;
  let bestDist = Infinity;
  points.forEach((q, i) => {
    const d = Math.max(Math.abs(p[0] - q[0]), Math.abs(p[1] - q[1]));
    if (d <= tol && d < bestDist) {
      best = i;
      bestDist = d;
    }
  });
  return best;
}

/* The smallest polygon containing ``p``, or undefined. */
export function smallestPolygonAt(polygons, p) {
  const inside = polygons.filter((o) => pointInPolygon(p, o.points));
  inside.sort((a, b) => polygonArea(a.points) - polygonArea(b.points));
  return inside[0];
}

/* ``points`` dragged from ``start`` to ``p`` as a whole, stopped at the frame's edges. */
export function shiftPolygon(points, start, p, W, H) {
  const b = bounds(points);
  const dx = clamp(p[0] - start[0], -b[0], W - b[2]);
  const dy = clamp(p[1] - start[1], -b[1], H - b[3]);
  return points.map(([x, y]) => [round2(x + dx), round2(y + dy)]);
}

/* The points of a polygon being closed, without exact consecutive repeats (a double-click that
 * closes a polygon also adds its point twice). The caller keeps it only with 3 or more points. */
export function closedPolygon(draft) {
  return draft.filter((p, i, a) => i === 0 || p[0] !== a[i - 1][0] || p[1] !== a[i - 1][1]);
}

// ---- Keyframe interpolation: the rule of tasks/interpolation.py, tested on the same vectors ----

/* The box of a track at ``frame``, or null where the object is absent.
 *
 * ``keyframes``: [{frame, box, outside}] with strictly increasing frames (else a RangeError,
 * as the Python raises ValueError). Before the first keyframe: absent. At or after keyframe i
 * (the last one at or before the frame): absent if i is outside; else linear towards keyframe
 * i+1 when it exists and is not outside; else i's box holds. Not rounded: the preview draws the
 * exact value, and the server rounds what it stores (see round2). */
export function interpolateTrack(keyframes, frame) {
  let i = -1;
  for (let k = 0; k < keyframes.length; k++) {
    if (k > 0 && keyframes[k].frame <= keyframes[k - 1].frame) {
      throw new RangeError("keyframes must be strictly increasing");
    }
    if (keyframes[k].frame <= frame) i = k;
  }
  if (i < 0) return null;
  const a = keyframes[i];
  if (a.outside) return null;
  const b = keyframes[i + 1];
  if (!b || b.outside) return a.box.slice();
  const t = (frame - a.frame) / (b.frame - a.frame);
  return a.box.map((v, j) => v * (1 - t) + b.box[j] * t);
}

/* ``keyframes`` with a keyframe at ``frame`` (replacing one there), in frame order. */
export function withKeyframe(keyframes, frame, box, outside) {
  const kf = { frame, box: box.map(round2), outside: !!outside };
  const old = keyframes.find((k) => k.frame === frame);
  if (old && old.attributes) kf.attributes = old.attributes; // moving a keyframe keeps its changes
  if (old && old.mask && !outside) kf.mask = old.mask; // and its mask (tracks with masks)
  const rest = keyframes.filter((k) => k.frame !== frame);
  return [...rest, kf].sort((a, b) => a.frame - b.frame);
}

/* ``keyframes`` with the object leaving the frame at ``frame`` (or coming back, if it left right
 * there), or null when that is not possible: a track cannot start outside. An outside keyframe
 * keeps the box the object had there, as the API takes it. */
export function withOutsideToggled(keyframes, frame) {
  const existing = keyframes.find((k) => k.frame === frame);
  if (existing && existing.outside) {
    return keyframes.map((k) => (k === existing ? { ...k, outside: false } : k));
  }
  if (!keyframes.length || keyframes[0].frame >= frame) return null;
  const prev = keyframes.filter((k) => k.frame <= frame && !k.outside).pop();
  const box = interpolateTrack(keyframes, frame) || (prev && prev.box);
  if (!box) return null;
  return withKeyframe(keyframes, frame, box, true);
}

// ---- Submission payloads (the formats in tasks/annotations.py's docstring) ----

/* The payload key of each annotation type. */
export const TOP_KEY = { bbox: "boxes", polygon: "polygons", classify: "labels", track: "tracks", event: "events", mask: "masks" };

/* The submission payload of a workspace state ({tracks, boxes, polygons, labels: {frame:
 * label}}) for annotation type ``kind``. Only the API's fields leave the page. */
export function payloadOf(state, kind) {
  // A shape kept from a machine proposal names it (proposals.mjs); the server measures the rest.
  const origin = (s) => (s.from_proposal ? { from_proposal: s.from_proposal } : {});
  // Attributes only where given, relations only when drawn: a job without them sends what it
  // always sent (attributes.mjs keeps them; tasks/attributes.py reads them).
  const attrs = (o) => (o.attributes && Object.keys(o.attributes).length ? { attributes: o.attributes } : {});
  const related = (out) => {
    const relations = relationsPayload(state.relations, state, kind);
    return relations.length ? { ...out, relations } : out;
  };
  if (kind === "track") {
    const out = related({
      tracks: state.tracks.map((t) => ({ id: t.id, label: t.label, keyframes: t.keyframes, ...origin(t), ...attrs(t) })),
    });
    // A track job with event labels: the tracks' events ride along (only when there are some).
    if (state.events && state.events.length) out.events = eventsPayload(state.events);
    return out;
  }
  if (kind === "event") return { events: eventsPayload(state.events || []) };
  if (kind === "bbox") {
    return related({
      boxes: state.boxes.map((b) => ({ frame: b.frame, label: b.label, box: b.box, ...origin(b), ...attrs(b) })),
    });
  }
  if (kind === "polygon") {
    return related({
      polygons: state.polygons.map((p) => ({ frame: p.frame, label: p.label, points: p.points, ...origin(p), ...attrs(p) })),
    });
  }
  if (kind === "mask") {
    return { masks: (state.masks || []).map((m) => ({ frame: m.frame, label: m.label, rle: m.rle })) };
  }
  if (kind === "classify") {
    // Integer-like object keys iterate in ascending order, so labels come in frame order.
    return {
      labels: Object.keys(state.labels).map((f) => ({ frame: Number(f), label: state.labels[f] })),
    };
  }
  throw new RangeError(`unknown annotation type ${JSON.stringify(kind)}`);
}

/* Whether a workspace state holds any shape or label. */
export function hasContent(state) {
  return (
    state.tracks.length +
      state.boxes.length +
      state.polygons.length +
      (state.masks || []).length +
      Object.keys(state.labels).length +
      (state.events || []).length >
    0
  );
}

// ---- Error paths: the format declared in tasks/annotations.py ("Error paths") ----
//
// A rejected submission answers {"error": {"message", "fields": {path: [message, ...]}}}:
//
//   path   := list "[" index "]" [ ".keyframes[" index "]" ] [ "." field ]  |  name
//   list   := "tracks" | "boxes" | "polygons" | "labels" | "events" | "masks"
//   answer := question [ "." path ]      (the qualification API: the question's id first)
//
// where ``name`` is any other key ("payload", "labels", a field the job does not take) and is
// shown as it is.

const LIST_PATH =
  /^(tracks|boxes|polygons|labels|events|masks|relations)\[(\d+)\](?:\.keyframes\[(\d+)\])?(?:\.(attributes\.\w+|\w+))?$/;
const ANSWER_PATH = /^(\d+)(?:\.(.+))?$/;

/* {key, index, keyframe, field} of a payload error path; index, keyframe and field are null
 * where the path has none (for a plain name the key is the whole path). */
export function parseErrorPath(path) {
  const m = LIST_PATH.exec(path);
  if (!m) return { key: path, index: null, keyframe: null, field: null };
  return {
    key: m[1],
    index: Number(m[2]),
    keyframe: m[3] === undefined ? null : Number(m[3]),
    field: m[4] === undefined ? null : m[4],
  };
}

/* {question, path} of a qualification error path (path null for the question as a whole), or
 * null for a path that names no question. */
export function parseAnswerPath(path) {
  const m = ANSWER_PATH.exec(path);
  if (!m) return null;
  return { question: Number(m[1]), path: m[2] === undefined ? null : m[2] };
}

const NOUN = { boxes: "box", polygons: "polygon", labels: "label", masks: "mask", relations: "relation" };

/* An error path said for a person, with where to show it: {text, key, index, frame}.
 *
 * ``sent`` is the payload that was submitted; ``key``/``index`` name the offending item in it
 * (null for a plain name) and ``frame`` is the frame to show (null when unknown).
 * "tracks[0].keyframes[2].box" -> "Object #1 (car), keyframe at frame 12: box". */
export function describeErrorPath(path, sent) {
  const p = parseErrorPath(path);
  if (p.index === null) return { text: path, key: null, index: null, frame: null };
  const item = ((sent && sent[p.key]) || [])[p.index] || {};
  if (p.key === "relations") {
    const text = `relation ${p.index + 1}` + (p.field !== null ? `: ${p.field}` : "");
    return { text, key: p.key, index: p.index, frame: null };
  }
  let text =
    p.key === "tracks"
      ? `Object #${item.id} (${item.label})`
      : p.key === "events"
        ? `Event ${p.index + 1} (${item.label}, frames ${item.start}-${item.end})`
        : `${NOUN[p.key]} ${p.index + 1} on frame ${item.frame}`;
  let frame = typeof item.frame === "number" ? item.frame : null;
  if (p.key === "events" && typeof item.start === "number") frame = item.start;
  const keyframes = Array.isArray(item.keyframes) ? item.keyframes : [];
  if (p.keyframe !== null && keyframes[p.keyframe]) {
    frame = keyframes[p.keyframe].frame;
    text += `, keyframe at frame ${frame}`;
  } else if (keyframes.length && frame === null) {
    frame = keyframes[0].frame;
  }
  if (p.field !== null) text += `: ${p.field}`;
  return { text, key: p.key, index: p.index, frame };
}

// ---- Counting what is drawn ----

/* The frames of ``frames`` where nothing is annotated yet: no box, polygon or label there, or no
 * track present (a track that has left the frame does not count). */
export function emptyFrames(state, kind, frames) {
  if (kind === "track") {
    return frames.filter((f) => !state.tracks.some((t) => interpolateTrack(t.keyframes, f)));
  }
  if (kind === "bbox") return frames.filter((f) => !state.boxes.some((b) => b.frame === f));
  if (kind === "polygon") return frames.filter((f) => !state.polygons.some((p) => p.frame === f));
  if (kind === "mask") return frames.filter((f) => !(state.masks || []).some((m) => m.frame === f));
  if (kind === "classify") return frames.filter((f) => !state.labels[f]);
  if (kind === "event") return []; // stretches without an event are normal: nothing to ask
  throw new RangeError(`unknown annotation type ${JSON.stringify(kind)}`);
}

/* {here, total}: the objects on ``frame`` and in the whole workspace (tracks present on the
 * frame and all tracks; boxes or polygons on the frame and on every frame; for classify, whether
 * the frame has its label and how many frames do). */
export function objectCounts(state, kind, frame) {
  if (kind === "track") {
    const here = state.tracks.filter((t) => interpolateTrack(t.keyframes, frame)).length;
    return { here, total: state.tracks.length };
  }
  if (kind === "bbox") {
    return { here: state.boxes.filter((b) => b.frame === frame).length, total: state.boxes.length };
  }
  if (kind === "polygon") {
    return { here: state.polygons.filter((p) => p.frame === frame).length, total: state.polygons.length };
  }
  if (kind === "mask") {
    const all = state.masks || [];
    return { here: all.filter((m) => m.frame === frame).length, total: all.length };
  }
  if (kind === "classify") return { here: state.labels[frame] ? 1 : 0, total: Object.keys(state.labels).length };
  if (kind === "event") {
    const events = state.events || [];
    return { here: activeAt(events, frame).length, total: events.length };
  }
  throw new RangeError(`unknown annotation type ${JSON.stringify(kind)}`);
}

// ---- Undo and redo ----
//
// A history is {past, present, future} of snapshots: opaque values compared with ===, which the
// editor makes with editsOf (a JSON string, so equal edits are equal snapshots). Every function
// returns a new history and leaves its argument alone.

/* How many steps back undo can go. */
export const HISTORY_LIMIT = 200;

export const historyNew = (snapshot) => ({ past: [], present: snapshot, future: [] });

/* ``h`` after an edit that led to ``snapshot``: the present goes into the past (the oldest steps
 * beyond ``limit`` are forgotten) and the redo steps are dropped. A snapshot equal to the
 * present (an edit that changed nothing, a click) is no step at all. */
export function historyPush(h, snapshot, limit = HISTORY_LIMIT) {
  if (snapshot === h.present) return h;
  return { past: [...h.past, h.present].slice(-limit), present: snapshot, future: [] };
}

export function historyUndo(h) {
  if (!h.past.length) return h;
  return { past: h.past.slice(0, -1), present: h.past[h.past.length - 1], future: [h.present, ...h.future] };
}

export function historyRedo(h) {
  if (!h.future.length) return h;
  return { past: [...h.past, h.present], present: h.future[0], future: h.future.slice(1) };
}

export const canUndo = (h) => h.past.length > 0;
export const canRedo = (h) => h.future.length > 0;

/* The edits of a workspace state as one string: what undo restores (the frame shown, the
 * selection and the errors are not edits). */
export function editsOf(state) {
  return JSON.stringify({
    tracks: state.tracks,
    boxes: state.boxes,
    polygons: state.polygons,
    masks: state.masks || [],
    labels: state.labels,
    events: state.events || [],
    nextId: state.nextId,
    ...(state.relations && state.relations.length ? { relations: relationsSnapshot(state.relations, state) } : {}),
  });
}

// ---- Drafts: work in progress kept on the device and on the server (tasks/drafts.py) ----

/* The draft of a workspace state, saved at ``savedAt`` (ms since the epoch). */
export function draftOf(state, kind, savedAt) {
  return { saved_at: savedAt, payload: payloadOf(state, kind) };
}

const isPlainObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);

/* Whether ``value`` has the shape of a draft of annotation type ``kind``: what the server
 * accepts (clean_draft in tasks/drafts.py, bar the size), and so what the page may restore from
 * the device's storage, which may hold anything. */
export function isDraftOf(value, kind) {
  if (!isPlainObject(value)) return false;
  if (Object.keys(value).some((k) => k !== "saved_at" && k !== "payload")) return false;
  const t = value.saved_at;
  if (!Number.isSafeInteger(t) || t < 0) return false;
  if (!isPlainObject(value.payload)) return false;
  return Object.entries(value.payload).every(
    ([k, items]) =>
      (k === TOP_KEY[kind] || (kind === "track" && k === "events") || (k === "relations" && kind !== "classify")) &&
      Array.isArray(items) &&
      items.every(isPlainObject),
  );
}

/* Which draft to restore: {draft, source: "local" | "server"} for the later ``saved_at`` (the
 * device's on a tie: it is written first), or null when there is none. */
export function newestDraft(local, server) {
  if (!local && !server) return null;
  if (!server || (local && local.saved_at >= server.saved_at)) return { draft: local, source: "local" };
  return { draft: server, source: "server" };
}

// ---- Zoom and pan ----
//
// A view {zoom, x, y} shows the frame scaled by ``zoom`` and shifted by (x, y), in CSS pixels of
// the stage whose size is the frame's size at zoom 1. Positions on the frame are read back from
// the canvas's on-screen rectangle, which the view moves, so drawing needs nothing from here.

export const FIT = Object.freeze({ zoom: 1, x: 0, y: 0 });
export const ZOOM_MIN = 1;
export const ZOOM_MAX = 16;

/* ``view`` shifted so the frame still covers the stage (``w`` x ``h`` CSS pixels). */
export function clampView(view, w, h) {
  return {
    zoom: view.zoom,
    x: clamp(view.x, w - w * view.zoom, 0),
    y: clamp(view.y, h - h * view.zoom, 0),
  };
}

/* ``view`` zoomed by ``factor`` keeping stage point ``p`` where it is (the point under the wheel,
 * or the centre for the keys), within [ZOOM_MIN, ZOOM_MAX] and the stage. */
export function zoomAbout(view, factor, p, w, h) {
  const zoom = clamp(view.zoom * factor, ZOOM_MIN, ZOOM_MAX);
  const k = zoom / view.zoom;
  return clampView({ zoom, x: p[0] - (p[0] - view.x) * k, y: p[1] - (p[1] - view.y) * k }, w, h);
}

/* ``view`` moved by (dx, dy) CSS pixels, within the stage. */
export function panBy(view, dx, dy, w, h) {
  return clampView({ zoom: view.zoom, x: view.x + dx, y: view.y + dy }, w, h);
}
