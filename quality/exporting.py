"""The requester's dataset download: consensus results gathered into ``tasks.exports``' formats.

It lives in quality because a dataset is consensus: it reads ``ConsensusResult`` and stitches
track segments (``quality.selectors.video_tracks``). The file formats (``tasks.exports``, pure)
and the records of what was handed over (``JobExport``, ``ExportedWork``: tasks' models, which
``tasks.reviewing`` reads) stay below it in tasks.

Boxes (and polygons) are stored in the coordinates of the extracted frames the workers saw;
exports give them in the source video's pixels. Which formats a job can be downloaded in follows
from its annotation type (:data:`FORMATS`, :func:`formats_for`, also the job page's links).
Track jobs export each video's segments stitched across their seams
(``quality.selectors.video_tracks``); box and polygon jobs export each microtask's current
consensus.

**Approved work only.** A microtask's result is delivered only when it rests on approved (paid)
work: every submission it was computed from is approved (:func:`deliverable`). A result still
waiting on pending work is withheld until that work is approved (by the requester, by quality's
policy, or by the auto-approval delay); a result built with work that was later rejected is
withheld for good, since nobody was paid for it (a reviewer's answer replaced the rejected work
it was compared with, so those rejections do not withhold it).

**Every export is recorded** (``JobExport``: who, when, which format, how much) with the
submissions whose labels it carried (``ExportedWork``), so the platform knows which labels a
requester already has: ``tasks.reviewing`` sends a later rejection of that work to an admin. The
download is a GET (a link on the job page); recording it is an audit of what was handed over,
which only ever grows, and the session cookie is ``SameSite=Lax``, so another site cannot make a
requester's browser record one behind their back except by navigating them to the download.
"""

from __future__ import annotations

import tempfile
from array import array
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO

from django.db import transaction

from marketplace.errors import Conflict, ValidationError
from marketplace.models import AnnotationType, Job, User
from tasks import exports, rle
from tasks.models import Assignment, AssignmentStatus, ExportedWork, JobExport, Video

from . import events as events_mod
from .models import ConsensusDecision, ConsensusResult
from .selectors import video_tracks

BOXES = (AnnotationType.BBOX, AnnotationType.TRACK)
SHAPES = (*BOXES, AnnotationType.POLYGON)
EVENTS = (AnnotationType.EVENT,)
MASKS = (AnnotationType.MASK,)


@dataclass(frozen=True)
class Format:
    content_type: str
    ext: str
    types: tuple[str, ...]  # the annotation types it carries
    title: str


# Every download format: its file type and the annotation types it can carry (MOT and Label
# Studio's videorectangle are boxes; polygons go to COCO segmentation, CVAT and YOLO; masks to
# COCO's RLE segmentation, CVAT's <mask> and per-frame class-index PNGs).
FORMATS: dict[str, Format] = {
    "coco": Format("application/json", "json", (*SHAPES, *MASKS), "COCO JSON"),
    "mot": Format("application/zip", "zip", BOXES, "MOT 1.1"),
    "cvat": Format("application/xml", "xml", (*SHAPES, *MASKS), "CVAT for video XML"),
    "labelstudio": Format("application/json", "json", BOXES, "Label Studio JSON"),
    "yolo": Format("application/zip", "zip", SHAPES, "YOLO"),
    "activitynet": Format("application/json", "json", EVENTS, "ActivityNet JSON (events)"),
    "png": Format("application/zip", "zip", MASKS, "PNG masks (semantic, per frame)"),
}


def formats_for(annotation_type: str) -> list[tuple[str, str]]:
    """(format, title) of every format a job of ``annotation_type`` can be downloaded in."""
    return [(k, f.title) for k, f in FORMATS.items() if annotation_type in f.types]


def job_formats(job: Job) -> list[tuple[str, str]]:
    """(format, title) of every format ``job`` can be downloaded in: its type's, and for a track
    job with event labels also ActivityNet (its tracks' events)."""
    out = formats_for(job.annotation_type)
    if job.annotation_type == AnnotationType.TRACK and job.event_labels:
        out.append(("activitynet", FORMATS["activitynet"].title))
    return out


EXPORT_SPOOL_BYTES = 4 * 1024 * 1024  # an export larger than this is written to disk
RECORD_BATCH = 5_000  # exported submissions recorded per INSERT


@dataclass(frozen=True)
class ExportFile:
    """A finished export: ``file`` (a temporary file, at its start) holds the bytes."""

    file: IO[bytes]
    size: int
    content_type: str
    filename: str
    export_id: int = 0
    microtasks: int = 0  # results delivered
    withheld: int = 0  # results not delivered: they rest on work not approved

    def chunks(self, size: int = 64 * 1024) -> Iterator[bytes]:
        """The file in blocks of ``size`` bytes, from its start."""
        self.file.seek(0)
        while block := self.file.read(size):
            yield block

    @property
    def content(self) -> bytes:
        """The whole file in memory (small exports and tests; views stream ``file``)."""
        self.file.seek(0)
        data = self.file.read()
        self.file.seek(0)
        return data


REVIEWED = ConsensusDecision.REVIEWED  # a reviewer's answer


def deliverable(decision: str, contributor_statuses: Sequence[str]) -> bool:
    """Whether a microtask's result may be delivered: it rests on approved work only."""
    statuses = contributor_statuses
    if decision == REVIEWED:
        statuses = [s for s in statuses if s != AssignmentStatus.REJECTED]
    return all(s == AssignmentStatus.APPROVED for s in statuses)


@dataclass(frozen=True)
class Delivery:
    microtasks: frozenset[int]  # whose current result may be delivered
    assignments: frozenset[int]  # the approved submissions those results rest on
    withheld: int


def job_delivery(job: Job, *, video: Video | None = None) -> Delivery:
    """Which of ``job``'s current results (of one ``video``) rest on approved work only (see
    the module). Exports ask video by video, so memory follows a video, not the job."""
    results = ConsensusResult.objects.filter(
        microtask__job=job, microtask__is_gold=False, is_current=True
    )
    assignments = Assignment.objects.filter(microtask__job=job)
    if video is not None:
        results = results.filter(microtask__video=video)
        assignments = assignments.filter(microtask__video=video)
    rows = [
        (mt, decision, [int(k) for k in (agreement or {})])
        for mt, decision, agreement in results.values_list(
            "microtask_id", "decision", "annotator_agreement"
        )
    ]
    status = dict(
        assignments.filter(pk__in={k for _, _, ids in rows for k in ids}).values_list(
            "pk", "status"
        )
    )
    microtasks, assignments, withheld = set(), set(), 0
    for mt, decision, ids in rows:
        if deliverable(decision, [status.get(k, "") for k in ids]):
            microtasks.add(mt)
            assignments.update(k for k in ids if status.get(k) == AssignmentStatus.APPROVED)
        else:
            withheld += 1
    return Delivery(frozenset(microtasks), frozenset(assignments), withheld)


def _scale(video: Video) -> tuple[float, float]:
    sx = (video.width / video.frame_width) if video.width and video.frame_width else 1.0
    sy = (video.height / video.frame_height) if video.height and video.frame_height else 1.0
    return sx, sy


def _source_rle(value: dict, video: Video) -> dict:
    """A mask drawn on the extracted frame, in the source video's pixels (nearest neighbour)."""
    if not video.width or not video.height:
        return value
    return rle.resize(value, height=video.height, width=video.width)


def _objects(
    shapes: list[dict], sx: float, sy: float, video: Video | None = None
) -> list[exports.ExportObject]:
    out = []
    for shape in shapes:
        mask = None
        if shape.get("rle"):
            mask = _source_rle(shape["rle"], video) if video is not None else shape["rle"]
            if shape.get("track") is None:  # a mask job's instance
                out.append(exports.mask_object(shape["label"], mask))
                continue
            # else a track's keyframe mask, beside its box (``exports``: "Masks on tracks")
        extras = {
            "attributes": shape.get("attributes") or None,
            "relations": tuple(
                (r["predicate"], int(r["object"])) for r in shape.get("relations", ())
            ),
        }
        if shape.get("points"):
            points = [(x * sx, y * sy) for x, y in shape["points"]]
            out.append(exports.polygon_from_points(shape["label"], points, **extras))
            continue
        x1, y1, x2, y2 = shape["box"]
        out.append(
            exports.ExportObject(
                label=shape["label"],
                x=x1 * sx,
                y=y1 * sy,
                w=(x2 - x1) * sx,
                h=(y2 - y1) * sy,
                track_id=shape.get("track"),
                rle=mask,
                **extras,
            )
        )
    return out


def _consensus_frames(video: Video, microtask_ids: Collection[int]) -> dict[str, list[dict]]:
    frames: dict[str, list[dict]] = {}
    results = ConsensusResult.objects.filter(
        microtask__video=video,
        microtask__is_gold=False,
        is_current=True,
        microtask_id__in=list(microtask_ids),
    ).order_by("microtask__index")
    for result in results:
        for frame, shapes in (result.frames or {}).items():
            frames.setdefault(frame, []).extend(shapes)
    return frames


def _consensus_events(video: Video, microtask_ids: Collection[int]) -> list[exports.ExportEvent]:
    """The events of the video's current results, microtask by microtask; an event that runs to
    a microtask's last frame and one of its label starting on the next microtask's first frame
    are one event cut by the boundary, joined here (event segments share no frames)."""
    out: list[exports.ExportEvent] = []
    open_at: dict[tuple[str, int | None], int] = {}  # key -> index in out of an event ending
    results = (
        ConsensusResult.objects.filter(
            microtask__video=video,
            microtask__is_gold=False,
            is_current=True,
            microtask_id__in=list(microtask_ids),
        )
        .select_related("microtask")
        .order_by("microtask__index")
    )
    previous_end: int | None = None
    for result in results:
        mt = result.microtask
        joinable = (
            open_at if previous_end is not None and mt.frame_start == previous_end + 1 else {}
        )
        open_next: dict[tuple[str, int | None], int] = {}
        for e in events_mod.from_frames(result.frames or {}):
            k = joinable.get(e.key)
            if k is not None and e.start == mt.frame_start:
                out[k] = exports.ExportEvent(e.label, out[k].start, e.end, e.track)
            else:
                k = len(out)
                out.append(exports.ExportEvent(e.label, e.start, e.end, e.track))
            if e.end == mt.frame_end:
                open_next[e.key] = k
        open_at, previous_end = open_next, mt.frame_end
    return out


def export_video(video: Video, microtask_ids: Collection[int]) -> exports.ExportVideo:
    """One video's consensus labels of ``microtask_ids`` as plain export data."""
    events: list[exports.ExportEvent] = []
    if video.job.annotation_type == AnnotationType.EVENT:
        frames: dict[str, list[dict]] = {}  # an event job's frames are its events
        events = _consensus_events(video, microtask_ids)
    elif video.job.annotation_type == AnnotationType.TRACK:
        tracks = video_tracks(video=video, microtask_ids=microtask_ids)
        frames = tracks["frames"]
        events = [
            exports.ExportEvent(e["label"], e["start"], e["end"], e.get("track"))
            for e in tracks["events"]
        ]
    else:
        frames = _consensus_frames(video, microtask_ids)
    sx, sy = _scale(video)
    return exports.ExportVideo(
        name=f"video-{video.pk}",
        width=video.width or 0,
        height=video.height or 0,
        frame_count=video.frame_count or 0,
        fps=video.fps or 0.0,
        frames={int(f): _objects(shapes, sx, sy, video) for f, shapes in frames.items() if shapes},
        events=events,
    )


def _chunks(
    fmt: str,
    videos: Iterable[exports.ExportVideo],
    labels: list[str],
    title: str,
    *,
    single: bool,
    label_attributes: dict | None = None,
):
    """The file's chunks and, when it differs from the format's, its (content type, extension).
    ``videos`` is read once, in order; ``single`` says whether the job has one video."""
    if fmt == "coco":
        return exports.iter_coco(videos, labels, description=title), None
    if fmt == "mot":
        return exports.iter_mot(videos, labels, single=single), None
    if fmt == "labelstudio":
        return exports.iter_label_studio(videos), None
    if fmt == "yolo":
        return exports.iter_yolo(videos, labels), None
    if fmt == "activitynet":
        return exports.iter_activitynet(videos, labels), None
    if fmt == "png":
        return exports.iter_semantic_pngs(videos, labels), None
    if single:
        (video,) = videos
        return exports.iter_cvat_video(video, labels, label_attributes=label_attributes), None
    return exports.iter_cvat_videos(videos, labels, label_attributes=label_attributes), (
        "application/zip",
        "zip",
    )


def job_export_videos(job: Job, microtask_ids: Collection[int]) -> list[exports.ExportVideo]:
    """The job's videos with the consensus labels of ``microtask_ids``, as plain export data
    (all in memory: for small jobs and tests; ``job_export`` reads video by video)."""
    return [
        export_video(v, microtask_ids)
        for v in Video.objects.filter(job=job, microtasks__isnull=False)
        .distinct()
        .select_related("job")
        .order_by("pk")
    ]


@transaction.atomic
def job_export(*, job: Job, fmt: str, by: User | None) -> ExportFile:
    """The job's consensus labels of approved work in ``fmt`` (a key of :data:`FORMATS`),
    recorded as an export by ``by``."""
    if fmt not in FORMATS:
        raise ValidationError(
            f"Unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.",
            extra={"fields": {"format": [f"one of {', '.join(FORMATS)}"]}},
        )
    usable = [k for k, _ in job_formats(job)]
    if fmt not in usable:
        # A known format the job's kind cannot fill: the request is well formed, the job is not
        # of a kind that format carries (409, as schema-valid input is never a 400).
        raise Conflict(
            f"{FORMATS[fmt].title} carries no {job.annotation_type} annotations; "
            + (
                f"this job exports as {', '.join(usable)}."
                if usable
                else f"a {job.annotation_type} job has no export."
            )
        )
    # Streamed video by video: one video's results in memory at a time, the file written to
    # a spooled temporary file (on disk past EXPORT_SPOOL_BYTES); of the work it carried only
    # the assignment ids are kept (8 bytes each) to be recorded once the file is written.
    totals = {"microtasks": 0, "withheld": 0}
    carried = array("q")

    def videos():
        for v in (
            Video.objects.filter(job=job, microtasks__isnull=False)
            .distinct()
            .select_related("job")
            .order_by("pk")
        ):
            delivery = job_delivery(job, video=v)
            totals["microtasks"] += len(delivery.microtasks)
            totals["withheld"] += delivery.withheld
            carried.extend(sorted(delivery.assignments))
            yield export_video(v, delivery.microtasks)

    labels = list(job.label_classes)
    # Handed to the caller (the view's response closes it), or closed here on an error.
    out = tempfile.SpooledTemporaryFile(max_size=EXPORT_SPOOL_BYTES)  # noqa: SIM115
    try:
        content_type, ext = FORMATS[fmt].content_type, FORMATS[fmt].ext
        single = Video.objects.filter(job=job, microtasks__isnull=False).distinct().count() == 1
        chunks, other = _chunks(
            fmt, videos(), labels, job.title, single=single, label_attributes=job.label_attributes
        )
        for chunk in chunks:
            out.write(chunk)
        if other:
            content_type, ext = other
    except BaseException:
        out.close()
        raise
    record = JobExport.objects.create(job=job, requested_by=by, format=fmt, **totals)
    # The first export that carried a submission is the one on record; later ones add only
    # what is new (ignore_conflicts on the assignment primary key).
    for i in range(0, len(carried), RECORD_BATCH):
        ExportedWork.objects.bulk_create(
            [
                ExportedWork(assignment_id=k, first_export=record)
                for k in carried[i : i + RECORD_BATCH]
            ],
            ignore_conflicts=True,
        )
    size = out.tell()
    out.seek(0)
    return ExportFile(
        out, size, content_type, f"job-{job.pk}-{fmt}.{ext}", export_id=record.pk, **totals
    )
