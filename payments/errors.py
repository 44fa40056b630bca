"""Errors of the payments domain (each one's docstring is its default message)."""

from __future__ import annotations

from marketplace.errors import ApplicationError, Conflict, ExternalServiceError, ValidationError


class InsufficientEscrow(Conflict):
    """The job's available escrow does not cover this; fund the job or release reservations."""

    code = "insufficient_escrow"


class IdempotencyConflict(Conflict):
    """This idempotency key was already used for a different money movement."""

    code = "idempotency_conflict"


class CurrencyNotPriced(Conflict):
    """The job's currency has no pricing on this platform, so it cannot be quoted or funded."""

    code = "currency_not_priced"


class PayoutsHeld(Conflict):
    """Payouts to this worker are on hold."""

    code = "payouts_held"


class InvalidAmount(ValidationError):
    """The amount must be a positive whole number of minor units (cents)."""

    code = "invalid_amount"


class BonusNotAllowed(ValidationError):
    """Bonuses go only to workers who submitted work on the job."""

    code = "bonus_not_allowed"


class StripeError(ExternalServiceError):
    """Stripe could not be reached or failed; the operation can be retried safely."""

    code = "stripe_error"


class StripeTimeout(StripeError):
    """Stripe did not answer in time; the request may or may not have taken effect."""

    code = "stripe_timeout"


class StripeRateLimited(StripeError):
    """Stripe is rate limiting us; retry later."""

    code = "stripe_rate_limited"


class StripeRequestRefused(ApplicationError):
    """Stripe refused the request (a definite 4xx); retrying it unchanged will not help."""

    status_code = 502
    code = "stripe_refused"

    def __init__(self, message: str | None = None, *, stripe_code: str = "", http_status: int = 0):
        super().__init__(message)
        self.stripe_code = stripe_code
        self.http_status = http_status


class StripeIdempotencyError(StripeRequestRefused):
    """Stripe saw this idempotency key with different parameters."""

    code = "stripe_idempotency_error"


class WebhookSignatureInvalid(ValidationError):
    """The webhook's signature does not verify."""

    code = "invalid_signature"
