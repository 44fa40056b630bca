"""The requester's submissions page in a real browser: selecting a shape highlights its
attributes and relations (read-only), and an event job's events stand on a timeline, a lane per
label."""

from __future__ import annotations

import os

import pytest
from django.db import connections

from tasks import claiming
from tests.e2e.browser import ARGS, CHROMIUM, login
from tests.factories import RequesterFactory
from tests.tasks.claim_fixtures import qualified_worker, ready_job

ATTRIBUTES = {"car": [{"name": "colour", "type": "choice", "values": ["red", "blue"]}]}


def _submit(job, kind, payloads):
    for k, make in enumerate(payloads):
        w = qualified_worker(kind, username=f"{kind}-labeller{k}")
        a = claiming.assignment_claim(worker=w, job_id=job.pk)
        claiming.assignment_submit(worker=w, assignment_id=a.pk, payload=make(a.microtask))


def _boxes(colour):
    def make(mt):
        boxes, relations = [], []
        for f in mt.frames or [mt.frame_start]:
            boxes.append({"frame": f, "label": "person", "box": [20, 10, 40, 60]})
            boxes.append(
                {
                    "frame": f,
                    "label": "car",
                    "box": [10, 40, 90, 80],
                    "attributes": {"colour": colour},
                }
            )
            relations.append(
                {"subject": len(boxes) - 2, "predicate": "rides", "object": len(boxes) - 1}
            )
        return {"boxes": boxes, "relations": relations}

    return make


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_selecting_a_shape_shows_its_attributes_and_events_stand_on_a_timeline(
    live_server, monkeypatch
):
    from playwright.sync_api import sync_playwright

    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)  # no gold claims
    requester = RequesterFactory(username="reviewer-lead")
    boxes = ready_job(
        n=1, overlap=2, requester=requester, label_classes=["car", "person"],
        label_attributes=ATTRIBUTES, relation_predicates=["rides"],
    )  # fmt: skip
    claiming.job_publish(job=boxes, by=requester)
    _submit(boxes, "bbox", [_boxes("red"), _boxes("blue")])
    events = ready_job(
        n=1, overlap=1, requester=requester, annotation_type="event",
        label_classes=["crossing", "waving"], frames_per_task=20,
    )  # fmt: skip
    claiming.job_publish(job=events, by=requester)
    said = [
        {"label": "crossing", "start": 2, "end": 9},
        {"label": "waving", "start": 12, "end": 15},
    ]
    _submit(events, "event", [lambda mt: {"events": said}])

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                login(page, live_server.url, "reviewer-lead")
                page.goto(f"{live_server.url}/requester/jobs/{boxes.pk}/submissions/")
                # The first worker's car on the first frame: selected by a click inside it (the
                # consensus drawn over it takes clicks on its dashed outline only).
                link = page.locator("a.shape-link").filter(has=page.locator("rect")).nth(1)
                target = link.get_attribute("href")
                link.click()
                page.wait_for_function("t => location.hash === t", arg=target)
                entry = page.locator(target)
                assert "colour" in entry.inner_text() and "rides" not in entry.inner_text()
                highlighted = entry.evaluate("e => getComputedStyle(e).backgroundColor")
                other = page.locator("li.shape-detail").first.evaluate(
                    "e => getComputedStyle(e).backgroundColor"
                )
                assert highlighted == "rgb(255, 243, 176)" and highlighted != other
                assert page.locator("li.shape-detail", has_text="rides car").count() >= 1

                page.goto(f"{live_server.url}/requester/jobs/{events.pk}/submissions/")
                lanes = page.locator(".event-lane")
                assert lanes.count() == 4  # crossing and waving, of the work and the consensus
                assert "this work: crossing" in lanes.first.inner_text()
                bar = page.locator('.event-lane[data-label="crossing"] rect.event-bar').first
                lane = page.locator('.event-lane[data-label="crossing"] svg').first
                b, whole = bar.bounding_box(), lane.bounding_box()
                assert b["width"] == pytest.approx(whole["width"] * 8 / 20, rel=0.05)
                assert b["x"] - whole["x"] == pytest.approx(whole["width"] * 2 / 20, rel=0.05)
            finally:
                browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        connections.close_all()
