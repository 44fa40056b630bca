"""Stripe credentials: what production refuses, and the per-install secrets of local runs.

Why this matters: whoever knows the webhook secret can sign a ``payment_intent.succeeded`` event,
and whoever knows the secret key can act as the platform on Stripe. A value written in this
repository is known to everyone, so no such value may ever be one production accepts:

* production (``production.py``) refuses to start when a Stripe credential is missing, empty,
  one of the values this repository ever shipped (:data:`SHIPPED`), not of Stripe's shape, or
  too short to have been generated (:func:`problems`);
* local and demo runs (``local.py``) use random values generated once per install and kept in a
  0600 file under ``var/`` (:func:`load_or_create`), which the local Stripe server
  (``python -m stripe_local.server``) reads too, so both ends agree without a shared constant;
* the test suite passes its own values to its local Stripe server; they are short on purpose
  (and listed in :data:`SHIPPED`), so production would refuse them.

Standard library only: the local Stripe server reads the same file without Django.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

NAMES = (
    "STRIPE_SECRET_KEY",
    "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_CONNECT_WEBHOOK_SECRET",
)

# Every Stripe credential value this repository ever contained: public, so never a secret.
SHIPPED = frozenset(
    {
        "sk_test_local",
        "pk_test_local",
        "whsec_local",
        "whsec_local_connect",
        # The test suite's own (marketplace/settings/test.py).
        "sk_test_suite",
        "pk_test_suite",
        "whsec_suite",
        "whsec_suite_connect",
    }
)

# Stripe's own shapes: ``sk_live_…`` or a restricted ``rk_live_…`` key, ``pk_live_…``,
# ``whsec_…``. The random part Stripe generates is at least 24 characters long (keys) and 32
# (webhook secrets); anything shorter was typed by a person.
_PREFIXES = {
    "STRIPE_SECRET_KEY": ("sk_live_", "sk_test_", "rk_live_", "rk_test_"),
    "STRIPE_PUBLISHABLE_KEY": ("pk_live_", "pk_test_"),
    "STRIPE_WEBHOOK_SECRET": ("whsec_",),
    "STRIPE_CONNECT_WEBHOOK_SECRET": ("whsec_",),
}
MIN_RANDOM_CHARS = 24


def problem(name: str, value: str | None) -> str | None:
    """Why production must not run with ``value`` as the Stripe credential ``name`` (or None)."""
    if not value:
        return f"{name} is not set."
    if value in SHIPPED:
        return f"{name} is a value shipped in the repository; use the one from your Stripe account."
    prefix = next((p for p in _PREFIXES[name] if value.startswith(p)), None)
    if prefix is None:
        return f"{name} does not look like a Stripe value (it starts with {_PREFIXES[name][0]!r})."
    if len(value) - len(prefix) < MIN_RANDOM_CHARS:
        return f"{name} is too short to be a value Stripe generated."
    return None


def problems(values: Mapping[str, str | None]) -> list[str]:
    """Every reason the Stripe credentials in ``values`` (by setting name) are unusable."""
    return [p for name in NAMES if (p := problem(name, values.get(name)))]


def generate() -> dict[str, str]:
    """Fresh random values of Stripe's shape (test mode), one per credential."""
    return {
        "STRIPE_SECRET_KEY": f"sk_test_{secrets.token_hex(24)}",
        "STRIPE_PUBLISHABLE_KEY": f"pk_test_{secrets.token_hex(24)}",
        "STRIPE_WEBHOOK_SECRET": f"whsec_{secrets.token_hex(24)}",
        "STRIPE_CONNECT_WEBHOOK_SECRET": f"whsec_{secrets.token_hex(24)}",
    }


def load_or_create(path: Path) -> dict[str, str]:
    """This install's local Stripe credentials: read from ``path``, generated there once.

    The file is created mode 0600 and published atomically (a hard link of a complete temporary
    file), so two processes starting at once agree on one set of values and neither reads a
    half-written file.
    """
    path = Path(path)
    current = _read(path)
    if current is not None and all(current.get(name) for name in NAMES):
        return {name: current[name] for name in NAMES}
    values = {**generate(), **{k: v for k, v in (current or {}).items() if k in NAMES and v}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(values, f, indent=2)
        if current is None:
            try:
                os.link(tmp, path)
            except FileExistsError:  # another process won the race: use its values
                return load_or_create(path)
        else:  # an older file missing some value: complete it, keeping what it had
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return values


def _read(path: Path) -> dict[str, str] | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)  # secrets readable by others: tighten, as ssh would insist
    data = json.loads(text) if text.strip() else {}
    return data if isinstance(data, dict) else {}
