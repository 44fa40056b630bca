"""Masks in a real browser: a worker paints a stroke with the brush, erases part of it, turns
an outline into a second mask (a crossing outline is refused), fills a hole and submits; the
stored RLE is checked against the strokes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tasks import claiming, rle
from tasks.models import Assignment, AssignmentStatus
from tests.e2e.browser import ARGS, CHROMIUM, Stage, claimable_job, login
from tests.tasks.claim_fixtures import HEIGHT, WIDTH

N_FRAMES = 2


def _px(page) -> int:
    """The selected mask's pixel count, as the object list says it ("person · 9684 px")."""
    return int(page.locator("#objects li.selected").inner_text().split("·")[1].split()[0])


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_paints_erases_and_outlines_masks_and_the_rle_is_stored(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)
    job, worker = claimable_job(
        annotation_type="mask", n_frames=N_FRAMES, username="painter", folder="mask-e2e"
    )
    mt = job.microtasks.get()

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the ORM is not used while the browser runs
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        login(page, live_server.url, "painter")
        page.goto(f"{live_server.url}/work/")
        page.click("#claim-next")
        page.wait_for_url("**/work/assignments/*/")
        page.wait_for_function("document.getElementById('frame-img').complete")
        stage = Stage(page, WIDTH, HEIGHT)
        count = page.locator("#object-count")
        assert page.locator("#mask-tools").is_visible()

        # A brush stroke of 20 px across, from (100, 100) to (300, 100): one new mask.
        page.select_option("#class-picker", "car")
        page.click("#tool-brush")
        page.fill("#brush-size", "20")
        stage.drag((100, 100), (300, 100))
        assert count.inner_text() == "1"
        # The eraser cuts the middle of the stroke out.
        page.click("#tool-eraser")
        page.fill("#brush-size", "40")
        stage.drag((200, 85), (200, 115))

        # A crossing outline is refused with a message and paints nothing.
        page.click("#new-mask")
        page.select_option("#class-picker", "person")
        page.click("#tool-outline")
        for x, y in [(400, 200), (500, 300), (500, 200), (400, 300)]:
            stage.click(x, y)
        page.keyboard.press("Enter")
        assert "crosses itself" in page.locator("#message").inner_text()
        assert count.inner_text() == "1"
        stage = Stage(page, WIDTH, HEIGHT)  # the message above may have moved the canvas
        # A ring outline becomes a second mask; its hole is painted, then filled back.
        for x, y in [(400, 200), (500, 200), (500, 300), (400, 300)]:
            stage.click(x, y)
        page.keyboard.press("Enter")
        assert count.inner_text() == "2"
        page.click("#tool-eraser")
        page.fill("#brush-size", "20")
        whole = _px(page)
        stage.click(450, 250)  # a hole in the middle of the square
        holed = _px(page)
        assert whole - 400 < holed < whole - 250  # a disc of radius 10 (314 px)
        page.click("#tool-fill")
        stage.click(450, 250)  # filled back
        assert _px(page) == whole

        page.click("#submit")
        page.wait_for_selector("#confirm-empty[open]")  # the second frame has nothing
        page.click("#confirm-submit")
        page.wait_for_selector("#done:not([hidden])")
        pixel = stage.pixel
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]

    a = Assignment.objects.select_related("submission").get(worker=worker)
    assert a.status == AssignmentStatus.SUBMITTED
    masks = a.submission.payload["masks"]
    assert [(m["label"], m["frame"]) for m in masks] == [
        ("car", mt.frames[0]),
        ("person", mt.frames[0]),
    ]
    car = rle.decode(masks[0]["rle"])
    person = rle.decode(masks[1]["rle"])
    assert car.shape == person.shape == (HEIGHT, WIDTH)
    tol = int(np.ceil(2 * pixel)) + 1
    # The stroke: painted along y=100 from x=100 to 300 with a 10 px radius, cut out at x=200.
    assert car[100, 110 : 180 - tol].all() and car[100, 220 + tol : 290].all()
    assert not car[100, 200 - 20 + tol : 200 + 20 - tol].any()
    assert not car[100 + 10 + tol :, :].any() and not car[: 100 - 10 - tol, :].any()
    # The square outline, its hole filled back: solid from (400, 200) to (500, 300).
    assert person[200 + tol : 300 - tol, 400 + tol : 500 - tol].all()
    assert abs(int(person.sum()) - 100 * 100) <= 100 * 4 * tol
