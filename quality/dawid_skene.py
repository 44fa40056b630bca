"""Dawid-Skene aggregation of categorical labels by EM, vectorised. Pure numpy/scipy.

Labels are three parallel integer arrays (``tasks``, ``workers``, ``labels``), one entry per
label given. Each worker has a confusion matrix ``pi[w, true, given]``; each task a posterior over
its true class. EM alternates:

- M-step: ``pi[w, k, l] ∝ Σ_{labels of w with value l} T[task, k]`` and ``prior[k] = mean T[:, k]``;
- E-step: ``log T[t, k] = log prior[k] + sum over labels on t of log pi[w, k, l]``.

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
    has ``prior_accuracy`` on the diagonal). EM stops when the data log-likelihood per label
    improves by less than ``tol``. The iterations run in float32: posteriors need no more, and
    it halves the memory traffic that bounds the speed.
    """
    t, w, lab = _as_arrays(tasks, workers, labels)
    n_tasks = int(n_tasks if n_tasks is not None else (t.max() + 1 if t.size else 0))
    n_workers = int(n_workers if n_workers is not None else (w.max() + 1 if w.size else 0))
    n_classes = int(n_classes if n_classes is not None else (lab.max() + 1 if lab.size else 1))
    k = n_classes
    if t.size == 0:
        mv = majority_vote(t, w, lab, n_tasks=n_tasks, n_workers=n_workers, n_classes=k)
        return Aggregation(ALGORITHM, mv.labels, mv.posteriors, mv.worker_accuracy)
    f32 = np.float32
    per_task = np.bincount(t, minlength=n_tasks)
    has_labels = per_task > 0
    all_labelled = bool(has_labels.all())
    n_labelled = int(has_labels.sum())
    # Initial posteriors: the vote shares (majority vote).
    votes = np.bincount(t * k + lab, minlength=n_tasks * k).reshape(n_tasks, k).astype(f32)
    post = votes / np.maximum(per_task, 1).astype(f32)[:, None]
    # AT[t, (w, l)] = how often worker w gave label l on task t (almost always 0 or 1), built
    # directly in CSR form (rows = tasks); A = AT.T is then a free CSC view, whose product with
    # the posteriors scatters into the small (worker, label) table instead of gathering rows.
    if t.size > 1 and bool((t[1:] < t[:-1]).any()):
        order = np.argsort(t, kind="stable")
        codes = (w * k + lab)[order]
    else:
        codes = w * k + lab
    indptr = np.concatenate([[0], np.cumsum(per_task)])
    at = sp.csr_matrix((np.ones(t.size, dtype=f32), codes, indptr), shape=(n_tasks, n_workers * k))
    a = at.T
    mass = post.sum(axis=0, dtype=np.float64)
    pseudo = np.full((k, k), smoothing * (1 - prior_accuracy) / max(k - 1, 1))
    np.fill_diagonal(pseudo, smoothing * prior_accuracy)
    log_lik = -np.inf
    it = 0
    while it < max_iter:
        it += 1
        # M-step (small arrays): confusion pi[w, true, given] and class prior.
        counts = np.asarray(a @ post, dtype=np.float64).reshape(n_workers, k, k)  # [w, given, true]
        counts = counts.transpose(0, 2, 1) + pseudo  # [w, true, given]
        pi = counts / counts.sum(axis=2, keepdims=True)
        prior = mass / n_labelled + 1e-9
        prior /= prior.sum()
        log_pi = np.log(pi).transpose(0, 2, 1).reshape(n_workers * k, k).astype(f32)
        # E-step (one sparse product, then in place): log T = log prior + sum log pi. The
        # per-task normalisation runs on the transposed (class, task) layout, where reducing
        # over the few classes is a handful of contiguous row operations.
        log_post = np.ascontiguousarray(np.asarray(at @ log_pi).T)  # (k, n_tasks)
        log_post += np.log(prior).astype(f32)[:, None]
        top = log_post.max(axis=0)
        log_post -= top
        np.exp(log_post, out=log_post)
        norm = log_post.sum(axis=0)
        log_post /= norm
        if not all_labelled:
            log_post[:, ~has_labels] = 0.0
        mass = log_post.sum(axis=1, dtype=np.float64)
        if not all_labelled:
            log_post[:, ~has_labels] = 1.0 / k
        post = np.ascontiguousarray(log_post.T)
        ll = np.log(norm, dtype=np.float64) + top
        new_ll = float(ll.sum() if all_labelled else ll[has_labels].sum())
        improved = (new_ll - log_lik) / t.size
        log_lik = new_ll
        if improved < tol:
            break
    post64 = post.astype(np.float64)
    chosen = np.where(has_labels, post64.argmax(axis=1), -1)
    # Expected accuracy of each worker under the final posteriors.
    correct = post64[t, lab]
    hits = np.bincount(w, weights=correct, minlength=n_workers)
    seen = np.bincount(w, minlength=n_workers)
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = np.where(seen > 0, hits / np.where(seen > 0, seen, 1), np.nan)
    return Aggregation(ALGORITHM, chosen, post64, acc, iterations=it, log_likelihood=log_lik)


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
