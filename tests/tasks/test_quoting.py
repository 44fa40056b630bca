"""One complexity: the value ingestion stores is the value a price multiplies by; a quote only
reads, saving prices is a separate service."""

from __future__ import annotations

import pytest
from django.test import Client

from marketplace.models import JobStatus
from payments import pricing, work
from payments.selectors import active_policy
from tasks import quoting
from tasks.models import MicroTask
from tests.factories import JobFactory
from tests.tasks.ingest_helpers import make_clip, upload


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _ingested_job(requester, requester_client, tmp_path):
    clip = make_clip(tmp_path, frames=60, motion=3.0)
    job = JobFactory(requester=requester, annotation_type="bbox", frame_step=5, frames_per_task=4)
    assert upload(requester_client, job.pk, ("a.mp4", clip.data)).status_code == 201
    assert requester_client.post(f"/api/jobs/{job.pk}/process/").status_code == 202
    job.refresh_from_db()
    assert job.status == JobStatus.READY
    return job


@pytest.mark.django_db(transaction=True)
def test_stored_complexity_is_the_priced_complexity(requester, requester_client, tmp_path):
    job = _ingested_job(requester, requester_client, tmp_path)
    stored = {m.pk: m.complexity for m in MicroTask.objects.filter(job=job)}
    assert stored
    policy = active_policy()
    priced, _ = quoting.microtask_prices(job=job)
    for p in priced:
        mt = p.microtask
        # The moving clip has motion, and the price counts it (as the stored value says).
        assert mt.motion > 0
        assert p.price.complexity > 1.0 + policy.clutter_coef * mt.clutter
        assert stored[mt.pk] == p.price.complexity
        assert p.price == pricing.price_task(quoting.task_features(mt, job), policy=policy)

    # A new policy version: saving prices stores the complexity the new prices multiplied by.
    work.pricing_policy_create(motion_coef=policy.motion_coef * 2, note="test")
    quoting.job_prices_save(job=job)
    priced, _ = quoting.microtask_prices(job=job)
    for p in priced:
        mt = MicroTask.objects.get(pk=p.microtask.pk)
        assert mt.complexity == p.price.complexity
        assert mt.price == p.price.price
        assert mt.complexity != stored[mt.pk] or mt.complexity == policy.complexity_max


@pytest.mark.django_db(transaction=True)
def test_the_funding_page_quotes_without_pricing_anything(requester, requester_client, tmp_path):
    job = _ingested_job(requester, requester_client, tmp_path)
    before = dict(MicroTask.objects.filter(job=job).values_list("pk", "price"))
    page = Client()
    page.force_login(requester)
    response = page.get(f"/requester/jobs/{job.pk}/funding/")
    assert response.status_code == 200
    quote = quoting.job_quote(job=job)
    assert response.context["quote"] == quote
    assert dict(MicroTask.objects.filter(job=job).values_list("pk", "price")) == before

    # Saving prices is the service's, and it saves exactly what the quote priced.
    assert quoting.job_prices_save(job=job) == quote
    after = dict(MicroTask.objects.filter(job=job).values_list("pk", "price"))
    priced, _ = quoting.microtask_prices(job=job)
    assert after == {p.microtask.pk: p.price.price for p in priced}
    assert after != before


@pytest.mark.django_db
def test_a_mask_microtask_is_priced_by_the_boundary_measured_on_its_content():
    from tests.tasks.claim_fixtures import ready_job

    job = ready_job(n=2, overlap=1, annotation_type="mask", budget=0)
    plain, ragged = MicroTask.objects.filter(job=job).order_by("index")
    ragged.content_boundary = 8 * active_policy().boundary_ref  # three doublings of the edge
    ragged.save(update_fields=["content_boundary"])
    priced = {p.microtask.pk: p.price for (p,) in zip(quoting.microtask_prices(job=job)[0])}
    assert priced[ragged.pk].complexity == pytest.approx(
        priced[plain.pk].complexity + 3 * active_policy().boundary_coef
    )
    assert priced[ragged.pk].price > priced[plain.pk].price
    assert priced[ragged.pk].expected_seconds > priced[plain.pk].expected_seconds


@pytest.mark.django_db
def test_a_mask_microtask_is_priced_by_the_area_measured_on_its_content():
    from tests.tasks.claim_fixtures import ready_job

    job = ready_job(n=2, overlap=1, annotation_type="mask", budget=0)
    plain, large = MicroTask.objects.filter(job=job).order_by("index")
    large.content_area = 4 * active_policy().area_ref  # two doublings of the area
    large.save(update_fields=["content_area"])
    priced = {p.microtask.pk: p.price for (p,) in zip(quoting.microtask_prices(job=job)[0])}
    assert priced[large.pk].complexity == pytest.approx(
        priced[plain.pk].complexity + 2 * active_policy().area_coef
    )
    assert priced[large.pk].price > priced[plain.pk].price
