"""HTTP hardening: production's HTTPS redirect and HSTS, the Content-Security-Policy on every page
(and templates it can hold without loosening), the API docs closable to anonymous visitors and
Swagger UI served from our own static files."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from tests.factories import RequesterFactory, WorkerFactory

pytestmark = pytest.mark.django_db

ROOT = Path(settings.BASE_DIR)


def _production(**extra: str) -> dict:
    """Import the production settings in a child process with a sound environment and return
    the settings this file is about."""
    env = {
        "PATH": "/usr/bin:/bin",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": "postgres://root@127.0.0.1:5432/crowdlabel_prod_check",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "STRIPE_SECRET_KEY": "sk_test_" + secrets.token_hex(24),
        "STRIPE_PUBLISHABLE_KEY": "pk_test_" + secrets.token_hex(24),
        "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(24),
        "STRIPE_CONNECT_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(24),
        **extra,
    }
    code = (
        "import json, marketplace.settings.production as s; print(json.dumps({k: getattr(s, k) "
        "for k in ('SECURE_SSL_REDIRECT', 'SECURE_REDIRECT_EXEMPT', 'SECURE_PROXY_SSL_HEADER', "
        "'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SESSION_COOKIE_SECURE', "
        "'CSRF_COOKIE_SECURE', 'X_FRAME_OPTIONS', 'API_DOCS_PUBLIC', 'CONTENT_SECURITY_POLICY', "
        "'MIDDLEWARE')}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_redirects_to_https_sends_hsts_and_closes_the_docs():
    prod = _production()
    assert prod["SECURE_SSL_REDIRECT"] is True
    assert prod["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert prod["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert prod["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert prod["SESSION_COOKIE_SECURE"] is True and prod["CSRF_COOKIE_SECURE"] is True
    assert prod["X_FRAME_OPTIONS"] == "DENY"
    assert prod["API_DOCS_PUBLIC"] is False
    assert "marketplace.csp_header.CachedPolicyCSPMiddleware" in prod["MIDDLEWARE"]
    directives = prod["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]


def test_production_leaves_the_redirect_to_the_proxy_when_told():
    assert _production(SECURE_SSL_REDIRECT="false")["SECURE_SSL_REDIRECT"] is False


def test_the_security_middleware_with_productions_settings(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    client = Client()  # its middleware is built on first use, with the settings above

    plain = client.get("/accounts/login/")
    assert plain.status_code == 301
    assert plain["Location"] == "https://testserver/accounts/login/"
    assert "Strict-Transport-Security" not in plain  # HSTS means nothing over plain HTTP
    assert client.get("/healthz").status_code == 200  # load balancers probe over HTTP

    proxied = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert proxied.status_code == 200
    assert proxied["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def _csp(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {parts[0]: parts[1:] for parts in (d.split() for d in header.split(";") if d.strip())}


def test_every_kind_of_page_carries_the_content_security_policy(client):
    from tests.tasks.claim_fixtures import published_job, qualified_worker

    published_job(n=1, overlap=1)
    worker = qualified_worker()
    anonymous = ["/", "/accounts/login/", "/accounts/signup/worker/", "/api/docs/", "/healthz"]
    responses = {path: client.get(path) for path in anonymous}
    client.force_login(worker)
    claimed = client.post("/work/claim/")
    assert claimed.status_code == 302
    for path in ["/work/", claimed["Location"], "/worker/earnings/", "/api/me/"]:
        responses[path] = client.get(path)
    for path, r in responses.items():
        assert r.status_code == 200, path
        policy = _csp(r)
        assert policy["default-src"] == ["'self'"], path
        assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"], path
        assert policy["frame-ancestors"] == ["'none'"], path
        assert policy["object-src"] == ["'none'"], path
        assert "unsafe" not in r["Content-Security-Policy"], path
        assert r["X-Frame-Options"] == "DENY", path


TEMPLATE_RULES = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "style element": re.compile(r"<style\b", re.I),
    "style attribute": re.compile(r"\sstyle\s*=", re.I),
    "event handler attribute": re.compile(r"\son[a-z]+\s*=\s*[\"']", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def test_templates_need_nothing_the_policy_forbids():
    """Pages load code from static/js and embed data with json_script; colours are SVG
    attributes, styles live in static/css. Checked on the templates' source."""
    found = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        name = path.relative_to(ROOT)
        for rule, pattern in TEMPLATE_RULES.items():
            found += [f"{name}: {rule}: {m.group(0)}" for m in pattern.finditer(text)]
    assert found == []


def test_the_rules_above_catch_what_they_are_for():
    bad = '<script>x()</script><style>b{}</style><p style="c"><a onclick="d()" href="javascript:e">'
    assert all(pattern.search(bad) for pattern in TEMPLATE_RULES.values())
    ok = '<script src="/static/js/a.js" defer></script><svg><rect fill="#fff"/></svg>'
    assert not any(pattern.search(ok) for pattern in TEMPLATE_RULES.values())


def test_api_docs_are_closed_to_anonymous_visitors_when_not_public(settings):
    settings.API_DOCS_PUBLIC = False
    anonymous = Client()
    schema = anonymous.get("/api/schema/")
    assert schema.status_code == 401
    assert b"not_authenticated" in schema.content and b"openapi" not in schema.content
    docs = anonymous.get("/api/docs/")
    assert docs.status_code == 302 and docs["Location"] == "/accounts/login/?next=/api/docs/"
    assert anonymous.get("/api/docs/?script=").status_code == 401

    member = Client()
    member.force_login(RequesterFactory())
    assert member.get("/api/schema/").status_code == 200
    assert member.get("/api/docs/").status_code == 200

    settings.API_DOCS_PUBLIC = True
    assert anonymous.get("/api/schema/").status_code == 200
    assert anonymous.get("/api/docs/").status_code == 200


def test_swagger_ui_comes_from_our_static_files(client):
    client.force_login(WorkerFactory())
    page = client.get("/api/docs/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(a.startswith("/") for a in assets), assets  # no CDN, no other origin
    assert any("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in a for a in assets)
    for asset in assets:
        r = client.get(asset)
        assert r.status_code == 200, asset
        if "script" in asset:
            assert r["Content-Type"].startswith("application/javascript")


def _through_csp_middleware(view, path: str = "/x/"):
    from django.test import RequestFactory

    from marketplace.csp_header import CachedPolicyCSPMiddleware

    middleware = CachedPolicyCSPMiddleware(view)
    return middleware, lambda: middleware(RequestFactory().get(path))


def test_the_cached_policy_header_is_django_csps_and_follows_the_settings(settings):
    """The header is built once per policy (``marketplace.csp_header``): the same string
    django-csp builds, every time, and a new one as soon as the settings' policy changes."""
    from csp.constants import HEADER, HEADER_REPORT_ONLY
    from csp.utils import build_policy
    from django.http import HttpResponse

    _, get = _through_csp_middleware(lambda request: HttpResponse("ok"))
    assert get()[HEADER] == get()[HEADER] == build_policy()
    assert HEADER_REPORT_ONLY not in get()
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"img-src": ["'self'"]}}
    r = get()
    assert r[HEADER] == build_policy() and "default-src 'none'" in r[HEADER]
    assert r[HEADER_REPORT_ONLY] == build_policy(report_only=True)
    assert "img-src 'self'" in r[HEADER_REPORT_ONLY]
    settings.CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {"default-src": ["'none'"]},
        "EXCLUDE_URL_PREFIXES": ["/x/"],
    }
    assert HEADER not in get()


def test_a_view_with_a_policy_of_its_own_keeps_it_under_the_cached_middleware():
    """Decorated views, exempt views and templates that use a nonce take django-csp's own path."""
    from csp.constants import HEADER
    from csp.decorators import csp_exempt, csp_update
    from django.http import HttpResponse

    @csp_update({"img-src": ["https://frames.example"]})
    def updated(request):
        return HttpResponse("ok")

    @csp_exempt()
    def exempt(request):
        return HttpResponse("ok")

    def with_nonce(request):
        return HttpResponse(str(request.csp_nonce))

    _, get = _through_csp_middleware(lambda request: HttpResponse("ok"))
    plain = get()[HEADER]
    _, get = _through_csp_middleware(updated)
    assert "https://frames.example" in get()[HEADER]
    _, get = _through_csp_middleware(exempt)
    assert HEADER not in get()
    _, get = _through_csp_middleware(with_nonce)
    r = get()
    assert r[HEADER] == plain  # no directive asks for the nonce; the response was built fine
    assert get()[HEADER] == plain
    _, get = _through_csp_middleware(lambda request: HttpResponse("ok"))
    assert get()[HEADER] == plain
