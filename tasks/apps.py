from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Videos and microtasks"

    def ready(self) -> None:
        from payments.selectors import measured_work_install

        from . import receivers  # noqa: F401 (connects the receivers)
        from .paying import worker_measured_work
        from .qualification_bank import seed_after_migrate

        # The earnings read in payments asks tasks how long paid work took (docs/architecture.md).
        measured_work_install(reader=worker_measured_work)
        # Once per migrate (sender: this app), after every app's tables exist.
        post_migrate.connect(seed_after_migrate, sender=self, dispatch_uid="tasks.seed_quals")
