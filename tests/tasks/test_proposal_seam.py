"""The seam proposal source: the previous microtask's consensus boxes carried across the seam into
the next microtask's frames by the tracker, on a generated clip with known truth."""

import pytest

from marketplace.models import JobStatus
from quality.models import ConsensusResult
from tasks import claiming, proposals
from tasks.annotations import validate_payload
from tasks.models import MicroTask, MicroTaskStatus, Proposal, ProposalConfig
from tasks.proposal_sources import box_iou
from tests.tasks.proposal_helpers import clip_job, clip_scene

SCENE = clip_scene()


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def truth_frames(first: int, last: int) -> dict:
    """The clip's truth as stored consensus shapes (``ConsensusResult.frames``)."""
    return {
        str(f): [
            {"label": t.cls, "box": [t.x, t.y, t.x + t.w, t.y + t.h], "track": t.track_id}
            for t in SCENE.boxes(f)
            if not t.outside and t.w * t.h >= 30
        ]
        for f in range(first, last + 1)
    }


def settle(mt: MicroTask) -> None:
    ConsensusResult.objects.create(
        microtask=mt,
        algorithm="tracks-v1",
        frames=truth_frames(mt.frame_start, mt.frame_end),
        agreement=1.0,
        replicas=3,
        decision="accept",
        is_current=True,
    )
    MicroTask.objects.filter(pk=mt.pk).update(status=MicroTaskStatus.COMPLETE)


def seam_job(annotation_type="track", step=6):
    job = clip_job(
        SCENE, annotation_type=annotation_type, tasks=[(0, 34), (30, 59)], step=step,
        status=JobStatus.PUBLISHED,
    )  # fmt: skip
    ProposalConfig.objects.create(job=job, sources=["seam"])
    first, second = MicroTask.objects.filter(job=job).order_by("index")
    return job, first, second


def matched(mt: MicroTask, shapes: list, kind: str) -> tuple[int, int, int, int]:
    """On the microtask's looked-at frames: (truth boxes matched at IoU ≥ 0.5 by the proposal,
    truth boxes, proposed boxes matching a truth box, proposed boxes)."""
    key = "tracks" if kind == "track" else "boxes"
    frames = validate_payload({key: shapes}, claiming.annotation_context(mt)).frames
    looked = proposals.request_for(mt).frames
    hits = total = right = proposed_n = 0
    for f in looked:
        proposed = [s["box"] for s in frames.get(str(f), [])]
        truths = [
            [t.x, t.y, t.x + t.w, t.y + t.h]
            for t in SCENE.boxes(f)
            if not t.outside and t.w * t.h >= 30
        ]
        total += len(truths)
        hits += sum(max((box_iou(t, b) for b in proposed), default=0) >= 0.5 for t in truths)
        proposed_n += len(proposed)
        right += sum(max((box_iou(t, b) for t in truths), default=0) >= 0.5 for b in proposed)
    return hits, total, right, proposed_n


# A track microtask stores every frame (the tracker sees them all); a box microtask only its
# sampled ones, so the tracker steps from one to the next: it holds at a dense sampling.
@pytest.mark.parametrize(("kind", "step"), [("track", 6), ("bbox", 2)])
def test_seam_carries_the_previous_consensus_into_the_next_microtask(db, media, kind, step):
    job, first, second = seam_job(kind, step)
    settle(first)
    while proposals.job_proposals_compute_batch(job_id=job.pk).remaining:
        pass
    head = Proposal.objects.get(microtask=first, source="seam")
    assert head.status == "invalid" and "first microtask" in head.error
    p = Proposal.objects.get(microtask=second, source="seam")
    assert p.status == "ok", p.error
    assert p.model_version == "seam-1" and p.shapes
    hits, total, right, proposed = matched(second, p.shapes, kind)
    assert total >= 8
    # One object stays tracked to the end, the other until the tracker loses it (frame ~47):
    # where it is lost the proposal stops instead of drifting onto something else.
    assert hits / total >= 0.6, (hits, total)
    assert right / proposed >= 0.9, (right, proposed)


def test_seam_waits_for_the_previous_consensus_then_is_computed(
    db, media, django_capture_on_commit_callbacks
):
    job, first, second = seam_job()
    while proposals.job_proposals_compute_batch(job_id=job.pk).remaining:
        pass
    waiting = Proposal.objects.get(microtask=second, source="seam")
    assert waiting.status == "failed" and waiting.error == proposals.SEAM_WAITING
    settle(first)
    with django_capture_on_commit_callbacks(execute=True):
        assert proposals.seam_ready(microtask=first) is True
    p = Proposal.objects.get(microtask=second, source="seam")
    assert p.status == "ok" and p.shapes
    assert proposals.seam_ready(microtask=first) is False  # nothing waits any more
