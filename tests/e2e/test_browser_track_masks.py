"""A track job with masks in a real browser: the worker draws a track, goes to a later frame,
paints the track's mask there with the brush (the frame becomes a keyframe), erases part of it
and submits; the stored keyframe mask is checked against the strokes."""

from __future__ import annotations

import os

import pytest

from marketplace.models import Job
from tasks import claiming, rle
from tasks.models import Assignment, AssignmentStatus
from tests.e2e.browser import ARGS, CHROMIUM, Stage, claimable_job, login
from tests.tasks.claim_fixtures import HEIGHT, WIDTH

N_FRAMES = 6


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_paints_a_tracks_keyframe_mask_and_submits(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)
    job, worker = claimable_job(
        annotation_type="track", n_frames=N_FRAMES, username="segmenter", folder="trackmask-e2e"
    )
    Job.objects.filter(pk=job.pk).update(track_masks=True)

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the ORM is not used while the browser runs
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        login(page, live_server.url, "segmenter")
        page.goto(f"{live_server.url}/work/")
        page.click("#claim-next")
        page.wait_for_url("**/work/assignments/*/")
        page.wait_for_function("document.getElementById('frame-img').complete")
        stage = Stage(page, WIDTH, HEIGHT)
        assert page.locator("#mask-tools").is_visible()
        assert not page.locator("#tool-outline").is_visible()  # a track's mask is its own

        # A car track from frame 0 (selected once drawn).
        page.select_option("#class-picker", "car")
        stage.drag((50, 50), (150, 120))
        assert page.locator("#object-count").inner_text() == "1"

        # Frame 3: paint the car's mask there, a stroke 20 px across from (70, 85) to (130, 85).
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        assert page.locator("#frame-label").inner_text().startswith("frame 3")
        page.click("#tool-brush")
        page.fill("#brush-size", "20")
        stage.drag((70, 85), (130, 85))
        # The eraser cuts out the middle.
        page.click("#tool-eraser")
        assert page.locator("#tool-eraser").get_attribute("aria-pressed") == "true"
        stage.drag((100, 75), (100, 95))

        page.click("#submit")
        page.wait_for_selector("#done:not([hidden])")
        pixel = stage.pixel
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]

    a = Assignment.objects.select_related("submission").get(worker=worker)
    assert a.status == AssignmentStatus.SUBMITTED
    (track,) = a.submission.payload["tracks"]
    assert [k["frame"] for k in track["keyframes"]] == [0, 3]  # painting made frame 3 a keyframe
    assert "mask" not in track["keyframes"][0]
    mask = rle.decode(track["keyframes"][1]["mask"])
    assert mask.shape == (HEIGHT, WIDTH)
    tol = int(2 * pixel) + 2
    assert mask[85, 70 + tol : 100 - 10 - tol].all() and mask[85, 100 + 10 + tol : 130 - tol].all()
    assert not mask[85, 100 - 10 + tol : 100 + 10 - tol].any()
    assert not mask[85 + 10 + tol :, :].any() and not mask[: 85 - 10 - tol, :].any()
    # Stored per frame: the keyframe's shape carries the mask, the frames between only a box.
    frames = a.submission.frames
    assert frames["3"][0]["rle"] == track["keyframes"][1]["mask"]
    assert all("rle" not in frames[str(f)][0] for f in (0, 1, 2, 4, 5))
