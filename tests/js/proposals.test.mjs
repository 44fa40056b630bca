// The proposals' pure logic in static/js/annotate/proposals.mjs: suggestions from the assignment
// view, what an accepted one becomes, what is still pending; and payloadOf (core.mjs) keeping an
// accepted shape's link through edits. Run: node --test tests/js/

import assert from "node:assert/strict";
import { test } from "node:test";

import { payloadOf } from "../../static/js/annotate/core.mjs";
import { acceptedItem, pendingOf, suggestionsOf } from "../../static/js/annotate/proposals.mjs";

const VIEW = [
  {
    id: 4,
    source: "motion",
    confidence: 0.7,
    key: "boxes",
    shapes: [
      { ref: "4:0", confidence: 0.9, frame: 0, label: "car", box: [1, 2, 30, 40] },
      { ref: "4:1", confidence: 0.5, frame: 1, label: "person", box: [5, 5, 9, 9] },
    ],
  },
];

test("suggestions carry their reference, confidence and source apart from the shape", () => {
  const s = suggestionsOf(VIEW);
  assert.deepEqual(
    s.map((x) => [x.ref, x.confidence, x.source]),
    [["4:0", 0.9, "motion"], ["4:1", 0.5, "motion"]],
  );
  assert.deepEqual(s[0].item, { frame: 0, label: "car", box: [1, 2, 30, 40] });
  assert.deepEqual(suggestionsOf(undefined), []);
});

test("an accepted suggestion is a copy that names its proposal, and edits keep the link", () => {
  const [first] = suggestionsOf(VIEW);
  const shape = acceptedItem(first);
  assert.deepEqual(shape, { frame: 0, label: "car", box: [1, 2, 30, 40], from_proposal: "4:0" });
  shape.box = [3, 2, 32, 40]; // moved in the workspace
  assert.deepEqual(first.item.box, [1, 2, 30, 40]);
  const state = { boxes: [shape, { frame: 1, label: "car", box: [0, 0, 4, 4] }] };
  assert.deepEqual(payloadOf(state, "bbox").boxes, [
    { frame: 0, label: "car", box: [3, 2, 32, 40], from_proposal: "4:0" },
    { frame: 1, label: "car", box: [0, 0, 4, 4] },
  ]);
});

test("pending leaves out accepted and rejected suggestions", () => {
  const s = suggestionsOf(VIEW);
  const state = { boxes: [acceptedItem(s[0])] };
  assert.deepEqual(pendingOf(s, state, "bbox", new Set()).map((x) => x.ref), ["4:1"]);
  assert.deepEqual(pendingOf(s, state, "bbox", new Set(["4:1"])), []);
  assert.deepEqual(pendingOf(s, { boxes: [] }, "bbox", new Set()).length, 2);
});

test("an accepted track drops the proposal's id (the workspace numbers it)", () => {
  const track = {
    ref: "9:0",
    confidence: 0.8,
    source: "ml_backend",
    item: { id: 0, label: "car", keyframes: [{ frame: 0, box: [0, 0, 5, 5], outside: false }] },
  };
  assert.deepEqual(acceptedItem(track), {
    label: "car",
    keyframes: [{ frame: 0, box: [0, 0, 5, 5], outside: false }],
    from_proposal: "9:0",
  });
});
