"""The requester's funding page: a job's quote against its budget (read only on GET), its escrow
and payments; paying goes through Stripe Checkout (``payments.funding``).

It lives here, not in payments, because a quote prices the job's microtasks (``tasks.quoting``).

The flow: "Fund" POSTs here, which opens a Checkout Session and redirects to Stripe's hosted page
(or the local server's test page). Stripe sends the requester back to this page with
``?funding=<id>&checkout=return`` (or ``cancel``). A GET changes nothing, so the page then asks
Stripe through a POST (``…/check/``): the script ``static/js/funding_return.js`` submits that form
once on arrival, and the same button is there without script. The webhook
``checkout.session.completed`` credits the same funding; whichever comes first credits it, once.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from marketplace import bounds, ratelimit
from marketplace.errors import ApplicationError
from marketplace.selectors import jobs_visible_to
from marketplace.services import job_budget_raise
from payments import funding as pay_funding
from payments import selectors as pay_selectors
from payments.models import Funding

from . import paying, quoting


def _job(request: HttpRequest, pk: int):
    job = jobs_visible_to(request.user).filter(pk=pk).first()
    if job is None:
        raise Http404("No such job.")
    return job


def _page(job, funding: Funding | None = None) -> str:
    url = reverse("payments-job-funding", args=[job.pk])
    return f"{url}?funding={funding.pk}" if funding is not None else url


@login_required
def job_funding_page(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job(request, pk)
    if request.method == "POST":
        return _fund(request, job)
    return _render(request, job)


def _render(
    request: HttpRequest, job, *, focus: Funding | None = None, status: int = 200
) -> HttpResponse:
    """The funding page, about the payment ``focus`` (else the one the query names)."""
    options = None
    if job.microtasks.exists():
        try:
            # Shown, not saved: re-pricing microtasks (maybe of a published job) is funding's to do.
            options = quoting.funding_options(job=job)
        except ApplicationError as exc:  # e.g. a currency without pricing: say so, fund nothing
            messages.error(request, exc.message)
    raw = request.GET.get("funding", "")
    if focus is None and raw.isdigit() and len(raw) < 19:
        focus = job.fundings.filter(pk=int(raw)).first()
    checkout = request.GET.get("checkout", "")
    return render(
        request,
        "payments/job_funding.html",
        {
            "job": job,
            "options": options,
            "quote": options.quote if options else None,
            "escrow": pay_selectors.escrow_balance(job=job),
            "fundings": job.fundings.order_by("-id"),
            "focus": focus,
            "checkout": checkout if checkout in ("return", "cancel") else "",
            "money_max": bounds.money_amount_max(),
        },
        status=status,
    )


def _fund(request: HttpRequest, job) -> HttpResponse:
    """Open a Checkout Session (the whole quote, or what the budget covers) and go to it."""
    try:
        funding = paying.job_funding_create(
            job=job,
            requester=request.user,
            return_url=request.build_absolute_uri(reverse("payments-job-funding", args=[job.pk])),
            fit_budget=request.POST.get("fund") == "budget",
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect(_page(job))
    return HttpResponseRedirect(funding.checkout_url, status=303)


def _funding(request: HttpRequest, pk: int, funding_id: int) -> Funding:
    job = _job(request, pk)
    funding = job.fundings.filter(pk=funding_id).first()
    if funding is None:
        raise Http404("No such payment.")
    return funding


@login_required
@require_POST
def funding_check_page(request: HttpRequest, pk: int, funding_id: int) -> HttpResponse:
    """Ask Stripe now whether this payment went through (idempotent; credits at most once).
    Each check is a Stripe request: counted per requester with the API's check
    (``THROTTLE_RATES["funding_check"]``); past the rate, the page says when to ask again."""
    funding = _funding(request, pk, funding_id)
    hit = ratelimit.hit("funding_check", ratelimit.user_ident(request.user.pk))
    if not hit.allowed:
        messages.error(
            request,
            "You are checking payments too often. "
            f"Try again in {ratelimit.wait_phrase(hit.retry_after)}.",
        )
        # The payment stays in view with its button, without the page's automatic check.
        response = _render(request, funding.job, focus=funding, status=429)
        response["Retry-After"] = str(hit.retry_after)
        return response
    try:
        pay_funding.funding_check(job=funding.job, requester=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect(_page(funding.job, funding))
    pay_funding.funding_refresh(funding=funding)
    return redirect(_page(funding.job, funding))


@login_required
@require_POST
def funding_cancel_page(request: HttpRequest, pk: int, funding_id: int) -> HttpResponse:
    """Give up an unpaid Checkout payment (Stripe expires the session; nothing is charged)."""
    funding = _funding(request, pk, funding_id)
    try:
        pay_funding.funding_cancel(funding=funding, by=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect(_page(funding.job, funding))


@login_required
@require_POST
def job_budget_page(request: HttpRequest, pk: int) -> HttpResponse:
    """Raise the job's budget (the funding page's form) and go back to the funding page."""
    job = _job(request, pk)
    raw = request.POST.get("budget", "").strip()
    try:
        if not raw.isdigit() or len(raw) > 19:
            messages.error(request, "The budget is a whole number of minor units (cents).")
        else:
            job_budget_raise(job=job, by=request.user, budget=int(raw))
            messages.success(request, "Budget raised.")
    except ApplicationError as exc:
        fields = exc.extra.get("fields") or {}
        messages.error(request, " ".join(fields.get("budget", [])) or exc.message)
    return redirect(_page(job))
