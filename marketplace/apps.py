from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    verbose_name = "Marketplace"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .runtime import log_mode

        log_mode()
