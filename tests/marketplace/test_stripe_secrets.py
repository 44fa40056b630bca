"""Invariant 8, its second half: production never runs with missing or shipped Stripe secrets;
local runs use per-install random ones that the local Stripe server shares."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from marketplace.settings import stripe_secrets

ROOT = Path(settings.BASE_DIR)
GOOD_BASE = {
    "PATH": "/usr/bin:/bin",
    "SECRET_KEY": "a-long-random-secret-key-for-production-0123456789",
    "DATABASE_URL": "postgres://crowdlabel@db.invalid:5432/crowdlabel",
    "REDIS_URL": "redis://redis.invalid:6379/0",
}
LOCAL = "marketplace.settings.local"
# Stripe-shaped values written anywhere in the repository.
STRIPE_LITERAL = re.compile(r"\b(?:sk|rk|pk)_(?:test|live)_[A-Za-z0-9_]+|\bwhsec_[A-Za-z0-9_]+")


def _good_stripe() -> dict[str, str]:
    return stripe_secrets.generate()


def _import_production(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import marketplace.settings.production"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_starts_with_real_looking_stripe_secrets():
    """The control for the refusals below: they fail because of Stripe, nothing else."""
    result = _import_production({**GOOD_BASE, **_good_stripe()})
    assert result.returncode == 0, result.stderr


def _bad_cases():
    for name in stripe_secrets.NAMES:
        yield pytest.param(name, None, id=f"{name}-missing")
        yield pytest.param(name, "", id=f"{name}-empty")
        for value in sorted(stripe_secrets.SHIPPED):
            yield pytest.param(name, value, id=f"{name}-{value}")
    yield pytest.param("STRIPE_WEBHOOK_SECRET", "whsec_short", id="webhook-too-short")
    yield pytest.param("STRIPE_SECRET_KEY", "x" * 60, id="secret-not-stripe-shaped")
    yield pytest.param("STRIPE_SECRET_KEY", "pk_live_" + "a" * 40, id="publishable-as-secret")


@pytest.mark.parametrize(("name", "value"), list(_bad_cases()))
def test_production_refuses_a_missing_or_shipped_stripe_secret(name, value):
    env = {**GOOD_BASE, **_good_stripe()}
    if value is None:
        del env[name]
    else:
        env[name] = value
    result = _import_production(env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr


def _repository_text_files() -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
        ).stdout.decode()
        files = [ROOT / name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):  # no git: walk, skipping local state
        files = [
            p
            for p in ROOT.rglob("*")
            if p.is_file()
            and not any(part.startswith(".") or part == "var" for part in p.relative_to(ROOT).parts)
        ]
    return [p for p in files if p.exists() and p.stat().st_size < 20_000_000]


def test_no_stripe_secret_in_the_repository_is_one_production_accepts():
    found: dict[str, set[str]] = {}
    for path in _repository_text_files():
        try:
            text = path.read_text()
        except (UnicodeDecodeError, IsADirectoryError):
            continue
        for literal in STRIPE_LITERAL.findall(text):
            found.setdefault(literal, set()).add(str(path.relative_to(ROOT)))
    # The suite's own values are in the repository: the scan must see them.
    assert settings.STRIPE_WEBHOOK_SECRET in found
    names_for = {
        "sk": ["STRIPE_SECRET_KEY"],
        "rk": ["STRIPE_SECRET_KEY"],
        "pk": ["STRIPE_PUBLISHABLE_KEY"],
        "whsec": ["STRIPE_WEBHOOK_SECRET", "STRIPE_CONNECT_WEBHOOK_SECRET"],
    }
    accepted = [
        (literal, name, sorted(where))
        for literal, where in found.items()
        for name in names_for[literal.split("_", 1)[0]]
        if stripe_secrets.problem(name, literal) is None
    ]
    assert accepted == []


def test_base_settings_ship_no_stripe_defaults():
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "marketplace.settings.base",
        "DATABASE_URL": "postgres://crowdlabel@db.invalid:5432/crowdlabel",
    }
    code = (
        "import json; from marketplace.settings import base as b; "
        f"print(json.dumps({{n: getattr(b, n) for n in {stripe_secrets.NAMES!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {name: "" for name in stripe_secrets.NAMES}


# --- local runs: per-install random values, shared with the local Stripe server ---------------


def test_local_secrets_are_generated_once_private_and_reused(tmp_path):
    path = tmp_path / "var" / "secrets.json"
    first = stripe_secrets.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stripe_secrets.load_or_create(path) == first
    assert json.loads(path.read_text()) == first
    # Of Stripe's shape (the app and Stripe's SDK accept them), and not shared between installs.
    assert stripe_secrets.problems(first) == []
    other = stripe_secrets.load_or_create(tmp_path / "elsewhere.json")
    assert all(other[name] != first[name] for name in stripe_secrets.NAMES)


def test_an_incomplete_secrets_file_is_completed_keeping_its_values(tmp_path):
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({"STRIPE_SECRET_KEY": "sk_test_" + "k" * 30}))
    path.chmod(0o644)
    values = stripe_secrets.load_or_create(path)
    assert values["STRIPE_SECRET_KEY"] == "sk_test_" + "k" * 30
    assert all(values[name] for name in stripe_secrets.NAMES)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _local_settings(env: dict[str, str]) -> dict[str, str]:
    code = (
        "import json; from django.conf import settings as s; "
        f"print(json.dumps({{n: getattr(s, n) for n in {stripe_secrets.NAMES!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": LOCAL, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_local_settings_use_this_installs_secrets_and_the_environment_first(tmp_path):
    env = {"LOCAL_SECRETS_FILE": str(tmp_path / "secrets.json")}
    first = _local_settings(env)
    assert first == json.loads((tmp_path / "secrets.json").read_text())
    assert _local_settings(env) == first  # reused, not regenerated on every start
    mine = "whsec_" + "m" * 32
    assert _local_settings({**env, "STRIPE_WEBHOOK_SECRET": mine})["STRIPE_WEBHOOK_SECRET"] == mine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _balance_status(port: int, key: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/balance", headers={"Authorization": f"Bearer {key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_demo_stripe_server_takes_the_apps_secret_key_from_the_same_file(tmp_path):
    secrets_file = tmp_path / "secrets.json"
    app_values = _local_settings({"LOCAL_SECRETS_FILE": str(secrets_file)})
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in stripe_secrets.NAMES}
    server = subprocess.Popen(
        [sys.executable, "-m", "stripe_local.server", "--port", str(port)],
        cwd=ROOT,
        env={**env, "LOCAL_SECRETS_FILE": str(secrets_file), "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert "listening" in server.stdout.readline()
        deadline = time.monotonic() + 10
        while True:
            try:
                status = _balance_status(port, app_values["STRIPE_SECRET_KEY"])
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert status == 200
        assert _balance_status(port, "sk_test_local") == 401  # the old shipped key opens nothing
    finally:
        server.terminate()
        server.wait(timeout=10)
