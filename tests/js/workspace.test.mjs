// The workspace's pure logic in static/js/annotate/core.mjs: undo history, object counts, empty
// frames, zoom and pan (tests/vectors/workspace.json) and drafts (tests/vectors/drafts.json, also
// read by tests/tasks/test_vectors.py against tasks/drafts.py). Run: node --test tests/js/

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import * as core from "../../static/js/annotate/core.mjs";

const vectors = (name) => JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), "utf8"));
const WORKSPACE = vectors("workspace.json");
const DRAFTS = vectors("drafts.json");

for (const c of WORKSPACE.history) {
  test(`history: ${c.name}`, () => {
    let h = core.historyNew(c.start);
    c.steps.forEach(([op, snapshot, present, canUndo, canRedo], i) => {
      const before = JSON.stringify(h);
      const next =
        op === "push" ? core.historyPush(h, snapshot, c.limit) : op === "undo" ? core.historyUndo(h) : core.historyRedo(h);
      assert.equal(JSON.stringify(h), before, `step ${i} changed its argument`);
      h = next;
      assert.equal(h.present, present, `step ${i} (${op})`);
      assert.equal(core.canUndo(h), canUndo, `step ${i} (${op}) canUndo`);
      assert.equal(core.canRedo(h), canRedo, `step ${i} (${op}) canRedo`);
    });
  });
}

test("editsOf: the same edits are the same snapshot; selection and frame are not edits", () => {
  const st = { tracks: [], boxes: [{ frame: 0, label: "a", box: [0, 0, 1, 1] }], polygons: [], labels: {}, nextId: 1 };
  const a = core.editsOf(st);
  assert.equal(core.editsOf({ ...st, idx: 4, selected: st.boxes[0] }), a);
  assert.notEqual(core.editsOf({ ...st, boxes: [] }), a);
  assert.deepEqual(JSON.parse(a).boxes, st.boxes);
});

for (const c of WORKSPACE.counts) {
  test(`counts: ${c.name}`, () => {
    assert.deepEqual(core.emptyFrames(c.state, c.type, c.frames), c.empty);
    c.frames.forEach((f, i) => {
      assert.deepEqual(core.objectCounts(c.state, c.type, f), { here: c.here[i], total: c.total }, `frame ${f}`);
    });
  });
}

test("counts refuse an unknown annotation type", () => {
  const st = { tracks: [], boxes: [], polygons: [], labels: {} };
  // (event and mask are known types now: an unknown one is refused)
  assert.throws(() => core.emptyFrames(st, "caption", [0]), RangeError);
  assert.throws(() => core.objectCounts(st, "caption", 0), RangeError);
});

test("counts of masks: per frame and in all", () => {
  const rle = { size: [2, 2], counts: [1, 3] };
  const st = { tracks: [], boxes: [], polygons: [], labels: {}, masks: [
    { frame: 0, label: "road", rle },
    { frame: 0, label: "car", rle },
    { frame: 5, label: "car", rle },
  ] };
  assert.deepEqual(core.objectCounts(st, "mask", 0), { here: 2, total: 3 });
  assert.deepEqual(core.emptyFrames(st, "mask", [0, 5, 10]), [10]);
  assert.deepEqual(core.payloadOf(st, "mask").masks[2], { frame: 5, label: "car", rle });
  assert.equal(core.hasContent(st), true);
});

for (const c of WORKSPACE.zoom) {
  test(`view: ${c.name}`, () => {
    const v =
      c.op === "zoom"
        ? core.zoomAbout(c.view, c.factor, c.point, c.w, c.h)
        : core.panBy(c.view, c.dx, c.dy, c.w, c.h);
    assert.equal(v.zoom, c.expect.zoom);
    assert.ok(Math.abs(v.x - c.expect.x) < 1e-9 && Math.abs(v.y - c.expect.y) < 1e-9, JSON.stringify(v));
  });
}

test("zoomAbout: the frame point under the cursor is the same before and after", () => {
  const w = 640;
  const h = 360;
  let view = core.FIT;
  for (const [factor, p] of [[2, [100, 80]], [1.7, [400, 300]], [0.8, [10, 350]], [3, [639, 1]]]) {
    const under = [(p[0] - view.x) / view.zoom, (p[1] - view.y) / view.zoom];
    const next = core.zoomAbout(view, factor, p, w, h);
    const after = [(p[0] - next.x) / next.zoom, (p[1] - next.y) / next.zoom];
    // Unless the stage's edge stopped it, the frame point stays under the cursor.
    if (core.clampView({ zoom: next.zoom, x: p[0] - under[0] * next.zoom, y: p[1] - under[1] * next.zoom }, w, h).x === next.x) {
      assert.ok(Math.abs(after[0] - under[0]) < 1e-9, `${factor} ${p}`);
    }
    view = next;
  }
});

for (const c of DRAFTS.shape) {
  test(`draft shape: ${c.name}`, () => {
    assert.equal(core.isDraftOf(c.draft, c.type), !("field" in c));
  });
}

for (const c of DRAFTS.newest) {
  test(`newest draft: ${c.name}`, () => {
    const got = core.newestDraft(c.local, c.server);
    if (c.pick === null) assert.equal(got, null);
    else assert.deepEqual(got, { draft: c[c.pick], source: c.pick });
  });
}

test("draftOf is what the server takes: the payload the page would submit", () => {
  const st = { tracks: [], boxes: [{ frame: 3, label: "car", box: [1, 2, 3, 4], extra: true }], polygons: [], labels: {} };
  const d = core.draftOf(st, "bbox", 1764556800000);
  assert.deepEqual(d, { saved_at: 1764556800000, payload: { boxes: [{ frame: 3, label: "car", box: [1, 2, 3, 4] }] } });
  assert.equal(core.isDraftOf(d, "bbox"), true);
  assert.equal(core.isDraftOf(d, "track"), false);
});
