/* The annotation page's pure core: geometry, keyframe interpolation, submission payloads and the
 * server's error paths.
 *
 * No DOM, no network, no globals, no state: plain data in, plain data out. The page
 * (workspace.mjs, page.mjs) and the Node tests (tests/js/) import the same functions, and the
 * cases in tests/vectors/*.json are checked against this module AND its Python twins
 * (tasks/interpolation.py, tasks/annotations.py), so the two implementations cannot drift.
 *
 * Coordinates are frame pixels with the origin top-left: boxes [x1, y1, x2, y2], polygon points
 * [[x, y], ...], exactly as the worker API takes them.
 */

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
export const TOP_KEY = { bbox: "boxes", polygon: "polygons", classify: "labels", track: "tracks" };

/* The submission payload of a workspace state ({tracks, boxes, polygons, labels: {frame:
 * label}}) for annotation type ``kind``. Only the API's fields leave the page. */
export function payloadOf(state, kind) {
  if (kind === "track") {
    return { tracks: state.tracks.map((t) => ({ id: t.id, label: t.label, keyframes: t.keyframes })) };
  }
  if (kind === "bbox") {
    return { boxes: state.boxes.map((b) => ({ frame: b.frame, label: b.label, box: b.box })) };
  }
  if (kind === "polygon") {
    return {
      polygons: state.polygons.map((p) => ({ frame: p.frame, label: p.label, points: p.points })),
    };
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
    state.tracks.length + state.boxes.length + state.polygons.length + Object.keys(state.labels).length >
    0
  );
}

// ---- Error paths: the format declared in tasks/annotations.py ("Error paths") ----
//
// A rejected submission answers {"error": {"message", "fields": {path: [message, ...]}}}:
//
//   path   := list "[" index "]" [ ".keyframes[" index "]" ] [ "." field ]  |  name
//   list   := "tracks" | "boxes" | "polygons" | "labels"
//   answer := question [ "." path ]      (the qualification API: the question's id first)
//
// where ``name`` is any other key ("payload", "labels", a field the job does not take) and is
// shown as it is.

const LIST_PATH = /^(tracks|boxes|polygons|labels)\[(\d+)\](?:\.keyframes\[(\d+)\])?(?:\.(\w+))?$/;
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

const NOUN = { boxes: "box", polygons: "polygon", labels: "label" };

/* An error path said for a person, with where to show it: {text, key, index, frame}.
 *
 * ``sent`` is the payload that was submitted; ``key``/``index`` name the offending item in it
 * (null for a plain name) and ``frame`` is the frame to show (null when unknown).
 * "tracks[0].keyframes[2].box" -> "Object #1 (car), keyframe at frame 12: box". */
export function describeErrorPath(path, sent) {
  const p = parseErrorPath(path);
  if (p.index === null) return { text: path, key: null, index: null, frame: null };
  const item = ((sent && sent[p.key]) || [])[p.index] || {};
  let text =
    p.key === "tracks"
      ? `Object #${item.id} (${item.label})`
      : `${NOUN[p.key]} ${p.index + 1} on frame ${item.frame}`;
  let frame = typeof item.frame === "number" ? item.frame : null;
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
