"""The qualification test in a real browser: a worker not yet qualified answers two bbox
questions (different classes and frame sizes) in the annotation workspace. A first submission
with one question unanswered and one box on a frame that is not asked for shows the errors against
the right question and highlights the box; fixed answers pass. Wrong answers fail with the
attempts left shown. Neither the page nor any response ever carries the known answers."""

from __future__ import annotations

import json
import os

import pytest

from marketplace.models import Qualification, QualificationStatus
from tasks.models import QualificationAnswer, QualificationItem
from tests.e2e.browser import ARGS, CHROMIUM, Stage, login, write_frames
from tests.factories import WorkerFactory

# Answers with fractions a mouse will not reproduce, so their text can be looked for.
TRUTH = [
    {
        "size": (640, 360),
        "classes": ["car", "person"],
        "label": "car",
        "frames": 2,
        "box": [60.375, 50.625, 220.125, 170.875],
    },
    {
        "size": (480, 270),
        "classes": ["dog"],
        "label": "dog",
        "frames": 1,
        "box": [240.625, 90.125, 400.375, 230.875],
    },
]
SECRETS = [str(v) for t in TRUTH for v in t["box"]]


def _items() -> list[QualificationItem]:
    items = []
    for i, t in enumerate(TRUTH):
        w, h = t["size"]
        item = QualificationItem.objects.create(
            annotation_type="bbox",
            position=i,
            instructions=f"Box every {t['label']}.",
            label_classes=t["classes"],
            frame_start=0,
            frame_end=t["frames"] - 1,
            frames=[0],  # question 1 shows two frames but asks about frame 0 only
        )
        item.manifest = {
            "width": w,
            "height": h,
            "frames": write_frames(f"qual-e2e/item-{item.pk}", t["frames"], w, h),
        }
        item.save(update_fields=["manifest"])
        QualificationAnswer.objects.create(
            item=item, payload={"boxes": [{"frame": 0, "label": t["label"], "box": t["box"]}]}
        )
        items.append(item)
    return items


def _wait_for_frame(page, width: int) -> None:
    page.wait_for_function(
        "w => { const im = document.getElementById('frame-img');"
        " return im.complete && im.naturalWidth === w; }",
        arg=width,
    )


def _open_test(page, base_url: str, username: str, seen: list):
    login(page, base_url, username)
    page.on("response", lambda r: seen.append(r))
    page.goto(f"{base_url}/work/qualify/bbox/")
    _wait_for_frame(page, 640)


def _bodies(responses) -> str:
    """Every HTML and JSON body the browser received."""
    out = []
    for r in responses:
        kind = r.headers.get("content-type", "")
        if "html" in kind or "json" in kind:
            out.append(r.text())
    return "\n".join(out)


def _red_at(page, x: float, y: float) -> bool:
    # The canvas's bitmap is as wide as it is shown (workspace.mjs, fitBackingStore): frame
    # pixels are scaled by its width over the frame's.
    rgba = page.evaluate(
        """([x, y]) => {
            const canvas = document.getElementById('canvas');
            const k = canvas.width / document.getElementById('frame-img').naturalWidth;
            const at = [Math.round(x * k), Math.round(y * k)];
            return Array.from(canvas.getContext('2d').getImageData(...at, 1, 1).data);
        }""",
        [x, y],
    )
    return rgba[0] > 200 and rgba[1] < 60 and rgba[2] < 60 and rgba[3] > 200


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_takes_the_qualification_test_in_the_browser_and_passes(live_server):
    from playwright.sync_api import sync_playwright

    items = _items()
    worker = WorkerFactory(username="candidate")
    seen: list = []

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the ORM is not used while the browser runs
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        _open_test(page, live_server.url, "candidate", seen)
        assert page.locator("#q-label").inner_text() == "Question 1 of 2"
        assert page.locator("#class-picker option").all_inner_texts() == ["1. car", "2. person"]
        assert page.locator("#q-instructions").inner_text() == "Box every car."
        embedded = json.loads(page.locator("#qualification-data").text_content())
        assert [q["id"] for q in embedded["questions"]] == [i.pk for i in items]
        stage = Stage(page, 640, 360)

        # Question 1: a box on frame 1, which the question does not ask about; question 2 left.
        page.keyboard.press("ArrowRight")
        stage.drag((300, 100), (400, 200))
        page.click("#submit")
        page.wait_for_selector("#message:not([hidden])")
        message = page.locator("#message").inner_text()
        assert "See questions 1, 2" in message
        # Still on question 1, on the offending box's frame, which is highlighted.
        assert page.locator("#q-label").inner_text() == "Question 1 of 2"
        assert page.locator("#frame-label").inner_text().startswith("frame 1 ")
        errors = page.locator("#errors").inner_text()
        assert errors.startswith("box 1 on frame 1: frame — frame 1 is not one of")
        assert page.locator("#objects li.bad").count() == 1
        assert _red_at(page, 300, 150) and not _red_at(page, 200, 150)
        q2 = page.locator(f"#q-list button[data-question='{items[1].pk}']")
        assert "bad" in q2.get_attribute("class")
        # Question 2 says it needs an answer.
        page.click("#q-next")
        _wait_for_frame(page, 480)
        assert page.locator("#q-label").inner_text() == "Question 2 of 2"
        assert page.locator("#errors").inner_text() == "answer this question"
        assert page.locator("#class-picker option").all_inner_texts() == ["1. dog"]
        # The stage takes the question's frame shape (the canvas's bitmap is as wide as shown).
        assert page.evaluate("document.getElementById('viewport').style.aspectRatio") == "480 / 270"

        # Fix question 1: delete the stray box, box the car on frame 0.
        page.click("#q-prev")
        _wait_for_frame(page, 640)
        assert page.locator("#objects li.bad").count() == 1  # still marked until resubmitted
        page.locator("#objects li").first.click()
        page.keyboard.press("Delete")
        page.keyboard.press("Home")
        page.select_option("#class-picker", "car")
        stage = Stage(page, 640, 360)  # measured again: the error message moved the canvas down
        stage.drag((61, 51), (220, 171))
        # Answer question 2.
        page.keyboard.press("PageDown")
        _wait_for_frame(page, 480)
        stage = Stage(page, 480, 270)
        stage.drag((241, 90), (400, 231))
        assert page.locator("#object-count").inner_text() == "1"

        page.click("#submit")
        page.wait_for_selector("#result:not([hidden])")
        verdict = page.locator("#result .verdict").inner_text()
        board_link = page.locator("#to-board").get_attribute("href")
        submit_hidden = page.locator("#submit").is_hidden()
        assert page.locator("#message").is_hidden()
        html = page.content() + _bodies(seen)
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]

    assert verdict == "Passed" and board_link == "/work/" and submit_hidden
    q = Qualification.objects.get(worker=worker, annotation_type="bbox")
    assert (q.status, q.attempts) == (QualificationStatus.PASSED, 1) and q.score >= 0.7
    assert "/api/work/qualifications/bbox/" in html  # the bodies were read
    for secret in SECRETS:
        assert secret not in html


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_wrong_answers_fail_and_the_attempts_left_are_shown(live_server):
    from playwright.sync_api import sync_playwright

    items = _items()
    worker = WorkerFactory(username="guesser")
    seen: list = []

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        _open_test(page, live_server.url, "guesser", seen)
        Stage(page, 640, 360).drag((400, 200), (500, 300))
        page.click(f"#q-list button[data-question='{items[1].pk}']")
        _wait_for_frame(page, 480)
        Stage(page, 480, 270).drag((20, 20), (100, 80))
        page.click("#submit")
        page.wait_for_selector("#result:not([hidden])")
        verdict = page.locator("#result .verdict").inner_text()
        left = page.locator("#result .attempts-left").inner_text()
        used = page.locator("#attempts-used").inner_text()
        can_resubmit = page.locator("#submit").is_visible()
        html = page.content() + _bodies(seen)
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]

    assert verdict == "Failed"
    assert left.startswith("2 attempts left") and used == "1" and can_resubmit
    q = Qualification.objects.get(worker=worker, annotation_type="bbox")
    assert (q.status, q.attempts) == (QualificationStatus.FAILED, 1) and q.score < 0.7
    for secret in SECRETS:
        assert secret not in html
