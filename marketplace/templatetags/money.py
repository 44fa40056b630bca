"""``{% load money %}{{ cents|money:currency }}``: every amount on every page goes through here."""

from __future__ import annotations

from django import template

from marketplace.money import format_money

register = template.Library()


@register.filter
def money(amount: int | None, currency: str | None = "usd") -> str:
    """``46200|money:"usd"`` → ``$462.00`` (see :func:`marketplace.money.format_money`)."""
    return format_money(amount, currency)
