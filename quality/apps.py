from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "quality"
    verbose_name = "Quality"

    def ready(self) -> None:
        from tasks.signals import work_rejected

        from .receivers import on_work_rejected

        # A stable uid: connecting twice (tests reloading apps) must not record twice.
        work_rejected.connect(on_work_rejected, dispatch_uid="quality.on_work_rejected")
