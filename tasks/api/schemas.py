"""The OpenAPI components of the worker's and the requester's work: the annotation payload of
every type, and the assignment, claim, submit and submission-row responses.

These serializers describe; they do not build responses. The bodies are built by the whitelists
of ``tasks.work_selectors`` (``worker_view_of``, ``my_work_row``) and ``tasks.api.review``, so
that nothing a worker must not see slips in with a new field; the schema states their shape,
and Schemathesis (``tests/security/test_schemathesis.py``) checks every response against it, so
a whitelist and its component cannot drift apart unnoticed.

The payload formats are ``tasks.annotations``' (its docstring is the reference): one key per
annotation type, whose list the service checks field by field against the job's classes, frames
and frame size (rules JSON Schema cannot state: those answer 400 with the path of each problem).
"""

from __future__ import annotations

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from marketplace.models import AnnotationType, QualificationStatus

from ..annotations import MAX_EVENTS, MAX_KEYFRAMES, MAX_POLYGON_POINTS, MAX_SHAPES
from ..attributes import MAX_RELATIONS
from ..models import AssignmentStatus
from ..rle import MAX_COUNTS

# --- the annotation payload, one component per type -------------------------------------------


def _frame() -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=0, help_text="A frame number of the microtask (``task.frames[].frame``)"
    )


def _label() -> serializers.CharField:
    return serializers.CharField(help_text="One of the job's classes (``job.classes``)")


def _box(**kwargs) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.FloatField(),
        min_length=4,
        max_length=4,
        help_text="[x1, y1, x2, y2] in pixels of the frame, origin top-left; x2 > x1, y2 > y1",
        **kwargs,
    )


def _attributes() -> serializers.DictField:
    return serializers.DictField(
        required=False,
        help_text="Values of the class's attributes (``job.attributes``): true/false, one of "
        "a choice's values, or a number within its bounds",
    )


class RelationSerializer(serializers.Serializer):
    subject = serializers.IntegerField(
        min_value=0, help_text="An index into boxes/polygons, or a track id"
    )
    predicate = serializers.CharField(help_text="One of the job's predicates (``job.predicates``)")
    object = serializers.IntegerField(
        min_value=0, help_text="Likewise; on the subject's frame for boxes and polygons"
    )


def _relations() -> serializers.ListField:
    return serializers.ListField(
        child=RelationSerializer(), max_length=MAX_RELATIONS, required=False
    )


class BoxShapeSerializer(serializers.Serializer):
    frame = _frame()
    label = _label()
    box = _box()
    attributes = _attributes()


class BboxPayloadSerializer(serializers.Serializer):
    """``bbox`` jobs: boxes on the microtask's frames."""

    boxes = serializers.ListField(child=BoxShapeSerializer(), max_length=MAX_SHAPES)
    relations = _relations()


class PolygonShapeSerializer(serializers.Serializer):
    frame = _frame()
    label = _label()
    points = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2),
        min_length=3,
        max_length=MAX_POLYGON_POINTS,
        help_text="[[x, y], ...] inside the frame; the edges may not cross",
    )
    attributes = _attributes()


class PolygonPayloadSerializer(serializers.Serializer):
    """``polygon`` jobs: polygons on the microtask's frames."""

    polygons = serializers.ListField(child=PolygonShapeSerializer(), max_length=MAX_SHAPES)
    relations = _relations()


class RleSerializer(serializers.Serializer):
    size = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        min_length=2,
        max_length=2,
        help_text="[height, width]: the frame's (``task.frame_size``)",
    )
    counts = serializers.ListField(
        child=serializers.IntegerField(min_value=0),
        min_length=1,
        max_length=MAX_COUNTS,
        help_text="Runs in column-major order, from a run of 0-pixels; they add up to h x w",
    )


class MaskShapeSerializer(serializers.Serializer):
    frame = _frame()
    label = _label()
    rle = RleSerializer(
        required=False,
        help_text="COCO's uncompressed RLE of one instance (give this or ``points``)",
    )
    points = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2),
        min_length=3,
        max_length=MAX_POLYGON_POINTS,
        required=False,
        help_text="Polygon to mask: rasterised and stored as ``rle``; the edges may not cross",
    )


class MaskPayloadSerializer(serializers.Serializer):
    """``mask`` jobs: one item per instance; semantic segmentation is the union per class."""

    masks = serializers.ListField(child=MaskShapeSerializer(), max_length=MAX_SHAPES)


class FrameLabelSerializer(serializers.Serializer):
    frame = _frame()
    label = _label()


class ClassifyPayloadSerializer(serializers.Serializer):
    """``classify`` jobs: one class for every frame of the microtask, each frame once."""

    labels = serializers.ListField(child=FrameLabelSerializer(), max_length=MAX_SHAPES)


class KeyframeSerializer(serializers.Serializer):
    frame = serializers.IntegerField(
        min_value=0, help_text="Frames strictly increase along a track's keyframes"
    )
    box = _box(required=False)
    outside = serializers.BooleanField(
        required=False,
        help_text="The object leaves the frame here (its box may be left out); not on the first",
    )
    mask = RleSerializer(
        required=False,
        help_text="A job with track_masks: the object's mask on this keyframe (not when outside); "
        "the box may then be left out (it is the mask's extents), else 90% of the mask lies in "
        "it. Masks are not interpolated between keyframes.",
    )
    attributes = _attributes()


class TrackSerializer(serializers.Serializer):
    id = serializers.IntegerField(min_value=0, help_text="Unique within the payload")
    label = _label()
    keyframes = serializers.ListField(
        child=KeyframeSerializer(), min_length=1, max_length=MAX_KEYFRAMES
    )
    attributes = _attributes()


class EventSerializer(serializers.Serializer):
    label = serializers.CharField(help_text="One of the job's classes (an event job's)")
    start = serializers.IntegerField(
        min_value=0, help_text="First frame of the event, inside the microtask's range"
    )
    end = serializers.IntegerField(min_value=0, help_text="Last frame (inclusive), >= start")


class TrackEventSerializer(EventSerializer):
    label = serializers.CharField(help_text="One of the job's ``event_labels``")
    track = serializers.IntegerField(min_value=0, help_text="The id of a track in this payload")


class TrackPayloadSerializer(serializers.Serializer):
    """``track`` jobs: objects followed through the frame range by keyframes; the frames between
    two keyframes are interpolated (``tasks.interpolation``). A job with ``event_labels`` also
    takes the tracks' events (two of one label on one track never share a frame)."""

    tracks = serializers.ListField(child=TrackSerializer(), max_length=MAX_SHAPES)
    events = serializers.ListField(
        child=TrackEventSerializer(), max_length=MAX_EVENTS, required=False
    )
    relations = _relations()


class EventPayloadSerializer(serializers.Serializer):
    """``event`` jobs: labelled frame intervals (actions, events) inside the microtask's range;
    two events of one label never share a frame."""

    events = serializers.ListField(child=EventSerializer(), max_length=MAX_EVENTS)


@extend_schema_field(TrackSerializer)
class TrackField(serializers.JSONField):
    """One track in the ``track`` payload's format. At run time DRF's JSONField: the value reaches
    ``tasks.annotations.validate_payload`` as sent, which answers with the path of each problem."""


PAYLOAD_SERIALIZERS = {
    AnnotationType.BBOX: BboxPayloadSerializer,
    AnnotationType.POLYGON: PolygonPayloadSerializer,
    AnnotationType.CLASSIFY: ClassifyPayloadSerializer,
    AnnotationType.TRACK: TrackPayloadSerializer,
    AnnotationType.EVENT: EventPayloadSerializer,
    AnnotationType.MASK: MaskPayloadSerializer,
}

ANNOTATION_PAYLOAD = PolymorphicProxySerializer(
    component_name="AnnotationPayload",
    serializers=list(PAYLOAD_SERIALIZERS.values()),
    resource_type_field_name=None,  # the one list key says which type it is
)


@extend_schema_field(ANNOTATION_PAYLOAD)
class AnnotationPayloadField(serializers.JSONField):
    """An annotation in its job type's format. At run time DRF's JSONField: the value reaches
    ``tasks.annotations.validate_payload`` as sent, which answers with the path of each problem."""


# --- per-frame shapes, as stored ---------------------------------------------------------------


class StoredRelationSerializer(serializers.Serializer):
    predicate = serializers.CharField()
    object = serializers.IntegerField(
        min_value=0, help_text="The index of the object's shape among the same frame's shapes"
    )


class FrameShapeSerializer(serializers.Serializer):
    """One shape on one frame as stored (``tasks.annotations``' per-frame shapes: a
    submission's after interpolation, a consensus's): a label, and what the type draws."""

    label = serializers.CharField(
        allow_blank=True, help_text="The class (empty on a consensus box of no known class)"
    )
    box = _box(required=False)
    track = serializers.IntegerField(required=False, help_text="The track's id (track jobs)")
    points = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2),
        required=False,
        help_text="A polygon's [[x, y], ...]",
    )
    rle = RleSerializer(required=False, help_text="A mask (mask jobs, a track's keyframe mask)")
    event = serializers.IntegerField(
        required=False, min_value=0, help_text="The index of the event covering this frame"
    )
    attributes = _attributes()
    relations = serializers.ListField(
        child=StoredRelationSerializer(),
        required=False,
        help_text="Relations of which this shape is the subject",
    )


def frame_shapes(**kwargs) -> serializers.DictField:
    """Per-frame shapes: ``{"<frame number>": [shape, ...]}``."""
    kwargs.setdefault("help_text", "Frame number (as a string) -> the shapes on that frame")
    return serializers.DictField(
        child=serializers.ListField(child=FrameShapeSerializer()), **kwargs
    )


# --- responses -------------------------------------------------------------------------------


class MoneySerializer(serializers.Serializer):
    amount = serializers.IntegerField(help_text="Minor units")
    currency = serializers.CharField()


class WorkerJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    instructions = serializers.CharField(allow_blank=True)
    annotation_type = serializers.ChoiceField(choices=AnnotationType.choices)
    classes = serializers.ListField(child=serializers.CharField())
    event_labels = serializers.ListField(
        child=serializers.CharField(),
        help_text="A track job's event labels: actions of a track, sent as the payload's events",
    )
    attributes = serializers.DictField(
        child=serializers.ListField(child=serializers.DictField()),
        help_text="Attributes to give per class (the job's label_attributes)",
    )
    predicates = serializers.ListField(
        child=serializers.CharField(), help_text="Predicates a relation may use"
    )
    track_masks = serializers.BooleanField(
        help_text="A track job asking for a mask on each keyframe (the keyframes' mask)"
    )


class WorkerFrameSerializer(serializers.Serializer):
    frame = serializers.IntegerField()
    url = serializers.CharField(
        allow_blank=True, help_text="The frame's image (access-checked); empty when not extracted"
    )
    timestamp = serializers.FloatField(allow_null=True, help_text="Seconds into the video")


class WorkerTaskSerializer(serializers.Serializer):
    frame_start = serializers.IntegerField()
    frame_end = serializers.IntegerField()
    frames = serializers.ListField(child=WorkerFrameSerializer())
    annotate_frames = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="The frames to annotate for per-frame types (empty: every frame of the range)",
    )
    keyframe_step = serializers.IntegerField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    fps = serializers.FloatField(allow_null=True)


class OwnSubmissionSerializer(serializers.Serializer):
    payload = AnnotationPayloadField()


class AssignmentSerializer(serializers.Serializer):
    """One of the worker's assignments (``tasks.work_selectors.worker_view_of``): the answer to
    a claim, a submit and a read of the assignment."""

    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=AssignmentStatus.choices)
    job = WorkerJobSerializer()
    task = WorkerTaskSerializer()
    time_limit_seconds = serializers.IntegerField()
    claimed_at = serializers.DateTimeField()
    deadline = serializers.DateTimeField()
    pay = MoneySerializer(help_text="The microtask's price")
    submitted_at = serializers.DateTimeField(allow_null=True)
    active_seconds = serializers.FloatField(allow_null=True)
    pay_amount = serializers.IntegerField(
        allow_null=True, help_text="What the work earned, once approved"
    )
    rejection_reason = serializers.CharField(allow_blank=True)
    submission = OwnSubmissionSerializer(allow_null=True, help_text="Your submitted annotation")


class ProposedShapeSerializer(serializers.Serializer):
    """One proposed shape: a payload item of the job's type plus its reference and confidence."""

    ref = serializers.CharField(
        help_text='"<proposal id>:<index>": send it as the item\'s "from_proposal" when you keep '
        "the shape (moved or not)"
    )
    confidence = serializers.FloatField(min_value=0, max_value=1)
    frame = serializers.IntegerField(required=False)
    label = serializers.CharField()
    box = serializers.ListField(child=serializers.FloatField(), required=False)
    points = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()), required=False
    )
    id = serializers.IntegerField(required=False)
    keyframes = serializers.ListField(child=serializers.DictField(), required=False)


class WorkerProposalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    source = serializers.CharField()
    model_version = serializers.CharField(allow_blank=True)
    confidence = serializers.FloatField(min_value=0, max_value=1)
    key = serializers.CharField(help_text="The payload list the shapes belong to (boxes, ...)")
    shapes = ProposedShapeSerializer(many=True)


class AssignmentDetailSerializer(AssignmentSerializer):
    """``AssignmentSerializer`` plus, while the claim is live, the microtask's proposals."""

    proposals = WorkerProposalSerializer(
        many=True, help_text="Machine suggestions to accept, correct or ignore (tasks.proposals)"
    )


class MyWorkRowSerializer(serializers.Serializer):
    """A row of the worker's own assignments (``tasks.work_selectors.my_work_row``)."""

    id = serializers.IntegerField()
    job_title = serializers.CharField()
    annotation_type = serializers.ChoiceField(choices=AnnotationType.choices)
    status = serializers.ChoiceField(choices=AssignmentStatus.choices)
    claimed_at = serializers.DateTimeField()
    deadline = serializers.DateTimeField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    reviewed_at = serializers.DateTimeField(allow_null=True)
    pay = MoneySerializer()
    pay_amount = serializers.IntegerField(allow_null=True)
    rejection_reason = serializers.CharField(allow_blank=True)


class LeaseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=AssignmentStatus.choices)
    deadline = serializers.DateTimeField()


class ReleasedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=AssignmentStatus.choices)


class SubmissionRowSerializer(serializers.Serializer):
    """A job's submission as its requester reviews it (``tasks.api.review``)."""

    id = serializers.IntegerField(help_text="The assignment's id (approve/reject take it)")
    worker = serializers.CharField(help_text="The worker's username")
    microtask = serializers.IntegerField()
    frame_start = serializers.IntegerField()
    frame_end = serializers.IntegerField()
    status = serializers.ChoiceField(choices=AssignmentStatus.choices)
    claimed_at = serializers.DateTimeField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    work_seconds = serializers.FloatField(allow_null=True)
    active_seconds = serializers.FloatField(allow_null=True)
    reviewed_at = serializers.DateTimeField(allow_null=True)
    auto_approve_at = serializers.DateTimeField(allow_null=True)
    pay_amount = serializers.IntegerField(allow_null=True)
    rejection_reason = serializers.CharField(allow_blank=True)
    payload = AnnotationPayloadField(allow_null=True)


class QualificationQuestionSerializer(serializers.Serializer):
    """A question of a qualification test (``tasks.qualifying.question_for_worker``): a short
    microtask whose frames are public test material; the answer is a payload of the type."""

    id = serializers.IntegerField(help_text="Key of this question's answer in `answers`")
    instructions = serializers.CharField(allow_blank=True)
    classes = serializers.ListField(child=serializers.CharField())
    attributes = serializers.DictField(
        child=serializers.ListField(child=serializers.DictField()),
        help_text="Attributes to give per class, as a job's",
    )
    predicates = serializers.ListField(
        child=serializers.CharField(), help_text="Predicates a relation may use"
    )
    event_labels = serializers.ListField(
        child=serializers.CharField(),
        help_text="A track question's event labels: mark these events on the tracks",
    )
    frame_start = serializers.IntegerField()
    frame_end = serializers.IntegerField()
    annotate_frames = serializers.ListField(child=serializers.IntegerField())
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    frames = serializers.ListField(child=WorkerFrameSerializer())


class QualificationTestSerializer(serializers.Serializer):
    annotation_type = serializers.ChoiceField(choices=AnnotationType.choices)
    questions = serializers.ListField(child=QualificationQuestionSerializer())


class JobBoardEntrySerializer(serializers.Serializer):
    """A published job with open work, as the board shows it
    (``tasks.work_selectors.job_board``)."""

    id = serializers.IntegerField()
    title = serializers.CharField()
    annotation_type = serializers.ChoiceField(choices=AnnotationType.choices)
    instructions = serializers.CharField(allow_blank=True)
    open_tasks = serializers.IntegerField(
        help_text="Open replicas, counted up to one past the cap (see ``open_tasks_capped``)"
    )
    open_tasks_capped = serializers.BooleanField(help_text="More open work than the board counts")
    pay = MoneySerializer(help_text="The mean price of a microtask")
    estimated_seconds = serializers.IntegerField(help_text="A rough estimate of one microtask")
    qualified = serializers.BooleanField(help_text="You passed this type's qualification test")
    time_limit_seconds = serializers.IntegerField(help_text="How long a claim lasts")


class JobBoardSerializer(serializers.Serializer):
    results = JobBoardEntrySerializer(many=True)


NOT_TAKEN = "not_taken"


class QualificationSuspensionSerializer(serializers.Serializer):
    until = serializers.DateTimeField(
        allow_null=True, help_text="When the test may be retaken (null: when an admin lifts it)"
    )
    may_retake = serializers.BooleanField()
    message = serializers.CharField(help_text="Why, and until when (``tasks.suspensions``)")


class WorkerQualificationSerializer(serializers.Serializer):
    annotation_type = serializers.ChoiceField(choices=AnnotationType.choices)
    label = serializers.CharField()
    status = serializers.ChoiceField(
        choices=[*QualificationStatus.choices, (NOT_TAKEN, "Not taken")]
    )
    score = serializers.FloatField(allow_null=True, help_text="Of the last attempt, 0-1")
    attempts = serializers.IntegerField()
    questions = serializers.IntegerField(help_text="Questions in the test (0: no test yet)")
    suspension = QualificationSuspensionSerializer(
        allow_null=True, help_text="Set while the qualification is suspended"
    )


class WorkerQualificationsSerializer(serializers.Serializer):
    """Your qualification for every annotation type, taken or not."""

    results = WorkerQualificationSerializer(many=True)
