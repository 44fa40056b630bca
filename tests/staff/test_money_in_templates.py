"""Every amount of money on every page goes through the one filter, ``{{ cents|money:currency }}``
(``marketplace.templatetags.money``): a template that prints a money field of a model or of a
money read (``amount``, ``price``, ``budget``, a balance, …) any other way fails here.

The money names come from the code, not from a hand list: every integer model field of the
project whose name says money, and every field of the payments selectors' money dataclasses."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from django.apps import apps
from django.db import models

from payments import selectors as payment_selectors

ROOT = Path(__file__).resolve().parents[2]
APPS = ("marketplace", "payments", "tasks", "quality")
MONEY_WORDS = re.compile(r"(amount|price|budget|balance|fees?|cents|hourly|escrow|payable|revenue)")
# Money dataclasses of the payments reads (their non-money fields are dropped below).
MONEY_DATACLASSES = (
    payment_selectors.EscrowBalance,
    payment_selectors.WorkerEarnings,
    payment_selectors.MoneyTotals,
    payment_selectors.EarningsOnHold,
)
NOT_MONEY = {"currency", "count", "next_due", "paid_seconds", "status", "label"}

VARIABLE = re.compile(r"{{\s*(.*?)\s*}}", re.S)


def money_names() -> set[str]:
    names = set()
    for label in APPS:
        for model in apps.get_app_config(label).get_models():
            for field in model._meta.get_fields():
                is_int = isinstance(field, models.IntegerField | models.BigIntegerField)
                if is_int and MONEY_WORDS.search(field.name):
                    names.add(field.name)
    for cls in MONEY_DATACLASSES:
        names |= {f.name for f in dataclasses.fields(cls)} - NOT_MONEY
    return names


# A form field's own tag: its value/min/max attributes are numbers the browser reads, in the
# minor units the form posts (the amount beside it is shown through ``|money``).
INPUT_TAG = re.compile(r"<input\b[^>]*>", re.S)


def raw_amounts(text: str, names: set[str]) -> list[str]:
    """The ``{{ … }}`` expressions of ``text`` that print a money name without ``|money``
    (outside an ``<input>`` tag's attributes)."""
    out = []
    for expr in VARIABLE.findall(INPUT_TAG.sub("", text)):
        value, *filters = [part.strip() for part in expr.split("|")]
        last = value.split(".")[-1]
        if last in names and not any(f.split(":")[0] == "money" for f in filters):
            out.append(expr)
    return out


def test_money_names_come_from_the_models_and_the_reads():
    names = money_names()
    assert {"amount", "price", "budget", "balance", "pay_amount", "total_amount"} <= names
    assert {"escrow_available", "payable", "revenue", "pending", "in_transit"} <= names
    assert "currency" not in names and "count" not in names


def test_the_check_catches_a_raw_amount_and_passes_a_formatted_one():
    names = money_names()
    assert raw_amounts("{{ r.total_amount }} {{ job.budget|default:0 }}", names) == [
        "r.total_amount",
        "job.budget|default:0",
    ]
    assert raw_amounts("{{ p.amount|money:p.currency }} {{ p.pk }}", names) == []
    # A form field's number is the value it posts; the text beside it is still checked.
    field = '<input name="budget" type="number" min="{{ job.budget }}"> {{ job.budget }}'
    assert raw_amounts(field, names) == ["job.budget"]


def test_no_template_prints_an_amount_without_the_money_filter():
    names = money_names()
    found = {}
    for path in sorted((ROOT / "templates").rglob("*.html")):
        raw = raw_amounts(path.read_text(encoding="utf-8"), names)
        if raw:
            found[str(path.relative_to(ROOT))] = raw
    assert found == {}
