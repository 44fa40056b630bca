/* Events on the timeline: labelled frame intervals, drawn as one lane per label under the
 * transport. Drag on a lane to create an event, drag an edge to resize it, click it to select
 * it (the class picker relabels it, Delete removes it).
 *
 * Pure helpers first (tested by node with tests/vectors/events.json, the same rules as
 * tasks/annotations.py: inclusive frames inside the microtask, two events of one label never
 * share a frame), then the DOM part (``mountEventLanes``), which the workspace calls.
 */

// ---- Pure helpers ----

const clampInt = (v, lo, hi) => Math.min(hi, Math.max(lo, Math.round(v)));

/* The frame under ``x`` pixels of a lane ``width`` pixels wide showing frames first..last (each
 * frame an equal cell). */
export function frameAt(x, width, first, last) {
  const n = last - first + 1;
  if (width <= 0) return first;
  return clampInt(first + Math.floor((x / width) * n), first, last);
}

/* The left edge (in pixels) of frame ``frame``'s cell; ``frame = last + 1`` gives the right end. */
export function xOf(frame, width, first, last) {
  return ((frame - first) / (last - first + 1)) * width;
}

/* The interval between two frames, in order and inside first..last. */
export function interval(a, b, first, last) {
  const s = clampInt(Math.min(a, b), first, last);
  const e = clampInt(Math.max(a, b), first, last);
  return { start: s, end: e };
}

/* The index of the event of ``events`` (of ``label``, same ``track``) sharing a frame with
 * start..end, other than ``skip``; -1 when none. The server refuses such a pair. */
export function overlapping(events, label, start, end, skip = -1, track = undefined) {
  return events.findIndex(
    (e, i) => i !== skip && e.label === label && e.track === track && e.start <= end && start <= e.end,
  );
}

/* The edge of an event of ``label`` within ``tol`` frames of ``frame``: {index, edge} with edge
 * "start" or "end" (the nearest; null when none). */
export function edgeAt(events, label, frame, tol) {
  let best = null;
  events.forEach((e, index) => {
    if (e.label !== label) return;
    for (const edge of ["start", "end"]) {
      const d = Math.abs(e[edge] - frame);
      if (d <= tol && (!best || d < best.d)) best = { index, edge, d };
    }
  });
  return best && { index: best.index, edge: best.edge };
}

/* The index of the shortest event of ``label`` covering ``frame`` (-1: none). */
export function eventAt(events, label, frame) {
  let best = -1;
  events.forEach((e, i) => {
    if (e.label === label && e.start <= frame && frame <= e.end) {
      if (best < 0 || e.end - e.start < events[best].end - events[best].start) best = i;
    }
  });
  return best;
}

/* ``event`` with its ``edge`` moved to ``frame``; dragging an edge past the other one flips
 * them, so start <= end always holds. */
export function resized(event, edge, frame, first, last) {
  const other = edge === "start" ? event.end : event.start;
  return { ...event, ...interval(frame, other, first, last) };
}

/* The events covering ``frame``. */
export function activeAt(events, frame) {
  return events.filter((e) => e.start <= frame && frame <= e.end);
}

/* The events of a submission payload: only the API's fields leave the page. */
export function eventsPayload(events) {
  return events.map((e) =>
    e.track === undefined || e.track === null
      ? { label: e.label, start: e.start, end: e.end }
      : { label: e.label, start: e.start, end: e.end, track: e.track },
  );
}

// ---- The lanes (DOM) ----

/* Mount the lanes in ``el``. ``api``: state() (the workspace state, with ``events``), range()
 * ({first, last}), labels(), track() (the track whose events the lanes show, undefined for an
 * event job's events; null when a track job has none selected), frame() (the frame shown),
 * go(frame) (show the nearest frame), changed() and render() (the editor's), readOnly(),
 * select(event), message(text, bad). Returns {render}. */
export function mountEventLanes(el, api) {
  let drag = null; // {mode: "create" | "resize", label, from, index, edge, orig, preview}

  function laneOf(target) {
    const lane = target.closest(".lane");
    return lane && el.contains(lane) ? lane : null;
  }

  function frameOf(ev, lane) {
    const { first, last } = api.range();
    const r = lane.querySelector(".lane-track").getBoundingClientRect();
    return frameAt(ev.clientX - r.left, r.width, first, last);
  }

  // A track job: the lanes show the selected track's events only (and nothing without one).
  const mine = (e) => (api.trackJob() ? e.track === api.track() : e.track === undefined);

  function render() {
    const st = api.state();
    const { first, last } = api.range();
    el.innerHTML = "";
    const current = api.frame();
    if (api.trackJob() && api.track() === undefined) {
      const hint = document.createElement("p");
      hint.className = "caption lane-hint";
      hint.textContent = "Select an object to mark its actions on the lanes below.";
      el.appendChild(hint);
      return;
    }
    api.labels().forEach((label, k) => {
      const lane = document.createElement("div");
      lane.className = "lane";
      lane.dataset.label = label;
      const name = document.createElement("span");
      name.className = "lane-name";
      name.textContent = `${k + 1}. ${label}`;
      const track = document.createElement("div");
      track.className = "lane-track";
      track.title = `Drag to mark a "${label}" event; drag an edge to move it`;
      const pct = (f) => `${(xOf(f, 1, first, last) * 100).toFixed(4)}%`;
      const shown = st.events.map((e, i) =>
        drag && drag.mode === "resize" && drag.index === i ? { ...e, ...drag.preview } : e,
      );
      shown.forEach((e, i) => {
        if (e.label !== label || !mine(e)) return;
        const span = document.createElement("div");
        span.className =
          "event" +
          (st.events[i] === st.selected || st.events[i] === st.selectedEvent ? " selected" : "") +
          (st.errorRefs.has(st.events[i]) ? " bad" : "");
        span.dataset.index = String(i);
        span.style.left = pct(e.start);
        span.style.width = `calc(${pct(e.end + 1)} - ${pct(e.start)})`;
        span.title = `${e.label}: frames ${e.start}-${e.end}`;
        ["start", "end"].forEach((edge) => {
          const h = document.createElement("span");
          h.className = `edge ${edge}`;
          h.dataset.edge = edge;
          span.appendChild(h);
        });
        track.appendChild(span);
      });
      if (drag && drag.mode === "create" && drag.label === label && drag.preview) {
        const ghost = document.createElement("div");
        ghost.className = "event draft";
        ghost.style.left = pct(drag.preview.start);
        ghost.style.width = `calc(${pct(drag.preview.end + 1)} - ${pct(drag.preview.start)})`;
        track.appendChild(ghost);
      }
      const now = document.createElement("div");
      now.className = "playhead";
      now.style.left = pct(current);
      track.appendChild(now);
      lane.append(name, track);
      el.appendChild(lane);
    });
  }

  el.addEventListener("pointerdown", (ev) => {
    const lane = laneOf(ev.target);
    if (!lane || ev.button !== 0) return;
    ev.preventDefault();
    const st = api.state();
    const label = lane.dataset.label;
    const f = frameOf(ev, lane);
    const span = ev.target.closest(".event");
    const index = span && span.dataset.index !== undefined ? Number(span.dataset.index) : -1;
    if (index >= 0) api.select(st.events[index]);
    api.go(f);
    if (api.readOnly()) return;
    const edge = ev.target.dataset.edge;
    if (index >= 0 && edge) {
      const e = st.events[index];
      drag = { mode: "resize", label, index, edge, orig: e, preview: { start: e.start, end: e.end } };
    } else if (index < 0) {
      const { first, last } = api.range();
      drag = { mode: "create", label, from: f, preview: interval(f, f, first, last) };
    }
    el.setPointerCapture && el.setPointerCapture(ev.pointerId);
    render();
  });

  el.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    const lane = [...el.querySelectorAll(".lane")].find((l) => l.dataset.label === drag.label);
    if (!lane) return;
    const { first, last } = api.range();
    const f = frameOf(ev, lane);
    if (drag.mode === "create") drag.preview = interval(drag.from, f, first, last);
    else {
      const r = resized(drag.orig, drag.edge, f, first, last);
      drag.preview = { start: r.start, end: r.end };
    }
    render();
  });

  function end() {
    if (!drag) return;
    const d = drag;
    drag = null;
    const st = api.state();
    const { start, end: stop } = d.preview;
    const track = api.trackJob() ? api.track() : undefined;
    if (d.mode === "create") {
      const clash = overlapping(st.events, d.label, start, stop, -1, track);
      if (clash >= 0) {
        api.message(`A "${d.label}" event already covers some of frames ${start}-${stop}; resize it instead.`, true);
      } else {
        const e = track === undefined ? { label: d.label, start, end: stop } : { label: d.label, start, end: stop, track };
        st.events.push(e);
        api.select(e);
        api.changed();
      }
    } else if (start !== d.orig.start || stop !== d.orig.end) {
      if (overlapping(st.events, d.label, start, stop, d.index, d.orig.track) >= 0) {
        api.message(`Two "${d.label}" events may not share a frame.`, true);
      } else {
        st.events[d.index].start = start;
        st.events[d.index].end = stop;
        api.changed();
      }
    }
    api.render();
  }
  el.addEventListener("pointerup", end);
  el.addEventListener("pointercancel", end);

  return { render };
}
