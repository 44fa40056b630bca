"""The requester's submissions list (``GET /api/jobs/<id>/submissions/``) is paginated: every
submission of a big job is reachable, none twice, none dropped (it used to stop at 1,000)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.models import Assignment, AssignmentStatus, MicroTask, Submission
from tests.factories import JobFactory, VideoFactory, WorkerFactory

pytestmark = pytest.mark.django_db

MICROTASKS, WORKERS = 35, 36  # 1,260 submissions


@pytest.fixture
def big_job():
    job = JobFactory()
    video = VideoFactory(job=job)
    microtasks = MicroTask.objects.bulk_create(
        MicroTask(video=video, job=job, index=i, frame_start=0, frame_end=9, price=50)
        for i in range(MICROTASKS)
    )
    workers = [WorkerFactory() for _ in range(WORKERS)]
    now = timezone.now()
    assignments = Assignment.objects.bulk_create(
        Assignment(
            microtask=mt,
            worker=w,
            status=AssignmentStatus.APPROVED if n % 3 == 0 else AssignmentStatus.SUBMITTED,
            claimed_at=now - timedelta(hours=1),
            deadline=now + timedelta(hours=1),
            # Many equal submission times: the order must still be total (ties by id).
            submitted_at=now - timedelta(minutes=n % 7),
        )
        for n, (mt, w) in enumerate((mt, w) for mt in microtasks for w in workers)
    )
    Submission.objects.bulk_create(
        Submission(
            assignment=a, payload={"boxes": [{"frame": 0, "label": "car", "box": [1, 1, 5, 5]}]}
        )
        for a in assignments[:50]
    )
    return job, {a.pk for a in assignments}


def _all_pages(client, url: str) -> tuple[list[int], int]:
    seen: list[int] = []
    pages = 0
    while url:
        r = client.get(url)
        assert r.status_code == 200, r.content
        body = r.json()
        assert body["count"] >= len(body["results"])
        seen += [row["id"] for row in body["results"]]
        url, pages = body["next"], pages + 1
    return seen, pages


def test_every_submission_is_reachable_page_by_page(client_for, big_job):
    job, ids = big_job
    owner = client_for(job.requester)
    seen, pages = _all_pages(owner, f"/api/jobs/{job.pk}/submissions/?page_size=500")
    assert len(ids) > 1_000
    assert len(seen) == len(set(seen)) == len(ids)  # nothing twice, nothing dropped
    assert set(seen) == ids
    assert pages == 3

    first = owner.get(f"/api/jobs/{job.pk}/submissions/").json()
    assert first["count"] == len(ids) and len(first["results"]) == 100  # the default page
    with_payload = [row for row in first["results"] if row["payload"] is not None]
    assert with_payload and with_payload[0]["payload"]["boxes"][0]["label"] == "car"


def test_the_status_filter_pages_too(client_for, big_job):
    job, ids = big_job
    owner = client_for(job.requester)
    seen, _ = _all_pages(owner, f"/api/jobs/{job.pk}/submissions/?status=approved&page_size=200")
    approved = set(
        Assignment.objects.filter(pk__in=ids, status=AssignmentStatus.APPROVED).values_list(
            "pk", flat=True
        )
    )
    assert len(seen) == len(approved) and set(seen) == approved


@pytest.mark.parametrize("query", ["page_size=501", "page_size=0", "page=0", "page=x"])
def test_out_of_bounds_paging_is_a_400(client_for, big_job, query):
    job, _ = big_job
    r = client_for(job.requester).get(f"/api/jobs/{job.pk}/submissions/?{query}")
    assert r.status_code == 400
    assert r.json()["error"]["fields"]


def test_a_page_past_the_end_is_empty(client_for, big_job):
    job, _ = big_job
    body = client_for(job.requester).get(f"/api/jobs/{job.pk}/submissions/?page=999").json()
    assert body["results"] == [] and body["next"] is None
