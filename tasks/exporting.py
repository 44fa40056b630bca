"""The requester's dataset download: consensus results gathered into ``tasks.exports``' formats.

Boxes are stored in the coordinates of the extracted frames the workers saw; exports give them in
the source video's pixels. Track jobs export each video's segments stitched across their seams
(``quality.selectors.video_tracks``); box jobs export each microtask's current consensus.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from marketplace.errors import ValidationError
from marketplace.models import AnnotationType, Job

from . import exports
from .models import Video

FORMATS = {
    "coco": ("application/json", "json"),
    "mot": ("application/zip", "zip"),
    "cvat": ("application/xml", "xml"),
}
EXPORTABLE_TYPES = (AnnotationType.BBOX, AnnotationType.TRACK)


@dataclass(frozen=True)
class ExportFile:
    content: bytes
    content_type: str
    filename: str


def _scale(video: Video) -> tuple[float, float]:
    sx = (video.width / video.frame_width) if video.width and video.frame_width else 1.0
    sy = (video.height / video.frame_height) if video.height and video.frame_height else 1.0
    return sx, sy


def _objects(shapes: list[dict], sx: float, sy: float) -> list[exports.ExportObject]:
    out = []
    for shape in shapes:
        x1, y1, x2, y2 = shape["box"]
        out.append(
            exports.ExportObject(
                label=shape["label"],
                x=x1 * sx,
                y=y1 * sy,
                w=(x2 - x1) * sx,
                h=(y2 - y1) * sy,
                track_id=shape.get("track"),
            )
        )
    return out


def _consensus_frames(video: Video) -> dict[str, list[dict]]:
    from quality.models import ConsensusResult  # quality builds on tasks, not the reverse

    frames: dict[str, list[dict]] = {}
    results = ConsensusResult.objects.filter(
        microtask__video=video, microtask__is_gold=False, is_current=True
    ).order_by("microtask__index")
    for result in results:
        for frame, shapes in (result.frames or {}).items():
            frames.setdefault(frame, []).extend(shapes)
    return frames


def export_video(video: Video) -> exports.ExportVideo:
    """One video's consensus labels as plain export data."""
    from quality.selectors import video_tracks

    if video.job.annotation_type == AnnotationType.TRACK:
        frames = video_tracks(video=video)["frames"]
    else:
        frames = _consensus_frames(video)
    sx, sy = _scale(video)
    return exports.ExportVideo(
        name=f"video-{video.pk}",
        width=video.width or 0,
        height=video.height or 0,
        frame_count=video.frame_count or 0,
        frames={int(f): _objects(shapes, sx, sy) for f, shapes in frames.items() if shapes},
    )


def job_export(*, job: Job, fmt: str) -> ExportFile:
    """The job's consensus labels in ``fmt`` (``coco``, ``mot`` or ``cvat``)."""
    if fmt not in FORMATS:
        raise ValidationError(
            f"Unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.",
            extra={"fields": {"format": [f"one of {', '.join(FORMATS)}"]}},
        )
    if job.annotation_type not in EXPORTABLE_TYPES:
        raise ValidationError(
            f"Exports are available for box and track jobs; this is a {job.annotation_type} job."
        )
    videos = [
        export_video(v)
        for v in Video.objects.filter(job=job, microtasks__isnull=False)
        .distinct()
        .select_related("job")
        .order_by("pk")
    ]
    labels = list(job.label_classes)
    content_type, ext = FORMATS[fmt]
    if fmt == "coco":
        content = exports.to_coco(videos, labels, description=job.title)
    elif len(videos) == 1:
        content = (exports.to_mot if fmt == "mot" else exports.to_cvat_video)(videos[0], labels)
    else:  # one file per video, zipped
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for v in videos:
                if fmt == "mot":
                    zf.writestr(f"{v.name}.zip", exports.to_mot(v, labels))
                else:
                    zf.writestr(f"{v.name}.xml", exports.to_cvat_video(v, labels))
        content, content_type, ext = buf.getvalue(), "application/zip", "zip"
    return ExportFile(content, content_type, f"job-{job.pk}-{fmt}.{ext}")
