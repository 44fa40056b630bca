"""The quality pages: the review queue with submissions overlaid, and a worker's own trust."""

import pytest

from quality.models import ReviewItem
from quality.simulator import PRECISE, SPAMMER
from tasks.models import MicroTaskStatus
from tests.quality.test_services import claim_and_submit

pytestmark = pytest.mark.django_db(transaction=True)


def test_review_page_overlays_submissions_and_resolves_with_one(
    world_factory, workers, no_gold, client
):
    world = world_factory(n=1, overlap=2, overlap_max=2)
    good, bad = workers(2)
    kept = claim_and_submit(world, good, PRECISE, seed=1)
    claim_and_submit(world, bad, SPAMMER, seed=2)
    item = ReviewItem.objects.get(status="open")
    client.force_login(world.job.requester)
    queue = client.get("/quality/review/")
    assert queue.status_code == 200
    assert f"/quality/review/{item.pk}/".encode() in queue.content
    detail = client.get(f"/quality/review/{item.pk}/")
    assert detail.status_code == 200
    assert detail.content.count(b"<rect") > 0
    r = client.post(f"/quality/review/{item.pk}/resolve/", {"assignment": kept.pk})
    assert r.status_code == 302
    item.refresh_from_db()
    assert item.status == "resolved"
    assert item.microtask.status == MicroTaskStatus.COMPLETE

    client.force_login(good)
    mine = client.get("/quality/me/")
    assert mine.status_code == 200
    assert b"a reviewer checked this work" in mine.content
    # A worker cannot see the review.
    client.force_login(workers(1)[0])
    assert client.get(f"/quality/review/{item.pk}/").status_code == 404


def test_worker_appeals_a_rejection_from_their_quality_page(
    world_factory, workers, gold_first, client
):
    world = world_factory(n=1, gold=1, gold_rate=0.5)
    (w,) = workers(1)
    failed = claim_and_submit(world, w, SPAMMER, seed=4)
    client.force_login(w)
    page = client.get("/quality/me/")
    assert failed.rejection_reason.encode() in page.content
    r = client.post(f"/quality/me/appeal/{failed.pk}/", {"message": "I drew them all."})
    assert r.status_code == 302
    assert b"Pending" in client.get("/quality/me/").content
    again = client.post(f"/quality/me/appeal/{failed.pk}/", {"message": "again"}, follow=True)
    assert b"once" in again.content


@pytest.mark.django_db
def test_the_review_queue_title_is_text_and_admins_see_disputes_once(client):
    from tests.factories import AdminFactory

    client.force_login(AdminFactory())
    html = client.get("/quality/review/").content.decode()
    title = html.split("<title>", 1)[1].split("</title>", 1)[0]
    assert title == "Review queue · Crowdlabel"
    assert html.count('id="disputes"') == 1 and html.count('id="disputed-gold"') == 1
