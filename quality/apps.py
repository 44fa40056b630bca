from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "quality"
    verbose_name = "Quality"

    def ready(self) -> None:
        from payments import selectors as trust_seam
        from tasks import proposals as consensus_seam

        from . import (
            receivers,  # noqa: F401 (connects the receivers)
            selectors,
            tasks,  # noqa: F401 (registers the Celery tasks services look up by name)
        )

        # Payments (the pay multiplier) and tasks (min_trust, the claim's prior) read trust
        # through this seam: they sit below quality and never import it.
        trust_seam.trust_source_install(reader=selectors.worker_trust, prior=selectors.PRIOR_TRUST)
        # The seam proposal source (tasks) reads the previous microtask's consensus through this.
        consensus_seam.consensus_reader_install(reader=selectors.consensus_frames_of)
