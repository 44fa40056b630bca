"""Events on the timeline in a real browser: a worker drags along a label's lane to mark an
event, drags its edge to resize it, is refused an overlapping twin, deletes one with Delete,
relabels one with the class picker and submits; the stored events are checked."""

from __future__ import annotations

import os

import pytest

from tasks import claiming
from tasks.models import Assignment, AssignmentStatus
from tests.e2e.browser import ARGS, CHROMIUM, claimable_job, login

N_FRAMES = 20


class Lanes:
    """Gestures on the event lanes, in frames (frame ``f`` at the middle of its cell)."""

    def __init__(self, page) -> None:
        self.page = page

    def x(self, label: str, frame: float) -> tuple[float, float]:
        box = self.page.locator(
            f'#event-lanes .lane[data-label="{label}"] .lane-track'
        ).bounding_box()
        return box["x"] + (frame + 0.5) * box["width"] / N_FRAMES, box["y"] + box["height"] / 2

    def drag(self, label: str, start: float, end: float) -> None:
        m = self.page.mouse
        m.move(*self.x(label, start))
        m.down()
        for i in range(1, 7):
            m.move(*self.x(label, start + (end - start) * i / 6))
        m.up()

    def events(self) -> list[str]:
        return self.page.locator("#objects li").all_inner_texts()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_marks_resizes_deletes_relabels_events_and_they_are_stored(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)
    _job, worker = claimable_job(
        annotation_type="event", n_frames=N_FRAMES, username="timekeeper", folder="events-e2e"
    )

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the ORM is not used while the browser runs
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        login(page, live_server.url, "timekeeper")
        page.goto(f"{live_server.url}/work/")
        page.click("#claim-next")
        page.wait_for_url("**/work/assignments/*/")
        page.wait_for_function("document.getElementById('frame-img').complete")
        assert page.locator("#event-lanes").is_visible()
        assert page.locator("#event-lanes .lane").count() == 2  # one lane per label
        lanes = Lanes(page)

        lanes.drag("car", 3, 10)
        assert lanes.events() == ["car · frames 3-10"]
        assert page.locator("#object-count").inner_text() == "1"
        # The transport followed the pointer; the frame shows the event going on.
        assert page.locator("#frame-count").inner_text() == "1"

        # Resize: drag the selected event's end edge from frame 10 to frame 14.
        edge = page.locator('#event-lanes .event[data-index="0"] .edge.end').bounding_box()
        page.mouse.move(edge["x"] + edge["width"] / 2, edge["y"] + edge["height"] / 2)
        page.mouse.down()
        for f in (11, 12, 13, 14):
            page.mouse.move(*lanes.x("car", f))
        page.mouse.up()
        assert lanes.events() == ["car · frames 3-14"]

        # An overlapping "car" event (dragged from empty space into the first one) is refused,
        # with a message; nothing changes. (A press on an event selects it instead.)
        lanes.drag("car", 17, 12)
        assert lanes.events() == ["car · frames 3-14"]
        assert "already covers" in page.locator("#message").inner_text()

        # A "person" event, selected by clicking it, removed with Delete; undo and redo work.
        lanes.drag("person", 0, 5)
        assert lanes.events() == ["car · frames 3-14", "person · frames 0-5"]
        page.mouse.click(*lanes.x("person", 2))
        page.keyboard.press("Delete")
        assert lanes.events() == ["car · frames 3-14"]
        page.keyboard.press("Control+z")
        assert lanes.events() == ["car · frames 3-14", "person · frames 0-5"]
        page.keyboard.press("Control+Shift+z")
        assert lanes.events() == ["car · frames 3-14"]

        # Another person event, relabelled "car" with the class picker: it moves to the car lane.
        lanes.drag("person", 16, 19)
        page.select_option("#class-picker", "car")
        assert lanes.events() == ["car · frames 3-14", "car · frames 16-19"]
        assert page.locator('#event-lanes .lane[data-label="car"] .event').count() == 2

        page.click("#submit")
        page.wait_for_selector("#done:not([hidden])")
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]

    a = Assignment.objects.select_related("submission").get(worker=worker)
    assert a.status == AssignmentStatus.SUBMITTED
    assert a.submission.payload == {
        "events": [
            {"label": "car", "start": 3, "end": 14},
            {"label": "car", "start": 16, "end": 19},
        ]
    }
    assert a.submission.frames["15"] == []
    assert a.submission.frames["16"] == [{"label": "car", "event": 1}]


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_tracks_actions_are_marked_on_its_lanes_and_go_with_it(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    from marketplace.models import Job
    from tests.e2e.browser import Stage
    from tests.tasks.claim_fixtures import HEIGHT, WIDTH

    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)
    job, worker = claimable_job(
        annotation_type="track", n_frames=N_FRAMES, username="tracker", folder="track-events-e2e"
    )
    Job.objects.filter(pk=job.pk).update(event_labels=["crossing"])
    mt = job.microtasks.get()

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        login(page, live_server.url, "tracker")
        page.goto(f"{live_server.url}/work/")
        page.click("#claim-next")
        page.wait_for_url("**/work/assignments/*/")
        page.wait_for_function("document.getElementById('frame-img').complete")
        lanes_el = page.locator("#event-lanes")
        assert lanes_el.is_visible()
        assert "Select an object" in lanes_el.inner_text()  # no track selected yet

        stage = Stage(page, WIDTH, HEIGHT)
        stage.drag((100, 100), (200, 200))  # a new track, selected
        assert page.locator("#event-lanes .lane").count() == 1
        lanes = Lanes(page)
        lanes.drag("crossing", 4, 9)
        ev = page.locator('#event-lanes .lane[data-label="crossing"] .event')
        assert ev.count() == 1

        # A second track: its lanes are empty; the first track's event stays with the first.
        page.keyboard.press("Escape")
        stage.drag((400, 200), (500, 300))
        assert ev.count() == 0
        lanes.drag("crossing", 12, 15)
        # Deleting the second track takes its event along.
        page.keyboard.press("Escape")
        stage.click(450, 250)
        page.click("#delete-selected")
        stage.click(150, 150)
        assert ev.count() == 1

        page.click("#submit")
        page.wait_for_selector("#done:not([hidden])")
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]

    a = Assignment.objects.select_related("submission").get(worker=worker)
    (track,) = a.submission.payload["tracks"]
    assert a.submission.payload["events"] == [
        {
            "label": "crossing",
            "start": mt.frame_start + 4,
            "end": mt.frame_start + 9,
            "track": track["id"],
        }
    ]
