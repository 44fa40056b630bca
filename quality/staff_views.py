"""The staff quality dashboard (``/staff/``): trust, gold pass rate and agreement over time,
flagged workers with their evidence, the review backlog, and appeals and disputes decided in the
page. Thin: reads come from ``quality.selectors`` (SQL aggregates), each decision goes through the
one service that owns it (``services.appeal_decide``, ``tasks.reviewing.dispute_decide``,
``services.fraud_flag_resolve``); the charts are ``marketplace.charts`` SVG."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST, require_safe

from marketplace import charts
from marketplace.bounds import REASON_MAX_LENGTH
from marketplace.errors import ApplicationError
from marketplace.pages import chart_period, platform_admin_required, redirect_to_section
from tasks import reviewing
from tasks.work_selectors import disputes_visible_to

from . import selectors, services


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"


@platform_admin_required
@require_safe
def quality_dashboard(request: HttpRequest) -> HttpResponse:
    when = chart_period(request)
    period, axis, since = when.period, when.axis, when.since
    gold = selectors.gold_pass_rate_by_period(period=period, since=since)
    agreement = selectors.agreement_by_period(period=period, since=since)
    histogram = selectors.trust_histogram()
    trust_chart = charts.bar_chart(
        chart_id="chart-trust",
        title="Worker trust",
        bars=histogram,
        x_title="trust (per worker and annotation type)",
        y_title="workers",
    )
    rates_chart = charts.line_chart(
        chart_id="chart-quality",
        title=f"Gold pass rate and agreement per {period}",
        x_labels=when.labels,
        series=[
            charts.Series("gold pass rate", [gold[d][0] if d in gold else None for d in axis]),
            charts.Series(
                "consensus agreement", [agreement[d][0] if d in agreement else None for d in axis]
            ),
        ],
        y_max=1.0,
        fmt=_percent,
        x_title=period,
    )
    return render(
        request,
        "staff/quality.html",
        {
            "period": period,
            "charts": {"trust": mark_safe(trust_chart), "rates": mark_safe(rates_chart)},
            "trust_rows": sum(n for _, n in histogram),
            "gold_checks": sum(n for _, n in gold.values()),
            "consensus_results": sum(n for _, n in agreement.values()),
            "flags": selectors.open_fraud_flags(),
            "suspended": selectors.suspended_trust(),
            "backlog": selectors.review_backlog(),
            "appeals": selectors.appeals_pending()[:100],
            "disputes": disputes_visible_to(user=request.user, pending_only=True)[:100],
            "note_max": REASON_MAX_LENGTH,
        },
    )


def _decide(
    request: HttpRequest,
    *,
    choices: tuple[str, str],
    act: Callable[[bool, str], object],
    said: tuple[str, str],
    anchor: str,
) -> HttpResponse:
    """Carry out a posted ``decision`` (``choices``: the yes and the no) with its optional note:
    ``act(yes, note)`` calls the service; its refusal, or a bad decision or note, is shown and
    changes nothing. Back to the dashboard's section either way."""
    decision = request.POST.get("decision", "")
    note = request.POST.get("note", "").strip()
    if decision not in choices:
        messages.error(request, f'Choose "{choices[0]}" or "{choices[1]}".')
    elif len(note) > REASON_MAX_LENGTH:
        messages.error(request, f"Keep the note under {REASON_MAX_LENGTH} characters.")
    else:
        yes = decision == choices[0]
        try:
            act(yes, note)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, said[0] if yes else said[1])
    return redirect_to_section("staff-quality", anchor)


@platform_admin_required
@require_POST
def appeal_decide(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(
        request,
        choices=("uphold", "deny"),
        act=lambda uphold, note: services.appeal_decide(
            appeal_id=pk, by=request.user, uphold=uphold, note=note
        ),
        said=(
            f"Appeal #{pk} upheld: the work is approved and paid.",
            f"Appeal #{pk} denied: the rejection stands.",
        ),
        anchor="appeals",
    )


@platform_admin_required
@require_POST
def dispute_decide(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(
        request,
        choices=("uphold", "dismiss"),
        act=lambda uphold, note: reviewing.dispute_decide(
            dispute_id=pk, by=request.user, uphold=uphold, note=note
        ),
        said=(
            f"Dispute #{pk} upheld: the pay is taken back and the work rejected.",
            f"Dispute #{pk} dismissed: the work stays approved and paid.",
        ),
        anchor="disputes",
    )


@platform_admin_required
@require_POST
def flag_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(
        request,
        choices=("confirm", "dismiss"),
        act=lambda confirmed, _note: services.fraud_flag_resolve(
            flag_id=pk, by=request.user, confirmed=confirmed
        ),
        said=(f"Flag #{pk} confirmed.", f"Flag #{pk} dismissed."),
        anchor="flags",
    )
