"""The annotation and qualification pages give their script every URL it uses (data-*-url
attributes built with {% url %}), load it as an ES module and run no inline code."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.urls import resolve

from tasks import claiming
from tasks.models import QualificationAnswer, QualificationItem
from tests.factories import WorkerFactory
from tests.tasks.claim_fixtures import manifest_for, published_job, qualified_worker

pytestmark = pytest.mark.django_db

PAGE_SCRIPT = Path(__file__).resolve().parents[2] / "static" / "js" / "annotate" / "page.mjs"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root: dict[str, str] = {}
        self.scripts: list[dict[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if attrs.get("id") == "annotate":
            self.root = attrs
        if tag == "script":
            self.scripts.append(attrs)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def _urls_read_by_the_script(mode: str) -> set[str]:
    """The data-*-url attributes page.mjs asks for in one mode (its ``urlsOf`` call there)."""
    source = PAGE_SCRIPT.read_text()
    body = source.split(f"function {mode}(root, data)", 1)[1]
    names = re.search(r"urlsOf\(root, \[([^\]]*)\]\)", body).group(1)
    return {
        "data-" + re.sub(r"[A-Z]", lambda m: "-" + m.group(0).lower(), n.strip().strip('"'))
        for n in names.split(",")
    }


def _check_scripts(page: _Page) -> None:
    for attrs in page.scripts:
        # A CSP without 'unsafe-inline' must be able to run the page: code only from files.
        assert attrs.get("src") or attrs.get("type") == "application/json", attrs
    assert {"type": "module", "src": "/static/js/annotate/page.mjs"} in page.scripts


def test_annotation_page_gives_the_script_its_urls(client, monkeypatch):
    monkeypatch.setattr(claiming._rng, "random", lambda: 1.0)
    published_job(n=1)
    worker = qualified_worker()
    a = claiming.assignment_claim(worker=worker)
    client.force_login(worker)
    page = _parse(client.get(f"/work/assignments/{a.pk}/").content.decode())
    _check_scripts(page)
    wanted = _urls_read_by_the_script("annotationPage")
    assert wanted == {"data-submit-url", "data-heartbeat-url", "data-release-url", "data-board-url"}
    routes = {name: resolve(page.root[name]) for name in wanted}
    assert routes["data-submit-url"].url_name == "api-work-submit"
    assert routes["data-heartbeat-url"].url_name == "api-work-heartbeat"
    assert routes["data-release-url"].url_name == "api-work-release"
    assert all(
        routes[n].kwargs == {"pk": a.pk}
        for n in ("data-submit-url", "data-heartbeat-url", "data-release-url")
    )
    assert routes["data-board-url"].url_name == "work-board"


def test_qualification_page_gives_the_script_its_urls(client):
    item = QualificationItem.objects.create(
        annotation_type="polygon", label_classes=["road"], frames=[0], manifest=manifest_for([0])
    )
    triangle = [[10, 10], [100, 10], [50, 80]]
    QualificationAnswer.objects.create(
        item=item, payload={"polygons": [{"frame": 0, "label": "road", "points": triangle}]}
    )
    client.force_login(WorkerFactory())
    page = _parse(client.get("/work/qualify/polygon/").content.decode())
    _check_scripts(page)
    wanted = _urls_read_by_the_script("qualificationPage")
    assert wanted == {"data-submit-url", "data-board-url"}
    submit = resolve(page.root["data-submit-url"])
    assert submit.url_name == "api-work-qualification"
    assert submit.kwargs == {"annotation_type": "polygon"}
    assert resolve(page.root["data-board-url"]).url_name == "work-board"
