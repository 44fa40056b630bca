"""Proposals end to end: sources on generated clips, the model backend over real HTTP (ml_local,
including slow, down and garbage backends), storage and statuses, what a worker sees, the job's
configuration API and provenance measured by the server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from marketplace.lifecycle import job_transition
from marketplace.models import JobStatus
from ml_local.server import LocalModel
from payments.escrow import escrow_fund
from tasks import claiming, ml_backend, proposals, vision
from tasks.annotations import validate_payload
from tasks.models import Assignment, MicroTask, Proposal, ProposalConfig, Submission
from tasks.proposal_sources import box_iou
from tests.factories import AssignmentFactory, WorkerFactory
from tests.tasks.claim_fixtures import qualify
from tests.tasks.proposal_helpers import (
    clip_job,
    clip_scene,
    scene_spec,
    standing_person,
    stills_job,
)

ROOT = Path(__file__).resolve().parent.parent.parent

SCENE = clip_scene()


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def model():
    """The local model server (Label Studio ML backend protocol) on a free port, knowing the
    clip's truth; its slow mode sleeps 4 s, past the suite's 2 s timeout."""
    server = LocalModel(scene=SCENE, slow_seconds=4.0, token="s3cret").start()
    try:
        yield server
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _configure(job, sources, url="", token=""):
    return ProposalConfig.objects.update_or_create(
        job=job, defaults={"sources": sources, "backend_url": url, "backend_token": token}
    )[0]


def _compute(job) -> list[Proposal]:
    while proposals.job_proposals_compute_batch(job_id=job.pk).remaining:
        pass
    return list(Proposal.objects.filter(microtask__job=job).order_by("microtask_id", "source"))


def _recall(shapes, *, min_iou=0.5) -> tuple[int, int]:
    """(truth boxes matched by a proposed box at IoU >= min_iou, truth boxes) over the frames."""
    hits = total = 0
    by_frame: dict[int, list] = {}
    for s in shapes:
        by_frame.setdefault(s["frame"], []).append(s["box"])
    for frame in by_frame.keys() | set(range(0, 60, 6)):
        for t in SCENE.boxes(frame):
            if t.outside or t.w * t.h < 30:
                continue
            total += 1
            truth = [t.x, t.y, t.x + t.w, t.y + t.h]
            hits += max((box_iou(truth, b) for b in by_frame.get(frame, [])), default=0) >= min_iou
    return hits, total


# --- built-in sources on generated clips ---------------------------------------------------------


def test_motion_source_finds_the_moving_objects_of_a_generated_clip(db, media):
    job = clip_job(SCENE)
    _configure(job, ["motion"])
    [p] = _compute(job)
    assert p.status == "ok", p.error
    assert p.source == "motion" and p.model_version == "motion-1"
    hits, total = _recall(p.shapes)
    assert total >= 15
    assert hits / total >= 0.7, (hits, total)
    assert len(p.confidences) == len(p.shapes)
    assert all(0 < c <= 1 for c in p.confidences) and 0 < p.confidence <= 1


def test_motion_source_proposes_tracks_for_track_jobs(db, media):
    job = clip_job(SCENE, annotation_type="track", tasks=[(0, 59)], step=6)
    _configure(job, ["motion"])
    [p] = _compute(job)
    assert p.status == "ok", p.error
    assert p.shapes and all("keyframes" in t for t in p.shapes)
    # Shapes are a valid track payload for the microtask (they were validated before storing).
    mt = MicroTask.objects.get(job=job)
    validate_payload({"tracks": p.shapes}, claiming.annotation_context(mt))


def test_people_source_runs_opencvs_detector_and_finds_no_person_in_boxes_and_ellipses(db, media):
    job = clip_job(SCENE)
    _configure(job, ["people"])
    [p] = _compute(job)
    # The clip holds rectangles and ellipses, not people: the detector ran and found none.
    assert p.status == "ok", p.error
    assert p.model_version == "opencv-hog-people"
    assert p.shapes == [] and p.confidence == 0


def test_people_source_finds_a_standing_person(db, media):
    still, figure = standing_person()
    job = stills_job([still, still])
    _configure(job, ["people"])
    [p] = _compute(job)
    assert p.status == "ok", p.error
    assert [s["frame"] for s in p.shapes] == [0, 1]
    fx1, fy1, fx2, fy2 = figure
    for s in p.shapes:
        x1, y1, x2, y2 = s["box"]
        assert s["label"] == "person"
        # HOG's window is padded around the person: the figure lies (almost) wholly inside it.
        inter = max(0, min(x2, fx2) - max(x1, fx1)) * max(0, min(y2, fy2) - max(y1, fy1))
        assert inter / ((fx2 - fx1) * (fy2 - fy1)) > 0.9
    assert all(c > 0.5 for c in p.confidences)


def test_people_source_needs_a_person_class(db, media):
    job = clip_job(SCENE, classes=("car", "truck"))
    _configure(job, ["people"])
    [p] = _compute(job)
    assert p.status == "invalid" and "person class" in p.error


def test_frames_missing_from_storage_fail_the_source_not_the_run(db, media):
    job = clip_job(SCENE)
    mt = MicroTask.objects.get(job=job)
    for entry in mt.manifest["frames"]:
        default_storage.delete(entry["image"])
    _configure(job, ["motion"])
    [p] = _compute(job)
    assert p.status == "failed" and p.shapes == []


# --- the model backend over HTTP ---------------------------------------------------------------


def test_backend_proposals_come_from_the_real_server_in_the_jobs_format(db, media, model):
    job = clip_job(SCENE)
    _configure(job, ["ml_backend"], model.url("auth"), "s3cret")
    [p] = _compute(job)
    assert p.status == "ok", p.error
    assert p.model_version == "ml-local-1"
    hits, total = _recall(p.shapes, min_iou=0.9)
    assert hits == total  # the local model knows the truth: percent round trip loses nothing
    assert {s["label"] for s in p.shapes} <= {"car", "person"}
    assert p.confidences == [0.9] * len(p.shapes)
    calls = [path for path, _ in model.requests]
    assert calls == ["/auth/health", "/auth/setup", "/auth/predict"]
    assert all(h.get("Authorization") == "Bearer s3cret" for _, h in model.requests)


@pytest.mark.parametrize(
    ("mode", "status", "words"),
    [
        ("slow", "timeout", "no answer within"),
        ("garbage", "invalid", "not JSON"),
        ("shapes", "invalid", "results"),
        ("outside", "invalid", "outside the image"),
        ("error", "failed", "HTTP 500"),
        ("huge", "invalid", "larger than"),
        ("auth", "failed", "HTTP 401"),  # no token configured
    ],
)
def test_a_failing_backend_leaves_plain_annotation_and_records_why(
    db, media, model, mode, status, words, settings
):
    settings.ML_BACKEND_TIMEOUT_SECONDS = 1.0
    job = clip_job(SCENE)
    _configure(job, ["ml_backend", "motion"], model.url(mode))
    rows = {p.source: p for p in _compute(job)}
    assert rows["ml_backend"].status == status
    assert words in rows["ml_backend"].error
    assert rows["ml_backend"].shapes == [] and rows["ml_backend"].confidence == 0
    assert rows["motion"].status == "ok"  # the other source is not held back
    mt = MicroTask.objects.get(job=job)
    shown = proposals.worker_proposals(mt)
    assert [s["source"] for s in shown] == ["motion"]


def test_a_detector_crashing_fails_its_source_and_the_run_goes_on(db, media, monkeypatch):
    job = clip_job(SCENE, tasks=[(0, 29), (30, 59)])
    _configure(job, ["people", "motion"])

    def broken(image, **kwargs):
        raise RuntimeError("OpenCV(4.x) error: (-215:Assertion failed)")

    monkeypatch.setattr(vision, "people", broken)
    rows = _compute(job)
    assert sorted((p.source, p.status) for p in rows) == [
        ("motion", "ok"),
        ("motion", "ok"),
        ("people", "failed"),
        ("people", "failed"),
    ]
    assert "Assertion failed" in next(p.error for p in rows if p.source == "people")


def test_a_down_backend_is_failed_and_computing_again_does_not_retry_it(db, media):
    job = clip_job(SCENE)
    _configure(job, ["ml_backend"], f"http://127.0.0.1:{_free_port()}/")
    [p] = _compute(job)
    assert p.status == "failed" and "refused" in p.error.lower()
    assert _compute(job) == [p]  # idempotent: the outcome stands


def test_a_backend_down_for_a_batch_is_not_called_again_and_saving_the_settings_retries(
    db, media, model, settings, requester, requester_client, django_capture_on_commit_callbacks
):
    settings.ML_BACKEND_TIMEOUT_SECONDS = 0.5
    job = clip_job(
        SCENE, tasks=[(0, 9), (10, 19), (20, 29), (30, 39), (40, 49)], requester=requester
    )
    _configure(job, ["ml_backend"], model.url("slow"))
    rows = _compute(job)
    assert [p.status for p in rows] == ["timeout"] * 3 + ["failed"] * 2
    assert "not called" in rows[3].error
    assert len(model.requests) == 3  # one /health per microtask that was tried
    # The backend is back: saving the same settings again retries what failed.
    with django_capture_on_commit_callbacks(execute=True):
        r = requester_client.put(
            _url(job), {"sources": ["ml_backend"], "backend_url": model.url("slow")}, format="json"
        )
    assert r.status_code == 200
    # Retried (after the answer, on commit) and still down: the same outcome.
    assert requester_client.get(_url(job)).json()["summary"] == {
        "ml_backend": {"timeout": 3, "failed": 2}
    }
    assert len(model.requests) == 6
    model.slow_seconds = 0
    with django_capture_on_commit_callbacks(execute=True):
        requester_client.put(
            _url(job), {"sources": ["ml_backend"], "backend_url": model.url("slow")}, format="json"
        )
    assert requester_client.get(_url(job)).json()["summary"] == {"ml_backend": {"ok": 5}}


def test_an_allowed_host_with_a_port_allows_that_port_only(db, settings, model):
    settings.ML_BACKEND_ALLOWED_HOSTS = [f"127.0.0.1:{model.port}"]
    assert ml_backend.url_problem(model.url("ok")) is None
    assert "ML_BACKEND_ALLOWED_HOSTS" in ml_backend.url_problem("http://127.0.0.1:6379/")
    assert "ML_BACKEND_ALLOWED_HOSTS" in ml_backend.url_problem(f"http://localhost:{model.port}/")


def test_hosts_not_allowed_are_never_called(db, media, model, settings):
    job = clip_job(SCENE)
    settings.ML_BACKEND_ALLOWED_HOSTS = []
    _configure(job, ["ml_backend"], model.url("ok"))
    [p] = _compute(job)
    assert p.status == "failed" and "ML_BACKEND_ALLOWED_HOSTS" in p.error
    assert model.requests == []


# --- batches, gold, what a worker sees ----------------------------------------------------------


def test_computing_is_batched_and_idempotent(db, media, settings):
    settings.PROPOSAL_BATCH_SIZE = 2
    job = clip_job(SCENE, tasks=[(0, 29), (30, 59), (0, 59)])
    _configure(job, ["motion", "people"])
    first = proposals.job_proposals_compute_batch(job_id=job.pk)
    assert (first.computed, first.remaining) == (2, True)
    rows = _compute(job)
    assert len(rows) == 6
    ids = sorted(p.pk for p in rows)
    assert proposals.job_proposals_compute_batch(job_id=job.pk).computed == 0
    assert sorted(p.pk for p in Proposal.objects.filter(microtask__job=job)) == ids


def test_publishing_a_job_with_sources_computes_its_proposals(
    db, media, django_capture_on_commit_callbacks
):
    job = clip_job(SCENE, budget=10**9)
    escrow_fund(job=job, amount=job.budget, key=f"test-fund:{job.pk}")
    _configure(job, ["motion"])
    with django_capture_on_commit_callbacks(execute=True):
        claiming.job_publish(job=job, by=job.requester)
    assert Proposal.objects.filter(microtask__job=job, status="ok").count() == 1


def test_a_job_becoming_ready_after_ingestion_gets_its_proposals(
    db, media, django_capture_on_commit_callbacks
):
    job = clip_job(SCENE, status=JobStatus.PROCESSING)
    _configure(job, ["motion"])
    assert not Proposal.objects.filter(microtask__job=job).exists()
    with django_capture_on_commit_callbacks(execute=True):
        job_transition(job=job, to=JobStatus.READY)  # what ingestion does when it is done
    assert Proposal.objects.get(microtask__job=job).status == "ok"


def test_a_job_without_sources_computes_nothing(db, media, django_capture_on_commit_callbacks):
    job = clip_job(SCENE, status=JobStatus.PROCESSING)
    with django_capture_on_commit_callbacks(execute=True):
        job_transition(job=job, to=JobStatus.READY)
    assert not Proposal.objects.filter(microtask__job=job).exists()


def _claimed(job, worker=None, mt=None):
    worker = worker or qualify(WorkerFactory())
    mt = mt or MicroTask.objects.filter(job=job).first()
    return AssignmentFactory(microtask=mt, worker=worker)


def test_worker_sees_proposals_of_their_own_live_assignment_only(db, media, client_for):
    job = clip_job(SCENE, tasks=[(0, 29), (30, 59)])
    _configure(job, ["motion"])
    _compute(job)
    mine, theirs = MicroTask.objects.filter(job=job).order_by("index")
    a = _claimed(job, mt=mine)
    b = _claimed(job, mt=theirs)
    client = client_for(a.worker)
    r = client.get(f"/api/work/assignments/{a.pk}/")
    assert r.status_code == 200
    [shown] = r.json()["proposals"]
    stored = Proposal.objects.get(microtask=mine)
    assert shown["id"] == stored.pk and shown["source"] == "motion" and shown["key"] == "boxes"
    assert [s["ref"] for s in shown["shapes"]] == [
        f"{stored.pk}:{i}" for i in range(len(stored.shapes))
    ]
    assert all(s["frame"] in mine.frames for s in shown["shapes"])
    assert client.get(f"/api/work/assignments/{b.pk}/").status_code == 404
    # Once submitted, the suggestions are gone from the view.
    Assignment.objects.filter(pk=a.pk).update(status="submitted")
    assert client.get(f"/api/work/assignments/{a.pk}/").json()["proposals"] == []


def test_gold_microtasks_get_proposals_from_pixels_like_any_other(db, media, client_for):
    job = clip_job(SCENE, tasks=[(0, 59), (0, 59)], gold=(1,))
    _configure(job, ["motion"])
    _compute(job)
    ordinary, gold = (Proposal.objects.get(microtask__index=i, microtask__job=job) for i in (0, 1))
    # Same pixels, same proposal: nothing in a gold microtask's proposal comes from its answer.
    assert gold.shapes == ordinary.shapes
    a = _claimed(job, mt=MicroTask.objects.get(job=job, is_gold=True))
    body = client_for(a.worker).get(f"/api/work/assignments/{a.pk}/").json()
    assert "is_gold" not in str(body) and "answer" not in str(body)


# --- the job's configuration API --------------------------------------------------------------


def _url(job) -> str:
    return f"/api/jobs/{job.pk}/proposals/"


def test_requester_configures_sources_and_the_token_is_never_shown(
    db, media, model, requester_client, requester, django_capture_on_commit_callbacks
):
    job = clip_job(SCENE, requester=requester)
    with django_capture_on_commit_callbacks(execute=True):
        r = requester_client.put(
            _url(job),
            {
                "sources": ["ml_backend", "motion"],
                "backend_url": model.url("auth"),
                "backend_token": "s3cret",
            },
            format="json",
        )
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["sources"] == ["ml_backend", "motion"]
    assert body["has_backend_token"] is True and "s3cret" not in r.content.decode()
    # Computing was queued on commit (eager in the suite) and its statuses are summarised.
    got = requester_client.get(_url(job)).json()
    assert got["summary"] == {"ml_backend": {"ok": 1}, "motion": {"ok": 1}}
    assert "s3cret" not in str(got)
    # Omitting the token keeps it; changing the URL drops the backend's stale proposals.
    r = requester_client.put(
        _url(job), {"sources": ["ml_backend"], "backend_url": model.url("ok")}, format="json"
    )
    assert r.json()["has_backend_token"] is True
    assert ProposalConfig.objects.get(job=job).backend_token == "s3cret"
    assert r.json()["summary"] == {"motion": {"ok": 1}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sources": ["magic"]}, "sources"),
        ({"sources": "motion"}, "sources"),
        ({"sources": ["ml_backend"]}, "backend_url"),
        ({"sources": ["ml_backend"], "backend_url": "ftp://127.0.0.1/"}, "backend_url"),
        ({"sources": ["ml_backend"], "backend_url": "http://10.0.0.5/"}, "backend_url"),
        ({"sources": ["ml_backend"], "backend_url": "http://u:p@127.0.0.1/"}, "backend_url"),
        (
            {"sources": ["ml_backend"], "backend_url": "http://127.0.0.1/" + "a" * 600},
            "backend_url",
        ),
        ({"sources": [], "backend_token": "x" * 501}, "backend_token"),
    ],
)
def test_bad_configuration_is_a_field_error_and_changes_nothing(
    db, requester_client, requester, body, field
):
    job = clip_job(SCENE, requester=requester)
    r = requester_client.put(_url(job), body, format="json")
    assert r.status_code == 400, r.content
    assert field in r.json()["error"]["fields"]
    assert not ProposalConfig.objects.filter(job=job).exists()


def test_only_the_jobs_requester_configures_it(
    db, other_requester_client, worker_client, requester
):
    job = clip_job(SCENE, requester=requester)
    assert other_requester_client.get(_url(job)).status_code == 404
    r = other_requester_client.put(_url(job), {"sources": ["motion"]}, format="json")
    assert r.status_code == 404
    assert worker_client.put(_url(job), {"sources": ["motion"]}, format="json").status_code == 403
    assert not ProposalConfig.objects.filter(job=job).exists()


def test_classification_jobs_take_no_proposals(db, requester_client, requester):
    job = clip_job(SCENE, annotation_type="classify", requester=requester)
    r = requester_client.put(_url(job), {"sources": ["motion"]}, format="json")
    assert r.status_code == 400 and "sources" in r.json()["error"]["fields"]


# --- submissions: references and provenance -----------------------------------------------------


def _submit(client, a, payload):
    return client.post(f"/api/work/assignments/{a.pk}/submit/", {"payload": payload}, format="json")


def test_provenance_is_measured_by_the_server(db, media, client_for):
    job = clip_job(SCENE)
    _configure(job, ["motion"])
    [p] = _compute(job)
    a = _claimed(job)
    first, second = p.shapes[0], p.shapes[1]
    x1, y1, x2, y2 = second["box"]
    moved_box = [x1 + 4, y1, min(x2 + 4, 160), y2]
    payload = {
        "boxes": [
            {**first, "from_proposal": f"{p.pk}:0"},
            # The client says "unchanged"; the box was moved: the server measures it.
            {**second, "box": moved_box, "from_proposal": f"{p.pk}:1", "unchanged": True},
            {"frame": 0, "label": "car", "box": [1, 1, 20, 20]},
        ]
    }
    r = _submit(client_for(a.worker), a, payload)
    assert r.status_code == 200, r.content
    prov = Submission.objects.get(assignment=a).provenance
    assert [e["path"] for e in prov] == ["boxes[0]", "boxes[1]"]
    assert prov[0]["unchanged"] is True and prov[0]["moved"] == 0
    assert prov[1]["unchanged"] is False
    assert prov[1]["moved"] == round(1 - box_iou(moved_box, second["box"]), 4) > 0
    assert {e["source"] for e in prov} == {"motion"} and prov[1]["index"] == 1
    # The stored payload is the normalised one: no client-side claims in it.
    assert "from_proposal" not in str(Submission.objects.get(assignment=a).payload)


def test_a_reference_to_another_microtasks_proposal_is_refused(db, media, client_for):
    job = clip_job(SCENE, tasks=[(0, 29), (30, 59)])
    _configure(job, ["motion"])
    _compute(job)
    mine, other = MicroTask.objects.filter(job=job).order_by("index")
    foreign = Proposal.objects.get(microtask=other)
    a = _claimed(job, mt=mine)
    shape = dict(Proposal.objects.get(microtask=mine).shapes[0])
    r = _submit(client_for(a.worker), a, {"boxes": [{**shape, "from_proposal": f"{foreign.pk}:0"}]})
    assert r.status_code == 400
    assert list(r.json()["error"]["fields"]) == ["boxes[0].from_proposal"]
    a.refresh_from_db()
    assert a.status == "claimed" and not Submission.objects.filter(assignment=a).exists()


def test_a_proposal_accepted_before_its_source_was_turned_off_still_counts(db, media, client_for):
    job = clip_job(SCENE)
    _configure(job, ["motion"])
    [p] = _compute(job)
    a = _claimed(job)
    _configure(job, [])  # the requester turns proposals off while the worker annotates
    r = _submit(client_for(a.worker), a, {"boxes": [{**p.shapes[0], "from_proposal": f"{p.pk}:0"}]})
    assert r.status_code == 200, r.content
    [entry] = Submission.objects.get(assignment=a).provenance
    assert entry["proposal"] == p.pk and entry["unchanged"] is True


def test_a_failed_proposal_cannot_be_referenced(db, media, client_for, model):
    job = clip_job(SCENE)
    _configure(job, ["ml_backend"], model.url("garbage"))
    [p] = _compute(job)
    a = _claimed(job)
    payload = {
        "boxes": [{"frame": 0, "label": "car", "box": [1, 1, 9, 9], "from_proposal": f"{p.pk}:0"}]
    }
    r = _submit(client_for(a.worker), a, payload)
    assert r.status_code == 400 and "boxes[0].from_proposal" in r.json()["error"]["fields"]


def test_submissions_without_proposals_record_none(db, media, client_for):
    job = clip_job(SCENE, status=JobStatus.READY)
    a = _claimed(job)
    r = _submit(
        client_for(a.worker), a, {"boxes": [{"frame": 0, "label": "car", "box": [1, 1, 9, 9]}]}
    )
    assert r.status_code == 200
    assert Submission.objects.get(assignment=a).provenance == []


# --- ml_local as its own process (what ``make run`` starts) -------------------------------------


@pytest.fixture
def model_process():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ml_local.server", "--port", str(port), "--scene", scene_spec()],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout.readline().startswith(b"ml_local: ")  # listening
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_ml_local_process_answers_the_protocol(db, media, model_process):
    job = clip_job(SCENE)
    _configure(job, ["ml_backend"], model_process)
    [p] = _compute(job)
    assert p.status == "ok", p.error
    hits, total = _recall(p.shapes, min_iou=0.9)
    assert total and hits == total
