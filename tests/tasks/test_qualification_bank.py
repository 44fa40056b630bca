"""The seeded qualification tests, copying gold into the test, and the demo's qualifications."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.test import Client
from PIL import Image

from marketplace.errors import Conflict
from marketplace.models import AnnotationType, Qualification, QualificationStatus, User
from quality import qualifying as quality_qualifying
from quality import services as quality
from tasks import qualification_bank as bank
from tasks import rle
from tasks.annotations import TOP_KEY, validate_payload
from tasks.models import MicroTask, QualificationAnswer, QualificationItem
from tasks.qualifying import item_context
from tests.factories import AdminFactory, WorkerFactory
from tests.tasks.claim_fixtures import ready_job, store_frames

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _files(root) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_seeding_makes_a_short_test_per_type_whose_answers_score_1(media):
    result = bank.seed_qualifications()
    assert result.skipped == {}
    items = QualificationItem.objects.select_related("answer").order_by("annotation_type", "pk")
    by_type = {kind: [i for i in items if i.annotation_type == kind] for kind in TOP_KEY}
    assert {k: len(v) for k, v in by_type.items()} == {k: bank.QUESTIONS for k in TOP_KEY}
    assert [i.pk for i in result.created] == sorted(i.pk for i in items)
    for item in items:
        manifest = item.manifest
        assert (manifest["width"], manifest["height"]) == (bank.WIDTH, bank.HEIGHT)
        assert [f["frame"] for f in manifest["frames"]] == list(
            range(item.frame_start, item.frame_end + 1)
        )
        for entry in manifest["frames"]:
            name = entry["image"]
            assert name.startswith(f"qualification/{item.annotation_type}/")
            with default_storage.open(name) as fh, Image.open(fh) as im:
                assert im.size == (bank.WIDTH, bank.HEIGHT)
        validated = validate_payload(item.answer.payload, item_context(item))
        assert validated.payload == item.answer.payload  # stored as validated
        assert validated.shape_count > 0
        assert quality_qualifying.item_score(item, validated.frames) == 1.0
    # Tracks: an object enters or leaves during every track question.
    for item in by_type["track"]:
        assert any(
            t["keyframes"][0]["frame"] > 0 or t["keyframes"][-1]["outside"]
            for t in item.answer.payload["tracks"]
        )
    # Masks: each object's visible pixels, at least two per question, never two on one pixel.
    for item in by_type["mask"]:
        masks = [rle.decode(m["rle"]) for m in item.answer.payload["masks"]]
        assert len(masks) >= 2 and all(m.sum() >= bank.MIN_SIDE**2 // 2 for m in masks)
        assert (np.sum(masks, axis=0) <= 1).all()
        assert {m["label"] for m in item.answer.payload["masks"]} <= set(bank.CLASSES)
    # Polygons are the rectangles' exact outlines.
    for item in by_type["polygon"]:
        assert all(len(p["points"]) == 4 for p in item.answer.payload["polygons"])
    # Events: an object enters or leaves, so some event has an edge inside the range; a worker
    # marking the whole range for everything does not pass.
    for item in by_type["event"]:
        events = item.answer.payload["events"]
        assert any(e["start"] > item.frame_start or e["end"] < item.frame_end for e in events)
        lazy = [
            {"label": c, "start": item.frame_start, "end": item.frame_end} for c in bank.CLASSES
        ]
        lazy_frames = validate_payload({"events": lazy}, item_context(item)).frames
        assert quality_qualifying.item_score(item, lazy_frames) < 0.7


def test_seeding_twice_creates_nothing_new(media):
    bank.seed_qualifications()
    before = (QualificationItem.objects.count(), QualificationAnswer.objects.count())
    files = _files(media)
    out = io.StringIO()
    call_command("seed_qualifications", stdout=out)
    assert "0 qualification question(s) created" in out.getvalue()
    assert (QualificationItem.objects.count(), QualificationAnswer.objects.count()) == before
    assert _files(media) == files
    # A question an admin retired stays retired and is not made again.
    QualificationItem.objects.filter(annotation_type="bbox", position=1).update(is_active=False)
    assert bank.seed_qualifications().created == []


def test_a_type_an_admin_wrote_a_test_for_is_left_alone(media):
    item = QualificationItem.objects.create(
        annotation_type="polygon", label_classes=["car"], frames=[0]
    )
    QualificationAnswer.objects.create(
        item=item,
        payload={"polygons": [{"frame": 0, "label": "car", "points": [[0, 0], [9, 0], [0, 9]]}]},
    )
    result = bank.seed_qualifications()
    assert set(result.skipped) == {"polygon"}
    assert QualificationItem.objects.filter(annotation_type="polygon").count() == 1
    out = io.StringIO()
    call_command("seed_qualifications", "track", stdout=out)
    assert "track: already seeded" in out.getvalue()
    with pytest.raises(CommandError, match="nope"):
        call_command("seed_qualifications", "nope")


def test_workers_take_the_seeded_test_and_its_urls_tell_nothing(media, client_for):
    bank.seed_qualifications(types=["bbox"])
    client = client_for(WorkerFactory())
    questions = client.get("/api/work/qualifications/bbox/").json()["questions"]
    assert len(questions) == bank.QUESTIONS
    for q in questions:
        assert all(f["url"].startswith("/media/qualification/bbox/") for f in q["frames"])
        assert default_storage.exists(q["frames"][0]["url"].removeprefix("/media/"))
    text = json.dumps(questions)
    assert "video" not in text and "answer" not in text and "seeded" not in text
    items = QualificationItem.objects.filter(annotation_type="bbox").select_related("answer")
    r = client.post(
        "/api/work/qualifications/bbox/",
        {"answers": {str(i.pk): i.answer.payload for i in items}},
        format="json",
    )
    assert (r.json()["status"], r.json()["score"]) == ("passed", 1.0)


def _gold_job(kind: str = "track"):
    job = ready_job(n=1, gold=1, annotation_type=kind)
    stored = store_frames(job)
    mt = MicroTask.objects.get(job=job, is_gold=True)
    payload = {
        "tracks": [
            {
                "id": 4,
                "label": "car",
                "keyframes": [
                    {"frame": mt.frame_start, "box": [10, 10, 90, 60]},
                    {"frame": mt.frame_end, "box": [50, 20, 130, 70]},
                ],
            }
        ]
    }
    quality.gold_answer_set(microtask_id=mt.pk, payload=payload, by=job.requester)
    return job, mt, stored


def test_a_gold_microtask_is_copied_into_the_qualification_test(media):
    bank.seed_qualifications(types=["track"])
    job, mt, stored = _gold_job()
    item = quality_qualifying.qualification_item_from_gold(microtask_id=mt.pk)
    assert item.annotation_type == "track" and item.is_active
    assert item.position == bank.QUESTIONS + 1
    assert (item.frame_start, item.frame_end, item.frames) == (mt.frame_start, mt.frame_end, [])
    assert item.label_classes == job.label_classes and item.instructions == job.instructions
    assert item.answer.payload == mt.gold_answer.payload
    frames = item.manifest["frames"]
    assert [f["frame"] for f in frames] == list(range(mt.frame_start, mt.frame_end + 1))
    for f in frames:
        # A copy of the image in a folder of its own: the name says nothing of the video.
        assert f["image"].startswith("qualification/track/") and "video" not in f["image"]
        with default_storage.open(f["image"]) as fh:
            assert fh.read() == stored[f"{mt.video.frames_prefix}/{f['frame']:06d}.jpg"]
    validated = validate_payload(item.answer.payload, item_context(item))
    assert quality_qualifying.item_score(item, validated.frames) == 1.0
    with pytest.raises(Conflict):
        quality_qualifying.qualification_item_from_gold(microtask_id=mt.pk)
    regular = MicroTask.objects.get(job=job, is_gold=False)
    with pytest.raises(Conflict):
        quality_qualifying.qualification_item_from_gold(microtask_id=regular.pk)


def test_the_admin_action_copies_gold_and_reports_what_it_cannot(media):
    job, mt, _ = _gold_job()
    regular = MicroTask.objects.get(job=job, is_gold=False)
    client = Client()
    client.force_login(AdminFactory())
    r = client.post(
        "/admin/tasks/microtask/",
        {"action": "copy_to_qualification", "_selected_action": [mt.pk, regular.pk]},
        follow=True,
    )
    assert r.status_code == 200
    text = r.content.decode()
    assert "1 qualification question(s) created" in text
    assert f"Microtask #{regular.pk}: " in text
    assert QualificationItem.objects.get().manifest[bank.SOURCE_KEY] == mt.pk


def test_load_demo_seeds_the_tests_and_leaves_worker2_a_test_to_take(media):
    call_command("load_demo", "--users-only", stdout=io.StringIO())
    for kind in AnnotationType.values:
        assert QualificationItem.objects.filter(annotation_type=kind).count() == bank.QUESTIONS

    def passed(username):
        return set(
            Qualification.objects.filter(
                worker=User.objects.get(username=username), status=QualificationStatus.PASSED
            ).values_list("annotation_type", flat=True)
        )

    assert passed("worker") == {"bbox", "track"}
    assert passed("worker2") == {"bbox"}
    call_command("load_demo", "--users-only", stdout=io.StringIO())
    assert QualificationItem.objects.count() == bank.QUESTIONS * len(AnnotationType.values)
