"""Load benchmark: a mixed workload on gunicorn + PostgreSQL + Redis + a real Celery worker.

For ``LOAD_SECONDS`` (default 180; shorten it for development), against the shipped
``gunicorn.conf.py`` on a database of its own (``$BENCH_DB_PREFIX`` + ``load``, default
``cl_bench_load``, created and dropped here), with the local Stripe server (``stripe_local``)
delivering signed webhooks to our endpoints:

- **workers** (``LOAD_WORKERS`` threads, default 16, each with its own API token) onboard their
  Stripe Connect account (``POST /api/payments/connect/``, then the account completed on the
  Stripe server, whose ``account.updated`` webhook reaches us), then loop: claim, think, heartbeat,
  think, submit a valid payload (``active_seconds`` never more than the time they held the claim);
- **requesters** poll their job's progress (``GET /api/jobs/<id>/``), review its submitted work
  (approve most, reject some with a reason) and export it (``GET /api/jobs/<id>/export/coco/``);
- **webhooks**: a second job is funded through Stripe Checkout over the API (the session paid on
  the Stripe server with the test card, so real ``payment_intent.succeeded`` and
  ``checkout.session.completed`` events are posted, signed, to ``/stripe/webhook/``), published,
  then topped up through Checkout again every few seconds while the load runs;
- **payouts**: midway and at the end, an admin releases held earnings
  (``POST /api/payments/admin/earnings/release/``) and starts a payout run
  (``POST /api/payments/admin/payout-runs/``), which the Celery worker executes (transfers to the
  workers' connected accounts on the Stripe server).

Celery scores every submission meanwhile (consensus, trust, approvals by evidence).

Reported: throughput, p50/p99 per endpoint, the error rate (a 5xx or an unexpected 4xx is an
error; a 404 "nothing to claim", a 409 for work Celery already approved are expected outcomes,
counted apart; throttles are raised so that no 429 happens), then every invariant of
``../shared/DESIGN.md`` checked on the final state by ``tests/faults/invariants.py``.

Run: ``make bench-load`` (``LOAD_SECONDS=45 make bench-load`` for a short try). Prints a final
JSON line; writes ``bench/results/load.json`` (not for a run shorter than 180 s).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import (  # noqa: E402
    BASE_DATABASE_URL,
    bench_db_name,
    drop_database,
    free_port,
    insert_microtasks,
    make_job,
    make_workers,
    pct,
    recreate_database,
    report,
    start_celery_worker,
    start_gunicorn,
    stop_process,
    with_db,
)

DB_NAME = bench_db_name("load")
SECONDS = float(os.environ.get("LOAD_SECONDS", "180"))
WORKERS = int(os.environ.get("LOAD_WORKERS", "16"))
MICROTASKS = int(os.environ.get("LOAD_MICROTASKS", "3000"))  # the main job (x 3 replicas)
CHECKOUT_MICROTASKS = 200  # the job funded through Checkout
THINK = (0.4, 1.2)  # seconds a simulated worker spends between its requests
REJECT_EVERY = 12  # a requester rejects one submission in this many
EXPORT_EVERY = 15.0  # seconds between a requester's exports
TOPUP_EVERY = 6.0  # seconds between Checkout top-ups of the second job
TOPUP_AMOUNT = 5_000
CELERY_CONCURRENCY = 2  # the default queue's worker: two processes (prefork); payments has its own
DURATION_GOAL = 180
P99_OVER_P50_GOAL = 10

BENCH_URL = with_db(BASE_DATABASE_URL, DB_NAME)
# The broker and cache: BENCH_REDIS_URL, else REDIS_URL (its Celery queue is purged first).
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL") or os.environ.get(
    "REDIS_URL", "redis://127.0.0.1:6379/14"
)
os.environ["DATABASE_URL"] = BENCH_URL
os.environ["REDIS_URL"] = BENCH_REDIS_URL
os.environ["CONN_MAX_AGE"] = "600"
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings.test")

# Outcomes that are part of the workload, not errors: (endpoint, status).
EXPECTED = {
    ("claim", 201),
    ("claim", 404),  # nothing left to claim right now
    ("claim", 403),  # suspended for quality (counted; the workload's answers all agree)
    ("heartbeat", 200),
    ("submit", 200),
    ("job progress", 200),
    ("submissions list", 200),
    ("approve", 200),
    ("approve", 409),  # Celery approved it by evidence first
    ("reject", 200),
    ("reject", 202),  # exported already: a dispute for an admin
    ("reject", 409),
    ("export coco", 200),
    ("connect onboarding", 201),
    ("fund (checkout)", 201),
    ("funding check", 200),
    ("escrow", 200),
    ("publish", 200),
    ("earnings release", 200),
    ("payout run", 202),
    ("payouts list", 200),
}


def log(msg: str) -> None:
    print(f"[bench/load {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Recorder:
    """Latency and status of every request, by endpoint (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.error_samples: list[str] = []

    def add(self, endpoint: str, status: int, seconds: float, body: bytes) -> None:
        with self.lock:
            self.latency[endpoint].append(seconds)
            self.statuses[endpoint][status] += 1
            if (endpoint, status) not in EXPECTED and len(self.error_samples) < 20:
                self.error_samples.append(f"{endpoint} {status}: {body[:300]!r}")

    def all_statuses(self) -> list[int]:
        return [s for by in self.statuses.values() for s, n in by.items() for _ in range(n)]


class Client:
    """One keep-alive HTTP connection with a token, recording every request."""

    def __init__(self, port: int, token: str, rec: Recorder) -> None:
        self.port, self.rec = port, rec
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def warm(self) -> None:
        """Before the clock starts, not recorded: the connection and the server thread's own
        database connection opened (as in a running service)."""
        for _ in range(2):
            self.conn.request("GET", "/api/me/", headers=self.headers)
            self.conn.getresponse().read()

    def call(self, endpoint: str, method: str, path: str, body=None) -> tuple[int, object]:
        """One request; a 503 (the service's "retry in a moment") is recorded, as an error, and
        retried as a client is told to, up to 3 times."""
        for attempt in range(4):
            status, data = self._call(endpoint, method, path, body)
            if status != 503 or attempt == 3:
                return status, data
            time.sleep(0.2 * (attempt + 1))
        return status, data

    def _call(self, endpoint: str, method: str, path: str, body=None) -> tuple[int, object]:
        data = json.dumps(body).encode() if body is not None else None
        t0 = time.perf_counter()
        try:
            self.conn.request(method, path, body=data, headers=self.headers)
            r = self.conn.getresponse()
            raw = r.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.rec.add(endpoint, 0, time.perf_counter() - t0, repr(exc).encode())
            return 0, None
        self.rec.add(endpoint, r.status, time.perf_counter() - t0, raw)
        try:
            return r.status, json.loads(raw) if raw else None
        except ValueError:
            return r.status, None


def main() -> dict:
    recreate_database(DB_NAME)
    import django

    django.setup()
    import logging

    logging.getLogger("stripe").setLevel(logging.WARNING)
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count
    from django.urls import reverse
    from rest_framework.authtoken.models import Token

    from marketplace.celery import app as celery_app
    from marketplace.models import Job, JobStatus, Role, User
    from payments.escrow import escrow_fund
    from payments.models import ConnectedAccount, Funding, FundingStatus, Payout, StripeEvent
    from stripe_local import LocalStripe
    from tasks import claiming
    from tasks.models import Assignment, AssignmentStatus, Video
    from tests.faults.invariants import invariant_problems

    t_all = time.perf_counter()
    call_command("migrate", "--noinput", verbosity=0)
    celery_app.control.purge()

    # --- data: two requesters, an admin, workers, a funded published job, a job to fund ---------
    def user_with_token(username: str, role: str) -> tuple:
        u = User.objects.create_user(username=username, password="bench-pass-123", role=role)
        return u, Token.objects.create(user=u).key

    requester, requester_token = user_with_token("load-requester", Role.REQUESTER)
    payer, payer_token = user_with_token("load-payer", Role.REQUESTER)
    _, admin_token = user_with_token("load-admin", Role.ADMIN)
    workers = make_workers(WORKERS, "load-w")
    tokens = dict(Token.objects.filter(user__in=workers).values_list("user_id", "key"))

    job, video = make_job(requester, "load-main")
    insert_microtasks(job, video, MICROTASKS)
    Video.objects.filter(pk=video.pk).update(frame_count=MICROTASKS * 5)
    escrow_fund(job=job, amount=10**10, key=f"bench:load:{job.pk}")
    claiming.job_publish(job=job, by=requester)
    job2, video2 = make_job(payer, "load-checkout")
    insert_microtasks(job2, video2, CHECKOUT_MICROTASKS)
    Video.objects.filter(pk=video2.pk).update(frame_count=CHECKOUT_MICROTASKS * 5)
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE tasks_slot, tasks_microtask, marketplace_job")
    log(f"{MICROTASKS} microtasks published, {WORKERS} workers, {time.perf_counter() - t_all:.0f}s")

    # --- services --------------------------------------------------------------------------------
    stripe = LocalStripe(api_key=settings.STRIPE_SECRET_KEY, initial_available=10**12).start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    stripe.add_endpoint(base + reverse("stripe-webhook"), settings.STRIPE_WEBHOOK_SECRET)
    stripe.add_endpoint(
        base + reverse("stripe-connect-webhook"),
        settings.STRIPE_CONNECT_WEBHOOK_SECRET,
        connect=True,
    )
    service_env = {
        "STRIPE_API_BASE": stripe.api_base,
        "STRIPE_MAX_NETWORK_RETRIES": "2",
        # Simulated clients act far faster than people: the limits stay on at rates this load
        # never reaches, so no request is throttled.
        "THROTTLE_CLAIM_RATE": "10000000/min",
        "THROTTLE_SUBMIT_RATE": "10000000/min",
        # A few minutes of work earn a worker a few dollars: a payout minimum of $1 lets the
        # final run pay what was earned after the midway one.
        "PAYOUT_MINIMUM": "100",
    }
    gunicorn = start_gunicorn(
        port,
        database_url=BENCH_URL,
        redis_url=BENCH_REDIS_URL,
        workers=os.cpu_count() or 1,
        threads=4,
        **service_env,
    )
    celery = payments_worker = None
    try:
        celery = start_celery_worker(
            database_url=BENCH_URL,
            redis_url=BENCH_REDIS_URL,
            name="load",
            concurrency=CELERY_CONCURRENCY,
            queues="celery",
            **service_env,
        )
        # Payments' own queue and worker (as docker-compose.yml runs them): a payout run does
        # not wait behind the scoring backlog.
        payments_worker = start_celery_worker(
            database_url=BENCH_URL,
            redis_url=BENCH_REDIS_URL,
            name="load-payments",
            concurrency=1,
            queues="payments",
            **service_env,
        )
        log(f"gunicorn on :{port}, a Celery worker, Stripe at {stripe.api_base}")
        result = run_load(
            port=port,
            stripe=stripe,
            tokens=[tokens[w.pk] for w in workers],
            requester_token=requester_token,
            payer_token=payer_token,
            admin_token=admin_token,
            job_id=job.pk,
            job2_id=job2.pk,
            models={
                "ConnectedAccount": ConnectedAccount,
                "User": User,
            },
        )
        # --- drain: the last payout run and the scoring backlog finish on the Celery worker ----
        with celery_app.connection_for_read() as conn:
            backlog = conn.default_channel.client.llen("celery")
        t_drain = time.perf_counter()
        drained = wait_until_idle(celery_app, Payout, timeout=max(120.0, SECONDS))
        drain_seconds = time.perf_counter() - t_drain
        log(f"Celery drained: {drained} in {drain_seconds:.0f}s")
    finally:
        stop_process(gunicorn)
        for proc in (celery, payments_worker):
            if proc is not None:
                stop_process(proc, timeout=60)
    stripe.stop()

    rec: Recorder = result.pop("recorder")
    problems = invariant_problems(stripe_server=stripe, responses=rec.all_statuses())
    deliveries = list(stripe.deliveries)
    webhook_failures = [d for d in deliveries if not 200 <= d[2] < 300]
    by_status = {
        s: Assignment.objects.filter(status=s).count()
        for s in (AssignmentStatus.APPROVED, AssignmentStatus.REJECTED, AssignmentStatus.SUBMITTED)
    }
    payouts = dict(Payout.objects.values_list("status").annotate(n=Count("id")).order_by())
    fundings = dict(Funding.objects.values_list("status").annotate(n=Count("id")).order_by())
    job2_published = Job.objects.filter(pk=job2.pk, status=JobStatus.PUBLISHED).exists()

    # --- figures --------------------------------------------------------------------------------
    seconds = result["seconds"]
    endpoints = {}
    errors = 0
    requests = 0
    for name in sorted(rec.latency):
        lat = rec.latency[name]
        st = dict(rec.statuses[name])
        bad = sum(n for s, n in st.items() if (name, s) not in EXPECTED)
        errors += bad
        requests += len(lat)
        endpoints[name] = {
            "requests": len(lat),
            "per_s": round(len(lat) / seconds, 2),
            "p50_ms": round(pct(lat, 50) * 1e3, 2),
            "p99_ms": round(pct(lat, 99) * 1e3, 2),
            "statuses": {str(s): n for s, n in sorted(st.items())},
            "errors": bad,
        }
    errors += len(webhook_failures)
    claim = endpoints.get("claim", {"p50_ms": float("nan"), "p99_ms": float("nan")})
    claim_ratio = claim["p99_ms"] / claim["p50_ms"] if claim["p50_ms"] else float("inf")
    submits = endpoints.get("submit", {}).get("statuses", {}).get("200", 0)
    return {
        "goals": {
            "errors": {"value": errors, "goal": "= 0", "met": errors == 0},
            "invariant_violations": {
                "value": len(problems),
                "goal": "= 0",
                "met": not problems,
            },
            "claim_p99_over_p50": {
                "value": round(claim_ratio, 2),
                "goal": f"≤ {P99_OVER_P50_GOAL}",
                "met": claim_ratio <= P99_OVER_P50_GOAL,
            },
            "duration_s": {
                "value": round(seconds, 1),
                "goal": f"≥ {DURATION_GOAL}",
                "met": seconds >= DURATION_GOAL,
            },
        },
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "setup": {
            "workers": WORKERS,
            "requesters": 2,
            "main_job_microtasks": MICROTASKS,
            "checkout_job_microtasks": CHECKOUT_MICROTASKS,
            "replicas": 3,
            "gunicorn": {"workers": os.cpu_count() or 1, "threads": 4, "class": "gthread"},
            "celery_workers": 2,  # the default queue's (prefork) and the payments queue's
            "celery_concurrency": CELERY_CONCURRENCY,
            "think_seconds": THINK,
        },
        "throughput": {
            "requests": requests,
            "requests_per_s": round(requests / seconds, 2),
            "submissions": submits,
            "submissions_per_s": round(submits / seconds, 2),
        },
        "error_rate": round(errors / max(1, requests + len(deliveries)), 6),
        "errors": errors,
        "error_samples": rec.error_samples,
        "endpoints": endpoints,
        "webhooks": {
            "delivered": len(deliveries),
            "failed": len(webhook_failures),
            "stored_events": StripeEvent.objects.count(),
            "types": dict(
                StripeEvent.objects.values_list("type").annotate(n=Count("id")).order_by("type")
            ),
        },
        "fundings": fundings,
        "checkout_job_published": job2_published,
        "connected_accounts_enabled": ConnectedAccount.objects.filter(payouts_enabled=True).count(),
        "payout_runs": result["payout_runs"],
        "payouts": payouts,
        "stripe_transfers": len(stripe.state.transfers),
        "assignments": {str(k): v for k, v in by_status.items()},
        "celery_backlog_at_end": backlog,
        "celery_drained": drained,
        "drain_seconds": round(drain_seconds, 1),
        "invariant_problems": problems[:50],
        "total_seconds": round(time.perf_counter() - t_all, 1),
        "funding_succeeded": fundings.get(FundingStatus.SUCCEEDED, 0),
    }


def wait_until_idle(celery_app, Payout, timeout: float) -> bool:
    """Until the broker's queue is empty, no task is running and no payout is pending."""
    from payments.models import PayoutStatus

    deadline = time.monotonic() + timeout
    inspect = celery_app.control.inspect(timeout=1.0)
    while time.monotonic() < deadline:
        with celery_app.connection_for_read() as conn:
            client = conn.default_channel.client
            queued = sum(client.llen(q.name) for q in celery_app.conf.task_queues)
        running = sum(len(v) for v in (inspect.active() or {}).values())
        running += sum(len(v) for v in (inspect.reserved() or {}).values())
        pending = Payout.objects.filter(status=PayoutStatus.PENDING).count()
        if queued or running or pending:
            log(f"waiting: {queued} tasks queued, {running} running, {pending} payouts pending")
        if queued == 0 and running == 0 and pending == 0:
            return True
        time.sleep(1.0)
    return False


def run_load(
    *,
    port: int,
    stripe,
    tokens: list[str],
    requester_token: str,
    payer_token: str,
    admin_token: str,
    job_id: int,
    job2_id: int,
    models: dict,
) -> dict:
    rec = Recorder()
    stop = threading.Event()
    start = threading.Barrier(len(tokens) + 4)
    payout_runs: list[dict] = []
    ConnectedAccount = models["ConnectedAccount"]

    def worker(token: str) -> None:
        c = Client(port, token, rec)
        rng = random.Random(token)
        c.warm()
        start.wait()
        # Stripe Connect onboarding: the link from us, the account completed on Stripe's side
        # (its account.updated webhook tells us payouts are enabled).
        status, _ = c.call("connect onboarding", "POST", "/api/payments/connect/")
        if status == 201:
            acct = ConnectedAccount.objects.filter(worker__auth_token__key=token).first()
            if acct is not None:
                stripe.complete_onboarding(acct.stripe_account_id)
        box = [10.0, 10.0, 120.0, 90.0]
        while not stop.is_set():
            status, a = c.call("claim", "POST", "/api/work/claim/", {})
            if status != 201:
                time.sleep(0.5)
                continue
            held_from = time.perf_counter()
            frames = a["task"]["annotate_frames"]
            time.sleep(rng.uniform(*THINK))
            c.call("heartbeat", "POST", f"/api/work/assignments/{a['id']}/heartbeat/", {})
            time.sleep(rng.uniform(*THINK))
            payload = {
                "payload": {
                    "boxes": [
                        {"frame": frames[0], "label": "car", "box": box},
                        {"frame": frames[-1], "label": "person", "box": box},
                    ]
                },
                # Never more than the time the claim was held (invariant 9).
                "active_seconds": round(max(0.0, time.perf_counter() - held_from - 0.01), 2),
            }
            c.call("submit", "POST", f"/api/work/assignments/{a['id']}/submit/", payload)

    def requester(token: str, job: int, reviewing: bool) -> None:
        c = Client(port, token, rec)
        rng = random.Random(job)
        c.warm()
        start.wait()
        last_export, k = time.monotonic(), 0
        while not stop.is_set():
            c.call("job progress", "GET", f"/api/jobs/{job}/")
            if reviewing:
                status, page = c.call(
                    "submissions list",
                    "GET",
                    f"/api/jobs/{job}/submissions/?status=submitted&page_size=20",
                )
                for row in (page or {}).get("results", [])[:10] if status == 200 else []:
                    k += 1
                    if k % REJECT_EVERY == 0:
                        c.call(
                            "reject",
                            "POST",
                            f"/api/submissions/{row['id']}/reject/",
                            {"reason": "The boxes miss the objects."},
                        )
                    else:
                        c.call("approve", "POST", f"/api/submissions/{row['id']}/approve/")
            if time.monotonic() - last_export >= EXPORT_EVERY:
                c.call("export coco", "GET", f"/api/jobs/{job}/export/coco/")
                last_export = time.monotonic()
            time.sleep(rng.uniform(0.5, 1.0))

    def pay(c: Client, body: dict) -> bool:
        """Open a Checkout Session over the API, pay it on the Stripe server as the payer's
        browser would (its webhooks then reach us), and check it as the return page does."""
        status, f = c.call("fund (checkout)", "POST", f"/api/payments/jobs/{job2_id}/fund/", body)
        if status != 201:
            return False
        paid, message = stripe.pay_checkout_session(f["checkout_session"])
        if not paid:
            log(f"the Stripe server refused the test card: {message}")
            return False
        for _ in range(50):  # the webhook usually credits it first
            status, f2 = c.call(
                "funding check",
                "POST",
                f"/api/payments/jobs/{job2_id}/fundings/{f['funding']}/check/",
            )
            if status == 200 and f2["status"] == "succeeded":
                return True
            time.sleep(0.2)
        return False

    def payer(token: str) -> None:
        c = Client(port, token, rec)
        start.wait()
        if pay(c, {}):
            c.call("publish", "POST", f"/api/jobs/{job2_id}/publish/")
        while not stop.wait(TOPUP_EVERY):
            pay(c, {"amount": TOPUP_AMOUNT})
            c.call("escrow", "GET", f"/api/payments/jobs/{job2_id}/escrow/")

    def payout_round(c: Client, label: str) -> None:
        status, released = c.call(
            "earnings release", "POST", "/api/payments/admin/earnings/release/", {}
        )
        status2, task = c.call("payout run", "POST", "/api/payments/admin/payout-runs/")
        payout_runs.append(
            {
                "when": label,
                "released": (released or {}).get("released") if status == 200 else None,
                "task": (task or {}).get("task") if status2 == 202 else None,
            }
        )

    def admin(token: str) -> None:
        c = Client(port, token, rec)
        start.wait()
        if not stop.wait(SECONDS * 0.6):
            payout_round(c, "midway")
        while not stop.wait(5.0):
            c.call("payouts list", "GET", "/api/payments/payouts/")

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in tokens]
    threads += [
        threading.Thread(target=requester, args=(requester_token, job_id, True), daemon=True),
        threading.Thread(target=requester, args=(payer_token, job2_id, True), daemon=True),
        threading.Thread(target=payer, args=(payer_token,), daemon=True),
        threading.Thread(target=admin, args=(admin_token,), daemon=True),
    ]
    for t in threads:
        t.start()
    log(f"load for {SECONDS:.0f}s")
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < SECONDS:
        time.sleep(min(15.0, SECONDS - (time.perf_counter() - t0)))
        with rec.lock:
            n = sum(len(v) for v in rec.latency.values())
            subs = rec.statuses["submit"].get(200, 0)
        log(f"{time.perf_counter() - t0:.0f}s: {n} requests, {subs} submissions")
    stop.set()
    for t in threads:
        t.join(timeout=150)
    seconds = time.perf_counter() - t0
    # The final payout run, after the load: everything approved so far is released and paid.
    payout_round(Client(port, admin_token, rec), "final")
    return {"recorder": rec, "seconds": seconds, "payout_runs": payout_runs}


if __name__ == "__main__":
    try:
        result = main()
    finally:
        from django.db import connections

        connections.close_all()
        if not os.environ.get("BENCH_KEEP_DB"):
            drop_database(DB_NAME)
    # A shortened development run does not replace the figures.
    report("load", result, write=SECONDS >= DURATION_GOAL)
