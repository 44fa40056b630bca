/* Machine proposals in the workspace: suggestions drawn dashed with their confidence, accepted
 * one by one or all at once, or rejected. An accepted suggestion becomes an ordinary shape that
 * carries ``from_proposal`` ("<proposal id>:<index>", as the server named it); moving or
 * reshaping it keeps the link, and the server measures how far it was moved
 * (tasks/proposal_sources.py: provenance). Nothing here decides what counts as "unchanged".
 *
 * The pure part (suggestionsOf, acceptedItem, pendingOf) takes and returns plain data; the page
 * part (mountProposals) builds the panel and draws through the editor's ``underlay`` hook.
 */

import { interpolateTrack } from "./core.mjs";

const STATE_KEY = { bbox: "boxes", polygon: "polygons", track: "tracks" };

/* Every proposed shape of ``proposals`` (the assignment view's list), flat, in order. */
export function suggestionsOf(proposals) {
  const out = [];
  (proposals || []).forEach((p) => {
    (p.shapes || []).forEach((s) => {
      const { ref, confidence, ...item } = s;
      out.push({ ref, confidence, source: p.source, item });
    });
  });
  return out;
}

/* The shape an accepted suggestion becomes in the workspace (a copy: editing it never edits the
 * suggestion). A track gets its id from the workspace when added. */
export function acceptedItem(suggestion) {
  const item = JSON.parse(JSON.stringify(suggestion.item));
  delete item.id;
  return { ...item, from_proposal: suggestion.ref };
}

/* The suggestions still to decide on: not accepted (no shape of ``state`` links to them) and not
 * rejected (``rejected``: a Set of refs). */
export function pendingOf(suggestions, state, kind, rejected) {
  const used = new Set((state[STATE_KEY[kind]] || []).map((s) => s.from_proposal).filter(Boolean));
  return suggestions.filter((s) => !used.has(s.ref) && !rejected.has(s.ref));
}

function boxAt(item, kind, frame) {
  if (kind === "track") return interpolateTrack(item.keyframes, frame);
  if (item.frame !== frame) return null;
  return item.box || null;
}

const percent = (c) => `${Math.round(100 * c)}%`;

/* The proposals panel of an annotation page, and the overlay that draws the pending suggestions.
 * ``editor``: the workspace editor (createEditor); ``ws``: its workspace; ``proposals``: the
 * assignment view's list. Returns the function for the editor's ``underlay`` hook. */
export function mountProposals({ editor, ws, proposals, before }) {
  const suggestions = suggestionsOf(proposals);
  const rejected = new Set();
  const kind = ws.type;
  if (!suggestions.length || !STATE_KEY[kind]) return () => {};
  const panel = document.createElement("section");
  panel.id = "proposals";
  panel.className = "proposals";
  before.parentNode.insertBefore(panel, before);

  const pending = () => pendingOf(suggestions, ws.state, kind, rejected);
  const accept = (list) => {
    if (editor.isReadOnly() || !list.length) return;
    editor.add(list.map(acceptedItem));
  };

  function renderPanel() {
    const left = pending();
    panel.replaceChildren();
    const head = document.createElement("h3");
    head.textContent = `Suggestions (${left.length} of ${suggestions.length} to decide)`;
    panel.append(head);
    const hint = document.createElement("p");
    hint.className = "muted";
    hint.textContent =
      "Dashed outlines are a machine's suggestions. Accept the good ones, then correct them like your own; reject the rest.";
    panel.append(hint);
    const bar = document.createElement("div");
    const all = document.createElement("button");
    all.type = "button";
    all.id = "proposals-accept-all";
    all.textContent = "Accept all";
    all.disabled = !left.length || editor.isReadOnly();
    all.addEventListener("click", () => accept(pending()));
    const none = document.createElement("button");
    none.type = "button";
    none.id = "proposals-reject-all";
    none.className = "secondary";
    none.textContent = "Reject all";
    none.disabled = !left.length || editor.isReadOnly();
    none.addEventListener("click", () => {
      pending().forEach((s) => rejected.add(s.ref));
      editor.render();
    });
    bar.append(all, " ", none);
    panel.append(bar);
    const list = document.createElement("ul");
    list.id = "proposals-list";
    left.forEach((s) => {
      const li = document.createElement("li");
      li.dataset.ref = s.ref;
      const where = kind === "track" ? `frames ${s.item.keyframes[0].frame}–` : `frame ${s.item.frame}`;
      li.textContent = `${s.item.label}, ${where} · ${s.source} ${percent(s.confidence)} `;
      const one = document.createElement("button");
      one.type = "button";
      one.className = "small";
      one.textContent = "Accept";
      one.disabled = editor.isReadOnly();
      one.addEventListener("click", () => accept([s]));
      li.append(one);
      list.append(li);
    });
    panel.append(list);
  }

  // Drawn under the shapes: dashed grey outlines with the source's confidence.
  function overlay(ctx, frame, scale) {
    renderPanel();
    if (editor.isReadOnly()) return;
    pending().forEach((s) => {
      const box = boxAt(s.item, kind, frame);
      const points = kind === "polygon" && s.item.frame === frame ? s.item.points : null;
      if (!box && !points) return;
      ctx.save();
      ctx.strokeStyle = "rgba(255,255,255,0.9)";
      ctx.lineWidth = 1.5 * scale;
      ctx.setLineDash([3 * scale, 3 * scale]);
      ctx.beginPath();
      if (points) {
        points.forEach((p, i) => (i ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1])));
        ctx.closePath();
      } else ctx.rect(box[0], box[1], box[2] - box[0], box[3] - box[1]);
      ctx.stroke();
      const at = box || points[0];
      ctx.setLineDash([]);
      ctx.font = `${11 * scale}px sans-serif`;
      ctx.fillStyle = "rgba(255,255,255,0.9)";
      ctx.fillText(`${s.item.label} ${percent(s.confidence)}?`, at[0] + 2 * scale, at[1] + 12 * scale);
      ctx.restore();
    });
  }
  return overlay;
}
