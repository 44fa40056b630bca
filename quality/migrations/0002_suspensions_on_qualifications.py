"""Suspensions made before they had terms become suspensions of the worker's qualification until
an admin lifts them (the safe reading: nobody set a cooldown for them). Admins lift them with the
*Lift suspension* action on worker trust."""

from django.db import migrations


def forwards(apps, schema_editor):
    WorkerTrust = apps.get_model("quality", "WorkerTrust")
    Qualification = apps.get_model("marketplace", "Qualification")
    for row in WorkerTrust.objects.filter(suspended=True):
        q, _ = Qualification.objects.get_or_create(
            worker_id=row.worker_id, annotation_type=row.annotation_type
        )
        if q.status == "suspended":
            continue
        q.status = "suspended"
        q.suspended_at = row.updated_at
        q.suspended_until = None
        q.suspended_reason = row.suspended_reason[:300]
        q.suspensions += 1
        q.save()


class Migration(migrations.Migration):
    dependencies = [
        ("quality", "0001_initial"),
        ("marketplace", "0003_qualification_suspension_terms"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
