"""Consensus of a track job with masks, through the claim and submit API: the replicas' keyframe
masks are fused onto the consensus track, and a replica whose mask disagrees agrees less."""

from __future__ import annotations

import numpy as np
import pytest

from marketplace.models import Job
from quality.models import ConsensusResult
from tasks import rle
from tasks.models import Assignment, MicroTask
from tests.tasks.claim_fixtures import HEIGHT, WIDTH, qualified_worker, ready_job

pytestmark = pytest.mark.django_db(transaction=True)
CLAIM = "/api/work/claim/"


def _rect(x1, y1, x2, y2):
    m = np.zeros((HEIGHT, WIDTH), bool)
    m[y1:y2, x1:x2] = True
    return m


@pytest.mark.parametrize("method", ["vote", "staple"])
def test_keyframe_masks_are_fused_and_a_sloppy_mask_lowers_agreement(client_for, method):
    from tasks import claiming

    job = ready_job(n=1, overlap=3, annotation_type="track", frames_per_task=20)
    Job.objects.filter(pk=job.pk).update(
        label_classes=["car", "person"], gold_rate=0.0, track_masks=True, consensus_method=method
    )
    claiming.job_publish(job=job, by=job.requester)
    mt = MicroTask.objects.get(job=job)
    s, e = mt.frame_start, mt.frame_end
    full = _rect(15, 15, 55, 85)
    half = _rect(15, 15, 35, 85)  # the sloppy one: half the object

    def payload(tid, mask):
        keyframes = [
            {"frame": s, "box": [10, 10, 60, 90], "mask": rle.encode(mask)},
            {"frame": e, "box": [40, 10, 90, 90]},
        ]
        return {"tracks": [{"id": tid, "label": "person", "keyframes": keyframes}]}

    ids = []
    for tid, mask in ((5, full), (7, full), (1, half)):
        c = client_for(qualified_worker("track"))
        r = c.post(CLAIM, {"job": job.pk}, format="json")
        assert r.status_code == 201, r.content
        ids.append(r.json()["id"])
        r = c.post(
            f"/api/work/assignments/{ids[-1]}/submit/",
            {"payload": payload(tid, mask), "active_seconds": 30},
            format="json",
        )
        assert r.status_code == 200, r.content
    result = ConsensusResult.objects.get(microtask=mt, is_current=True)
    (shape,) = result.frames[str(s)]
    assert (rle.decode(shape["rle"]) == full).all()
    assert all("rle" not in sh for f in range(s + 1, e + 1) for sh in result.frames[str(f)])
    per = {int(k): v for k, v in result.annotator_agreement.items()}
    assert per[ids[0]] == pytest.approx(per[ids[1]])
    assert per[ids[2]] < per[ids[0]] - 0.1  # Dice 2/3 against the fused mask, averaged in
    assert Assignment.objects.filter(pk__in=ids).count() == 3

    # The requester's review overlay draws the keyframe's mask and the track's box.
    from quality.overlay import frames_with_shapes

    view = frames_with_shapes(microtask=mt, layers=[{"frames": result.frames, "colour": "red"}])
    at = {f["frame"]: [sh["kind"] for sh in f["shapes"]] for f in view["frames"]}
    assert at[s] == ["mask", "box"] and at[s + 1] == ["box"]


def test_gold_of_a_track_job_with_masks_scores_the_keyframe_masks(client_for, monkeypatch):
    from quality.models import GoldResult
    from quality.services import gold_answer_set
    from tasks import claiming

    job = ready_job(n=2, overlap=1, annotation_type="track", frames_per_task=20)
    Job.objects.filter(pk=job.pk).update(label_classes=["car", "person"], track_masks=True)
    job.refresh_from_db()
    mt = MicroTask.objects.filter(job=job).order_by("index")[0]
    s, e = mt.frame_start, mt.frame_end
    full, half = _rect(15, 15, 55, 85), _rect(15, 15, 35, 85)

    def payload(mask):
        keyframes = [
            {"frame": s, "box": [10, 10, 60, 90], "mask": rle.encode(mask)},
            {"frame": e, "box": [40, 10, 90, 90]},
        ]
        return {"tracks": [{"id": 1, "label": "person", "keyframes": keyframes}]}

    gold_answer_set(microtask_id=mt.pk, payload=payload(full), by=job.requester)
    claiming.job_publish(job=job, by=job.requester)
    monkeypatch.setattr(claiming._rng, "random", lambda: 0.0)  # the gold microtask first
    c = client_for(qualified_worker("track"))
    r = c.post(CLAIM, {"job": job.pk}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["task"]["frame_start"] == s
    r = c.post(
        f"/api/work/assignments/{r.json()['id']}/submit/",
        {"payload": payload(half), "active_seconds": 30},
        format="json",
    )
    assert r.status_code == 200, r.content
    result = GoldResult.objects.get(microtask=mt)
    assert result.metrics["keyframe_mask_iou"] == pytest.approx(0.5)  # half the object painted
    assert result.score == pytest.approx(0.6 * 1.0 + 0.4 * 0.5, abs=1e-3)
