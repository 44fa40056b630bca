"""Template helpers of the worker pages."""

from __future__ import annotations

from django import template

register = template.Library()

# Currencies without minor units (ISO 4217 exponent 0) among those Stripe supports.
ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf"})


@register.filter
def money(amount: int | None, currency: str = "usd") -> str:
    """``1234, "usd"`` → ``"12.34 USD"`` (amounts are integer minor units)."""
    if amount is None:
        return "—"
    currency = (currency or "usd").lower()
    if currency in ZERO_DECIMAL:
        return f"{int(amount)} {currency.upper()}"
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(int(amount)), 100)
    return f"{sign}{whole}.{cents:02d} {currency.upper()}"
