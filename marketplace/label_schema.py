"""A job's attributes per class and its relation predicates: their schema and their values (pure).

The one home of both rules: what a requester may declare (``schema_errors``, called by the job
service on every write) and what a worker may give (``value_error``, called by
``tasks.annotations`` for every shape and keyframe). Knows nothing of Django.

``label_attributes`` maps a class to its attributes, in the order the workspace shows them::

    {"car": [{"name": "occluded", "type": "bool"},
             {"name": "colour", "type": "choice", "values": ["red", "blue"]},
             {"name": "speed", "type": "number", "min": 0, "max": 200}]}

``relation_predicates`` lists the predicates a relation may use: ``["rides", "holds"]``.

An attribute name is part of an error path (``boxes[0].attributes.colour``), so it is an
identifier: a letter, then letters, digits or underscores. Everything is bounded: the number of
attributes per class, of choice values, of predicates, and every text's length.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

KINDS = frozenset({"bbox", "polygon", "track"})  # the annotation types whose objects take them
ATTRIBUTE_TYPES = ("bool", "choice", "number")
ATTRIBUTES_PER_CLASS_MAX = 20
ATTRIBUTE_NAME_MAX_LENGTH = 40
CHOICE_VALUES_MAX = 50
CHOICE_VALUE_MAX_LENGTH = 60
NUMBER_LIMIT = 1e9
PREDICATES_MAX = 50
PREDICATE_MAX_LENGTH = 40

NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_KEYS = {
    "bool": {"name", "type"},
    "choice": {"name", "type", "values"},
    "number": {"name", "type", "min", "max"},
}


@dataclass(frozen=True)
class AttributeSpec:
    """One attribute of a class, as declared (``values`` for a choice, bounds for a number)."""

    name: str
    type: str
    values: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None

    def tolerance(self, truth: float) -> float:
        """How far a number may be from the known answer and still count as right: 5% of the
        declared range, or of the answer's size when the range is open."""
        if self.min is not None and self.max is not None:
            return 0.05 * (self.max - self.min)
        return 0.05 * max(abs(truth), 1.0)


Schema = Mapping[str, Mapping[str, AttributeSpec]]


def is_number(value: Any) -> bool:
    """A finite JSON number (not a boolean); an integer too large for a float is not one."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _text_problem(value: Any, max_length: int) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "must be non-empty text"
    if "\x00" in value:
        return "must not contain NUL characters"
    if len(value) > max_length:
        return f"must be at most {max_length} characters"
    return None


def _attribute_problems(spec: Any, where: str) -> list[str]:
    if not isinstance(spec, Mapping):
        return [f'{where}: must be an object {{"name", "type", ...}}.']
    name = spec.get("name")
    if (
        isinstance(name, str)
        and NAME_PATTERN.match(name)
        and len(name) <= ATTRIBUTE_NAME_MAX_LENGTH
    ):
        where = f"{where} ({name})"
    else:
        return [
            f"{where}: the name must be a letter then letters, digits or underscores, at most "
            f"{ATTRIBUTE_NAME_MAX_LENGTH} characters."
        ]
    kind = spec.get("type")
    if kind not in ATTRIBUTE_TYPES:
        return [f"{where}: the type must be one of {', '.join(ATTRIBUTE_TYPES)}."]
    problems = []
    unknown = sorted(str(k) for k in set(spec) - _KEYS[kind])
    if unknown:
        problems.append(f"{where}: unknown keys for a {kind}: {', '.join(unknown)}.")
    if kind == "choice":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            problems.append(f"{where}: a choice needs a non-empty list of values.")
        elif len(values) > CHOICE_VALUES_MAX:
            problems.append(f"{where}: at most {CHOICE_VALUES_MAX} values.")
        else:
            for v in values:
                bad = _text_problem(v, CHOICE_VALUE_MAX_LENGTH)
                if bad:
                    problems.append(f"{where}: every value {bad}.")
                    break
            else:
                if len(set(values)) != len(values):
                    problems.append(f"{where}: the values must be unique.")
    if kind == "number":
        lo, hi = spec.get("min"), spec.get("max")
        for key, bound in (("min", lo), ("max", hi)):
            if bound is not None and not (is_number(bound) and abs(bound) <= NUMBER_LIMIT):
                problems.append(f"{where}: {key} must be a number within ±{NUMBER_LIMIT:g}.")
        if is_number(lo) and is_number(hi) and lo >= hi:
            problems.append(f"{where}: min must be below max.")
    return problems


def attributes_errors(label_attributes: Any, classes: Sequence[str]) -> list[str]:
    """What is wrong with a job's ``label_attributes`` for its ``classes`` (empty: nothing)."""
    if not isinstance(label_attributes, Mapping):
        return ['Must be an object mapping a class to its attributes: {"car": [...]}.']
    problems: list[str] = []
    for cls, specs in label_attributes.items():
        if cls not in classes:
            problems.append(f"{str(cls)[:40]!r} is not one of the job's classes.")
            continue
        if not isinstance(specs, list):
            problems.append(f"{cls}: must be a list of attributes.")
            continue
        if len(specs) > ATTRIBUTES_PER_CLASS_MAX:
            problems.append(f"{cls}: at most {ATTRIBUTES_PER_CLASS_MAX} attributes per class.")
            continue
        names = []
        for k, spec in enumerate(specs):
            problems += _attribute_problems(spec, f"{cls}: attribute {k + 1}")
            if isinstance(spec, Mapping):
                names.append(spec.get("name"))
        if len(set(map(str, names))) != len(names):
            problems.append(f"{cls}: attribute names must be unique.")
    return problems


def predicates_errors(predicates: Any) -> list[str]:
    """What is wrong with a job's ``relation_predicates`` (empty: nothing)."""
    if not isinstance(predicates, list):
        return ["Must be a list of predicates."]
    if len(predicates) > PREDICATES_MAX:
        return [f"Name at most {PREDICATES_MAX} predicates."]
    for p in predicates:
        bad = _text_problem(p, PREDICATE_MAX_LENGTH)
        if bad:
            return [f"Every predicate {bad}."]
    if len(set(predicates)) != len(predicates):
        return ["Predicates must be unique."]
    return []


def parse(label_attributes: Mapping[str, Sequence[Mapping[str, Any]]] | None) -> Schema:
    """The declared attributes as specs, per class then name (the input is already valid)."""
    out: dict[str, dict[str, AttributeSpec]] = {}
    for cls, specs in (label_attributes or {}).items():
        out[cls] = {
            s["name"]: AttributeSpec(
                name=s["name"],
                type=s["type"],
                values=tuple(s.get("values") or ()),
                min=None if s.get("min") is None else float(s["min"]),
                max=None if s.get("max") is None else float(s["max"]),
            )
            for s in specs
        }
    return out


def value_error(spec: AttributeSpec, value: Any) -> str | None:
    """Why ``value`` is not a value of ``spec`` (None: it is)."""
    if spec.type == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    if spec.type == "choice":
        if isinstance(value, str) and value in spec.values:
            return None
        return f"must be one of: {', '.join(spec.values)}"
    if not is_number(value):
        return "must be a number"
    if spec.min is not None and value < spec.min:
        return f"must be at least {spec.min:g}"
    if spec.max is not None and value > spec.max:
        return f"must be at most {spec.max:g}"
    return None


def describe(label_attributes: Mapping[str, Sequence[Mapping[str, Any]]] | None) -> str:
    """The declared attributes for people: ``car: occluded (yes/no), colour (red / blue), speed
    (number 0 to 200)``."""

    def one(spec: Mapping[str, Any]) -> str:
        if spec.get("type") == "bool":
            return f"{spec['name']} (yes/no)"
        if spec.get("type") == "choice":
            return f"{spec['name']} ({' / '.join(map(str, spec.get('values') or ()))})"
        lo, hi = spec.get("min"), spec.get("max")
        if lo is None and hi is None:
            return f"{spec['name']} (number)"
        if hi is None:
            return f"{spec['name']} (number from {lo:g})"
        if lo is None:
            return f"{spec['name']} (number up to {hi:g})"
        return f"{spec['name']} (number {lo:g} to {hi:g})"

    return "; ".join(
        f"{cls}: {', '.join(one(s) for s in specs)}"
        for cls, specs in (label_attributes or {}).items()
        if specs
    )


def asked_per_object(schema: Schema, classes: Sequence[str]) -> float:
    """How many attributes one object is asked for, on average over the job's classes (the
    pricing feature): a class without attributes asks none."""
    if not classes:
        return 0.0
    return sum(len(schema.get(c, {})) for c in classes) / len(classes)
