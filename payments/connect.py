"""Stripe Connect onboarding: one Express account per worker, with the ``transfers`` capability.

Returning from the onboarding link does not mean the worker is onboarded: only the account's
state at Stripe (``payouts_enabled``, the ``transfers`` capability, requirements) says so, read
from ``account.updated`` events or fetched on return.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from marketplace.errors import PermissionDenied, ValidationError
from marketplace.models import User, WorkerProfile

from . import stripe_gateway as gateway
from .models import ConnectedAccount
from .posting import audit_log_record


@transaction.atomic
def connected_account_ensure(*, worker: User) -> ConnectedAccount:
    """The worker's connected account, created at Stripe on first use (idempotent per worker)."""
    if not worker.is_worker:
        raise PermissionDenied("Only workers have payout accounts.")
    existing = ConnectedAccount.objects.select_for_update().filter(worker=worker).first()
    if existing is not None:
        return existing
    profile = WorkerProfile.objects.select_for_update().get(user=worker)
    account = gateway.account_create(
        email=worker.email,
        country=profile.country,
        worker_id=worker.pk,
        idempotency_key=f"worker:{worker.pk}:account",
    )
    connected = ConnectedAccount.objects.create(worker=worker, stripe_account_id=account["id"])
    profile.stripe_account_id = account["id"]
    profile.save(update_fields=["stripe_account_id"])
    _apply(connected, account)
    audit_log_record(action="connect.account_created", actor=worker, obj=connected)
    return connected


def onboarding_link_create(
    *, worker: User, refresh_url: str, return_url: str, with_state: bool = False
) -> str:
    """A fresh AccountLink URL (links expire; the refresh URL mints a new one).

    ``with_state`` adds ``?state=`` (``onboarding_state``) to both URLs, for workers who use
    the API with a token and come back from Stripe in a browser without our session cookie."""
    connected = connected_account_ensure(worker=worker)
    if with_state:
        query = f"?state={onboarding_state(connected)}"
        refresh_url, return_url = refresh_url + query, return_url + query
    link = gateway.account_link_create(
        account_id=connected.stripe_account_id, refresh_url=refresh_url, return_url=return_url
    )
    return link["url"]


# --- coming back from Stripe without a session ------------------------------------------------
# The return and refresh URLs of an API client's link carry a state we signed: which worker and
# which connected account, and when. Only that account can be refreshed or continued with it (a
# query naming another account fails the signature); it expires after CONNECT_STATE_MAX_AGE; and
# what it allows is harmless to the worker: reading their account's state from Stripe, or a new
# onboarding link to their own account.

_STATE_SALT = "payments.connect.onboarding-state"


def onboarding_state(connected: ConnectedAccount) -> str:
    return signing.dumps(
        {"worker": connected.worker_id, "account": connected.stripe_account_id},
        salt=_STATE_SALT,
        compress=True,
    )


def onboarding_state_account(*, state: str, user: User | None = None) -> ConnectedAccount:
    """The connected account ``state`` was signed for, or a ``ValidationError`` (forged,
    expired, or signed for someone else than the signed-in ``user``)."""
    try:
        data = signing.loads(
            state, salt=_STATE_SALT, max_age=settings.CONNECT_STATE_MAX_AGE_SECONDS
        )
    except signing.SignatureExpired:
        raise ValidationError(
            "This link from Stripe has expired; start the payout setup again."
        ) from None
    except signing.BadSignature:
        raise ValidationError("This link is not valid.") from None
    if not isinstance(data, dict):
        raise ValidationError("This link is not valid.")
    connected = ConnectedAccount.objects.filter(
        worker_id=data.get("worker"), stripe_account_id=data.get("account")
    ).first()
    if connected is None:
        raise ValidationError("This link is not valid.")
    if user is not None and user.is_authenticated and user.pk != connected.worker_id:
        raise ValidationError("This link belongs to another account; sign out first.")
    return connected


@transaction.atomic
def connected_account_sync(
    *, stripe_account_id: str, account: dict | None = None
) -> ConnectedAccount | None:
    """Refresh our copy from Stripe's current state (never from a possibly stale event body)."""
    connected = (
        ConnectedAccount.objects.select_for_update()
        .filter(stripe_account_id=stripe_account_id)
        .first()
    )
    if connected is None:
        return None
    _apply(connected, account or gateway.account_retrieve(stripe_account_id))
    return connected


def _apply(connected: ConnectedAccount, account: dict) -> None:
    requirements = account.get("requirements") or {}
    connected.details_submitted = bool(account.get("details_submitted"))
    connected.payouts_enabled = bool(account.get("payouts_enabled"))
    connected.transfers_active = (account.get("capabilities") or {}).get("transfers") == "active"
    connected.requirements_due = list(requirements.get("currently_due") or []) + [
        r
        for r in (requirements.get("past_due") or [])
        if r not in (requirements.get("currently_due") or [])
    ]
    connected.disabled_reason = requirements.get("disabled_reason") or ""
    connected.synced_at = timezone.now()
    connected.save()
    WorkerProfile.objects.filter(user_id=connected.worker_id).update(
        stripe_account_id=connected.stripe_account_id,
        payouts_enabled=connected.can_receive_transfers,
    )
