"""``review_mode`` on the job API (``quality.api.jobs``): chosen on create, validated, returned
with every job, and the same policy as the quality policy API's switches."""

from __future__ import annotations

import json

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

from marketplace.models import Job
from quality.models import JobQualityPolicy
from quality.simulator import PRECISE
from tasks import claiming
from tasks.models import Assignment, AssignmentStatus
from tests.factories import JobFactory
from tests.marketplace.test_jobs_api import VALID
from tests.quality.conftest import make_world
from tests.quality.test_services import claim_and_submit
from tests.tasks.claim_fixtures import qualified_worker, ready_job
from tests.tasks.ingest_helpers import make_clip, upload


def _switches(job_id: int) -> tuple[bool, bool]:
    pol = JobQualityPolicy.objects.get(job_id=job_id)
    return pol.auto_approve, pol.auto_reject


@pytest.mark.django_db
def test_an_unknown_review_mode_is_a_400_naming_the_field_and_creates_nothing(
    requester_client, requester
):
    for bad in ("whatever", "custom", "", None, 1, ["auto"]):
        r = requester_client.post("/api/jobs/", {**VALID, "review_mode": bad}, format="json")
        assert r.status_code == 400, (bad, r.content)
        assert "review_mode" in r.json()["error"]["fields"], bad
    assert not Job.objects.filter(requester=requester).exists()
    assert not JobQualityPolicy.objects.exists()


@pytest.mark.django_db
def test_review_first_is_stored_as_the_policy_api_stores_it_and_returned(
    requester_client, requester
):
    r = requester_client.post("/api/jobs/", {**VALID, "review_mode": "review_first"}, format="json")
    assert r.status_code == 201, r.content
    created = r.json()
    assert created["review_mode"] == "review_first"
    # The same switches the quality policy API sets for "review first".
    other = JobFactory(requester=requester)
    patched = requester_client.patch(
        f"/api/quality/jobs/{other.pk}/policy/",
        {"auto_approve": False, "auto_reject": False},
        format="json",
    )
    assert patched.status_code == 200
    assert _switches(created["id"]) == _switches(other.pk) == (False, False)
    assert requester_client.get(f"/api/jobs/{other.pk}/").json()["review_mode"] == "review_first"
    assert requester_client.get(f"/api/jobs/{created['id']}/").json()["review_mode"] == (
        "review_first"
    )
    listed = requester_client.get("/api/jobs/").json()["results"]
    assert {j["id"]: j["review_mode"] for j in listed} == {
        created["id"]: "review_first",
        other.pk: "review_first",
    }


@pytest.mark.django_db
def test_left_out_the_mode_is_auto_as_before_and_a_custom_policy_reads_custom(
    requester_client, requester
):
    r = requester_client.post("/api/jobs/", VALID, format="json")
    assert r.status_code == 201 and r.json()["review_mode"] == "auto"
    assert _switches(r.json()["id"]) == (True, True)
    job_id = r.json()["id"]
    requester_client.patch(
        f"/api/quality/jobs/{job_id}/policy/", {"auto_approve": False}, format="json"
    )
    assert requester_client.get(f"/api/jobs/{job_id}/").json()["review_mode"] == "custom"
    # A factory job with no policy row reads the defaults.
    assert requester_client.get(f"/api/jobs/{JobFactory(requester=requester).pk}/").json()[
        "review_mode"
    ] == ("auto")


@pytest.mark.django_db
def test_an_update_sets_the_mode_with_the_fields_or_neither(requester_client, requester):
    job = JobFactory(requester=requester)
    bad = requester_client.patch(
        f"/api/jobs/{job.pk}/", {"title": "New", "review_mode": "nope"}, format="json"
    )
    assert bad.status_code == 400 and "review_mode" in bad.json()["error"]["fields"]
    # A field the service refuses: the mode is not saved either.
    refused = requester_client.patch(
        f"/api/jobs/{job.pk}/",
        {"overlap_min": 5, "overlap_max": 2, "review_mode": "review_first"},
        format="json",
    )
    assert refused.status_code == 400
    assert not JobQualityPolicy.objects.filter(job=job).exists()
    ok = requester_client.patch(
        f"/api/jobs/{job.pk}/", {"title": "New", "review_mode": "review_first"}, format="json"
    )
    assert ok.status_code == 200 and ok.json()["review_mode"] == "review_first"
    assert ok.json()["title"] == "New" and _switches(job.pk) == (False, False)


@pytest.mark.django_db
def test_the_mode_alone_is_answered_as_saved(requester_client, requester):
    """A PATCH of the mode alone answers the mode it saved (it answered the one read before)."""
    for job in (JobFactory(requester=requester), ready_job(n=1, requester=requester)):
        for mode in ("review_first", "auto"):
            r = requester_client.patch(f"/api/jobs/{job.pk}/", {"review_mode": mode}, format="json")
            assert r.status_code == 200, r.content
            assert r.json()["review_mode"] == mode, (job.pk, mode)
            assert requester_client.get(f"/api/jobs/{job.pk}/").json()["review_mode"] == mode


@pytest.mark.django_db(transaction=True)
def test_review_first_set_through_the_job_api_holds_consensus_approval(client_for, monkeypatch):
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)  # no gold
    world = make_world(n=1, overlap=3, publish=False)
    c = client_for(world.job.requester)
    # Past draft the job's fields are frozen; its review mode still changes (as on the dashboard).
    r = c.patch(f"/api/jobs/{world.job.pk}/", {"review_mode": "review_first"}, format="json")
    assert r.status_code == 200, r.content
    assert c.patch(f"/api/jobs/{world.job.pk}/", {"title": "x"}, format="json").status_code == 409
    claiming.job_publish(job=world.job, by=world.job.requester)
    subs = [claim_and_submit(world, qualified_worker(), PRECISE, seed=i) for i in range(3)]
    statuses = {a.status for a in Assignment.objects.filter(pk__in=[s.pk for s in subs])}
    assert statuses == {AssignmentStatus.SUBMITTED}  # consensus agreed; the requester decides


@pytest.mark.django_db
def test_every_lifecycle_answer_carries_the_review_mode_as_a_read_does(
    requester_client, requester, settings, tmp_path
):
    """process, publish, pause, resume, complete and cancel answer the job as GET does."""
    settings.MEDIA_ROOT = tmp_path / "media"

    def as_read(job_id: int) -> dict:
        return requester_client.get(f"/api/jobs/{job_id}/").json()

    draft = requester_client.post(
        "/api/jobs/", {**VALID, "review_mode": "review_first"}, format="json"
    ).json()
    clip = make_clip(tmp_path).data
    assert upload(requester_client, draft["id"], ("a.mp4", clip)).status_code == 201
    processed = requester_client.post(f"/api/jobs/{draft['id']}/process/")
    assert processed.status_code == 202, processed.content
    assert processed.json()["status"] == "processing"
    assert processed.json() == as_read(draft["id"])
    assert processed.json()["review_mode"] == "review_first"

    job = ready_job(n=2, requester=requester)
    assert requester_client.patch(
        f"/api/jobs/{job.pk}/", {"review_mode": "review_first"}, format="json"
    ).json()["review_mode"] == ("review_first")
    published = requester_client.post(f"/api/jobs/{job.pk}/publish/")
    assert published.status_code == 200, published.content
    assert published.json()["job"] == as_read(job.pk)
    assert published.json()["job"]["review_mode"] == "review_first"
    assert published.json()["job"]["status"] == "published" and published.json()["slots"] == 6
    for step, status in (("pause", "paused"), ("resume", "published"), ("complete", "completed")):
        answer = requester_client.post(f"/api/jobs/{job.pk}/{step}/")
        assert answer.status_code == 200, (step, answer.content)
        assert answer.json() == as_read(job.pk), step
        assert (answer.json()["status"], answer.json()["review_mode"]) == (status, "review_first")
    other = ready_job(n=1, requester=requester)
    cancelled = requester_client.post(f"/api/jobs/{other.pk}/cancel/")
    assert cancelled.json() == as_read(other.pk) and cancelled.json()["review_mode"] == "auto"


@pytest.mark.django_db
def test_the_schema_answers_every_job_with_its_review_mode():
    """No operation answers marketplace's bare ``Job``: every job in the API is
    ``JobWithReviewMode`` (publish's inside ``JobPublished``)."""
    schema = json.loads(
        OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True))
    )
    components = schema["components"]["schemas"]
    assert "Job" not in components
    assert "review_mode" in components["JobWithReviewMode"]["properties"]
    assert components["JobPublished"]["properties"]["job"] == {
        "$ref": "#/components/schemas/JobWithReviewMode"
    }
    ref = {"$ref": "#/components/schemas/JobWithReviewMode"}
    for step, code in (
        ("process", "202"),
        ("pause", "200"),
        ("resume", "200"),
        ("complete", "200"),
    ):
        op = schema["paths"][f"/api/jobs/{{id}}/{step}/"]["post"]
        assert op["responses"][code]["content"]["application/json"]["schema"] == ref, step
    publish = schema["paths"]["/api/jobs/{id}/publish/"]["post"]["responses"]["200"]
    assert publish["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobPublished"
    }
