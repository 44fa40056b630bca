// The workspace's mask module (static/js/annotate/masks.mjs) on the vectors tasks/rle.py is tested
// on (tests/vectors/masks.json), and its painting tools.
// Run: node --test tests/js/

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import * as masks from "../../static/js/annotate/masks.mjs";

const VECTORS = JSON.parse(readFileSync(new URL("../vectors/masks.json", import.meta.url), "utf8"));

const bitsOf = (rows) => Uint8Array.from(rows.flat());

for (const c of VECTORS.encode) {
  test(`rle vector: ${c.name}`, () => {
    const h = c.mask.length;
    const w = c.mask[0].length;
    assert.deepEqual(masks.encode(bitsOf(c.mask), h, w), c.rle);
    assert.deepEqual(Array.from(masks.decode(c.rle)), c.mask.flat());
    assert.equal(masks.area(c.rle), c.mask.flat().filter(Boolean).length);
  });
}

test("rle: counts that do not add up are refused", () => {
  assert.throws(() => masks.decode({ size: [2, 2], counts: [1, 2] }), RangeError);
});

test("rle bounds: the box around the 1-pixels", () => {
  const rows = [
    [0, 0, 0, 0],
    [0, 1, 1, 0],
    [0, 0, 1, 0],
  ];
  assert.deepEqual(masks.rleBounds(masks.encode(bitsOf(rows), 3, 4)), [1, 1, 3, 3]);
  assert.equal(masks.rleBounds({ size: [2, 2], counts: [4] }), null);
});

test("brush, eraser and a stroke paint discs along the way", () => {
  const w = 20;
  const h = 10;
  const bits = new Uint8Array(w * h);
  masks.stroke(bits, w, h, [3, 5], [16, 5], 2, 1);
  for (let x = 3; x <= 16; x++) assert.equal(bits[5 * w + x], 1, `x=${x}`);
  assert.equal(bits[0], 0);
  masks.stamp(bits, w, h, 10, 5, 2, 0);
  assert.equal(bits[5 * w + 10], 0);
  assert.equal(bits[5 * w + 4], 1);
});

test("fill floods an enclosed hole and not the outside", () => {
  const w = 9;
  const h = 9;
  const bits = new Uint8Array(w * h);
  for (let i = 2; i <= 6; i++) {
    bits[2 * w + i] = bits[6 * w + i] = bits[i * w + 2] = bits[i * w + 6] = 1;
  }
  assert.equal(masks.fill(bits, w, h, 4, 4), 9);
  assert.equal(bits[4 * w + 4], 1);
  assert.equal(bits[0], 0);
  assert.equal(masks.fill(bits, w, h, 4, 4), 0); // already in
});

test("polygon to mask: a rectangle's pixel centres; crossing edges are detected", () => {
  const w = 10;
  const h = 8;
  const bits = new Uint8Array(w * h);
  const square = [
    [2, 2],
    [7, 2],
    [7, 6],
    [2, 6],
  ];
  masks.polygonToBits(bits, w, h, square);
  assert.equal(masks.area(masks.encode(bits, h, w)), 5 * 4);
  assert.equal(masks.polygonSelfIntersects(square), false);
  const bow = [
    [0, 0],
    [20, 20],
    [20, 0],
    [0, 20],
  ];
  assert.equal(masks.polygonSelfIntersects(bow), true);
});

test("keyframesWithMask: painting a track's mask makes a keyframe whose box holds the mask", () => {
  const w = 20;
  const h = 10;
  const bits = new Uint8Array(w * h);
  masks.stamp(bits, w, h, 15, 5, 3, 1); // a disc around (15, 5), partly right of the box
  const rle = masks.encode(bits, h, w);
  const keyframes = [
    { frame: 0, box: [2, 2, 8, 8], outside: false },
    { frame: 10, box: [4, 2, 10, 8], outside: false },
  ];
  const out = masks.keyframesWithMask(keyframes, 5, [3, 2, 9, 8], rle);
  assert.deepEqual(out.map((k) => k.frame), [0, 5, 10]);
  const kf = out[1];
  assert.deepEqual(kf.mask, rle);
  const [x1, y1, x2, y2] = masks.rleBounds(rle);
  assert.deepEqual(kf.box, [3, Math.min(2, y1), Math.max(9, x2), Math.max(8, y2)]);
  assert.ok(kf.box[0] <= x1 && kf.box[2] >= x2);
  assert.equal(out[0].mask, undefined); // masks are not interpolated: only the keyframe has one
  // Erased to nothing: the keyframe stays, without its mask.
  const erased = masks.keyframesWithMask(out, 5, kf.box, masks.encode(new Uint8Array(w * h), h, w));
  assert.deepEqual(erased.map((k) => k.frame), [0, 5, 10]);
  assert.equal(erased[1].mask, undefined);
});

test("withKeyframe keeps a keyframe's mask when its box moves, not when it goes outside", async () => {
  const core = await import("../../static/js/annotate/core.mjs");
  const rle = { size: [2, 2], counts: [0, 4] };
  const kfs = [{ frame: 0, box: [0, 0, 2, 2], outside: false, mask: rle }];
  assert.deepEqual(core.withKeyframe(kfs, 0, [0, 0, 1, 1], false)[0].mask, rle);
  assert.equal(core.withKeyframe(kfs, 0, [0, 0, 1, 1], true)[0].mask, undefined);
});
