"""Proposals in the browser (Debian's chromium via Playwright) against a live server: a worker
sees a machine's suggestions dashed with their confidence, accepts one and moves it, rejects the
rest, gets them back after a reload (the draft keeps the accepted one and its link), accepts all,
and submits; the server records which boxes came from which proposal and how far each moved."""

from __future__ import annotations

import pytest

from tasks.models import Assignment, MicroTask, Proposal, ProposalConfig, Submission
from tests.e2e.browser import Stage, login
from tests.e2e.test_browser_workspace import _bbox_job, _browser, _claim, _local_draft, expect
from tests.tasks.claim_fixtures import HEIGHT, WIDTH

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHAPES = [
    {"frame": 0, "label": "car", "box": [100.0, 60.0, 300.0, 200.0]},
    {"frame": 0, "label": "person", "box": [400.0, 100.0, 500.0, 300.0]},
    {"frame": 1, "label": "car", "box": [120.0, 60.0, 320.0, 200.0]},
]


def test_accept_one_move_it_reject_the_rest_then_accept_all_and_submit(live_server, monkeypatch):
    worker = _bbox_job(monkeypatch, "suggested")
    mt = MicroTask.objects.get(job__annotation_type="bbox", is_gold=False)
    ProposalConfig.objects.create(job=mt.job, sources=["motion"])
    p = Proposal.objects.create(
        microtask=mt,
        source="motion",
        status="ok",
        model_version="motion-1",
        shapes=SHAPES,
        confidences=[0.9, 0.6, 0.8],
        confidence=0.77,
    )
    with _browser() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        login(page, live_server.url, "suggested")
        _claim(page, live_server.url)
        panel = page.locator("#proposals")
        expect(panel).to_contain_text("Suggestions (3 of 3 to decide)")
        expect(page.locator("#proposals-list li")).to_have_count(3)
        expect(page.locator("#proposals-list li").first).to_contain_text("motion 90%")

        # Accept the first: it becomes a box of the worker's, linked to its proposal.
        page.locator(f'#proposals-list li[data-ref="{p.pk}:0"] button').click()
        expect(panel).to_contain_text("Suggestions (2 of 3 to decide)")
        draft = _local_draft(page)["payload"]["boxes"]
        assert draft == [{**SHAPES[0], "from_proposal": f"{p.pk}:0"}]
        # Move it 20 px right: the link stays.
        stage = Stage(page, WIDTH, HEIGHT)
        stage.click(200, 130)
        stage.drag((200, 130), (220, 130))
        [moved] = _local_draft(page)["payload"]["boxes"]
        assert moved["from_proposal"] == f"{p.pk}:0"
        assert moved["box"][0] == pytest.approx(120, abs=2 * stage.pixel)

        # Reject the rest: nothing left to decide, nothing added.
        page.click("#proposals-reject-all")
        expect(page.locator("#proposals-list li")).to_have_count(0)
        assert len(_local_draft(page)["payload"]["boxes"]) == 1

        # A reload restores the draft (with the link); rejections were for that view only.
        page.reload()
        expect(panel).to_contain_text("Suggestions (2 of 3 to decide)")
        page.click("#proposals-accept-all")
        expect(page.locator("#proposals-list li")).to_have_count(0)
        page.click("#submit")
        page.click("#confirm-submit")  # frame 2 is empty
        expect(page.locator("#message")).to_contain_text("Submitted")

    a = Assignment.objects.get(worker=worker)
    prov = {e["index"]: e for e in Submission.objects.get(assignment=a).provenance}
    assert sorted(prov) == [0, 1, 2]
    assert prov[0]["unchanged"] is False and 0.1 < prov[0]["moved"] < 0.3
    assert prov[1]["unchanged"] is True and prov[1]["moved"] == 0
    assert prov[2]["unchanged"] is True
    assert {e["proposal"] for e in prov.values()} == {p.pk}
