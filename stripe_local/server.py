"""A local Stripe-compatible HTTP server — a TEST DOUBLE, never used in production.

It exists so that tests and the demo exercise the real ``stripe`` SDK over real HTTP with real
form encoding, with no internet. It implements only what this project uses:

* ``/v1/accounts`` (create, retrieve), ``/v1/account_links`` (create; the link's URL points back
  at this server, and visiting it completes onboarding and emits ``account.updated``),
* ``/v1/transfers`` (create, list with pagination and filters, retrieve) and
  ``/v1/transfers/{id}/reversals``,
* ``/v1/payment_intents`` (create, retrieve, confirm), ``/v1/refunds``, ``/v1/balance``,
* ``/v1/checkout/sessions`` (create, retrieve, expire) in ``payment`` mode, with a hosted test
  payment page at the session's ``url`` (``/_checkout/{id}``, self-contained HTML served by this
  server: card 4242 4242 4242 4242 pays, 4000 0000 0000 0002 is declined with a message). As
  with Stripe's current API versions, the session's PaymentIntent is created when the customer
  submits the page (``payment_intent`` is null until then); paying sends the signed
  ``payment_intent.succeeded`` and ``checkout.session.completed``, expiry
  ``checkout.session.expired``; a delayed (bank debit) payment completes the session unpaid and
  is settled later, ``checkout.session.async_payment_succeeded`` or ``..._failed``
  (``pay_checkout_session_async``, ``settle_async_payment``),
  ``/v1/payouts`` (on a connected account, ``Stripe-Account`` header), ``/v1/events``.

Objects are deep copies of Stripe's published examples (``../shared/stripe/fixtures3.json``,
vendored as ``stripe_local/fixtures3.json`` when present) with our fields filled in.

Stripe's idempotency rules: a POST with an ``Idempotency-Key`` that was seen before with the same
parameters gets the stored response (``Idempotent-Replayed: true``); with different parameters,
a 400 ``idempotency_error``; while the first request is still running, a 409.

Webhooks: every event is signed like Stripe does (``Stripe-Signature: t=…,v1=HMAC-SHA256``) and
POSTed to the registered endpoints (platform events to platform endpoints, connected-account
events to Connect endpoints), from a background thread, with retries.

Fault injection (:class:`Faults`): a 500, a 429, a timeout *after* the request was committed, and
a dropped connection (before or after committing), each with a probability and/or forced for the
next N matching requests; an injected 429 or 500 carries ``Retry-After`` / ``Stripe-Should-Retry``
as configured. Stripe's own rate limit can be switched on (``rate_limit_per_second``, per endpoint
over a sliding second, 25 in live mode); ``request_times`` records when each request arrived. A
server running as its own process takes the same switches as JSON on ``POST /_faults`` (with the
API key).
"""

from __future__ import annotations

import collections
import contextlib
import copy
import hashlib
import hmac
import html
import itertools
import json
import logging
import queue
import random
import re
import secrets
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from marketplace.money import ZERO_DECIMAL  # pure: which currencies have no minor unit

logger = logging.getLogger("stripe_local")

_FIXTURE_PATHS = [
    Path(__file__).with_name("fixtures3.json"),
    Path("/work/shared/stripe/fixtures3.json"),
]


def _load_fixtures() -> dict[str, Any]:
    for path in _FIXTURE_PATHS:
        if path.exists():
            return json.loads(path.read_text())["resources"]
    raise FileNotFoundError("Stripe's fixtures3.json was not found next to stripe_local")


FIXTURES = _load_fixtures()


def _template(kind: str) -> dict[str, Any]:
    return copy.deepcopy(FIXTURES[kind])


# --- form decoding (Stripe's bracket notation) -----------------------------------------------


def decode_form(body: str) -> dict[str, Any]:
    """``a[b][c]=1&l[0]=x`` → ``{"a": {"b": {"c": "1"}}, "l": ["x"]}``."""
    root: dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(body, keep_blank_values=True):
        parts = [key.split("[", 1)[0]] + [p.rstrip("]") for p in key.split("[")[1:]]
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                index = int(part) if part else len(node)
                while len(node) <= index:
                    node.append(None)
                if last:
                    node[index] = value
                else:
                    if node[index] is None:
                        node[index] = [] if parts[i + 1].isdigit() or parts[i + 1] == "" else {}
                    node = node[index]
            else:
                if last:
                    node[part] = value
                else:
                    if part not in node:
                        node[part] = [] if parts[i + 1].isdigit() or parts[i + 1] == "" else {}
                    node = node[part]
    return root


def _int(params: dict, name: str) -> int:
    try:
        return int(params[name])
    except (KeyError, TypeError, ValueError):
        raise StripeHTTPError(
            400, "invalid_request_error", f"Missing or invalid {name}", name
        ) from None


def _bool(value: Any) -> bool:
    return str(value).lower() in ("true", "1")


class StripeHTTPError(Exception):
    def __init__(self, status: int, type_: str, message: str, param: str = "", code: str = ""):
        super().__init__(message)
        self.status, self.type, self.message, self.param, self.code = (
            status,
            type_,
            message,
            param,
            code,
        )

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.param:
            error["param"] = self.param
        if self.code:
            error["code"] = self.code
        return {"error": error}


# --- fault injection -------------------------------------------------------------------------

FAULT_KINDS = ("500", "429", "timeout_after_commit", "drop_before", "drop_after_commit")


@dataclass
class Faults:
    """Which faults to inject, on which requests (``match``: a substring of ``METHOD /path``)."""

    rate: float = 0.0  # probability that a matching request gets a random fault
    kinds: tuple[str, ...] = FAULT_KINDS
    match: str = "POST /v1/transfers"
    forced: list[str] = field(default_factory=list)  # exact faults for the next requests
    timeout_seconds: float = 2.0  # how long a "timeout" stalls before answering
    seed: int | None = None
    injected: dict[str, int] = field(default_factory=dict)
    # Headers of an injected 429 or 500: ``Retry-After`` (seconds; None: not sent) and
    # ``Stripe-Should-Retry`` ("true"/"false"; None: not sent), as Stripe may send them.
    retry_after: str | None = "1"
    should_retry: str | None = None
    # Stripe's own rate limit, enforced per endpoint (method and path, ids folded) over a sliding
    # second: a request beyond it gets a 429 (0: no limit). Live mode allows 25 requests/s.
    rate_limit_per_second: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._recent: dict[str, collections.deque] = {}
        self.rate_limited = 0  # 429s the rate limit (not ``forced``/``rate``) answered

    def over_rate_limit(self, endpoint: str, now: float) -> bool:
        """Count one request to ``endpoint`` at ``now``; whether it is beyond the rate limit."""
        if not self.rate_limit_per_second:
            return False
        with self._lock:
            recent = self._recent.setdefault(endpoint, collections.deque())
            while recent and recent[0] <= now - 1.0:
                recent.popleft()
            if len(recent) >= self.rate_limit_per_second:
                self.rate_limited += 1
                return True
            recent.append(now)
            return False

    def headers(self) -> dict[str, str]:
        out = {}
        if self.retry_after is not None:
            out["Retry-After"] = self.retry_after
        if self.should_retry is not None:
            out["Stripe-Should-Retry"] = self.should_retry
        return out

    def configure(self, settings: dict[str, Any]) -> None:
        """Set faults from a plain dict (the ``POST /_faults`` switch of a server process)."""
        with self._lock:
            for name in (
                "rate",
                "match",
                "timeout_seconds",
                "retry_after",
                "should_retry",
                "rate_limit_per_second",
            ):
                if name in settings:
                    setattr(self, name, settings[name])
            if "forced" in settings:
                self.forced = list(settings["forced"])
            if "kinds" in settings:
                self.kinds = tuple(settings["kinds"])

    def pick(self, request_line: str) -> str | None:
        if self.match and self.match not in request_line:
            return None
        with self._lock:
            if self.forced:
                fault = self.forced.pop(0)
            elif self.rate and self._rng.random() < self.rate:
                fault = self._rng.choice(self.kinds)
            else:
                return None
            self.injected[fault] = self.injected.get(fault, 0) + 1
            return fault


class _Drop(Exception):
    """Close the connection without answering."""


_ID_SEGMENT = re.compile(r"^[a-z]+_[A-Za-z0-9]+$")


def endpoint_of(method: str, path: str) -> str:
    """``"POST /v1/transfers"``, ``"GET /v1/accounts/{id}"``: the unit Stripe rate-limits."""
    parts = ["{id}" if _ID_SEGMENT.match(p) else p for p in path.split("/")]
    return f"{method} {'/'.join(parts)}"


# --- the state -------------------------------------------------------------------------------


@dataclass
class Endpoint:
    url: str
    secret: str
    connect: bool = False


class StripeState:
    """Everything the fake Stripe knows, guarded by one lock."""

    def __init__(self, currency: str = "usd") -> None:
        self.lock = threading.RLock()
        self.currency = currency
        self.accounts: dict[str, dict] = {}
        self.transfers: dict[str, dict] = {}  # insertion order = creation order
        self.payment_intents: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.payouts: dict[str, dict] = {}
        self.checkout_sessions: dict[str, dict] = {}
        # What a session was created with that Stripe does not show on the session object.
        self.checkout_intent_data: dict[str, dict] = {}
        self.events: dict[str, dict] = {}
        self.available = 0
        self.pending = 0
        # idempotency: (account, key) -> (fingerprint, status, body) or None while in flight
        self.idempotency: dict[tuple[str, str], tuple[str, int, dict] | None] = {}
        self._seq = itertools.count(1)
        self._clock = itertools.count(int(time.time()))

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._seq):06d}{secrets.token_hex(6)}"

    def now(self) -> int:
        # Strictly increasing "created" stamps keep list order well defined.
        return max(int(time.time()), next(self._clock))


class LocalStripe:
    """The server: ``start()`` on a free loopback port, ``api_base`` for the SDK, ``stop()``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        currency: str = "usd",
        auto_deliver: bool = True,
        initial_available: int = 0,
    ) -> None:
        # No built-in key: a caller that gives none gets a random one (read it from .api_key).
        self.api_key = api_key or f"sk_test_{secrets.token_hex(24)}"
        self.state = StripeState(currency)
        self.state.available = initial_available
        self.faults = Faults()
        # The status new refunds start in; "pending" lets a test settle them later.
        self.refund_status = "succeeded"
        self.endpoints: list[Endpoint] = []
        self.auto_deliver = auto_deliver
        self.deliveries: list[tuple[str, str, int]] = []  # (event id, url, status)
        self.request_log: list[tuple[str, int]] = []
        # (monotonic time the request arrived, endpoint) of every authenticated API request.
        self.request_times: list[tuple[float, str]] = []
        # Seconds spent handling API requests (benchmarks subtract it from their own time).
        self.busy_seconds = 0.0
        self.busy_cpu_seconds = 0.0
        # Wall time during which at least one request was being handled: with concurrent
        # clients ``busy_seconds`` (a sum over requests) counts overlapping handling twice.
        self.busy_union_seconds = 0.0
        self._in_flight = 0
        self._union_start = 0.0
        self._union_end = 0.0
        self._busy_lock = threading.Lock()
        self._deliver_queue: queue.Queue = queue.Queue()
        self._httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        self._httpd.daemon_threads = True
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # -- lifecycle
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalStripe:
        for target in (self._httpd.serve_forever, self._delivery_loop):
            t = threading.Thread(target=target, daemon=True, name=f"stripe-local-{target.__name__}")
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._deliver_queue.put(None)
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> LocalStripe:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- webhooks
    def add_endpoint(self, url: str, secret: str, *, connect: bool = False) -> None:
        self.endpoints.append(Endpoint(url, secret, connect))

    def sign(self, payload: bytes, secret: str, timestamp: int | None = None) -> str:
        t = int(time.time()) if timestamp is None else timestamp
        mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
        return f"t={t},v1={mac}"

    def emit(self, type_: str, obj: dict, *, account: str | None = None) -> dict:
        with self.state.lock:
            event = _template("event")
            event.update(
                id=self.state.new_id("evt"),
                type=type_,
                created=self.state.now(),
                api_version=None,
                data={"object": copy.deepcopy(obj)},
                pending_webhooks=len(self.endpoints),
                request={"id": None, "idempotency_key": None},
            )
            if account:
                event["account"] = account
            self.state.events[event["id"]] = event
        if self.auto_deliver:
            self._deliver_queue.put(event)
        return event

    def deliver(self, event: dict, *, endpoint: Endpoint | None = None, secret: str | None = None):
        """Deliver ``event`` now, synchronously, to one or all matching endpoints."""
        targets = [endpoint] if endpoint else self._targets(event)
        statuses = []
        for ep in targets:
            payload = json.dumps(event).encode()
            request = urllib.request.Request(
                ep.url,
                data=payload,
                method="POST",
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "Stripe-Signature": self.sign(payload, secret or ep.secret),
                    "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = 0
            self.deliveries.append((event["id"], ep.url, status))
            statuses.append(status)
        return statuses

    def _targets(self, event: dict) -> list[Endpoint]:
        connect = bool(event.get("account"))
        return [ep for ep in self.endpoints if ep.connect == connect]

    def _delivery_loop(self) -> None:
        while not self._stopping.is_set():
            event = self._deliver_queue.get()
            if event is None:
                return
            for ep in self._targets(event):
                for attempt in range(5):
                    (status,) = self.deliver(event, endpoint=ep)
                    if 200 <= status < 300:
                        break
                    time.sleep(0.2 * (attempt + 1))

    # -- test helpers (the "dashboard")
    def complete_onboarding(self, account_id: str) -> dict:
        with self.state.lock:
            acct = self.state.accounts[account_id]
            acct.update(
                details_submitted=True,
                payouts_enabled=True,
                charges_enabled=False,
                capabilities={"transfers": "active"},
            )
            acct["requirements"].update(
                currently_due=[], eventually_due=[], past_due=[], disabled_reason=None
            )
            snapshot = copy.deepcopy(acct)
        self.emit("account.updated", snapshot, account=account_id)
        return snapshot

    def restrict_account(self, account_id: str, reason: str = "requirements.past_due") -> dict:
        with self.state.lock:
            acct = self.state.accounts[account_id]
            acct.update(payouts_enabled=False, capabilities={"transfers": "inactive"})
            acct["requirements"].update(currently_due=["external_account"], disabled_reason=reason)
            snapshot = copy.deepcopy(acct)
        self.emit("account.updated", snapshot, account=account_id)
        return snapshot

    def succeed_payment_intent(self, pi_id: str, *, available_now: bool = True) -> dict:
        with self.state.lock:
            pi = self.state.payment_intents[pi_id]
            if pi["status"] != "succeeded":
                pi.update(
                    status="succeeded",
                    amount_received=pi["amount"],
                    latest_charge=self.state.new_id("ch"),
                    payment_method="pm_card_visa",
                )
                if available_now:
                    self.state.available += pi["amount"]
                else:
                    self.state.pending += pi["amount"]
            snapshot = copy.deepcopy(pi)
            session = next(
                (
                    cs
                    for cs in self.state.checkout_sessions.values()
                    if cs["payment_intent"] == pi_id and cs["status"] == "open"
                ),
                None,
            )
            if session is not None:
                session.update(status="complete", payment_status="paid")
                completed = copy.deepcopy(session)
        self.emit("payment_intent.succeeded", snapshot)
        if session is not None:
            self.emit("checkout.session.completed", completed)
        return snapshot

    def fail_payment_intent(self, pi_id: str) -> dict:
        with self.state.lock:
            pi = self.state.payment_intents[pi_id]
            pi["last_payment_error"] = {"type": "card_error", "code": "card_declined"}
            snapshot = copy.deepcopy(pi)
        self.emit("payment_intent.payment_failed", snapshot)
        return snapshot

    def settle_refund(
        self, refund_id: str, status: str = "succeeded", failure_reason: str | None = None
    ) -> dict:
        """A pending refund succeeds or fails (a failed one's money returns to the balance)."""
        with self.state.lock:
            refund = self.state.refunds[refund_id]
            refund["status"] = status
            if status == "failed":
                refund["failure_reason"] = failure_reason or "unknown"
                self.state.available += refund["amount"]
            snapshot = copy.deepcopy(refund)
        self.emit("refund.failed" if status == "failed" else "refund.updated", snapshot)
        return snapshot

    def make_pending_available(self) -> None:
        with self.state.lock:
            self.state.available += self.state.pending
            self.state.pending = 0
            balance = self._balance()
        self.emit("balance.available", balance)

    def add_available(self, amount: int) -> None:
        with self.state.lock:
            self.state.available += amount

    def transfers_for(self, payout_id: int | str) -> list[dict]:
        with self.state.lock:
            return [
                copy.deepcopy(t)
                for t in self.state.transfers.values()
                if t["metadata"].get("payout_id") == str(payout_id)
            ]

    def _balance(self) -> dict:
        bal = _template("balance")
        bal["available"] = [
            {"amount": self.state.available, "currency": self.state.currency, "source_types": {}}
        ]
        bal["pending"] = [
            {"amount": self.state.pending, "currency": self.state.currency, "source_types": {}}
        ]
        bal["connect_reserved"] = [{"amount": 0, "currency": self.state.currency}]
        return bal

    # -- routing
    def handle(self, method: str, path: str, query: dict, params: dict, headers) -> dict:
        parts = [p for p in path.split("/") if p]
        if parts[:1] != ["v1"]:
            raise StripeHTTPError(404, "invalid_request_error", f"Unrecognized request URL {path}")
        parts = parts[1:]
        route = (method, parts[0] if parts else "", len(parts))
        account_header = headers.get("Stripe-Account") or ""
        handlers: dict[tuple[str, str, int], Callable[..., dict]] = {
            ("POST", "accounts", 1): lambda: self._account_create(params),
            ("GET", "accounts", 2): lambda: self._get(self.state.accounts, parts[1], "account"),
            ("POST", "account_links", 1): lambda: self._account_link_create(params),
            ("POST", "transfers", 1): lambda: self._transfer_create(params),
            ("GET", "transfers", 1): lambda: self._list(
                self.state.transfers, query, "/v1/transfers"
            ),
            ("GET", "transfers", 2): lambda: self._get(self.state.transfers, parts[1], "transfer"),
            ("POST", "transfers", 3): lambda: self._reversal_create(parts[1], params),
            ("POST", "payment_intents", 1): lambda: self._pi_create(params),
            ("GET", "payment_intents", 2): lambda: self._get(
                self.state.payment_intents, parts[1], "payment_intent"
            ),
            ("POST", "payment_intents", 3): lambda: self._pi_confirm(parts[1], parts[2]),
            ("POST", "refunds", 1): lambda: self._refund_create(params),
            ("GET", "refunds", 2): lambda: self._get(self.state.refunds, parts[1], "refund"),
            ("GET", "balance", 1): lambda: self._balance(),
            ("POST", "payouts", 1): lambda: self._payout_create(params, account_header),
            ("GET", "payouts", 1): lambda: self._list(self.state.payouts, query, "/v1/payouts"),
            ("GET", "events", 1): lambda: self._list(self.state.events, query, "/v1/events"),
            ("GET", "events", 2): lambda: self._get(self.state.events, parts[1], "event"),
            ("POST", "checkout", 2): lambda: self._checkout_create(parts, params),
            ("GET", "checkout", 3): lambda: self._checkout_retrieve(parts),
            ("POST", "checkout", 4): lambda: self._checkout_expire(parts),
        }
        handler = handlers.get(route)
        if handler is None:
            raise StripeHTTPError(
                404, "invalid_request_error", f"Unrecognized request URL ({method}: {path})"
            )
        with self.state.lock:
            return handler()

    def _get(self, table: dict, obj_id: str, kind: str) -> dict:
        if obj_id not in table:
            raise StripeHTTPError(
                404,
                "invalid_request_error",
                f"No such {kind}: '{obj_id}'",
                "id",
                "resource_missing",
            )
        return copy.deepcopy(table[obj_id])

    def _list(self, table: dict, query: dict, url: str) -> dict:
        items = list(table.values())[::-1]  # newest first, like Stripe
        for name in ("destination", "transfer_group", "type"):
            if name in query:
                items = [i for i in items if i.get(name) == query[name]]
        created = query.get("created")
        if isinstance(created, dict):
            if "gte" in created:
                items = [i for i in items if i["created"] >= int(created["gte"])]
            if "lte" in created:
                items = [i for i in items if i["created"] <= int(created["lte"])]
        if "starting_after" in query:
            ids = [i["id"] for i in items]
            if query["starting_after"] in ids:
                items = items[ids.index(query["starting_after"]) + 1 :]
        limit = min(100, int(query.get("limit", 10)))
        page = items[:limit]
        return {
            "object": "list",
            "url": url,
            "has_more": len(items) > limit,
            "data": [copy.deepcopy(i) for i in page],
        }

    def _account_create(self, params: dict) -> dict:
        acct = _template("account")
        acct_id = self.state.new_id("acct")
        caps = params.get("capabilities") or {}
        acct.update(
            id=acct_id,
            type=params.get("type", "express"),
            country=params.get("country") or "US",
            email=params.get("email"),
            metadata=params.get("metadata") or {},
            created=self.state.now(),
            charges_enabled=False,
            payouts_enabled=False,
            details_submitted=False,
            capabilities={
                name: "inactive" for name, v in caps.items() if _bool(v.get("requested"))
            },
        )
        acct["controller"] = {"type": "application"}
        acct["external_accounts"]["url"] = f"/v1/accounts/{acct_id}/external_accounts"
        acct["requirements"]["currently_due"] = ["external_account", "tos_acceptance.date"]
        self.state.accounts[acct_id] = acct
        return copy.deepcopy(acct)

    def _account_link_create(self, params: dict) -> dict:
        account = params.get("account", "")
        self._get(self.state.accounts, account, "account")
        for name in ("refresh_url", "return_url"):
            if not params.get(name):
                raise StripeHTTPError(400, "invalid_request_error", f"Missing {name}", name)
        link = _template("account_link")
        token = secrets.token_urlsafe(12)
        q = urllib.parse.urlencode({"return_url": params["return_url"]})
        link.update(
            created=self.state.now(),
            expires_at=self.state.now() + 300,
            url=f"{self.api_base}/_onboard/{account}/{token}?{q}",
        )
        return link

    def _transfer_create(self, params: dict) -> dict:
        amount = _int(params, "amount")
        currency = (params.get("currency") or "").lower()
        destination = params.get("destination", "")
        if amount <= 0:
            raise StripeHTTPError(400, "invalid_request_error", "Invalid amount", "amount")
        acct = self.state.accounts.get(destination)
        if acct is None:
            raise StripeHTTPError(
                400,
                "invalid_request_error",
                f"No such destination: '{destination}'",
                "destination",
                "resource_missing",
            )
        if acct["capabilities"].get("transfers") != "active":
            raise StripeHTTPError(
                400,
                "invalid_request_error",
                "Your destination account needs to have the transfers capability enabled.",
                "destination",
                "insufficient_capabilities_for_transfer",
            )
        if amount > self.state.available:
            raise StripeHTTPError(
                400,
                "invalid_request_error",
                "You have insufficient available funds in your Stripe account.",
                "",
                "balance_insufficient",
            )
        self.state.available -= amount
        tr = _template("transfer")
        tr_id = self.state.new_id("tr")
        tr.update(
            id=tr_id,
            amount=amount,
            currency=currency,
            destination=destination,
            destination_payment=self.state.new_id("py"),
            balance_transaction=self.state.new_id("txn"),
            created=self.state.now(),
            description=params.get("description"),
            metadata=params.get("metadata") or {},
            transfer_group=params.get("transfer_group"),
            amount_reversed=0,
            reversed=False,
            source_type="card",
        )
        tr["reversals"] = {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/transfers/{tr_id}/reversals",
        }
        self.state.transfers[tr_id] = tr
        self.emit("transfer.created", tr)
        return copy.deepcopy(tr)

    def _reversal_create(self, transfer_id: str, params: dict) -> dict:
        tr = self.state.transfers.get(transfer_id)
        if tr is None:
            raise StripeHTTPError(
                404, "invalid_request_error", f"No such transfer: '{transfer_id}'", "id"
            )
        remaining = tr["amount"] - tr["amount_reversed"]
        amount = int(params.get("amount", remaining))
        if amount <= 0 or amount > remaining:
            raise StripeHTTPError(
                400,
                "invalid_request_error",
                f"Cannot reverse {amount}; {remaining} remains on the transfer.",
                "amount",
            )
        rev = _template("transfer_reversal")
        rev.update(
            id=self.state.new_id("trr"),
            amount=amount,
            currency=tr["currency"],
            transfer=transfer_id,
            created=self.state.now(),
            metadata=params.get("metadata") or {},
        )
        tr["amount_reversed"] += amount
        tr["reversed"] = tr["amount_reversed"] == tr["amount"]
        tr["reversals"]["data"].insert(0, rev)
        self.state.available += amount
        self.emit("transfer.reversed", tr)
        return copy.deepcopy(rev)

    # -- Checkout Sessions (payment mode) and their hosted test payment page

    CARD_SUCCEEDS = "4242424242424242"
    CARD_DECLINED = "4000000000000002"

    def _checkout_id(self, parts: list[str]) -> str:
        if parts[1:2] != ["sessions"]:
            raise StripeHTTPError(404, "invalid_request_error", "Unrecognized request URL")
        return parts[2] if len(parts) > 2 else ""

    def _checkout_create(self, parts: list[str], params: dict) -> dict:
        self._checkout_id(parts)
        if params.get("mode") != "payment":
            raise StripeHTTPError(
                400, "invalid_request_error", "Only mode=payment is implemented here.", "mode"
            )
        items = params.get("line_items") or []
        if not items:
            raise StripeHTTPError(
                400, "invalid_request_error", "Missing required param: line_items.", "line_items"
            )
        amount, currencies = 0, set()
        for item in items:
            data = (item or {}).get("price_data") or {}
            quantity = _int(item, "quantity") if "quantity" in item else 1
            unit = _int(data, "unit_amount")
            if unit < 0 or quantity < 1:
                raise StripeHTTPError(
                    400, "invalid_request_error", "Invalid line item", "line_items"
                )
            amount += unit * quantity
            currencies.add((data.get("currency") or "").lower())
        if len(currencies) != 1 or "" in currencies:
            raise StripeHTTPError(
                400, "invalid_request_error", "Line items need one currency.", "line_items"
            )
        if amount < 50:
            raise StripeHTTPError(
                400, "invalid_request_error", "Amount must be at least 50 cents", "line_items"
            )
        for name in ("success_url", "cancel_url"):
            if not params.get(name):
                raise StripeHTTPError(400, "invalid_request_error", f"Missing {name}", name)
        now = self.state.now()
        session = _template("checkout.session")
        cs_id = self.state.new_id("cs_test")
        session.update(
            id=cs_id,
            amount_subtotal=amount,
            amount_total=amount,
            currency=currencies.pop(),
            created=now,
            expires_at=int(params.get("expires_at") or now + 24 * 3600),
            metadata=params.get("metadata") or {},
            client_reference_id=params.get("client_reference_id"),
            customer_email=params.get("customer_email"),
            mode="payment",
            payment_intent=None,  # created when the customer pays (current API versions)
            payment_status="unpaid",
            status="open",
            success_url=params["success_url"],
            cancel_url=params["cancel_url"],
            url=f"{self.api_base}/_checkout/{cs_id}",
            after_expiration=None,
            currency_conversion=None,
            customer_details=None,
            invoice_creation=None,
            shipping_address_collection=None,
            shipping_cost=None,
            total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        )
        self.state.checkout_sessions[cs_id] = session
        intent = params.get("payment_intent_data") or {}
        self.state.checkout_intent_data[cs_id] = {
            "metadata": intent.get("metadata") or {},
            "transfer_group": intent.get("transfer_group"),
            "description": intent.get("description")
            or " ".join(
                str((i.get("price_data") or {}).get("product_data", {}).get("name", ""))
                for i in items
            ).strip(),
        }
        return copy.deepcopy(session)

    def _checkout_session(self, cs_id: str) -> dict:
        """The session, expired first if its time has passed (Stripe expires them itself)."""
        session = self.state.checkout_sessions.get(cs_id)
        if session is None:
            raise StripeHTTPError(
                404,
                "invalid_request_error",
                f"No such checkout.session: '{cs_id}'",
                "session",
                "resource_missing",
            )
        if session["status"] == "open" and time.time() >= session["expires_at"]:
            self._checkout_mark_expired(session)
        return session

    def _checkout_mark_expired(self, session: dict) -> None:
        session["status"] = "expired"
        self.emit("checkout.session.expired", copy.deepcopy(session))

    def _checkout_retrieve(self, parts: list[str]) -> dict:
        return copy.deepcopy(self._checkout_session(self._checkout_id(parts)))

    def _checkout_expire(self, parts: list[str]) -> dict:
        if parts[3:] != ["expire"]:
            raise StripeHTTPError(404, "invalid_request_error", "Unrecognized request URL")
        session = self._checkout_session(self._checkout_id(parts))
        if session["status"] != "open":
            raise StripeHTTPError(
                400,
                "invalid_request_error",
                'Only Checkout Sessions with a status in ["open"] can be expired.',
                "session",
            )
        self._checkout_mark_expired(session)
        return copy.deepcopy(session)

    def expire_checkout_session(self, cs_id: str) -> dict:
        """The "dashboard": let a session's time run out now."""
        with self.state.lock:
            session = self._checkout_session(cs_id)
            if session["status"] == "open":
                session["expires_at"] = self.state.now() - 1
                self._checkout_mark_expired(session)
            return copy.deepcopy(session)

    def pay_checkout_session(self, cs_id: str, card: str = CARD_SUCCEEDS) -> tuple[bool, str]:
        """What the hosted page does with a card number: ``(paid, message for the customer)``.

        The session's PaymentIntent is created on the first attempt (``_checkout_intent``).
        """
        digits = "".join(ch for ch in card if ch.isdigit())
        with self.state.lock:
            session = self._checkout_session(cs_id)
            if session["status"] != "open":
                return False, "This payment page is no longer active."
            if digits not in (self.CARD_SUCCEEDS, self.CARD_DECLINED):
                return False, "Your card number is incorrect. Use a test card shown below."
            pi_id = self._checkout_intent(session)
            if digits == self.CARD_DECLINED:
                pi = self.state.payment_intents[pi_id]
                pi["last_payment_error"] = {
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": "generic_decline",
                    "message": "Your card was declined.",
                }
                self.emit("payment_intent.payment_failed", copy.deepcopy(pi))
                return False, "Your card was declined. Try another card."
            self.succeed_payment_intent(pi_id)
            return True, ""

    def _checkout_intent(self, session: dict) -> str:
        """The session's PaymentIntent, created on the first payment attempt (with the session's
        ``payment_intent_data``) and reused by the next ones, as Stripe does."""
        if session["payment_intent"] is None:
            data = self.state.checkout_intent_data.get(session["id"], {})
            pi = self._pi_create(
                {
                    "amount": session["amount_total"],
                    "currency": session["currency"],
                    "metadata": data.get("metadata") or {},
                    "transfer_group": data.get("transfer_group"),
                    "description": data.get("description"),
                }
            )
            session["payment_intent"] = pi["id"]
        return session["payment_intent"]

    def pay_checkout_session_async(self, cs_id: str) -> dict:
        """The customer pays with a delayed method (a bank debit): as on Stripe, the session
        completes unpaid (``checkout.session.completed`` with ``payment_status: "unpaid"``) and
        its PaymentIntent is ``processing`` until :meth:`settle_async_payment` says how the bank
        answered. Returns the session."""
        with self.state.lock:
            session = self._checkout_session(cs_id)
            if session["status"] != "open":
                raise ValueError(f"Checkout Session {cs_id} is {session['status']}, not open.")
            pi = self.state.payment_intents[self._checkout_intent(session)]
            pi.update(status="processing", payment_method="pm_us_bank_account")
            session.update(status="complete", payment_status="unpaid")
            completed = copy.deepcopy(session)
        self.emit("checkout.session.completed", completed)
        return completed

    def settle_async_payment(self, cs_id: str, *, succeeded: bool) -> dict:
        """The bank's answer to a delayed payment (:meth:`pay_checkout_session_async`).

        Succeeded: the PaymentIntent succeeds, the session is ``paid`` and
        ``checkout.session.async_payment_succeeded`` is sent. Failed: the PaymentIntent goes back
        to ``requires_payment_method`` with its ``last_payment_error`` (the session, complete,
        stays ``unpaid``: it cannot be paid again), ``payment_intent.payment_failed`` and
        ``checkout.session.async_payment_failed`` are sent. Returns the session."""
        with self.state.lock:
            session = self._checkout_session(cs_id)
            pi_id = session["payment_intent"]
            if session["status"] != "complete" or pi_id is None:
                raise ValueError(f"Checkout Session {cs_id} has no delayed payment to settle.")
            pi = self.state.payment_intents[pi_id]
            if pi["status"] != "processing":
                raise ValueError(f"PaymentIntent {pi_id} is {pi['status']}, not processing.")
            if succeeded:
                pi.update(
                    status="succeeded",
                    amount_received=pi["amount"],
                    latest_charge=self.state.new_id("py"),
                    processing=None,
                )
                self.state.pending += pi["amount"]
                session["payment_status"] = "paid"
                events = [
                    ("payment_intent.succeeded", copy.deepcopy(pi)),
                    ("checkout.session.async_payment_succeeded", copy.deepcopy(session)),
                ]
            else:
                pi.update(
                    status="requires_payment_method",
                    processing=None,
                    payment_method=None,
                    last_payment_error={
                        "type": "invalid_request_error",
                        "code": "insufficient_funds",
                        "message": "The customer's account has insufficient funds to cover "
                        "this payment.",
                    },
                )
                events = [
                    ("payment_intent.payment_failed", copy.deepcopy(pi)),
                    ("checkout.session.async_payment_failed", copy.deepcopy(session)),
                ]
            settled = copy.deepcopy(session)
        for kind, obj in events:
            self.emit(kind, obj)
        return settled

    def _checkout_page(self, method: str, cs_id: str, form: dict) -> tuple[int, str, dict]:
        """The hosted payment page: GET shows it, POST pays (303 to ``success_url``)."""
        with self.state.lock:
            session = self.state.checkout_sessions.get(cs_id)
            if session is None:
                return 404, _checkout_html(None, "No such payment page."), {}
            self._checkout_session(cs_id)
            message = ""
            if method == "POST":
                paid, message = self.pay_checkout_session(cs_id, str(form.get("card_number", "")))
                if paid:
                    location = session["success_url"].replace("{CHECKOUT_SESSION_ID}", cs_id)
                    return 303, "", {"Location": location}
            elif session["status"] == "complete":
                location = session["success_url"].replace("{CHECKOUT_SESSION_ID}", cs_id)
                return 303, "", {"Location": location}
            status = 402 if message else 200
            return status, _checkout_html(copy.deepcopy(session), message), {}

    def _pi_create(self, params: dict) -> dict:
        amount = _int(params, "amount")
        if amount < 50:
            raise StripeHTTPError(
                400, "invalid_request_error", "Amount must be at least 50 cents", "amount"
            )
        pi = _template("payment_intent")
        pi_id = self.state.new_id("pi")
        pi.update(
            id=pi_id,
            amount=amount,
            amount_received=0,
            amount_capturable=0,
            currency=(params.get("currency") or "usd").lower(),
            client_secret=f"{pi_id}_secret_{secrets.token_hex(8)}",
            created=self.state.now(),
            canceled_at=None,
            last_payment_error=None,
            next_action=None,
            customer=params.get("customer"),
            description=params.get("description"),
            metadata=params.get("metadata") or {},
            status="requires_payment_method",
            transfer_group=params.get("transfer_group"),
            transfer_data=None,
            processing=None,
        )
        self.state.payment_intents[pi_id] = pi
        self.emit("payment_intent.created", pi)
        return copy.deepcopy(pi)

    def _pi_confirm(self, pi_id: str, action: str) -> dict:
        if action != "confirm":
            raise StripeHTTPError(404, "invalid_request_error", f"Unknown action {action}")
        self._get(self.state.payment_intents, pi_id, "payment_intent")
        return self.succeed_payment_intent(pi_id)

    def _refund_create(self, params: dict) -> dict:
        pi_id = params.get("payment_intent", "")
        pi = self.state.payment_intents.get(pi_id)
        if pi is None or pi["status"] != "succeeded":
            raise StripeHTTPError(
                400,
                "invalid_request_error",
                "This PaymentIntent has no charge to refund.",
                "payment_intent",
            )
        refunded = sum(
            r["amount"] for r in self.state.refunds.values() if r["payment_intent"] == pi_id
        )
        amount = int(params.get("amount", pi["amount_received"] - refunded))
        if amount <= 0 or amount + refunded > pi["amount_received"]:
            raise StripeHTTPError(
                400,
                "invalid_request_error",
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({pi['amount_received'] - refunded})",
                "amount",
                "charge_already_refunded" if refunded else "amount_too_large",
            )
        refund = _template("refund")
        refund.update(
            id=self.state.new_id("re"),
            amount=amount,
            currency=pi["currency"],
            charge=pi["latest_charge"],
            payment_intent=pi_id,
            created=self.state.now(),
            metadata=params.get("metadata") or {},
            status=self.refund_status,
            reason=params.get("reason"),
        )
        self.state.refunds[refund["id"]] = refund
        self.state.available -= amount
        self.emit("refund.created", refund)
        return copy.deepcopy(refund)

    def _payout_create(self, params: dict, account: str) -> dict:
        payout = _template("payout")
        payout.update(
            id=self.state.new_id("po"),
            amount=_int(params, "amount"),
            currency=(params.get("currency") or "usd").lower(),
            created=self.state.now(),
            metadata=params.get("metadata") or {},
            status="pending",
            automatic=False,
        )
        self.state.payouts[payout["id"]] = payout
        self.emit("payout.created", payout, account=account or None)
        return copy.deepcopy(payout)

    def _onboard_page(self, account: str, query: dict) -> tuple[int, str, dict]:
        if account not in self.state.accounts:
            return 404, "unknown account", {}
        self.complete_onboarding(account)
        location = query.get("return_url", "")
        return 302, "onboarded", {"Location": location} if location else {}


def _checkout_html(session: dict | None, message: str) -> str:
    """The test payment page: one self-contained document (no script, no outside resource)."""
    esc = html.escape
    if session is None:
        body = f"<p>{esc(message)}</p>"
    else:
        currency = session["currency"]
        amount = session["amount_total"]
        shown = (
            f"{amount:,} {currency.upper()}"
            if currency in ZERO_DECIMAL
            else f"{amount / 100:,.2f} {currency.upper()}"
        )
        cancel = esc(session["cancel_url"], quote=True)
        if session["status"] == "open":
            error = f'<p class="error" role="alert">{esc(message)}</p>' if message else ""
            body = f"""<p class="amount">Pay <strong id="amount">{esc(shown)}</strong></p>
{error}<form method="post">
<label for="card_number">Card number</label>
<input id="card_number" name="card_number" inputmode="numeric" autocomplete="off"
 placeholder="4242 4242 4242 4242" required>
<button type="submit" id="pay">Pay {esc(shown)}</button>
</form>
<p class="hint">Test cards: 4242 4242 4242 4242 pays; 4000 0000 0000 0002 is declined.</p>
<p><a id="cancel" href="{cancel}">Cancel and return</a></p>"""
        else:
            body = f"""<p class="error">This payment page has {esc(session["status"])}; nothing
was charged.</p><p><a id="cancel" href="{cancel}">Return</a></p>"""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test payment · stripe_local</title>
<style>body{{font:16px system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}}
input{{display:block;width:100%;font-size:1.1rem;padding:.4rem;margin:.3rem 0 1rem}}
button{{font-size:1.1rem;padding:.5rem 1rem}}.error{{color:#b00020}}.hint{{color:#555}}</style>
</head><body><h1>Test payment</h1>
<p>A local Stripe test double: no real card is charged.</p>
{body}
</body></html>"""


def _fingerprint(method: str, path: str, params: dict) -> str:
    return hashlib.sha256(json.dumps([method, path, params], sort_keys=True).encode()).hexdigest()


def _make_handler(server: LocalStripe):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = -1  # headers and body leave in one write (see _send's flush)

        def setup(self) -> None:
            super().setup()
            # Without this, Nagle's algorithm and delayed ACKs add ~40 ms to every answer.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args) -> None:
            logger.debug("%s " + format, self.address_string(), *args)

        def _send(self, status: int, body: dict | str, headers: dict | None = None) -> None:
            data = (json.dumps(body) if isinstance(body, dict) else body).encode()
            self.send_response(status)
            headers = dict(headers or {})
            self.send_header(
                "Content-Type",
                headers.pop("Content-Type", None)
                or ("application/json" if isinstance(body, dict) else "text/plain"),
            )
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", f"req_{secrets.token_hex(8)}")
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

        def _drop(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_DELETE(self) -> None:
            self._dispatch("DELETE")

        def parse_request(self) -> bool:
            # Handling starts once a request line arrived (not while idling on keep-alive).
            self._started = time.perf_counter()
            return super().parse_request()

        def _dispatch(self, method: str) -> None:
            started = getattr(self, "_started", time.perf_counter())
            cpu = time.thread_time()
            with server._busy_lock:
                if server._in_flight == 0:
                    server._union_start = max(started, server._union_end)
                server._in_flight += 1
            try:
                self._dispatch_inner(method)
            finally:
                with server._busy_lock:
                    ended = time.perf_counter()
                    server.busy_seconds += ended - started
                    server.busy_cpu_seconds += time.thread_time() - cpu
                    server._in_flight -= 1
                    if server._in_flight == 0:
                        server.busy_union_seconds += ended - server._union_start
                        server._union_end = ended

        def _dispatch_inner(self, method: str) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            query = decode_form(parsed.query)
            if parsed.path.startswith("/_checkout/") and method in ("GET", "POST"):
                form = decode_form(raw) if method == "POST" else {}
                status, page, headers = server._checkout_page(
                    method, parsed.path.split("/")[2], form
                )
                self._send(status, page, {"Content-Type": "text/html; charset=utf-8", **headers})
                return
            if parsed.path.startswith("/_onboard/"):
                account = parsed.path.split("/")[2]
                status, text, headers = server._onboard_page(account, query)
                self._send(status, text, headers)
                return
            auth = self.headers.get("Authorization", "")
            if auth != f"Bearer {server.api_key}":
                self._send(
                    401,
                    StripeHTTPError(
                        401, "invalid_request_error", "Invalid API Key provided"
                    ).body(),
                )
                return
            if parsed.path == "/_faults" and method == "POST":
                # The fault switch of a server running as its own process (tests that drive
                # it from another process); in-process tests set ``server.faults`` directly.
                server.faults.configure(json.loads(raw or "{}"))
                self._send(200, {"ok": True})
                return
            params = decode_form(raw) if method == "POST" else {}
            request_line = f"{method} {parsed.path}"
            now = time.monotonic()
            endpoint = endpoint_of(method, parsed.path)
            with server._busy_lock:
                server.request_times.append((now, endpoint))
            fault = server.faults.pick(request_line)
            if fault is None and server.faults.over_rate_limit(endpoint, now):
                fault = "429"
            server.request_log.append((request_line, 0))
            if fault == "drop_before":
                self._drop()
                return
            if fault == "500":
                self._send(
                    500,
                    StripeHTTPError(500, "api_error", "Injected server error").body(),
                    server.faults.headers(),
                )
                return
            if fault == "429":
                self._send(
                    429,
                    StripeHTTPError(
                        429, "invalid_request_error", "Too many requests", code="rate_limit"
                    ).body(),
                    server.faults.headers(),
                )
                return
            key = self.headers.get("Idempotency-Key") if method == "POST" else None
            idem = (self.headers.get("Stripe-Account") or "", key) if key else None
            fingerprint = _fingerprint(method, parsed.path, params)
            if idem is not None:
                with server.state.lock:
                    if idem in server.state.idempotency:
                        stored = server.state.idempotency[idem]
                        if stored is None:
                            self._send(
                                409,
                                StripeHTTPError(
                                    409,
                                    "idempotency_error",
                                    "There is currently another in-progress request using "
                                    "this Stripe-Idempotency-Key.",
                                    code="idempotency_key_in_use",
                                ).body(),
                            )
                            return
                        if stored[0] != fingerprint:
                            self._send(
                                400,
                                StripeHTTPError(
                                    400,
                                    "idempotency_error",
                                    "Keys for idempotent requests can only be used with the "
                                    "same parameters they were first used with.",
                                ).body(),
                            )
                            return
                        self._send(stored[1], stored[2], {"Idempotent-Replayed": "true"})
                        return
                    server.state.idempotency[idem] = None
            try:
                status, body = 200, server.handle(method, parsed.path, query, params, self.headers)
            except StripeHTTPError as exc:
                status, body = exc.status, exc.body()
            except Exception as exc:  # a bug in the double: a 500 Stripe would not replay
                logger.exception("stripe_local failed on %s", request_line)
                if idem is not None:
                    with server.state.lock:
                        server.state.idempotency.pop(idem, None)
                self._send(500, StripeHTTPError(500, "api_error", str(exc)).body())
                return
            if idem is not None:
                with server.state.lock:
                    server.state.idempotency[idem] = (fingerprint, status, body)
            server.request_log[-1] = (request_line, status)
            if fault == "drop_after_commit":
                self._drop()
                return
            if fault == "timeout_after_commit":
                time.sleep(server.faults.timeout_seconds)
                self._drop()
                return
            self._send(status, body)

    return Handler


def main() -> None:  # pragma: no cover - manual use: python -m stripe_local.server
    """The demo's Stripe: the same credentials as the app, from the environment or the
    install's secrets file (``LOCAL_SECRETS_FILE``, default ``var/secrets.json``), which
    ``marketplace.settings.local`` generates on first start (or this does, if it runs first)."""
    import argparse
    import os

    from marketplace.settings import stripe_secrets

    default_file = os.environ.get("LOCAL_SECRETS_FILE") or str(
        Path(__file__).resolve().parent.parent / "var" / "secrets.json"
    )
    parser = argparse.ArgumentParser(description="Local Stripe-compatible test double")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook", default="", help="platform webhook URL")
    parser.add_argument("--connect-webhook", default="", help="Connect webhook URL")
    parser.add_argument("--available", type=int, default=10_000_000)
    parser.add_argument("--secrets-file", default=default_file, help="the app's local secrets")
    args = parser.parse_args()
    values = {name: os.environ.get(name, "") for name in stripe_secrets.NAMES}
    if not all(values.values()):
        stored = stripe_secrets.load_or_create(Path(args.secrets_file))
        values = {name: values[name] or stored[name] for name in stripe_secrets.NAMES}
    server = LocalStripe(
        port=args.port, api_key=values["STRIPE_SECRET_KEY"], initial_available=args.available
    )
    if args.webhook:
        server.add_endpoint(args.webhook, values["STRIPE_WEBHOOK_SECRET"])
    if args.connect_webhook:
        server.add_endpoint(
            args.connect_webhook, values["STRIPE_CONNECT_WEBHOOK_SECRET"], connect=True
        )
    server.start()
    print(f"stripe_local listening on {server.api_base}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
