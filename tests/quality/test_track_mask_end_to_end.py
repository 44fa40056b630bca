"""A track job with masks end to end through the API on PostgreSQL, Stripe's local server and
eager Celery: create (track_masks, STAPLE) → upload and ingest → quote and fund → publish →
three workers claim and submit tracks with a mask per keyframe → consensus → pay → export CVAT
for video and COCO → read both back (pycocotools for COCO)."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import numpy as np
import pytest

from marketplace.models import Job, JobStatus
from payments.models import Funding
from payments.selectors import escrow_balance
from quality.models import ConsensusDecision, ConsensusResult
from quality.simulator import scene_truth
from tasks import exports, rle
from tasks.models import Assignment, AssignmentStatus, MicroTaskStatus
from tasks.quoting import microtask_prices
from tests.payments.conftest import pay_checkout, stripe_server  # noqa: F401 - a fixture
from tests.payments.test_checkout import completed_event, post_event  # noqa: F401 - a fixture
from tests.tasks.claim_fixtures import qualified_worker
from tests.tasks.ingest_helpers import make_clip, upload

pytestmark = pytest.mark.django_db(transaction=True)
PYCOCOTOOLS_WARNING = "ignore:__array__ implementation doesn't accept a copy keyword"
STEP = 5


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
    """Each object a track with a keyframe every STEP frames, a mask (an ellipse in its box,
    larger or smaller by ``grow``) on each visible keyframe."""
    task = claim["task"]
    w, h = task["width"], task["height"]
    sx, sy = w / scene.width, h / scene.height
    classes = claim["job"]["classes"]
    keyframes = [*range(task["frame_start"], task["frame_end"] + 1, STEP)]
    truth = scene_truth(scene, keyframes, classes)
    tracks: dict[int, dict] = {}
    for f in keyframes:
        seen = set()
        for box, lab, tid in zip(truth[f].boxes, truth[f].labels, truth[f].ids, strict=True):
            x1, y1 = max(box[0] * sx, 0.0), max(box[1] * sy, 0.0)
            x2, y2 = min(box[2] * sx, w), min(box[3] * sy, h)
            if x2 - x1 < 4 or y2 - y1 < 4:
                continue
            seen.add(int(tid))
            t = tracks.setdefault(
                int(tid), {"id": int(tid), "label": classes[lab], "keyframes": []}
            )
            kf = {"frame": f, "box": [x1, y1, x2, y2]}
            m = _ellipse([x1, y1, x2, y2], h, w, grow)
            if m.sum() > 20:
                kf["mask"] = rle.encode(m)
            t["keyframes"].append(kf)
        for tid, t in tracks.items():  # an object gone at this keyframe leaves the frame here
            last = t["keyframes"][-1]
            if tid not in seen and not last.get("outside") and last["frame"] < f:
                t["keyframes"].append({"frame": f, "outside": True})
    return {"tracks": list(tracks.values())}


@pytest.mark.filterwarnings(PYCOCOTOOLS_WARNING)
def test_a_track_job_with_masks_through_the_api(
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
            "title": "Follow and segment the cars",
            "annotation_type": "track",
            "track_masks": True,
            "label_classes": ["car", "person"],
            "consensus_method": "staple",
            "budget": 500_000,
            "currency": "usd",
            "overlap_min": 3,
            "overlap_max": 3,
            "gold_rate": 0.0,
            "segment_frames": 30,
            "overlap_frames": 0,
            "keyframe_step": STEP,
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    job_id = r.json()["id"]
    clip = make_clip(tmp_path, frames=30, width=160, height=120, n_objects=3, motion=1.0)
    assert upload(requester_client, job_id, ("street.mp4", clip.data)).status_code == 201
    assert requester_client.post(f"/api/jobs/{job_id}/process/").status_code == 202
    assert requester_client.get(f"/api/jobs/{job_id}/").json()["status"] == JobStatus.READY

    quote = requester_client.post(f"/api/payments/jobs/{job_id}/quote/", {}, format="json")
    assert quote.status_code == 200, quote.content
    # The masks add a mask's work per keyframe and object to each microtask's price.
    job = Job.objects.get(pk=job_id)
    with_masks, _ = microtask_prices(job=job)
    job.track_masks = False  # in memory only: the same microtasks without masks
    without, _ = microtask_prices(job=job)
    for a, b in zip(with_masks, without, strict=True):
        assert a.price.price > b.price.price
        assert a.price.expected_seconds > b.price.expected_seconds
    r = requester_client.post(f"/api/payments/jobs/{job_id}/fund/", {}, format="json")
    assert r.status_code == 201, r.content
    funding = Funding.objects.get(pk=r.json()["funding"])
    pay_checkout(stripe_server, funding)
    assert post_event(completed_event(stripe_server, funding)).status_code == 200
    r = requester_client.post(f"/api/jobs/{job_id}/publish/", {}, format="json")
    assert r.status_code in (200, 201), r.content

    crowd = [client_for(qualified_worker("track")) for _ in range(3)]
    for k, client in enumerate(crowd):
        claim = client.post("/api/work/claim/", {}, format="json")
        assert claim.status_code == 201, claim.content
        body = claim.json()
        assert body["job"]["annotation_type"] == "track" and body["job"]["track_masks"] is True
        payload = _payload(body, clip.scene, grow=(-0.06, 0.0, 0.06)[k])
        assert any("mask" in kf for t in payload["tracks"] for kf in t["keyframes"])
        if k == 0:  # a mask on an outside keyframe: refused on its path, nothing stored
            bad = json.loads(json.dumps(payload))
            first = bad["tracks"][0]
            first["keyframes"].append(
                {
                    "frame": body["task"]["frame_end"],
                    "outside": True,
                    "mask": first["keyframes"][0]["mask"],
                }
            )
            first["keyframes"] = [
                kf for kf in first["keyframes"][:-1] if kf["frame"] < body["task"]["frame_end"]
            ] + first["keyframes"][-1:]
            r = client.post(
                f"/api/work/assignments/{body['id']}/submit/",
                {"payload": bad, "active_seconds": 40},
                format="json",
            )
            assert r.status_code == 400, r.content
            path = f"tracks[0].keyframes[{len(first['keyframes']) - 1}].mask"
            assert path in r.json()["error"]["fields"]
            assert Assignment.objects.get(pk=body["id"]).status == AssignmentStatus.CLAIMED
        r = client.post(
            f"/api/work/assignments/{body['id']}/submit/",
            {"payload": payload, "active_seconds": 60},
            format="json",
        )
        assert r.status_code in (200, 201), r.content

    first = Assignment.objects.get(pk=body["id"])
    result = ConsensusResult.objects.get(microtask=first.microtask, is_current=True)
    assert result.decision == ConsensusDecision.ACCEPT
    first.microtask.refresh_from_db()
    assert first.microtask.status == MicroTaskStatus.COMPLETE
    done = Assignment.objects.filter(microtask=first.microtask)
    assert {a.status for a in done} == {AssignmentStatus.APPROVED}
    assert all(a.pay_amount > 0 for a in done)
    assert escrow_balance(job=first.microtask.job).paid >= sum(a.pay_amount for a in done)

    # The consensus: fused masks on keyframes only, near the middle worker's (the truth).
    masked = {
        (int(f), s["track"]): rle.decode(s["rle"])
        for f, shapes in result.frames.items()
        for s in shapes
        if s.get("rle")
    }
    assert masked and {f % STEP for f, _ in masked} == {0}
    middle = _payload(body, clip.scene, grow=0.0)  # the last claim's task: the same microtask
    truth_masks = [
        rle.decode(kf["mask"]) for t in middle["tracks"] for kf in t["keyframes"] if "mask" in kf
    ]
    for m in masked.values():
        best = max(float((m & t).sum() / (m | t).sum()) for t in truth_masks)
        assert best > 0.85

    # CVAT for video: each masked object's <mask> track, on keyframes only, decodes to the fused
    # masks (the export is in the source video's pixels, which these frames are: 160x120).
    r = requester_client.get(f"/api/jobs/{job_id}/export/cvat/")
    assert r.status_code == 200
    root = ET.fromstring(b"".join(r.streaming_content))
    mask_shapes = [
        m for t in root.findall("track") for m in t.findall("mask") if m.get("outside") == "0"
    ]
    assert len(mask_shapes) == len(masked)
    decoded = [
        exports.cvat_mask_decode(
            [int(v) for v in m.get("rle").split(", ")],
            *(int(m.get(k)) for k in ("left", "top", "width", "height")),
            frame_height=120,
            frame_width=160,
        )
        for m in mask_shapes
    ]
    for m in masked.values():
        assert any((m == d).all() for d in decoded)
    assert all(t.get("group_id") for t in root.findall("track") if t.findall("mask"))

    # COCO: an RLE segmentation on each keyframe with a mask, read back by pycocotools.
    r = requester_client.get(f"/api/jobs/{job_id}/export/coco/")
    assert r.status_code == 200
    doc = json.loads(b"".join(r.streaming_content))
    coco = COCO()
    coco.dataset = doc
    coco.createIndex()
    with_mask = [a for a in doc["annotations"] if a["segmentation"]]
    assert len(with_mask) == len(masked)
    frame_of = {img["id"]: img["frame_id"] for img in doc["images"]}
    for ann in with_mask:
        got = coco.annToMask(ann).astype(bool)
        f = frame_of[ann["image_id"]]
        assert any((got == m).all() for (kf, _), m in masked.items() if kf == f)
        assert ann["attributes"]["track_id"] is not None
