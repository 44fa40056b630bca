"""Server-rendered pages of the marketplace domain (home, accounts, requester jobs)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views import defaults
from django.views.decorators.http import require_POST

from . import login_guard, ratelimit, selectors, services
from .api.errors import error_body
from .errors import ApplicationError
from .forms import SignupForm
from .models import Role
from .pages import landing_url


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"landing": landing_url(request.user)})


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _refused(
    request: HttpRequest, template: str, context: dict, message: str, retry_after: int
) -> HttpResponse:
    """A page form refused by a rate limit or a lockout: 429, ``Retry-After``, the reason shown.

    The form given back is unbound: rendering the posted one would validate it again, which for
    the login form means checking the password once more."""
    response = render(request, template, {**context, "refused": message}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 for a path no route matches: under ``/api/`` in the API's one JSON error shape (a
    client asking for ``/api/jobs/abc/`` gets JSON like for ``/api/jobs/999/``), elsewhere
    Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return defaults.page_not_found(request, exception)


class LoginPage(LoginView):
    """Django's login page, landing each user on their dashboard, behind the ``login`` rate
    limit (per IP, shared with the API token endpoint) and the failed-login lockout
    (``marketplace.login_guard``)."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        # Without a safe ``next`` (Django's LoginView checks it), each user lands on their own
        # dashboard: staff on /staff/, workers on the work board, requesters on their jobs.
        return landing_url(self.request.user)

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        hit = ratelimit.hit("login", ratelimit.client_ip(request))
        if not hit.allowed:
            return self._refuse(
                "Too many sign-in attempts from your network. "
                f"Try again in {ratelimit.wait_phrase(hit.retry_after)}.",
                hit.retry_after,
            )
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form) -> HttpResponse:
        # Unknown user or wrong password read the same; a lockout (reached now or earlier) says
        # when to come back, for a known account and an unknown one alike.
        lock = login_guard.lockout_for(
            username=str(form.data.get("username", "")), ip=ratelimit.client_ip(self.request)
        )
        if lock is not None:
            return self._refuse(lock.message, lock.retry_after)
        return super().form_invalid(form)

    def _refuse(self, message: str, retry_after: int) -> HttpResponse:
        form = self.form_class(
            request=self.request, initial={"username": self.request.POST.get("username", "")}
        )
        return _refused(
            self.request,
            self.template_name,
            self.get_context_data(form=form),
            message,
            retry_after,
        )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("home")


def signup(request: HttpRequest, role: str) -> HttpResponse:
    if role not in (Role.REQUESTER, Role.WORKER):
        raise Http404("No such sign-up.")
    if request.method == "POST":
        # Sign-ups share one count per IP with the API's (ratelimit, scope "signup").
        hit = ratelimit.hit("signup", ratelimit.client_ip(request))
        if not hit.allowed:
            message = (
                "Too many sign-ups from your network. "
                f"Try again in {ratelimit.wait_phrase(hit.retry_after)}."
            )
            context = {"form": SignupForm(), "role": role}
            return _refused(request, "accounts/signup.html", context, message, hit.retry_after)
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
            login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
            return redirect(landing_url(user))
    return render(request, "accounts/signup.html", {"form": form, "role": role})


def _require_requester(request: HttpRequest) -> None:
    if not (request.user.is_requester or request.user.is_staff):
        raise Http404("Requesters only.")


@login_required
def requester_jobs(request: HttpRequest) -> HttpResponse:
    _require_requester(request)
    jobs = selectors.jobs_visible_to(request.user).order_by("-created_at")[:200]
    return render(request, "requester/jobs.html", {"jobs": jobs})
