/* Attributes of the selected object and relations between objects: the workspace's pure half.
 *
 * No DOM, no state of its own: plain data in, plain data out, tested by Node (tests/js/). The
 * rules are the server's (marketplace/label_schema.py, tasks/attributes.py):
 *
 * - a job declares attributes per class: {"car": [{name, type: "bool" | "choice" | "number",
 *   values?, min?, max?}]}, and predicates: ["rides", "holds"];
 * - a box or polygon carries ``attributes`` {name: value}; a track carries static
 *   ``attributes`` and keyframes may carry changes, carried forward to later frames;
 * - the workspace keeps relations as {subject, predicate, object} between its objects (the JS
 *   objects themselves); the payload names them by index into boxes/polygons (subject and object
 *   on the same frame) or by track id.
 */

/* The attributes a class asks for (an empty list for a class that asks none). */
export function specsFor(attributes, label) {
  return ((attributes || {})[label] || []).slice();
}

/* A form control's raw value read as a value of ``spec``: {value} (null: unset), or {error}. */
export function readInput(spec, raw) {
  if (spec.type === "bool") return { value: raw === true || raw === "true" };
  if (spec.type === "choice") {
    if (raw === "" || raw === null || raw === undefined) return { value: null };
    return spec.values.includes(raw) ? { value: raw } : { error: `must be one of: ${spec.values.join(", ")}` };
  }
  if (raw === "" || raw === null || raw === undefined) return { value: null };
  const n = typeof raw === "number" ? raw : Number(String(raw).trim());
  if (!Number.isFinite(n)) return { error: "must be a number" };
  if (spec.min !== undefined && spec.min !== null && n < spec.min) return { error: `must be at least ${spec.min}` };
  if (spec.max !== undefined && spec.max !== null && n > spec.max) return { error: `must be at most ${spec.max}` };
  return { value: n };
}

/* ``attrs`` with ``name`` set to ``value`` (removed when null); a new object, or undefined when
 * nothing is left (a shape without attributes has no ``attributes`` key). */
export function withAttribute(attrs, name, value) {
  const out = { ...(attrs || {}) };
  if (value === null || value === undefined) delete out[name];
  else out[name] = value;
  return Object.keys(out).length ? out : undefined;
}

/* A track's attributes at ``frame``: its static ones, then each keyframe's changes at or before
 * the frame, in order (the server's rule, tasks/attributes.py). */
export function trackAttributesAt(track, frame) {
  const out = { ...(track.attributes || {}) };
  for (const k of track.keyframes) {
    if (k.frame > frame) break;
    Object.assign(out, k.attributes || {});
  }
  return out;
}

/* ``keyframes`` with ``name`` changed to ``value`` from ``frame`` on: a change at the current
 * frame makes a keyframe there (at ``box``, the track's interpolated box on that frame), or
 * goes on the keyframe already there. Null when the object is not on the frame (no box). */
export function keyframesWithAttribute(keyframes, frame, box, name, value) {
  const at = keyframes.find((k) => k.frame === frame);
  if (at) {
    return keyframes.map((k) => {
      if (k !== at) return k;
      const attributes = withAttribute(k.attributes, name, value);
      const { attributes: _old, ...rest } = k;
      return attributes ? { ...rest, attributes } : rest;
    });
  }
  if (!box) return null;
  const attributes = withAttribute(undefined, name, value);
  const kf = { frame, box: box.slice(), outside: false, ...(attributes ? { attributes } : {}) };
  return [...keyframes, kf].sort((a, b) => a.frame - b.frame);
}

// ---- Relations ----

/* The objects a relation may join on ``frame``: boxes or polygons drawn on it, or every track
 * (tracks may meet on any frame). */
function listOf(state, kind) {
  return kind === "track" ? state.tracks : kind === "polygon" ? state.polygons : state.boxes;
}

/* Why a relation from ``subject`` to ``object`` by ``predicate`` cannot be added to
 * ``relations`` (null: it can). */
export function relationProblem(relations, subject, predicate, object, predicates, kind) {
  if (!subject || !object) return "pick a subject and an object";
  if (!predicates.includes(predicate)) return `unknown predicate ${JSON.stringify(predicate)}`;
  if (subject === object) return "an object cannot be related to itself";
  if (kind !== "track" && subject.frame !== object.frame) return "subject and object must be on the same frame";
  if (relations.some((r) => r.subject === subject && r.predicate === predicate && r.object === object)) {
    return "that relation is already there";
  }
  return null;
}

/* ``relations`` without the ones whose subject or object is no longer drawn. */
export function liveRelations(relations, state, kind) {
  const objects = new Set(listOf(state, kind));
  return (relations || []).filter((r) => objects.has(r.subject) && objects.has(r.object));
}

/* The payload's ``relations``: refs by index (boxes, polygons) or by track id. */
export function relationsPayload(relations, state, kind) {
  const list = listOf(state, kind);
  const ref = kind === "track" ? (o) => o.id : (o) => list.indexOf(o);
  return liveRelations(relations, state, kind).map((r) => ({
    subject: ref(r.subject),
    predicate: r.predicate,
    object: ref(r.object),
  }));
}

/* A payload's ``relations`` as the workspace keeps them (refs that name nothing are dropped). */
export function relationsFromPayload(payload, state, kind) {
  const list = listOf(state, kind);
  const find = kind === "track" ? (ref) => list.find((t) => t.id === ref) : (ref) => list[ref];
  return ((payload && payload.relations) || [])
    .map((r) => ({ subject: find(r.subject), predicate: r.predicate, object: find(r.object) }))
    .filter((r) => r.subject && r.object);
}

/* How a relation reads in the panel's list. */
export function describeRelation(r, kind) {
  const name = (o) => (kind === "track" ? `#${o.id} ${o.label}` : `${o.label} (frame ${o.frame})`);
  return `${name(r.subject)} ${r.predicate} ${name(r.object)}`;
}

/* ``relations`` for an undo snapshot: each end as [list, index] into the state's lists. */
export function relationsSnapshot(relations, state) {
  const where = (o) => {
    for (const key of ["tracks", "boxes", "polygons"]) {
      const i = state[key].indexOf(o);
      if (i >= 0) return [key, i];
    }
    return null;
  };
  return (relations || [])
    .map((r) => ({ subject: where(r.subject), predicate: r.predicate, object: where(r.object) }))
    .filter((r) => r.subject && r.object);
}

/* A snapshot's relations (relationsSnapshot) over a state restored from the same snapshot. */
export function relationsRestore(snapshot, state) {
  const at = ([key, i]) => state[key][i];
  return (snapshot || []).map((r) => ({ subject: at(r.subject), predicate: r.predicate, object: at(r.object) }));
}

/* ``o`` (a box, polygon or track) after its class changed: only the attributes ``specs`` (the
 * new class's) declares are kept, on the object and on its keyframes. In place. */
export function keepDeclared(o, specs) {
  const names = new Set(specs.map((s) => s.name));
  const prune = (holder) => {
    if (!holder.attributes) return;
    const kept = Object.fromEntries(Object.entries(holder.attributes).filter(([k]) => names.has(k)));
    if (Object.keys(kept).length) holder.attributes = kept;
    else delete holder.attributes;
  };
  prune(o);
  (o.keyframes || []).forEach(prune);
  return o;
}
