"""All Stripe I/O, and the only module that imports ``stripe``.

* The API version is pinned (:data:`STRIPE_API_VERSION`): objects we read keep their shape
  whatever the account's default version is. Change it only together with the code that
  reads the objects and the webhook handlers.
* Every request has a timeout and the SDK's network retries (which resend the *same*
  idempotency key, so they are safe); every POST that moves money carries an explicit
  idempotency key derived from our own row (``payout:{id}:{attempt}``, ``refund:{id}``...).
* Every request is paced under Stripe's rate limit (25 requests/s per endpoint in live mode):
  ``STRIPE_REQUESTS_PER_SECOND`` per endpoint (method and path, ids folded), across every
  process of the install (``marketplace.ratelimit.pace``, on Redis), with a margin for network
  jitter. A 429 that still comes back is honoured: the same request (same idempotency key) is
  sent again after ``Retry-After`` (bounded by ``STRIPE_RETRY_AFTER_MAX``) or, without one,
  after an exponential backoff with jitter, up to ``STRIPE_RATE_LIMIT_RETRIES`` times, unless
  Stripe says ``Stripe-Should-Retry: false``. 5xx and timeouts are the SDK's network retries
  (which honour ``Stripe-Should-Retry`` too); what is left after them is a Celery retry.
* Stripe's errors become ours (``payments.errors``): a timeout or dropped connection is
  :class:`StripeTimeout` — *the request may have taken effect*; a 429 is
  :class:`StripeRateLimited`; a 5xx :class:`StripeError`; a definite refusal (4xx)
  :class:`StripeRequestRefused` with Stripe's error code.

Returns plain dicts shaped like Stripe's objects.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any

import requests
import stripe
from django.conf import settings

from marketplace.ratelimit import pace

from .errors import (
    StripeError,
    StripeIdempotencyError,
    StripeRateLimited,
    StripeRequestRefused,
    StripeTimeout,
    WebhookSignatureInvalid,
)

STRIPE_API_VERSION = "2026-10-28.endive"

logger = logging.getLogger(__name__)

_local = threading.local()
logger = logging.getLogger(__name__)

# Path segments that are object ids (``acct_1N...``, ``tr_...``): one endpoint whatever the id.
_ID_SEGMENT = re.compile(r"^[a-z]+_[A-Za-z0-9]+$")
RATE_LIMIT_BACKOFF_SECONDS = 0.5


def endpoint_of(method: str, url: str) -> str:
    """``"POST /v1/transfers"``, ``"GET /v1/accounts/{id}"``: the unit Stripe limits."""
    path = urllib.parse.urlsplit(url).path
    parts = ["{id}" if _ID_SEGMENT.match(p) else p for p in path.split("/")]
    return f"{method.upper()} {'/'.join(parts)}"


def _retry_after_seconds(headers: Mapping[str, str], retry: int) -> float:
    """How long to wait before re-sending a 429'd request: Stripe's ``Retry-After`` when it
    gives one, else exponential backoff with full jitter; never more than the bound."""
    bound = float(settings.STRIPE_RETRY_AFTER_MAX)
    value = headers.get("retry-after") if headers is not None else None
    if value:
        try:
            return min(bound, max(0.0, float(value)))
        except ValueError:
            pass  # an HTTP date: Stripe does not send one; back off instead
    return min(bound, random.uniform(0, RATE_LIMIT_BACKOFF_SECONDS * 2**retry))


class PacedRequestsClient(stripe.RequestsClient):
    """The SDK's HTTP client, paced per endpoint and honouring 429 (see the module docstring).

    Every attempt the SDK makes, its own network retries included, goes through ``request``, so
    every one is paced and re-sends the same headers (the same idempotency key)."""

    def request(self, method, url, headers, post_data=None):
        endpoint = endpoint_of(method, url)
        for retry in range(int(settings.STRIPE_RATE_LIMIT_RETRIES) + 1):
            wait = pace(f"stripe:{endpoint}", float(settings.STRIPE_REQUESTS_PER_SECOND))
            if wait > 0:
                time.sleep(wait)
            content, status, rheaders = super().request(method, url, headers, post_data)
            if status != 429 or retry == int(settings.STRIPE_RATE_LIMIT_RETRIES):
                break
            if rheaders is not None and rheaders.get("stripe-should-retry") == "false":
                break
            delay = _retry_after_seconds(rheaders, retry)
            logger.warning("Stripe rate limited %s; retrying in %.2f s", endpoint, delay)
            time.sleep(delay)
        return content, status, rheaders


def _client() -> stripe.StripeClient:
    """A client per thread, rebuilt when the settings it depends on change (tests do that)."""
    config = (
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_API_BASE,
        settings.STRIPE_TIMEOUT_SECONDS,
        settings.STRIPE_MAX_NETWORK_RETRIES,
        getattr(settings, "STRIPE_PROXY", ""),
    )
    cached = getattr(_local, "client", None)
    if cached is not None and cached[0] == config:
        return cached[1]
    key, base, timeout, retries, proxy = config
    session = requests.Session()
    # Proxies come from STRIPE_PROXY only: reading them from the environment on every request
    # costs about a millisecond a call, a fifth of a payout's budget.
    session.trust_env = False
    client = stripe.StripeClient(
        key,
        stripe_version=STRIPE_API_VERSION,
        base_addresses={"api": base} if base else None,
        max_network_retries=retries,
        http_client=PacedRequestsClient(timeout=timeout, session=session, proxy=proxy or None),
    )
    _local.client = (config, client)
    return client


def _plain(obj: Any) -> dict[str, Any]:
    # ``for_json``: the SDK hydrates decimal fields (a Checkout Session's
    # ``currency_conversion.fx_rate``) as Decimal; as strings they can be stored as JSON.
    return obj.to_dict(for_json=True) if hasattr(obj, "to_dict") else dict(obj)


def _call(fn, *args, **kwargs) -> Any:
    try:
        return fn(*args, **kwargs)
    except stripe.APIConnectionError as exc:
        # The connection's own words (hosts, ports, errno) are for the log, not for people.
        logger.warning("Stripe did not answer: %s", exc.user_message or exc)
        raise StripeTimeout("Stripe did not answer in time. Try again in a minute.") from exc
    except stripe.RateLimitError as exc:
        raise StripeRateLimited(f"Stripe rate limited the request: {exc.user_message}") from exc
    except stripe.IdempotencyError as exc:
        raise StripeIdempotencyError(
            f"Stripe refused the idempotency key: {exc.user_message}",
            stripe_code=exc.code or "idempotency_error",
            http_status=exc.http_status or 400,
        ) from exc
    except stripe.APIError as exc:  # 5xx after the SDK's retries
        raise StripeError(f"Stripe failed: {exc.user_message}") from exc
    except stripe.StripeError as exc:  # 4xx: invalid request, card, permission, auth
        status = exc.http_status or 400
        if status == 429:
            raise StripeRateLimited(f"Stripe rate limited the request: {exc.user_message}") from exc
        if status == 409:  # e.g. the same key still in flight: try again later
            raise StripeError(f"Stripe reported a conflict: {exc.user_message}") from exc
        if status >= 500:
            raise StripeError(f"Stripe failed: {exc.user_message}") from exc
        raise StripeRequestRefused(
            f"Stripe refused the request: {exc.user_message}",
            stripe_code=exc.code or "",
            http_status=status,
        ) from exc


def _options(idempotency_key: str | None = None, account: str | None = None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if idempotency_key:
        options["idempotency_key"] = idempotency_key
    if account:
        options["stripe_account"] = account
    return options


# --- Connect ---------------------------------------------------------------------------------


def account_create(*, email: str, country: str, worker_id: int, idempotency_key: str) -> dict:
    """An Express connected account with only the ``transfers`` capability."""
    params: dict[str, Any] = {
        "type": "express",
        "capabilities": {"transfers": {"requested": True}},
        "metadata": {"worker_id": str(worker_id)},
    }
    if email:
        params["email"] = email
    if country:
        params["country"] = country
    return _plain(
        _call(_client().v1.accounts.create, params=params, options=_options(idempotency_key))
    )


def account_retrieve(account_id: str) -> dict:
    return _plain(_call(_client().v1.accounts.retrieve, account_id))


def account_link_create(*, account_id: str, refresh_url: str, return_url: str) -> dict:
    return _plain(
        _call(
            _client().v1.account_links.create,
            params={
                "account": account_id,
                "refresh_url": refresh_url,
                "return_url": return_url,
                "type": "account_onboarding",
            },
        )
    )


# --- transfers -------------------------------------------------------------------------------


def transfer_create(
    *,
    amount: int,
    currency: str,
    destination: str,
    idempotency_key: str,
    metadata: dict[str, str],
    transfer_group: str | None = None,
    description: str = "",
) -> dict:
    params: dict[str, Any] = {
        "amount": amount,
        "currency": currency,
        "destination": destination,
        "metadata": metadata,
    }
    if transfer_group:
        params["transfer_group"] = transfer_group
    if description:
        params["description"] = description
    # The payout hot path: a raw request skips building a StripeObject only to turn it back
    # into a dict (same HTTP, same errors, same idempotency handling in the SDK).
    response = _call(
        _client().raw_request, "post", "/v1/transfers", idempotency_key=idempotency_key, **params
    )
    return dict(response.data)


def transfer_retrieve(transfer_id: str) -> dict:
    return _plain(_call(_client().v1.transfers.retrieve, transfer_id))


def transfers_list(*, created_gte: int | None = None, page_size: int = 100) -> Iterator[dict]:
    """Every transfer (newest first), following pagination (raw pages: plain dicts)."""
    params: dict[str, Any] = {"limit": page_size}
    if created_gte is not None:
        params["created"] = {"gte": created_gte}
    while True:
        page = _call(_client().raw_request, "get", "/v1/transfers", **params).data
        data = page.get("data") or []
        yield from data
        if not page.get("has_more") or not data:
            return
        params["starting_after"] = data[-1]["id"]


def transfer_reverse(
    *, transfer_id: str, amount: int, idempotency_key: str, metadata: dict[str, str]
) -> dict:
    return _plain(
        _call(
            _client().v1.transfers.reversals.create,
            transfer_id,
            params={"amount": amount, "metadata": metadata},
            options=_options(idempotency_key),
        )
    )


# --- funding and refunds ---------------------------------------------------------------------


def payment_intent_create(
    *,
    amount: int,
    currency: str,
    transfer_group: str,
    metadata: dict[str, str],
    idempotency_key: str,
    description: str = "",
) -> dict:
    params: dict[str, Any] = {
        "amount": amount,
        "currency": currency,
        "transfer_group": transfer_group,
        "metadata": metadata,
        "automatic_payment_methods": {"enabled": True},
    }
    if description:
        params["description"] = description
    return _plain(
        _call(_client().v1.payment_intents.create, params=params, options=_options(idempotency_key))
    )


def payment_intent_retrieve(payment_intent_id: str) -> dict:
    return _plain(_call(_client().v1.payment_intents.retrieve, payment_intent_id))


def checkout_session_create(
    *,
    amount: int,
    currency: str,
    name: str,
    success_url: str,
    cancel_url: str,
    metadata: dict[str, str],
    client_reference_id: str,
    transfer_group: str,
    idempotency_key: str,
    description: str = "",
) -> dict:
    """A Checkout Session (``mode=payment``) for one line of ``amount``: Stripe's hosted page.

    The PaymentIntent it makes when the customer pays carries the same ``metadata`` and the
    ``transfer_group``; on current API versions it does not exist before then.
    """
    intent: dict[str, Any] = {"metadata": metadata, "transfer_group": transfer_group}
    if description:
        intent["description"] = description
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": currency,
                    "unit_amount": amount,
                    "product_data": {"name": name},
                },
            }
        ],
        "success_url": success_url,
        "cancel_url": cancel_url,
        "metadata": metadata,
        "client_reference_id": client_reference_id,
        "payment_intent_data": intent,
    }
    return _plain(
        _call(
            _client().v1.checkout.sessions.create, params=params, options=_options(idempotency_key)
        )
    )


def checkout_session_retrieve(session_id: str) -> dict:
    return _plain(_call(_client().v1.checkout.sessions.retrieve, session_id))


def checkout_session_expire(session_id: str) -> dict:
    return _plain(_call(_client().v1.checkout.sessions.expire, session_id))


def refund_create(
    *, payment_intent: str, amount: int, idempotency_key: str, metadata: dict[str, str]
) -> dict:
    return _plain(
        _call(
            _client().v1.refunds.create,
            params={"payment_intent": payment_intent, "amount": amount, "metadata": metadata},
            options=_options(idempotency_key),
        )
    )


def refund_retrieve(refund_id: str) -> dict:
    return _plain(_call(_client().v1.refunds.retrieve, refund_id))


def balance_retrieve() -> dict:
    return _plain(_call(_client().v1.balance.retrieve))


# --- webhooks --------------------------------------------------------------------------------


def event_construct(*, payload: bytes, signature: str, secret: str) -> dict:
    """Verify a webhook's signature on its raw body and return the event as a dict."""
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret)
    except stripe.SignatureVerificationError as exc:
        raise WebhookSignatureInvalid(f"The webhook signature does not verify: {exc}") from exc
    except ValueError as exc:
        raise WebhookSignatureInvalid("The webhook body is not a Stripe event.") from exc
    return _plain(event)
