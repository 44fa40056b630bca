"""A mask job end to end through the API on PostgreSQL, Stripe's local server and eager Celery:
create (STAPLE consensus) → upload and ingest → quote and fund by Checkout → publish → three
workers claim and submit masks → consensus → pay → export COCO → read back with pycocotools."""

from __future__ import annotations

import json

import numpy as np
import pytest

from marketplace.models import JobStatus
from payments.models import Funding
from payments.selectors import escrow_balance
from quality.models import ConsensusDecision, ConsensusResult
from quality.simulator import scene_truth
from tasks import rle
from tasks.models import Assignment, AssignmentStatus, MicroTaskStatus
from tests.payments.conftest import pay_checkout, stripe_server  # noqa: F401 - a fixture
from tests.payments.test_checkout import completed_event, post_event  # noqa: F401 - a fixture
from tests.tasks.claim_fixtures import qualified_worker
from tests.tasks.ingest_helpers import make_clip, upload

pytestmark = pytest.mark.django_db(transaction=True)
PYCOCOTOOLS_WARNING = "ignore:__array__ implementation doesn't accept a copy keyword"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _ellipse(box, h, w, grow=0.0):
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    rx, ry = max((x2 - x1) / 2 * (1 + grow), 1), max((y2 - y1) / 2 * (1 + grow), 1)
    yy, xx = np.mgrid[:h, :w]
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1


def _payload(claim: dict, scene, *, grow: float) -> dict:
    task = claim["task"]
    w, h = task["width"], task["height"]
    sx, sy = w / scene.width, h / scene.height
    frames = [f["frame"] for f in task["frames"]]
    items = []
    classes = claim["job"]["classes"]
    for f, fb in scene_truth(scene, frames, classes).items():
        for box, lab in zip(fb.boxes, fb.labels, strict=True):
            x1, y1, x2, y2 = box
            m = _ellipse([x1 * sx, y1 * sy, x2 * sx, y2 * sy], h, w, grow)
            if m.sum() > 20:
                items.append({"frame": int(f), "label": classes[lab], "rle": rle.encode(m)})
    return {"masks": items}


@pytest.mark.filterwarnings(PYCOCOTOOLS_WARNING)
def test_a_mask_job_through_the_api(
    requester,
    requester_client,
    client_for,
    stripe_server,  # noqa: F811 - the fixture imported above
    post_event,  # noqa: F811 - the fixture imported above
    tmp_path,
    monkeypatch,
):
    from pycocotools.coco import COCO

    from tasks import claiming

    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)  # no gold in this job
    r = requester_client.post(
        "/api/jobs/",
        {
            "title": "Segment the street",
            "annotation_type": "mask",
            "label_classes": ["car", "person"],
            "consensus_method": "staple",
            "budget": 500_000,
            "currency": "usd",
            "overlap_min": 3,
            "overlap_max": 3,
            "gold_rate": 0.0,
            "frame_step": 10,
            "frames_per_task": 3,
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    job_id = r.json()["id"]
    assert r.json()["consensus_method"] == "staple"
    clip = make_clip(tmp_path, frames=30, width=160, height=120, n_objects=3)
    assert upload(requester_client, job_id, ("street.mp4", clip.data)).status_code == 201
    assert requester_client.post(f"/api/jobs/{job_id}/process/").status_code == 202
    assert requester_client.get(f"/api/jobs/{job_id}/").json()["status"] == JobStatus.READY

    quote = requester_client.post(f"/api/payments/jobs/{job_id}/quote/", {}, format="json")
    assert quote.status_code == 200, quote.content
    r = requester_client.post(f"/api/payments/jobs/{job_id}/fund/", {}, format="json")
    assert r.status_code == 201, r.content
    funding = Funding.objects.get(pk=r.json()["funding"])
    pay_checkout(stripe_server, funding)
    assert post_event(completed_event(stripe_server, funding)).status_code == 200
    r = requester_client.post(f"/api/jobs/{job_id}/publish/", {}, format="json")
    assert r.status_code in (200, 201), r.content

    crowd = [client_for(qualified_worker("mask")) for _ in range(3)]
    for k, client in enumerate(crowd):
        claim = client.post("/api/work/claim/", {}, format="json")
        assert claim.status_code == 201, claim.content
        body = claim.json()
        assert body["job"]["annotation_type"] == "mask"
        payload = _payload(body, clip.scene, grow=(-0.06, 0.0, 0.06)[k])
        assert payload["masks"]
        r = client.post(
            f"/api/work/assignments/{body['id']}/submit/",
            {"payload": payload, "active_seconds": 40},
            format="json",
        )
        assert r.status_code in (200, 201), r.content
    first = Assignment.objects.get(pk=body["id"])
    result = ConsensusResult.objects.get(microtask=first.microtask, is_current=True)
    assert result.algorithm == "masks-staple-v1"
    assert result.decision == ConsensusDecision.ACCEPT
    first.microtask.refresh_from_db()
    assert first.microtask.status == MicroTaskStatus.COMPLETE
    done = Assignment.objects.filter(microtask=first.microtask)
    assert {a.status for a in done} == {AssignmentStatus.APPROVED}
    assert all(a.pay_amount > 0 for a in done)
    assert escrow_balance(job=first.microtask.job).paid >= sum(a.pay_amount for a in done)

    r = requester_client.get(f"/api/jobs/{job_id}/export/coco/")
    assert r.status_code == 200
    doc = json.loads(b"".join(r.streaming_content))
    coco = COCO()
    coco.dataset = doc
    coco.createIndex()
    stored = [s for shapes in result.frames.values() for s in shapes]
    assert len(doc["annotations"]) == len(stored) > 0
    # What pycocotools reads is the consensus, in the source video's pixels (160x120 here).
    video = first.microtask.video
    assert (video.width, video.height) == (video.frame_width, video.frame_height) == (160, 120)
    by_frame = {img["id"]: img["frame_id"] for img in doc["images"]}
    names = {c["id"]: c["name"] for c in doc["categories"]}
    for ann in doc["annotations"]:
        mask = coco.annToMask(ann).astype(bool)
        assert mask.shape == (120, 160)
        candidates = [
            rle.decode(s["rle"])
            for s in result.frames[str(by_frame[ann["image_id"]])]
            if s["label"] == names[ann["category_id"]]
        ]
        assert any((mask == c).all() for c in candidates)
        assert mask.sum() == ann["area"] > 0
