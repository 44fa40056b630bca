"""Tracker proposals in the track editor, in a real browser (Debian's chromium via Playwright)
against a live server and a real encoded clip: the worker draws a box on the first frame,
presses P, sees the proposal (proposed and lost frames on the timeline, the status line), accepts
it (proposed boxes become keyframes), corrects one (it stays a keyframe, with the worker's box),
propagates between two keyframes and discards that, and submits."""

from __future__ import annotations

import re

import numpy as np
import pytest
from django.conf import settings
from PIL import Image

from tasks import claiming, synthetic, video
from tasks.models import Assignment, AssignmentStatus
from tests.e2e.browser import Stage, login
from tests.e2e.test_browser_workspace import _browser, _claim, _local_draft, expect
from tests.factories import WorkerFactory
from tests.tasks.claim_fixtures import HEIGHT, WIDTH, qualify, ready_job
from tests.tasks.test_tracking import iou

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

N, STEP = 60, 4


def _track_job_on_a_clip(monkeypatch, username: str):
    """A published track job of one microtask over a real clip (an object that turns and
    changes speed, hidden by a bar around frame 30); the worker sees every STEP-th frame."""
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)  # no gold
    scene = synthetic.make_path_scene(seed=2, width=WIDTH, height=HEIGHT, frames=N, speed=3.0)
    job = ready_job(n=1, overlap=2, annotation_type="track", frames_per_task=N)
    job.label_classes = ["car"]
    job.save(update_fields=["label_classes"])
    mt = job.microtasks.select_related("video").get()
    folder = f"tracker-e2e/job-{job.pk}"
    (settings.MEDIA_ROOT / folder).mkdir(parents=True, exist_ok=True)
    shown = list(range(0, N, STEP))
    for f in shown:
        Image.fromarray(synthetic.render_frame(scene, f)).save(
            settings.MEDIA_ROOT / folder / f"{f:06d}.jpg", quality=90
        )
    clip = settings.MEDIA_ROOT / folder / "clip.mp4"
    video.write_video(scene, str(clip), gop=15)
    mt.video.file.name = f"{folder}/clip.mp4"
    mt.video.save(update_fields=["file"])
    mt.frames = shown
    mt.manifest = {
        "width": WIDTH,
        "height": HEIGHT,
        "frames": [
            {"frame": f, "url": f"/media/{folder}/{f:06d}.jpg", "timestamp": f / 30} for f in shown
        ],
    }
    mt.save(update_fields=["frames", "manifest"])
    claiming.job_publish(job=job, by=job.requester)
    return scene, qualify(WorkerFactory(username=username), "track")


def _truth(scene, f: int) -> list[float]:
    b = next(b for b in scene.boxes(f) if b.track_id == 0)
    return [b.x, b.y, b.x + b.w, b.y + b.h]


def _keyframes(page) -> list[dict]:
    (track,) = _local_draft(page)["payload"]["tracks"]
    return track["keyframes"]


def _cells(page, cls: str) -> list[int]:
    return page.evaluate(
        """(cls) => [...document.querySelectorAll('#timeline .cell')]
               .map((c, i) => c.classList.contains(cls) ? i : -1).filter((i) => i >= 0)""",
        cls,
    )


def test_propagate_accept_correct_between_discard_and_submit(live_server, monkeypatch, settings):
    settings.MEDIA_ROOT = settings.MEDIA_ROOT  # the live server serves /media/ from here
    scene, worker = _track_job_on_a_clip(monkeypatch, "tracker")
    with _browser() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        login(page, live_server.url, "tracker")
        _claim(page, live_server.url)
        stage = Stage(page, WIDTH, HEIGHT)
        first = _truth(scene, 0)
        stage.drag(first[:2], first[2:])
        assert len(_keyframes(page)) == 1
        expect(page.locator("#propagate")).to_be_enabled()

        # P: forward from the keyframe; the bar hides the object around frame 30: lost there.
        page.keyboard.press("p")
        status = page.locator("#proposal-status")
        expect(status).to_have_text(re.compile(r"proposed boxes · lost at frame \d+"))
        lost_at = int(re.search(r"lost at frame (\d+)", status.inner_text())[1])
        assert 20 <= lost_at <= 40
        proposed = _cells(page, "proposed")
        assert proposed and max(proposed) * STEP < lost_at
        assert _cells(page, "proposed-doubtful")  # the lost frame, marked
        assert len(_keyframes(page)) == 1  # shown, not yet taken
        page.screenshot(path=str(settings.MEDIA_ROOT / "tracker-proposal.png"))

        # Accept: the trusted boxes become keyframes, on the object.
        page.click("#proposal-accept")
        keyframes = _keyframes(page)
        assert [k["frame"] for k in keyframes] == [0] + [i * STEP for i in proposed]
        for k in keyframes[1:]:
            assert iou(k["box"], _truth(scene, k["frame"])) > 0.7, k
        expect(page.locator("#proposal-accept")).to_be_hidden()
        assert _cells(page, "proposed") == []

        # A correction is a keyframe with the worker's box.
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        frame = 2 * STEP
        expect(page.locator("#frame-label")).to_have_text(re.compile(f"^frame {frame} "))
        before = next(k for k in keyframes if k["frame"] == frame)["box"]
        cx, cy = (before[0] + before[2]) / 2, (before[1] + before[3]) / 2
        stage = Stage(page, WIDTH, HEIGHT)  # the message above moved the canvas down
        stage.drag((cx, cy), (cx + 12, cy))
        corrected = next(k for k in _keyframes(page) if k["frame"] == frame)["box"]
        np.testing.assert_allclose(corrected[0], before[0] + 12, atol=2 * stage.pixel)

        # Between two keyframes: from frame 4 to frame 8 (the worker's), then discard.
        page.keyboard.press("ArrowLeft")
        count = len(_keyframes(page))
        page.keyboard.press("p")
        expect(status).to_have_text(re.compile(r"proposed box"))
        page.click("#proposal-discard")
        expect(status).to_have_text("")
        assert len(_keyframes(page)) == count

        page.keyboard.press("Control+Enter")
        dialog = page.locator("#confirm-empty")
        page.wait_for_timeout(200)
        if dialog.is_visible():
            page.click("#confirm-submit")
        page.wait_for_selector("#done:not([hidden])")

    a = Assignment.objects.select_related("submission").get(worker=worker)
    assert a.status == AssignmentStatus.SUBMITTED
    (track,) = a.submission.payload["tracks"]
    assert len(track["keyframes"]) == count
