"""Where qualification questions come from: a seeded test per annotation type, rendered from
synthetic scenes with known truth, and copies of microtasks with a known answer
(:func:`qualification_item_from_microtask`; which answer is gold is quality's to say:
``quality.qualifying.qualification_item_from_gold`` calls it).

Every question's images live under ``qualification/<type>/<folder>/`` in ``default_storage``
(never under a video's frames), so the storage URLs a worker sees for a question
(``tasks.qualifying.question_for_worker``) tell nothing about any job, video or gold microtask.

In the seeded scenes the class of an object is its shape: cars are rectangles, people are
ellipses (``tasks.synthetic`` draws even-numbered objects as rectangles and gives them the first
class), so a worker can tell them apart and the known answer is the scene's truth.
"""

from __future__ import annotations

import io
import logging
import posixpath
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Max
from PIL import Image

from marketplace.errors import Conflict, ValidationError
from marketplace.models import AnnotationType

from . import rle
from .annotations import AnnotationInvalid, validate_payload
from .models import MicroTask, QualificationAnswer, QualificationItem
from .qualifying import item_context
from .synthetic import Box, Scene, make_scene, render_frame
from .work_selectors import STORAGE, frame_entries, frame_size, frame_source

logger = logging.getLogger(__name__)

WIDTH, HEIGHT = 320, 240
CLASSES = ("car", "person")
SHAPE_OF = {"car": "rect", "person": "ellipse"}
QUESTIONS = 3
MIN_SIDE = 10  # pixels: no sliver of an object is a question's answer
TRACK_FRAMES = 16
EVENT_FRAMES = 24
CLASSIFY_FRAMES = 4
SEED_KEY = "seeded"  # manifest key naming a seeded question (a worker never sees manifests)
SOURCE_KEY = "source_microtask"  # manifest key of a question copied from a gold microtask
SEARCH = 200  # scenes tried per question before giving up (the first few always do)

LOOKS = "Cars are the rectangles, people the ellipses."
INSTRUCTIONS = {
    AnnotationType.BBOX: f"{LOOKS} On every frame, draw a tight box around each car and person "
    "you can see, including objects cut by the edge of the picture.",
    AnnotationType.POLYGON: f"{LOOKS} On every frame, outline each object with a polygon along "
    "its edges (a rectangle needs just its four corners).",
    AnnotationType.CLASSIFY: f"{LOOKS} Every frame shows one object: label the frame with its "
    "class.",
    AnnotationType.MASK: f"{LOOKS} On every frame, paint each object with the brush (or outline "
    "it and fill), one mask per object, covering just the pixels you can see of it.",
    AnnotationType.TRACK: f"{LOOKS} Follow each object with one track from the frame it appears "
    "on; mark it outside on the frame it has left the picture.",
    AnnotationType.EVENT: f"{LOOKS} On the timeline, mark each stretch of frames during which a "
    "car is in the picture as one 'car' event, and each stretch with a person in it as one "
    "'person' event (from the first frame it shows to the last).",
}


@dataclass(frozen=True)
class Question:
    """A question before it is stored: its frames (numbered from 0) and known answer."""

    images: list[Any]  # (H, W, 3) uint8 per frame
    payload: dict[str, Any]
    frames: list[int]  # the frames to annotate (empty for tracks: all of them)
    label_attributes: dict[str, Any] = field(default_factory=dict)
    relation_predicates: list[str] = field(default_factory=list)
    event_labels: list[str] = field(default_factory=list)
    instructions: str = ""  # what this question asks beyond its type's instructions


def _visible(boxes: Iterable[Box]) -> list[Box]:
    return [b for b in boxes if not b.outside]


def _clean(boxes: list[Box], *, at_least: int = 1) -> bool:
    """Every object in the picture unoccluded and big enough; at least ``at_least`` of them."""
    vis = _visible(boxes)
    return len(vis) >= at_least and all(
        b.visibility >= 1.0 and b.w >= MIN_SIDE and b.h >= MIN_SIDE for b in vis
    )


def _box(b: Box) -> list[float]:
    return [float(b.x), float(b.y), float(b.x + b.w), float(b.y + b.h)]


def _scene(seed: int, **kwargs) -> Scene:
    # No clutter: a background patch would look like one more rectangle (a "car") to draw.
    args = {"frames": 40, "n_objects": 3, "motion": 3.0, "clutter": 0, **kwargs}
    return make_scene(seed=seed, width=WIDTH, height=HEIGHT, classes=CLASSES, **args)


def _search(base: int, build: Callable[[int], Question | None]) -> Question:
    for seed in range(base, base + SEARCH):
        question = build(seed)
        if question is not None:
            return question
    raise RuntimeError(f"no synthetic scene from seed {base} fits")  # pragma: no cover


def _bbox(seed: int) -> Question | None:
    """Two frames at least 6 apart, each with two or more clean objects."""
    scene = _scene(seed)
    good = [i for i in range(scene.frames) if _clean(scene.boxes(i), at_least=2)]
    pair = next(((a, b) for a in good for b in good if b - a >= 6), None)
    if pair is None:
        return None
    boxes = [
        {"frame": j, "label": b.cls, "box": _box(b)}
        for j, i in enumerate(pair)
        for b in _visible(scene.boxes(i))
    ]
    return Question([render_frame(scene, i) for i in pair], {"boxes": boxes}, [0, 1])


# The seeded bbox test's last question also asks an attribute and a relation, both visible in
# the picture: which half of the frame an object's centre is in, and where each person stands
# relative to each car.
SIDE = [{"name": "side", "type": "choice", "values": ["left", "right"]}]
SIDE_ATTRIBUTES = {"car": SIDE, "person": SIDE}
SIDE_PREDICATES = ["left_of", "right_of"]
SIDE_INSTRUCTIONS = (
    " Give each object its side: left when its centre is in the left half of the picture, "
    "else right. Relate each person to each car: the person is left_of the car when the "
    "person's centre is further left, else right_of."
)


def _bbox_with_attributes(seed: int) -> Question | None:
    """Two frames at least 6 apart, each with one clean car and one clean person whose centres
    are well apart (so left and right are plain to see)."""
    scene = _scene(seed, n_objects=2)

    def fits(i: int) -> bool:
        vis = _visible(scene.boxes(i))
        if not _clean(scene.boxes(i), at_least=2) or sorted(b.cls for b in vis) != [
            "car",
            "person",
        ]:
            return False
        centres = [b.x + b.w / 2 for b in vis]
        away = all(abs(c - WIDTH / 2) >= 12 for c in centres)
        return away and abs(centres[0] - centres[1]) >= 24

    good = [i for i in range(scene.frames) if fits(i)]
    pair = next(((a, b) for a in good for b in good if b - a >= 6), None)
    if pair is None:
        return None
    boxes: list[dict[str, Any]] = []
    relations = []
    for j, i in enumerate(pair):
        vis = sorted(_visible(scene.boxes(i)), key=lambda b: b.cls)  # car, then person
        first = len(boxes)
        for b in vis:
            side = "left" if b.x + b.w / 2 < WIDTH / 2 else "right"
            boxes.append({"frame": j, "label": b.cls, "box": _box(b), "attributes": {"side": side}})
        car, person = vis
        predicate = "left_of" if person.x + person.w / 2 < car.x + car.w / 2 else "right_of"
        relations.append({"subject": first + 1, "predicate": predicate, "object": first})
    return Question(
        [render_frame(scene, i) for i in pair],
        {"boxes": boxes, "relations": relations},
        [0, 1],
        label_attributes=SIDE_ATTRIBUTES,
        relation_predicates=SIDE_PREDICATES,
        instructions=SIDE_INSTRUCTIONS,
    )


def _polygon(seed: int) -> Question | None:
    """One frame whose objects are all rectangles (exact four-point polygons)."""
    scene = _scene(seed)
    for i in range(scene.frames):
        boxes = scene.boxes(i)
        if _clean(boxes, at_least=2) and all(b.cls == "car" for b in _visible(boxes)):
            polygons = [
                {
                    "frame": 0,
                    "label": b.cls,
                    "points": [
                        [float(b.x), float(b.y)],
                        [float(b.x + b.w), float(b.y)],
                        [float(b.x + b.w), float(b.y + b.h)],
                        [float(b.x), float(b.y + b.h)],
                    ],
                }
                for b in _visible(boxes)
            ]
            return Question([render_frame(scene, i)], {"polygons": polygons}, [0])
    return None


def _mask(seed: int) -> Question | None:
    """One frame with two or more clean objects; each object's visible pixels are its mask."""
    scene = _scene(seed)
    for i in range(scene.frames):
        boxes = scene.boxes(i)
        if not _clean(boxes, at_least=2):
            continue
        masks = scene.masks(i)
        items = [
            {"frame": 0, "label": b.cls, "rle": rle.encode(masks[b.track_id])}
            for b in _visible(boxes)
            if b.track_id in masks
        ]
        return Question([render_frame(scene, i)], {"masks": items}, [0])
    return None


# Which class each of a classification question's shots shows.
CLASSIFY_PATTERNS = (
    ("car", "person", "person", "car"),
    ("person", "car", "person", "person"),
    ("car", "car", "person", "car"),
)


def _classify(pattern: tuple[str, ...]) -> Callable[[int], Question | None]:
    def build(seed: int) -> Question | None:
        """One object per shot, its class (and so its shape) set by ``pattern``; a frame of
        each shot, labelled with that class."""
        length = 10
        cuts = tuple(length * k for k in range(1, len(pattern)))
        scene = _scene(seed, frames=length * len(pattern), n_objects=1, motion=2.0, shot_cuts=cuts)
        scene.tracks = tuple(
            replace(t, cls=pattern[k], shape=SHAPE_OF[pattern[k]])
            for k, t in enumerate(scene.tracks)
        )
        picked = []
        for first, last in scene.shots:
            i = next((i for i in range(first, last + 1) if _clean(scene.boxes(i))), None)
            if i is None:
                return None
            picked.append(i)
        labels = [{"frame": j, "label": pattern[j]} for j in range(len(picked))]
        return Question(
            [render_frame(scene, i) for i in picked], {"labels": labels}, list(range(len(picked)))
        )

    return build


def _track(seed: int, *, with_events: bool = False) -> Question | None:
    """``TRACK_FRAMES`` frames where an object enters or leaves and none is hidden much; with
    ``with_events``, also an :data:`EDGE_EVENT` event on each track for every stretch of at least
    three frames in which the picture's edge cuts it (and at least one such stretch, shorter
    than the track, so that marking the whole track misses it)."""
    scene = _scene(seed, frames=60, n_objects=2, motion=4.0)
    for start in range(0, scene.frames - TRACK_FRAMES + 1, 2):
        window = range(start, start + TRACK_FRAMES)
        truth = [scene.boxes(i) for i in window]
        ok = all(
            _visible(boxes) and all(b.visibility >= 0.6 for b in _visible(boxes)) for boxes in truth
        )
        seen = {b.track_id for boxes in truth for b in _visible(boxes)}
        always = {
            tid for tid in seen if all(any(b.track_id == tid for b in _visible(x)) for x in truth)
        }
        if not ok or len(seen) < 2 or seen == always:
            continue  # everything always in view: no enter or leave to test
        tracks = []
        for tid in sorted(seen):
            keyframes: list[dict[str, Any]] = []
            inside = False
            label = ""
            for j, boxes in enumerate(truth):
                b = next(b for b in boxes if b.track_id == tid)
                if not b.outside:
                    keyframes.append({"frame": j, "box": _box(b), "outside": False})
                    inside, label = True, b.cls
                elif inside:
                    keyframes.append({"frame": j, "outside": True})
                    inside = False
            tracks.append({"id": tid, "label": label, "keyframes": keyframes})
        payload: dict[str, Any] = {"tracks": tracks}
        if with_events:
            events = _edge_events(truth, sorted(seen))
            if events is None:
                continue
            payload["events"] = events
            return Question(
                [render_frame(scene, i) for i in window],
                payload,
                [],
                event_labels=[EDGE_EVENT],
                instructions=EDGE_INSTRUCTIONS,
            )
        return Question([render_frame(scene, i) for i in window], payload, [])
    return None


# The seeded track test's last question also asks events on the tracks (for the track jobs that
# name event labels): something a worker sees on the frames, the picture's edge cutting an object.
EDGE_EVENT = "at-edge"
EDGE_INSTRUCTIONS = (
    f" This question also asks events: on each track, mark every stretch of frames in which the "
    f"edge of the picture cuts the object as one '{EDGE_EVENT}' event on that track."
)


def _cut(b: Box) -> bool:
    return b.x <= 0 or b.y <= 0 or b.x + b.w >= WIDTH or b.y + b.h >= HEIGHT


def _edge_events(truth: list[list[Box]], tids: list[int]) -> list[dict[str, Any]] | None:
    """Per track, its stretches (of three frames or more) cut by the picture's edge; None when
    a stretch is too short to see surely or none is shorter than its track's visible frames."""
    events: list[dict[str, Any]] = []
    shorter = False
    for tid in tids:
        cut = []
        for boxes in truth:
            b = next(b for b in boxes if b.track_id == tid)
            cut.append(None if b.outside else _cut(b))
        visible = sum(c is not None for c in cut)
        j = 0
        while j < len(cut):
            if not cut[j]:
                j += 1
                continue
            k = j
            while k + 1 < len(cut) and cut[k + 1]:
                k += 1
            if k - j + 1 < 3:
                return None  # a stretch of a frame or two: too easy to miss, too hard to grade
            events.append({"label": EDGE_EVENT, "start": j, "end": k, "track": tid})
            shorter = shorter or (k - j + 1) <= visible // 2
            j = k + 1
    if not events or not shorter:
        return None
    events.sort(key=lambda e: (e["track"], e["start"]))
    return events


def _event(seed: int) -> Question | None:
    """``EVENT_FRAMES`` frames in which, per class, the frames showing at least half of an
    object of that class form the answer's events; some object enters or leaves, so not every
    event is the whole range, and no object is hidden behind another (only the picture's edge
    cuts them, which a worker sees)."""
    scene = _scene(seed, frames=120, n_objects=2, motion=4.0)
    for start in range(0, scene.frames - EVENT_FRAMES + 1, 2):
        window = range(start, start + EVENT_FRAMES)
        truth = [
            [b for b in _visible(scene.boxes(i)) if b.visibility >= 0.5 and min(b.w, b.h) >= 4]
            for i in window
        ]
        if any(b.occluded for i in window for b in _visible(scene.boxes(i))):
            continue
        events: list[dict[str, Any]] = []
        for cls in CLASSES:
            present = [any(b.cls == cls for b in boxes) for boxes in truth]
            j = 0
            while j < len(present):
                if present[j]:
                    k = j
                    while k + 1 < len(present) and present[k + 1]:
                        k += 1
                    if k - j + 1 >= 3:  # a stretch of a frame or two is too easy to miss
                        events.append({"label": cls, "start": j, "end": k})
                    j = k + 1
                else:
                    j += 1
        if not any(e["end"] - e["start"] + 1 <= EVENT_FRAMES // 2 for e in events):
            # Some event must be at most half the range: marking everything from first frame to
            # last then misses it (tIoU under 0.5) and fails the question.
            continue
        events.sort(key=lambda e: (e["start"], e["label"]))
        return Question([render_frame(scene, i) for i in window], {"events": events}, [])
    return None


def _questions(annotation_type: str) -> list[Question]:
    if annotation_type == AnnotationType.BBOX:
        plain = [_search(1000 + 100 * k, _bbox) for k in range(QUESTIONS - 1)]
        return [*plain, _search(1000 + 100 * (QUESTIONS - 1), _bbox_with_attributes)]
    if annotation_type == AnnotationType.POLYGON:
        return [_search(2000 + 100 * k, _polygon) for k in range(QUESTIONS)]
    if annotation_type == AnnotationType.CLASSIFY:
        return [_search(3000 + 100 * k, _classify(p)) for k, p in enumerate(CLASSIFY_PATTERNS)]
    if annotation_type == AnnotationType.EVENT:
        return [_search(5000 + 100 * k, _event) for k in range(QUESTIONS)]
    if annotation_type == AnnotationType.MASK:
        return [_search(6000 + 100 * k, _mask) for k in range(QUESTIONS)]
    if annotation_type == AnnotationType.TRACK:
        plain = [_search(4000 + 100 * k, _track) for k in range(QUESTIONS - 1)]
        with_events = _search(4000 + 100 * (QUESTIONS - 1), partial(_track, with_events=True))
        return [*plain, with_events]
    raise ValueError(f"no seeded questions for {annotation_type!r}")


def _jpeg(image) -> ContentFile:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=90)
    return ContentFile(buf.getvalue())


def _put(name: str, content) -> str:
    """Store ``content`` at exactly ``name`` (a seeded image already there is the same one)."""
    if default_storage.exists(name):
        return name
    saved = default_storage.save(name, content)
    if saved != name:  # pragma: no cover - a race with another seeder; theirs is identical
        default_storage.delete(saved)
    return name


@dataclass(frozen=True)
class SeedResult:
    created: list[QualificationItem]
    skipped: dict[str, str]  # annotation type -> why it was left alone


def seed_qualifications(*, types: Iterable[str] | None = None) -> SeedResult:
    """Create the seeded qualification test (``QUESTIONS`` questions) of each annotation type.

    Idempotent: a seeded question already there (active or retired by an admin) is not made
    again, and a type whose test an admin wrote (active questions not seeded here) is left alone.
    """
    created: list[QualificationItem] = []
    skipped: dict[str, str] = {}
    for kind in types or AnnotationType.values:
        if kind not in AnnotationType.values:
            raise ValidationError(f"Unknown annotation type {kind!r}.")
        items = QualificationItem.objects.filter(annotation_type=kind)
        seeded = set(
            items.filter(**{f"manifest__{SEED_KEY}__isnull": False}).values_list(
                f"manifest__{SEED_KEY}", flat=True
            )
        )
        written = items.filter(is_active=True, **{f"manifest__{SEED_KEY}__isnull": True})
        if written.exists():
            skipped[kind] = "has questions written by an admin"
            continue
        keys = [f"{kind}-{k + 1}" for k in range(QUESTIONS)]
        if all(key in seeded for key in keys):
            skipped[kind] = "already seeded"
            continue
        for position, (key, question) in enumerate(zip(keys, _questions(kind), strict=True), 1):
            if key in seeded:
                continue
            created.append(_store_seeded(kind, key, position, question))
    return SeedResult(created, skipped)


def seed_after_migrate(*, using: str = "default", **_: Any) -> None:
    """``post_migrate``: a fresh install has a qualification test of every type without a manual
    command (``QUALIFICATION_SEED_ON_MIGRATE``; off in the test settings, so the suite's database
    starts empty and tests seed what they need). Idempotent like ``seed_qualifications``, so
    every later ``migrate`` leaves the questions alone; a migration to an older state, before the
    questions' table exists, seeds nothing."""
    if not settings.QUALIFICATION_SEED_ON_MIGRATE or using != DEFAULT_DB_ALIAS:
        return
    if QualificationItem._meta.db_table not in connections[using].introspection.table_names():
        return
    try:
        result = seed_qualifications()
    except OSError as exc:  # media storage unreachable: migrate itself succeeded
        logger.error(
            "Qualification tests not seeded (%s); run `manage.py seed_qualifications`.", exc
        )
        return
    if result.created:
        logger.info("Seeded %d qualification question(s).", len(result.created))


def _store_seeded(kind: str, key: str, position: int, q: Question) -> QualificationItem:
    folder = f"qualification/{kind}/{key}"
    entries = [
        {"frame": j, "image": _put(f"{folder}/{j:06d}.jpg", _jpeg(image))}
        for j, image in enumerate(q.images)
    ]
    item = QualificationItem(
        annotation_type=kind,
        position=position,
        instructions=INSTRUCTIONS[kind] + q.instructions,
        label_classes=list(CLASSES),
        label_attributes=q.label_attributes,
        relation_predicates=q.relation_predicates,
        event_labels=q.event_labels,
        frame_start=0,
        frame_end=len(q.images) - 1,
        frames=q.frames,
        manifest={SEED_KEY: key, "width": WIDTH, "height": HEIGHT, "frames": entries},
    )
    payload = validate_payload(q.payload, item_context(item)).payload  # the truth is valid
    with transaction.atomic():
        item.save()
        QualificationAnswer.objects.create(item=item, payload=payload)
    return item


# --- Copying a microtask with a known answer -----------------------------------------------------


def qualification_item_from_microtask(*, mt: MicroTask, answer: Any) -> QualificationItem:
    """A qualification question made of microtask ``mt`` (``job`` and ``video`` loaded) and its
    known ``answer`` (a payload, validated here against the question).

    The images are copied to a folder of their own (``qualification/<type>/<random>/``), so the
    question's URLs name no video.
    """
    if QualificationItem.objects.filter(**{f"manifest__{SOURCE_KEY}": mt.pk}).exists():
        raise Conflict(f"Microtask #{mt.pk} is already in the qualification test.")
    job = mt.job
    kind = job.annotation_type
    width, height = frame_size(mt)
    item = QualificationItem(
        annotation_type=kind,
        instructions=job.instructions,
        label_classes=list(job.label_classes),
        label_attributes=dict(job.label_attributes or {}),
        relation_predicates=list(job.relation_predicates or []),
        event_labels=list(job.event_labels or []) if kind == AnnotationType.TRACK else [],
        frame_start=mt.frame_start,
        frame_end=mt.frame_end,
        frames=list(mt.frames or []),
    )
    item.manifest = {"width": width, "height": height}
    try:
        payload = validate_payload(answer, item_context(item)).payload
    except AnnotationInvalid as exc:
        raise ValidationError(
            f"The gold answer of microtask #{mt.pk} does not fit it: {exc}"
        ) from None
    folder = f"qualification/{kind}/{uuid.uuid4().hex[:16]}"
    entries = []
    for number, ref, ts in frame_entries(mt.manifest or {}):
        kind_of, where = frame_source(ref)
        if kind_of == STORAGE:
            ext = posixpath.splitext(where)[1] or ".jpg"
            with default_storage.open(where, "rb") as src:
                where = _put(f"{folder}/{number:06d}{ext}", ContentFile(src.read()))
        entry: dict[str, Any] = {"frame": number, "image" if kind_of == STORAGE else "url": where}
        if ts is not None:
            entry["time"] = ts
        entries.append(entry)
    item.manifest = {SOURCE_KEY: mt.pk, "width": width, "height": height, "frames": entries}
    with transaction.atomic():
        last = QualificationItem.objects.filter(annotation_type=kind).aggregate(m=Max("position"))
        item.position = (last["m"] or 0) + 1
        item.save()
        QualificationAnswer.objects.create(item=item, payload=payload)
    return item
