"""Whose word moves a worker's platform-wide trust, and whose only their standing. Pure.

Read this before changing anything: platform-wide trust (``WorkerTrust``, per annotation type)
gates claiming on every job, sets the pay multiplier and suspends a worker from the type
everywhere. A requester controls three kinds of evidence about a worker — the gold answers they
supply for their job, the answers they give in the review queue, and their rejections — and a
malicious or careless requester must not be able to sink honest workers with them. So:

- **Platform evidence** counts platform-wide at once: agreement with the other annotators of a
  microtask (consensus), gold an admin made, an admin's review answer, an admin's decision on a
  rejection (upholding a requester's dispute, denying a worker's appeal, rejecting directly). The
  qualification test is the platform's own gold too; it gates through ``Qualification``.
- **Requester evidence** counts on that requester's jobs: results against the requester's gold,
  their review verdicts and their rejections (also once validated or confirmed) go into the
  worker's *standing* with that requester (one row per worker, requester and annotation type, the
  same Beta model as trust). A standing that falls below the suspension bar
  (:func:`excluded_by_standing`) keeps the worker from that requester's jobs of that type; nothing
  else. Platform evidence on a requester's jobs (an admin's gold there) stays out of the standing:
  it is not the requester's word, and is counted once, platform-wide.
- It also counts platform-wide once **validated**:
  - a requester's gold answer, once trusted workers' answers agree with it
    (:func:`answer_verdict` gives ``VALIDATED``), or an admin validates it; the results scored
    against it before that moment are then counted too. When trusted workers disagree with it
    (``DISPUTED``) an admin decides; a gold answer the admin refuses counts nowhere, and the
    standing evidence scored against it is voided;
  - a requester's review answer, by the same rule over the trusted annotators of that microtask;
  - a requester's rejection, when the rejected work disagrees with a consensus that trusted
    workers agree on (:func:`rejection_confirmed`), or its gold answer is validated and the work
    failed it, or an admin confirms it.

A *trusted* worker (:func:`is_validator`) has platform trust of at least
``validator_min_trust`` (above the prior a new worker starts with, so only earned trust counts)
and is not suspended from the type. Their own pending results never count towards their trust
until the answer is validated, so the rule cannot bootstrap itself from the requester's word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from . import trust as trust_mod


class Source(StrEnum):
    """Who stands behind a piece of evidence."""

    PLATFORM = "platform"  # consensus agreement, admin-made gold, the qualification test
    ADMIN = "admin"  # an admin's review answer or decision on a rejection
    REQUESTER = "requester"  # a requester's gold, review answer or rejection


# The requester's word: the kinds of evidence a standing is made of (``StandingEvidence.kind``).
REQUESTER_KINDS = (trust_mod.GOLD, trust_mod.REVIEW, trust_mod.REJECTION)


class Verdict(StrEnum):
    """What trusted workers' answers say about a known answer (gold or a review answer)."""

    PENDING = "pending"  # not enough trusted workers have answered yet
    VALIDATED = "validated"  # trusted workers agree with it
    DISPUTED = "disputed"  # trusted workers disagree with it: an admin decides


@dataclass(frozen=True)
class ValidationParams:
    # Platform trust a worker needs for their answers to validate someone else's: above the
    # prior (0.75), so a brand-new account cannot validate anything.
    validator_min_trust: float = 0.8
    # Trusted answers needed on one side before a verdict, and the share of the trusted
    # answers that side must hold.
    min_agreeing: int = 2
    agree_share: float = 2 / 3


DEFAULT_VALIDATION = ValidationParams()


@dataclass(frozen=True)
class Check:
    """One worker's answer compared with a known answer (or with the consensus)."""

    trust: float  # the worker's platform trust for the type
    suspended: bool
    agrees: bool  # passed the gold / agreed with the consensus


def is_validator(trust: float, suspended: bool, params: ValidationParams = DEFAULT_VALIDATION):
    """Whether a worker's answer may validate a known answer or a consensus."""
    return not suspended and trust >= params.validator_min_trust


def answer_verdict(
    checks: Sequence[Check], params: ValidationParams = DEFAULT_VALIDATION
) -> Verdict:
    """What trusted workers' answers say about a known answer; untrusted answers do not vote."""
    trusted = [c for c in checks if is_validator(c.trust, c.suspended, params)]
    agree = sum(1 for c in trusted if c.agrees)
    disagree = len(trusted) - agree
    if agree >= params.min_agreeing and agree >= params.agree_share * len(trusted):
        return Verdict.VALIDATED
    if disagree >= params.min_agreeing and disagree >= params.agree_share * len(trusted):
        return Verdict.DISPUTED
    return Verdict.PENDING


def rejection_confirmed(
    *,
    rejected_agreement: float | None,
    agreement_threshold: float,
    others: Sequence[Check],
    params: ValidationParams = DEFAULT_VALIDATION,
) -> bool:
    """A rejection agrees with consensus: the rejected work disagrees with a consensus that the
    microtask's trusted other annotators agree with (``others[i].agrees``: their agreement with
    it reached the threshold)."""
    if rejected_agreement is None or rejected_agreement >= agreement_threshold:
        return False
    return answer_verdict(others, params) == Verdict.VALIDATED


def counts_platform_wide(source: Source, *, validated: bool) -> bool:
    """The rule in one line: the platform's and admins' word at once, a requester's once
    validated."""
    return source != Source.REQUESTER or validated


def excluded_by_standing(
    estimate: trust_mod.TrustEstimate, params: trust_mod.TrustParams = trust_mod.DEFAULT_PARAMS
) -> bool:
    """A standing this low keeps the worker from that requester's jobs of the type: the same
    bar (and the same amount of evidence) as a platform suspension, applied to one requester."""
    return trust_mod.should_suspend(estimate, params)
