"""The requester job API: lifecycle, scoping, filtering and bad input."""

from __future__ import annotations

import json

import pytest

from marketplace.models import Job, JobStatus
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

VALID = {
    "title": "Cars on the highway",
    "instructions": "Box every car.",
    "annotation_type": "bbox",
    "label_classes": ["car", "truck"],
    "budget": 50_000,
    "currency": "usd",
    "overlap_min": 2,
    "overlap_max": 4,
}


def test_requester_creates_lists_and_retrieves_own_job(requester_client, requester):
    created = requester_client.post("/api/jobs/", VALID, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["status"] == JobStatus.DRAFT
    assert body["requester"] == requester.username
    listed = requester_client.get("/api/jobs/").json()
    assert [j["id"] for j in listed["results"]] == [body["id"]]
    assert requester_client.get(f"/api/jobs/{body['id']}/").json()["title"] == VALID["title"]


def test_update_allowed_only_while_draft(requester_client, requester):
    job = JobFactory(requester=requester)
    ok = requester_client.patch(f"/api/jobs/{job.pk}/", {"title": "New"}, format="json")
    assert ok.status_code == 200
    assert Job.objects.get(pk=job.pk).title == "New"
    Job.objects.filter(pk=job.pk).update(status=JobStatus.PUBLISHED)
    refused = requester_client.patch(f"/api/jobs/{job.pk}/", {"title": "Later"}, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "invalid_transition"
    assert Job.objects.get(pk=job.pk).title == "New"


def test_cancel_moves_to_cancelled_and_cannot_repeat(requester_client, requester):
    job = JobFactory(requester=requester)
    assert requester_client.post(f"/api/jobs/{job.pk}/cancel/").json()["status"] == "cancelled"
    again = requester_client.post(f"/api/jobs/{job.pk}/cancel/")
    assert again.status_code == 409
    assert "cannot" in again.json()["error"]["message"]


@pytest.mark.parametrize("method", ["get", "patch", "cancel"])
def test_requester_cannot_touch_another_requesters_job(other_requester_client, method):
    job = JobFactory(title="Secret")
    url = f"/api/jobs/{job.pk}/"
    if method == "get":
        response = other_requester_client.get(url)
    elif method == "patch":
        response = other_requester_client.patch(url, {"title": "Hacked"}, format="json")
    else:
        response = other_requester_client.post(url + "cancel/")
    assert response.status_code == 404
    job.refresh_from_db()
    assert (job.title, job.status) == ("Secret", JobStatus.DRAFT)
    assert other_requester_client.get("/api/jobs/").json()["count"] == 0


def test_anonymous_is_refused(api_client):
    JobFactory()
    assert api_client.get("/api/jobs/").status_code in (401, 403)
    assert api_client.post("/api/jobs/", VALID, format="json").status_code in (401, 403)
    assert Job.objects.count() == 1


def test_worker_cannot_create_or_list_jobs(worker_client):
    response = worker_client.post("/api/jobs/", VALID, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert worker_client.get("/api/jobs/").status_code == 403
    assert Job.objects.count() == 0


def test_admin_sees_every_job(admin_client_api):
    JobFactory.create_batch(3)
    assert admin_client_api.get("/api/jobs/").json()["count"] == 3


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": None}, "title"),
        ({"budget": -1}, "budget"),
        ({"annotation_type": "skeleton"}, "annotation_type"),
        ({"overlap_min": 5, "overlap_max": 2}, "overlap_min"),
        ({"label_classes": ["car", "car"]}, "label_classes"),
        ({"label_classes": []}, "label_classes"),
        ({"currency": "dollars"}, "currency"),
        ({"gold_rate": 2}, "gold_rate"),
        ({"assist_accuracy_bar": 1.5}, "assist_accuracy_bar"),
        ({"assist_accuracy_bar": 0.2}, "assist_accuracy_bar"),
        ({"assist_accuracy_bar": "NaN"}, "assist_accuracy_bar"),
        ({"assist_accuracy_bar": "high"}, "assist_accuracy_bar"),
        ({"segment_frames": 10, "overlap_frames": 10}, "overlap_frames"),
    ],
)
def test_bad_job_input_is_400_with_field_errors(requester_client, change, field):
    payload = {k: v for k, v in {**VALID, **change}.items() if v is not None}
    response = requester_client.post("/api/jobs/", payload, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"]
    assert Job.objects.count() == 0


def test_the_assisted_routing_bar_is_a_bounded_job_setting(requester_client, requester):
    created = requester_client.post("/api/jobs/", VALID, format="json").json()
    assert created["assist_accuracy_bar"] == 0.95  # the default
    job = JobFactory(requester=requester)
    ok = requester_client.patch(f"/api/jobs/{job.pk}/", {"assist_accuracy_bar": 0.9}, format="json")
    assert ok.status_code == 200 and ok.json()["assist_accuracy_bar"] == 0.9
    assert Job.objects.get(pk=job.pk).assist_accuracy_bar == 0.9
    refused = requester_client.patch(
        f"/api/jobs/{job.pk}/", {"assist_accuracy_bar": 1.01}, format="json"
    )
    assert refused.status_code == 400
    assert "assist_accuracy_bar" in refused.json()["error"]["fields"]
    assert Job.objects.get(pk=job.pk).assist_accuracy_bar == 0.9


def test_malformed_json_is_400(requester_client):
    response = requester_client.post(
        "/api/jobs/", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"]


def test_filtering_ordering_and_pagination(requester_client, requester):
    a = JobFactory(requester=requester, annotation_type="bbox", budget=10)
    b = JobFactory(requester=requester, annotation_type="track", budget=30)
    c = JobFactory(requester=requester, annotation_type="track", budget=20)
    Job.objects.filter(pk=c.pk).update(status=JobStatus.CANCELLED)

    tracks = requester_client.get("/api/jobs/?annotation_type=track&ordering=budget").json()
    assert [j["id"] for j in tracks["results"]] == [c.pk, b.pk]
    drafts = requester_client.get("/api/jobs/?status=draft&ordering=-budget").json()
    assert [j["id"] for j in drafts["results"]] == [b.pk, a.pk]
    page = requester_client.get("/api/jobs/?page_size=2&ordering=budget").json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    bad = requester_client.get("/api/jobs/?status=nonsense")
    assert bad.status_code == 400


def test_a_mask_job_takes_a_bounded_consensus_method(requester_client):
    body = {**VALID, "annotation_type": "mask", "consensus_method": "staple"}
    created = requester_client.post("/api/jobs/", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["consensus_method"] == "staple"
    bad = requester_client.post("/api/jobs/", {**body, "consensus_method": "median"}, format="json")
    assert bad.status_code == 400 and "consensus_method" in bad.json()["error"]["fields"]
    assert Job.objects.count() == 1


def test_only_a_track_job_asks_for_masks_on_its_keyframes(requester_client):
    body = {**VALID, "annotation_type": "track", "track_masks": True}
    created = requester_client.post("/api/jobs/", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["track_masks"] is True
    assert Job.objects.get(pk=created.json()["id"]).track_masks is True
    for bad in ({**body, "annotation_type": "bbox"}, {**body, "track_masks": "maybe"}):
        refused = requester_client.post("/api/jobs/", bad, format="json")
        assert refused.status_code == 400 and "track_masks" in refused.json()["error"]["fields"]
    assert Job.objects.count() == 1


def test_event_jobs_and_a_track_jobs_event_labels_are_checked_field_by_field(requester_client):
    event = {**VALID, "annotation_type": "event", "label_classes": ["crossing", "waving"]}
    created = requester_client.post("/api/jobs/", event, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["event_labels"] == []

    track = {**VALID, "annotation_type": "track", "event_labels": ["crossing", "falling"]}
    created = requester_client.post("/api/jobs/", track, format="json")
    assert created.status_code == 201, created.json()
    assert Job.objects.get(pk=created.json()["id"]).event_labels == ["crossing", "falling"]

    before = Job.objects.count()
    for body, fragment in [
        ({**VALID, "event_labels": ["crossing"]}, "Only a track job"),
        ({**track, "event_labels": ["crossing", "crossing"]}, "unique"),
        ({**track, "event_labels": ["x" * 101]}, "100 characters"),
        ({**track, "event_labels": ["   "]}, ""),
        ({**track, "event_labels": ["e"] * 201}, "200"),
        ({**track, "event_labels": "crossing"}, ""),
    ]:
        r = requester_client.post("/api/jobs/", body, format="json")
        assert r.status_code == 400, (body["event_labels"], r.json())
        fields = r.json()["error"]["fields"]
        assert "event_labels" in fields, fields
        assert fragment in json.dumps(fields["event_labels"]), fields
    assert Job.objects.count() == before
