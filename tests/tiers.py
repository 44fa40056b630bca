"""Test tiers: which tests are ``pure``, and the guard that keeps that word honest.

A ``pure`` test needs no database, no Redis, no Stripe server, no browser and no network: it
runs plain computation (the numpy modules, pricing, payload validation, the shared JS/Python
vectors). ``make test-fast`` (``pytest -m pure``) runs only these, in seconds; ``make test``
runs everything.

``PURE`` below lists them, by module or by test. A listed test that asks for the database fails
before it runs, and one that opens a socket fails at the connection (pytest-django already
refuses database access to tests without the ``db`` fixture), so a service cannot creep into
the fast tier unnoticed. Loaded by ``tests/conftest.py`` (``pytest_plugins``).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A module path (every test in it) or a test's node id without parameters.
PURE: tuple[str, ...] = (
    "tests/js/test_node.py",
    "tests/marketplace/test_charts.py",
    "tests/marketplace/test_compose.py",
    "tests/marketplace/test_lifecycle.py::test_happy_path_is_allowed_step_by_step",
    "tests/marketplace/test_lifecycle.py::test_cancel_and_fail_from_every_non_final_status",
    "tests/marketplace/test_lifecycle.py::test_final_statuses_have_no_exit",
    "tests/marketplace/test_lifecycle.py::test_skips_and_backward_moves_are_refused",
    "tests/payments/test_money_properties.py::test_split_pay_conserves_every_cent",
    "tests/payments/test_money_properties.py::test_bps_rounding_is_within_half_a_cent",
    "tests/payments/test_money_properties.py::test_quote_parts_sum_to_total",
    "tests/payments/test_ledger.py::test_legs_refuse_an_unbalanced_transaction",
    "tests/payments/test_ledger.py::test_legs_refuse_float_amounts",
    "tests/payments/test_ledger.py::test_legs_merge_accounts_and_drop_zeros",
    "tests/payments/test_ledger.py::test_reversal_undoes_entries",
    "tests/payments/test_pricing.py",
    "tests/payments/test_pricing_attributes.py",
    "tests/tasks/test_forecast.py",
    "tests/marketplace/test_money_format.py",
    "tests/quality/test_assist.py",
    "tests/quality/test_assist_simulation.py",
    "tests/quality/test_attributes.py",
    "tests/quality/test_consensus.py",
    "tests/quality/test_crowd_simulation.py",
    "tests/quality/test_dawid_skene.py",
    "tests/quality/test_events.py",
    "tests/quality/test_gold_import.py::test_parse_coco",
    "tests/quality/test_masks.py",
    "tests/quality/test_gold_import.py::test_parse_cvat_video_xml_respects_outside",
    "tests/quality/test_gold_import.py::test_parse_mot_is_one_based_and_skips_ignored_rows",
    "tests/quality/test_gold_import.py::test_garbage_is_refused_with_a_reason",
    "tests/quality/test_scoring.py",
    "tests/quality/test_tracks.py",
    "tests/quality/test_trust_fraud_policy.py",
    "tests/tasks/test_exports.py",
    "tests/tasks/test_exports_attributes.py",
    "tests/tasks/test_exports_streaming.py",
    "tests/tasks/test_interpolation.py",
    "tests/tasks/test_proposal_sources.py",
    "tests/tasks/test_rle.py",
    "tests/tasks/test_mask_validation.py",
    "tests/tasks/test_slot_plan.py",
    "tests/tasks/test_submit_validation.py",
    "tests/tasks/test_attributes_validation.py",
    "tests/tasks/test_synthetic.py",
    "tests/tasks/test_tracking.py",
    "tests/tasks/test_vectors.py",
    "tests/tasks/test_video.py",
    "tests/tasks/test_video_span.py",
    "tests/tasks/test_video_features.py",
    "tests/staff/test_no_outside_hosts.py::test_the_scan_finds_outside_hosts_in_every_form",
    "tests/staff/test_no_outside_hosts.py::test_no_template_or_static_file_references_an_outside_host",
    "tests/test_architecture.py",
    "tests/test_tiers.py",
)

# Fixtures that reach the database or a live server.
SERVICE_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
        "live_server",
        "celery_worker_process",
    }
)


class PureTestUsedNetwork(RuntimeError):
    """A test marked pure opened a network connection."""


def is_pure(nodeid: str) -> bool:
    """Whether the test ``nodeid`` (``path::name[params]``) is listed in ``PURE``."""
    module, _, name = nodeid.partition("::")
    return module in PURE or f"{module}::{name.split('[', 1)[0]}" in PURE


def impurity(fixturenames: list[str], has_db_marker: bool) -> str | None:
    """Why a pure test may not run as declared, or None when it may."""
    used = sorted(SERVICE_FIXTURES & set(fixturenames))
    if has_db_marker or used:
        what = ", ".join(used) if used else "the django_db marker"
        return f"a pure test may not use the database or a live server ({what}): unlist it"
    return None


@contextmanager
def no_network() -> Iterator[None]:
    """Every socket connection in this block raises ``PureTestUsedNetwork``."""
    real = socket.socket.connect, socket.socket.connect_ex

    def refuse(sock, address, *args, **kwargs):
        raise PureTestUsedNetwork(f"a pure test connected to {address!r}; unlist it from PURE")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex = real


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if is_pure(item.nodeid):
            item.add_marker(pytest.mark.pure)


@pytest.fixture(autouse=True)
def _pure_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("pure") is None:
        yield
        return
    has_db_marker = request.node.get_closest_marker("django_db") is not None
    reason = impurity(request.fixturenames, has_db_marker)
    if reason:
        pytest.fail(reason)
    with no_network():
        yield
