"""Server-rendered pages of quality: a worker's own trust and checks, a job's quality report, the
review queue with all submissions overlaid."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from marketplace.errors import ApplicationError
from marketplace.selectors import jobs_visible_to
from tasks.models import Assignment
from tasks.work_selectors import disputes_visible_to

from . import overlay, selectors, services
from .models import ReviewItem


@login_required
def my_quality(request: HttpRequest) -> HttpResponse:
    if not request.user.is_worker:
        raise Http404("Workers only.")
    return render(
        request,
        "quality/my_quality.html",
        {
            "trust": selectors.worker_trust_overview(worker=request.user),
            "standings": selectors.worker_standings(worker=request.user),
            "checks": selectors.worker_quality_checks(worker=request.user)[:50],
            "rejected": selectors.worker_rejections(worker=request.user)[:50],
        },
    )


@login_required
@require_POST
def appeal(request: HttpRequest, assignment_id: int) -> HttpResponse:
    try:
        services.appeal_create(
            worker=request.user,
            assignment_id=assignment_id,
            message=request.POST.get("message", ""),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Appeal sent; an administrator will decide.")
    return redirect("quality-mine")


@login_required
def job_report(request: HttpRequest, job_id: int) -> HttpResponse:
    job = jobs_visible_to(request.user).filter(pk=job_id).first()
    if job is None:
        raise Http404("No such job.")
    return render(
        request,
        "quality/job_report.html",
        {
            "job": job,
            "report": selectors.job_report(job=job),
            "gold_candidates": selectors.gold_candidates(job=job),
        },
    )


@login_required
def review_queue(request: HttpRequest) -> HttpResponse:
    if not (request.user.is_requester or request.user.is_platform_admin):
        raise Http404("Requesters and admins only.")
    admin = request.user.is_platform_admin
    return render(
        request,
        "quality/review_queue.html",
        {
            "items": selectors.review_queue_for(user=request.user)[:200],
            # An admin's part of the queue: requesters' rejections of exported work, and
            # requesters' gold answers trusted workers disagree with.
            "disputes": disputes_visible_to(user=request.user, pending_only=True)[:200]
            if admin
            else [],
            "disputed_gold": selectors.gold_awaiting_admin()[:200] if admin else [],
        },
    )


@login_required
def review_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A microtask the annotators disagreed on: its real frames with every replica's shapes over
    them, and each replica's agreement with the consensus."""
    item = (
        ReviewItem.objects.filter(job__in=jobs_visible_to(request.user), pk=pk)
        .select_related("microtask__video")
        .first()
    )
    if item is None:
        raise Http404("No such review item.")
    data = selectors.review_overlay(item=item)
    subs = data["submissions"]
    for k, sub in enumerate(subs):
        sub["colour"] = overlay.colour(k)
        sub["name"] = sub["worker"]
    layers = list(subs)
    if data["consensus"]:
        layers.append({"frames": data["consensus"], "colour": "#ffffff", "dashed": True})
    return render(
        request,
        "quality/review_detail.html",
        {
            "item": item,
            "overlay": data,
            "view": overlay.frames_with_shapes(microtask=item.microtask, layers=layers),
            "timeline": overlay.event_timeline(microtask=item.microtask, layers=layers),
        },
    )


@login_required
@require_POST
def review_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    """Resolve with one submission's payload, or a payload pasted as JSON."""
    item = ReviewItem.objects.filter(job__in=jobs_visible_to(request.user), pk=pk).first()
    if item is None:
        raise Http404("No such review item.")
    try:
        if request.POST.get("assignment"):
            a = Assignment.objects.select_related("submission").get(
                pk=int(request.POST["assignment"]), microtask=item.microtask
            )
            payload = a.submission.payload
        else:
            payload = json.loads(request.POST.get("payload") or "null")
        services.review_resolve(review_id=item.pk, payload=payload, by=request.user)
    except (ValueError, RecursionError, Assignment.DoesNotExist):  # bad JSON, too deep, not one
        messages.error(request, "Choose a submission or paste a valid JSON payload.")
        return redirect("quality-review-detail", pk=pk)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("quality-review-detail", pk=pk)
    messages.success(
        request,
        "Reviewed: your answer is the result and counts as gold"
        + (
            "."
            if request.user.is_platform_admin
            else " on your jobs (platform-wide once trusted workers agree with it)."
        ),
    )
    return redirect("quality-review-queue")


@login_required
@require_POST
def gold_create(request: HttpRequest, job_id: int) -> HttpResponse:
    """Make a microtask gold with the answer drawn (or pasted) by the requester."""
    try:
        payload = json.loads(request.POST.get("payload") or "null")
        services.gold_answer_set(
            microtask_id=int(request.POST.get("microtask") or 0), payload=payload, by=request.user
        )
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's limit
        messages.error(request, "Give a microtask number and its answer as JSON.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "The microtask is now gold.")
    return redirect("quality-job-report", job_id=job_id)


@login_required
@require_POST
def gold_import(request: HttpRequest, job_id: int) -> HttpResponse:
    """Import known answers (COCO, CVAT video XML, MOT, ActivityNet) from an uploaded file."""
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a file to import.")
        return redirect("quality-job-report", job_id=job_id)
    try:
        answers = services.gold_import(
            job_id=job_id,
            fmt=request.POST.get("format", ""),
            text=upload.read(20 * 1024 * 1024).decode("utf-8", errors="replace"),
            by=request.user,
            default_label=request.POST.get("default_label", ""),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{len(answers)} microtasks are now gold.")
    return redirect("quality-job-report", job_id=job_id)
