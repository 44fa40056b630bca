"""Pricing and money arithmetic (pure: no Django, no database).

Every amount of money is an ``int`` of minor units (cents). Rates are integer basis points
(1 bp = 0.01 %) so that money never passes through a float; the only floats are the model's
*coefficients* (seconds, cents per frame·object), and every float → money conversion goes
through :func:`round_half_up` exactly once.

The model (``/work/shared/DESIGN.md``, calibrated by :func:`calibration_factor`)::

    complexity       = clamp(1 + a·motion + b·clutter [+ d·log2(boundary / ref)
                             + e·log2(area / area_ref)], c_min, c_max)
    expected_seconds = t0[type] + units * t_obj[type] * complexity
                       + frames * objects * attributes * t_attribute
                       + frames * relations * t_relation
                       + track_events * EVENT_MARK_FRAMES * t_obj[event] * complexity
    price            = max((base[type] * units * complexity
                            + base_attribute * frames * objects * attributes
                            + base_relation * frames * relations
                            + base[event] * EVENT_MARK_FRAMES * track_events * complexity)
                           * rate_factor,
                           floor_hourly * expected_seconds / 3600)
    units            = frames * objects                          (boxes, polygons, tracks)
                     = frames + EVENT_MARK_FRAMES * events        (events: watch, then mark)

where ``attributes`` is the number of attributes asked per object (the job's schema, averaged
over its classes) and ``relations`` the relations expected per annotated frame: giving a value
or linking two objects is work of its own, not a harder box, so it is not multiplied by the
frame's complexity. ``track_events`` are the events a track job asks to mark on its tracks (the
job's event labels): the tracks are already watched frame by frame, so each event adds only its
marking, priced as an event job's marking is. Measured time calibrates it like the rest
(:func:`calibration_factor`).

Worker pay = price * trust multiplier * credit (+ fair-pay top-up); the platform fee is on top
of pay and paid by the requester. A replica slot reserves the *highest* pay it could cost
(highest multiplier, full credit) plus the fee on it, so that approving never needs more money
than was reserved (the fair-pay top-up aside, see ``payments.work.work_pay``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction

BPS = 10_000  # basis points in 1
DEFAULT_EVENT_BASE = 0.3  # cents per event frame-unit (see ``PricingPolicyData.base``)
DEFAULT_EVENT_T_OBJ = 1.5  # seconds per event frame-unit (see ``PricingPolicyData.t_obj``)


def round_half_up(value: Fraction | float | int) -> int:
    """Round to the nearest integer, halves away from zero (the only rounding rule we use)."""
    value = Fraction(value)
    if value >= 0:
        return math.floor(value + Fraction(1, 2))
    return -math.floor(-value + Fraction(1, 2))


def bps_of(amount: int, bps: int) -> int:
    """``amount * bps / 10000`` rounded half up, exactly (integer arithmetic only)."""
    return round_half_up(Fraction(amount * bps, BPS))


def credit_bps(credit: float) -> int:
    """A partial-credit fraction in [0, 1] as basis points (clamped)."""
    if credit != credit:  # NaN
        raise ValueError("credit is not a number")
    return max(0, min(BPS, round_half_up(Fraction(credit) * BPS)))


@dataclass(frozen=True)
class TrustTier:
    """Workers whose trust is ``>= min_trust`` get ``multiplier_bps`` (the highest tier wins)."""

    min_trust: float
    multiplier_bps: int
    name: str = ""


DEFAULT_TIERS: tuple[TrustTier, ...] = (
    TrustTier(0.0, 8_000, "probation"),
    TrustTier(0.5, 10_000, "standard"),
    TrustTier(0.8, 11_000, "trusted"),
    TrustTier(0.93, 12_000, "expert"),
)


@dataclass(frozen=True)
class PricingPolicyData:
    """A pricing policy's coefficients, as plain data (see ``payments.models.PricingPolicy``)."""

    version: int = 0
    currency: str = "usd"
    # cents per frame·object at complexity 1, by annotation type
    base: Mapping[str, float] = field(
        default_factory=lambda: {
            "bbox": 0.8,
            "track": 0.5,
            "classify": 0.4,
            "polygon": 1.6,
            "event": DEFAULT_EVENT_BASE,
            "mask": 2.4,
        }
    )
    # seconds of fixed overhead per microtask, by type
    t0: Mapping[str, float] = field(
        default_factory=lambda: {
            "bbox": 20.0,
            "track": 30.0,
            "classify": 10.0,
            "polygon": 25.0,
            "event": 20.0,
            "mask": 30.0,
        }
    )
    # seconds per frame·object at complexity 1, by type (a mask of the reference boundary
    # length: brushing an object takes about 1.5x tracing its polygon)
    t_obj: Mapping[str, float] = field(
        default_factory=lambda: {
            "bbox": 4.0,
            "track": 2.5,
            "classify": 2.0,
            "polygon": 9.0,
            "event": DEFAULT_EVENT_T_OBJ,
            "mask": 14.0,
        }
    )
    # The complexity coefficients (see :func:`complexity`): ingestion stores, and pricing
    # multiplies by, the one value they give.
    motion_coef: float = 25.0  # a
    clutter_coef: float = 2.0  # b
    # Masks: the mean boundary length of one object, in pixels (``tasks.features.mask_content``)
    # against a reference object (~120 x 120 px), on a log scale: twice the edge to paint adds d.
    boundary_coef: float = 0.5  # d
    boundary_ref: float = 480.0
    # ... and its mean area, in pixels, against the same reference object (120 x 120 px): the
    # brush covers the inside, and the fill tool does most of it, so area weighs far less than
    # the edge — twice the area adds e. Both are corrected on measured time like the rest.
    area_coef: float = 0.15  # e
    area_ref: float = 14_400.0
    complexity_min: float = 0.75
    complexity_max: float = 3.0
    floor_hourly: int = 1_200  # minor units per hour, everywhere
    country_floors: Mapping[str, int] = field(default_factory=dict)  # ISO-2 → higher floors
    platform_fee_bps: int = 2_000
    tiers: Sequence[TrustTier] = DEFAULT_TIERS
    # Expected share of the (overlap_max - overlap_min) extra replicas dynamic overlap adds.
    extra_replica_rate: float = 0.1
    # Attributes and relations (the same for every type that takes them): seconds and cents per
    # attribute value given on one object on one frame, and per relation drawn. Not yet fields
    # of a stored policy: these defaults hold until measured work calibrates them.
    t_attribute: float = 1.5
    base_attribute: float = 0.25
    t_relation: float = 4.0
    base_relation: float = 0.6

    @property
    def max_multiplier_bps(self) -> int:
        return max(t.multiplier_bps for t in self.tiers)

    def floor_for(self, country: str) -> int:
        """Hourly floor for a worker in ``country``: the base floor, raised where local law is."""
        return max(self.floor_hourly, int(self.country_floors.get((country or "").upper(), 0)))


# --- price of one microtask ------------------------------------------------------------------


@dataclass(frozen=True)
class TaskFeatures:
    annotation_type: str
    frames: int  # frames the worker annotates (keyframes for tracks and events)
    objects: int  # objects per frame; for events, the events expected in the microtask
    motion: float = 0.0
    clutter: float = 0.0
    boundary: float = 0.0  # masks: mean boundary pixels per object; 0 while unknown
    area: float = 0.0  # masks: mean pixels per object; 0 while unknown
    attributes: float = 0.0  # attributes asked per object (``label_schema.asked_per_object``)
    relations: float = 0.0  # relations expected per annotated frame
    # Tracks: a mask is painted on every keyframe of every object (a track job's track_masks).
    keyframe_masks: bool = False
    track_events: float = 0.0  # track jobs: events expected on the microtask's tracks


# Marking one event is worth this many frames of watching: finding both edges means scrubbing
# back and forth around each, then picking a label. A starting estimate, not a measurement:
# calibration on measured time (``calibration_factor`` per type and complexity bucket, applied
# in ``tasks.quoting``) corrects the scale once event work has been done.
EVENT_MARK_FRAMES = 8


def work_units(features: TaskFeatures) -> int:
    """The work a microtask asks for, in frame·objects (the ``units`` of the model above).

    Events are not "an object on every frame": the worker watches every frame once and marks
    each event, so the length and the number of events add instead of multiplying.
    """
    frames = max(1, features.frames)
    if features.annotation_type == "classify":
        return frames
    if features.annotation_type == "event":
        return frames + EVENT_MARK_FRAMES * max(0, features.objects)
    return frames * max(1, features.objects)


def mask_work_units(features: TaskFeatures) -> int:
    """The masks a microtask asks for besides its own kind's work, in frame·objects: a track job
    with masks paints one per keyframe per object — the work of a mask job on those frames."""
    if features.annotation_type != "track" or not features.keyframe_masks:
        return 0
    return work_units(replace(features, annotation_type="mask"))


def task_complexity(features: TaskFeatures, *, policy: PricingPolicyData) -> float:
    """The complexity of a microtask's own kind of work (:func:`complexity`): the masks'
    ``boundary`` counts for a mask job only (a track's boxes do not get harder with the edge of
    the masks painted on its keyframes; those masks are priced with it, :func:`price_task`)."""
    return complexity(
        motion=features.motion,
        clutter=features.clutter,
        policy=policy,
        boundary=features.boundary if features.annotation_type == "mask" else 0.0,
        area=features.area if features.annotation_type == "mask" else 0.0,
    )


@dataclass(frozen=True)
class TaskPrice:
    complexity: float
    expected_seconds: float
    price: int  # minor units per replica at multiplier 1
    floor_bound: bool  # the fair-pay floor, not the per-object rate, set the price


def complexity(
    *,
    motion: float,
    clutter: float,
    policy: PricingPolicyData,
    boundary: float = 0.0,
    area: float = 0.0,
) -> float:
    """The one complexity score: stored on a microtask at ingestion, shown to its requester and
    multiplied into its price (``price_task``), all with the same policy's coefficients.

    ``motion`` is the mean absolute frame difference (0..1) and ``clutter`` the edge density
    (0..1) of the 96-pixel-wide grey frames (``tasks.features``). Calibration: a busy street
    scene measures about motion 0.04 and clutter 0.25, which the default coefficients map to
    1 + 25·0.04 + 2·0.25 = 2.5; a static, clean shot stays near 1. The lower clamp (0.75) is
    for a policy that recalibrates the intercept below 1.

    ``boundary`` (masks only; 0 while unknown) is the mean boundary length of one object in
    pixels, measured on the content (gold answers, consensus of first submissions): painting a
    mask is tracing its edge, so time grows with the edge, on a log scale — half the reference
    edge takes off ``d``, twice adds it. ``area`` (masks only; 0 while unknown), the mean pixels
    of one object, adds ``e`` per doubling against the reference object's: brushing the inside
    (or one click of the fill tool) costs far less than the edge.
    """
    raw = 1.0 + policy.motion_coef * motion + policy.clutter_coef * clutter
    if boundary > 0:
        raw += policy.boundary_coef * math.log2(boundary / policy.boundary_ref)
    if area > 0:
        raw += policy.area_coef * math.log2(area / policy.area_ref)
    return float(min(policy.complexity_max, max(policy.complexity_min, raw)))


def complexity_bucket(value: float) -> float:
    """Quarter-step buckets for calibrating expected time on measured work."""
    return round(value * 4) / 4


def price_task(
    features: TaskFeatures,
    *,
    policy: PricingPolicyData,
    time_factor: float = 1.0,
    rate_factor: float = 1.0,
) -> TaskPrice:
    """Price one replica of a microtask; ``time_factor`` is the measured/estimated time ratio.

    ``rate_factor`` scales the per-object rate for work that is a fraction of drawing from
    scratch (verify-and-correct: ``quality.assist.verify_price``); the floor on the expected
    seconds applies whatever it is.
    """
    kind = features.annotation_type
    if kind not in policy.base:
        raise ValueError(f"no pricing coefficients for annotation type {kind!r}")
    units = work_units(features)
    objects = 1 if kind == "classify" else max(1, features.objects)
    frames = max(1, features.frames)
    c = task_complexity(features, policy=policy)
    # Keyframe masks of a track job: a mask job's rate and time on those frame·objects, at the
    # complexity of painting them (the edge per object, ``boundary``, once measured).
    masks = mask_work_units(features)
    if masks and not ("mask" in policy.base and "mask" in policy.t_obj):
        raise ValueError("no pricing coefficients for masks on tracks (annotation type 'mask')")
    c_mask = (
        complexity(
            motion=features.motion,
            clutter=features.clutter,
            policy=policy,
            boundary=features.boundary,
            area=features.area,
        )
        if masks
        else 0.0
    )
    attributes = max(0.0, features.attributes)
    relations = max(0.0, features.relations)
    marks = EVENT_MARK_FRAMES * max(0.0, features.track_events) if kind == "track" else 0.0
    # A policy that names no event coefficients (one saved before events) marks at the defaults.
    t_mark = policy.t_obj.get("event", DEFAULT_EVENT_T_OBJ) if marks else 0.0
    base_mark = policy.base.get("event", DEFAULT_EVENT_BASE) if marks else 0.0
    seconds = (
        policy.t0[kind]
        + units * policy.t_obj[kind] * c
        + (masks * policy.t_obj["mask"] * c_mask if masks else 0.0)
        + frames * objects * attributes * policy.t_attribute
        + frames * relations * policy.t_relation
        + marks * t_mark * c
    ) * max(time_factor, 0)
    by_rate = round_half_up(
        (
            Fraction(policy.base[kind]) * units * Fraction(c)
            + (Fraction(policy.base["mask"]) * masks * Fraction(c_mask) if masks else 0)
            + Fraction(policy.base_attribute) * frames * objects * Fraction(attributes)
            + Fraction(policy.base_relation) * frames * Fraction(relations)
            + Fraction(base_mark) * Fraction(marks) * Fraction(c)
        )
        * Fraction(max(float(rate_factor), 0.0))
    )
    by_floor = floor_pay(seconds=seconds, hourly=policy.floor_hourly)
    return TaskPrice(
        complexity=c,
        expected_seconds=seconds,
        price=max(by_rate, by_floor, 1),
        floor_bound=by_floor > by_rate,
    )


def floor_pay(*, seconds: float, hourly: int) -> int:
    """The least pay for ``seconds`` of work at ``hourly`` minor units per hour (rounded up)."""
    if seconds <= 0:
        return 0
    return math.ceil(Fraction(seconds) * hourly / 3600)


def calibration_factor(samples: Iterable[tuple[float, float]], *, min_samples: int = 5) -> float:
    """Median of measured/estimated seconds over ``(measured, estimated)`` pairs; 1 if too few.

    Used per (annotation type, complexity bucket) so that, once real work exists, the floor is
    enforced on measured time rather than on the model's guess.
    """
    ratios = [m / e for m, e in samples if m and e and m > 0 and e > 0]
    if len(ratios) < min_samples:
        return 1.0
    return float(statistics.median(ratios))


# --- reservations, pay and fees --------------------------------------------------------------


def fee_on(pay: int, *, policy: PricingPolicyData) -> int:
    return bps_of(pay, policy.platform_fee_bps)


def multiplier_for(trust: float, *, policy: PricingPolicyData) -> int:
    """The trust tier multiplier (bps) of a worker with ``trust``."""
    eligible = [t for t in policy.tiers if trust >= t.min_trust]
    if not eligible:  # below every tier: the lowest one
        return min(policy.tiers, key=lambda t: t.min_trust).multiplier_bps
    return max(eligible, key=lambda t: t.min_trust).multiplier_bps


def max_pay(*, price: int, policy: PricingPolicyData) -> int:
    return bps_of(price, policy.max_multiplier_bps)


def slot_reservation(*, price: int, policy: PricingPolicyData) -> int:
    """What one replica slot holds in escrow: the highest pay it can cost plus the fee on it."""
    top = max_pay(price=price, policy=policy)
    return top + fee_on(top, policy=policy)


def task_pay(*, price: int, multiplier_bps: int, credit: float) -> int:
    """price * multiplier * credit, rounded half up once (never above price * multiplier)."""
    return round_half_up(Fraction(price * multiplier_bps * credit_bps(credit), BPS * BPS))


@dataclass(frozen=True)
class PaySplit:
    """How an approval's reservation is split; every field is minor units and they balance.

    ``reserved + from_escrow == pay + fee + back_to_escrow - subsidy`` (see :func:`split_pay`).
    """

    pay: int  # to the worker (pending), top-up included
    topup: int  # the part of ``pay`` added to reach the fair-pay floor
    fee: int  # platform fee, charged to the job
    back_to_escrow: int  # unused reservation returned to the job's available escrow
    from_escrow: int  # extra taken from the job's available escrow beyond the reservation
    subsidy: int  # what neither reservation nor escrow covered; the platform pays it


def split_pay(
    *,
    reserved: int,
    escrow_available: int,
    price: int,
    multiplier_bps: int,
    credit: float,
    floor_minimum: int,
    policy: PricingPolicyData,
) -> PaySplit:
    """Split an approval: worker pay (with fair-pay top-up), platform fee, the rest back.

    The base pay plus its fee must be covered by the reservation and the job's available escrow
    (the caller raises otherwise); a fair-pay top-up beyond both is paid by the platform (it
    comes out of platform revenue), so a worker is never paid below the floor because a quote
    was wrong, and the job is never charged past its escrow.
    """
    if reserved < 0 or escrow_available < 0 or price < 0:
        raise ValueError("amounts must be non-negative")
    base = task_pay(price=price, multiplier_bps=multiplier_bps, credit=credit)
    topup = max(0, floor_minimum - base) if credit_bps(credit) > 0 else 0
    pay = base + topup
    fee = fee_on(pay, policy=policy)
    needed = pay + fee
    if needed <= reserved:
        return PaySplit(pay, topup, fee, reserved - needed, 0, 0)
    extra = needed - reserved
    from_escrow = min(extra, escrow_available)
    return PaySplit(pay, topup, fee, 0, from_escrow, extra - from_escrow)


def base_cost_covered(
    *,
    reserved: int,
    escrow_available: int,
    price: int,
    multiplier_bps: int,
    credit: float,
    policy: PricingPolicyData,
) -> bool:
    """Whether the reservation plus available escrow pays the base pay and its fee."""
    base = task_pay(price=price, multiplier_bps=multiplier_bps, credit=credit)
    return base + fee_on(base, policy=policy) <= reserved + escrow_available


def bonus_split(*, amount: int, policy: PricingPolicyData) -> tuple[int, int]:
    """A bonus of ``amount`` to the worker costs the job ``amount + fee``; returns (amount, fee)."""
    if amount <= 0:
        raise ValueError("a bonus must be positive")
    return amount, fee_on(amount, policy=policy)


# --- quotes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    """What a job is expected to cost, and what must be funded to publish all of it."""

    currency: str
    microtasks: int
    replicas: float  # expected replicas per microtask
    work: int  # expected worker pay at the standard multiplier
    gold_overhead: int  # pay for gold microtasks mixed in at the job's gold rate
    platform_fee: int
    total: int  # work + gold_overhead + platform_fee
    headroom: int  # held for higher trust tiers; refunded when unspent
    fund_amount: int  # total + headroom: what funding escrow to publish everything needs
    expected_hours: float
    policy_version: int
    floor_hourly: int


def quote(
    *,
    prices: Sequence[int],
    expected_seconds: Sequence[float],
    overlap_min: int,
    overlap_max: int,
    gold_rate: float,
    policy: PricingPolicyData,
    currency: str | None = None,
) -> Quote:
    """Quote a job from its microtasks' per-replica prices (all exact integer arithmetic).

    Every amount is in minor units of the policy's currency, which must be the job's
    (``currency``): rates and floors written in cents of one currency mean nothing in another,
    and a zero-decimal currency would make them a hundred times off.
    """
    if currency is not None and currency != policy.currency:
        raise ValueError(f"the pricing policy is in {policy.currency}, not {currency}")
    if not 0 <= gold_rate < 1:
        raise ValueError("gold rate must be in [0, 1)")
    replicas = Fraction(overlap_min) + Fraction(policy.extra_replica_rate) * max(
        0, overlap_max - overlap_min
    )
    per_replica = sum(prices)
    work = round_half_up(per_replica * replicas)
    gold_share = Fraction(gold_rate) / (1 - Fraction(gold_rate)) if gold_rate else Fraction(0)
    gold = round_half_up(work * gold_share)
    fee = fee_on(work + gold, policy=policy)
    total = work + gold + fee
    # Escrow reserved per slot is the highest pay plus fee; fund that so nothing stalls.
    reservations = sum(slot_reservation(price=p, policy=policy) for p in prices)
    need = round_half_up(reservations * replicas * (1 + gold_share))
    headroom = max(0, need - total)
    hours = float(sum(expected_seconds)) * float(replicas) * float(1 + gold_share) / 3600
    return Quote(
        currency=policy.currency,
        microtasks=len(prices),
        replicas=float(replicas),
        work=work,
        gold_overhead=gold,
        platform_fee=fee,
        total=total,
        headroom=headroom,
        fund_amount=total + headroom,
        expected_hours=round(hours, 3),
        policy_version=policy.version,
        floor_hourly=policy.floor_hourly,
    )


def effective_hourly(*, pay: int, seconds: float) -> int | None:
    """Minor units per hour for ``pay`` over ``seconds`` of measured work (None without time)."""
    if not seconds or seconds <= 0:
        return None
    return round_half_up(Fraction(pay) * 3600 / Fraction(seconds))
