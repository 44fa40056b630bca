"""A mask job through claiming, gold scoring, consensus (vote and STAPLE), overlap and pay."""

from __future__ import annotations

import numpy as np
import pytest

from quality import services
from quality.models import ConsensusDecision, ConsensusResult
from tasks import claiming, rle
from tasks.models import Assignment, AssignmentStatus, MicroTask, MicroTaskStatus
from tests.factories import AdminFactory
from tests.tasks.claim_fixtures import HEIGHT, WIDTH

# Scoring runs on commit, as in production (tests/quality/test_services.py).
pytestmark = pytest.mark.django_db(transaction=True)


def _ellipse(box, grow=0.0):
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    rx, ry = (x2 - x1) / 2 * (1 + grow), (y2 - y1) / 2 * (1 + grow)
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    return ((xx - cx) / max(rx, 1)) ** 2 + ((yy - cy) / max(ry, 1)) ** 2 <= 1


def mask_payload(world, mt, *, grow=0.0, drop_every=0, noise=None):
    """Each true object as an ellipse in its box; ``grow`` makes sloppy edges, ``drop_every``
    misses objects, ``noise`` is a spammer's random mask."""
    items = []
    k = 0
    for f, fb in world.truth_for(mt).items():
        for box, lab in zip(fb.boxes, fb.labels, strict=True):
            k += 1
            if drop_every and k % drop_every == 0:
                continue
            m = _ellipse(box, grow)
            if noise is not None:  # a blob anywhere
                x, y = noise.integers(0, WIDTH - 60), noise.integers(0, HEIGHT - 60)
                m = _ellipse([x, y, x + noise.integers(10, 60), y + noise.integers(10, 60)])
            if m.any():
                items.append({"frame": int(f), "label": world.classes[lab], "rle": rle.encode(m)})
    return {"masks": items}


@pytest.mark.parametrize("method", ["vote", "staple"])
def test_mask_consensus_accepts_pays_and_measures_the_content(
    world_factory, workers, no_gold, method
):
    world = world_factory(n=1, overlap=3, annotation_type="mask", consensus_method=method)
    crowd = workers(3, "mask")
    for k, w in enumerate(crowd):
        a = claiming.assignment_claim(worker=w, job_id=world.job.pk)
        payload = mask_payload(world, a.microtask, grow=0.04 * k)
        claiming.assignment_submit(worker=w, assignment_id=a.pk, payload=payload)
    mt = MicroTask.objects.get(pk=a.microtask_id)
    result = ConsensusResult.objects.get(microtask=mt, is_current=True)
    assert result.algorithm == f"masks-{method}-v1"
    assert result.decision == ConsensusDecision.ACCEPT
    assert mt.status == MicroTaskStatus.COMPLETE
    assert mt.content_boundary > 0
    assert mt.content_area > 0  # the consensus masks' mean pixels per object, for pricing
    truth = mask_payload(world, mt)["masks"]
    assert mt.expected_objects == max(1, round(len(truth) / len(world.frames_of(mt))))
    stored = [s for shapes in result.frames.values() for s in shapes]
    assert len(stored) == len(truth)
    score = services.score_frames(
        job=world.job, answer=result.frames, submitted=_frames(world, mt, truth)
    )
    assert score.score > 0.9
    for a in Assignment.objects.filter(microtask=mt):
        assert a.status == AssignmentStatus.APPROVED and a.pay_amount > 0


def _frames(world, mt, items):
    out = {str(f): [] for f in world.frames_of(mt)}
    for it in items:
        out[str(it["frame"])].append({"label": it["label"], "rle": it["rle"]})
    return out


def test_a_spammer_among_mask_workers_lowers_agreement_and_adds_a_replica(
    world_factory, workers, no_gold
):
    world = world_factory(
        n=1, overlap=2, overlap_max=3, annotation_type="mask", agreement_threshold=0.9
    )
    good, spammer = workers(2, "mask")
    a = claiming.assignment_claim(worker=good, job_id=world.job.pk)
    claiming.assignment_submit(
        worker=good, assignment_id=a.pk, payload=mask_payload(world, a.microtask)
    )
    b = claiming.assignment_claim(worker=spammer, job_id=world.job.pk)
    noise = np.random.default_rng(3)
    claiming.assignment_submit(
        worker=spammer, assignment_id=b.pk, payload=mask_payload(world, b.microtask, noise=noise)
    )
    result = ConsensusResult.objects.get(microtask=a.microtask, is_current=True)
    assert result.agreement < 0.9
    assert result.decision == ConsensusDecision.ADD_REPLICA
    assert MicroTask.objects.get(pk=a.microtask_id).replica_target == 3


def test_mask_gold_is_scored_by_iou_per_class(world_factory, workers, gold_first):
    world = world_factory(n=1, gold=1, overlap=1, annotation_type="mask", gold_by="")
    (mt,) = world.gold()
    services.gold_answer_set(microtask_id=mt.pk, payload=mask_payload(world, mt), by=AdminFactory())
    (careful,) = workers(1, "mask")
    a = claiming.assignment_claim(worker=careful, job_id=world.job.pk)
    assert a.microtask_id == mt.pk
    claiming.assignment_submit(
        worker=careful, assignment_id=a.pk, payload=mask_payload(world, mt, grow=0.02)
    )
    a.refresh_from_db()
    assert a.gold_result.score > 0.9 and a.gold_result.passed is True
    answer = mt.gold_answer.frames
    sloppy = _frames(world, mt, mask_payload(world, mt, grow=0.9)["masks"])
    missing = _frames(world, mt, mask_payload(world, mt, drop_every=2)["masks"])
    s_sloppy = services.score_frames(job=world.job, answer=answer, submitted=sloppy)
    s_missing = services.score_frames(job=world.job, answer=answer, submitted=missing)
    assert s_sloppy.score < 0.6 and s_sloppy.frames_off
    assert 0.3 < s_missing.score < 0.9
    assert set(s_sloppy.metrics) == {"mean_iou", "mean_dice"}


def test_fraud_signals_see_masks_an_empty_and_a_copied_submission_are_flagged(
    world_factory, workers, no_gold
):
    from quality.models import FraudFlag

    world = world_factory(n=1, overlap=4, overlap_max=4, annotation_type="mask")
    honest_a, honest_b, copier, idler = workers(4, "mask")
    claims = {}
    for w, grow in ((honest_a, 0.0), (honest_b, 0.05)):
        a = claiming.assignment_claim(worker=w, job_id=world.job.pk)
        claims[w.pk] = a
        payload = mask_payload(world, a.microtask, grow=grow)
        claiming.assignment_submit(worker=w, assignment_id=a.pk, payload=payload)
    c = claiming.assignment_claim(worker=copier, job_id=world.job.pk)
    copied = mask_payload(world, c.microtask, grow=0.0)  # honest_a's masks, to the pixel
    claiming.assignment_submit(worker=copier, assignment_id=c.pk, payload=copied)
    d = claiming.assignment_claim(worker=idler, job_id=world.job.pk)
    claiming.assignment_submit(worker=idler, assignment_id=d.pk, payload={"masks": []})
    kinds = {(f.worker_id, f.kind) for f in FraudFlag.objects.all()}
    assert (copier.pk, "identical") in kinds
    assert (idler.pk, "empty") in kinds
    assert not {k for k in kinds if k[0] in (honest_a.pk, honest_b.pk)}
