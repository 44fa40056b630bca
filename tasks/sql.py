"""Named SQL statements kept in ``.sql`` files beside the code (``-- name: <name>`` headers)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    """Split ``text`` into ``{name: statement}`` at ``-- name:`` headers (comments kept)."""
    parts = _HEADER.split(text)
    return {
        name: body.strip().rstrip(";") for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }


@cache
def statements(filename: str) -> dict[str, str]:
    return parse((Path(__file__).resolve().parent / filename).read_text())


def statement(filename: str, name: str) -> str:
    return statements(filename)[name]
