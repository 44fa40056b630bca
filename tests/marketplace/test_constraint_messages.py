"""Form and API errors never show a database constraint's internal name
(``marketplace.constraints``)."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import IntegrityError
from django.db.models import BaseConstraint, CheckConstraint, UniqueConstraint
from django.forms import modelform_factory
from django.test import override_settings
from django.urls import path
from rest_framework.views import APIView

from marketplace.api.permissions import IsWorker
from marketplace.constraints import FALLBACK, integrity_message
from payments.models import Payout, PayoutStatus
from tasks.models import MicroTask
from tests.factories import VideoFactory, WorkerFactory


def _named_in_errors() -> list[tuple[str, str]]:
    """Constraints whose refusal Django would word with their name."""
    out = []
    for model in apps.get_models():
        for c in model._meta.constraints:
            plain_unique = (
                isinstance(c, UniqueConstraint)
                and c.fields
                and c.condition is None
                and not c.expressions
            )
            if plain_unique:
                continue  # "… with this … already exists."
            assert isinstance(c, CheckConstraint | UniqueConstraint), c
            out.append((model._meta.label, c))
    return out


def test_every_constraint_that_would_show_its_name_has_a_message():
    missing = [
        f"{label}.{c.name}"
        for label, c in _named_in_errors()
        if c.violation_error_message == BaseConstraint.default_violation_error_message
        or c.name in str(c.violation_error_message)
    ]
    assert missing == []
    assert len(_named_in_errors()) > 20  # the check really looked at the project's models


@pytest.mark.django_db
def test_a_model_form_shows_the_message_not_the_name():
    video = VideoFactory()
    fields = ["video", "job", "index", "frame_start", "frame_end"]
    Form = modelform_factory(MicroTask, fields=fields)
    form = Form(
        data={
            "video": video.pk,
            "job": video.job_id,
            "index": 0,
            "frame_start": 10,
            "frame_end": 2,
        }
    )
    assert form.is_valid() is False
    text = " ".join(form.non_field_errors())
    assert "The first frame must not come after the last frame." in text
    assert "microtask_frames_ordered" not in str(form.errors)


@pytest.mark.django_db
def test_an_integrity_error_names_the_constraints_message():
    worker = WorkerFactory()
    Payout.objects.create(worker=worker, amount=100, currency="usd", status=PayoutStatus.PENDING)
    with pytest.raises(IntegrityError) as caught:
        Payout.objects.create(
            worker=worker, amount=200, currency="usd", status=PayoutStatus.PENDING
        )
    assert "payout_one_open_per_worker" in str(caught.value)  # what the database says
    assert integrity_message(caught.value) == "This worker already has a payout in progress."
    assert integrity_message(IntegrityError("something else")) == FALLBACK


class _Racy(APIView):
    """A stand-in for a write whose service missed a race: the database refuses it."""

    permission_classes = [IsWorker]

    def post(self, request):
        raise IntegrityError(
            'duplicate key value violates unique constraint "payout_one_open_per_worker"\n'
            "DETAIL:  Key (worker_id, currency)=(1, usd) already exists."
        )


urlpatterns = [path("racy/", _Racy.as_view())]


@pytest.mark.django_db
@override_settings(ROOT_URLCONF=__name__)
def test_the_api_answers_409_with_the_message_and_no_sql(worker_client):
    r = worker_client.post("/racy/", {}, format="json")
    assert r.status_code == 409
    body = r.json()
    assert body == {
        "error": {"code": "conflict", "message": "This worker already has a payout in progress."}
    }
    assert "payout_one_open_per_worker" not in r.content.decode()
