"""The one rule that writes money for people, and the template filter every page uses."""

from __future__ import annotations

import pytest
from django.template import Context, Template

from marketplace.money import format_money


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (46200, "usd", "$462.00"),
        (28, "usd", "$0.28"),
        (123456789, "USD", "$1,234,567.89"),
        (-550, "eur", "-€5.50"),
        (1234, "jpy", "¥1,234"),
        (500, "chf", "5.00 CHF"),
        (1234, "kwd", "1.234 KWD"),
        (0, "gbp", "£0.00"),
        (None, "usd", "—"),
    ],
)
def test_amounts_are_written_in_their_currency(amount, currency, shown):
    assert format_money(amount, currency) == shown


def test_the_template_filter_is_the_same_rule():
    html = Template("{% load money %}{{ a|money:c }}|{{ b|money:c }}").render(
        Context({"a": 6300, "b": None, "c": "usd"})
    )
    assert html == "$63.00|—"
