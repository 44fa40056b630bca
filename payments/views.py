"""Pages and webhook endpoints of the payments app."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
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


def _onboarding_redirect(request: HttpRequest, worker=None) -> HttpResponse:
    try:
        url = connect.onboarding_link_create(
            worker=worker or request.user,
            refresh_url=request.build_absolute_uri("/payments/connect/refresh/"),
            return_url=request.build_absolute_uri("/payments/connect/return/"),
            with_state=worker is not None,
        )
    except ApplicationError as exc:
        if worker is not None:
            return _connect_page(
                request, status=502, heading="Stripe is not reachable", text=exc.message
            )
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
#
# A link made through the API (``POST /api/payments/connect/``) carries ``?state=``, signed by
# ``payments.connect.onboarding_state`` for the worker's own account: a worker who uses the API
# with a token comes back without our session cookie, and the state, not a login, says whose
# account the button refreshes or continues. Nothing in the query can name another account.

CONNECT_STATE_MAX_LENGTH = 1_000


def _connect_page(request: HttpRequest, *, status: int = 200, **context) -> HttpResponse:
    return render(request, "payments/connect_back.html", context, status=status)


def _signed_account(request: HttpRequest):
    """The account of the request's ``?state=`` (a ``ValidationError`` when it is not valid)."""
    state = request.GET.get("state", "")
    if len(state) > CONNECT_STATE_MAX_LENGTH:
        state = ""
    return connect.onboarding_state_account(state=state, user=request.user)


def _signed_in_worker(view):
    """Without ``?state=``, the pages are for the signed-in worker (as before)."""

    @wraps(view)
    def wrapped(request: HttpRequest) -> HttpResponse:
        if "state" in request.GET:
            try:
                account = _signed_account(request)
            except ApplicationError as exc:
                return _connect_page(
                    request, status=400, heading="This link does not work", text=exc.message
                )
            return view(request, account=account, signed=True)
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        _worker_only(request)
        return view(request, account=getattr(request.user, "connected_account", None), signed=False)

    return wrapped


@require_http_methods(["GET", "HEAD", "POST"])
@_signed_in_worker
def connect_refresh(request: HttpRequest, *, account, signed: bool) -> HttpResponse:
    """Stripe sends the worker here when a link expired: POST mints a new one."""
    if request.method == "POST":
        return _onboarding_redirect(request, worker=account.worker if signed else None)
    return _connect_page(
        request,
        heading="Your Stripe link expired",
        text="Links to Stripe's onboarding last a few minutes. Continue where you left off.",
        button="Continue with Stripe",
        account=account,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@_signed_in_worker
def connect_return(request: HttpRequest, *, account, signed: bool) -> HttpResponse:
    """Back from Stripe. Returning does not mean onboarded: POST asks Stripe for the account's
    state (``account.updated`` webhooks bring it too); GET shows what we know."""
    if request.method in ("GET", "HEAD"):
        return _connect_page(
            request,
            heading="Back from Stripe",
            text="Check with Stripe whether your payout account is ready.",
            button="Check my payout account",
            account=account,
        )
    error = ""
    if account is not None:
        try:
            account = connect.connected_account_sync(stripe_account_id=account.stripe_account_id)
        except ApplicationError as exc:
            error = exc.message
    ready = account is not None and account.can_receive_transfers
    if signed and not request.user.is_authenticated:
        # No session to carry a message to the earnings page: the answer is this page.
        more = (
            {}
            if ready
            else {
                "button": "Continue with Stripe",
                "action": f"/payments/connect/refresh/?{request.GET.urlencode()}",
            }
        )
        return _connect_page(
            request,
            heading="Your payout account is ready" if ready else "Stripe still needs information",
            text=error or ("" if ready else "Continue onboarding where you left off."),
            account=account,
            **more,
        )
    if error:
        messages.error(request, error)
    if ready:
        messages.success(request, "Your payout account is ready.")
    else:
        messages.warning(
            request, "Stripe still needs information before you can be paid; continue onboarding."
        )
    return redirect("payments-earnings-page")
