"""Pages and webhook endpoints of the payments app."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from marketplace.errors import ApplicationError

from . import connect, selectors
from .errors import WebhookSignatureInvalid
from .models import Payout
from .webhooks import stripe_event_record


def _webhook(request: HttpRequest, endpoint: str) -> HttpResponse:
    # The signature covers the raw bytes: read request.body, never a parsed form of it.
    try:
        event, created = stripe_event_record(
            payload=request.body,
            signature=request.headers.get("Stripe-Signature", ""),
            endpoint=endpoint,
        )
    except WebhookSignatureInvalid as exc:
        return JsonResponse({"error": {"code": exc.code, "message": exc.message}}, status=400)
    return JsonResponse({"received": True, "id": event.stripe_event_id, "duplicate": not created})


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    return _webhook(request, "platform")


@csrf_exempt
@require_POST
def stripe_connect_webhook(request: HttpRequest) -> HttpResponse:
    return _webhook(request, "connect")


def _worker_only(request: HttpRequest) -> None:
    if not request.user.is_worker:
        raise Http404("Workers only.")


@login_required
def earnings_page(request: HttpRequest) -> HttpResponse:
    _worker_only(request)
    return render(
        request,
        "payments/earnings.html",
        {
            "earnings": selectors.worker_earnings(worker=request.user),
            "payouts": Payout.objects.filter(worker=request.user).order_by("-id")[:20],
            "account": getattr(request.user, "connected_account", None),
            "profile": getattr(request.user, "worker_profile", None),
        },
    )


def _onboarding_redirect(request: HttpRequest) -> HttpResponse:
    try:
        url = connect.onboarding_link_create(
            worker=request.user,
            refresh_url=request.build_absolute_uri("/payments/connect/refresh/"),
            return_url=request.build_absolute_uri("/payments/connect/return/"),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("payments-earnings-page")
    return redirect(url)


@login_required
@require_POST
def connect_start(request: HttpRequest) -> HttpResponse:
    _worker_only(request)
    return _onboarding_redirect(request)


# Stripe sends the worker back to these two with a GET. A GET changes nothing (no Stripe call,
# no write: a link anyone can make a signed-in worker open must not act for them); it shows a
# page whose button POSTs, with the CSRF token, to the same URL.


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def connect_refresh(request: HttpRequest) -> HttpResponse:
    """Stripe sends the worker here when a link expired: POST mints a new one."""
    _worker_only(request)
    if request.method == "POST":
        return _onboarding_redirect(request)
    return render(
        request,
        "payments/connect_back.html",
        {
            "heading": "Your Stripe link expired",
            "text": "Links to Stripe's onboarding last a few minutes. Continue where you left off.",
            "button": "Continue with Stripe",
            "account": getattr(request.user, "connected_account", None),
        },
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def connect_return(request: HttpRequest) -> HttpResponse:
    """Back from Stripe. Returning does not mean onboarded: POST asks Stripe for the account's
    state (``account.updated`` webhooks bring it too); GET shows what we know."""
    _worker_only(request)
    account = getattr(request.user, "connected_account", None)
    if request.method in ("GET", "HEAD"):
        return render(
            request,
            "payments/connect_back.html",
            {
                "heading": "Back from Stripe",
                "text": "Check with Stripe whether your payout account is ready.",
                "button": "Check my payout account",
                "account": account,
            },
        )
    if account is not None:
        try:
            account = connect.connected_account_sync(stripe_account_id=account.stripe_account_id)
        except ApplicationError as exc:
            messages.error(request, exc.message)
    if account is not None and account.can_receive_transfers:
        messages.success(request, "Your payout account is ready.")
    else:
        messages.warning(
            request, "Stripe still needs information before you can be paid; continue onboarding."
        )
    return redirect("payments-earnings-page")
