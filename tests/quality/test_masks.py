"""Mask overlap and consensus (quality.masks): vote, STAPLE, instances."""

from __future__ import annotations

import numpy as np
import pytest

from quality import masks as qm


def _disc(h=60, w=80, cy=30, cx=40, r=15):
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 < r * r


def test_iou_and_dice():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:2, :2] = True  # 4 px
    b[:2, :] = True  # 8 px
    assert qm.iou(a, b) == pytest.approx(0.5)
    assert qm.dice(a, b) == pytest.approx(2 * 4 / 12)
    assert qm.iou(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == 1.0
    overlap = qm.per_class({"road": a}, {"road": b, "car": a})
    assert overlap.iou == {"car": 0.0, "road": pytest.approx(0.5)}
    assert overlap.mean_dice == pytest.approx((0.0 + 2 / 3) / 2)


def test_weighted_vote_follows_trust_and_reports_agreement():
    a, b = _disc(cx=35), _disc(cx=45)
    fused = qm.weighted_vote([a, a, b], [1, 1, 1])
    assert (fused.mask == a).all()
    trusted = qm.weighted_vote([a, a, b], [0.1, 0.1, 1.0])
    assert (trusted.mask == b).all()
    assert fused.agreement < 1.0
    assert qm.weighted_vote([a, a, a]).agreement == 1.0
    with pytest.raises(ValueError):
        qm.weighted_vote([a, b], [0, 0])


def _crowd(seed=0):
    rng = np.random.default_rng(seed)
    truth = _disc(120, 160, 60, 80, 35)
    raters = []
    for k in range(4):
        m = truth ^ (rng.random(truth.shape) < 0.03 * (k + 1))
        raters.append(m)
    raters.append(rng.random(truth.shape) < 0.4)  # a spammer
    return truth, raters


def _reference_staple(raters, max_iter=1000):
    """ITK's STAPLEImageFilter iteration written per pixel (slow, plain): the semantics."""
    d = np.asarray(raters, dtype=np.float64).reshape(len(raters), -1)
    w = d.mean(axis=0)
    g = w.mean()
    last = None
    for _ in range(max_iter):
        p = (d * w).sum(1) / w.sum()
        q = ((1 - d) * (1 - w)).sum(1) / (1 - w).sum()
        a = np.prod(np.where(d == 1, p[:, None], 1 - p[:, None]), axis=0)
        b = np.prod(np.where(d == 1, 1 - q[:, None], q[:, None]), axis=0)
        w = g * a / (g * a + (1 - g) * b)
        moved = last is None or ((p - last[0]) ** 2 > 1e-14).any()
        if not moved and ((q - last[1]) ** 2 <= 1e-14).all():
            break
        last = (p, q)
    return w.reshape(np.shape(raters[0])), p, q


def test_staple_equals_the_per_pixel_iteration_and_finds_the_spammer():
    truth, raters = _crowd()
    fused = qm.staple(raters)
    ref_w, ref_p, ref_q = _reference_staple(raters)
    assert np.abs(fused.probability - ref_w).max() < 1e-6
    assert np.allclose(fused.sensitivity, ref_p) and np.allclose(fused.specificity, ref_q)
    # the spammer's sensitivity+specificity is near chance; the careful raters' near 2
    youden = np.array(fused.sensitivity) + np.array(fused.specificity)
    assert youden[-1] < 1.2 and (youden[:4] > 1.7).all()
    assert qm.dice(fused.mask, truth) > max(qm.dice(m, truth) for m in raters)


def test_staple_spatial_prior_cleans_salt_noise():
    truth, raters = _crowd(1)
    plain = qm.dice(qm.staple(raters).mask, truth)
    spatial = qm.dice(qm.staple(raters, spatial_prior=True).mask, truth)
    assert spatial >= plain
    assert spatial > 0.99


def test_fuse_picks_the_method_and_refuses_unknown():
    _, raters = _crowd()
    assert qm.fuse(raters, method="staple").iterations > 1
    assert qm.fuse(raters, method="vote").iterations == 0
    with pytest.raises(ValueError, match="unknown consensus method"):
        qm.fuse(raters, method="median")


def test_instance_consensus_matches_across_raters_and_drops_the_unsupported():
    car = _disc(cx=20, r=10)
    person = _disc(cx=60, r=8)
    ghost = _disc(cy=10, cx=70, r=4)
    raters = [
        [qm.Instance("car", car), qm.Instance("person", person)],
        [qm.Instance("person", np.roll(person, 1, axis=1)), qm.Instance("car", car)],
        [qm.Instance("car", np.roll(car, 1, axis=0)), qm.Instance("car", ghost)],
    ]
    out = qm.instance_consensus(raters, [1, 1, 1], method="vote")
    labels = sorted(o.label for o in out)
    assert labels == ["car", "person"]
    by = {o.label: o for o in out}
    assert by["car"].raters == (0, 1, 2) and qm.iou(by["car"].fused.mask, car) > 0.9
    assert by["person"].support == pytest.approx(2 / 3)
