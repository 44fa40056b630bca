"""Consensus of attributes and relations over the objects the shape consensus kept. Pure.

Runs after the box, polygon or track consensus of a microtask (``quality.consensus``,
``quality.tracks``) and adds to the consensus per-frame shapes what the annotators said about
the objects (the stored format is ``tasks.attributes``'):

1. **Matching.** Each annotator's shapes on a frame are matched to the consensus shapes of that
   frame: for tracks through the track consensus' own identity association (annotator track →
   consensus identity), otherwise one to one as gold scoring matches (``scoring.frame_matches``:
   Hungarian on class-aware IoU for boxes, mask IoU for polygons, at the job's threshold).
2. **Attributes**, per (class, attribute): every matched annotator's value is a label on the
   consensus object (an item). A boolean or a choice is aggregated by Dawid-Skene over the
   microtask's items (``quality.dawid_skene.aggregate``: the trust-weighted majority vote when
   there are too few items for EM); a number by the trust-weighted median. An annotator who left
   an attribute out gives no label on it. On tracks an item is an (identity, frame): values
   change at keyframes, and so may the consensus.
3. **Relations**: each annotator's relation becomes a triplet ``(frame, subject, predicate,
   object)`` on consensus objects through the matching; a triplet is kept when the annotators
   asserting it hold a strict trust-weighted majority of the microtask's weight, as a box
   cluster is kept. A relation whose subject or object matches nothing supports nothing.

Each annotator's agreement on attributes (share of the consensus values on the objects they
matched that they gave alike: a value left out counts as a miss) and on
relations (F1 against the kept triplets) is returned beside the frames; the consensus service
blends them into each worker's agreement with small weights beside the shapes'
(``quality.policy.blend_agreement``), the agreement that feeds trust, approval and overlap, and
stores the parts with the result (``ConsensusResult.agreement_parts``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from marketplace import label_schema

from . import dawid_skene, shapes
from .consensus import _weights
from .scoring import attribute_agrees, frame_matches

ALGORITHM = "attributes-ds-relations-wvote-v1"


@dataclass(frozen=True)
class ExtrasOutcome:
    """The consensus frames with attributes and relations, and how each annotator agreed."""

    frames: dict[str, list[dict[str, Any]]]
    attribute_agreement: np.ndarray  # (A,) share of an annotator's values the consensus kept
    relation_agreement: np.ndarray  # (A,) F1 of an annotator's triplets against the kept ones
    relations_kept: int


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The lower weighted median: the smallest value with at least half the weight at or below."""
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cum = np.cumsum(w)
    return float(v[int(np.searchsorted(cum, 0.5 * cum[-1]))])


def _matches(
    annotation_type: str,
    annotations: Sequence[shapes.Frames],
    consensus: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    classes: Sequence[str],
    iou_threshold: float,
    association: Mapping[tuple[int, int], int] | None,
) -> list[dict[str, dict[int, int]]]:
    """Per annotator, per frame: ``{annotator's shape index: consensus shape index}``."""
    out: list[dict[str, dict[int, int]]] = []
    for a, ann in enumerate(annotations):
        per: dict[str, dict[int, int]] = {}
        for key, cons in consensus.items():
            mine = ann.get(key) or []
            if not mine or not cons:
                continue
            if association is not None:
                where = {int(s["track"]): j for j, s in enumerate(cons)}
                m = {}
                for i, s in enumerate(mine):
                    ident = association.get((a, int(s.get("track", -1))))
                    if ident is not None and ident in where:
                        m[i] = where[ident]
            else:
                back = frame_matches(
                    annotation_type, cons, mine, classes=classes, iou_threshold=iou_threshold
                )
                m = {i: j for j, i in back.items()}
            if m:
                per[key] = m
        out.append(per)
    return out


def aggregate_extras(
    annotation_type: str,
    annotations: Sequence[shapes.Frames],
    consensus: Mapping[str, Sequence[Mapping[str, Any]]],
    weights: Sequence[float] | np.ndarray | None = None,
    *,
    classes: Sequence[str],
    label_attributes: Mapping | None = None,
    iou_threshold: float = 0.5,
    association: Mapping[tuple[int, int], int] | None = None,
) -> ExtrasOutcome:
    """The consensus ``consensus`` (stored per-frame shapes) with attributes and relations
    aggregated from the annotators' stored shapes ``annotations`` (see the module docstring).
    ``consensus`` is not changed; the result holds a copy."""
    n_ann = len(annotations)
    w = _weights(n_ann, weights)
    frames = copy.deepcopy({str(k): list(v) for k, v in consensus.items()})
    for shapes_ in frames.values():
        for s in shapes_:
            s.pop("attributes", None)
            s.pop("relations", None)
    matched = _matches(
        annotation_type,
        annotations,
        frames,
        classes=classes,
        iou_threshold=iou_threshold,
        association=association,
    )
    schema = label_schema.parse(label_attributes)
    attr_agreement = _attributes(annotations, frames, matched, schema, w)
    rel_agreement, kept = _relations(annotations, frames, matched, w)
    return ExtrasOutcome(frames, attr_agreement, rel_agreement, kept)


def _attributes(annotations, frames, matched, schema, w) -> np.ndarray:
    # Labels per (class, attribute): item = consensus object (frame key, index), annotator, value.
    given: dict[tuple[str, str], list[tuple[tuple[str, int], int, Any]]] = {}
    for a, ann in enumerate(annotations):
        for key, m in matched[a].items():
            mine = ann[key]
            for i, j in m.items():
                label = frames[key][j].get("label")
                specs = schema.get(label, {})
                for name, value in (mine[i].get("attributes") or {}).items():
                    if name in specs:
                        given.setdefault((label, name), []).append(((key, j), a, value))
    n_ann = len(annotations)
    # The consensus objects each annotator matched.
    seen = [{(key, j) for key, m in matched[a].items() for j in m.values()} for a in range(n_ann)]
    agree = np.zeros(n_ann)
    count = np.zeros(n_ann)
    for (label, name), labels in sorted(given.items()):
        spec = schema[label][name]
        items = sorted({item for item, _, _ in labels})
        index = {item: k for k, item in enumerate(items)}
        if spec.type == "number":
            chosen: dict[tuple[str, int], Any] = {}
            for item in items:
                mine = [(a, float(v)) for it, a, v in labels if it == item]
                vals = np.array([v for _, v in mine])
                chosen[item] = weighted_median(vals, w[[a for a, _ in mine]])
        else:
            values = [False, True] if spec.type == "bool" else list(spec.values)
            code = {v: k for k, v in enumerate(values)}
            known = [(index[it], a, code[v]) for it, a, v in labels if v in code]
            if not known:
                continue
            t, ws, lab = (np.array(x, dtype=np.int64) for x in zip(*known, strict=True))
            agg = dawid_skene.aggregate(
                t, ws, lab, n_tasks=len(items), n_workers=n_ann, n_classes=len(values),
                worker_weights=w,
            )  # fmt: skip
            chosen = {it: values[int(agg.labels[k])] for k, it in enumerate(items)}
        for (key, j), value in chosen.items():
            frames[key][j].setdefault("attributes", {})[name] = value
        for item, a, v in labels:
            count[a] += 1
            agree[a] += attribute_agrees(spec, chosen[item], v)
        # An annotator who matched the object but left the attribute out missed it: leaving
        # attributes out must not agree better than giving them wrong.
        said = {(item, a) for item, a, _ in labels}
        for item in chosen:
            for a in range(n_ann):
                if item in seen[a] and (item, a) not in said:
                    count[a] += 1
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, agree / np.where(count > 0, count, 1), 1.0)


def _relations(annotations, frames, matched, w) -> tuple[np.ndarray, int]:
    n_ann = len(annotations)
    total = float(w.sum())
    support: dict[tuple[str, int, str, int], float] = {}
    asserted: list[set] = []
    for a, ann in enumerate(annotations):
        mine_set = set()
        for key, shapes_ in ann.items():
            m = matched[a].get(key, {})
            for i, s in enumerate(shapes_):
                for r in s.get("relations", ()):
                    subj, obj = m.get(i), m.get(int(r["object"]))
                    if subj is None or obj is None or subj == obj:
                        mine_set.add((key, -1 - i, r["predicate"], -1))  # supports nothing
                        continue
                    mine_set.add((key, subj, r["predicate"], obj))
        for t in mine_set:
            if t[1] >= 0:
                support[t] = support.get(t, 0.0) + float(w[a])
        asserted.append(mine_set)
    kept = {t for t, s in support.items() if 2 * s > total + 1e-12}
    for key, subj, predicate, obj in sorted(kept, key=lambda t: (int(t[0]), t[1], t[2], t[3])):
        frames[key][subj].setdefault("relations", []).append(
            {"predicate": predicate, "object": obj}
        )
    agreement = np.ones(n_ann)
    for a, mine_set in enumerate(asserted):
        hit = len(mine_set & kept)
        denom = 2 * hit + (len(mine_set) - hit) + (len(kept) - hit)
        agreement[a] = 2 * hit / denom if denom else 1.0
    return agreement, len(kept)


def carry_track_extras(
    target: dict[str, list[dict[str, Any]]],
    segments: Sequence[Mapping[str, Sequence[Mapping[str, Any]]]],
    identity: Mapping[tuple[int, int], int],
) -> None:
    """Put the segments' attributes and relations on the stitched tracks ``target`` (in place):
    segment ``s``'s track ``t`` is global track ``identity[(s, t)]``; on a frame two segments
    share, the earlier segment's say wins, as its boxes do (``quality.tracks.stitch_tracks``)."""
    attrs: dict[tuple[str, int], dict[str, Any]] = {}
    rels: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for s, frames in enumerate(segments):
        for key, shapes_ in frames.items():
            gids = [identity.get((s, int(sh.get("track", -1)))) for sh in shapes_]
            for sh, gid in zip(shapes_, gids, strict=True):
                if gid is None or (key, gid) in attrs:
                    continue
                attrs[(key, gid)] = dict(sh.get("attributes") or {})
                rels[(key, gid)] = [
                    (r["predicate"], gids[int(r["object"])])
                    for r in sh.get("relations", ())
                    if gids[int(r["object"])] is not None
                ]
    for key, shapes_ in target.items():
        where = {int(sh["track"]): j for j, sh in enumerate(shapes_)}
        for sh in shapes_:
            gid = int(sh["track"])
            if attrs.get((key, gid)):
                sh["attributes"] = attrs[(key, gid)]
            related = [
                {"predicate": p, "object": where[o]}
                for p, o in rels.get((key, gid), ())
                if o in where
            ]
            if related:
                sh["relations"] = related
