"""The pure rules of whose word moves platform-wide trust (``quality.standing``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from quality import standing, trust
from quality.standing import Check, Source, Verdict

TRUSTED, NEW = 0.86, 0.75


def checks(*pairs: tuple[float, bool], suspended: bool = False) -> list[Check]:
    return [Check(t, suspended, agrees) for t, agrees in pairs]


@pytest.mark.parametrize(
    ("answers", "verdict"),
    [
        ([], Verdict.PENDING),
        ([(TRUSTED, True)], Verdict.PENDING),  # one trusted answer is not enough
        ([(TRUSTED, True), (TRUSTED, True)], Verdict.VALIDATED),
        ([(TRUSTED, False), (TRUSTED, False)], Verdict.DISPUTED),
        ([(TRUSTED, True), (TRUSTED, True), (TRUSTED, False)], Verdict.VALIDATED),  # 2/3 agree
        ([(TRUSTED, True), (TRUSTED, True), (TRUSTED, False), (TRUSTED, False)], Verdict.PENDING),
        # New accounts, however many, do not vote: a requester cannot validate their own gold
        # with fresh sock puppets, nor dispute an honest answer with them.
        ([(NEW, True)] * 10, Verdict.PENDING),
        ([(NEW, False)] * 10 + [(TRUSTED, True), (TRUSTED, True)], Verdict.VALIDATED),
    ],
)
def test_answer_verdict_counts_trusted_answers_only(answers, verdict):
    assert standing.answer_verdict(checks(*answers)) == verdict


def test_suspended_workers_do_not_validate():
    assert standing.answer_verdict(checks((0.99, True), (0.99, True), suspended=True)) == (
        Verdict.PENDING
    )
    assert standing.is_validator(0.8, False) is True
    assert standing.is_validator(0.79, False) is False
    assert standing.is_validator(0.95, True) is False


def test_the_validator_bar_is_above_a_new_workers_prior():
    prior = trust.trust_estimate([], now=datetime(2026, 1, 1, tzinfo=UTC)).trust
    assert not standing.is_validator(prior, False)


@pytest.mark.parametrize(
    ("rejected", "others", "confirmed"),
    [
        (0.1, [(TRUSTED, True), (TRUSTED, True)], True),
        (0.9, [(TRUSTED, True), (TRUSTED, True)], False),  # the rejected work agreed
        (None, [(TRUSTED, True), (TRUSTED, True)], False),  # not part of the consensus
        (0.1, [(TRUSTED, True), (NEW, True)], False),  # one trusted voice is not consensus
        (0.1, [(TRUSTED, False), (TRUSTED, False)], False),  # nobody agrees with anybody
    ],
)
def test_a_rejection_is_confirmed_only_against_trusted_consensus(rejected, others, confirmed):
    assert (
        standing.rejection_confirmed(
            rejected_agreement=rejected, agreement_threshold=0.7, others=checks(*others)
        )
        is confirmed
    )


def test_counts_platform_wide():
    assert standing.counts_platform_wide(Source.PLATFORM, validated=False) is True
    assert standing.counts_platform_wide(Source.ADMIN, validated=False) is True
    assert standing.counts_platform_wide(Source.REQUESTER, validated=False) is False
    assert standing.counts_platform_wide(Source.REQUESTER, validated=True) is True


def test_exclusion_uses_the_suspension_bar_and_needs_enough_evidence():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    two = trust.trust_estimate([trust.Evidence("gold", 0.0, now)] * 2, now=now)
    three = trust.trust_estimate([trust.Evidence("rejection", 0.0, now)] * 3, now=now)
    assert not standing.excluded_by_standing(two)
    assert standing.excluded_by_standing(three)
    # A rejection weighs like a gold result; agreement half.
    assert trust.DEFAULT_PARAMS.weights[trust.REJECTION] == trust.DEFAULT_PARAMS.weights["gold"]
