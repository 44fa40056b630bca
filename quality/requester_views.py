"""The requester's pages of a job: the new-job form (with its review mode), the dashboard
(lifecycle buttons, progress, money, finish estimate, video previews, review mode), the
submissions list with approve / reject one by one or in bulk, and drawing a gold answer in the
annotation workspace.

They live in quality, the top layer, because a job's page shows what every app below knows
(tasks' progress, payments' escrow, quality's review mode); each write goes through its app's
one service: ``tasks.claiming`` / ``marketplace.lifecycle`` for the job's status,
``tasks.reviewing`` for approve and reject, ``quality.services`` for the review mode and gold
(and for a new job: ``job_create_with_review_mode`` saves the job through
``marketplace.services.job_create`` with its review mode, which marketplace cannot set).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from marketplace import bounds, lifecycle
from marketplace.errors import ApplicationError, ValidationError
from marketplace.forms import JobForm
from marketplace.models import Job, JobStatus
from marketplace.selectors import jobs_visible_to
from tasks import claiming, progress, reviewing, work_selectors
from tasks.models import AssignmentStatus, MicroTask

from . import overlay, selectors, services
from .services.common import policy_for

SUBMISSIONS_PER_PAGE = 20
MICROTASKS_PER_PAGE = 50
FRAMES_PER_SUBMISSION = 3


def _job(request: HttpRequest, pk: int) -> Job:
    """The asker's own job (any job for an admin); the same 404 for anyone else's."""
    if not (request.user.is_requester or request.user.is_staff):
        raise Http404("Requesters only.")
    return get_object_or_404(jobs_visible_to(request.user), pk=pk)


def _page_number(value: str | None) -> int:
    """A page number from the query or a form, within bounds (anything else: the first)."""
    try:
        return max(1, min(int(value or 1), bounds.ID_MAX))
    except ValueError:
        return 1


# --- A new job, with its review mode --------------------------------------------------------------


class NewJobForm(JobForm):
    """The job's own fields (``marketplace.forms.JobForm``) and how its work is reviewed: the
    choice the dashboard's "Reviewing work" switch changes later."""

    review_mode = forms.ChoiceField(
        label="Reviewing work",
        choices=[
            (
                services.REVIEW_AUTO,
                "Accept consensus automatically: work that agrees with the other annotators (or "
                "passes gold) is approved, and work that fails gold badly rejected, as soon as "
                "it is scored.",
            ),
            (
                services.REVIEW_FIRST,
                "I review first: every submission waits for you; what you have not reviewed "
                "approves itself after the job's auto-approval delay.",
            ),
        ],
        initial=services.REVIEW_AUTO,
        required=False,  # left out (a client without the field): accept consensus, the default
        widget=forms.RadioSelect,
    )


@login_required
def job_new(request: HttpRequest) -> HttpResponse:
    if not (request.user.is_requester or request.user.is_staff):
        raise Http404("Requesters only.")
    form = NewJobForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        fields = dict(form.cleaned_data)
        mode = fields.pop("review_mode") or services.REVIEW_AUTO
        try:
            job = services.job_create_with_review_mode(requester=request.user, mode=mode, **fields)
        except ApplicationError as exc:
            form.add_service_errors(exc.extra.get("fields") or {}, exc.message)
        else:
            messages.success(request, "Job created. Upload videos next.")
            return redirect("requester-job-detail", pk=job.pk)
    return render(request, "requester/job_new.html", {"form": form})


# --- The job's status: one button per transition the lifecycle allows ----------------------------


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    explain: str
    danger: bool = False


ACTIONS = {
    "publish": Action(
        "publish",
        "Publish",
        "Workers can claim the job's microtasks, as far as the funded escrow covers them.",
    ),
    "pause": Action(
        "pause", "Pause", "No new claims; work already claimed may still be submitted."
    ),
    "resume": Action("resume", "Resume", "Workers can claim the job's microtasks again."),
    "complete": Action(
        "complete",
        "Complete",
        "The job closes: open claims end, unclaimed work is withdrawn and the unspent escrow "
        "is refunded. Submitted work can still be reviewed.",
        danger=True,
    ),
    "cancel": Action(
        "cancel",
        "Cancel",
        "The job is cancelled for good: open claims end, unclaimed work is withdrawn and the "
        "unspent escrow is refunded.",
        danger=True,
    ),
}


def allowed_actions(job: Job) -> list[Action]:
    """The buttons the lifecycle allows for ``job`` now (``marketplace.lifecycle``)."""
    nxt = lifecycle.allowed_next(job.status)
    shown = []
    if job.status == JobStatus.READY and JobStatus.PUBLISHED in nxt:
        shown.append("publish")
    if JobStatus.PAUSED in nxt:
        shown.append("pause")
    if job.status == JobStatus.PAUSED and JobStatus.PUBLISHED in nxt:
        shown.append("resume")
    if JobStatus.COMPLETED in nxt:
        shown.append("complete")
    if JobStatus.CANCELLED in nxt:
        shown.append("cancel")
    return [ACTIONS[name] for name in shown]


def _act(job: Job, action: str, user) -> str:
    """Carry out ``action`` through the job's lifecycle services; returns what to tell the user."""
    if action == "publish":
        fill = claiming.job_publish(job=job, by=user)
        text = f"Published: {fill.regular_slots} replicas are claimable."
        if fill.uncovered_microtasks:
            text += (
                f" {fill.uncovered_microtasks} microtasks wait for more escrow; fund the job to "
                "open them."
            )
        return text
    if action == "pause":
        claiming.job_pause(job=job, by=user)
        return "Paused: no new claims."
    if action == "resume":
        claiming.job_resume(job=job, by=user)
        return "Resumed: workers can claim again."
    if action == "complete":
        claiming.job_complete(job=job, by=user)
        return "Completed: unclaimed work withdrawn, unspent escrow refunded."
    lifecycle.job_cancel(job=job, by=user)
    return "Cancelled: unclaimed work withdrawn, unspent escrow refunded."


@login_required
def job_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """GET: a confirmation page (works without JavaScript); POST: do it, then the dashboard with
    what happened or why the lifecycle refused."""
    job = _job(request, pk)
    act = ACTIONS.get(action)
    if act is None:
        raise Http404("No such action.")
    if request.method == "POST":
        try:
            messages.success(request, _act(job, action, request.user))
        except ApplicationError as exc:
            messages.error(request, f"{act.label} refused: {exc.message}")
        return redirect("requester-job-detail", pk=job.pk)
    allowed = act in allowed_actions(job)
    return render(
        request, "requester/job_confirm.html", {"job": job, "action": act, "allowed": allowed}
    )


# --- The dashboard -----------------------------------------------------------------------------


@login_required
def job_dashboard(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job(request, pk)
    pages = Paginator(progress.microtask_progress(job=job), MICROTASKS_PER_PAGE)
    page = pages.get_page(_page_number(request.GET.get("page")))
    rows = [(m, progress.microtask_percent(m)) for m in page.object_list]
    pol = policy_for(job)
    return render(
        request,
        "requester/job_detail.html",
        {
            "job": job,
            "actions": allowed_actions(job),
            "progress": progress.job_progress(job=job),
            "spend": progress.job_spend(job=job),
            "microtasks": rows,
            "page": page,
            "review_mode": services.review_mode(pol),
            "policy": pol,
            "delay_hours": job.auto_approve_delay.total_seconds() / 3600,
            "awaiting_review": _submissions_count(job, AssignmentStatus.SUBMITTED),
            "assist": selectors.job_assist_report(job=job),
        },
    )


def _submissions_count(job: Job, status: str) -> int:
    return work_selectors.submissions_for_review(job=job, status=status).count()


@login_required
@require_POST
def job_review_mode(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job(request, pk)
    try:
        services.job_review_mode_set(
            job_id=job.pk, by=request.user, mode=request.POST.get("mode", "")
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Review mode saved; it applies to work submitted from now on.")
    return redirect("requester-job-detail", pk=job.pk)


# --- Submissions: look, approve, reject ----------------------------------------------------------

STATUS_FILTERS = (AssignmentStatus.SUBMITTED, AssignmentStatus.APPROVED, AssignmentStatus.REJECTED)


def _status(value: str | None) -> str | None:
    return value if value in STATUS_FILTERS else None


@login_required
def job_submissions(request: HttpRequest, pk: int) -> HttpResponse:
    """A page of the job's submissions with their frames and shapes, for review."""
    job = _job(request, pk)
    status = _status(request.GET.get("status"))
    pages = Paginator(
        work_selectors.submissions_for_review(job=job, status=status), SUBMISSIONS_PER_PAGE
    )
    page = pages.get_page(_page_number(request.GET.get("page")))
    assignments = list(page.object_list)
    consensus = selectors.current_consensus(microtask_ids={a.microtask_id for a in assignments})
    rows = []
    for a in assignments:
        sub = getattr(a, "submission", None)
        layers = [
            {"frames": sub.frames if sub else {}, "colour": overlay.colour(0), "name": "this work"}
        ]
        agreed = consensus.get(a.microtask_id)
        if agreed is not None:  # the consensus, dashed, to compare the worker's shapes with
            layers.append({"frames": agreed["frames"], "colour": "#ffffff", "dashed": True})
        rows.append(
            {
                "a": a,
                "agreement": selectors.replica_agreement(agreed, a.pk),
                "view": overlay.frames_with_shapes(
                    microtask=a.microtask,
                    layers=layers,
                    limit=FRAMES_PER_SUBMISSION,
                    key=f"a{a.pk}",
                ),
                "timeline": overlay.event_timeline(microtask=a.microtask, layers=layers),
            }
        )
    return render(
        request,
        "requester/submissions.html",
        {
            "job": job,
            "rows": rows,
            "page": page,
            "status": status or "",
            "statuses": STATUS_FILTERS,
            "max_reason": reviewing.MAX_REASON,
        },
    )


def _ids(values: list[str]) -> list[int]:
    out = []
    for v in values[: reviewing.MAX_BULK + 1]:
        try:
            n = int(v)
        except (TypeError, ValueError):
            raise ValidationError("Choose submissions by their numbers.") from None
        if not 1 <= n <= bounds.ID_MAX:
            raise ValidationError("No such submission.")
        out.append(n)
    return out


def _review(request: HttpRequest, job: Job) -> str:
    """One approve, one reject (with its row's reason) or a bulk action, through
    ``tasks.reviewing``; returns what to tell the requester."""
    post = request.POST
    outcome = None
    if post.get("approve"):
        (a_id,) = _ids([post["approve"]])
        reviewing.assignment_approve(assignment_id=a_id, by=request.user)
        return f"Approved #{a_id}; the worker is paid."
    if post.get("reject"):
        (a_id,) = _ids([post["reject"]])
        reason = post.get(f"reason-{a_id}", "")
        outcome = reviewing.assignment_reject(assignment_id=a_id, by=request.user, reason=reason)
        done = f"Rejected #{a_id}." if outcome.done else ""
    elif post.get("bulk"):
        action = post["bulk"]
        ids = _ids(post.getlist("assignments"))
        outcome = reviewing.assignments_review_bulk(
            by=request.user, action=action, assignment_ids=ids, reason=post.get("reason", "")
        )
        verb = "Approved" if action == "approve" else "Rejected"
        done = f"{verb} {len(outcome.done)} submissions." if outcome.done else ""
    else:
        raise ValidationError("Choose approve or reject.")
    return " ".join(t for t in (done, outcome.message) if t)


@login_required
@require_POST
def job_submissions_review(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job(request, pk)
    try:
        messages.success(request, _review(request, job))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    query = {"page": _page_number(request.POST.get("page"))}
    if _status(request.POST.get("status")):
        query["status"] = request.POST["status"]
    return redirect(reverse("requester-job-submissions", args=[job.pk]) + "?" + urlencode(query))


# --- Gold drawn in the workspace ---------------------------------------------------------------


@login_required
def gold_draw(request: HttpRequest, job_id: int, microtask_id: int) -> HttpResponse:
    """The annotation workspace on one of the job's microtasks; its answer is saved as gold
    (``quality-gold-create``), drawn instead of typed."""
    job = _job(request, job_id)
    mt = get_object_or_404(
        MicroTask.objects.select_related("video", "job"), pk=microtask_id, job=job
    )
    existing = selectors.gold_answer_of(microtask=mt)
    return render(
        request,
        "quality/gold_draw.html",
        {
            "job": job,
            "microtask": mt,
            "view": overlay.workspace_view(microtask=mt, payload=existing),
            "has_answer": existing is not None,
        },
    )
