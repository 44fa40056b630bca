from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Videos and microtasks"

    def ready(self) -> None:
        from . import receivers  # noqa: F401 (connects the receivers)
