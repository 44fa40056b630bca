import numpy as np
import pytest

from quality.dawid_skene import aggregate, dawid_skene, majority_vote
from quality.simulator import BIASED, PRECISE, SLOPPY, SPAMMER, categorical_crowd, make_crowd


def test_dawid_skene_beats_majority_vote_on_a_crowd_with_spammers():
    crowd = make_crowd({PRECISE: 4, SLOPPY: 4, BIASED: 2, SPAMMER: 6}, seed=1)
    tasks, workers, labels, truth = categorical_crowd(
        n_tasks=3000, n_classes=4, workers=crowd, labels_per_task=5, seed=2
    )
    mv = majority_vote(tasks, workers, labels, n_classes=4)
    ds = dawid_skene(tasks, workers, labels, n_classes=4)
    mv_acc = (mv.labels == truth).mean()
    ds_acc = (ds.labels == truth).mean()
    assert ds_acc > mv_acc + 0.03
    # It also learns who the spammers are.
    spam = np.array([w.profile == SPAMMER for w in crowd])
    assert ds.worker_accuracy[spam].max() < ds.worker_accuracy[~spam].min()


def test_dawid_skene_recovers_a_worker_who_always_shifts_classes():
    # Worker 2 always answers (truth + 1) % 3: a consistent confusion DS can invert.
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 500)
    t = np.repeat(np.arange(500), 3)
    w = np.tile([0, 1, 2], 500)
    lab = np.stack(
        [truth, np.where(rng.random(500) < 0.6, truth, (truth + 1) % 3), (truth + 1) % 3], 1
    )
    ds = dawid_skene(t, w, lab.ravel(), n_classes=3)
    assert (ds.labels == truth).mean() > (majority_vote(t, w, lab.ravel()).labels == truth).mean()


def test_aggregate_falls_back_to_majority_vote_with_few_labels():
    agg = aggregate([0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2], [1, 1, 0, 2, 2, 2])
    assert agg.algorithm == "majority-vote-v1"
    assert agg.labels.tolist() == [1, 2]


def test_weighted_majority_vote_and_tasks_without_labels():
    mv = majority_vote(
        [0, 0, 0], [0, 1, 2], [1, 2, 2], n_tasks=2, worker_weights=np.array([5.0, 1, 1])
    )
    assert mv.labels.tolist() == [1, -1]


def test_rejects_inconsistent_input():
    with pytest.raises(ValueError):
        dawid_skene([0, 1], [0], [1, 1])
