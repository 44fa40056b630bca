"""The Content-Security-Policy in a real browser: the annotation page (canvas over frame images,
its ES modules, data from json_script) and Swagger UI (drf-spectacular-sidecar's files, the split
view's start-up script) work under it, and chromium reports no violation on any page visited."""

from __future__ import annotations

import os

import pytest

from tasks import claiming
from tests.e2e.browser import ARGS, CHROMIUM, login, write_frames
from tests.factories import WorkerFactory
from tests.tasks.claim_fixtures import HEIGHT, WIDTH, qualify, ready_job


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_pages_and_api_docs_run_under_the_policy_without_a_violation(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)
    job = ready_job(n=1, overlap=1, frames_per_task=3)
    mt = job.microtasks.get()
    mt.manifest = {
        "width": WIDTH,
        "height": HEIGHT,
        "frames": write_frames(f"csp-e2e/job-{job.pk}", 3, WIDTH, HEIGHT),
    }
    mt.save(update_fields=["manifest"])
    claiming.job_publish(job=job, by=job.requester)
    qualify(WorkerFactory(username="csp-worker"))

    violations: list[str] = []
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the ORM is not used while the browser runs
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        login(page, live_server.url, "csp-worker")
        page.goto(f"{live_server.url}/work/")
        page.click("#claim-next")
        page.wait_for_url("**/work/assignments/*/")
        page.wait_for_function(
            "w => { const im = document.getElementById('frame-img');"
            " return im.complete && im.naturalWidth === w; }",
            arg=WIDTH,
        )
        # the page's modules ran: it drew the frame and listed the job's classes.
        assert page.locator("#class-picker option").count() >= 2

        page.goto(f"{live_server.url}/api/docs/")
        page.wait_for_selector(".swagger-ui .info .title")
        assert "Crowdlabel API" in page.locator(".swagger-ui .info .title").inner_text()
        page.wait_for_selector(".opblock-tag")  # the schema was fetched and rendered
        browser.close()
    assert violations == []
