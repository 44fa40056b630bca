"""A job's attributes per class and relation predicates, through the job API and the requester's
new-job page: validated field by field at creation, nothing written when refused."""

from __future__ import annotations

import json

import pytest

from marketplace.models import Job
from tests.factories import RequesterFactory

pytestmark = pytest.mark.django_db

ATTRIBUTES = {
    "car": [
        {"name": "occluded", "type": "bool"},
        {"name": "colour", "type": "choice", "values": ["red", "blue"]},
        {"name": "speed", "type": "number", "min": 0, "max": 200},
    ]
}
VALID = {
    "title": "Cars and riders",
    "annotation_type": "bbox",
    "label_classes": ["car", "person"],
    "label_attributes": ATTRIBUTES,
    "relation_predicates": ["rides", "holds"],
    "budget": 50_000,
    "currency": "usd",
}


def test_the_api_creates_a_job_with_attributes_and_predicates(requester_client):
    created = requester_client.post("/api/jobs/", VALID, format="json")
    assert created.status_code == 201, created.json()
    body = requester_client.get(f"/api/jobs/{created.json()['id']}/").json()
    assert body["label_attributes"] == ATTRIBUTES
    assert body["relation_predicates"] == ["rides", "holds"]
    job = Job.objects.get(pk=body["id"])
    assert job.label_attributes == ATTRIBUTES and job.relation_predicates == ["rides", "holds"]


def test_a_job_without_them_has_none(requester_client):
    plain = {k: v for k, v in VALID.items() if k not in ("label_attributes", "relation_predicates")}
    body = requester_client.post("/api/jobs/", plain, format="json").json()
    assert body["label_attributes"] == {} and body["relation_predicates"] == []


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        (
            {"label_attributes": {"truck": [{"name": "a", "type": "bool"}]}},
            "label_attributes",
            "not one of",
        ),
        (
            {"label_attributes": {"car": [{"name": "c", "type": "choice", "values": []}]}},
            "label_attributes",
            "non-empty list",
        ),
        (
            {"label_attributes": {"car": [{"name": "a", "type": "bool"}] * 2}},
            "label_attributes",
            "unique",
        ),
        (
            {"label_attributes": {"car": [{"name": f"a{i}", "type": "bool"} for i in range(21)]}},
            "label_attributes",
            "",
        ),
        ({"relation_predicates": ["rides", "rides"]}, "relation_predicates", "unique"),
        ({"relation_predicates": ["x" * 41]}, "relation_predicates", ""),
        (
            {
                "annotation_type": "classify",
                "relation_predicates": ["rides"],
                "label_attributes": {},
            },
            "relation_predicates",
            "Only bbox, polygon, track jobs",
        ),
    ],
)
def test_bad_schemas_are_refused_with_field_errors_and_nothing_written(
    requester_client, change, field, fragment
):
    response = requester_client.post("/api/jobs/", {**VALID, **change}, format="json")
    assert response.status_code == 400, response.json()
    fields = response.json()["error"]["fields"]
    assert field in fields and fragment in json.dumps(fields[field]), fields
    assert not Job.objects.exists()


def test_a_draft_can_change_its_attributes(requester_client):
    pk = requester_client.post("/api/jobs/", VALID, format="json").json()["id"]
    new = {"car": [{"name": "parked", "type": "bool"}]}
    ok = requester_client.patch(f"/api/jobs/{pk}/", {"label_attributes": new}, format="json")
    assert ok.status_code == 200 and Job.objects.get(pk=pk).label_attributes == new
    bad = requester_client.patch(
        f"/api/jobs/{pk}/", {"label_attributes": {"car": [{"name": "x"}]}}, format="json"
    )
    assert bad.status_code == 400 and Job.objects.get(pk=pk).label_attributes == new


PAGE_JOB = {
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


def _page_client(client):
    requester = RequesterFactory()
    client.force_login(requester)
    return requester


def test_the_new_job_page_takes_attributes_as_json_and_predicates_as_a_list(client):
    requester = _page_client(client)
    page = client.get("/requester/jobs/new/").content.decode()
    assert 'name="label_attributes"' in page and 'name="relation_predicates"' in page
    r = client.post(
        "/requester/jobs/new/",
        {
            **PAGE_JOB,
            "label_attributes": json.dumps(ATTRIBUTES),
            "relation_predicates": "rides, holds",
        },
    )
    assert r.status_code == 302
    job = Job.objects.get(requester=requester)
    assert job.label_attributes == ATTRIBUTES and job.relation_predicates == ["rides", "holds"]
    detail = client.get(r["Location"]).content.decode()
    assert "car: occluded (yes/no), colour (red / blue), speed (number 0 to 200)" in detail
    assert "rides, holds" in detail


@pytest.mark.parametrize(
    ("attributes", "fragment"),
    [
        ("{not json", "Must be JSON"),
        (json.dumps({"bus": [{"name": "a", "type": "bool"}]}), "not one of the job"),
        ("[" * 5000 + "]" * 5000, "Must be JSON"),
    ],
)
def test_the_new_job_page_shows_schema_errors_on_the_field(client, attributes, fragment):
    requester = _page_client(client)
    r = client.post("/requester/jobs/new/", {**PAGE_JOB, "label_attributes": attributes})
    assert r.status_code == 200
    assert fragment in r.content.decode()
    assert not Job.objects.filter(requester=requester).exists()


def test_the_new_job_page_takes_event_labels_for_a_track_job(client):
    requester = _page_client(client)
    page = client.get("/requester/jobs/new/").content.decode()
    assert 'name="event_labels"' in page
    r = client.post(
        "/requester/jobs/new/",
        {**PAGE_JOB, "annotation_type": "track", "event_labels": "crossing, waving"},
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    job = Job.objects.get(requester=requester)
    assert job.event_labels == ["crossing", "waving"]
    assert 'id="job-event-labels">crossing, waving<' in client.get(r["Location"]).content.decode()


def test_the_new_job_page_refuses_event_labels_on_a_box_job_on_the_field(client):
    requester = _page_client(client)
    r = client.post(
        "/requester/jobs/new/", {**PAGE_JOB, "annotation_type": "bbox", "event_labels": "waving"}
    )
    assert r.status_code == 200
    assert "Only a track job takes event labels" in r.content.decode()
    assert not Job.objects.filter(requester=requester).exists()
