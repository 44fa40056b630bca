"""The requester's job pages: the dashboard (lifecycle buttons with a confirmation, progress,
money, finish estimate, video previews), the review mode, the submissions list with approve /
reject one by one and in bulk, the review page's frames and agreement, and the gold workspace."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from marketplace.models import JobStatus
from payments import selectors as pay_selectors
from quality.models import JobQualityPolicy, ReviewItem
from quality.simulator import PRECISE, SPAMMER
from tasks import claiming, progress, reviewing
from tasks.models import Assignment, AssignmentStatus, MicroTask, MicroTaskStatus
from tests.factories import AdminFactory, RequesterFactory, WorkerFactory
from tests.quality.test_services import claim_and_submit
from tests.tasks.claim_fixtures import published_job, qualified_worker, ready_job, store_frames


def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def _submit(job, worker, *, seconds=30):
    a = claiming.assignment_claim(worker=worker, job_id=job.pk)
    frame = a.microtask.frame_start
    claiming.assignment_submit(
        worker=worker,
        assignment_id=a.pk,
        payload={"boxes": [{"frame": frame, "label": "car", "box": [10, 10, 60, 50]}]},
        active_seconds=seconds,
    )
    a.refresh_from_db()
    return a


def _messages(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


# --- Lifecycle buttons ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_only_the_buttons_the_lifecycle_allows_are_shown():
    job = ready_job(n=2, overlap=1)
    page = _client(job.requester).get(f"/requester/jobs/{job.pk}/")
    assert page.status_code == 200
    shown = [a.name for a in page.context["actions"]]
    assert shown == ["publish", "cancel"]
    assert b'id="action-publish"' in page.content and b'id="action-pause"' not in page.content
    assert b"72 hours after submission" in page.content  # the default auto-approval delay

    claiming.job_publish(job=job, by=job.requester)
    page = _client(job.requester).get(f"/requester/jobs/{job.pk}/")
    assert [a.name for a in page.context["actions"]] == ["pause", "complete", "cancel"]
    claiming.job_pause(job=job, by=job.requester)
    page = _client(job.requester).get(f"/requester/jobs/{job.pk}/")
    assert [a.name for a in page.context["actions"]] == ["resume", "complete", "cancel"]


@pytest.mark.django_db
def test_a_button_asks_for_confirmation_and_the_get_changes_nothing(no_gold):
    job = ready_job(n=2, overlap=1)
    c = _client(job.requester)
    confirm = c.get(f"/requester/jobs/{job.pk}/status/publish/")
    assert confirm.status_code == 200
    assert b'id="confirm"' in confirm.content and b'method="post"' in confirm.content
    job.refresh_from_db()
    assert job.status == JobStatus.READY

    done = c.post(f"/requester/jobs/{job.pk}/status/publish/", follow=True)
    job.refresh_from_db()
    assert job.status == JobStatus.PUBLISHED
    assert "Published: 2 replicas are claimable." in _messages(done)

    for action, status in (
        ("pause", JobStatus.PAUSED),
        ("resume", JobStatus.PUBLISHED),
        ("complete", JobStatus.COMPLETED),
    ):
        c.post(f"/requester/jobs/{job.pk}/status/{action}/")
        job.refresh_from_db()
        assert job.status == status, action


@pytest.mark.django_db
def test_cancel_through_its_button():
    job = ready_job(n=2, overlap=1)
    _client(job.requester).post(f"/requester/jobs/{job.pk}/status/cancel/")
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED


@pytest.mark.django_db
def test_a_refused_transition_says_why_and_changes_nothing():
    job = ready_job(n=2, overlap=1)
    c = _client(job.requester)
    # Resuming a ready job would skip publishing (and its funding of slots): refused.
    r = c.post(f"/requester/jobs/{job.pk}/status/resume/", follow=True)
    job.refresh_from_db()
    assert job.status == JobStatus.READY
    assert "Resume refused: Only a paused job can be resumed; this one is ready." in _messages(r)
    r = c.post(f"/requester/jobs/{job.pk}/status/complete/", follow=True)
    assert "Complete refused: A ready job cannot become completed." in _messages(r)
    # The confirmation page of an action the job cannot take offers no button.
    page = c.get(f"/requester/jobs/{job.pk}/status/pause/")
    assert b'id="not-allowed"' in page.content and b'id="confirm"' not in page.content
    assert c.get(f"/requester/jobs/{job.pk}/status/explode/").status_code == 404
    job.refresh_from_db()
    assert job.status == JobStatus.READY


@pytest.mark.django_db
def test_publish_without_escrow_is_refused_with_the_reason():
    job = ready_job(n=2, overlap=1, budget=0)
    r = _client(job.requester).post(f"/requester/jobs/{job.pk}/status/publish/", follow=True)
    job.refresh_from_db()
    assert job.status == JobStatus.READY
    assert "does not cover a single microtask; fund it first" in _messages(r)


@pytest.mark.django_db
def test_another_requesters_job_is_not_found_and_untouched():
    job = ready_job(n=2, overlap=1)
    stranger = _client(RequesterFactory())
    assert stranger.get(f"/requester/jobs/{job.pk}/").status_code == 404
    assert stranger.get(f"/requester/jobs/{job.pk}/status/publish/").status_code == 404
    assert stranger.post(f"/requester/jobs/{job.pk}/status/publish/").status_code == 404
    assert stranger.post(f"/requester/jobs/{job.pk}/status/cancel/").status_code == 404
    assert (
        _client(WorkerFactory()).post(f"/requester/jobs/{job.pk}/status/publish/").status_code
        == 404
    )
    job.refresh_from_db()
    assert job.status == JobStatus.READY
    # An admin may act on any job.
    assert _client(AdminFactory()).get(f"/requester/jobs/{job.pk}/").status_code == 200


# --- Progress, money, estimate, previews ---------------------------------------------------------


@pytest.mark.django_db
def test_progress_per_job_video_and_microtask(no_gold):
    job = published_job(n=3, overlap=2)
    first = _submit(job, qualified_worker())
    # Another microtask settled by consensus counts whole.
    settled = MicroTask.objects.filter(job=job, is_gold=False).exclude(pk=first.microtask_id)[0]
    MicroTask.objects.filter(pk=settled.pk).update(status=MicroTaskStatus.COMPLETE)

    p = progress.job_progress(job=job)
    assert (p.replicas.done, p.replicas.target) == (3, 6)
    assert p.replicas.percent == 50.0
    assert (p.settled, p.microtasks) == (1, 3)
    (video,) = p.videos
    assert (video.replicas.done, video.replicas.target, video.settled) == (3, 6, 1)
    rows = {m.pk: progress.microtask_percent(m) for m in progress.microtask_progress(job=job)}
    assert rows[first.microtask_id] == 50.0
    assert rows[settled.pk] == 100.0
    assert sorted(rows.values()) == [0.0, 50.0, 100.0]

    page = _client(job.requester).get(f"/requester/jobs/{job.pk}/")
    assert b'id="job-percent">50.0%' in page.content
    assert f'id="microtask-{first.microtask_id}"'.encode() in page.content


@pytest.mark.django_db
def test_progress_counts_in_the_database_not_per_microtask(no_gold, django_assert_max_num_queries):
    job = published_job(n=40, overlap=1)
    with django_assert_max_num_queries(4):
        p = progress.job_progress(job=job)
    assert p.replicas.target == 40


@pytest.mark.django_db
def test_the_estimated_finish_follows_the_recent_pace(no_gold):
    job = published_job(n=8, overlap=1)
    now = timezone.now()
    worker = qualified_worker()
    submitted = [_submit(job, worker) for _ in range(4)]
    # Published two hours ago; four replicas came in since: 2 an hour, 4 left take 2 hours.
    job.published_at = now - timedelta(hours=2)
    job.save(update_fields=["published_at"])
    for k, a in enumerate(submitted):
        Assignment.objects.filter(pk=a.pk).update(submitted_at=now - timedelta(minutes=10 * k))
    p = progress.job_progress(job=job, now=now)
    assert p.forecast.remaining == 4
    assert p.forecast.finish == now + timedelta(hours=2)
    page = _client(job.requester).get(f"/requester/jobs/{job.pk}/")
    assert b"submissions an hour" in page.content


@pytest.mark.django_db
def test_money_on_the_dashboard_is_the_escrow_in_its_currency(no_gold):
    job = published_job(n=2, overlap=1, budget=50_000)
    escrow = pay_selectors.escrow_balance(job=job)
    page = _client(job.requester).get(f"/requester/jobs/{job.pk}/")
    assert page.context["spend"].escrow == escrow
    assert b'id="escrow-funded">$500.00' in page.content


@pytest.mark.django_db
def test_video_preview_is_served_to_the_requester_and_staff_only(no_gold):
    job = published_job(n=2, overlap=1)
    stored = store_frames(job)
    page = _client(job.requester).get(f"/requester/jobs/{job.pk}/")
    (vp,) = page.context["progress"].videos
    assert vp.preview_url and vp.preview_url.encode() in page.content
    image = _client(job.requester).get(vp.preview_url)
    assert image.status_code == 200
    first = MicroTask.objects.filter(job=job, is_gold=False).order_by("index")[0]
    name = first.manifest["frames"][0]["image"]
    assert b"".join(image.streaming_content) == stored[name]
    assert _client(AdminFactory()).get(vp.preview_url).status_code == 200
    assert _client(RequesterFactory()).get(vp.preview_url).status_code == 404
    assert _client(qualified_worker()).get(vp.preview_url).status_code == 404
    assert Client().get(vp.preview_url).status_code == 404


# --- Review mode, submissions, bulk review -------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_review_first_holds_consensus_approval_until_the_requester_or_the_delay(
    world_factory, workers, no_gold, monkeypatch
):
    world = world_factory(n=2, overlap=3)
    job = world.job
    c = _client(job.requester)
    c.post(f"/requester/jobs/{job.pk}/review-mode/", {"mode": "review_first"})
    pol = JobQualityPolicy.objects.get(job=job)
    assert (pol.auto_approve, pol.auto_reject) == (False, False)

    subs = [claim_and_submit(world, w, PRECISE, seed=i) for i, w in enumerate(workers(3))]
    for a in subs:
        a.refresh_from_db()
        assert a.status == AssignmentStatus.SUBMITTED  # consensus agreed, but the requester decides
        assert a.auto_approve_at == a.submitted_at + job.auto_approve_delay
    page = c.get(f"/requester/jobs/{job.pk}/submissions/?status=submitted")
    assert [r["a"].pk for r in page.context["rows"]] == [a.pk for a in subs]
    assert all(r["agreement"] is not None for r in page.context["rows"])
    assert b'class="shape consensus"' in page.content  # the consensus, dashed, to compare with

    # The delay passes: unreviewed work approves itself.
    later = timezone.now() + job.auto_approve_delay + timedelta(seconds=1)
    monkeypatch.setattr(reviewing, "_now", lambda: later)  # the module's clock seam
    assert reviewing.assignments_auto_approve_due() == 3
    assert {a.status for a in Assignment.objects.filter(pk__in=[s.pk for s in subs])} == {
        AssignmentStatus.APPROVED
    }


@pytest.mark.django_db(transaction=True)
def test_accept_automatically_approves_at_once(world_factory, workers, no_gold):
    world = world_factory(n=1, overlap=3)
    _client(world.job.requester).post(
        f"/requester/jobs/{world.job.pk}/review-mode/", {"mode": "review_first"}
    )
    _client(world.job.requester).post(
        f"/requester/jobs/{world.job.pk}/review-mode/", {"mode": "auto"}
    )
    subs = [claim_and_submit(world, w, PRECISE, seed=i) for i, w in enumerate(workers(3))]
    assert {Assignment.objects.get(pk=a.pk).status for a in subs} == {AssignmentStatus.APPROVED}


@pytest.mark.django_db
def test_an_unknown_review_mode_is_refused():
    job = ready_job(n=1, overlap=1)
    r = _client(job.requester).post(
        f"/requester/jobs/{job.pk}/review-mode/", {"mode": "whatever"}, follow=True
    )
    assert "Choose a review mode" in _messages(r)
    assert not JobQualityPolicy.objects.filter(job=job).exists()
    assert (
        _client(RequesterFactory())
        .post(f"/requester/jobs/{job.pk}/review-mode/", {"mode": "review_first"})
        .status_code
        == 404
    )
    assert not JobQualityPolicy.objects.filter(job=job).exists()


NEW_JOB = {
    "title": "Cars",
    "annotation_type": "bbox",
    "label_classes": "car, person",
    "overlap_min": 2,
    "overlap_max": 3,
    "gold_rate": 0.1,
    "expected_objects": 3,
    "budget": 10_000,
    "currency": "usd",
}


def _policy(job) -> tuple[bool, bool]:
    pol = JobQualityPolicy.objects.get(job=job)
    return pol.auto_approve, pol.auto_reject


@pytest.mark.django_db
def test_the_new_job_form_offers_the_review_mode_and_saves_it_with_the_job():
    from marketplace.models import Job

    requester = RequesterFactory()
    c = _client(requester)
    page = c.get("/requester/jobs/new/").content.decode()
    assert 'name="review_mode" value="auto" id="id_review_mode_0" checked' in page  # the default
    assert 'name="review_mode" value="review_first"' in page and "I review first" in page
    r = c.post("/requester/jobs/new/", {**NEW_JOB, "review_mode": "review_first"})
    job = Job.objects.get(requester=requester)
    assert r.status_code == 302 and r["Location"] == f"/requester/jobs/{job.pk}/"
    assert _policy(job) == (False, False)
    dashboard = c.get(r["Location"]).content.decode()
    assert 'value="review_first" checked' in dashboard
    # Chosen "accept automatically", or left out: consensus settles work at once.
    c.post("/requester/jobs/new/", {**NEW_JOB, "title": "Auto", "review_mode": "auto"})
    c.post("/requester/jobs/new/", {**NEW_JOB, "title": "Left out"})
    for title in ("Auto", "Left out"):
        assert _policy(Job.objects.get(title=title)) == (True, True)


@pytest.mark.django_db
def test_a_new_job_with_a_bad_review_mode_or_bad_fields_creates_nothing():
    from marketplace.errors import ValidationError
    from marketplace.models import Job
    from quality import services

    requester = RequesterFactory()
    fields = {**NEW_JOB, "label_classes": ["car"]}
    c = _client(requester)
    r = c.post("/requester/jobs/new/", {**NEW_JOB, "review_mode": "whatever"})
    assert r.status_code == 200 and "review_mode" in r.context["form"].errors
    # The service's own checks refuse the job: no job, no policy (both or neither).
    r = c.post("/requester/jobs/new/", {**NEW_JOB, "overlap_min": 4, "review_mode": "review_first"})
    assert r.status_code == 200 and r.context["form"].errors
    assert not Job.objects.filter(requester=requester).exists()
    assert not JobQualityPolicy.objects.exists()
    with pytest.raises(ValidationError, match="Choose a review mode"):
        services.job_create_with_review_mode(requester=requester, mode="custom", **fields)
    assert not Job.objects.filter(requester=requester).exists()
    # A worker has no new-job page.
    assert _client(WorkerFactory()).get("/requester/jobs/new/").status_code == 404


@pytest.mark.django_db
def test_approve_and_reject_one_submission_from_the_list(no_gold):
    job = published_job(n=3, overlap=1)
    store_frames(job)
    w1, w2 = qualified_worker(), qualified_worker()
    a1, a2 = _submit(job, w1), _submit(job, w2)
    c = _client(job.requester)
    page = c.get(f"/requester/jobs/{job.pk}/submissions/")
    assert page.status_code == 200
    # The frames behind the shapes, at the requester's frame route, and the worker's box.
    assert f"/requester/microtasks/{a1.microtask_id}/frames/0.jpg".encode() in page.content
    assert b'<rect class="shape"' in page.content

    before = pay_selectors.worker_balances(worker=w1)["pending"]
    r = c.post(f"/requester/jobs/{job.pk}/submissions/review/", {"approve": a1.pk}, follow=True)
    assert f"Approved #{a1.pk}" in _messages(r)
    a1.refresh_from_db()
    assert a1.status == AssignmentStatus.APPROVED and a1.reviewed_by == job.requester
    assert pay_selectors.worker_balances(worker=w1)["pending"] == before + a1.pay_amount > before

    # No reason: refused, nothing changes.
    r = c.post(f"/requester/jobs/{job.pk}/submissions/review/", {"reject": a2.pk}, follow=True)
    assert "Say why the work is rejected" in _messages(r)
    a2.refresh_from_db()
    assert a2.status == AssignmentStatus.SUBMITTED
    available = pay_selectors.escrow_balance(job=job).available
    r = c.post(
        f"/requester/jobs/{job.pk}/submissions/review/",
        {"reject": a2.pk, f"reason-{a2.pk}": "Boxes miss the cars."},
        follow=True,
    )
    a2.refresh_from_db()
    assert a2.status == AssignmentStatus.REJECTED
    assert a2.rejection_reason == "Boxes miss the cars."
    assert pay_selectors.worker_balances(worker=w2)["pending"] == 0
    # The rejected work's reservation went back to the job's escrow.
    assert pay_selectors.escrow_balance(job=job).available == available + a2.reserved_amount


@pytest.mark.django_db
def test_bulk_approve_and_reject_go_through_the_one_door(no_gold):
    job = published_job(n=5, overlap=1)
    subs = [_submit(job, qualified_worker()) for _ in range(4)]
    c = _client(job.requester)
    url = f"/requester/jobs/{job.pk}/submissions/review/"
    r = c.post(url, {"bulk": "approve", "assignments": [subs[0].pk, subs[1].pk]}, follow=True)
    assert "Approved 2 submissions." in _messages(r)
    # A bulk rejection without a reason is refused as a whole.
    r = c.post(url, {"bulk": "reject", "assignments": [subs[2].pk, subs[3].pk]}, follow=True)
    assert "Say why" in _messages(r)
    assert Assignment.objects.get(pk=subs[2].pk).status == AssignmentStatus.SUBMITTED
    r = c.post(
        url,
        {"bulk": "reject", "assignments": [subs[2].pk, subs[3].pk], "reason": "Empty frames."},
        follow=True,
    )
    assert "Rejected 2 submissions." in _messages(r)
    statuses = {a.pk: a for a in Assignment.objects.filter(pk__in=[s.pk for s in subs])}
    assert [statuses[s.pk].status for s in subs] == ["approved", "approved", "rejected", "rejected"]
    assert statuses[subs[3].pk].rejection_reason == "Empty frames."
    assert all(statuses[s.pk].pay_amount > 0 for s in subs[:2])
    escrow = pay_selectors.escrow_balance(job=job)
    assert escrow.paid == sum(statuses[s.pk].pay_amount for s in subs[:2])
    # Pressing Enter in a reason field hits the form's first button, which does nothing.
    r = c.post(url, {"noop": "1", "assignments": [subs[0].pk]}, follow=True)
    assert "Choose approve or reject." in _messages(r)


@pytest.mark.django_db
def test_another_requester_cannot_review_or_list_the_submissions(no_gold):
    job = published_job(n=2, overlap=1)
    a = _submit(job, qualified_worker())
    stranger = _client(RequesterFactory())
    assert stranger.get(f"/requester/jobs/{job.pk}/submissions/").status_code == 404
    url = f"/requester/jobs/{job.pk}/submissions/review/"
    assert stranger.post(url, {"approve": a.pk}).status_code == 404
    # Their own job's review form, naming this job's submission: not found, nothing changes.
    other = published_job(n=1, overlap=1, requester=RequesterFactory())
    r = _client(other.requester).post(
        f"/requester/jobs/{other.pk}/submissions/review/", {"approve": a.pk}, follow=True
    )
    assert f"No such submission: {a.pk}." in _messages(r)
    a.refresh_from_db()
    assert a.status == AssignmentStatus.SUBMITTED


@pytest.mark.django_db
def test_submissions_are_paginated_and_filtered(no_gold):
    job = published_job(n=25, overlap=1)
    subs = [_submit(job, qualified_worker()) for _ in range(22)]
    reviewing.assignment_approve(assignment_id=subs[0].pk, by=job.requester)
    c = _client(job.requester)
    first = c.get(f"/requester/jobs/{job.pk}/submissions/")
    assert len(first.context["rows"]) == 20 and first.context["page"].paginator.num_pages == 2
    second = c.get(f"/requester/jobs/{job.pk}/submissions/?page=2")
    assert len(second.context["rows"]) == 2
    waiting = c.get(f"/requester/jobs/{job.pk}/submissions/?status=submitted&page=2")
    assert len(waiting.context["rows"]) == 1
    approved = c.get(f"/requester/jobs/{job.pk}/submissions/?status=approved")
    assert [r["a"].pk for r in approved.context["rows"]] == [subs[0].pk]
    assert c.get(f"/requester/jobs/{job.pk}/submissions/?page=zz&status=<x>").status_code == 200


# --- The review page: real frames, each replica's agreement --------------------------------------


@pytest.mark.django_db(transaction=True)
def test_review_page_draws_the_frame_and_each_replicas_agreement(world_factory, workers, no_gold):
    world = world_factory(n=1, overlap=2, overlap_max=2)
    store_frames(world.job)
    good, bad = workers(2)
    kept = claim_and_submit(world, good, PRECISE, seed=1)
    spam = claim_and_submit(world, bad, SPAMMER, seed=2)
    item = ReviewItem.objects.get(status="open")
    for who in (world.job.requester, AdminFactory()):
        page = _client(who).get(f"/quality/review/{item.pk}/")
        assert page.status_code == 200
        assert (
            f'href="/requester/microtasks/{item.microtask_id}/frames/0.jpg"'.encode()
            in page.content
        )
        subs = {s["assignment"]: s for s in page.context["overlay"]["submissions"]}
        assert set(subs) == {kept.pk, spam.pk}
        assert all(s["agreement"] is not None for s in subs.values())
        assert f'id="replica-{kept.pk}"'.encode() in page.content
        assert f"{subs[kept.pk]['agreement']:.2f}".encode() in page.content
    frame = _client(world.job.requester).get(
        f"/requester/microtasks/{item.microtask_id}/frames/0.jpg"
    )
    assert frame.status_code == 200


# --- Gold drawn in the workspace -----------------------------------------------------------------


@pytest.mark.django_db
def test_gold_page_gives_the_workspace_the_microtask_and_is_the_requesters_only(no_gold):
    job = ready_job(n=2, overlap=1)
    store_frames(job)
    mt = MicroTask.objects.filter(job=job).order_by("index")[0]
    page = _client(job.requester).get(f"/quality/jobs/{job.pk}/gold/draw/{mt.pk}/")
    assert page.status_code == 200
    view = page.context["view"]
    assert view["type"] == "bbox" and view["classes"] == ["car", "person"]
    assert view["track_masks"] is False  # a track job with masks: its gold paints them too
    assert view["task"]["frames"][0]["url"] == f"/requester/microtasks/{mt.pk}/frames/0.jpg"
    assert b'id="gold-data"' in page.content and b"annotate/gold.mjs" in page.content
    assert f"/api/quality/microtasks/{mt.pk}/gold/".encode() in page.content
    assert (
        _client(RequesterFactory()).get(f"/quality/jobs/{job.pk}/gold/draw/{mt.pk}/").status_code
        == 404
    )
    other = ready_job(n=1, overlap=1, requester=job.requester)
    foreign = MicroTask.objects.filter(job=other)[0]
    assert (
        _client(job.requester).get(f"/quality/jobs/{job.pk}/gold/draw/{foreign.pk}/").status_code
        == 404
    )


@pytest.mark.django_db
def test_the_quality_report_links_the_microtasks_free_for_a_drawn_gold_answer(no_gold):
    job = published_job(n=3, overlap=1)
    taken = claiming.assignment_claim(worker=qualified_worker(), job_id=job.pk)
    page = _client(job.requester).get(f"/quality/jobs/{job.pk}/")
    free = [m.pk for m in page.context["gold_candidates"]]
    assert taken.microtask_id not in free and len(free) == 2
    for pk in free:
        assert f"/quality/jobs/{job.pk}/gold/draw/{pk}/".encode() in page.content


@pytest.mark.django_db
def test_a_mask_job_from_the_page_chooses_its_consensus_method():
    from marketplace.models import Job

    requester = RequesterFactory()
    c = _client(requester)
    page = c.get("/requester/jobs/new/").content.decode()
    assert 'name="consensus_method"' in page and "STAPLE" in page
    fields = {**NEW_JOB, "annotation_type": "mask", "consensus_method": "staple"}
    r = c.post("/requester/jobs/new/", {**fields, "title": "Masks"})
    assert r.status_code == 302
    assert Job.objects.get(title="Masks").consensus_method == "staple"
    c.post("/requester/jobs/new/", {**NEW_JOB, "title": "Left out"})
    assert Job.objects.get(title="Left out").consensus_method == "vote"
    r = c.post("/requester/jobs/new/", {**fields, "title": "Bad", "consensus_method": "median"})
    assert r.status_code == 200 and "consensus_method" in r.context["form"].errors
    assert not Job.objects.filter(title="Bad").exists()


@pytest.mark.django_db
def test_a_track_job_from_the_page_asks_for_masks_on_its_keyframes():
    from marketplace.models import Job

    requester = RequesterFactory()
    c = _client(requester)
    assert 'name="track_masks"' in c.get("/requester/jobs/new/").content.decode()
    fields = {**NEW_JOB, "annotation_type": "track", "track_masks": "on"}
    assert c.post("/requester/jobs/new/", {**fields, "title": "Segmented"}).status_code == 302
    job = Job.objects.get(title="Segmented")
    assert job.track_masks is True
    assert b'id="job-track-masks"' in c.get(f"/requester/jobs/{job.pk}/").content
    r = c.post("/requester/jobs/new/", {**fields, "annotation_type": "bbox", "title": "Bad"})
    assert r.status_code == 200 and "track_masks" in r.context["form"].errors
    assert not Job.objects.filter(title="Bad").exists()


def test_a_mask_is_drawn_as_the_path_of_its_pixel_runs():
    import numpy as np

    from quality.overlay import mask_path
    from tasks import rle

    m = np.zeros((3, 5), bool)
    m[0, 1:3] = True
    m[2, 0] = m[2, 4] = True
    assert mask_path(rle.encode(m)) == "M1,0h2v1h-2zM0,2h1v1h-1zM4,2h1v1h-1z"


@pytest.mark.django_db
def test_mask_submissions_are_drawn_on_the_submissions_page(no_gold):
    import numpy as np

    from tasks import rle
    from tests.tasks.claim_fixtures import HEIGHT, WIDTH

    job = published_job(n=1, overlap=1, annotation_type="mask")
    store_frames(job)
    worker = qualified_worker("mask")
    a = claiming.assignment_claim(worker=worker, job_id=job.pk)
    m = np.zeros((HEIGHT, WIDTH), bool)
    m[20:40, 30:70] = True
    payload = {"masks": [{"frame": a.microtask.frame_start, "label": "car", "rle": rle.encode(m)}]}
    claiming.assignment_submit(worker=worker, assignment_id=a.pk, payload=payload)
    page = _client(job.requester).get(f"/requester/jobs/{job.pk}/submissions/")
    assert page.status_code == 200
    assert b'<path class="shape" d="M30,20h40v1h-40z' in page.content
