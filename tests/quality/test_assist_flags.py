"""Recording the blind-accept fraud signal (quality.assist.blind_accept_test) as a flag."""

from __future__ import annotations

import pytest

from quality import assist, fraud
from quality.models import FraudFlag
from quality.services import fraud_flag_blind_accept, fraud_flag_resolve
from quality.trust import GOLD
from tests.factories import AdminFactory, AssignmentFactory, MicroTaskFactory

pytestmark = pytest.mark.django_db

SOURCE = assist.source_accuracy([assist.Comparison(GOLD, 700, 300)])  # ~70 % accurate


def _test(accepted: int, proposed: int = 100) -> assist.AcceptTest:
    return assist.blind_accept_test(accepted_unchanged=accepted, proposed=proposed, source=SOURCE)


def test_a_blind_acceptor_is_flagged_once_per_job_with_the_evidence():
    first = AssignmentFactory()
    flag = fraud_flag_blind_accept(assignment=first, test=_test(95))
    assert flag is not None
    assert (flag.kind, flag.worker_id, flag.job_id) == (
        fraud.BLIND_ACCEPT,
        first.worker_id,
        first.microtask.job_id,
    )
    assert flag.evidence["accepted_unchanged"] == 95 and flag.evidence["p_value"] < 1e-3
    # The same worker tips the test again on the same job: the open flag is updated.
    later = AssignmentFactory(
        worker=first.worker, microtask=MicroTaskFactory(video=first.microtask.video)
    )
    again = fraud_flag_blind_accept(assignment=later, test=_test(190, 200))
    assert again.pk == flag.pk and again.evidence["proposed_shapes"] == 200
    assert FraudFlag.objects.count() == 1


def test_an_honest_verifier_gets_no_flag():
    assert fraud_flag_blind_accept(assignment=AssignmentFactory(), test=_test(70)) is None
    assert FraudFlag.objects.count() == 0


def test_after_an_admin_judged_the_flag_a_new_one_can_be_raised():
    first = AssignmentFactory()
    flag = fraud_flag_blind_accept(assignment=first, test=_test(95))
    fraud_flag_resolve(flag_id=flag.pk, by=AdminFactory(), confirmed=False)
    later = AssignmentFactory(
        worker=first.worker, microtask=MicroTaskFactory(video=first.microtask.video)
    )
    new = fraud_flag_blind_accept(assignment=later, test=_test(99))
    assert new.pk != flag.pk and new.assignment_id == later.pk
