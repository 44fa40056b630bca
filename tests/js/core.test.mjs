// The page's pure module (static/js/annotate/core.mjs) on the shared vectors (tests/vectors/*.json,
// also read by tests/tasks/test_vectors.py against the Python) and on its geometry.
// Run: node --test tests/js/   (Node 20+, no packages; tests/tasks/test_js.py runs it under pytest)

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import * as core from "../../static/js/annotate/core.mjs";

const vectors = (name) => JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), "utf8"));
const INTERPOLATION = vectors("interpolation.json");
const PAYLOADS = vectors("payloads.json");
const ERROR_PATHS = vectors("error_paths.json");

function assertClose(actual, expected, tol, what) {
  assert.equal(actual.length, expected.length, what);
  actual.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) <= tol, `${what}: ${actual} vs ${expected}`));
}

// ---- Interpolation ----

for (const c of INTERPOLATION.cases) {
  test(`interpolation: ${c.name}`, () => {
    c.frames.forEach((frame, i) => {
      const box = core.interpolateTrack(c.keyframes, frame);
      if (c.boxes[i] === null) {
        assert.equal(box, null, `frame ${frame}`);
        return;
      }
      assertClose(box, c.boxes[i], 1e-9, `frame ${frame}`);
      // Rounded as the server stores it: exactly the same numbers.
      assert.deepEqual(box.map(core.round2), c.stored[i], `stored at frame ${frame}`);
    });
  });
}

for (const c of INTERPOLATION.refused) {
  test(`interpolation refuses: ${c.name}`, () => {
    for (const frame of c.frames) {
      assert.throws(() => core.interpolateTrack(c.keyframes, frame), /strictly increasing/);
    }
  });
}

test("interpolation does not change the keyframes it reads", () => {
  const keyframes = [
    { frame: 0, box: [0, 0, 10, 10], outside: false },
    { frame: 5, box: [5, 5, 15, 15], outside: false },
  ];
  const before = JSON.stringify(keyframes);
  const box = core.interpolateTrack(keyframes, 7);
  box[0] = 999; // a held box is a copy
  assert.equal(JSON.stringify(keyframes), before);
});

test("round2 rounds halves to even, like numpy", () => {
  assert.equal(core.round2(0.125), 0.12);
  assert.equal(core.round2(0.375), 0.38);
  assert.equal(core.round2(2.675), 2.68); // 2.675 * 100 is 267.5 in binary: a tie, to even
  assert.equal(core.round2(1.005), 1); // 1.005 * 100 is 100.49999999999999: down
  assert.equal(core.round2(12.3456), 12.35);
  assert.equal(core.round2(-0.375), -0.38);
  assert.equal(core.round2(7), 7);
});

// ---- Payloads and error paths ----

const emptyState = () => ({ tracks: [], boxes: [], polygons: [], labels: {} });

for (const c of PAYLOADS.cases) {
  test(`payload: ${c.name}`, () => {
    if (c.state) assert.deepEqual(core.payloadOf({ ...emptyState(), ...c.state }, c.type), c.payload);
    for (const [path, expected] of Object.entries(c.described || {})) {
      assert.deepEqual(core.describeErrorPath(path, c.payload), expected, path);
    }
    // Every path the server reports for this payload is one the page can place.
    assert.deepEqual(Object.keys(c.described || {}).sort(), Object.keys(c.errors || {}).sort());
  });
}

test("payloadOf refuses an unknown annotation type", () => {
  assert.throws(() => core.payloadOf(emptyState(), "cuboid"), RangeError);
});

test("hasContent sees any shape or label", () => {
  assert.equal(core.hasContent(emptyState()), false);
  assert.equal(core.hasContent({ ...emptyState(), labels: { 3: "day" } }), true);
  assert.equal(core.hasContent({ ...emptyState(), polygons: [{}] }), true);
});

for (const c of ERROR_PATHS.paths) {
  test(`error path ${c.path}`, () => {
    assert.deepEqual(core.parseErrorPath(c.path), c.parsed);
  });
}

for (const c of ERROR_PATHS.answers) {
  test(`answer path ${c.path}`, () => {
    assert.deepEqual(core.parseAnswerPath(c.path), { question: c.question, path: c.inner });
  });
}

test("paths that name no question are general errors", () => {
  for (const path of ERROR_PATHS.not_answers) assert.equal(core.parseAnswerPath(path), null, path);
});

test("an attribute's and a relation's error paths read for a person", () => {
  const sent = {
    boxes: [{ frame: 30, label: "car", box: [0, 0, 5, 5] }],
    relations: [{ subject: 0, predicate: "rides", object: 0 }],
  };
  assert.deepEqual(core.describeErrorPath("boxes[0].attributes.colour", sent), {
    text: "box 1 on frame 30: attributes.colour",
    key: "boxes",
    index: 0,
    frame: 30,
  });
  assert.deepEqual(core.describeErrorPath("relations[0].object", sent), {
    text: "relation 1: object",
    key: "relations",
    index: 0,
    frame: null,
  });
});

test("a path into a list the payload does not have still reads as text", () => {
  const d = core.describeErrorPath("boxes[3].box", { tracks: [] });
  assert.deepEqual(d, { text: "box 4 on frame undefined: box", key: "boxes", index: 3, frame: null });
});

// ---- Keyframe editing ----

test("withKeyframe replaces a keyframe on the same frame and keeps frame order", () => {
  const k0 = [
    { frame: 0, box: [0, 0, 1, 1], outside: false },
    { frame: 8, box: [8, 8, 9, 9], outside: false },
  ];
  const k1 = core.withKeyframe(k0, 4, [4.004, 4, 5, 5.126], false);
  assert.deepEqual(k1.map((k) => k.frame), [0, 4, 8]);
  assert.deepEqual(k1[1], { frame: 4, box: [4, 4, 5, 5.13], outside: false });
  const k2 = core.withKeyframe(k1, 8, [1, 1, 2, 2], true);
  assert.deepEqual(k2.map((k) => [k.frame, k.outside]), [[0, false], [4, false], [8, true]]);
  assert.equal(k0.length, 2); // the input is left alone
});

test("withOutsideToggled: leave at the interpolated box, come back, never start outside", () => {
  const kfs = [
    { frame: 0, box: [0, 0, 10, 10], outside: false },
    { frame: 10, box: [100, 0, 110, 10], outside: false },
  ];
  const left = core.withOutsideToggled(kfs, 5);
  assert.deepEqual(left[1], { frame: 5, box: [50, 0, 60, 10], outside: true });
  assert.equal(core.interpolateTrack(left, 7), null);
  const back = core.withOutsideToggled(left, 5);
  assert.deepEqual(back[1], { frame: 5, box: [50, 0, 60, 10], outside: false });
  assert.equal(core.withOutsideToggled(kfs, 0), null); // on the first keyframe
  assert.equal(core.withOutsideToggled([], 3), null);
  // Where the object is already absent, the new outside keyframe takes the box of the last
  // visible keyframe before it (the API wants a box on every keyframe the page sends).
  const after = core.withOutsideToggled(left, 8);
  assert.deepEqual(after[2], { frame: 8, box: [0, 0, 10, 10], outside: true });
});

// ---- Geometry ----

test("normBox orders corners and clamps to the frame", () => {
  assert.deepEqual(core.normBox(50, 40, 10, 20, 640, 360), [10, 20, 50, 40]);
  assert.deepEqual(core.normBox(-5, 350, 700, 400, 640, 360), [0, 350, 640, 360]);
});

test("moveBox keeps the size and stops at the edges", () => {
  assert.deepEqual(core.moveBox([10, 10, 30, 40], [15, 15], [25, 20], 640, 360), [20, 15, 40, 45]);
  assert.deepEqual(core.moveBox([10, 10, 30, 40], [15, 15], [1000, -50], 640, 360), [620, 0, 640, 30]);
});

test("resizeBox moves one corner; past the opposite one the box flips", () => {
  assert.deepEqual(core.resizeBox([10, 10, 30, 40], 3, [50, 60], 640, 360), [10, 10, 50, 60]);
  assert.deepEqual(core.resizeBox([10, 10, 30, 40], 0, [40, 50], 640, 360), [30, 40, 40, 50]);
});

test("cornerAt and smallestBoxAt find what the mouse is on", () => {
  assert.equal(core.cornerAt([10, 10, 30, 40], [29, 41], 2), 3);
  assert.equal(core.cornerAt([10, 10, 30, 40], [20, 20], 2), -1);
  const big = { box: [0, 0, 100, 100] };
  const small = { box: [40, 40, 60, 60] };
  assert.equal(core.smallestBoxAt([big, small], [50, 50]), small);
  assert.equal(core.smallestBoxAt([big, small], [10, 10]), big);
  assert.equal(core.smallestBoxAt([big, small], [200, 10]), undefined);
});

const concave = [[0, 0], [100, 0], [100, 100], [50, 40], [0, 100]];

test("pointInPolygon on a concave polygon", () => {
  assert.equal(core.pointInPolygon([20, 20], concave), true);
  assert.equal(core.pointInPolygon([50, 80], concave), false); // in the notch
  assert.equal(core.pointInPolygon([150, 50], concave), false);
});

test("polygonArea is the shoelace area whatever the winding", () => {
  assert.equal(core.polygonArea(concave), 10000 - (100 * 60) / 2);
  assert.equal(core.polygonArea([...concave].reverse()), 7000);
  assert.equal(core.polygonArea([[0, 0], [5, 5], [10, 10]]), 0);
});

test("nearestEdge and vertexAt", () => {
  const square = [[0, 0], [10, 0], [10, 10], [0, 10]];
  const e = core.nearestEdge([5, 12], square);
  assert.equal(e.index, 2);
  assert.deepEqual(e.point, [5, 10]);
  assert.equal(e.dist, 2);
  assert.equal(core.vertexAt(square, [9, 1], 2), 1);
  assert.equal(core.vertexAt(square, [5, 5], 2), -1);
});

test("smallestPolygonAt prefers the inner polygon", () => {
  const outer = { points: [[0, 0], [100, 0], [100, 100], [0, 100]] };
  const inner = { points: [[40, 40], [60, 40], [60, 60]] };
  assert.equal(core.smallestPolygonAt([outer, inner], [55, 45]), inner);
  assert.equal(core.smallestPolygonAt([outer, inner], [10, 90]), outer);
});

test("shiftPolygon moves all points and stops at the frame's edge", () => {
  const tri = [[100, 100], [300, 80], [100, 250]];
  assert.deepEqual(core.shiftPolygon(tri, [0, 0], [100, 50], 640, 360), [[200, 150], [400, 130], [200, 300]]);
  assert.deepEqual(core.shiftPolygon(tri, [0, 0], [1000, 50], 640, 360), [[440, 150], [640, 130], [440, 300]]);
});

test("closedPolygon drops the repeated point of a double-click", () => {
  assert.deepEqual(core.closedPolygon([[0, 0], [5, 0], [5, 5], [5, 5]]), [[0, 0], [5, 0], [5, 5]]);
  assert.deepEqual(core.closedPolygon([[1, 1], [2, 2], [1, 1]]), [[1, 1], [2, 2], [1, 1]]);
});
