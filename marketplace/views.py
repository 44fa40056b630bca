"""Server-rendered pages of the marketplace domain (home, accounts, requester jobs)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views import defaults
from django.views.decorators.http import require_POST

from . import selectors, services
from .api.errors import error_body
from .errors import ApplicationError
from .forms import JobForm, SignupForm
from .models import Role


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 for a path no route matches: under ``/api/`` in the API's one JSON error shape (a
    client asking for ``/api/jobs/abc/`` gets JSON like for ``/api/jobs/999/``), elsewhere
    Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return defaults.page_not_found(request, exception)


class LoginPage(LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("home")


def signup(request: HttpRequest, role: str) -> HttpResponse:
    if role not in (Role.REQUESTER, Role.WORKER):
        raise Http404("No such sign-up.")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_create(
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
                email=form.cleaned_data.get("email", ""),
                role=role,
                organisation=form.cleaned_data.get("organisation", ""),
                country=form.cleaned_data.get("country", ""),
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("home")
    return render(request, "accounts/signup.html", {"form": form, "role": role})


def _require_requester(request: HttpRequest) -> None:
    if not (request.user.is_requester or request.user.is_staff):
        raise Http404("Requesters only.")


@login_required
def requester_jobs(request: HttpRequest) -> HttpResponse:
    _require_requester(request)
    jobs = selectors.jobs_visible_to(request.user).order_by("-created_at")[:200]
    return render(request, "requester/jobs.html", {"jobs": jobs})


@login_required
def requester_job_new(request: HttpRequest) -> HttpResponse:
    _require_requester(request)
    form = JobForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.job_create(requester=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Job created. Upload videos next.")
            return redirect("requester-job-detail", pk=job.pk)
    return render(request, "requester/job_new.html", {"form": form})


@login_required
def requester_job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require_requester(request)
    job = get_object_or_404(selectors.jobs_visible_to(request.user), pk=pk)
    return render(request, "requester/job_detail.html", {"job": job})
