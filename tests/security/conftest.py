"""The security suite's fixture world: one of everything, owned by "worker" and "requester".

Six roles look at it: ``anonymous``, ``worker`` and ``requester`` (the owners), ``other_worker``
and ``other_requester`` (same role, not the owner: object-level access), and ``admin``. Every
object route of the access matrix is filled with the ids of these objects, so "other" roles
prove they cannot reach what is not theirs. To cover a new kind of object, build it here with the
real services where they exist (so it is in a state the product can reach) and add it to
:class:`World`.

``World.secrets`` names strings that must never reach a role: each is a marker planted in a field
only the owner (and admins) may read.
"""

from __future__ import annotations

import secrets as _secrets
from collections import Counter
from dataclasses import dataclass, field

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from rest_framework.authtoken.models import Token

from marketplace.models import Job, User
from payments.models import Funding, FundingStatus, Payout, PayoutStatus
from quality import services as quality_services
from quality.models import Appeal, FraudFlag, ReviewItem
from tasks import claiming, reviewing
from tasks.models import Assignment, MicroTask, Video
from tests.factories import AdminFactory, RequesterFactory, WorkerFactory
from tests.tasks.claim_fixtures import published_job, qualify, store_frames

ROLES = ("anonymous", "worker", "other_worker", "requester", "other_requester", "admin")


@dataclass
class World:
    users: dict[str, User]
    job: Job  # requester's, published, with stored frames
    video: Video
    microtask: MicroTask
    claimed: Assignment  # worker's live claim
    submitted: Assignment  # worker's submitted work, flagged
    rejected: Assignment  # worker's rejected work, appealed
    appeal: Appeal
    review: ReviewItem
    flag: FraudFlag
    funding: Funding
    payout: Payout
    frame_media: str  # /media/ name of a frame extracted from the job's video
    upload_media: str  # /media/ name of the job's uploaded video
    public_media: str  # /media/ name of a qualification image (public test material)
    secrets: dict[str, list[str]] = field(default_factory=dict)

    @property
    def worker(self) -> User:
        return self.users["worker"]

    @property
    def requester(self) -> User:
        return self.users["requester"]

    def token(self, role: str) -> str:
        return Token.objects.get_or_create(user=self.users[role])[0].key


def _payload(mt: MicroTask) -> dict:
    frame = (mt.frames or [mt.frame_start])[0]
    return {"boxes": [{"frame": frame, "label": "car", "box": [10, 10, 50, 40]}]}


def _secrets_of(job: Job, marker: str) -> dict[str, list[str]]:
    """Which role must never read which marker."""
    job_text = [job.title, job.instructions]  # workers see these on the board
    rejection = [f"secret-reason-{marker}", f"secret-appeal-{marker}"]  # worker, requester, admin
    pay = [f"acct_secret{marker}", f"tr_secret{marker}"]  # the worker and admins
    review = [f"secret-review-{marker}"]  # the requester and admins
    flag = [f"secret-flag-{marker}"]  # admins
    return {
        "anonymous": job_text + rejection + pay + review + flag,
        "worker": review + flag,
        "other_worker": rejection + pay + review + flag,
        "requester": pay,
        "other_requester": job_text + rejection + pay + review + flag,
    }


def build_world() -> World:
    marker = _secrets.token_hex(6)
    requester = RequesterFactory()
    worker = qualify(WorkerFactory())
    users = {
        "worker": worker,
        "other_worker": qualify(WorkerFactory()),
        "requester": requester,
        "other_requester": RequesterFactory(),
        "admin": AdminFactory(),
    }
    job = published_job(
        n=4,
        overlap=3,
        requester=requester,
        title=f"secret-job-{marker}",
        instructions=f"secret-instructions-{marker}",
    )
    stored = store_frames(job)

    # One claim at a time, as a worker under a concurrent-claim cap would: submit, then reject.
    first = claiming.assignment_claim(worker=worker, job_id=job.pk)
    claiming.assignment_submit(
        worker=worker, assignment_id=first.pk, payload=_payload(first.microtask), active_seconds=5
    )
    second = claiming.assignment_claim(worker=worker, job_id=job.pk)
    claiming.assignment_submit(
        worker=worker, assignment_id=second.pk, payload=_payload(second.microtask), active_seconds=5
    )
    reviewing.assignment_reject(
        assignment_id=second.pk, by=requester, reason=f"secret-reason-{marker}"
    )
    appeal = quality_services.appeal_create(
        worker=worker, assignment_id=second.pk, message=f"secret-appeal-{marker}"
    )
    claimed = claiming.assignment_claim(worker=worker, job_id=job.pk)

    review = ReviewItem.objects.create(
        microtask=first.microtask, job=job, reason=f"secret-review-{marker}"
    )
    flag = FraudFlag.objects.create(
        assignment=first,
        worker=worker,
        job=job,
        kind="too_fast",
        evidence={"seconds": 1, "note": f"secret-flag-{marker}"},
    )
    funding = Funding.objects.create(
        job=job,
        requester=requester,
        amount=job.budget,
        currency=job.currency,
        stripe_payment_intent_id=f"pi_world_{marker}",
        status=FundingStatus.SUCCEEDED,
    )
    payout = Payout.objects.create(
        worker=worker,
        amount=500,
        currency="usd",
        destination=f"acct_secret{marker}",
        stripe_transfer_id=f"tr_secret{marker}",
        status=PayoutStatus.PAID,
    )

    claimed_mt = claimed.microtask
    frame_media = next(
        name for name in stored if name.startswith(f"frames/video-{claimed_mt.video_id}/")
    )
    public_media = default_storage.save(
        f"qualification/bbox/world-{marker}.jpg", ContentFile(stored[frame_media])
    )
    video = claimed_mt.video
    return World(
        users=users,
        job=job,
        video=video,
        microtask=claimed_mt,
        claimed=Assignment.objects.get(pk=claimed.pk),
        submitted=Assignment.objects.get(pk=first.pk),
        rejected=Assignment.objects.get(pk=second.pk),
        appeal=appeal,
        review=review,
        flag=flag,
        funding=funding,
        payout=payout,
        frame_media=frame_media,
        upload_media=video.file.name,
        public_media=public_media,
        secrets=_secrets_of(job, marker),
    )


@pytest.fixture
def world(db, no_gold) -> World:
    return build_world()


@pytest.fixture(scope="module")
def _local_stripe():
    """One local Stripe server for a module: stopping one takes half a second, which per test
    of the Schemathesis module was a minute. Its state carries over between tests."""
    from django.conf import settings

    from stripe_local import LocalStripe

    server = LocalStripe(
        api_key=settings.STRIPE_SECRET_KEY, auto_deliver=False, initial_available=10_000_000
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stripe_server(_local_stripe, settings):
    """The module's local Stripe server, with the SDK pointed at it (as the payments suite's)."""
    settings.STRIPE_API_BASE = _local_stripe.api_base
    settings.STRIPE_TIMEOUT_SECONDS = 2.0
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    return _local_stripe


@pytest.fixture
def no_gold(monkeypatch):
    """The world's claims are never gold, so which microtask each claim gets is predictable."""
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)


# --- "nothing changed" -------------------------------------------------------------------------

# State a request can change: every table of the project's own apps and the users. Sessions and
# tokens are the test clients' own doing; caches and throttles live in Redis.
_APPS = ("marketplace", "tasks", "quality", "payments")


def _tables() -> list[str]:
    from django.apps import apps

    names = []
    for app in _APPS:
        for model in apps.get_app_config(app).get_models():
            names.append(model._meta.db_table)
    return sorted(set(names))


def db_fingerprint() -> dict[str, str]:
    """A digest of every row of every project table, in one query: equal digests, same data."""
    tables = _tables()
    sql = " UNION ALL ".join(
        f"SELECT '{t}', md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) "
        f'FROM "{t}" AS x'
        for t in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return dict(cursor.fetchall())


def changed_tables(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(t for t in before if before[t] != after.get(t))


# --- the Schemathesis case count in the terminal summary ----------------------------------------

# (role, operation) -> cases run, filled by test_schemathesis.
SCHEMATHESIS_CASES: Counter = Counter()


def pytest_terminal_summary(terminalreporter) -> None:
    if not SCHEMATHESIS_CASES:
        return
    by_role = Counter()
    for (role, _), n in SCHEMATHESIS_CASES.items():
        by_role[role] += n
    operations = len({op for _, op in SCHEMATHESIS_CASES})
    roles = ", ".join(f"{role} {n}" for role, n in sorted(by_role.items()))
    terminalreporter.write_sep("-", "schemathesis")
    terminalreporter.write_line(
        f"schemathesis: {sum(by_role.values())} cases over {operations} operations ({roles})"
    )
