"""Dawid-Skene aggregation of categorical labels by EM, vectorised. Pure numpy/scipy.

Labels are three parallel integer arrays (``tasks``, ``workers``, ``labels``), one entry per
label given. Each worker has a confusion matrix ``pi[w, true, given]``; each task a posterior over
its true class. EM alternates:

- M-step: ``pi[w, k, l] ∝ Σ_{labels of w with value l} T[task, k]`` and ``prior[k] = mean T[:, k]``;
- E-step: ``log T[t, k] = log prior[k] + Σ_{labels on t} log pi[w, k, l]``.

Both sums are one sparse-matrix product each: ``A`` (worker·class x task) counts who said what
on which task, so the M-step is ``A @ T`` and the E-step is ``Aᵀ @ log pi``. No Python loop runs
over labels, tasks or workers; an iteration costs a few passes over the label arrays.

Confusion rows are smoothed towards a diagonal prior (a Dirichlet pseudo-count), so a worker with
few labels is trusted like an average worker rather than as a perfect or a useless one. With too
few labels for EM to say anything (see :func:`aggregate`) the answer is the (weighted) majority
vote.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

ALGORITHM = "dawid-skene-v1"
MAJORITY_ALGORITHM = "majority-vote-v1"


@dataclass(frozen=True)
class Aggregation:
    """Per task: the chosen class and its posterior; per worker: estimated accuracy."""

    algorithm: str
    labels: np.ndarray  # (n_tasks,) chosen class; -1 for a task without labels
    posteriors: np.ndarray  # (n_tasks, n_classes)
    worker_accuracy: np.ndarray  # (n_workers,) expected P(label == truth)
    iterations: int = 0
    log_likelihood: float = float("nan")

    @property
    def confidence(self) -> np.ndarray:
        return self.posteriors.max(axis=1)


def _as_arrays(tasks, workers, labels):
    t = np.asarray(tasks, dtype=np.int64).ravel()
    w = np.asarray(workers, dtype=np.int64).ravel()
    lab = np.asarray(labels, dtype=np.int64).ravel()
    if not (t.shape == w.shape == lab.shape):
        raise ValueError("tasks, workers and labels must have the same length")
    if t.size and (t.min() < 0 or w.min() < 0 or lab.min() < 0):
        raise ValueError("task, worker and label indices must be non-negative")
    return t, w, lab


def majority_vote(
    tasks,
    workers,
    labels,
    *,
    n_tasks: int | None = None,
    n_workers: int | None = None,
    n_classes: int | None = None,
    worker_weights: np.ndarray | None = None,
) -> Aggregation:
    """(Weighted) majority vote per task; ties go to the smallest class index."""
    t, w, lab = _as_arrays(tasks, workers, labels)
    n_tasks = int(n_tasks if n_tasks is not None else (t.max() + 1 if t.size else 0))
    n_workers = int(n_workers if n_workers is not None else (w.max() + 1 if w.size else 0))
    n_classes = int(n_classes if n_classes is not None else (lab.max() + 1 if lab.size else 1))
    weight = np.ones(t.size) if worker_weights is None else np.asarray(worker_weights)[w]
    votes = np.bincount(t * n_classes + lab, weights=weight, minlength=n_tasks * n_classes)
    votes = votes.reshape(n_tasks, n_classes)
    total = votes.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        post = np.where(total > 0, votes / np.where(total > 0, total, 1), 1.0 / n_classes)
    chosen = np.where(total[:, 0] > 0, votes.argmax(axis=1), -1)
    agree = chosen[t] == lab
    hits = np.bincount(w, weights=agree, minlength=n_workers)
    seen = np.bincount(w, minlength=n_workers)
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = np.where(seen > 0, hits / np.where(seen > 0, seen, 1), np.nan)
    return Aggregation(MAJORITY_ALGORITHM, chosen, post, acc)


def dawid_skene(
    tasks,
    workers,
    labels,
    *,
    n_tasks: int | None = None,
    n_workers: int | None = None,
    n_classes: int | None = None,
    max_iter: int = 100,
    tol: float = 1e-6,
    smoothing: float = 0.01,
    prior_accuracy: float = 0.7,
) -> Aggregation:
    """Dawid-Skene EM, initialised from the majority vote.

    ``smoothing`` is the Dirichlet pseudo-count per confusion row (spread so the row's prior mean
    has ``prior_accuracy`` on the diagonal). ``tol`` is on the mean absolute change of the
    posteriors between iterations.
    """
    t, w, lab = _as_arrays(tasks, workers, labels)
    n_tasks = int(n_tasks if n_tasks is not None else (t.max() + 1 if t.size else 0))
    n_workers = int(n_workers if n_workers is not None else (w.max() + 1 if w.size else 0))
    n_classes = int(n_classes if n_classes is not None else (lab.max() + 1 if lab.size else 1))
    k = n_classes
    mv = majority_vote(t, w, lab, n_tasks=n_tasks, n_workers=n_workers, n_classes=k)
    post = mv.posteriors.copy()
    if t.size == 0:
        return Aggregation(ALGORITHM, mv.labels, post, mv.worker_accuracy)
    has_labels = np.bincount(t, minlength=n_tasks) > 0
    # A[(w, l), t] = number of times worker w gave label l on task t (almost always 0 or 1).
    a = sp.csr_matrix(
        (np.ones(t.size, dtype=np.float64), (w * k + lab, t)), shape=(n_workers * k, n_tasks)
    )
    a.sum_duplicates()
    at = a.T.tocsr()
    pseudo = np.full((k, k), smoothing * (1 - prior_accuracy) / max(k - 1, 1))
    np.fill_diagonal(pseudo, smoothing * prior_accuracy)
    log_lik = float("nan")
    it = 0
    while it < max_iter:
        it += 1
        # M-step: counts[w, l, k] = Σ T[t, k] over labels (w, l, t).
        counts = np.asarray(a @ post).reshape(n_workers, k, k)  # [w, given, true]
        counts = counts.transpose(0, 2, 1) + pseudo  # [w, true, given]
        pi = counts / counts.sum(axis=2, keepdims=True)
        prior = post[has_labels].mean(axis=0) + 1e-9
        prior /= prior.sum()
        # E-step: log T[t, k] = log prior[k] + Σ log pi[w, k, l].
        log_pi = np.log(pi).transpose(0, 2, 1).reshape(n_workers * k, k)  # [(w, given), true]
        log_post = np.asarray(at @ log_pi) + np.log(prior)
        top = log_post.max(axis=1, keepdims=True)
        new = np.exp(log_post - top)
        norm = new.sum(axis=1, keepdims=True)
        new /= norm
        new[~has_labels] = 1.0 / k
        log_lik = float((np.log(norm[:, 0]) + top[:, 0])[has_labels].sum())
        delta = float(np.abs(new - post).mean())
        post = new
        if delta < tol:
            break
    chosen = np.where(has_labels, post.argmax(axis=1), -1)
    # Expected accuracy of each worker under the final posteriors.
    correct = post[t, lab]
    hits = np.bincount(w, weights=correct, minlength=n_workers)
    seen = np.bincount(w, minlength=n_workers)
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = np.where(seen > 0, hits / np.where(seen > 0, seen, 1), np.nan)
    return Aggregation(ALGORITHM, chosen, post, acc, iterations=it, log_likelihood=log_lik)


def aggregate(
    tasks,
    workers,
    labels,
    *,
    n_tasks: int | None = None,
    n_workers: int | None = None,
    n_classes: int | None = None,
    min_tasks: int = 20,
    min_labels_per_worker: float = 3.0,
    worker_weights: np.ndarray | None = None,
) -> Aggregation:
    """Dawid-Skene when there are enough labels to estimate confusions, else majority vote.

    "Enough" means at least ``min_tasks`` labelled tasks and on average ``min_labels_per_worker``
    labels per worker; below that EM mostly fits noise.
    """
    t, w, lab = _as_arrays(tasks, workers, labels)
    n_labelled = int(np.unique(t).size)
    n_w = int(np.unique(w).size)
    if n_labelled < min_tasks or (n_w and t.size / n_w < min_labels_per_worker):
        return majority_vote(
            t,
            w,
            lab,
            n_tasks=n_tasks,
            n_workers=n_workers,
            n_classes=n_classes,
            worker_weights=worker_weights,
        )
    return dawid_skene(t, w, lab, n_tasks=n_tasks, n_workers=n_workers, n_classes=n_classes)
