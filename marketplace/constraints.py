"""What a person reads when a database constraint refuses a change: the constraint's own
``violation_error_message``, never its name.

Every ``CheckConstraint`` and every conditional or expression ``UniqueConstraint`` of the project
carries a ``violation_error_message`` (Django's default, "Constraint “job_budget_non_negative” is
violated.", would show a model form's user, an admin or an API client an internal name;
``tests/marketplace/test_constraint_messages.py`` fails on one without). Unique constraints on
plain fields already read "… with this … already exists." This module finds the message of the
constraint an ``IntegrityError`` names, for the API's error handler.
"""

from __future__ import annotations

from functools import cache

from django.apps import apps
from django.db.models import BaseConstraint

FALLBACK = "This change conflicts with data already saved."


@cache
def _messages() -> dict[str, str]:
    found: dict[str, str] = {}
    for model in apps.get_models():
        for constraint in model._meta.constraints:
            if constraint.violation_error_message != BaseConstraint.default_violation_error_message:
                found[constraint.name] = str(constraint.violation_error_message)
    return found


def integrity_message(error: Exception) -> str:
    """A sentence for the constraint ``error`` (an ``IntegrityError``) names, or ``FALLBACK``."""
    text = str(error)
    # Longest names first: one name may contain another ("one_open_review" in a longer one).
    for name in sorted(_messages(), key=len, reverse=True):
        if name in text:
            return _messages()[name]
    return FALLBACK
