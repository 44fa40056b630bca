"""The requester's funding page: a job's quote (read only on GET), its escrow and fundings.

It lives here, not in payments, because a quote prices the job's microtasks (``tasks.quoting``).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from marketplace.errors import ApplicationError
from marketplace.selectors import jobs_visible_to
from payments import selectors as pay_selectors

from . import paying, quoting


@login_required
def job_funding_page(request: HttpRequest, pk: int) -> HttpResponse:
    job = jobs_visible_to(request.user).filter(pk=pk).first()
    if job is None:
        raise Http404("No such job.")
    created = None
    if request.method == "POST":
        try:
            created = paying.job_funding_create(job=job, requester=request.user)
            messages.success(request, "Payment created; complete it to fund the job.")
        except ApplicationError as exc:
            messages.error(request, exc.message)
    quote = None
    if job.microtasks.exists():
        try:
            # Shown, not saved: re-pricing microtasks (maybe of a published job) is funding's to do.
            quote = quoting.job_quote(job=job)
        except ApplicationError as exc:  # e.g. a currency without pricing: say so, fund nothing
            messages.error(request, exc.message)
    return render(
        request,
        "payments/job_funding.html",
        {
            "job": job,
            "quote": quote,
            "escrow": pay_selectors.escrow_balance(job=job),
            "fundings": job.fundings.order_by("-id"),
            "created": created,
        },
    )
