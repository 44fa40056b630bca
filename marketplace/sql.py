"""Named SQL statements kept in ``.sql`` files beside the code (``-- name: <name>`` headers),
and a way to run the hot ones as server-side prepared statements.

Any app's hand-written SQL lives in a ``.sql`` file next to the module that runs it
(``tasks/claiming.sql``, ``payments/payouts.sql``) and is read through here:
``statement("tasks/claiming.sql", "claim_next")`` (paths from the project root)."""

from __future__ import annotations

import functools
import re
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
from django.db import connection

from marketplace.runtime import native_sql

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    """Split ``text`` into ``{name: statement}`` at ``-- name:`` headers, dropping comment lines
    (they would be sent to the server with every execution)."""
    parts = _HEADER.split(text)
    out = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.splitlines() if not line.lstrip().startswith("--")]
        out[name] = "\n".join(lines).strip().rstrip(";")
    return out


ROOT = Path(__file__).resolve().parent.parent


@cache
def statements(path: str) -> dict[str, str]:
    """Every statement of the ``.sql`` file at ``path`` (from the project root), by name."""
    return parse((ROOT / path).read_text())


def statement(path: str, name: str) -> str:
    return statements(path)[name]


def native() -> bool:
    """Whether the named statements can run here (``marketplace.runtime.native_sql``: PostgreSQL).
    Elsewhere — the embedded SQLite of ``make run`` — callers take their ORM twins (the claim
    path's are in ``tasks.portable``)."""
    return native_sql()


def fetch_prepared(sql: str, params: Any, *, many: bool = False) -> Any:
    """Run ``sql`` on Django's connection as a server-side prepared statement; fetch one row
    (or all rows with ``many``).

    Django's cursors bind parameters client-side and never prepare, so PostgreSQL would parse
    and plan the claim statement on every claim; on the hot path that costs as much as running
    it. This uses the same session (and so the caller's transaction), binding server-side.
    """
    # Errors become Django's (``OperationalError`` when the connection drops, so the request is
    # a 503 "retry" and the connection is marked unusable, as for any other query), and
    # ``connection.execute_wrapper`` hooks see the statement as they see Django's own.
    with connection.wrap_database_errors:
        connection.ensure_connection()
        raw = connection.connection
        if raw.prepare_threshold is None:
            # Django turns psycopg's automatic preparation off (None also refuses explicit
            # ``prepare=True``). A threshold no query reaches keeps it off for everything else.
            raw.prepare_threshold = 2**31 - 1
        with psycopg.Cursor(raw) as cur:

            def run(sql_: str, params_: Any, _many: bool, _context: dict) -> Any:
                cur.execute(sql_, params_, prepare=True)
                return cur.fetchall() if many else cur.fetchone()

            executor = run
            for wrapper in reversed(connection.execute_wrappers):
                executor = functools.partial(wrapper, executor)
            return executor(sql, params, False, {"connection": connection, "cursor": cur})
