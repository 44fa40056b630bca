"""Dawid-Skene aggregation of categorical labels by EM, vectorised. Pure numpy/scipy.

Labels are three parallel integer arrays (``tasks``, ``workers``, ``labels``), one entry per
label given. Each worker has a confusion matrix ``pi[w, true, given]``; each task a posterior over
its true class. EM alternates:

- M-step: ``pi[w, k, l] ∝ Σ_{labels of w with value l} T[task, k]`` and ``prior[k] = mean T[:, k]``;
- E-step: ``log T[t, k] = log prior[k] + sum over labels on t of log pi[w, k, l]``.

Both sums are one sparse-matrix product each: ``A`` (worker·class x task) counts who said what
on which task, so the M-step is ``A @ T`` and the E-step is ``Aᵀ @ log pi``. No Python loop runs
over labels, tasks or workers; an iteration costs a few passes over the label arrays. Tasks are
taken in blocks of ``CHUNK``: each block's E-step product is followed by its share of the next
M-step product while it is in cache, and no temporary grows with the number of labels, so a whole
job's labels cost a few bytes each (compact input dtypes are kept, not widened).

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
CHUNK = 1 << 17  # tasks (or labels) per block of an EM pass: bounds every temporary array


@dataclass(frozen=True)
class Aggregation:
    """Per task: the chosen class and its posterior; per worker: estimated accuracy."""

    algorithm: str
    labels: np.ndarray  # (n_tasks,) chosen class; -1 for a task without labels
    posteriors: np.ndarray  # (n_tasks, n_classes); float32 from Dawid-Skene
    worker_accuracy: np.ndarray  # (n_workers,) expected P(label == truth)
    iterations: int = 0
    log_likelihood: float = float("nan")

    @property
    def confidence(self) -> np.ndarray:
        return self.posteriors.max(axis=1)


def _index_array(values) -> np.ndarray:
    """``values`` as a flat integer array, kept in its own integer dtype (no copy of a compact
    int32/int8 array), anything else as int64."""
    a = np.asarray(values)
    if a.dtype.kind not in "iu":
        a = a.astype(np.int64)
    return a.ravel()


def _as_arrays(tasks, workers, labels):
    t, w, lab = _index_array(tasks), _index_array(workers), _index_array(labels)
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
    t, w, lab = t.astype(np.int64), w.astype(np.int64), lab.astype(np.int64)
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


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield start, min(n, start + size)


def _bincount(x: np.ndarray, minlength: int, chunk: int) -> np.ndarray:
    """``np.bincount`` a chunk at a time: no whole-length int64 copy of a compact ``x``."""
    out = np.zeros(minlength, dtype=np.int64)
    for s, e in _chunks(x.size, chunk):
        part = x[s:e]
        low = int(part.min())
        counts = np.bincount(part - low if low else part)
        out[low : low + counts.size] += counts
    return out


def _is_sorted(x: np.ndarray, chunk: int) -> bool:
    return not any(bool((x[s + 1 : e + 1] < x[s:e]).any()) for s, e in _chunks(x.size - 1, chunk))


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
    chunk: int = CHUNK,
) -> Aggregation:
    """Dawid-Skene EM, initialised from the majority vote.

    ``smoothing`` is the Dirichlet pseudo-count per confusion row (spread so the row's prior mean
    has ``prior_accuracy`` on the diagonal). EM stops when the data log-likelihood per label
    improves by less than ``tol``. The iterations run in float32: posteriors need no more, and
    it halves the memory traffic that bounds the speed.

    Memory: the labels are kept as given (pass compact dtypes: int32 indices, int8 labels) plus
    one int32 code and one float32 a label; everything else per label or per task is computed
    ``chunk`` tasks (or labels) at a time, so the peak grows by a few bytes a label.
    """
    t, w, lab = _as_arrays(tasks, workers, labels)
    n_tasks = int(n_tasks if n_tasks is not None else (t.max() + 1 if t.size else 0))
    n_workers = int(n_workers if n_workers is not None else (w.max() + 1 if w.size else 0))
    n_classes = int(n_classes if n_classes is not None else (lab.max() + 1 if lab.size else 1))
    k = n_classes
    if t.size == 0:
        mv = majority_vote(t, w, lab, n_tasks=n_tasks, n_workers=n_workers, n_classes=k)
        return Aggregation(ALGORITHM, mv.labels, mv.posteriors, mv.worker_accuracy)
    f32, f64 = np.float32, np.float64
    chunk = max(int(chunk), 1)
    per_task = _bincount(t, n_tasks, chunk)
    has_labels = per_task > 0
    all_labelled = bool(has_labels.all())
    n_labelled = int(has_labels.sum())
    # AT[t, (w, l)] = how often worker w gave label l on task t (almost always 0 or 1), built
    # directly in CSR form (rows = tasks), cut into blocks of ``chunk`` tasks that share its
    # arrays; a block's transpose is a free CSC view, whose product with the block's
    # posteriors scatters into the small (worker, label) table instead of gathering rows.
    index = np.int32 if max(t.size, n_workers * k) < 2**31 else np.int64
    codes = np.empty(t.size, dtype=index)
    in_order = _is_sorted(t, chunk)
    order = None if in_order else np.argsort(t, kind="stable")
    for s, e in _chunks(t.size, chunk):
        pick = slice(s, e) if order is None else order[s:e]
        np.multiply(w[pick], k, out=codes[s:e], casting="unsafe")  # < 2**31 (index above)
        codes[s:e] += lab[pick]
    del order
    indptr = np.zeros(n_tasks + 1, dtype=index)
    np.cumsum(per_task, out=indptr[1:])
    spans = list(_chunks(n_tasks, chunk))
    ones = np.ones(max(int(indptr[e] - indptr[s]) for s, e in spans), dtype=f32)
    blocks = []
    for s, e in spans:
        p0, p1 = int(indptr[s]), int(indptr[e])
        block = sp.csr_matrix(
            (ones[: p1 - p0], codes[p0:p1], indptr[s : e + 1] - p0), shape=(e - s, n_workers * k)
        )
        blocks.append((s, e, block, block.T))
    # Initial posteriors: the vote shares (majority vote), in smaller blocks: the vote count
    # makes a few int64 temporaries per label.
    post = np.empty((n_tasks, k), dtype=f32)
    mass = np.zeros(k, dtype=f64)
    for s, e in _chunks(n_tasks, max(chunk // 8, 1)):
        p0, p1 = int(indptr[s]), int(indptr[e])
        if in_order:  # the labels of this block's tasks, as given
            rows, given = t[p0:p1].astype(np.int64) - s, lab[p0:p1]
        else:
            rows = np.repeat(np.arange(e - s, dtype=np.int64), per_task[s:e])
            given = codes[p0:p1] % k
        votes = np.bincount(rows * k + given, minlength=(e - s) * k)
        seen = np.maximum(per_task[s:e], 1).astype(f32)[:, None]
        post[s:e] = votes.reshape(e - s, k).astype(f32) / seen
        mass += post[s:e].sum(axis=0, dtype=f64)
    pseudo = np.full((k, k), smoothing * (1 - prior_accuracy) / max(k - 1, 1))
    np.fill_diagonal(pseudo, smoothing * prior_accuracy)
    log_lik = -np.inf
    it = 0
    while it < max_iter:
        it += 1
        # M-step (small arrays): confusion pi[w, true, given] and class prior.
        counts = np.zeros((n_workers * k, k), dtype=f64)  # [(w, given), true]
        for s, e, _, block_t in blocks:
            counts += block_t @ post[s:e]
        conf = counts.reshape(n_workers, k, k).transpose(0, 2, 1) + pseudo  # [w, true, given]
        pi = conf / conf.sum(axis=2, keepdims=True)
        prior = mass / n_labelled + 1e-9
        prior /= prior.sum()
        log_pi = np.log(pi).transpose(0, 2, 1).reshape(n_workers * k, k).astype(f32)
        log_prior = np.log(prior).astype(f32)[:, None]
        # E-step, a block at a time (one sparse product, then in place): log T = log prior +
        # sum log pi. The per-task normalisation runs on the transposed (class, task) layout,
        # where reducing over the few classes is a handful of contiguous row operations.
        mass = np.zeros(k, dtype=f64)
        new_ll = 0.0
        for s, e, block, _ in blocks:
            log_post = np.ascontiguousarray(np.asarray(block @ log_pi).T)  # (k, e - s)
            log_post += log_prior
            top = log_post.max(axis=0)
            log_post -= top
            np.exp(log_post, out=log_post)
            norm = log_post.sum(axis=0)
            log_post /= norm
            ll = np.log(norm, dtype=f64) + top
            if all_labelled:
                new_ll += float(ll.sum())
            else:
                empty = ~has_labels[s:e]
                log_post[:, empty] = 0.0
                new_ll += float(ll[~empty].sum())
            mass += log_post.sum(axis=1, dtype=f64)
            if not all_labelled:
                log_post[:, empty] = 1.0 / k
            post[s:e] = log_post.T
        improved = (new_ll - log_lik) / t.size
        log_lik = new_ll
        if improved < tol:
            break
    chosen = np.full(n_tasks, -1, dtype=np.int32)
    for s, e in spans:
        chosen[s:e] = np.where(has_labels[s:e], post[s:e].argmax(axis=1), -1)
    # Expected accuracy of each worker under the final posteriors.
    hits = np.zeros(n_workers, dtype=f64)
    for s, e in _chunks(t.size, chunk):
        hits += np.bincount(w[s:e], weights=post[t[s:e], lab[s:e]], minlength=n_workers)
    seen = _bincount(w, n_workers, chunk)
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
    n_labelled = int(np.count_nonzero(_bincount(t, int(t.max()) + 1 if t.size else 0, CHUNK)))
    n_w = int(np.count_nonzero(_bincount(w, int(w.max()) + 1 if w.size else 0, CHUNK)))
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
