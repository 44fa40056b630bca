"""The attribute panel and the relation tool in a real browser: on a track job a worker draws a
car and a person, gives the car a colour at its first keyframe, marks it occluded two frames
later (a change there makes a keyframe), is told a speed out of bounds is refused, relates the
person to the car, and submits; the stored payload and per-frame shapes carry all of it."""

from __future__ import annotations

import os

import pytest

from marketplace.models import Job
from tasks import claiming
from tasks.models import Assignment, AssignmentStatus
from tests.e2e.browser import ARGS, CHROMIUM, Stage, claimable_job, login
from tests.tasks.claim_fixtures import HEIGHT, WIDTH

N_FRAMES = 4
ATTRIBUTES = {
    "car": [
        {"name": "occluded", "type": "bool"},
        {"name": "colour", "type": "choice", "values": ["red", "blue"]},
        {"name": "speed", "type": "number", "min": 0, "max": 200},
    ]
}


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_sets_attributes_at_keyframes_and_relates_two_tracks(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)
    job, worker = claimable_job(
        annotation_type="track", n_frames=N_FRAMES, username="describer", folder="attrs-e2e"
    )
    Job.objects.filter(pk=job.pk).update(
        label_attributes=ATTRIBUTES, relation_predicates=["rides", "holds"]
    )

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the ORM is not used while the browser runs
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        login(page, live_server.url, "describer")
        page.goto(f"{live_server.url}/work/")
        page.click("#claim-next")
        page.wait_for_url("**/work/assignments/*/")
        page.wait_for_function("document.getElementById('frame-img').complete")
        stage = Stage(page, WIDTH, HEIGHT)
        panel = page.locator("#attributes")

        page.select_option("#class-picker", "person")
        stage.drag((300, 100), (360, 200))
        assert panel.is_hidden()  # a person has no attributes in this job
        page.click("#relation-subject")  # the person is the subject
        page.keyboard.press("Escape")
        page.keyboard.press("1")  # class shortcut: car
        stage.drag((50, 50), (250, 160))
        assert page.locator("#object-count").inner_text() == "2"

        # The car is selected: its attributes at frame 0 (its first keyframe).
        assert panel.is_visible() and "frame 0" in panel.inner_text()
        panel.locator("select[name=attr-colour]").select_option("red")
        speed = panel.locator("input[name=attr-speed]")
        speed.fill("250")
        speed.dispatch_event("change")
        assert "speed must be at most 200" in page.locator("#message").inner_text()
        speed = panel.locator("input[name=attr-speed]")
        speed.fill("60")
        speed.dispatch_event("change")

        # Two frames on, the car becomes occluded: a keyframe appears there.
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        assert page.locator("#frame-label").inner_text().startswith("frame 2")
        cells = page.locator("#timeline .cell")
        assert "key" not in (cells.nth(2).get_attribute("class") or "").split()
        panel.locator("input[name=attr-occluded]").check()
        assert "key" in cells.nth(2).get_attribute("class").split()
        assert panel.locator("select[name=attr-colour]").input_value() == "red"  # carried

        # The relation: the person (chosen as subject) rides the selected car.
        page.select_option("#relation-predicate", "rides")
        page.click("#relation-add")
        assert page.locator("#relations li").inner_text().startswith("#1 person rides #2 car")
        # The same again (picked from the object list) is refused.
        page.locator("#objects li", has_text="person").click()
        page.click("#relation-subject")
        page.locator("#objects li", has_text="car").click()
        page.click("#relation-add")
        assert "already there" in page.locator("#message").inner_text()
        assert page.locator("#relations li").count() == 1

        page.click("#submit")
        page.wait_for_selector("#done:not([hidden])")
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]

    a = Assignment.objects.select_related("submission").get(worker=worker)
    assert a.status == AssignmentStatus.SUBMITTED
    payload = a.submission.payload
    tracks = {t["label"]: t for t in payload["tracks"]}
    car, person = tracks["car"], tracks["person"]
    assert [k["frame"] for k in car["keyframes"]] == [0, 2]
    assert car["keyframes"][0]["attributes"] == {"colour": "red", "speed": 60.0}
    assert car["keyframes"][1]["attributes"] == {"occluded": True}
    assert payload["relations"] == [
        {"subject": person["id"], "predicate": "rides", "object": car["id"]}
    ]
    frames = a.submission.frames
    at = {f: next(s for s in frames[str(f)] if s["label"] == "car") for f in range(N_FRAMES)}
    assert at[1]["attributes"] == {"colour": "red", "speed": 60.0}
    assert at[3]["attributes"] == {"colour": "red", "speed": 60.0, "occluded": True}
    rider = next(s for s in frames["3"] if s["label"] == "person")
    assert rider["relations"] == [{"predicate": "rides", "object": frames["3"].index(at[3])}]
