/* The annotation page: frames of one microtask, boxes/tracks/polygons/labels drawn with the mouse.
 *
 * No build step. The page embeds the assignment as JSON (#assignment-data, the same whitelisted
 * view the worker API serves) and talks to the worker API with the session cookie and CSRF token.
 * Coordinates are frame pixels, boxes [x1, y1, x2, y2], exactly as the API takes them.
 */
(function () {
  "use strict";

  // ---- Keyframe interpolation: the same rule as tasks/interpolation.py (keep them in step) ----
  // Before the first keyframe: absent. At or after keyframe i (last one <= frame): absent if i is
  // outside; else linear towards keyframe i+1 when it exists and is visible; else i's box holds.
  function interpolateTrack(keyframes, frame) {
    let i = -1;
    for (let k = 0; k < keyframes.length; k++) {
      if (keyframes[k].frame <= frame) i = k;
      else break;
    }
    if (i < 0) return null;
    const a = keyframes[i];
    if (a.outside) return null;
    const b = keyframes[i + 1];
    if (!b || b.outside) return a.box.slice();
    const t = (frame - a.frame) / (b.frame - a.frame);
    return a.box.map((v, j) => v * (1 - t) + b.box[j] * t);
  }
  window.Crowdlabel = { interpolateTrack: interpolateTrack };

  const dataEl = document.getElementById("assignment-data");
  if (!dataEl) return;
  const data = JSON.parse(dataEl.textContent);
  const task = data.task;
  const type = data.job.annotation_type;
  const classes = data.job.classes;
  const W = task.width, H = task.height;
  const frames = task.frames.map((f) => f.frame);
  const readOnly = data.status !== "claimed";
  const $ = (id) => document.getElementById(id);

  const canvas = $("canvas"), ctx = canvas.getContext("2d"), img = $("frame-img");
  const picker = $("class-picker"), scrub = $("scrub");
  canvas.width = W; canvas.height = H;

  // ---- State ----
  const state = {
    idx: 0,
    tracks: [],        // track: {id, label, keyframes: [{frame, box, outside}]}
    boxes: [],         // bbox: {frame, label, box}
    polygons: [],      // polygon: {frame, label, points}
    labels: {},        // classify: {frame: label}
    selected: null,    // a track, box or polygon object
    drag: null,
    draft: null,       // polygon being drawn: [[x, y], ...]
    playing: null,
    errorRefs: new Set(),
    nextId: 1,
    active: 0,
    lastInput: Date.now(),
    deadline: new Date(data.deadline),
  };
  const frame = () => frames[state.idx];

  if (data.submission) {
    const p = data.submission.payload;
    state.tracks = p.tracks || [];
    state.boxes = p.boxes || [];
    state.polygons = p.polygons || [];
    (p.labels || []).forEach((l) => { state.labels[l.frame] = l.label; });
  }

  // ---- Images ----
  const images = task.frames.map((f) => { const im = new Image(); im.src = f.url; return im; });

  // ---- Shapes on the current frame ----
  function shapesHere() {
    const f = frame();
    if (type === "track") {
      return state.tracks
        .map((t) => ({ ref: t, label: t.label, box: interpolateTrack(t.keyframes, f),
                       key: t.keyframes.some((k) => k.frame === f) }))
        .filter((s) => s.box);
    }
    if (type === "bbox") {
      return state.boxes.filter((b) => b.frame === f).map((b) => ({ ref: b, label: b.label, box: b.box, key: true }));
    }
    if (type === "polygon") {
      return state.polygons.filter((p) => p.frame === f).map((p) => ({ ref: p, label: p.label, points: p.points, box: bounds(p.points), key: true }));
    }
    return [];
  }

  function bounds(points) {
    const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
    return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
  }

  const colors = ["#ef4444", "#22c55e", "#3b82f6", "#eab308", "#a855f7", "#06b6d4", "#f97316", "#ec4899"];
  const colorOf = (label) => colors[Math.max(0, classes.indexOf(label)) % colors.length];
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  const round2 = (v) => Math.round(v * 100) / 100;
  const scale = () => W / canvas.getBoundingClientRect().width;

  // ---- Drawing ----
  function render() {
    const f = frame();
    const im = images[state.idx];
    if (im && im.src) img.src = im.src;
    ctx.clearRect(0, 0, W, H);
    const lw = 2 * scale();
    // The selected track's interpolated path across every frame (the preview).
    if (type === "track" && state.selected && state.tracks.includes(state.selected)) {
      ctx.strokeStyle = "rgba(255,255,255,0.7)"; ctx.lineWidth = lw; ctx.setLineDash([4 * scale(), 4 * scale()]);
      ctx.beginPath();
      let started = false;
      frames.forEach((fr) => {
        const b = interpolateTrack(state.selected.keyframes, fr);
        if (!b) { started = false; return; }
        const cx = (b[0] + b[2]) / 2, cy = (b[1] + b[3]) / 2;
        if (started) ctx.lineTo(cx, cy); else ctx.moveTo(cx, cy);
        started = true;
      });
      ctx.stroke(); ctx.setLineDash([]);
    }
    shapesHere().forEach((s) => {
      const sel = s.ref === state.selected;
      const bad = state.errorRefs.has(s.ref);
      ctx.strokeStyle = bad ? "#ff0000" : colorOf(s.label);
      ctx.lineWidth = sel ? lw * 2 : lw;
      ctx.setLineDash(s.key ? [] : [6 * scale(), 4 * scale()]);  // dashed = interpolated
      if (s.points) {
        ctx.beginPath();
        s.points.forEach((p, i) => (i ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1])));
        ctx.closePath(); ctx.stroke();
      } else {
        const [x1, y1, x2, y2] = s.box;
        ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
        if (sel && !readOnly) {
          ctx.fillStyle = "#fff";
          const h = 5 * scale();
          [[x1, y1], [x2, y1], [x1, y2], [x2, y2]].forEach(([x, y]) => ctx.fillRect(x - h, y - h, 2 * h, 2 * h));
        }
      }
      ctx.setLineDash([]);
      ctx.fillStyle = ctx.strokeStyle;
      ctx.font = `${Math.round(13 * scale())}px sans-serif`;
      const tag = (type === "track" ? `#${s.ref.id} ` : "") + s.label;
      ctx.fillText(tag, s.box[0] + 2 * scale(), Math.max(12 * scale(), s.box[1] - 3 * scale()));
    });
    if (state.drag && state.drag.box) {
      const b = state.drag.box;
      ctx.strokeStyle = "#fff"; ctx.lineWidth = lw; ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
    }
    if (state.draft) {
      ctx.strokeStyle = "#fff"; ctx.lineWidth = lw; ctx.beginPath();
      state.draft.forEach((p, i) => (i ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1])));
      ctx.stroke();
    }
    $("frame-label").textContent = `frame ${f} (${state.idx + 1}/${frames.length})`;
    scrub.value = String(state.idx);
    renderObjects();
    renderTimeline();
    if (type === "classify") renderClassify();
  }

  function renderObjects() {
    const list = $("objects");
    list.innerHTML = "";
    const items = type === "track" ? state.tracks : type === "bbox" ? state.boxes.filter((b) => b.frame === frame())
      : type === "polygon" ? state.polygons.filter((p) => p.frame === frame()) : [];
    items.forEach((o) => {
      const li = document.createElement("li");
      li.className = (o === state.selected ? "selected " : "") + (state.errorRefs.has(o) ? "bad" : "");
      li.textContent = (type === "track" ? `#${o.id} ${o.label} · ${o.keyframes.length} keyframe(s)` : o.label);
      li.addEventListener("click", () => { select(o); });
      list.appendChild(li);
    });
    $("object-count").textContent = String(type === "track" ? state.tracks.length
      : type === "bbox" ? state.boxes.length : state.polygons.length);
  }

  function renderTimeline() {
    const tl = $("timeline");
    if (!tl) return;
    tl.innerHTML = "";
    const t = type === "track" && state.tracks.includes(state.selected) ? state.selected : null;
    frames.forEach((fr, i) => {
      const cell = document.createElement("span");
      let cls = "cell";
      if (i === state.idx) cls += " current";
      if (t) {
        const k = t.keyframes.find((kf) => kf.frame === fr);
        if (k) cls += k.outside ? " outside-key" : " key";
        else if (interpolateTrack(t.keyframes, fr)) cls += " interp";
      } else if (type === "bbox" && state.boxes.some((b) => b.frame === fr)) cls += " key";
      else if (type === "classify" && state.labels[fr]) cls += " key";
      cell.className = cls;
      cell.title = `frame ${fr}`;
      cell.addEventListener("click", () => go(i));
      tl.appendChild(cell);
    });
  }

  function renderClassify() {
    const box = $("classify");
    box.innerHTML = "";
    classes.forEach((c, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = state.labels[frame()] === c ? "" : "secondary";
      b.textContent = `${i + 1}. ${c}`;
      b.disabled = readOnly;
      b.addEventListener("click", () => { state.labels[frame()] = c; touched(); render(); });
      box.appendChild(b);
    });
  }

  // ---- Editing ----
  function select(o) {
    state.selected = o;
    if (o && o.label) picker.value = o.label;
    render();
  }

  function setKeyframe(track, f, box, outside) {
    const kf = { frame: f, box: box.map(round2), outside: !!outside };
    const i = track.keyframes.findIndex((k) => k.frame === f);
    if (i >= 0) track.keyframes[i] = kf;
    else { track.keyframes.push(kf); track.keyframes.sort((a, b) => a.frame - b.frame); }
  }

  function normBox(x1, y1, x2, y2) {
    return [clamp(Math.min(x1, x2), 0, W), clamp(Math.min(y1, y2), 0, H),
            clamp(Math.max(x1, x2), 0, W), clamp(Math.max(y1, y2), 0, H)].map(round2);
  }

  function setBox(s, box) {
    if (type === "track") setKeyframe(s.ref, frame(), box, false);
    else s.ref.box = box;
  }

  function deleteSelected() {
    const o = state.selected;
    if (!o) return;
    state.tracks = state.tracks.filter((t) => t !== o);
    state.boxes = state.boxes.filter((b) => b !== o);
    state.polygons = state.polygons.filter((p) => p !== o);
    state.selected = null;
    touched(); render();
  }

  function point(ev) {
    const r = canvas.getBoundingClientRect();
    return [clamp((ev.clientX - r.left) * (W / r.width), 0, W), clamp((ev.clientY - r.top) * (H / r.height), 0, H)];
  }

  function hit(p) {
    const s = scale(), h = 8 * s;
    const here = shapesHere();
    const sel = here.find((x) => x.ref === state.selected);
    if (sel && !sel.points) {
      const [x1, y1, x2, y2] = sel.box;
      const corners = [[x1, y1], [x2, y1], [x1, y2], [x2, y2]];
      const c = corners.findIndex(([x, y]) => Math.abs(p[0] - x) <= h && Math.abs(p[1] - y) <= h);
      if (c >= 0) return { shape: sel, corner: c };
    }
    const inside = here.filter((x) => p[0] >= x.box[0] && p[0] <= x.box[2] && p[1] >= x.box[1] && p[1] <= x.box[3]);
    inside.sort((a, b) => (a.box[2] - a.box[0]) * (a.box[3] - a.box[1]) - (b.box[2] - b.box[0]) * (b.box[3] - b.box[1]));
    return inside.length ? { shape: inside[0], corner: -1 } : null;
  }

  canvas.addEventListener("mousedown", (ev) => {
    if (readOnly || type === "classify") return;
    ev.preventDefault();
    const p = point(ev);
    if (type === "polygon") {
      if (!state.draft) {
        const h = hit(p);
        if (h) { select(h.shape.ref); return; }
        state.draft = [];
      }
      state.draft.push(p.map(round2));
      render();
      return;
    }
    const h = hit(p);
    if (h) {
      select(h.shape.ref);
      state.drag = { mode: h.corner >= 0 ? "resize" : "move", corner: h.corner, start: p, shape: h.shape, orig: h.shape.box.slice() };
    } else {
      state.selected = null;
      state.drag = { mode: "draw", start: p, box: [p[0], p[1], p[0], p[1]] };
    }
    render();
  });

  window.addEventListener("mousemove", (ev) => {
    const d = state.drag;
    if (!d) return;
    const p = point(ev);
    if (d.mode === "draw") {
      d.box = normBox(d.start[0], d.start[1], p[0], p[1]);
    } else if (d.mode === "move") {
      const [x1, y1, x2, y2] = d.orig, w = x2 - x1, h = y2 - y1;
      const nx = clamp(x1 + p[0] - d.start[0], 0, W - w), ny = clamp(y1 + p[1] - d.start[1], 0, H - h);
      d.box = [nx, ny, nx + w, ny + h].map(round2);
    } else {
      const b = d.orig.slice();
      if (d.corner === 0 || d.corner === 2) b[0] = p[0]; else b[2] = p[0];
      if (d.corner === 0 || d.corner === 1) b[1] = p[1]; else b[3] = p[1];
      d.box = normBox(b[0], b[1], b[2], b[3]);
    }
    if (d.mode !== "draw") setBox(d.shape, d.box);
    render();
  });

  window.addEventListener("mouseup", () => {
    const d = state.drag;
    if (!d) return;
    state.drag = null;
    if (d.mode === "draw" && d.box) {
      const b = d.box;
      if (b[2] - b[0] >= 3 && b[3] - b[1] >= 3) {
        const label = picker.value;
        if (type === "track") {
          const t = { id: state.nextId++, label: label, keyframes: [] };
          setKeyframe(t, frame(), b, false);
          state.tracks.push(t);
          state.selected = t;
        } else {
          const o = { frame: frame(), label: label, box: b };
          state.boxes.push(o);
          state.selected = o;
        }
      }
    }
    touched(); render();
  });

  canvas.addEventListener("dblclick", () => closePolygon());

  function closePolygon() {
    if (!state.draft) return;
    // A double-click adds the same point twice; drop exact repeats before closing.
    const pts = state.draft.filter((p, i, a) => i === 0 || p[0] !== a[i - 1][0] || p[1] !== a[i - 1][1]);
    state.draft = null;
    if (pts.length >= 3) {
      const o = { frame: frame(), label: picker.value, points: pts };
      state.polygons.push(o);
      state.selected = o;
    }
    touched(); render();
  }

  picker.addEventListener("change", () => {
    if (state.selected && !readOnly) { state.selected.label = picker.value; touched(); render(); }
  });

  // ---- Navigation and playback ----
  function go(i) {
    state.idx = clamp(i, 0, frames.length - 1);
    render();
  }
  scrub.max = String(frames.length - 1);
  scrub.addEventListener("input", () => go(Number(scrub.value)));
  $("prev").addEventListener("click", () => go(state.idx - 1));
  $("next").addEventListener("click", () => go(state.idx + 1));
  $("play").addEventListener("click", togglePlay);

  function togglePlay() {
    if (state.playing) { clearInterval(state.playing); state.playing = null; $("play").textContent = "▶ Play"; return; }
    const fps = Math.min(task.fps || 10, 30);
    $("play").textContent = "❚❚ Pause";
    state.playing = setInterval(() => {
      if (state.idx >= frames.length - 1) { togglePlay(); return; }
      go(state.idx + 1);
    }, 1000 / fps);
  }

  document.addEventListener("keydown", (ev) => {
    if (ev.target.tagName === "INPUT" || ev.target.tagName === "SELECT" || ev.target.tagName === "TEXTAREA") return;
    const k = ev.key;
    let handled = true;
    if (k === "ArrowRight" || k === "d") go(state.idx + (ev.shiftKey ? 10 : 1));
    else if (k === "ArrowLeft" || k === "a") go(state.idx - (ev.shiftKey ? 10 : 1));
    else if (k === "Home") go(0);
    else if (k === "End") go(frames.length - 1);
    else if (k === " ") togglePlay();
    else if (/^[1-9]$/.test(k) && Number(k) <= classes.length) {
      picker.value = classes[Number(k) - 1];
      if (type === "classify" && !readOnly) { state.labels[frame()] = picker.value; touched(); render(); }
      else picker.dispatchEvent(new Event("change"));
    } else if ((k === "Delete" || k === "Backspace") && !readOnly) deleteSelected();
    else if (k === "Escape") { state.draft = null; state.selected = null; render(); }
    else if (k === "Enter" && (ev.ctrlKey || ev.metaKey)) submit();
    else if (k === "Enter" && type === "polygon") closePolygon();
    else if ((k === "o" || k === "O") && type === "track" && !readOnly) toggleOutside();
    else if ((k === "k" || k === "K") && type === "track" && !readOnly) keyHere();
    else handled = false;
    if (handled) ev.preventDefault();
  });

  function keyHere() {
    const t = state.selected;
    if (!t || !state.tracks.includes(t)) return;
    const b = interpolateTrack(t.keyframes, frame());
    if (b) { setKeyframe(t, frame(), b, false); touched(); render(); }
  }

  function toggleOutside() {
    const t = state.selected;
    if (!t || !state.tracks.includes(t)) return;
    const f = frame();
    const existing = t.keyframes.find((k) => k.frame === f);
    if (existing && existing.outside) { existing.outside = false; }
    else {
      const prev = t.keyframes.filter((k) => k.frame <= f && !k.outside).pop();
      const b = interpolateTrack(t.keyframes, f) || (prev && prev.box);
      if (!b || t.keyframes[0].frame >= f) return;  // a track cannot start outside
      setKeyframe(t, f, b, true);
    }
    touched(); render();
  }

  // ---- Time: remaining claim time, active time, heartbeat ----
  function touched() { state.lastInput = Date.now(); }
  ["mousemove", "keydown", "mousedown"].forEach((e) => document.addEventListener(e, touched, { passive: true }));
  setInterval(() => {
    if (!document.hidden && Date.now() - state.lastInput < 30000) state.active += 1;
    const left = Math.max(0, Math.floor((state.deadline - Date.now()) / 1000));
    const el = $("timer");
    el.textContent = readOnly ? data.status : `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} left`;
    el.className = left < 120 && !readOnly ? "timer urgent" : "timer";
  }, 1000);

  function csrf() {
    const m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  async function api(path, body) {
    const r = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify(body || {}),
    });
    let json = null;
    try { json = await r.json(); } catch (e) { json = null; }
    return { ok: r.ok, status: r.status, json: json };
  }

  if (!readOnly) {
    setInterval(async () => {
      const r = await api(`/api/work/assignments/${data.id}/heartbeat/`, { active_seconds: state.active });
      if (r.ok) state.deadline = new Date(r.json.deadline);
      else if (r.json) showMessage(r.json.error.message, true);
    }, 60000);
  }

  // ---- Submit, errors, claim next ----
  function payload() {
    if (type === "track") return { tracks: state.tracks.map((t) => ({ id: t.id, label: t.label, keyframes: t.keyframes })) };
    if (type === "bbox") return { boxes: state.boxes.map((b) => ({ frame: b.frame, label: b.label, box: b.box })) };
    if (type === "polygon") return { polygons: state.polygons.map((p) => ({ frame: p.frame, label: p.label, points: p.points })) };
    return { labels: Object.keys(state.labels).map((f) => ({ frame: Number(f), label: state.labels[f] })) };
  }

  function describe(path, sent) {
    // "tracks[0].keyframes[2].box" -> "Object #1 (car), keyframe at frame 12: box"
    const m = path.match(/^(tracks|boxes|polygons|labels)\[(\d+)\](?:\.keyframes\[(\d+)\])?\.?(.*)$/);
    if (!m) return { text: path, ref: null };
    const list = { tracks: state.tracks, boxes: state.boxes, polygons: state.polygons }[m[1]];
    const ref = list ? list[Number(m[2])] : null;
    const item = sent[m[1]][Number(m[2])] || {};
    let text = m[1] === "tracks" ? `Object #${item.id} (${item.label})` : `${m[1].slice(0, -1)} ${Number(m[2]) + 1} on frame ${item.frame}`;
    if (m[3] !== undefined && item.keyframes) text += `, keyframe at frame ${item.keyframes[Number(m[3])].frame}`;
    if (m[4]) text += `: ${m[4]}`;
    return { text: text, ref: ref };
  }

  function showMessage(text, bad) {
    const el = $("message");
    el.textContent = text;
    el.className = bad ? "flash error" : "flash";
    el.hidden = !text;
  }

  async function submit() {
    if (readOnly) return;
    const sent = payload();
    $("submit").disabled = true;
    const r = await api(`/api/work/assignments/${data.id}/submit/`, { payload: sent, active_seconds: state.active });
    $("submit").disabled = false;
    const errors = $("errors");
    errors.innerHTML = "";
    state.errorRefs = new Set();
    if (r.ok) {
      showMessage("Submitted. Thank you!", false);
      $("done").hidden = false;
      $("submit").hidden = true; $("release").hidden = true;
      data.status = "submitted";
      render();
      return;
    }
    const err = (r.json && r.json.error) || { message: `The server answered ${r.status}.` };
    showMessage(err.message, true);
    Object.entries(err.fields || {}).forEach(([path, msgs]) => {
      const d = describe(path, sent);
      if (d.ref) state.errorRefs.add(d.ref);
      msgs.forEach((msg) => {
        const li = document.createElement("li");
        li.textContent = `${d.text} — ${msg}`;
        errors.appendChild(li);
      });
    });
    render();
  }

  async function claimNext() {
    const r = await api("/api/work/claim/", {});
    if (r.ok) window.location.href = `/work/assignments/${r.json.id}/`;
    else showMessage((r.json && r.json.error.message) || "No work available.", true);
  }

  async function release() {
    const r = await api(`/api/work/assignments/${data.id}/release/`, {});
    if (r.ok) window.location.href = "/work/";
    else showMessage(r.json.error.message, true);
  }

  $("submit").addEventListener("click", submit);
  $("claim-next").addEventListener("click", claimNext);
  $("release").addEventListener("click", release);
  if (readOnly) { $("submit").hidden = true; $("release").hidden = true; }

  // Track ids continue after any loaded ones.
  state.nextId = state.tracks.reduce((m, t) => Math.max(m, t.id + 1), 1);
  images[0] && images[0].addEventListener("load", render);
  render();
})();
