"""Event jobs end to end over HTTP on PostgreSQL: create → upload and ingest → quote → fund →
publish → claim → submit (bad payloads refused field by field) → consensus → pay → export as
ActivityNet → read back."""

from __future__ import annotations

import json

import pytest

from marketplace.models import Job, JobStatus
from payments import pricing
from payments.escrow import escrow_fund
from payments.selectors import active_policy
from quality.events import EVENTS_ALGORITHM
from quality.models import ConsensusResult
from tasks.models import Assignment, AssignmentStatus, MicroTask
from tests.tasks.claim_fixtures import qualified_worker
from tests.tasks.ingest_helpers import make_clip, upload

pytestmark = pytest.mark.django_db(transaction=True)

CLAIM = "/api/work/claim/"
JOB = {
    "title": "People crossing",
    "instructions": "Mark every crossing and every wave, from first to last frame.",
    "annotation_type": "event",
    "label_classes": ["crossing", "waving"],
    "budget": 500_000,
    "currency": "usd",
    "overlap_min": 3,
    "overlap_max": 3,
    "gold_rate": 0.0,
    "segment_frames": 30,
    "overlap_frames": 5,  # ignored for events: segments share no frames
    "keyframe_step": 5,
    "expected_objects": 2,
}
# The truth over the 60-frame clip: "crossing" runs across the boundary of the two microtasks.
TRUTH = [("crossing", 20, 44), ("waving", 3, 12), ("waving", 50, 57)]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.VIDEO_FRAME_MAX_WIDTH = 128
    settings.VIDEO_FRAME_MAX_HEIGHT = 128


@pytest.fixture
def no_gold(monkeypatch):
    from tasks import claiming

    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)


def _events_for(mt: MicroTask, *, shift: int = 0) -> list[dict]:
    out = []
    for label, start, end in TRUTH:
        s, e = max(start + shift, mt.frame_start), min(end + shift, mt.frame_end)
        if s <= e:
            out.append({"label": label, "start": s, "end": e})
    return out


def test_an_event_job_goes_through_the_whole_chain(
    requester, requester_client, client_for, tmp_path, no_gold
):
    created = requester_client.post("/api/jobs/", JOB, format="json")
    assert created.status_code == 201, created.json()
    job = Job.objects.get(pk=created.json()["id"])

    clip = make_clip(tmp_path, frames=60)
    assert upload(requester_client, job.pk, ("walk.mp4", clip.data)).status_code == 201
    assert requester_client.post(f"/api/jobs/{job.pk}/process/").status_code == 202
    job.refresh_from_db()
    assert job.status == JobStatus.READY
    mts = list(MicroTask.objects.filter(job=job).order_by("index"))
    # Contiguous segments without overlap, their keyframes shown.
    assert [(m.frame_start, m.frame_end) for m in mts] == [(0, 29), (30, 59)]
    assert mts[0].manifest["kind"] == "segment"

    quote = requester_client.post(f"/api/payments/jobs/{job.pk}/quote/")
    assert quote.status_code == 200, quote.content
    policy = active_policy()
    for m in mts:
        m.refresh_from_db()
        est = pricing.price_task(
            pricing.TaskFeatures("event", len(m.frames), 2, m.motion, m.clutter), policy=policy
        )
        assert m.price == est.price > 0
        assert m.price >= pricing.floor_pay(
            seconds=est.expected_seconds, hourly=policy.floor_hourly
        )

    escrow_fund(job=job, amount=500_000, key=f"events-e2e-{job.pk}")
    assert requester_client.post(f"/api/jobs/{job.pk}/publish/").status_code == 200

    crowd = [qualified_worker("event") for _ in range(3)]
    done = []
    for i, w in enumerate(crowd):
        c = client_for(w)
        for _ in mts:
            r = c.post(CLAIM, {"job": job.pk}, format="json")
            assert r.status_code == 201, r.content
            a = Assignment.objects.select_related("microtask").get(pk=r.json()["id"])
            url = f"/api/work/assignments/{a.pk}/submit/"
            if i == 0 and not done:
                # A bad payload: field-level errors, nothing changes.
                bad = {
                    "events": [
                        {"label": "crossing", "start": a.microtask.frame_end, "end": 99},
                        {"label": "running", "start": a.microtask.frame_start, "end": 1},
                    ]
                }
                r = c.post(url, {"payload": bad, "active_seconds": 20}, format="json")
                assert r.status_code == 400, r.content
                fields = r.json()["error"]["fields"]
                assert set(fields) == {"events[0].end", "events[1].label"}
                a.refresh_from_db()
                assert a.status == AssignmentStatus.CLAIMED
            payload = {"events": _events_for(a.microtask, shift=i - 1)}
            r = c.post(url, {"payload": payload, "active_seconds": 60}, format="json")
            assert r.status_code == 200, r.content
            done.append(a.pk)

    # Consensus: three agreeing workers; approved and paid.
    assignments = list(Assignment.objects.filter(pk__in=done))
    assert {a.status for a in assignments} == {AssignmentStatus.APPROVED}
    assert all(a.pay_amount and a.pay_amount > 0 for a in assignments)
    results = ConsensusResult.objects.filter(microtask__job=job, is_current=True)
    assert results.count() == 2
    assert {r.algorithm for r in results} == {EVENTS_ALGORITHM}
    assert all(r.agreement > 0.8 for r in results)

    # Export: ActivityNet, the boundary-crossing event joined back into one.
    r = requester_client.get(f"/api/jobs/{job.pk}/export/activitynet/")
    assert r.status_code == 200
    doc = json.loads(b"".join(r.streaming_content))
    assert doc["version"] == "VERSION 1.3"
    ((name, video),) = doc["database"].items()
    assert name.startswith("video-")
    assert video["duration_frame"] == 60
    assert video["duration_second"] == pytest.approx(2.0)
    got = sorted((a["label"], *a["frames"]) for a in video["annotations"])
    assert got == sorted(TRUTH)
    crossing = next(a for a in video["annotations"] if a["label"] == "crossing")
    assert crossing["segment"] == pytest.approx([20 / 30, 45 / 30])
    assert {t["nodeName"] for t in doc["taxonomy"]} == {"crossing", "waving"}

    refused = requester_client.get(f"/api/jobs/{job.pk}/export/coco/")
    assert refused.status_code == 409
    assert "activitynet" in refused.json()["error"]["message"]


# --- gold and dynamic overlap, through the services the API calls ------------------------------


def _claim_and_submit(client, job, events):
    r = client.post(CLAIM, {"job": job.pk}, format="json")
    assert r.status_code == 201, r.content
    a = Assignment.objects.select_related("microtask").get(pk=r.json()["id"])
    r = client.post(
        f"/api/work/assignments/{a.pk}/submit/",
        {"payload": {"events": events}, "active_seconds": 40},
        format="json",
    )
    assert r.status_code == 200, r.content
    a.refresh_from_db()
    return a


def test_event_gold_scores_by_tiou_and_passes_or_fails_the_worker(client_for, monkeypatch):
    from quality import services as quality
    from quality.models import GoldResult
    from tasks import claiming
    from tests.factories import AdminFactory
    from tests.tasks.claim_fixtures import ready_job

    monkeypatch.setattr(claiming._rng, "random", lambda: 0.0)  # gold first
    job = ready_job(
        n=6, gold=3, overlap=1, annotation_type="event", frames_per_task=60, gold_rate=0.5
    )
    Job.objects.filter(pk=job.pk).update(label_classes=["crossing", "waving"])
    admin = AdminFactory()
    for mt in MicroTask.objects.filter(job=job, is_gold=True):
        s = mt.frame_start
        answer = {"events": [{"label": "crossing", "start": s + 10, "end": s + 40}]}
        quality.gold_answer_set(microtask_id=mt.pk, payload=answer, by=admin)
    claiming.job_publish(job=job, by=job.requester)

    def answer(worker, label, start, end):
        c = client_for(worker)
        r = c.post(CLAIM, {"job": job.pk}, format="json")
        assert r.status_code == 201, r.content
        a = Assignment.objects.select_related("microtask").get(pk=r.json()["id"])
        s = a.microtask.frame_start
        events = [] if label is None else [{"label": label, "start": s + start, "end": s + end}]
        r = c.post(
            f"/api/work/assignments/{a.pk}/submit/",
            {"payload": {"events": events}, "active_seconds": 40},
            format="json",
        )
        assert r.status_code == 200, r.content
        return GoldResult.objects.get(assignment=a)

    close = answer(qualified_worker("event"), "crossing", 12, 38)  # edges 2 frames in
    assert close.passed is True
    assert close.score == pytest.approx(27 / 31)  # F1 1 x tIoU 27/31
    wrong_label = answer(qualified_worker("event"), "waving", 10, 40)
    assert wrong_label.passed is False and wrong_label.score == 0.0
    empty = answer(qualified_worker("event"), None, 0, 0)
    assert empty.passed is False and empty.score == 0.0


def test_disagreeing_event_replicas_add_a_replica(client_for):
    from quality.models import ConsensusDecision
    from tasks import claiming
    from tests.tasks.claim_fixtures import ready_job

    job = ready_job(n=1, overlap=3, annotation_type="event", frames_per_task=60)
    Job.objects.filter(pk=job.pk).update(
        label_classes=["crossing", "waving"], overlap_max=5, gold_rate=0.0
    )
    claiming.job_publish(job=job, by=job.requester)
    answers = [
        [{"label": "crossing", "start": 0, "end": 15}],
        [{"label": "crossing", "start": 30, "end": 50}],
        [{"label": "waving", "start": 10, "end": 40}],
    ]
    for events in answers:
        _claim_and_submit(client_for(qualified_worker("event")), job, events)
    mt = MicroTask.objects.get(job=job)
    result = ConsensusResult.objects.get(microtask=mt, is_current=True)
    assert result.algorithm == EVENTS_ALGORITHM
    assert result.frames["5"] == [] and result.agreement < 0.7  # nothing has half the vote
    assert result.decision == ConsensusDecision.ADD_REPLICA
    assert mt.replica_target == 4
    # A fourth worker agrees with the first: half the weight keeps 0-15, but two of four still
    # disagree with it (agreement 0.5 < 0.7): one more replica.
    _claim_and_submit(client_for(qualified_worker("event")), job, answers[0])
    mt.refresh_from_db()
    result = ConsensusResult.objects.get(microtask=mt, is_current=True)
    assert result.frames["5"] == [{"label": "crossing", "event": 0}]
    assert result.frames["16"] == []
    assert result.agreement == pytest.approx(0.5)
    assert result.decision == ConsensusDecision.ADD_REPLICA and mt.replica_target == 5


def test_track_jobs_with_event_labels_get_consensus_events_on_consensus_tracks(client_for):
    from tasks import claiming
    from tests.tasks.claim_fixtures import ready_job

    job = ready_job(n=1, overlap=3, annotation_type="track", frames_per_task=20)
    Job.objects.filter(pk=job.pk).update(
        label_classes=["car", "person"], event_labels=["crossing"], gold_rate=0.0
    )
    claiming.job_publish(job=job, by=job.requester)
    mt = MicroTask.objects.get(job=job)
    s, e = mt.frame_start, mt.frame_end

    def payload(tid, shift, extra_events=()):
        track = {
            "id": tid,
            "label": "person",
            "keyframes": [
                {"frame": s, "box": [10, 10, 60, 90]},
                {"frame": e, "box": [40, 10, 90, 90]},
            ],
        }
        events = [
            {"label": "crossing", "start": s + 5 + shift, "end": s + 12 + shift, "track": tid}
        ]
        return {"tracks": [track], "events": [*events, *extra_events]}

    for tid, shift in ((5, 0), (7, 1), (1, 0)):
        c = client_for(qualified_worker("track"))
        r = c.post(CLAIM, {"job": job.pk}, format="json")
        assert r.status_code == 201, r.content
        r = c.post(
            f"/api/work/assignments/{r.json()['id']}/submit/",
            {"payload": payload(tid, shift), "active_seconds": 30},
            format="json",
        )
        assert r.status_code == 200, r.content
    result = ConsensusResult.objects.get(microtask=mt, is_current=True)
    boxes = [sh for sh in result.frames[str(s + 8)] if "box" in sh]
    events = [sh for sh in result.frames[str(s + 8)] if "event" in sh]
    assert len(boxes) == 1
    assert events == [{"label": "crossing", "event": 0, "track": boxes[0]["track"]}]
    assert [sh for sh in result.frames[str(s + 4)] if "event" in sh] == []
    assert [sh for sh in result.frames[str(s + 13)] if "event" in sh] == []  # 2 of 3 end at 12

    # Approved by agreement, exported as ActivityNet on the video-wide track id; the job page's
    # formats (the template tag) and the export agree that a track job with events has it.
    from quality.exporting import job_formats

    job.refresh_from_db()
    assert "activitynet" in [k for k, _ in job_formats(job)]
    owner = client_for(job.requester)
    r = owner.get(f"/api/jobs/{job.pk}/export/activitynet/")
    assert r.status_code == 200, r.content
    doc = json.loads(b"".join(r.streaming_content))
    ((_, video),) = doc["database"].items()
    assert [(a["label"], a["frames"], a["track_id"]) for a in video["annotations"]] == [
        ("crossing", [s + 5, s + 12], 0)
    ]
    Job.objects.filter(pk=job.pk).update(event_labels=[])
    job.refresh_from_db()
    assert "activitynet" not in [k for k, _ in job_formats(job)]
    assert owner.get(f"/api/jobs/{job.pk}/export/activitynet/").status_code == 409


def test_track_events_disagreement_adds_a_replica_although_the_boxes_agree(client_for):
    from quality.models import ConsensusDecision
    from tasks import claiming
    from tests.tasks.claim_fixtures import ready_job

    job = ready_job(n=1, overlap=3, annotation_type="track", frames_per_task=20)
    Job.objects.filter(pk=job.pk).update(
        label_classes=["car", "person"], event_labels=["crossing"], gold_rate=0.0, overlap_max=5
    )
    claiming.job_publish(job=job, by=job.requester)
    mt = MicroTask.objects.get(job=job)
    s, e = mt.frame_start, mt.frame_end
    track = {
        "id": 1,
        "label": "person",
        "keyframes": [{"frame": s, "box": [10, 10, 60, 90]}, {"frame": e, "box": [40, 10, 90, 90]}],
    }
    for start in (0, 7, 14):  # three different, non-overlapping events
        c = client_for(qualified_worker("track"))
        r = c.post(CLAIM, {"job": job.pk}, format="json")
        ev = {"label": "crossing", "start": s + start, "end": s + start + 4, "track": 1}
        r = c.post(
            f"/api/work/assignments/{r.json()['id']}/submit/",
            {"payload": {"tracks": [track], "events": [ev]}, "active_seconds": 30},
            format="json",
        )
        assert r.status_code == 200, r.content
    result = ConsensusResult.objects.get(microtask=mt, is_current=True)
    assert result.agreement == pytest.approx(0.5)  # boxes 1.0, events 0.0
    assert result.decision == ConsensusDecision.ADD_REPLICA
    mt.refresh_from_db()
    assert mt.replica_target == 4
