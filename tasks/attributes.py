"""Attributes on shapes and tracks, and relations between objects, in a payload (pure).

Called by ``tasks.annotations`` for the kinds whose objects take them (``label_schema.KINDS``);
the schema and the rule for one value are ``marketplace.label_schema``'s.

In a payload:

* a box or polygon carries ``"attributes": {"occluded": true, "colour": "red"}``;
* a track carries ``"attributes"`` (static, for its whole life) and each keyframe may carry
  ``"attributes"`` too: a change at that keyframe, carried forward to every later frame until the
  next change (the static values hold where no keyframe changed them);
* ``"relations": [{"subject": ref, "predicate": "rides", "object": ref}]`` at the top, where a
  ref is an index into ``boxes``/``polygons`` (subject and object on the same frame) or a track
  ``id``.

In the stored per-frame shapes (``Submission.frames``, consensus results, gold), relations live
on their subject, pointing at the object by its position in the same frame's list::

    {"30": [{"label": "person", "box": [...], "attributes": {...},
             "relations": [{"predicate": "rides", "object": 1}]},
            {"label": "bicycle", "box": [...]}]}

so everything that reads per-frame shapes (consensus, scoring, export) sees them one way for
every kind; a relation between tracks appears on every frame where both are present. The keys
are left out when empty, so a job without attributes stores exactly what it stored before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from marketplace.label_schema import NAME_PATTERN, Schema, value_error

MAX_RELATIONS = 5_000


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else type(value).__name__
    return repr(text[:40])


def check_attributes(
    value: Any, label: str | bool, path: str, schema: Schema, err
) -> dict[str, Any]:
    """The attributes ``value`` of an object of class ``label`` (at ``path``), checked against
    ``schema``; problems go to ``err`` at ``path.attributes[.<name>]``. Returns the valid ones.

    ``label`` is False when the object's class is itself wrong: that error says enough."""
    if value is None or label is False:
        return {}
    where = f"{path}.attributes"
    if not isinstance(value, Mapping):
        err.add(where, 'must be an object {"<attribute>": value}')
        return {}
    specs = schema.get(label, {}) if isinstance(label, str) else {}
    out: dict[str, Any] = {}
    for name, given in value.items():
        spec = specs.get(name)
        if spec is None:
            known = ", ".join(specs) or "none"
            named = isinstance(name, str) and len(name) <= 40 and NAME_PATTERN.match(name)
            err.add(
                f"{where}.{name}" if named else where,
                f"unknown attribute {_shown(name)} for class {_shown(label)}; it has: {known}",
            )
            continue
        problem = value_error(spec, given)
        if problem:
            err.add(f"{where}.{name}", problem)
            continue
        out[name] = float(given) if spec.type == "number" else given
    return out


def _ref_ok(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_relations(
    items: Any, *, refs: Mapping[int, Any], predicates: Sequence[str], by: str, err
) -> list[dict[str, Any]]:
    """The relations ``items`` checked: ``refs`` maps each valid ref to where its object is (a
    frame for per-frame kinds, None for tracks, which may meet on any frame); ``by`` names what
    a ref is ("index into boxes", "track id"). Problems go to ``err`` at ``relations[i].<part>``.
    """
    if items is None:
        return []
    if not isinstance(items, list):
        err.add("relations", "must be a list")
        return []
    if len(items) > MAX_RELATIONS:
        err.add("relations", f"has {len(items)} items; at most {MAX_RELATIONS} are allowed")
        return []
    out: list[dict[str, Any]] = []
    seen: set[tuple[int, str, int]] = set()
    for i, item in enumerate(items):
        base = f"relations[{i}]"
        if not isinstance(item, Mapping):
            err.add(base, 'must be an object {"subject", "predicate", "object"}')
            continue
        unknown = sorted(str(k)[:40] for k in set(item) - {"subject", "predicate", "object"})
        if unknown:
            err.add(base, f"unexpected fields: {', '.join(unknown)}")
        ok = True
        for part in ("subject", "object"):
            ref = item.get(part)
            if not _ref_ok(ref):
                err.add(f"{base}.{part}", f"must be a whole number ({by})")
                ok = False
            elif ref not in refs:
                err.add(f"{base}.{part}", f"there is no object {ref} ({by})")
                ok = False
        predicate = item.get("predicate")
        if not isinstance(predicate, str) or predicate not in predicates:
            use = ", ".join(predicates) if predicates else "none: this job takes no relations"
            err.add(
                f"{base}.predicate", f"unknown predicate {_shown(predicate)}; use one of: {use}"
            )
            ok = False
        if not ok:
            continue
        s, o = item["subject"], item["object"]
        if s == o:
            err.add(f"{base}.object", "an object cannot be related to itself")
            continue
        if refs[s] is not None and refs[s] != refs[o]:
            err.add(
                f"{base}.object",
                f"must be on the subject's frame ({refs[s]}), not on frame {refs[o]}",
            )
            continue
        key = (s, predicate, o)
        if key in seen:
            err.add(base, "the same relation is given twice")
            continue
        seen.add(key)
        out.append({"subject": s, "predicate": predicate, "object": o})
    return out


def attach_item_relations(
    frames: dict[str, list[dict[str, Any]]],
    items: Sequence[Mapping[str, Any]],
    relations: Sequence[Mapping[str, Any]],
) -> None:
    """Put per-frame relations (refs into ``items``, the payload's validated boxes or polygons,
    in the order their shapes were added to ``frames``) on their subjects' stored shapes."""
    position: list[int] = []
    count: dict[int, int] = {}
    for item in items:
        f = int(item["frame"])
        position.append(count.get(f, 0))
        count[f] = position[-1] + 1
    for r in relations:
        frame = str(items[r["subject"]]["frame"])
        subject = frames[frame][position[r["subject"]]]
        subject.setdefault("relations", []).append(
            {"predicate": r["predicate"], "object": position[r["object"]]}
        )


def attach_track_extras(
    frames: dict[str, list[dict[str, Any]]],
    tracks: Sequence[Mapping[str, Any]],
    relations: Sequence[Mapping[str, Any]],
) -> None:
    """Per-frame attributes of tracks (static, then each keyframe's changes carried forward) and
    their relations (on every frame where subject and object are both present), in place."""
    changes: dict[int, list[tuple[int, dict[str, Any]]]] = {}
    static: dict[int, dict[str, Any]] = {}
    for t in tracks:
        static[t["id"]] = dict(t.get("attributes") or {})
        changes[t["id"]] = [
            (int(k["frame"]), k["attributes"]) for k in t["keyframes"] if k.get("attributes")
        ]
    by_subject: dict[int, list[tuple[str, int]]] = {}
    for r in relations:
        by_subject.setdefault(r["subject"], []).append((r["predicate"], r["object"]))
    if not any(static.values()) and not any(changes.values()) and not by_subject:
        return
    for key, shapes in frames.items():
        f = int(key)
        where = {s["track"]: j for j, s in enumerate(shapes)}
        for s in shapes:
            tid = s["track"]
            values = dict(static.get(tid, {}))
            for at, change in changes.get(tid, ()):
                if at > f:
                    break
                values.update(change)
            if values:
                s["attributes"] = values
            related = [
                {"predicate": p, "object": where[o]}
                for p, o in by_subject.get(tid, ())
                if o in where
            ]
            if related:
                s["relations"] = related
