"""Writes of quality, one module per reason to change:

- ``gold``: known answers (set by hand or imported), scoring against them, and the validation
  of a requester's gold;
- ``processing``: the submission outbox, gold scoring and consensus of stored submissions,
  dynamic overlap;
- ``approval``: the one approval decision (``quality.policy``) carried out through the tasks
  app's one approve and one reject path;
- ``evidence``: platform-wide trust, standing with a requester, suspensions, rejections;
- ``review``: the review queue and appeals;
- ``flags``: fraud flags;
- ``aggregation``: job-wide class aggregation (Dawid-Skene);
- ``job_policy``: a job's quality policy;
- ``assisting``: model-assisted scoring (accepted proposals in consensus, source accuracy, each
  worker's record on proposals and the blind-accept flag);
- ``routing``: model-assisted routing (verify-and-correct microtasks, their price and escrow);
- ``seams``: each track video's count of flagged seams, kept for the job report.

This package re-exports what the rest of the code base (views, admin, receivers, Celery tasks,
tests) calls; code inside it imports from the modules themselves.
"""

from .aggregation import classification_jobs_aggregate, job_classes_aggregate
from .evidence import (
    rejection_record,
    suspension_replicas_add,
    suspension_replicas_sweep,
    trust_record,
    worker_reinstate,
    worker_suspend_from_type,
    worker_suspension_lift,
)
from .flags import fraud_flag_blind_accept, fraud_flag_inflated_time, fraud_flag_resolve
from .gold import FORMATS as GOLD_IMPORT_FORMATS
from .gold import gold_answer_set, gold_import, gold_validate, score_frames
from .job_policy import (
    MIN_CONFIDENCE_MAX,
    REVIEW_AUTO,
    REVIEW_FIRST,
    REVIEW_MODES,
    job_create_with_review_mode,
    job_quality_policy_update,
    job_review_mode,
    job_review_mode_set,
    job_update_with_review_mode,
    review_mode,
)
from .processing import (
    STRAGGLER_AFTER,
    submission_process,
    submission_received,
    submissions_process_stragglers,
)
from .review import (
    APPEAL_MESSAGE_MAX_LENGTH,
    appeal_create,
    appeal_decide,
    microtasks_unfunded_to_review,
    review_resolve,
)
from .routing import job_route, job_route_later, microtask_route
from .seams import seams_changed, video_seams_refresh, video_seams_sweep

__all__ = [
    "APPEAL_MESSAGE_MAX_LENGTH",
    "GOLD_IMPORT_FORMATS",
    "MIN_CONFIDENCE_MAX",
    "REVIEW_AUTO",
    "REVIEW_FIRST",
    "REVIEW_MODES",
    "STRAGGLER_AFTER",
    "appeal_create",
    "appeal_decide",
    "classification_jobs_aggregate",
    "fraud_flag_blind_accept",
    "fraud_flag_inflated_time",
    "fraud_flag_resolve",
    "gold_answer_set",
    "gold_import",
    "gold_validate",
    "job_classes_aggregate",
    "job_create_with_review_mode",
    "job_quality_policy_update",
    "job_review_mode",
    "job_review_mode_set",
    "job_route",
    "job_route_later",
    "job_update_with_review_mode",
    "microtask_route",
    "microtasks_unfunded_to_review",
    "rejection_record",
    "review_mode",
    "review_resolve",
    "score_frames",
    "seams_changed",
    "submission_process",
    "submission_received",
    "submissions_process_stragglers",
    "suspension_replicas_add",
    "suspension_replicas_sweep",
    "trust_record",
    "video_seams_refresh",
    "video_seams_sweep",
    "worker_reinstate",
    "worker_suspend_from_type",
    "worker_suspension_lift",
]
