"""The pure tier keeps its word: a pure test reaches neither the database nor the network."""

from __future__ import annotations

import socket

import pytest
from django.db import connection

from tests.tiers import PURE, ROOT, PureTestUsedNetwork, impurity, is_pure


def test_this_test_is_marked_pure(request):
    assert request.node.get_closest_marker("pure") is not None


def test_a_pure_test_cannot_reach_the_database():
    with pytest.raises(RuntimeError, match="Database access not allowed"):
        connection.ensure_connection()


def test_a_pure_test_cannot_open_a_connection():
    with pytest.raises(PureTestUsedNetwork, match=r"127\.0\.0\.1"):
        socket.create_connection(("127.0.0.1", 6379), timeout=1)


def test_a_pure_test_asking_for_the_database_is_refused():
    assert impurity(["request", "db"], has_db_marker=False) is not None
    assert impurity(["live_server", "transactional_db"], has_db_marker=False) is not None
    assert impurity(["request"], has_db_marker=True) is not None
    assert impurity(["request", "monkeypatch", "tmp_path"], has_db_marker=False) is None


def test_listing_matches_modules_and_single_tests():
    assert is_pure("tests/tasks/test_vectors.py::test_payload_vector[bbox: x]")
    assert is_pure("tests/payments/test_money_properties.py::test_split_pay_conserves_every_cent")
    assert not is_pure(
        "tests/payments/test_money_properties.py::test_ledger_never_creates_or_loses_money"
    )
    assert not is_pure("tests/tasks/test_claim.py::test_anything")


def test_every_listed_test_exists():
    for entry in PURE:
        module, _, name = entry.partition("::")
        path = ROOT / module
        assert path.is_file(), entry
        assert not name or f"def {name}(" in path.read_text(), entry
