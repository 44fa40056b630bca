"""The requester's whole path in a real browser (Debian's chromium via Playwright) against a live
server and the local Stripe server: create a job choosing "I review first" on its form, upload a
small synthetic video, process it and see the dashboard's progress, open the quote from the
job's page and pay it through Stripe Checkout (Fund, the server's test payment page, card
4242 4242 4242 4242, back to the funding page, which shows it credited), publish through the
button and its confirmation, then — after two workers submitted — reject one submission with a
reason on the submissions page, see it rejected, and download the dataset from the export link.
A second test draws a gold answer in the workspace."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from django.db import connections

from marketplace.models import Job, JobStatus
from payments.models import Funding, FundingStatus
from payments.selectors import escrow_balance
from quality.models import GoldAnswer, JobQualityPolicy
from tasks import claiming
from tasks.models import Assignment, AssignmentStatus, MicroTask
from tests.e2e.browser import ARGS, CHROMIUM, Stage, login, pay, to_payment_page, write_frames
from tests.factories import RequesterFactory, WorkerFactory
from tests.tasks.claim_fixtures import HEIGHT, WIDTH, qualify, ready_job
from tests.tasks.ingest_helpers import make_clip


def _work(job: Job) -> list[Assignment]:
    """Two workers each submit a box on every frame of a microtask of ``job``."""
    done = []
    for k in range(2):
        worker = qualify(WorkerFactory(username=f"labeller{k}"))
        a = claiming.assignment_claim(worker=worker, job_id=job.pk)
        frames = a.microtask.frames or [a.microtask.frame_start]
        boxes = [{"frame": f, "label": "car", "box": [10 + k, 10, 60 + k, 50]} for f in frames]
        claiming.assignment_submit(
            worker=worker, assignment_id=a.pk, payload={"boxes": boxes}, active_seconds=40
        )
        done.append(Assignment.objects.get(pk=a.pk))
    return done


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_requester_creates_pays_publishes_reviews_rejects_and_exports(
    live_server, stripe_local, monkeypatch
):
    from playwright.sync_api import sync_playwright

    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)  # no gold claims
    RequesterFactory(username="team-lead")
    # Two microtasks: a quote above Stripe's minimum charge (one prices under $0.50).
    clip = make_clip(Path(tempfile.mkdtemp()), frames=120, width=160, height=120)

    # The ORM runs between browser steps (reading the job and the workers' submissions).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            try:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.on("dialog", lambda d: d.accept())
                login(page, live_server.url, "team-lead")

                # Create the job.
                page.goto(f"{live_server.url}/requester/jobs/new/")
                page.fill("#id_title", "Cars on the ring road")
                page.fill("#id_instructions", "Box every car.")
                page.select_option("#id_annotation_type", "bbox")
                page.fill("#id_label_classes", "car, person")
                page.fill("#id_overlap_min", "2")
                page.fill("#id_overlap_max", "2")
                page.fill("#id_gold_rate", "0")
                page.fill("#id_budget", "500000")
                page.check("input[name=review_mode][value=review_first]")  # "I review first"
                page.click("form.card button[type=submit]")
                page.wait_for_url("**/requester/jobs/*/")
                job = Job.objects.get(title="Cars on the ring road")

                # Upload a small video and process it (ingestion runs eagerly in the test settings).
                page.set_input_files("#upload-form input[type=file]", str(clip.path))
                page.click("#upload-form button")
                page.wait_for_selector("#process-form")
                page.click("#process-form button")
                page.wait_for_selector("#job-status")
                job.refresh_from_db()
                assert job.status == JobStatus.READY
                page.reload()
                assert page.locator("#job-percent").inner_text() == "0.0%"
                preview = page.locator("#video-progress img.preview").first
                page.wait_for_function("document.querySelector('img.preview').naturalWidth > 0")
                assert preview.evaluate("img => img.naturalWidth") > 0  # the real first frame

                # The review mode chosen on the form; the quote, from the job's page, paid through
                # Checkout.
                assert page.locator("input[name=mode][value=review_first]").is_checked()
                page.get_by_role("link", name="Quote, funding and escrow").click()
                page.wait_for_url(f"**/requester/jobs/{job.pk}/funding/")
                funding_url = to_payment_page(page, live_server.url, job.pk, stripe_local.api_base)
                outcome = pay(page, funding_url)
                funding = Funding.objects.get(job=job)
                paid = f"${funding.amount / 100:,.2f}"
                assert paid in outcome
                assert page.locator("#escrow-funded").inner_text() == paid
                assert (
                    page.locator("#funding-state").inner_text()
                    == "The job is funded for its quote."
                )

                # Publish through the button and its confirmation.
                page.goto(f"{live_server.url}/requester/jobs/{job.pk}/")
                assert page.locator("#escrow-funded").inner_text() == paid
                page.click("#action-publish")
                page.wait_for_selector("#confirm")
                page.click("#confirm")
                page.wait_for_selector("text=Published:")
                assert page.locator("#job-status").inner_text() == "Published"
                assert page.locator("#action-pause").is_visible()

                # Two workers submit; consensus does not approve them: the requester reviews first.
                subs = _work(job)
                assert {a.status for a in subs} == {AssignmentStatus.SUBMITTED}
                page.reload()
                percent = page.locator("#job-percent").inner_text()
                assert percent != "0.0%"

                # Reject one submission with a reason and see it rejected.
                page.click("#submissions-link")
                page.wait_for_url("**/submissions/")
                target = subs[0]
                row = page.locator(f"#submission-{target.pk}")
                assert row.locator("svg image.frame-image").count() >= 1
                assert row.locator("rect.shape").count() >= 1
                row.locator(f"input[name=reason-{target.pk}]").fill("The box misses the car.")
                row.locator("button.reject").click()
                page.wait_for_selector(f"text=Rejected #{target.pk}.")
                rejected_row = page.locator(f"#submission-{target.pk}")
                assert "Rejected" in rejected_row.locator(".status").inner_text()
                assert "The box misses the car." in rejected_row.locator(".reason").inner_text()

                # The dataset download.
                page.goto(f"{live_server.url}/requester/jobs/{job.pk}/")
                href = page.locator("#export-coco").get_attribute("href")
                export = page.request.get(f"{live_server.url}{href}")
                assert export.status == 200
                assert "images" in export.json()
                browser.close()
            finally:
                # Playwright's sync API runs this block in a context of its own, where the ORM
                # opened a connection of its own (asgiref's Local is context-bound): close it here,
                # or it outlives the test and the test database cannot be dropped.
                connections.close_all()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]

    funding.refresh_from_db()
    assert funding.status == FundingStatus.SUCCEEDED
    assert escrow_balance(job=job).funded == funding.amount
    target.refresh_from_db()
    assert target.status == AssignmentStatus.REJECTED
    assert target.rejection_reason == "The box misses the car."
    assert Assignment.objects.get(pk=subs[1].pk).status == AssignmentStatus.SUBMITTED
    pol = JobQualityPolicy.objects.get(job=job)
    assert (pol.auto_approve, pol.auto_reject) == (False, False)


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_requester_draws_a_gold_answer_in_the_workspace(live_server):
    from playwright.sync_api import sync_playwright

    job = ready_job(n=2, overlap=1, requester=RequesterFactory(username="gold-author"))
    mt = MicroTask.objects.filter(job=job).order_by("index").first()
    mt.manifest = {
        "width": WIDTH,
        "height": HEIGHT,
        "frames": write_frames(f"gold-e2e/job-{job.pk}", len(mt.frames), WIDTH, HEIGHT),
    }
    # The manifest's frame numbers are the microtask's.
    for entry, f in zip(mt.manifest["frames"], mt.frames, strict=True):
        entry["frame"] = f
    mt.save(update_fields=["manifest"])

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            login(page, live_server.url, "gold-author")
            page.goto(f"{live_server.url}/quality/jobs/{job.pk}/gold/draw/{mt.pk}/")
            page.wait_for_function("document.getElementById('frame-img').complete")
            assert page.locator("#frame-img").evaluate("img => img.naturalWidth") == WIDTH
            stage = Stage(page, WIDTH, HEIGHT)
            page.select_option("#class-picker", "car")
            stage.drag((100, 80), (220, 160))
            assert page.locator("#object-count").inner_text() == "1"
            page.click("#submit")
            page.wait_for_selector("#done:not([hidden])")
            message = page.locator("#message").inner_text()
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]

    assert "Saved" in message
    answer = GoldAnswer.objects.get(microtask=mt)
    (box,) = answer.payload["boxes"]
    assert box["label"] == "car" and box["frame"] == mt.frames[0]
    np.testing.assert_allclose(box["box"], [100, 80, 220, 160], atol=1.5)
    mt.refresh_from_db()
    assert mt.is_gold
