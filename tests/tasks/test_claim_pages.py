"""Worker pages: board, annotation page and my work show the worker's own work only."""

from __future__ import annotations

import pytest

from tasks import claiming
from tasks.models import QualificationAnswer, QualificationItem
from tests.tasks.claim_fixtures import manifest_for, published_job, qualified_worker

pytestmark = pytest.mark.django_db


def test_pages_never_show_gold_answers_or_other_workers_work(client, monkeypatch):
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)
    published_job(n=2, gold=1, overlap=2, gold_rate=0.3)
    item = QualificationItem.objects.create(
        annotation_type="bbox", label_classes=["car"], frames=[0], manifest=manifest_for([0])
    )
    # Three-digit integer parts: a page's timestamps ("…:45.512Z") never contain these.
    secret = [123.25, 145.5, 234.75, 199.125]
    QualificationAnswer.objects.create(
        item=item, payload={"boxes": [{"frame": 0, "label": "car", "box": secret}]}
    )
    other = qualified_worker()
    theirs = claiming.assignment_claim(worker=other)
    other_box = [111.125, 122.375, 133.625, 144.875]
    claiming.assignment_submit(
        worker=other,
        assignment_id=theirs.pk,
        payload={
            "boxes": [{"frame": theirs.microtask.frames[0], "label": "car", "box": other_box}]
        },
    )
    me = qualified_worker()
    monkeypatch.setattr(claiming._rng, "random", lambda: 0.0)
    gold_claim = claiming.assignment_claim(worker=me)
    assert gold_claim.microtask.is_gold
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)
    mine = claiming.assignment_claim(worker=me)
    assert mine.microtask_id == theirs.microtask_id  # the same microtask the other worker did
    client.force_login(me)
    pages = [
        "/work/",
        "/work/mine/",
        f"/work/assignments/{gold_claim.pk}/",
        f"/work/assignments/{mine.pk}/",
        "/work/qualify/bbox/",
    ]
    html = ""
    for url in pages:
        r = client.get(url)
        assert r.status_code == 200, url
        html += r.content.decode()
    for value in [*secret, *other_box]:
        assert str(value) not in html
    assert other.username not in html and "is_gold" not in html
    # Another worker's annotation page does not exist for me.
    assert client.get(f"/work/assignments/{theirs.pk}/").status_code == 404


def test_requesters_do_not_get_worker_pages(client, requester):
    client.force_login(requester)
    assert client.get("/work/").status_code == 404


def test_claim_next_button_claims_and_opens_the_annotation_page(client, monkeypatch):
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)
    published_job(n=1)
    me = qualified_worker()
    client.force_login(me)
    r = client.post("/work/claim/")
    assert r.status_code == 302 and r["Location"].startswith("/work/assignments/")
    page = client.get(r["Location"]).content.decode()
    assert 'id="assignment-data"' in page and 'id="canvas"' in page
    # With nothing left, the board explains instead of failing.
    r = client.post("/work/claim/", follow=True)
    assert b"no work available" in r.content.lower()
