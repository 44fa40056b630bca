"""Nothing is loaded from another host: no template or static file names an outside host (a CDN,
a font service, an analytics script), and the API docs' Swagger UI comes from our own static
files (drf-spectacular-sidecar), so every page works offline and under the CSP."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("templates", "static")
TEXT = {".html", ".txt", ".js", ".mjs", ".css", ".svg", ".json", ".xml", ".map"}

# Hosts a file may name without the browser ever fetching from them: XML namespace names
# (``xmlns="http://www.w3.org/2000/svg"`` is an identifier, not a request).
ALLOWED_HOSTS = {"www.w3.org"}

# An absolute URL (http, https, or protocol-relative in an attribute or CSS url()).
ABSOLUTE = re.compile(
    r"""(?:https?:)//([A-Za-z0-9.-]+)|(?:src|href|action|srcset)\s*=\s*["']//([A-Za-z0-9.-]+)"""
    r"""|url\(\s*["']?//([A-Za-z0-9.-]+)"""
)


def outside_hosts(text: str) -> set[str]:
    hosts = {h for groups in ABSOLUTE.findall(text) for h in groups if h}
    return {h for h in hosts if h.lower() not in ALLOWED_HOSTS}


def test_the_scan_finds_outside_hosts_in_every_form():
    assert outside_hosts('<script src="https://cdn.example.com/x.js"></script>') == {
        "cdn.example.com"
    }
    assert outside_hosts("<link href='//fonts.example.net/css'>") == {"fonts.example.net"}
    assert outside_hosts("body { background: url(//img.example.org/a.png) }") == {"img.example.org"}
    assert outside_hosts('fetch("http://api.example.io/v1")') == {"api.example.io"}
    assert outside_hosts('<svg xmlns="http://www.w3.org/2000/svg"></svg>') == set()
    assert outside_hosts('<a href="/staff/">x</a> // a comment') == set()


def test_no_template_or_static_file_references_an_outside_host():
    found = {}
    files = [
        p
        for folder in SCANNED
        for p in (ROOT / folder).rglob("*")
        if p.is_file() and p.suffix in TEXT
    ]
    assert len(files) > 20  # the scan really looked at the project's files
    for path in files:
        hosts = outside_hosts(path.read_text(encoding="utf-8", errors="replace"))
        if hosts:
            found[str(path.relative_to(ROOT))] = sorted(hosts)
    assert found == {}


@pytest.mark.django_db
def test_swagger_ui_is_served_from_our_static_files(admin_user):
    client = Client()
    client.force_login(admin_user)
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assets = re.findall(r'<(?:script|link)\b[^>]*(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui-bundle" in a for a in assets), assets
    for asset in assets:
        parts = urlsplit(asset)
        assert not parts.scheme and not parts.netloc, asset  # same origin
        response = client.get(asset)
        assert response.status_code == 200, asset
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert body, asset
    assert outside_hosts(html) == set()
    # The split view's start-up script (a separate response, for the CSP) points at our schema.
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and b"/api/schema/" in script.content
