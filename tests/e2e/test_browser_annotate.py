"""A worker in a real browser (Debian's chromium via Playwright) against a live server: log in,
claim, draw two boxes on one keyframe, move one on a later keyframe, submit, see it under
"my work"; then the stored per-frame boxes are checked, and the page's interpolation against
the Python one."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tasks import claiming
from tasks.interpolation import interpolate
from tasks.models import Assignment, AssignmentStatus
from tests.e2e.browser import ARGS, CHROMIUM, Stage, claimable_job, login
from tests.tasks.claim_fixtures import HEIGHT, WIDTH

N_FRAMES = 10


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_claims_draws_tracks_moves_a_keyframe_submits_and_sees_it(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)
    _, worker = claimable_job(
        annotation_type="track", n_frames=N_FRAMES, username="annotator", folder="claim-e2e"
    )

    rng = np.random.default_rng(7)
    key_frames = np.array([0, 3, 4, 8])
    key_boxes = rng.uniform(0, 300, size=(4, 4))
    key_boxes[:, 2:] += key_boxes[:, :2]
    key_outside = np.array([False, True, False, False])

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the ORM is not used while the browser runs
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        login(page, live_server.url, "annotator")
        page.goto(f"{live_server.url}/work/")
        page.click("#claim-next")
        page.wait_for_url("**/work/assignments/*/")
        page.wait_for_function("document.getElementById('frame-img').complete")
        stage = Stage(page, WIDTH, HEIGHT)

        # Two boxes on frame 0 (each becomes a track with a keyframe there).
        page.select_option("#class-picker", "car")
        stage.drag((50, 50), (150, 120))
        page.keyboard.press("Escape")  # deselect, so the class key picks for the next box
        page.keyboard.press("2")  # class shortcut: person
        stage.drag((300, 100), (400, 200))
        assert page.locator("#object-count").inner_text() == "2"

        # On the last frame, move the car by (+100, +50): a second keyframe of track 1.
        page.keyboard.press("End")
        assert page.locator("#frame-label").inner_text().startswith(f"frame {N_FRAMES - 1}")
        stage.drag((100, 85), (200, 135))
        page.keyboard.press("Home")

        # The page's interpolation (the module the page loaded) is the Python one.
        js_boxes = page.evaluate(
            """async ([frames, boxes, outside, n]) => {
                const page = document.querySelector("script[type=module][src*='annotate/']");
                const {interpolateTrack} = await import(new URL("core.mjs", page.src));
                const kfs = frames.map((f, i) => ({frame: f, box: boxes[i], outside: outside[i]}));
                return Array.from({length: n}, (_, f) => interpolateTrack(kfs, f));
            }""",
            [key_frames.tolist(), key_boxes.tolist(), key_outside.tolist(), 12],
        )

        page.click("#submit")
        page.wait_for_selector("#done:not([hidden])")
        page.goto(f"{live_server.url}/work/mine/")
        row = page.locator("#my-work tbody tr").first
        status_text = row.locator(".status").inner_text()
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]

    assert status_text == "Submitted"
    a = Assignment.objects.select_related("submission").get(worker=worker)
    assert a.status == AssignmentStatus.SUBMITTED and a.active_seconds is not None
    frames = a.submission.frames
    assert sorted(map(int, frames)) == list(range(N_FRAMES))
    tracks = {s["label"]: s for s in frames["0"]}
    assert set(tracks) == {"car", "person"}
    np.testing.assert_allclose(tracks["car"]["box"], [50, 50, 150, 120], atol=1.5)
    np.testing.assert_allclose(tracks["person"]["box"], [300, 100, 400, 200], atol=1.5)
    last = {s["label"]: s["box"] for s in frames[str(N_FRAMES - 1)]}
    np.testing.assert_allclose(last["car"], [150, 100, 250, 170], atol=1.5)
    np.testing.assert_allclose(last["person"], [300, 100, 400, 200], atol=1.5)
    # Frames between the car's keyframes are linearly interpolated.
    mid = {s["label"]: s["box"] for s in frames["3"]}
    t = 3 / (N_FRAMES - 1)
    expected = np.array(tracks["car"]["box"]) * (1 - t) + np.array(last["car"]) * t
    np.testing.assert_allclose(mid["car"], expected, atol=0.02)
    car_track = next(tr for tr in a.submission.payload["tracks"] if tr["label"] == "car")
    assert [k["frame"] for k in car_track["keyframes"]] == [0, N_FRAMES - 1]

    py_boxes, present = interpolate(key_frames, key_boxes, key_outside, np.arange(12))
    for f in range(12):
        if present[f]:
            np.testing.assert_allclose(js_boxes[f], py_boxes[f], atol=1e-9)
        else:
            assert js_boxes[f] is None
