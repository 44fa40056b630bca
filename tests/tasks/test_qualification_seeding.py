"""A fresh install has its qualification tests after ``migrate``, without a manual command."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from marketplace.models import AnnotationType, Qualification, QualificationStatus
from tasks import qualification_bank as bank
from tasks.models import QualificationItem

pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_install(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.QUALIFICATION_SEED_ON_MIGRATE = True  # the default outside the test settings
    assert not QualificationItem.objects.exists()


def test_migrate_seeds_every_type_once_and_a_worker_can_pass(fresh_install, worker, worker_client):
    call_command("migrate", verbosity=0)
    counts = {
        kind: QualificationItem.objects.filter(annotation_type=kind, is_active=True).count()
        for kind in AnnotationType.values
    }
    assert counts == {kind: bank.QUESTIONS for kind in AnnotationType.values}
    first = set(QualificationItem.objects.values_list("pk", flat=True))

    call_command("migrate", verbosity=0)  # every later migrate leaves them alone
    assert set(QualificationItem.objects.values_list("pk", flat=True)) == first

    test = worker_client.get("/api/work/qualifications/bbox/").json()
    assert len(test["questions"]) == bank.QUESTIONS
    answers = {
        str(item.pk): item.answer.payload
        for item in QualificationItem.objects.filter(annotation_type="bbox").select_related(
            "answer"
        )
    }
    r = worker_client.post("/api/work/qualifications/bbox/", {"answers": answers}, format="json")
    assert r.status_code == 200, r.content
    q = Qualification.objects.get(worker=worker, annotation_type="bbox")
    assert q.status == QualificationStatus.PASSED


def test_the_setting_off_seeds_nothing(fresh_install, settings):
    settings.QUALIFICATION_SEED_ON_MIGRATE = False
    call_command("migrate", verbosity=0)
    assert not QualificationItem.objects.exists()


def test_an_admins_own_test_is_left_alone(fresh_install):
    bank.seed_qualifications(types=["bbox"])
    QualificationItem.objects.filter(annotation_type="bbox").update(manifest={})  # "written"
    call_command("migrate", verbosity=0)
    assert QualificationItem.objects.filter(annotation_type="bbox").count() == bank.QUESTIONS
