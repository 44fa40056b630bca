/* Masks in the workspace: run-length encoding and painting on a bitmap (pure: no DOM).
 *
 * A bitmap is a Uint8Array of w*h pixels in rows (index y*w + x), 1 inside the mask. What is
 * stored and sent is COCO's uncompressed RLE, the twin of tasks/rle.py: {size: [h, w], counts}
 * read down the columns (column-major), starting with a run of 0-pixels. Both sides are tested
 * on tests/vectors/masks.json.
 *
 * The painting tools: a round brush and eraser of a given radius stamped along a stroke (stamp,
 * stroke), a flood fill of the enclosed region under a point (fill), and polygon to mask
 * (polygonToBits, refused when its edges cross: polygonSelfIntersects, the server's rule).
 *
 * On a track job with masks the same tools paint the selected track's mask on the current frame,
 * which becomes a keyframe (keyframesWithMask); masks are not interpolated between keyframes.
 */

import { withKeyframe } from "./core.mjs";

/* The RLE of a bitmap (rows of w pixels, h rows). */
export function encode(bits, h, w) {
  const counts = [];
  let value = 0;
  let run = 0;
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++) {
      const v = bits[y * w + x] ? 1 : 0;
      if (v !== value) {
        counts.push(run);
        run = 0;
        value = v;
      }
      run++;
    }
  }
  counts.push(run);
  return { size: [h, w], counts };
}

/* The bitmap of an RLE (throws on counts that do not add up to h*w). */
export function decode(rle) {
  const [h, w] = rle.size;
  const bits = new Uint8Array(h * w);
  let i = 0;
  rle.counts.forEach((n, k) => {
    if (k % 2 === 1) {
      for (let j = i; j < i + n; j++) bits[(j % h) * w + Math.floor(j / h)] = 1;
    }
    i += n;
  });
  if (i !== h * w) throw new RangeError(`counts add up to ${i}, not ${h * w}`);
  return bits;
}

/* The number of 1-pixels of an RLE. */
export function area(rle) {
  return rle.counts.reduce((s, n, k) => (k % 2 ? s + n : s), 0);
}

/* [x1, y1, x2, y2] around the 1-pixels of an RLE (x2, y2 exclusive), or null when empty. */
export function rleBounds(rle) {
  const [h] = rle.size;
  let i = 0;
  let box = null;
  rle.counts.forEach((n, k) => {
    if (k % 2 === 1 && n > 0) {
      const x1 = Math.floor(i / h);
      const x2 = Math.floor((i + n - 1) / h);
      const y1 = x2 > x1 ? 0 : i % h;
      const y2 = x2 > x1 ? h - 1 : (i + n - 1) % h;
      box = box
        ? [Math.min(box[0], x1), Math.min(box[1], y1), Math.max(box[2], x2 + 1), Math.max(box[3], y2 + 1)]
        : [x1, y1, x2 + 1, y2 + 1];
    }
    i += n;
  });
  return box;
}

/* Paint a disc of radius r around (cx, cy) with value (1 brush, 0 eraser). */
export function stamp(bits, w, h, cx, cy, r, value) {
  const r2 = r * r;
  const y0 = Math.max(0, Math.floor(cy - r));
  const y1 = Math.min(h - 1, Math.ceil(cy + r));
  const x0 = Math.max(0, Math.floor(cx - r));
  const x1 = Math.min(w - 1, Math.ceil(cx + r));
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const dx = x + 0.5 - cx;
      const dy = y + 0.5 - cy;
      if (dx * dx + dy * dy <= r2) bits[y * w + x] = value;
    }
  }
}

/* Paint the segment from a to b with a round brush of radius r (stamps at most r/2 apart). */
export function stroke(bits, w, h, a, b, r, value) {
  const len = Math.hypot(b[0] - a[0], b[1] - a[1]);
  const steps = Math.max(1, Math.ceil(len / Math.max(0.5, r / 2)));
  for (let k = 0; k <= steps; k++) {
    const t = k / steps;
    stamp(bits, w, h, a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, r, value);
  }
}

/* Flood the 4-connected region of equal pixels under (x, y) with 1: fills a hole enclosed by
 * the mask (a click inside a painted outline). Returns the number of pixels filled. */
export function fill(bits, w, h, x, y) {
  x = Math.floor(x);
  y = Math.floor(y);
  if (x < 0 || y < 0 || x >= w || y >= h || bits[y * w + x]) return 0;
  const stack = [y * w + x];
  let filled = 0;
  bits[y * w + x] = 1;
  while (stack.length) {
    const i = stack.pop();
    filled++;
    const px = i % w;
    const py = (i - px) / w;
    if (px > 0 && !bits[i - 1]) (bits[i - 1] = 1), stack.push(i - 1);
    if (px < w - 1 && !bits[i + 1]) (bits[i + 1] = 1), stack.push(i + 1);
    if (py > 0 && !bits[i - w]) (bits[i - w] = 1), stack.push(i - w);
    if (py < h - 1 && !bits[i + w]) (bits[i + w] = 1), stack.push(i + w);
  }
  return filled;
}

function segmentsCross(p1, p2, p3, p4) {
  const orient = (a, b, c) => (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
  const d1 = orient(p3, p4, p1);
  const d2 = orient(p3, p4, p2);
  const d3 = orient(p1, p2, p3);
  const d4 = orient(p1, p2, p4);
  if (d1 > 0 !== d2 > 0 && d3 > 0 !== d4 > 0 && d1 && d2 && d3 && d4) return true;
  const on = (a, b, c) =>
    Math.min(a[0], b[0]) <= c[0] && c[0] <= Math.max(a[0], b[0]) && Math.min(a[1], b[1]) <= c[1] && c[1] <= Math.max(a[1], b[1]);
  return (
    (d1 === 0 && on(p3, p4, p1)) || (d2 === 0 && on(p3, p4, p2)) || (d3 === 0 && on(p1, p2, p3)) || (d4 === 0 && on(p1, p2, p4))
  );
}

/* Whether two non-adjacent edges of the closed polygon touch or cross (tasks/annotations.py's
 * polygon_self_intersects). */
export function polygonSelfIntersects(points) {
  const n = points.length;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (j === i + 1 || (i === 0 && j === n - 1)) continue;
      if (segmentsCross(points[i], points[(i + 1) % n], points[j], points[(j + 1) % n])) return true;
    }
  }
  return false;
}

/* Set to 1 the pixels whose centres lie inside the polygon (even-odd rule, scanlines). */
export function polygonToBits(bits, w, h, points) {
  const n = points.length;
  for (let y = 0; y < h; y++) {
    const cy = y + 0.5;
    const xs = [];
    for (let i = 0; i < n; i++) {
      const [ax, ay] = points[i];
      const [bx, by] = points[(i + 1) % n];
      if (ay <= cy !== by <= cy) xs.push(ax + ((cy - ay) / (by - ay)) * (bx - ax));
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      const x0 = Math.max(0, Math.ceil(xs[k] - 0.5));
      const x1 = Math.min(w - 1, Math.floor(xs[k + 1] - 0.5));
      for (let x = x0; x <= x1; x++) bits[y * w + x] = 1;
    }
  }
}

/* A track's keyframes with ``rle`` as its mask at ``frame`` (a keyframe there, made from ``box``
 * when there is none): the box grows to hold the whole mask (the server wants 90% of a
 * keyframe's mask inside its box, tasks/annotations.py); an empty or null ``rle`` removes the
 * keyframe's mask and keeps the keyframe. */
export function keyframesWithMask(keyframes, frame, box, rle) {
  const painted = rle && area(rle) > 0 ? rle : null;
  let b = box;
  if (painted) {
    const m = rleBounds(painted);
    b = [Math.min(b[0], m[0]), Math.min(b[1], m[1]), Math.max(b[2], m[2]), Math.max(b[3], m[3])];
  }
  const out = withKeyframe(keyframes, frame, b, false);
  const kf = out.find((k) => k.frame === frame);
  if (painted) kf.mask = painted;
  else delete kf.mask;
  return out;
}
