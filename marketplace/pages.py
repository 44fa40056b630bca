"""What every app's pages share: who may open a staff page, where each user lands, and the time
axis of a dashboard's charts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from . import charts
from .models import User

# The landing page of each kind of user, by URL name (the routes live in the apps above).
WORKER_LANDING = "work-board"
REQUESTER_LANDING = "requester-jobs"
STAFF_LANDING = "staff-quality"


def landing_url(user: User) -> str:
    """Where ``user`` lands after logging in (or signing up) when no safe ``next`` is given:
    staff on the staff dashboards, workers on the work board, requesters on their jobs."""
    if not user.is_authenticated:
        return reverse("home")
    if user.is_platform_admin:
        return reverse(STAFF_LANDING)
    if user.is_worker:
        return reverse(WORKER_LANDING)
    if user.is_requester:
        return reverse(REQUESTER_LANDING)
    return reverse("home")


def redirect_to_section(name: str, anchor: str) -> HttpResponse:
    """Back to a section (``#anchor``) of the page named ``name``, after a form there."""
    return redirect(f"{reverse(name)}#{anchor}")


def platform_admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A staff page: a visitor is sent to log in (and back), anyone signed in who is not a
    platform admin gets 403."""

    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_platform_admin:
            raise PermissionDenied("Staff only.")
        return view(request, *args, **kwargs)

    return guarded


# How far back a dashboard's charts look, per period.
CHART_SPAN = {"day": 30, "week": 12}


@dataclass(frozen=True)
class ChartPeriod:
    """The time axis a dashboard's charts share: ``?period=day`` (default) or ``week``."""

    period: str
    axis: list[date]
    since: datetime  # the first instant of the first period

    @property
    def labels(self) -> list[str]:
        return [charts.period_label(d, self.period) for d in self.axis]


def chart_period(request: HttpRequest) -> ChartPeriod:
    period = request.GET.get("period", "day")
    if period not in charts.PERIODS:
        period = "day"
    axis = charts.period_axis(end=timezone.now().date(), period=period, count=CHART_SPAN[period])
    return ChartPeriod(period, axis, timezone.make_aware(datetime.combine(axis[0], time.min)))
