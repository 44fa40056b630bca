"""Shared pieces of the browser tests: Debian's chromium driven by Playwright, logging in, paying
on the local Stripe server's Checkout page, frame images on disk, and mouse gestures given in
frame pixels."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from PIL import Image, ImageDraw

from tasks import claiming
from tests.factories import WorkerFactory
from tests.tasks.claim_fixtures import HEIGHT, WIDTH, qualify, ready_job

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "pass-word-123"  # tests.factories.UserFactory's
CARD_SUCCEEDS = "4242 4242 4242 4242"


def claimable_job(*, annotation_type: str, n_frames: int, username: str, folder: str):
    """A published job of one microtask of ``n_frames`` real frames (two replicas, so submitted
    work waits for the second and stays "submitted"), no gold, and a worker ``username``
    qualified for it: ``(job, worker)``. Call with claiming's ``_rng`` patched to skip gold."""
    job = ready_job(n=1, overlap=2, annotation_type=annotation_type, frames_per_task=n_frames)
    mt = job.microtasks.get()
    mt.manifest = {
        "width": WIDTH,
        "height": HEIGHT,
        "frames": write_frames(f"{folder}/job-{job.pk}", n_frames, WIDTH, HEIGHT),
    }
    mt.save(update_fields=["manifest"])
    claiming.job_publish(job=job, by=job.requester)
    return job, qualify(WorkerFactory(username=username), annotation_type)


def write_frames(folder: str, n: int, width: int, height: int) -> list[dict]:
    """``n`` JPEG frames under MEDIA_ROOT/``folder``; returns their manifest entries."""
    path = Path(settings.MEDIA_ROOT) / folder
    path.mkdir(parents=True, exist_ok=True)
    entries = []
    for f in range(n):
        im = Image.new("RGB", (width, height), (30 + 20 * f, 60, 90))
        ImageDraw.Draw(im).rectangle([40 + 10 * f, 40, 140 + 10 * f, 120], fill=(200, 200, 40))
        im.save(path / f"{f:06d}.jpg", quality=80)
        entries.append({"frame": f, "url": f"/media/{folder}/{f:06d}.jpg", "timestamp": f / 30})
    return entries


def login(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def webhooks_to_us(server, live_server) -> None:
    """The local Stripe server (fixture ``stripe_local``) signs its events and delivers them to
    the live server's webhook."""
    server.add_endpoint(f"{live_server.url}/stripe/webhook/", settings.STRIPE_WEBHOOK_SECRET)


def to_payment_page(page, base_url: str, job_pk: int, api_base: str) -> str:
    """On the job's funding page, click Fund (the quote) and land on the local Stripe server's
    payment page (``api_base``); returns the funding page's URL."""
    funding_url = f"{base_url}/requester/jobs/{job_pk}/funding/"
    if page.url.split("?")[0] != funding_url:
        page.goto(funding_url)
    page.click("#fund-quote")
    page.wait_for_url(f"{api_base}/_checkout/**")
    return funding_url


def pay(page, funding_url: str, card: str = CARD_SUCCEEDS) -> str:
    """On the payment page, pay with ``card`` (one that succeeds), come back to the funding page
    and wait for its own check to show the payment credited; returns the outcome's text."""
    page.fill("#card_number", card)
    page.click("#pay")
    page.wait_for_url(f"{funding_url}?funding=*")
    page.wait_for_selector("#funding-outcome:has-text('Payment received')")
    return page.locator("#funding-outcome").inner_text()


class Stage:
    """Mouse gestures on the annotation canvas, in frame pixels (the canvas is scaled by CSS)."""

    def __init__(self, page, width: int, height: int) -> None:
        self.page = page
        self.width, self.height = width, height
        self.box = page.locator("#canvas").bounding_box()

    @property
    def pixel(self) -> float:
        """One CSS pixel in frame pixels: mouse positions are good to about this."""
        return self.width / self.box["width"]

    def at(self, x: float, y: float) -> tuple[float, float]:
        return (
            self.box["x"] + x * self.box["width"] / self.width,
            self.box["y"] + y * self.box["height"] / self.height,
        )

    def click(self, x: float, y: float, **kwargs) -> None:
        self.page.mouse.click(*self.at(x, y), **kwargs)

    def dblclick(self, x: float, y: float) -> None:
        self.page.mouse.dblclick(*self.at(x, y))

    def drag(self, start, end, steps: int = 6) -> None:
        self.page.mouse.move(*self.at(*start))
        self.page.mouse.down()
        for i in range(1, steps + 1):
            self.page.mouse.move(
                *self.at(
                    start[0] + (end[0] - start[0]) * i / steps,
                    start[1] + (end[1] - start[1]) * i / steps,
                )
            )
        self.page.mouse.up()
