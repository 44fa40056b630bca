"""Attributes and relations end to end through the API on PostgreSQL: a requester creates a box
job with attributes per class and relation predicates, uploads and processes a real video; three
workers claim and submit through the worker API; consensus aggregates the attributes (Dawid-Skene
per attribute, weighted median for numbers) and relations (vote over triplets); the work is
approved and paid; the COCO and CVAT exports carry both, read back with pycocotools."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import pytest
from pycocotools.coco import COCO

from marketplace.models import Job, JobStatus
from payments.escrow import escrow_fund
from quality.models import ConsensusResult
from tasks import claiming
from tasks.models import Assignment, AssignmentStatus, MicroTask, MicroTaskStatus
from tests.faults.invariants import assert_invariants
from tests.tasks.claim_fixtures import qualified_worker
from tests.tasks.ingest_helpers import make_clip, upload

pytestmark = pytest.mark.django_db(transaction=True)

ATTRIBUTES = {
    "car": [
        {"name": "occluded", "type": "bool"},
        {"name": "colour", "type": "choice", "values": ["red", "blue"]},
        {"name": "speed", "type": "number", "min": 0, "max": 200},
    ],
    "person": [{"name": "pose", "type": "choice", "values": ["standing", "sitting"]}],
}
# What each of three workers says about the car and the person on every frame.
SAID = [
    {"colour": "red", "occluded": True, "speed": 40, "pose": "sitting", "predicate": "rides"},
    {"colour": "red", "occluded": True, "speed": 50, "pose": "sitting", "predicate": "rides"},
    {"colour": "blue", "occluded": False, "speed": 190, "pose": "standing", "predicate": "holds"},
]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def no_gold(monkeypatch):
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)


def _payload(task: dict, k: int, said: dict) -> dict:
    boxes, relations = [], []
    for frame in task["annotate_frames"]:
        person = len(boxes)
        boxes.append(
            {
                "frame": frame,
                "label": "person",
                "box": [20 + k, 10, 40 + k, 60],
                "attributes": {"pose": said["pose"]},
            }
        )
        boxes.append(
            {
                "frame": frame,
                "label": "car",
                "box": [10, 40 - k, 90, 80 - k],
                "attributes": {
                    "colour": said["colour"],
                    "occluded": said["occluded"],
                    "speed": said["speed"],
                },
            }
        )
        relations.append({"subject": person, "predicate": said["predicate"], "object": person + 1})
    return {"boxes": boxes, "relations": relations}


def test_attributes_and_relations_from_job_creation_to_export(
    requester_client, requester, client_for, tmp_path, no_gold
):
    responses = []
    created = requester_client.post(
        "/api/jobs/",
        {
            "title": "Riders",
            "annotation_type": "bbox",
            "label_classes": ["car", "person"],
            "label_attributes": ATTRIBUTES,
            "relation_predicates": ["rides", "holds"],
            "overlap_min": 3,
            "overlap_max": 3,
            "gold_rate": 0.0,
            "frame_step": 10,
            "frames_per_task": 2,
            "expected_objects": 2,
            "budget": 1_000_000,
            "currency": "usd",
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    job_id = created.json()["id"]
    clip = make_clip(tmp_path, frames=40)
    responses.append(upload(requester_client, job_id, ("riders.mp4", clip.data)))
    responses.append(requester_client.post(f"/api/jobs/{job_id}/process/"))
    assert responses[-1].status_code == 202
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.READY
    escrow_fund(job=job, amount=job.budget, key=f"attrs-e2e-{job.pk}")
    responses.append(requester_client.post(f"/api/jobs/{job_id}/publish/"))
    assert responses[-1].status_code == 200, responses[-1].content
    microtasks = list(MicroTask.objects.filter(job_id=job_id, is_gold=False))
    assert microtasks

    workers = [qualified_worker("bbox") for _ in SAID]
    for k, (worker, said) in enumerate(zip(workers, SAID, strict=True)):
        client = client_for(worker)
        for _ in microtasks:
            claim = client.post("/api/work/claim/", {}, format="json")
            responses.append(claim)
            assert claim.status_code == 201, claim.content
            body = claim.json()
            assert body["job"]["attributes"] == ATTRIBUTES
            assert body["job"]["predicates"] == ["rides", "holds"]
            url = f"/api/work/assignments/{body['id']}/submit/"
            payload = _payload(body["task"], k, said)
            bad = json.loads(json.dumps(payload))
            bad["relations"][0]["predicate"] = "drives"
            bad["boxes"][1]["attributes"]["speed"] = 999
            refused = client.post(url, {"payload": bad, "active_seconds": 30}, format="json")
            responses.append(refused)
            assert refused.status_code == 400
            fields = refused.json()["error"]["fields"]
            assert set(fields) >= {"relations[0].predicate", "boxes[1].attributes.speed"}, fields
            assert Assignment.objects.get(pk=body["id"]).status == AssignmentStatus.CLAIMED
            submit = client.post(url, {"payload": payload, "active_seconds": 30}, format="json")
            responses.append(submit)
            assert submit.status_code == 200, submit.content

    # Three replicas each: nothing is left for a fourth worker.
    extra = qualified_worker("bbox")
    client = client_for(extra)
    assert client.post("/api/work/claim/", {}, format="json").status_code == 404

    for mt in microtasks:
        mt.refresh_from_db()
        assert mt.status == MicroTaskStatus.COMPLETE
        result = ConsensusResult.objects.get(microtask=mt, is_current=True)
        for frame in mt.frames:
            shapes = result.frames[str(frame)]
            car = next(s for s in shapes if s["label"] == "car")
            person = next(s for s in shapes if s["label"] == "person")
            assert car["attributes"] == {"colour": "red", "occluded": True, "speed": 50.0}
            assert person["attributes"] == {"pose": "sitting"}
            assert person["relations"] == [{"predicate": "rides", "object": shapes.index(car)}]
    # Paid: the two who agree approved with pay, the ledger balanced, every invariant holds.
    # The third drew the same boxes with every attribute and relation wrong: its agreement is
    # the shapes' weight alone (``quality.policy.blend_agreement``), under the job's threshold,
    # so its work waits for the requester's review.
    done = Assignment.objects.filter(microtask__job_id=job_id)
    assert done.count() == 3 * len(microtasks)
    agreeing = done.exclude(worker=workers[2])
    assert set(agreeing.values_list("status", flat=True)) == {AssignmentStatus.APPROVED}
    assert all(a.pay_amount and a.pay_amount > 0 for a in agreeing)
    odd = done.filter(worker=workers[2])
    assert set(odd.values_list("status", flat=True)) == {AssignmentStatus.SUBMITTED}
    for a in odd:  # the requester looks and approves: the results become deliverable
        responses.append(requester_client.post(f"/api/submissions/{a.pk}/approve/"))
        assert responses[-1].status_code == 200, responses[-1].content
    assert all(a.pay_amount and a.pay_amount > 0 for a in done.all())

    coco_response = requester_client.get(f"/api/jobs/{job_id}/export/coco/")
    assert coco_response.status_code == 200 and coco_response.streaming
    doc = json.loads(b"".join(coco_response.streaming_content))
    coco = COCO()
    coco.dataset = doc
    coco.createIndex()
    frames = sum(len(mt.frames) for mt in microtasks)
    assert len(coco.getAnnIds()) == 2 * frames
    cars = coco.loadAnns(coco.getAnnIds(catIds=coco.getCatIds(catNms=["car"])))
    assert all(
        a["attributes"]["colour"] == "red" and a["attributes"]["speed"] == 50.0 for a in cars
    )
    assert all(a["attributes"]["occluded"] is True for a in cars)
    assert len(doc["relations"]) == frames
    anns = coco.anns
    for rel in doc["relations"]:
        assert rel["predicate"] == "rides"
        subject, obj = anns[rel["subject_id"]], anns[rel["object_id"]]
        assert subject["image_id"] == obj["image_id"] == rel["image_id"]
        assert coco.cats[subject["category_id"]]["name"] == "person"
        assert coco.cats[obj["category_id"]]["name"] == "car"

    cvat = requester_client.get(f"/api/jobs/{job_id}/export/cvat/")
    root = ET.fromstring(b"".join(cvat.streaming_content))
    declared = {
        a.findtext("name"): (a.findtext("input_type"), a.findtext("values"))
        for label in root.iter("label")
        if label.findtext("name") == "car"
        for a in label.iter("attribute")
    }
    assert declared == {
        "occluded": ("checkbox", "false"),
        "colour": ("select", "red\nblue"),
        "speed": ("number", "0\n200\n1"),
    }
    car_boxes = [
        box
        for track in root.iter("track")
        if track.get("label") == "car"
        for box in track.iter("box")
        if box.get("outside") == "0"
    ]
    assert len(car_boxes) == frames
    for box in car_boxes:
        assert {a.get("name"): a.text for a in box.iter("attribute")} == {
            "colour": "red",
            "occluded": "true",
            "speed": "50",
        }
    assert_invariants(responses=responses)
