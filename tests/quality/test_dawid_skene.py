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


def _random_problem(seed: int, n_tasks: int = 2000, n_classes: int = 3):
    crowd = make_crowd({PRECISE: 5, SLOPPY: 5, BIASED: 3, SPAMMER: 4}, seed=seed)
    return categorical_crowd(
        n_tasks=n_tasks, n_classes=n_classes, workers=crowd, labels_per_task=3, seed=seed + 1
    )


@pytest.mark.parametrize("chunk", [1, 7, 256])
def test_chunked_em_gives_the_unchunked_result(chunk):
    tasks, workers, labels, _ = _random_problem(5)
    whole = dawid_skene(tasks, workers, labels, n_classes=3, chunk=10**9)
    # Blocks of a few tasks, from compact dtypes, with the labels out of task order.
    order = np.random.default_rng(6).permutation(tasks.size)
    parts = dawid_skene(
        tasks[order].astype(np.int32),
        workers[order].astype(np.int16),
        labels[order].astype(np.int8),
        n_classes=3,
        chunk=chunk,
    )
    assert parts.labels.tolist() == whole.labels.tolist()
    assert parts.iterations == whole.iterations
    np.testing.assert_allclose(parts.posteriors, whole.posteriors, atol=1e-5)
    np.testing.assert_allclose(parts.worker_accuracy, whole.worker_accuracy, atol=1e-6)
    assert parts.log_likelihood == pytest.approx(whole.log_likelihood, rel=1e-6)


def test_chunked_em_with_tasks_without_labels():
    tasks, workers, labels, _ = _random_problem(8, n_tasks=300)
    keep = tasks % 10 != 3  # every tenth task has no label
    whole = dawid_skene(tasks[keep], workers[keep], labels[keep], n_tasks=300, chunk=10**9)
    parts = dawid_skene(tasks[keep], workers[keep], labels[keep], n_tasks=300, chunk=16)
    assert (parts.labels[3::10] == -1).all()
    np.testing.assert_allclose(parts.posteriors[3::10], 1 / 3)
    assert parts.labels.tolist() == whole.labels.tolist()
    np.testing.assert_allclose(parts.posteriors, whole.posteriors, atol=1e-5)


def test_compact_inputs_are_not_widened():
    # The arrays are kept as given: a whole job's labels cost their own few bytes, no int64 copy.
    from quality.dawid_skene import _as_arrays

    t, w, lab = np.arange(4, dtype=np.int32), np.zeros(4, dtype=np.int32), np.ones(4, np.int8)
    out = _as_arrays(t, w, lab)
    assert [a.dtype for a in out] == [np.int32, np.int32, np.int8]
    assert all(np.shares_memory(a, b) for a, b in zip(out, (t, w, lab), strict=True))
