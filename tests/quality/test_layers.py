"""Quality sits above tasks and payments: they learn of trust through the seam quality installs,
and the modules that used to reach up into quality no longer do."""

import ast
from pathlib import Path

import pytest

from payments import selectors as trust_seam
from quality import services
from quality.selectors import PRIOR_TRUST
from quality.selectors import worker_trust as quality_trust
from quality.trust import GOLD
from tasks import work_selectors
from tests.factories import WorkerFactory

ROOT = Path(__file__).resolve().parents[2]

# Modules of the lower apps that once imported quality (some inside functions, to dodge a cycle).
LOWER = [
    "tasks/claiming.py",
    "tasks/reviewing.py",
    "tasks/budget.py",
    "tasks/work_selectors.py",
    "tasks/signals.py",
    "payments/selectors.py",
    "payments/posting.py",
    "payments/escrow.py",
    "payments/work.py",
    "tasks/paying.py",
]


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, whether the import is inside a function) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    nested = {
        id(node)
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(fn)
    }
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, id(node) in nested) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            out.append((module, id(node) in nested))
    return out


@pytest.mark.parametrize("module", LOWER)
def test_lower_apps_do_not_import_quality(module):
    upward = [m for m, _ in _imports(ROOT / module) if m.split(".")[0] == "quality"]
    assert upward == [], f"{module} imports {upward}"


@pytest.mark.parametrize("path", sorted((ROOT / "quality/services").glob("*.py")), ids=str)
def test_quality_services_have_no_function_level_imports(path):
    assert [m for m, inside in _imports(path) if inside] == []


@pytest.mark.django_db
def test_pay_and_claim_read_quality_trust_through_the_seam():
    worker = WorkerFactory()
    # A new worker: the prior, quality's value (not the seam's own default).
    assert PRIOR_TRUST != trust_seam.DEFAULT_TRUST
    assert work_selectors.prior_trust() == PRIOR_TRUST
    assert trust_seam.worker_trust(worker=worker, annotation_type="bbox") == PRIOR_TRUST
    for _ in range(4):
        services.trust_record(worker=worker, annotation_type="bbox", kind=GOLD, score=0.0)
    low = quality_trust(worker=worker, annotation_type="bbox")
    assert low < PRIOR_TRUST
    assert trust_seam.worker_trust(worker=worker, annotation_type="bbox") == low
