"""The staff money dashboard (``/staff/money/``): balances from the ledger, payouts by status,
failures, reconciliation mismatches, payment anomalies, platform revenue over time, holds, and
the actions an operator takes there (start a payout run, hold or release a worker's payouts).

Thin: every figure is a ``payments.selectors`` SQL aggregate, every action the service the API
calls too (``tasks.payout_run_task`` → ``payouts.payout_runs_start``,
``clawbacks.worker_payouts_hold`` / ``worker_payouts_release``); the charts are
``marketplace.charts`` SVG."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.db.models import CharField, Max, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST, require_safe

from marketplace import charts
from marketplace.errors import ApplicationError
from marketplace.models import Role, User, WorkerProfile
from marketplace.money import format_money
from marketplace.pages import chart_period, platform_admin_required, redirect_to_section

from . import clawbacks, selectors
from .models import (
    AuditLog,
    PaymentAnomaly,
    Payout,
    PayoutRun,
    PayoutStatus,
    ReconciliationIssue,
    Refund,
)
from .tasks import payout_run_task

HOLD_REASON_MAX_LENGTH = 300  # WorkerProfile.payouts_held_reason
USERNAME_MAX_LENGTH = 150


def _money_fmt(currency: str):
    return lambda v: format_money(round(v), currency)


def _charts(
    totals: list[selectors.MoneyTotals], by_status: list[selectors.PayoutTally], when
) -> list[str]:
    """The balances and revenue of each currency (the platform's when there is no money yet),
    and the payouts by status."""
    out = []
    currencies = [t.currency for t in totals] or [settings.PLATFORM_CURRENCY]
    revenue = selectors.revenue_by_period(period=when.period, since=when.since)
    by_currency = {t.currency: t for t in totals}
    for currency in currencies:
        t = by_currency.get(currency, selectors.MoneyTotals(currency=currency))
        out.append(
            charts.bar_chart(
                chart_id=f"chart-balances-{currency}",
                title=f"Where the money is ({currency.upper()})",
                bars=[
                    ("escrow", t.escrow_available),
                    ("reserved", t.escrow_reserved),
                    ("on hold", t.worker_pending),
                    ("payable", t.payable),
                    ("in transit", t.in_transit),
                    ("revenue", t.revenue),
                ],
                fmt=_money_fmt(currency),
            )
        )
        days = revenue.get(currency, {})
        out.append(
            charts.line_chart(
                chart_id=f"chart-revenue-{currency}",
                title=f"Platform revenue per {when.period} ({currency.upper()})",
                x_labels=when.labels,
                series=[charts.Series("revenue", [days.get(d) for d in when.axis])],
                fmt=_money_fmt(currency),
                x_title=when.period,
            )
        )
    counts: dict[str, int] = {}
    for tally in by_status:
        counts[tally.label] = counts.get(tally.label, 0) + tally.count
    out.append(
        charts.bar_chart(
            chart_id="chart-payouts",
            title="Payouts by status",
            bars=[
                (label.split(" (")[0], counts.get(label, 0)) for _, label in PayoutStatus.choices
            ],
            y_title="payouts",
        )
    )
    return [mark_safe(svg) for svg in out]


@platform_admin_required
@require_safe
def money_dashboard(request: HttpRequest) -> HttpResponse:
    when = chart_period(request)
    totals = selectors.money_totals()
    by_status = selectors.payouts_by_status()
    return render(
        request,
        "staff/money.html",
        {
            "period": when.period,
            "totals": totals,
            "charts": _charts(totals, by_status, when),
            "by_status": by_status,
            "on_hold": selectors.earnings_on_hold(),
            "runs": PayoutRun.objects.select_related("triggered_by")
            .annotate(
                currency=Coalesce(
                    Max("payouts__currency"),
                    Value(settings.PLATFORM_CURRENCY),
                    output_field=CharField(),
                )
            )
            .order_by("-id")[:10],
            "failed": Payout.objects.filter(status=PayoutStatus.FAILED)
            .select_related("worker")
            .order_by("-id")[:20],
            "holds": WorkerProfile.objects.filter(payouts_held=True).select_related("user"),
            "issues": ReconciliationIssue.objects.filter(resolved=False).order_by("-id")[:50],
            "anomalies": PaymentAnomaly.objects.filter(resolved=False)
            .select_related("stripe_event")
            .order_by("-id")[:50],
            "refunds": Refund.objects.order_by("-id")[:20],
            "audit": AuditLog.objects.select_related("actor")[:50],
            "reason_max": HOLD_REASON_MAX_LENGTH,
        },
    )


def _back(anchor: str) -> HttpResponse:
    return redirect_to_section("payments-money", anchor)


@platform_admin_required
@require_POST
def payout_run(request: HttpRequest) -> HttpResponse:
    """Start a payout run in every currency (as the schedule and the API do), once confirmed."""
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Tick the box to confirm the payout run.")
        return _back("payout-run")
    result = payout_run_task.delay(request.user.pk, "staff dashboard")
    try:  # done already when tasks run in-process (the embedded mode, the tests)
        done = result.ready() and result.successful()
    except NotImplementedError:  # no result backend: the run goes on in a worker
        done = False
    if done:
        summary = result.get()
        paid = ", ".join(
            format_money(amount, currency) for currency, amount in summary["totals"].items()
        )
        messages.success(
            request, f"Payout run done: {summary['payouts']} payouts ({paid or 'nothing due'})."
        )
    else:
        messages.success(request, "Payout run started; its payouts appear below as it goes.")
    return _back("payout-run")


def _worker(value: str) -> User | None:
    value = (value or "").strip()
    if not value or len(value) > USERNAME_MAX_LENGTH:
        return None
    return User.objects.filter(username=value, role=Role.WORKER).first()


@platform_admin_required
@require_POST
def payouts_hold(request: HttpRequest) -> HttpResponse:
    worker = _worker(request.POST.get("worker", ""))
    reason = request.POST.get("reason", "").strip()
    if worker is None:
        messages.error(request, "No worker of that username.")
    elif len(reason) > HOLD_REASON_MAX_LENGTH:
        messages.error(request, f"Keep the reason under {HOLD_REASON_MAX_LENGTH} characters.")
    else:
        try:
            clawbacks.worker_payouts_hold(worker=worker, reason=reason, actor=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Payouts to {worker.username} are held.")
    return _back("holds")


@platform_admin_required
@require_POST
def payouts_release(request: HttpRequest, worker_id: int) -> HttpResponse:
    worker = User.objects.filter(pk=worker_id, role=Role.WORKER).first()
    if worker is None or not WorkerProfile.objects.filter(user=worker, payouts_held=True).exists():
        messages.error(request, "That worker's payouts are not held.")
    else:
        clawbacks.worker_payouts_release(
            worker=worker, actor=request.user, reason=request.POST.get("reason", "")[:300]
        )
        messages.success(request, f"Payouts to {worker.username} are released.")
    return _back("holds")
