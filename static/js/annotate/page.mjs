/* The annotation page and the qualification page: the workspace editor (workspace.mjs) plus what
 * the two pages do with it. Loaded as <script type="module">, no build step.
 *
 * Two modes share the workspace:
 *
 * - annotation (#assignment-data: the whitelisted view the worker API serves): one microtask,
 *   claim timer, heartbeat, release, submit, and the draft kept as you go (below);
 * - qualification (#qualification-data: the test's questions, never their answers): several
 *   questions, each with its own classes, frame size, frames and annotation state; the answers
 *   are posted together and the result is shown in place.
 *
 * Every URL comes from the page: data-*-url attributes on #annotate, built with {% url %} (see
 * templates/worker/annotate.html and qualify.html); frame images come in the embedded data.
 * Requests carry the session cookie and the CSRF token.
 */

import {
  describeErrorPath,
  draftOf,
  emptyFrames,
  hasContent,
  isDraftOf,
  newestDraft,
  parseAnswerPath,
  payloadOf,
} from "./core.mjs";
import { createTracker } from "./tracker.mjs";
import { mountProposals } from "./proposals.mjs";
import { addError, clearErrors, createEditor, itemOf } from "./workspace.mjs";

const $ = (id) => document.getElementById(id);

/* The URLs named by ``names`` ("submitUrl" is data-submit-url) from the root's attributes. */
function urlsOf(root, names) {
  const urls = {};
  names.forEach((name) => {
    const url = root.dataset[name];
    if (!url) {
      const attr = name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      throw new Error(`#${root.id} has no data-${attr}: the template passes every URL the page uses`);
    }
    urls[name] = url;
  });
  return urls;
}

function csrf() {
  const m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

/* POST (or ``method``) JSON; never throws: {ok, status, json} with the API's error shape when
 * unreachable. */
export async function post(url, body, method = "POST") {
  let r;
  try {
    r = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify(body || {}),
    });
  } catch (e) {
    return { ok: false, status: 0, json: { error: { message: "The server could not be reached; try again." } } };
  }
  let json = null;
  try {
    json = await r.json();
  } catch (e) {
    json = null;
  }
  return { ok: r.ok, status: r.status, json };
}

export function errorOf(r) {
  return (r.json && r.json.error) || { message: `The server answered ${r.status}.` };
}

export function showMessage(text, bad) {
  const el = $("message");
  el.textContent = text;
  el.className = bad ? "flash error" : "flash";
  el.hidden = !text;
}

/* Put a rejected submission's field errors on the workspace state they belong to. */
export function markErrors(st, fields, sent) {
  Object.entries(fields).forEach(([path, msgs]) => {
    const d = describeErrorPath(path, sent);
    addError(st, d, d.key === null ? null : itemOf(st, d.key, d.index), msgs);
  });
}

// ---- Drafts: nothing drawn is lost to a reload, a crash or a lost connection ----
//
// After every edit the draft (core's draftOf: the payload Submit would send, and when) is written
// to this device's localStorage at once, and sent with a heartbeat a few seconds later (the
// server keeps it with the claim, tasks/drafts.py). On load the newer of the two (newestDraft)
// is restored, with a notice. A device that cannot store (private mode, full) still sends drafts.

const DRAFT_SEND_DELAY_MS = 3000;
const DRAFT_RETRY_MS = 10000;

function localDrafts(assignmentId) {
  const key = `crowdlabel:draft:${assignmentId}`;
  return {
    read(kind) {
      try {
        const value = JSON.parse(window.localStorage.getItem(key));
        return isDraftOf(value, kind) ? value : null; // the device may hold anything
      } catch (e) {
        return null;
      }
    },
    write(draft) {
      try {
        window.localStorage.setItem(key, JSON.stringify(draft));
        return true;
      } catch (e) {
        return false;
      }
    },
    clear() {
      try {
        window.localStorage.removeItem(key);
      } catch (e) {
        // nothing stored, nothing to clear
      }
    },
  };
}

const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

function setDraftStatus(text, bad) {
  const el = $("draft-status");
  el.textContent = text;
  el.className = bad ? "draft-status offline" : "draft-status";
}

// ---- Annotation: one claimed microtask ----
function annotationPage(root, data) {
  const urls = urlsOf(root, ["submitUrl", "heartbeatUrl", "releaseUrl", "boardUrl"]);
  const session = { active: 0, lastInput: Date.now(), deadline: new Date(data.deadline) };
  const drafts = localDrafts(data.id);
  // The draft not yet on the server (null when the server has the latest), and its timer.
  let unsent = null;
  let sendTimer = null;
  const touched = () => {
    session.lastInput = Date.now();
  };
  const edited = () => {
    touched();
    if (editor.isReadOnly()) return;
    const draft = draftOf(ws.state, ws.type, Date.now());
    const kept = drafts.write(draft);
    unsent = draft;
    setDraftStatus(kept ? "Saved on this device" : "Not saved yet", false);
    clearTimeout(sendTimer);
    sendTimer = setTimeout(() => heartbeat(), DRAFT_SEND_DELAY_MS);
  };
  let tracker = null; // tracker proposals (track jobs: tracker.mjs)
  let overlay = null; // the proposals' suggestions (proposals.mjs), once mounted
  const editor = createEditor({
    changed: edited,
    message: showMessage,
    rendered: () => tracker && tracker.decorate(),
    overlay: (ctx, info) => tracker && tracker.draw(ctx, info),
    underlay: (ctx, frame, scale) => overlay && overlay(ctx, frame, scale),
    keydown: (ev) => {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
        submit();
        return true;
      }
      return !!tracker && !editor.isReadOnly() && tracker.keydown(ev);
    },
  });
  const ws = editor.workspace({
    key: String(data.id),
    number: 1,
    type: data.job.annotation_type,
    classes: data.job.classes,
    eventLabels: data.job.event_labels || [],
    attributes: data.job.attributes,
    predicates: data.job.predicates,
    trackMasks: !!data.job.track_masks,
    task: data.task,
    payload: data.submission && data.submission.payload,
  });
  editor.setReadOnly(data.status !== "claimed");
  if (ws.type === "track" && root.dataset.propagateUrl) {
    tracker = createTracker({ editor, url: root.dataset.propagateUrl, post, message: showMessage });
  }
  overlay = mountProposals({ editor, ws, proposals: data.proposals, before: root.querySelector(".instructions") });

  // Time: remaining claim time, active time (input in the last 30 s, page visible), heartbeat.
  ["mousemove", "keydown", "mousedown", "pointerdown"].forEach((e) =>
    document.addEventListener(e, touched, { passive: true }),
  );
  setInterval(() => {
    const readOnly = editor.isReadOnly();
    if (!document.hidden && Date.now() - session.lastInput < 30000) session.active += 1;
    const left = Math.max(0, Math.floor((session.deadline - Date.now()) / 1000));
    const el = $("timer");
    el.textContent = readOnly ? data.status : `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} left`;
    el.className = left < 120 && !readOnly ? "timer urgent" : "timer";
  }, 1000);
  // The heartbeat keeps the claim alive, reports active time and carries the unsent draft.
  async function heartbeat() {
    if (editor.isReadOnly()) return; // submitted: the claim is over
    clearTimeout(sendTimer);
    const draft = unsent;
    const body = { active_seconds: session.active };
    if (draft) body.draft = draft;
    const r = await post(urls.heartbeatUrl, body);
    if (r.ok) {
      session.deadline = new Date(r.json.deadline);
      if (draft && unsent === draft) unsent = null; // no edit since: the server has the latest
      if (draft) setDraftStatus(`Saved on the server at ${clock(draft.saved_at)}`, false);
    } else if (r.status === 0) {
      setDraftStatus("Offline: your work is kept on this device and sent when the connection is back", true);
      if (unsent) sendTimer = setTimeout(() => heartbeat(), DRAFT_RETRY_MS); // and keep trying
    } else if (r.json) showMessage(errorOf(r).message, true);
  }
  if (!editor.isReadOnly()) {
    setInterval(heartbeat, 60000);
    window.addEventListener("online", () => heartbeat());
  }

  // Bring back unsubmitted work: the newer of this device's draft and the server's.
  function restoreDraft() {
    if (editor.isReadOnly()) {
      drafts.clear();
      return;
    }
    const server = isDraftOf(data.draft, ws.type) ? data.draft : null;
    const pick = newestDraft(drafts.read(ws.type), server);
    if (!pick) return;
    const where = pick.source === "local" ? "this device" : "the server";
    const el = $("draft-notice");
    el.textContent = `Restored the work you had not submitted yet (saved on ${where} at ${clock(pick.draft.saved_at)}).`;
    el.hidden = false;
    editor.load(pick.draft.payload);
    const onServer = server !== null && server.saved_at >= pick.draft.saved_at;
    setDraftStatus(onServer ? `Saved on the server at ${clock(pick.draft.saved_at)}` : "Saved on this device", false);
    if (onServer) drafts.write(pick.draft);
    else {
      unsent = pick.draft; // the server never got it (a lost connection): send it now
      heartbeat();
    }
  }

  // Frames left empty are asked about before submitting; the dialog says how many and which.
  function confirmEmpty() {
    const frames = ws.frames;
    const empty = emptyFrames(ws.state, ws.type, frames);
    if (!empty.length) return Promise.resolve(true);
    const dialog = $("confirm-empty");
    const list = empty.length > 8 ? `${empty.slice(0, 8).join(", ")}…` : empty.join(", ");
    $("confirm-empty-text").textContent =
      empty.length === frames.length
        ? `Nothing is annotated on any of the ${frames.length} frames. Submit an empty annotation?`
        : `${empty.length} of ${frames.length} frames have nothing annotated (frame${empty.length > 1 ? "s" : ""} ${list}). Submit anyway?`;
    return new Promise((resolve) => {
      dialog.addEventListener(
        "close",
        () => {
          const ok = dialog.returnValue === "submit";
          if (!ok) editor.go(frames.indexOf(empty[0]));
          resolve(ok);
        },
        { once: true },
      );
      dialog.returnValue = "";
      dialog.showModal();
    });
  }

  async function submit() {
    if (editor.isReadOnly() || $("confirm-empty").open) return;
    if (!(await confirmEmpty())) return;
    const sent = payloadOf(ws.state, ws.type);
    $("submit").disabled = true;
    const r = await post(urls.submitUrl, { payload: sent, active_seconds: session.active });
    $("submit").disabled = false;
    clearErrors(ws.state);
    if (r.ok) {
      drafts.clear();
      unsent = null;
      clearTimeout(sendTimer);
      setDraftStatus("", false);
      showMessage("Submitted. Thank you!", false);
      $("done").hidden = false;
      $("submit").hidden = true;
      $("release").hidden = true;
      data.status = "submitted";
      editor.setReadOnly(true);
      editor.render();
      return;
    }
    const err = errorOf(r);
    showMessage(err.message, true);
    markErrors(ws.state, err.fields || {}, sent);
    editor.render();
  }

  async function release() {
    const r = await post(urls.releaseUrl, {});
    if (r.ok) window.location.href = urls.boardUrl;
    else showMessage(errorOf(r).message, true);
  }

  $("submit").addEventListener("click", submit);
  $("release").addEventListener("click", release);
  if (editor.isReadOnly()) {
    $("submit").hidden = true;
    $("release").hidden = true;
  }
  editor.use(ws);
  restoreDraft();
  editor.render();
}

// ---- Qualification: the test's questions, its answers, its result ----
function qualificationPage(root, data) {
  const urls = urlsOf(root, ["submitUrl", "boardUrl"]);
  const answered = (w) => hasContent(w.state) || w.state.empty;
  const editor = createEditor({
    changed: () => {},
    message: showMessage,
    rendered: renderQuestions,
    keydown: (ev) => {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) submitTest();
      else if (ev.key === "PageDown" || ev.key === "PageUp") {
        switchQuestion(editor.current().number - 1 + (ev.key === "PageDown" ? 1 : -1));
      } else return false;
      return true;
    },
  });
  const workspaces = data.questions.map((q, i) =>
    editor.workspace({
      key: String(q.id),
      number: i + 1,
      type: data.annotation_type,
      classes: q.classes,
      eventLabels: q.event_labels || [],
      attributes: q.attributes,
      predicates: q.predicates,
      instructions: q.instructions,
      task: { width: q.width, height: q.height, frames: q.frames, frame_start: q.frame_start, frame_end: q.frame_end },
    }),
  );

  function use(w) {
    editor.use(w);
    $("q-instructions").textContent = w.instructions || "Annotate the frame.";
  }

  function switchQuestion(i) {
    if (i < 0 || i >= workspaces.length || workspaces[i] === editor.current()) return;
    use(workspaces[i]);
    editor.render();
  }

  function renderQuestions() {
    const ws = editor.current();
    $("q-label").textContent = `Question ${ws.number} of ${workspaces.length}`;
    $("q-prev").disabled = ws.number === 1;
    $("q-next").disabled = ws.number === workspaces.length;
    const nav = $("q-list");
    nav.innerHTML = "";
    workspaces.forEach((w, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = String(w.number);
      b.dataset.question = w.key;
      const bad = w.state.errors.length > 0;
      b.className =
        "q " + (w === ws ? "current " : "secondary ") + (bad ? "bad " : "") + (answered(w) ? "answered" : "");
      b.title = bad
        ? `Question ${w.number}: ${w.state.errors.join("; ")}`
        : answered(w)
          ? `Question ${w.number}: answered`
          : `Question ${w.number}: not answered yet`;
      b.addEventListener("click", () => switchQuestion(i));
      nav.appendChild(b);
    });
    const empty = $("q-empty");
    empty.checked = ws.state.empty && !hasContent(ws.state);
    empty.disabled = editor.isReadOnly() || hasContent(ws.state);
  }

  function showResult(res) {
    const el = $("result");
    const left = Math.max(0, data.max_attempts - res.attempts);
    el.innerHTML = "";
    const head = document.createElement("strong");
    head.className = "verdict";
    head.textContent = res.status === "passed" ? "Passed" : "Failed";
    el.appendChild(head);
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = ` — score ${Number(res.score).toFixed(2)} (${data.pass_score.toFixed(2)} needed). `;
    el.appendChild(score);
    if (res.status === "passed") {
      const a = document.createElement("a");
      a.href = urls.boardUrl;
      a.id = "to-board";
      a.textContent = "Find work on the job board";
      el.appendChild(a);
    } else {
      const more = document.createElement("span");
      more.className = "attempts-left";
      more.textContent =
        left > 0 ? `${left} attempt${left === 1 ? "" : "s"} left: adjust your answers and submit again.` : "No attempts left.";
      el.appendChild(more);
    }
    el.className = res.status === "passed" ? "flash result passed" : "flash error result failed";
    el.hidden = false;
    if (res.status === "passed" || left === 0) {
      editor.setReadOnly(true);
      $("submit").hidden = true;
      workspaces.forEach((w) => {
        w.state.selected = null;
        w.state.draft = null;
      });
    }
  }

  async function submitTest() {
    if (editor.isReadOnly()) return;
    const answers = {};
    workspaces.forEach((w) => {
      clearErrors(w.state);
      if (answered(w)) answers[w.key] = payloadOf(w.state, w.type);
    });
    $("submit").disabled = true;
    const r = await post(urls.submitUrl, { answers });
    $("submit").disabled = false;
    if (r.ok) {
      showMessage("", false);
      data.attempts = r.json.attempts;
      if ($("attempts-used")) $("attempts-used").textContent = String(r.json.attempts);
      showResult(r.json);
      editor.render();
      return;
    }
    const err = errorOf(r);
    const byKey = {};
    workspaces.forEach((w) => {
      byKey[w.key] = w;
    });
    const general = [];
    Object.entries(err.fields || {}).forEach(([path, msgs]) => {
      const a = parseAnswerPath(path);
      const w = a && byKey[String(a.question)];
      if (!w) {
        general.push(`${path}: ${msgs.join("; ")}`);
        return;
      }
      if (a.path === null) addError(w.state, { text: "", frame: null }, null, msgs);
      else markErrors(w.state, { [a.path]: msgs }, answers[w.key] || {});
    });
    const bad = workspaces.filter((w) => w.state.errors.length);
    let text = err.message;
    if (bad.length) text += ` See question${bad.length > 1 ? "s" : ""} ${bad.map((w) => w.number).join(", ")}.`;
    if (general.length) text += " " + general.join(" ");
    showMessage(text, true);
    // Show the first question with errors, on the frame of its first offending shape.
    if (bad.length && !bad.includes(editor.current())) use(bad[0]);
    else editor.focusError();
    editor.render();
  }

  $("submit").addEventListener("click", submitTest);
  $("q-prev").addEventListener("click", () => switchQuestion(editor.current().number - 2));
  $("q-next").addEventListener("click", () => switchQuestion(editor.current().number));
  $("q-empty").addEventListener("change", (ev) => {
    editor.current().state.empty = ev.target.checked;
    editor.render();
  });
  use(workspaces[0]);
  editor.render();
}

const root = $("annotate");
const assignment = $("assignment-data");
const qualification = $("qualification-data");
if (root && $("canvas")) {
  if (qualification) qualificationPage(root, JSON.parse(qualification.textContent));
  else if (assignment) annotationPage(root, JSON.parse(assignment.textContent));
}
