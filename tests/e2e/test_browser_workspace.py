"""The annotator's workspace in a real browser (Debian's chromium via Playwright) against a live
server: draw mode (a box inside another), selection, undo and redo, zoom then draw at the right
frame coordinates, the confirmation before submitting empty frames, drafts restored after a
reload and after a lost connection, touch drawing and pinch zoom on a tablet, and the phone and
tablet layouts (no sideways scroll, a frame of a usable width), with screenshots kept under
MEDIA_ROOT/e2e-screens for a person to look at."""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.db import connections

from tasks import claiming
from tasks.models import Assignment, AssignmentStatus
from tests.e2e.browser import ARGS, CHROMIUM, Stage, claimable_job, login
from tests.tasks.claim_fixtures import HEIGHT, WIDTH

N_FRAMES = 3
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _bbox_job(monkeypatch, username: str, annotation_type: str = "bbox"):
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)  # no gold
    _, worker = claimable_job(
        annotation_type=annotation_type, n_frames=N_FRAMES, username=username, folder="ws-e2e"
    )
    return worker


@contextmanager
def _browser():
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the test reads the ORM between steps
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                yield browser
            finally:
                # The ORM used inside Playwright's block gets a connection of its own (the block
                # runs in another context): close it, or the test database cannot be dropped.
                connections.close_all()
                browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def _claim(page, base_url: str) -> None:
    page.goto(f"{base_url}/work/")
    page.click("#claim-next")
    page.wait_for_url("**/work/assignments/*/")
    _frame_loaded(page)


def _frame_loaded(page) -> None:
    # Polled from here: wait_for_function's predicate is eval'd, which the page's CSP forbids.
    for _ in range(200):
        if page.evaluate("() => document.getElementById('frame-img').naturalWidth > 0"):
            return
        page.wait_for_timeout(50)
    raise AssertionError("the frame image never loaded")


def _counts(page) -> tuple[str, str]:
    return page.locator("#frame-count").inner_text(), page.locator("#object-count").inner_text()


def _local_draft(page) -> dict | None:
    return page.evaluate(
        """() => {
            const id = JSON.parse(document.getElementById('assignment-data').textContent).id;
            return JSON.parse(localStorage.getItem(`crowdlabel:draft:${id}`));
        }"""
    )


def _screens() -> Path:
    folder = Path(settings.MEDIA_ROOT) / "e2e-screens"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _boxes(payload: dict) -> list[list[float]]:
    return sorted(b["box"] for b in payload["boxes"])


def test_draw_inside_select_undo_redo_zoom_and_confirm_empty_frames(live_server, monkeypatch):
    worker = _bbox_job(monkeypatch, "boxer")
    rider, bicycle = [100, 60, 400, 330], [150, 180, 350, 320]
    with _browser() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        login(page, live_server.url, "boxer")
        _claim(page, live_server.url)
        stage = Stage(page, WIDTH, HEIGHT)
        page.select_option("#class-picker", "person")
        stage.drag(rider[:2], rider[2:])
        assert _counts(page) == ("1", "1")

        # Select mode: a drag inside the rider moves the rider (what it always did) ...
        stage.drag((200, 200), (210, 200))
        moved = _boxes(_local_draft(page)["payload"])
        np.testing.assert_allclose(moved, [[110, 60, 410, 330]], atol=stage.pixel)
        page.keyboard.press("Control+z")
        assert _boxes(_local_draft(page)["payload"]) == [rider]
        # ... and in Draw mode the same drag draws the bicycle inside it.
        page.click("#tool-draw")
        assert page.locator("#tool-draw").get_attribute("aria-pressed") == "true"
        page.keyboard.press("1")  # class shortcut: car
        stage.drag(bicycle[:2], bicycle[2:])
        assert _counts(page) == ("2", "2")
        drawn = _local_draft(page)["payload"]["boxes"]
        assert [b["label"] for b in drawn] == ["person", "car"]
        np.testing.assert_allclose(_boxes({"boxes": drawn}), [rider, bicycle], atol=stage.pixel)

        # Selection by click, in Draw mode too: the smallest box under the pointer, highlighted.
        stage.click(250, 250)
        assert page.locator("#objects li.selected").inner_text() == "car"
        page.screenshot(path=str(_screens() / "annotate-desktop-selected.png"))
        stage.click(120, 100)
        assert page.locator("#objects li.selected").inner_text() == "person"
        page.keyboard.press("Escape")
        assert page.locator("#tool-edit").get_attribute("aria-pressed") == "true"
        assert page.locator("#objects li.selected").count() == 0

        # Undo and redo by keys and by buttons.
        page.keyboard.press("Control+z")
        assert _counts(page) == ("1", "1")
        page.keyboard.press("Control+Shift+z")
        assert _counts(page) == ("2", "2")
        page.keyboard.press("Control+z")
        page.keyboard.press("Control+y")
        assert _counts(page) == ("2", "2")
        page.click("#undo")
        assert _counts(page) == ("1", "1")
        page.click("#redo")
        assert _counts(page) == ("2", "2") and page.locator("#redo").is_disabled()

        # The counts say which they count: on the next frame nothing, in all frames two.
        page.keyboard.press("ArrowRight")
        assert _counts(page) == ("0", "2")
        assert page.locator("#objects li").count() == 0
        page.keyboard.press("ArrowLeft")

        # Zoom (keys, then the wheel about the pointer), then draw: frame coordinates.
        page.keyboard.press("+")
        page.keyboard.press("+")
        assert page.locator("#zoom-level").inner_text() == "156%"
        pointer = Stage(page, WIDTH, HEIGHT).at(500, 100)
        page.mouse.move(*pointer)
        page.mouse.wheel(0, -200)
        expect(page.locator("#zoom-level")).not_to_have_text("156%")
        zoomed = Stage(page, WIDTH, HEIGHT)
        assert zoomed.pixel < stage.pixel / 1.5  # the frame is bigger on screen
        # The frame point under the wheel stayed under it.
        under = page.evaluate(
            """([x, y]) => { const r = document.getElementById('canvas').getBoundingClientRect();
                 return [(x - r.left) * 640 / r.width, (y - r.top) * 360 / r.height]; }""",
            list(pointer),
        )
        np.testing.assert_allclose(under, [500, 100], atol=2 * stage.pixel)
        target = [420, 90, 480, 140]
        page.keyboard.press("n")
        zoomed.drag(target[:2], target[2:])
        boxes = _boxes(_local_draft(page)["payload"])
        assert len(boxes) == 3
        np.testing.assert_allclose(boxes[2], target, atol=2 * zoomed.pixel)
        page.keyboard.press("0")
        assert page.locator("#zoom-level").inner_text() == "100%"

        # Frames left empty: the page asks; "Keep annotating" shows the first empty frame.
        page.click("#submit")
        dialog = page.locator("#confirm-empty")
        dialog.wait_for(state="visible")
        assert "2 of 3 frames have nothing annotated" in dialog.inner_text()
        page.click("#confirm-back")
        expect(dialog).to_be_hidden()
        expect(page.locator("#frame-label")).to_have_text(re.compile(r"^frame 1 "))
        assert Assignment.objects.get(worker=worker).status == AssignmentStatus.CLAIMED
        page.keyboard.press("Control+Enter")
        dialog.wait_for(state="visible")
        page.click("#confirm-submit")
        page.wait_for_selector("#done:not([hidden])")
        assert _local_draft(page) is None  # submitted: the draft is gone from the device

    a = Assignment.objects.select_related("submission").get(worker=worker)
    assert a.status == AssignmentStatus.SUBMITTED
    stored = _boxes(a.submission.payload)
    np.testing.assert_allclose(stored, [rider, bicycle, target], atol=2 * stage.pixel)


def test_an_empty_submission_is_asked_about_not_thanked(live_server, monkeypatch):
    worker = _bbox_job(monkeypatch, "hasty")
    with _browser() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        login(page, live_server.url, "hasty")
        _claim(page, live_server.url)
        page.click("#submit")
        dialog = page.locator("#confirm-empty")
        dialog.wait_for(state="visible")
        assert "Nothing is annotated on any of the 3 frames" in dialog.inner_text()
        page.keyboard.press("Escape")  # closing the dialog is "not now"
        expect(dialog).to_be_hidden()
        assert page.locator("#message").is_hidden()
        assert "Thank you" not in page.content()
    assert Assignment.objects.get(worker=worker).status == AssignmentStatus.CLAIMED


def test_drafts_come_back_after_a_reload_and_after_a_lost_connection(live_server, monkeypatch):
    worker = _bbox_job(monkeypatch, "drafter")
    with _browser() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        login(page, live_server.url, "drafter")
        _claim(page, live_server.url)
        stage = Stage(page, WIDTH, HEIGHT)
        stage.drag((50, 50), (200, 150))
        stage.drag((300, 100), (450, 250))
        assert page.locator("#draft-notice").is_hidden()
        # Sent with a heartbeat a few seconds after the last edit.
        expect(page.locator("#draft-status")).to_contain_text("on the server", timeout=15_000)
        a = Assignment.objects.get(worker=worker)
        assert _boxes(a.draft["payload"]) == _boxes(_local_draft(page)["payload"])
        assert len(a.draft["payload"]["boxes"]) == 2 and not hasattr(a, "submission")

        # A reload: the work is back, with a notice.
        page.reload()
        _frame_loaded(page)
        notice = page.locator("#draft-notice")
        assert notice.is_visible() and "this device" in notice.inner_text()
        assert _counts(page) == ("2", "2")

        # Another device (nothing stored locally): the server's draft comes back.
        page.evaluate("() => localStorage.clear()")
        page.reload()
        _frame_loaded(page)
        assert "the server" in notice.inner_text() and _counts(page) == ("2", "2")

        # The connection drops: the page says so and keeps the work on the device ...
        context.set_offline(True)
        stage.drag((460, 260), (600, 340))
        expect(page.locator("#draft-status")).to_contain_text("Offline", timeout=15_000)
        assert len(Assignment.objects.get(worker=worker).draft["payload"]["boxes"]) == 2
        # ... and when it is back, a reload restores the newer local work, which reaches the
        # server (sent when the connection came back, or at once after the reload).
        context.set_offline(False)
        page.reload()
        _frame_loaded(page)
        assert "this device" in notice.inner_text() and _counts(page) == ("3", "3")
        expect(page.locator("#draft-status")).to_contain_text("on the server", timeout=15_000)
        # The undo history starts at the restored work: nothing to undo yet.
        assert page.locator("#undo").is_disabled()
    a = Assignment.objects.get(worker=worker)
    assert len(a.draft["payload"]["boxes"]) == 3 and a.status == AssignmentStatus.CLAIMED


NO_SIDEWAYS_SCROLL = "document.scrollingElement.scrollWidth <= window.innerWidth"


def _touch(cdp, kind: str, points) -> None:
    cdp.send(
        "Input.dispatchTouchEvent",
        {"type": kind, "touchPoints": [{"x": x, "y": y, "id": i} for i, (x, y) in points]},
    )


def test_tablet_touch_drawing_and_pinch_zoom(live_server, monkeypatch):
    worker = _bbox_job(monkeypatch, "tablet")
    with _browser() as browser:
        context = browser.new_context(
            viewport={"width": 820, "height": 1180}, has_touch=True, is_mobile=True
        )
        page = context.new_page()
        login(page, live_server.url, "tablet")
        _claim(page, live_server.url)
        assert page.evaluate(NO_SIDEWAYS_SCROLL)
        width = page.locator("#canvas").bounding_box()["width"]
        assert width >= 700, width  # the frame takes the tablet's width, the list goes below
        page.screenshot(path=str(_screens() / "annotate-tablet.png"), full_page=True)

        stage = Stage(page, WIDTH, HEIGHT)
        cdp = context.new_cdp_session(page)
        # One finger draws a box.
        start, end = stage.at(100, 100), stage.at(300, 250)
        _touch(cdp, "touchStart", [(0, start)])
        for i in range(1, 7):
            t = i / 6
            at = (start[0] + (end[0] - start[0]) * t, start[1] + (end[1] - start[1]) * t)
            _touch(cdp, "touchMove", [(0, at)])
        _touch(cdp, "touchEnd", [])
        assert _counts(page) == ("1", "1")
        np.testing.assert_allclose(
            _boxes(_local_draft(page)["payload"])[0], [100, 100, 300, 250], atol=2 * stage.pixel
        )
        # Two fingers pinch: the frame zooms, nothing is drawn or moved.
        a, b = stage.at(250, 180), stage.at(390, 180)
        _touch(cdp, "touchStart", [(0, a)])
        _touch(cdp, "touchStart", [(0, a), (1, b)])
        for i in range(1, 7):
            d = 20 * i
            _touch(cdp, "touchMove", [(0, (a[0] - d, a[1])), (1, (b[0] + d, b[1]))])
        _touch(cdp, "touchEnd", [])
        assert page.locator("#zoom-level").inner_text() != "100%"
        assert _counts(page) == ("1", "1")
        np.testing.assert_allclose(
            _boxes(_local_draft(page)["payload"])[0], [100, 100, 300, 250], atol=2 * stage.pixel
        )
        page.screenshot(path=str(_screens() / "annotate-tablet-zoomed.png"))
        # Without a keyboard: a tap selects, the Delete and Undo buttons do what the keys do.
        page.click("#zoom-fit")
        assert page.locator("#delete-selected").is_disabled()
        tap = stage.at(200, 200)
        _touch(cdp, "touchStart", [(0, tap)])
        _touch(cdp, "touchEnd", [])
        assert page.locator("#objects li.selected").inner_text() == "car"
        page.click("#delete-selected")
        assert _counts(page) == ("0", "0")
        page.click("#undo")
        assert _counts(page) == ("1", "1")
    assert Assignment.objects.get(worker=worker).status == AssignmentStatus.CLAIMED


def test_phone_layouts_board_earnings_workspace_and_my_work_fit_390_px(live_server, monkeypatch):
    _bbox_job(monkeypatch, "phone")
    with _browser() as browser:
        context = browser.new_context(
            viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True
        )
        page = context.new_page()
        login(page, live_server.url, "phone")
        for name, path in [("board", "/work/"), ("earnings", "/worker/earnings/")]:
            page.goto(f"{live_server.url}{path}")
            page.screenshot(path=str(_screens() / f"{name}-phone.png"), full_page=True)
            assert page.evaluate(NO_SIDEWAYS_SCROLL), name
        # The board's claim button is on screen and usable.
        claim = page.locator("#job-board button").first
        page.goto(f"{live_server.url}/work/")
        box = claim.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390
        _claim(page, live_server.url)
        page.screenshot(path=str(_screens() / "annotate-phone.png"), full_page=True)
        assert page.evaluate(NO_SIDEWAYS_SCROLL)
        width = page.locator("#canvas").bounding_box()["width"]
        assert width >= 330, width  # not the ~80 px it shrank to beside the object list
        page.goto(f"{live_server.url}/work/mine/")
        page.screenshot(path=str(_screens() / "my-work-phone.png"), full_page=True)
        assert page.evaluate(NO_SIDEWAYS_SCROLL)
