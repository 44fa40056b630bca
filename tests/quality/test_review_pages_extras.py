"""The requester's submissions page and the review page show events on a timeline (one lane per
label per layer) and each shape's attributes and relations (read-only, selected by a link from
the shape to its entry)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from quality.models import ReviewItem
from tasks import claiming

pytestmark = pytest.mark.django_db(transaction=True)

ATTRIBUTES = {
    "car": [
        {"name": "colour", "type": "choice", "values": ["red", "blue"]},
        {"name": "occluded", "type": "bool"},
    ],
    "person": [],
}


def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def _submit(world, crowd, payloads):
    out = []
    for w, make in zip(crowd, payloads, strict=True):
        a = claiming.assignment_claim(worker=w, job_id=world.job.pk)
        claiming.assignment_submit(worker=w, assignment_id=a.pk, payload=make(a.microtask))
        out.append(a)
    return out


def _lanes(html: str) -> dict[str, list[tuple[int, int]]]:
    """Lane name -> its bars' (start, end), from the page."""
    out = {}
    for m in re.finditer(
        r'<span class="event-lane-label">([^<]*)</span>(.*?)</svg>', html, flags=re.S
    ):
        bars = re.findall(r'data-start="(\d+)" data-end="(\d+)"', m.group(2))
        out[m.group(1)] = [(int(s), int(e)) for s, e in bars]
    return out


def test_events_are_on_a_timeline_per_label_on_both_pages(world_factory, workers, no_gold):
    world = world_factory(
        n=1,
        overlap=2,
        overlap_max=2,
        annotation_type="event",
        label_classes=["crossing", "waving"],
        segment=20,
        agreement_threshold=0.99,
    )
    said = [
        [{"label": "crossing", "start": 2, "end": 9}, {"label": "waving", "start": 12, "end": 15}],
        [{"label": "crossing", "start": 3, "end": 9}],
    ]
    a = _submit(world, workers(2, "event"), [lambda mt, e=e: {"events": e} for e in said])
    requester = _client(world.job.requester)
    page = requester.get(f"/requester/jobs/{world.job.pk}/submissions/").content.decode()
    lanes = _lanes(page)
    assert lanes["this work: crossing"] in ([(2, 9)], [(3, 9)])
    assert lanes["this work: waving"] == [(12, 15)]
    assert "frames 0\u201319" in page
    # A bar is placed in percent of the microtask's 20 frames.
    assert 'x="10.0" y="1" width="40.0"' in page  # frames 2-9 of 0-19

    item = ReviewItem.objects.get(microtask_id=a[0].microtask_id)
    review = requester.get(f"/quality/review/{item.pk}/").content.decode()
    lanes = _lanes(review)
    first, second = (x.worker.username for x in a)
    assert lanes[f"{first}: crossing"] == [(2, 9)]
    assert lanes[f"{first}: waving"] == [(12, 15)]
    assert lanes[f"{second}: crossing"] == [(3, 9)]
    assert f"{second}: waving" not in lanes
    assert any(k.startswith("consensus: ") for k in lanes)
    # Read-only: no form posts events from these timelines.
    assert "event-lane" in review and 'name="events"' not in review


def _said(world, mt, colour, predicate):
    payload = world.payload_for(mt)
    by_frame: dict[int, list[int]] = {}
    for i, box in enumerate(payload["boxes"]):
        if box["label"] == "car":
            box["attributes"] = {"colour": colour, "occluded": False}
        by_frame.setdefault(box["frame"], []).append(i)
    payload["relations"] = [
        {"subject": idx[0], "predicate": predicate, "object": idx[1]}
        for idx in by_frame.values()
        if len(idx) >= 2
    ]
    return payload


def test_a_selected_shape_shows_its_attributes_and_relations(world_factory, workers, no_gold):
    world = world_factory(
        n=1,
        overlap=2,
        overlap_max=2,
        label_attributes=ATTRIBUTES,
        relation_predicates=["rides", "tows"],
        label_classes=["car", "person"],
        agreement_threshold=0.99,
        n_objects=3,
    )
    a = _submit(
        world,
        workers(2),
        [
            lambda mt: _said(world, mt, "red", "rides"),
            lambda mt: _said(world, mt, "blue", "tows"),
        ],
    )
    requester = _client(world.job.requester)
    page = requester.get(f"/requester/jobs/{world.job.pk}/submissions/").content.decode()
    details = re.findall(r'<li id="(shape-[\w-]+)" class="shape-detail">(.*?)</li>', page, re.S)
    assert details
    text = " ".join(t for _, t in details)
    assert "colour <b>red</b>" in text and "colour <b>blue</b>" in text
    assert "occluded <b>no</b>" in text
    assert re.search(r"<i>rides</i> (car|person) #\d", text)
    # Every described shape is a link to its entry (the entry is highlighted when selected).
    for shape_id, _ in details:
        assert f'href="#{shape_id}"' in page
    # The shape's own tooltip says the same.
    assert re.search(r"<title>car #\d+[^<]*; colour: (red|blue)", page)

    item = ReviewItem.objects.get(microtask_id=a[0].microtask_id)
    review = requester.get(f"/quality/review/{item.pk}/").content.decode()
    assert "colour <b>red</b>" in review and "colour <b>blue</b>" in review
    assert "<i>tows</i>" in review and "event-lane" not in review  # a box job has no events
