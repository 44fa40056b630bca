// Tracker proposals' pure part in static/js/annotate/tracker.mjs: the request a track makes and
// how an accepted proposal becomes keyframes. Run: node --test tests/js/

import assert from "node:assert/strict";
import { test } from "node:test";

import { acceptProposal, proposalAt, proposalRequest } from "../../static/js/annotate/tracker.mjs";

const track = {
  id: 3,
  label: "car",
  keyframes: [
    { frame: 0, box: [1, 2, 30, 40], outside: false },
    { frame: 20, box: [11.004, 2, 40, 40], outside: false },
    { frame: 30, box: [11, 2, 40, 40], outside: true },
  ],
};

test("request: between the keyframe and the next one with a box, forward after the last", () => {
  const between = proposalRequest(track, 0);
  assert.equal(between.mode, "between");
  assert.equal(between.from_frame, 0);
  assert.deepEqual(between.track.keyframes[1], { frame: 20, box: [11, 2, 40, 40], outside: false });
  assert.equal(between.track.id, 3);
  // The next keyframe is the object leaving: nothing to meet, so forward.
  assert.equal(proposalRequest(track, 20).mode, "forward");
  assert.equal(proposalRequest(track, 5), null); // not a keyframe
  assert.equal(proposalRequest(track, 30), null); // an outside keyframe has no box to follow
});

test("accept: trusted boxes become keyframes, lost ones do not, the worker's keyframes win", () => {
  const proposal = {
    frames: [
      { frame: 5, box: [2.123, 2, 31, 40], confidence: 0.9, lost: false },
      { frame: 10, box: [4, 2, 33, 40], confidence: 0.8, lost: false },
      { frame: 15, box: [9, 9, 9.5, 9.5], confidence: 0.1, lost: true },
      { frame: 20, box: [99, 99, 120, 120], confidence: 0.9, lost: false },
    ],
  };
  const out = acceptProposal(track.keyframes, proposal);
  assert.deepEqual(
    out.map((k) => k.frame),
    [0, 5, 10, 20, 30],
  );
  assert.deepEqual(out[1], { frame: 5, box: [2.12, 2, 31, 40], outside: false });
  assert.deepEqual(out[3], track.keyframes[1]); // the worker's box at 20 stays
  assert.equal(track.keyframes.length, 3, "the argument is not changed");
  assert.equal(proposalAt(proposal, 15).lost, true);
  assert.equal(proposalAt(proposal, 16), null);
  assert.equal(proposalAt(null, 5), null);
});
