// The pure helpers of the timeline's event lanes (static/js/annotate/events.mjs) on the shared
// vectors (tests/vectors/events.json; `overlap` is also checked against tasks/annotations.py).
// Run: node --test tests/js/   (Node 20+, no packages)

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import * as core from "../../static/js/annotate/core.mjs";
import * as events from "../../static/js/annotate/events.mjs";

const V = JSON.parse(readFileSync(new URL("../vectors/events.json", import.meta.url), "utf8"));
const { first, last } = V.range;

test("frame under a point of a lane", () => {
  for (const c of V.frame_at) assert.equal(events.frameAt(c.x, c.width, first, last), c.frame, JSON.stringify(c));
  // Every frame's cell starts where frameAt says that frame begins.
  for (let f = first; f <= last; f += 7) assert.equal(events.frameAt(events.xOf(f, 400, first, last) + 0.01, 400, first, last), f);
});

test("intervals are in order and inside the microtask", () => {
  for (const c of V.interval) assert.deepEqual(events.interval(c.a, c.b, first, last), c.interval);
});

test("resizing moves one edge, flipping past the other", () => {
  for (const c of V.resize) assert.deepEqual(events.resized(c.event, c.edge, c.frame, first, last), c.result);
});

for (const c of V.overlap) {
  test(`overlap: ${c.name}`, () => {
    const { label, start, end } = c.candidate;
    assert.equal(events.overlapping(c.events, label, start, end), c.clash);
  });
}

test("edges within a tolerance", () => {
  for (const c of V.edge_at) assert.deepEqual(events.edgeAt(c.events, c.label, c.frame, c.tol), c.edge);
});

test("the event under a frame is the shortest of its label", () => {
  const evs = [
    { label: "a", start: 0, end: 50 },
    { label: "a", start: 60, end: 70 },
    { label: "b", start: 10, end: 12 },
  ];
  assert.equal(events.eventAt(evs, "a", 11), 0);
  assert.equal(events.eventAt(evs, "b", 11), 2);
  assert.equal(events.eventAt(evs, "a", 55), -1);
  assert.deepEqual(events.activeAt(evs, 11).map((e) => e.label), ["a", "b"]);
});

test("payloads: event jobs send events; track jobs send their events only when there are some", () => {
  const state = { tracks: [], boxes: [], polygons: [], labels: {}, events: [{ label: "a", start: 1, end: 2, note: "x" }] };
  assert.deepEqual(core.payloadOf(state, "event"), { events: [{ label: "a", start: 1, end: 2 }] });
  assert.equal(core.hasContent(state), true);
  assert.deepEqual(core.objectCounts(state, "event", 2), { here: 1, total: 1 });
  assert.deepEqual(core.emptyFrames(state, "event", [0, 1, 2, 3]), []);
  const tracked = { ...state, events: [{ label: "a", start: 1, end: 2, track: 4 }] };
  assert.deepEqual(core.payloadOf(tracked, "track"), { tracks: [], events: [{ label: "a", start: 1, end: 2, track: 4 }] });
  assert.deepEqual(core.payloadOf({ ...state, events: [] }, "track"), { tracks: [] });
  assert.ok(core.editsOf(state).includes('"events"'));
});
