"""Worker pages: job board, annotation page, my work, qualification tests.

The pages are server-rendered shells; the annotation page's data comes from the same whitelisted
view the API serves (``work_selectors.worker_view_of``) and it talks to the worker API.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from marketplace import bounds, ratelimit
from marketplace.errors import ApplicationError
from marketplace.models import AnnotationType, Qualification, QualificationStatus

from . import claiming, proposals, qualifying, suspensions, work_selectors
from .models import Assignment, AssignmentStatus


def _require_worker(request: HttpRequest) -> None:
    if not request.user.is_worker:
        raise Http404("Workers only.")


@login_required
def board(request: HttpRequest) -> HttpResponse:
    _require_worker(request)
    quals = {q.annotation_type: q for q in Qualification.objects.filter(worker=request.user)}
    qualification_rows = [
        {
            "type": value,
            "label": label,
            "q": quals.get(value),
            "questions": len(qualifying.qualification_items(annotation_type=value)),
            # A suspension says why and until when; while its terms hold, no test to take.
            "suspension": suspensions.message(quals[value])
            if value in quals and quals[value].status == QualificationStatus.SUSPENDED
            else "",
            "may_take": not suspensions.is_suspended(quals.get(value)),
        }
        for value, label in AnnotationType.choices
    ]
    open_claims = work_selectors.my_work(worker=request.user).filter(
        status=AssignmentStatus.CLAIMED
    )[:20]
    return render(
        request,
        "worker/board.html",
        {
            "entries": work_selectors.job_board(worker=request.user),
            "cap": work_selectors.BOARD_COUNT_CAP,
            "qualifications": qualification_rows,
            "suspended_types": {r["type"] for r in qualification_rows if not r["may_take"]},
            "open_claims": open_claims,
        },
    )


@login_required
@require_POST
def claim(request: HttpRequest) -> HttpResponse:
    _require_worker(request)
    # The same per-worker count as the claim API (THROTTLE_RATES["claim"]).
    hit = ratelimit.hit("claim", ratelimit.user_ident(request.user.pk))
    if not hit.allowed:
        messages.error(
            request,
            f"You are claiming too fast. Try again in {ratelimit.wait_phrase(hit.retry_after)}.",
        )
        response = board(request)
        response.status_code = 429
        response["Retry-After"] = str(hit.retry_after)
        return response
    job_id = request.POST.get("job") or ""
    # A job id is a bigint; anything else means "any job" (a huge number reached the claim SQL).
    wanted = int(job_id) if job_id.isascii() and job_id.isdigit() and len(job_id) <= 19 else None
    if wanted is not None and not 1 <= wanted <= bounds.ID_MAX:
        wanted = None
    try:
        assignment = claiming.assignment_claim(worker=request.user, job_id=wanted)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("work-board")
    return redirect("work-annotate", pk=assignment.pk)


@login_required
def annotate(request: HttpRequest, pk: int) -> HttpResponse:
    _require_worker(request)
    try:
        assignment = work_selectors.assignment_for_worker(worker=request.user, assignment_id=pk)
    except Assignment.DoesNotExist:
        raise Http404("No such assignment.") from None
    view = proposals.assignment_view(assignment)
    return render(request, "worker/annotate.html", {"a": assignment, "view": view})


@login_required
def my_work(request: HttpRequest) -> HttpResponse:
    _require_worker(request)
    assignments = work_selectors.my_work(worker=request.user)[:300]
    rows = [work_selectors.my_work_row(a) for a in assignments]
    return render(request, "worker/my_work.html", {"rows": rows})


@login_required
def qualify(request: HttpRequest, annotation_type: str) -> HttpResponse:
    """The qualification test in the browser: the annotation workspace over its questions.

    The page embeds the questions exactly as the API serves them
    (``qualifying.question_for_worker``, a whitelist without the answers) and posts the answers
    to the qualification API. When the worker has passed, has no attempts left or there are no
    questions, it only says so.
    """
    _require_worker(request)
    if annotation_type not in AnnotationType.values:
        raise Http404("No such qualification.")
    items = qualifying.qualification_items(annotation_type=annotation_type)
    q = Qualification.objects.filter(worker=request.user, annotation_type=annotation_type).first()
    max_attempts = qualifying.max_attempts()
    attempts = q.attempts if q else 0
    suspension = ""
    if q and q.status == QualificationStatus.PASSED:
        state = "passed"
    elif suspensions.is_suspended(q):
        state = "suspended"
        suspension = suspensions.message(q)
    elif not items:
        state = "no_questions"
    elif attempts >= max_attempts:
        state = "no_attempts"
    else:
        state = "open"
    test = {
        "annotation_type": annotation_type,
        "attempts": attempts,
        "max_attempts": max_attempts,
        "pass_score": qualifying.pass_score(),
        "submit_url": reverse("api-work-qualification", args=[annotation_type]),
        "board_url": reverse("work-board"),
        "questions": [qualifying.question_for_worker(i) for i in items] if state == "open" else [],
    }
    return render(
        request,
        "worker/qualify.html",
        {
            "annotation_type": annotation_type,
            "label": AnnotationType(annotation_type).label,
            "state": state,
            "suspension": suspension,
            "q": q,
            "test": test,
        },
    )
