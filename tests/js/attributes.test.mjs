// The attribute panel's and the relation tool's pure module (static/js/annotate/attributes.mjs),
// on the shared vectors (tests/vectors/attributes.json, also read by tests/tasks/test_vectors.py).
// Run: node --test tests/js/

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import * as attrs from "../../static/js/annotate/attributes.mjs";
import * as core from "../../static/js/annotate/core.mjs";

const VECTORS = JSON.parse(readFileSync(new URL("../vectors/attributes.json", import.meta.url), "utf8"));
const SCHEMA = VECTORS.context.label_attributes;
const PREDICATES = VECTORS.context.relation_predicates;
const KIND_LIST = { bbox: "boxes", polygon: "polygons", track: "tracks" };

function stateOf(payload, kind) {
  const st = { tracks: [], boxes: [], polygons: [], labels: {}, relations: [] };
  st[KIND_LIST[kind]] = structuredClone(payload[KIND_LIST[kind]]);
  st.relations = attrs.relationsFromPayload(payload, st, kind);
  return st;
}

for (const c of VECTORS.cases) {
  test(`attributes: ${c.name}`, () => {
    const st = stateOf(c.payload, c.type);
    assert.deepEqual(core.payloadOf(st, c.type), c.payload); // loaded, then sent back as it was
    for (const [tid, byFrame] of Object.entries(c.at || {})) {
      const track = st.tracks.find((t) => t.id === Number(tid));
      for (const [frame, expected] of Object.entries(byFrame)) {
        assert.deepEqual(attrs.trackAttributesAt(track, Number(frame)), expected, `${tid}@${frame}`);
      }
    }
  });
}

test("specs per class, and reading the panel's inputs against them", () => {
  const [occluded, colour, speed] = attrs.specsFor(SCHEMA, "car");
  assert.deepEqual(attrs.specsFor(SCHEMA, "truck"), []);
  assert.deepEqual(attrs.readInput(occluded, true), { value: true });
  assert.deepEqual(attrs.readInput(occluded, false), { value: false });
  assert.deepEqual(attrs.readInput(colour, "blue"), { value: "blue" });
  assert.deepEqual(attrs.readInput(colour, ""), { value: null });
  assert.match(attrs.readInput(colour, "green").error, /one of: red, blue/);
  assert.deepEqual(attrs.readInput(speed, "42.5"), { value: 42.5 });
  assert.deepEqual(attrs.readInput(speed, ""), { value: null });
  assert.match(attrs.readInput(speed, "201").error, /at most 200/);
  assert.match(attrs.readInput(speed, "-1").error, /at least 0/);
  assert.match(attrs.readInput(speed, "fast").error, /a number/);
});

test("setting and clearing an attribute", () => {
  assert.deepEqual(attrs.withAttribute(undefined, "colour", "red"), { colour: "red" });
  assert.deepEqual(attrs.withAttribute({ colour: "red", speed: 3 }, "colour", null), { speed: 3 });
  assert.equal(attrs.withAttribute({ colour: "red" }, "colour", null), undefined);
});

test("a change on a track at a frame without a keyframe makes one there", () => {
  const kfs = [
    { frame: 0, box: [0, 0, 10, 10], outside: false },
    { frame: 10, box: [100, 0, 110, 10], outside: false },
  ];
  const box = core.interpolateTrack(kfs, 4);
  const out = attrs.keyframesWithAttribute(kfs, 4, box, "occluded", true);
  assert.deepEqual(out.map((k) => k.frame), [0, 4, 10]);
  assert.deepEqual(out[1], { frame: 4, box: [40, 0, 50, 10], outside: false, attributes: { occluded: true } });
  const track = { id: 1, label: "car", attributes: { colour: "red" }, keyframes: out };
  assert.deepEqual(attrs.trackAttributesAt(track, 3), { colour: "red" });
  assert.deepEqual(attrs.trackAttributesAt(track, 9), { colour: "red", occluded: true });
  // At an existing keyframe the change goes on it; clearing the last one drops the key.
  const again = attrs.keyframesWithAttribute(out, 4, null, "occluded", null);
  assert.deepEqual(again[1], { frame: 4, box: [40, 0, 50, 10], outside: false });
  // Not on the frame: nothing to attach a keyframe to.
  assert.equal(attrs.keyframesWithAttribute(kfs, 20, null, "occluded", true), null);
  // Moving a keyframe's box keeps the changes made there.
  const moved = core.withKeyframe(out, 4, [41, 0, 51, 10], false);
  assert.deepEqual(moved[1].attributes, { occluded: true });
});

test("the relation tool refuses what the server would refuse", () => {
  const car = { frame: 0, label: "car", box: [0, 0, 5, 5] };
  const person = { frame: 0, label: "person", box: [1, 1, 3, 3] };
  const later = { frame: 5, label: "car", box: [0, 0, 5, 5] };
  const problem = (s, p, o, rels = [], kind = "bbox") => attrs.relationProblem(rels, s, p, o, PREDICATES, kind);
  assert.equal(problem(person, "rides", car), null);
  assert.match(problem(person, "drives", car), /unknown predicate/);
  assert.match(problem(car, "rides", car), /itself/);
  assert.match(problem(person, "rides", later), /same frame/);
  assert.match(problem(null, "rides", car), /pick a subject/);
  assert.match(problem(person, "rides", car, [{ subject: person, predicate: "rides", object: car }]), /already/);
  // Tracks may be related whatever the frame.
  assert.equal(problem({ id: 1 }, "rides", { id: 2 }, [], "track"), null);
});

test("a deleted object takes its relations with it", () => {
  const st = stateOf(VECTORS.cases[0].payload, "bbox");
  assert.equal(st.relations.length, 1);
  st.boxes.splice(2, 1); // the car the person rides
  assert.deepEqual(attrs.liveRelations(st.relations, st, "bbox"), []);
  assert.equal(core.payloadOf(st, "bbox").relations, undefined);
  assert.equal(attrs.describeRelation({ subject: { id: 9, label: "person" }, predicate: "rides", object: { id: 7, label: "car" } }, "track"), "#9 person rides #7 car");
});

test("a new class keeps only the attributes it declares", () => {
  const track = {
    label: "person",
    attributes: { colour: "red", pose: "sitting" },
    keyframes: [{ frame: 0, box: [0, 0, 1, 1], outside: false, attributes: { speed: 3 } }],
  };
  attrs.keepDeclared(track, attrs.specsFor(SCHEMA, "person"));
  assert.deepEqual(track.attributes, { pose: "sitting" });
  assert.equal("attributes" in track.keyframes[0], false);
});

test("undo snapshots keep relations by position and restore them onto the restored objects", () => {
  const st = stateOf(VECTORS.cases[0].payload, "bbox");
  const snap = JSON.parse(core.editsOf(st));
  assert.deepEqual(snap.relations, [{ subject: ["boxes", 1], predicate: "rides", object: ["boxes", 2] }]);
  const back = { tracks: snap.tracks, boxes: snap.boxes, polygons: snap.polygons };
  const restored = attrs.relationsRestore(snap.relations, back);
  assert.equal(restored[0].subject, back.boxes[1]);
  assert.equal(restored[0].object, back.boxes[2]);
  // A state without relations snapshots as before.
  assert.equal("relations" in JSON.parse(core.editsOf({ ...st, relations: [] })), false);
});
