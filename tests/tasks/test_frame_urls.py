"""A worker's frames: opaque URLs in every worker response, served only to the assignment's own
worker (and staff), straight from media storage."""

from __future__ import annotations

import json
import re

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse

from tasks import claiming, work_selectors
from tasks.models import Assignment, MicroTask
from tests.factories import AdminFactory, RequesterFactory, WorkerFactory
from tests.tasks.claim_fixtures import published_job, qualified_worker, store_frames
from tests.tasks.test_ingest_s3 import s3_endpoint, s3_storage  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

CLAIM = "/api/work/claim/"


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def no_gold(monkeypatch):
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)


def _session(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def _frame_urls(view: dict) -> list[str]:
    return [f["url"] for f in view["task"]["frames"]]


def _assert_opaque(view: dict) -> None:
    urls = _frame_urls(view)
    assert urls == [
        f"/work/assignments/{view['id']}/frames/{i}.jpg" for i in range(len(view["task"]["frames"]))
    ]


def test_frame_url_is_the_named_route():
    assert work_selectors.FRAME_URL.format(assignment=12, index=3) == reverse(
        "work-frame", kwargs={"pk": 12, "index": 3}
    )


def test_no_worker_response_reveals_the_video_or_storage(media, client_for, no_gold):
    job = published_job(n=2)
    store_frames(job)
    video_id = MicroTask.objects.filter(job=job).first().video_id
    worker = qualified_worker()
    api = client_for(worker)
    claimed = api.post(CLAIM, {}, format="json")
    assert claimed.status_code == 201
    view = claimed.json()
    _assert_opaque(view)
    detail = api.get(f"/api/work/assignments/{view['id']}/")
    _assert_opaque(detail.json())
    frame = view["task"]["annotate_frames"][0]
    payload = {"boxes": [{"frame": frame, "label": "car", "box": [1, 1, 20, 20]}]}
    submitted = api.post(
        f"/api/work/assignments/{view['id']}/submit/", {"payload": payload}, format="json"
    )
    assert submitted.status_code == 200
    _assert_opaque(submitted.json())
    page = _session(worker).get(f"/work/assignments/{view['id']}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"/work/assignments/{view['id']}/frames/0.jpg" in html
    for text in (claimed.content.decode(), detail.content.decode(), submitted.content.decode()):
        assert "frames/video-" not in text and f"video-{video_id}" not in text
        assert "/media/" not in text
    assert "frames/video-" not in html and "/media/frames" not in html


def test_the_worker_gets_the_image_bytes_with_private_caching(media, client_for, no_gold):
    job = published_job(n=1)
    stored = store_frames(job)
    worker = qualified_worker()
    view = client_for(worker).post(CLAIM, {}, format="json").json()
    mt = Assignment.objects.get(pk=view["id"]).microtask
    for i, frame in enumerate(view["task"]["frames"]):
        r = _session(worker).get(frame["url"])
        assert r.status_code == 200
        assert _body(r) == stored[f"{mt.video.frames_prefix}/{frame['frame']:06d}.jpg"]
        assert r["Content-Type"] == "image/jpeg"
        cache = r["Cache-Control"]
        assert "private" in cache and "max-age=3600" in cache and "public" not in cache
        assert "video" not in r.get("Content-Disposition", "")
        assert f"{i}.jpg" in r["Content-Disposition"]
    # API clients authenticate with their token, as for the rest of the worker API.
    r = client_for(worker).get(view["task"]["frames"][0]["url"])
    assert r.status_code == 200 and _body(r) == stored[f"{mt.video.frames_prefix}/000000.jpg"]
    assert _session(worker).head(view["task"]["frames"][0]["url"]).status_code == 200


def test_media_urls_in_a_manifest_map_back_to_storage(media, client_for, no_gold):
    job = published_job(n=1)
    stored = store_frames(job, as_media_url=True)
    worker = qualified_worker()
    view = client_for(worker).post(CLAIM, {}, format="json").json()
    _assert_opaque(view)
    r = _session(worker).get(view["task"]["frames"][2]["url"])
    assert r.status_code == 200 and _body(r) in stored.values()


def test_nobody_else_can_fetch_a_workers_frames(media, client_for, no_gold):
    job = published_job(n=2)
    store_frames(job)
    worker = qualified_worker()
    view = client_for(worker).post(CLAIM, {}, format="json").json()
    url = view["task"]["frames"][0]["url"]
    other = qualified_worker()
    client_for(other).post(CLAIM, {}, format="json")  # has work of their own in the same job
    missing = f"/work/assignments/{view['id'] + 1000}/frames/0.jpg"
    for client in (
        _session(other),
        _session(job.requester),
        _session(RequesterFactory()),
        Client(),  # anonymous
        client_for(other),
        Client(HTTP_AUTHORIZATION="Token not-a-token"),
    ):
        r = client.get(url)
        assert r.status_code == 404, client
        assert client.get(missing).status_code == 404
    # No difference between someone else's frame and one that does not exist.
    assert _session(other).get(url).content == _session(other).get(missing).content
    assert _session(AdminFactory()).get(url).status_code == 200
    assert _session(worker).get(missing).status_code == 404
    out_of_range = f"/work/assignments/{view['id']}/frames/{len(view['task']['frames'])}.jpg"
    assert _session(worker).get(out_of_range).status_code == 404


def test_a_missing_image_or_an_external_one_is_not_served(media, client_for, no_gold):
    job = published_job(n=1)
    store_frames(job)
    mt = MicroTask.objects.get(job=job)
    manifest = mt.manifest
    manifest["frames"][0] = {"frame": mt.frame_start, "url": "https://cdn.example.test/a.jpg"}
    manifest["frames"][1]["image"] = "frames/elsewhere/nothing.jpg"
    MicroTask.objects.filter(pk=mt.pk).update(manifest=manifest)
    worker = qualified_worker()
    view = client_for(worker).post(CLAIM, {}, format="json").json()
    urls = _frame_urls(view)
    # Someone else's published URL is passed through unchanged; our storage never is.
    assert urls[0] == "https://cdn.example.test/a.jpg"
    assert urls[1] == f"/work/assignments/{view['id']}/frames/1.jpg"
    session = _session(worker)
    assert session.get(f"/work/assignments/{view['id']}/frames/0.jpg").status_code == 404
    assert session.get(urls[1]).status_code == 404
    assert session.get(urls[2]).status_code == 200


def test_gold_and_ordinary_work_look_the_same(media, client_for, monkeypatch):
    monkeypatch.setattr(claiming._rng, "random", lambda: 0.0)  # gold whenever there is some
    job = published_job(n=3, gold=1, overlap=2, gold_rate=0.3)
    store_frames(job)
    worker = qualified_worker()
    client = client_for(worker)
    views = [client.post(CLAIM, {}, format="json").json() for _ in range(3)]
    gold = {a.pk for a in Assignment.objects.filter(worker=worker, microtask__is_gold=True)}
    ids = {v["id"] for v in views}
    assert gold & ids and ids - gold  # both kinds among them

    def shape(value):
        if isinstance(value, dict):
            return {k: shape(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shape(v) for v in value]
        return type(value).__name__

    def url_shape(view):
        return [re.sub(r"\d+", "N", u) for u in _frame_urls(view)]

    assert len({json.dumps(shape(v), sort_keys=True) for v in views}) == 1
    assert len({json.dumps(url_shape(v)) for v in views}) == 1
    for v in views:
        _assert_opaque(v)
        assert _session(worker).get(v["task"]["frames"][0]["url"]).status_code == 200


def test_building_the_view_costs_no_query_and_no_storage_call(
    media, client_for, no_gold, monkeypatch, django_assert_num_queries
):
    job = published_job(n=1)
    store_frames(job)
    worker = qualified_worker()
    a = claiming.assignment_claim(worker=worker)

    def refuse(*args, **kwargs):
        raise AssertionError("the worker view touched storage")

    for name in ("url", "exists", "open", "size"):
        monkeypatch.setattr(default_storage, name, refuse)
    with django_assert_num_queries(0):
        view = work_selectors.worker_view_of(a)
    assert len(view["task"]["frames"]) == 5


def test_frame_source():
    src = work_selectors.frame_source
    assert src("frames/video-3/000001.jpg") == ("storage", "frames/video-3/000001.jpg")
    assert src("/media/frames/video-3/a%20b.jpg") == ("storage", "frames/video-3/a b.jpg")
    assert src("https://cdn.example.test/x.jpg") == ("external", "https://cdn.example.test/x.jpg")
    assert src("/static/x.png") == ("external", "/static/x.png")
    assert src("") == (None, "") and src(None) == (None, "")


@pytest.mark.slow
def test_frames_stream_from_s3(s3_storage, client_for, no_gold):  # noqa: F811
    job = published_job(n=1)
    stored = store_frames(job)
    keys = {o["Key"] for o in s3_storage.list_objects_v2(Bucket="crowdlabel-media")["Contents"]}
    assert set(stored) <= keys  # the images really are in the bucket
    worker = qualified_worker()
    view = client_for(worker).post(CLAIM, {}, format="json").json()
    _assert_opaque(view)
    mt = Assignment.objects.get(pk=view["id"]).microtask
    r = _session(worker).get(view["task"]["frames"][3]["url"])
    assert r.status_code == 200 and r["Content-Type"] == "image/jpeg"
    assert _body(r) == stored[f"{mt.video.frames_prefix}/000003.jpg"]
    assert _session(WorkerFactory()).get(view["task"]["frames"][3]["url"]).status_code == 404
