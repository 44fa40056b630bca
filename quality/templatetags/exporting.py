"""The dataset download links of a job page: the formats its annotation type exports as."""

from django import template

from quality.exporting import job_formats

register = template.Library()


@register.simple_tag
def export_formats(job) -> list[tuple[str, str]]:
    """(format, title) pairs for ``job``'s downloads (``quality.exporting.FORMATS``)."""
    return job_formats(job)
