from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    verbose_name = "Marketplace"

    def ready(self) -> None:
        from django.core import checks

        from .ratelimit import check_rates

        checks.register(check_rates)
