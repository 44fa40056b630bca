"""Polygon editing in a real browser: a worker draws a polygon, drags a vertex, inserts one by
double-clicking an edge, removes vertices (never below three), moves the whole polygon (clamped
to the frame), deletes a second polygon with Delete and submits; the stored points are checked."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tasks import claiming
from tasks.models import Assignment, AssignmentStatus
from tests.e2e.browser import ARGS, CHROMIUM, Stage, claimable_job, login
from tests.tasks.claim_fixtures import HEIGHT, WIDTH

N_FRAMES = 4


def _points(page) -> str:
    return page.locator("#objects li.selected").inner_text()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_draws_edits_moves_a_polygon_and_the_points_are_stored(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)
    job, worker = claimable_job(
        annotation_type="polygon", n_frames=N_FRAMES, username="outliner", folder="polygon-e2e"
    )
    mt = job.microtasks.get()

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the ORM is not used while the browser runs
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        login(page, live_server.url, "outliner")
        page.goto(f"{live_server.url}/work/")
        page.click("#claim-next")
        page.wait_for_url("**/work/assignments/*/")
        page.wait_for_function("document.getElementById('frame-img').complete")
        stage = Stage(page, WIDTH, HEIGHT)
        count = page.locator("#object-count")

        # A throwaway triangle, closed with Enter, then deleted with Delete while selected.
        page.select_option("#class-picker", "car")
        for x, y in [(450, 20), (600, 20), (520, 80)]:
            stage.click(x, y)
        close = page.locator("#close-polygon")  # Enter's button, for a tablet
        assert close.is_visible() and close.is_enabled()
        page.keyboard.press("Enter")
        assert close.is_disabled()
        assert count.inner_text() == "1" and _points(page) == "car · 3 points"
        page.keyboard.press("Delete")
        assert count.inner_text() == "0"

        # The polygon: three clicks, then a double-click adds the last point and closes it.
        for x, y in [(100, 100), (300, 100), (300, 250)]:
            stage.click(x, y)
        stage.dblclick(100, 250)
        assert count.inner_text() == "1" and _points(page) == "car · 4 points"

        stage.drag((300, 100), (360, 80))  # move vertex B
        stage.dblclick(100, 175)  # insert a vertex on edge D-A ...
        assert _points(page) == "car · 5 points"
        stage.drag((100, 175), (60, 175))  # ... and pull it out
        page.keyboard.down("Alt")
        stage.click(300, 250)  # Alt+click removes vertex C
        page.keyboard.up("Alt")
        assert _points(page) == "car · 4 points"
        stage.click(60, 175, button="right")  # right-click removes the inserted vertex
        assert _points(page) == "car · 3 points"
        page.keyboard.down("Alt")
        stage.click(100, 100)  # a triangle keeps its three points
        page.keyboard.up("Alt")
        assert _points(page) == "car · 3 points"
        assert "at least 3 points" in page.locator("#message").inner_text()
        assert count.inner_text() == "1"

        # Move the whole polygon by (+100, +50), then far right: clamped at the frame's edge.
        stage.drag((180, 140), (280, 190))
        stage.drag((280, 190), (580, 190))
        in_page = page.evaluate(
            "() => JSON.parse(document.getElementById('assignment-data').textContent).id"
        )

        page.click("#submit")
        # Only the first frame has a polygon: the page asks before submitting the others empty.
        page.wait_for_selector("#confirm-empty[open]")
        page.click("#confirm-submit")
        page.wait_for_selector("#done:not([hidden])")
        assert page.locator("#submit").is_hidden() and page.locator("#release").is_hidden()
        pixel = stage.pixel
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]

    a = Assignment.objects.select_related("submission").get(worker=worker)
    assert a.pk == in_page and a.status == AssignmentStatus.SUBMITTED
    polygons = a.submission.payload["polygons"]
    assert len(polygons) == 1
    assert polygons[0]["label"] == "car" and polygons[0]["frame"] == mt.frames[0]
    # A(100,100), B(300,100)->(360,80), D(100,250); moved by (+100,+50), then right until the
    # rightmost point (B) touches the frame's edge at x=640.
    expected = [[380, 150], [640, 130], [380, 300]]
    # Mouse positions are whole CSS pixels; each point went through at most two of them.
    np.testing.assert_allclose(polygons[0]["points"], expected, atol=2 * pixel + 0.01)
    assert polygons[0]["points"][1][0] == WIDTH  # clamped exactly
