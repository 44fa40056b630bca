from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Videos and microtasks"

    def ready(self) -> None:
        from payments.selectors import measured_work_install

        from . import receivers  # noqa: F401 (connects the receivers)
        from .paying import worker_measured_work

        # The earnings read in payments asks tasks how long paid work took (docs/architecture.md).
        measured_work_install(reader=worker_measured_work)
