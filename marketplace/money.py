"""How an amount of money is written for people: the one formatting rule (pure, no Django).

Amounts are integer minor units of an ISO 4217 currency (lower-case code, as Stripe writes it).
``format_money(46200, "usd")`` → ``"$462.00"``; ``format_money(1234, "jpy")`` → ``"¥1,234"``;
``format_money(500, "chf")`` → ``"5.00 CHF"``. Pages use it through the ``money`` template filter
(``{% load money %}{{ cents|money:currency }}``), never by hand.
"""

from __future__ import annotations

# Currencies without minor units (ISO 4217 exponent 0) among those Stripe supports.
ZERO_DECIMAL = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)
# Currencies with three minor digits among those Stripe supports.
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
# Symbols that name one currency unambiguously; other currencies are written with their code.
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "inr": "₹", "krw": "₩"}


def exponent(currency: str) -> int:
    """How many minor-unit digits ``currency`` has (0, 2 or 3)."""
    code = currency.lower()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def format_money(amount: int | None, currency: str | None = "usd") -> str:
    """``amount`` minor units of ``currency`` as a person reads it; ``—`` for no amount."""
    if amount is None or amount == "":
        return "—"
    code = (currency or "usd").lower()
    digits = exponent(code)
    value = int(amount)
    sign = "-" if value < 0 else ""
    whole, minor = divmod(abs(value), 10**digits)
    number = f"{whole:,}" + (f".{minor:0{digits}d}" if digits else "")
    symbol = SYMBOLS.get(code)
    if symbol:
        return f"{sign}{symbol}{number}"
    return f"{sign}{number} {code.upper()}"
