/* Tracker proposals in the track editor: "Propagate" (P) asks the server's tracker
 * (POST data-propagate-url, tasks/propagating.py) for the selected object's boxes from the
 * keyframe on the current frame — between it and the object's next keyframe when there is one,
 * forward otherwise — and shows them as a dashed proposal (low-confidence and lost frames marked
 * on the frame and on the timeline). The worker accepts it (the proposed boxes become keyframes;
 * any frame the worker corrected meanwhile keeps the worker's box, and every later correction is
 * a keyframe as always) or discards it. Nothing is kept on the server.
 *
 * The pure part (``proposalRequest``, ``acceptProposal``, ``proposalAt``) is tested by node
 * (tests/js/tracker.test.mjs); ``createTracker`` is the DOM part the annotation page makes.
 */

import { round2, withKeyframe } from "./core.mjs";

// Under this confidence a proposed box is drawn as doubtful (the server's lost threshold is 0.7).
export const DOUBTFUL = 0.8;

/* The request body for the track ``track`` from its keyframe at ``frame``, or null when
 * ``frame`` is not one of its keyframes with a box. */
export function proposalRequest(track, frame) {
  const keyframes = track.keyframes;
  const here = keyframes.find((k) => k.frame === frame);
  if (!here || here.outside) return null;
  const next = keyframes.find((k) => k.frame > frame);
  return {
    track: {
      id: track.id,
      label: track.label,
      keyframes: keyframes.map((k) => ({ frame: k.frame, box: k.box.map(round2), outside: !!k.outside })),
    },
    from_frame: frame,
    mode: next && !next.outside ? "between" : "forward",
  };
}

/* ``keyframes`` with the proposal's trusted boxes added as keyframes. A frame that already has a
 * keyframe keeps it (the worker's box wins over the tracker's); lost frames add nothing. */
export function acceptProposal(keyframes, proposal) {
  const mine = new Set(keyframes.map((k) => k.frame));
  return proposal.frames
    .filter((f) => !f.lost && !mine.has(f.frame))
    .reduce((kfs, f) => withKeyframe(kfs, f.frame, f.box, false), keyframes);
}

/* The proposed entry at ``frame`` ({frame, box, confidence, lost}) or null. */
export function proposalAt(proposal, frame) {
  return (proposal && proposal.frames.find((f) => f.frame === frame)) || null;
}

/* The DOM part. ``deps``: editor (workspace.mjs), url, post (page.mjs's), message(text, bad). */
export function createTracker({ editor, url, post, message }) {
  const $ = (id) => document.getElementById(id);
  let proposal = null; // {track, frames: [...], lost_at, truncated, ...}
  let busy = false;

  function status() {
    const bar = $("proposal");
    if (!bar) return;
    const track = editor.selectedTrack();
    $("propagate").disabled = busy || !track || !proposalRequest(track, editor.frame());
    bar.dataset.state = proposal ? "shown" : busy ? "busy" : "none";
    $("proposal-accept").hidden = !proposal;
    $("proposal-discard").hidden = !proposal;
    const text = $("proposal-status");
    if (busy) text.textContent = "Tracking…";
    else if (!proposal) text.textContent = "";
    else {
      const trusted = proposal.frames.filter((f) => !f.lost).length;
      const parts = [`${trusted} proposed box${trusted === 1 ? "" : "es"}`];
      if (proposal.lost_at !== null) parts.push(`lost at frame ${proposal.lost_at}`);
      if (proposal.truncated) parts.push("stopped early (time limit): propagate again from the last box");
      text.textContent = `${parts.join(" · ")} (${proposal.elapsed_ms} ms)`;
    }
  }

  async function propagate() {
    const track = editor.selectedTrack();
    if (busy || editor.isReadOnly() || !track) return;
    const body = proposalRequest(track, editor.frame());
    if (!body) {
      message("Go to a keyframe of the selected object (K makes one here), then propagate.", true);
      return;
    }
    busy = true;
    proposal = null;
    status();
    const r = await post(url, body);
    busy = false;
    if (r.ok) {
      proposal = { ...r.json, trackId: track.id };
      message("", false);
    } else message((r.json && r.json.error && r.json.error.message) || `The server answered ${r.status}.`, true);
    editor.render();
  }

  // The proposal's object now (undo and redo replace the state's objects: found by id).
  const ofProposal = () => (proposal ? editor.trackById(proposal.trackId) : null);
  const showing = () => {
    const track = editor.selectedTrack();
    return !!proposal && !!track && track.id === proposal.trackId;
  };

  function accept() {
    const track = ofProposal();
    if (!track || editor.isReadOnly()) return;
    const { frames } = proposal;
    proposal = null;
    editor.setKeyframes(track, acceptProposal(track.keyframes, { frames }));
    message("Accepted: the proposed boxes are keyframes now; correct any of them as usual.", false);
  }

  function discard() {
    proposal = null;
    editor.render();
  }

  /* Draw the proposal of the selected object on the current frame (workspace's overlay hook). */
  function draw(ctx, info) {
    if (!showing()) return;
    const p = proposalAt(proposal, info.frame);
    if (!p) return;
    const [x1, y1, x2, y2] = p.box;
    const doubtful = p.lost || p.confidence < DOUBTFUL;
    ctx.save();
    ctx.strokeStyle = doubtful ? "#f97316" : "#22d3ee";
    ctx.lineWidth = 2 * info.scale;
    ctx.setLineDash([8 * info.scale, 5 * info.scale]);
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    ctx.restore();
  }

  /* Mark proposed frames on the timeline (after every render). */
  function decorate() {
    status();
    const cells = $("timeline") ? $("timeline").children : [];
    const frames = editor.current().frames;
    for (let i = 0; i < cells.length; i += 1) {
      const on = showing();
      const p = on ? proposalAt(proposal, frames[i]) : null;
      // From where the tracker lost the object to the end of the proposal: the worker's to draw.
      const gone = on && proposal.lost_at !== null && frames[i] >= proposal.lost_at && frames[i] <= proposal.to_frame;
      cells[i].classList.toggle("proposed", !!p && !p.lost && p.confidence >= DOUBTFUL && !gone);
      cells[i].classList.toggle("proposed-doubtful", gone || (!!p && (p.lost || p.confidence < DOUBTFUL)));
    }
  }

  $("propagate").addEventListener("click", propagate);
  $("proposal-accept").addEventListener("click", accept);
  $("proposal-discard").addEventListener("click", discard);

  return {
    propagate,
    accept,
    discard,
    draw,
    decorate,
    shown: () => proposal,
    /* Keys: P propagates, Shift+Enter accepts (discarding is the button: Esc keeps its meaning,
     * deselect). */
    keydown(ev) {
      if ((ev.key === "p" || ev.key === "P") && !ev.ctrlKey && !ev.metaKey && !ev.altKey) {
        propagate();
        return true;
      }
      if (ev.key === "Enter" && ev.shiftKey && proposal) {
        accept();
        return true;
      }
      return false;
    },
  };
}
