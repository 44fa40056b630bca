from django.contrib import admin, messages

from marketplace.errors import ApplicationError

from . import reviewing
from .models import (
    Assignment,
    JobExport,
    MicroTask,
    QualificationAnswer,
    QualificationAttempt,
    QualificationItem,
    RejectionDispute,
    Slot,
    Submission,
    Video,
)


@admin.register(Video)
class VideoAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "job",
        "original_name",
        "status",
        "stage",
        "progress",
        "codec",
        "width",
        "height",
        "fps",
        "frame_count",
        "attempts",
        "bad_packets",
        "created_at",
    )
    list_filter = ("status", "stage", "codec", "variable_frame_rate")
    search_fields = ("original_name", "checksum", "job__title")
    raw_id_fields = ("job",)


@admin.register(MicroTask)
class MicroTaskAdmin(admin.ModelAdmin):
    # "Copy to the qualification test" reads gold answers, so quality.admin adds it (a layer up).
    list_display = (
        "id",
        "job",
        "video",
        "index",
        "frame_start",
        "frame_end",
        "motion",
        "clutter",
        "complexity",
        "expected_objects",
        "price",
        "is_gold",
        "replica_target",
        "status",
    )
    list_filter = ("status", "is_gold")
    search_fields = ("job__title",)
    raw_id_fields = ("job", "video")


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "microtask",
        "worker",
        "status",
        "claimed_at",
        "deadline",
        "submitted_at",
        "reviewed_at",
        "pay_amount",
    )
    list_filter = ("status",)
    search_fields = ("worker__username", "microtask__job__title")
    raw_id_fields = ("microtask", "worker", "slot", "reviewed_by")


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ("id", "assignment", "created_at")
    raw_id_fields = ("assignment",)


@admin.register(Slot)
class SlotAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "job",
        "microtask",
        "number",
        "is_gold",
        "priority",
        "assignment",
        "reserved_amount",
    )
    list_filter = ("is_gold",)
    search_fields = ("job__title",)
    raw_id_fields = ("job", "microtask", "assignment")


class QualificationAnswerInline(admin.StackedInline):
    model = QualificationAnswer


@admin.register(QualificationItem)
class QualificationItemAdmin(admin.ModelAdmin):
    list_display = ("id", "annotation_type", "position", "frame_start", "frame_end", "is_active")
    list_filter = ("annotation_type", "is_active")
    search_fields = ("instructions",)
    inlines = [QualificationAnswerInline]


@admin.register(QualificationAttempt)
class QualificationAttemptAdmin(admin.ModelAdmin):
    list_display = ("id", "worker", "annotation_type", "score", "passed", "created_at")
    list_filter = ("annotation_type", "passed")
    search_fields = ("worker__username",)
    raw_id_fields = ("worker",)


@admin.register(JobExport)
class JobExportAdmin(admin.ModelAdmin):
    list_display = ("id", "job", "requested_by", "format", "microtasks", "withheld", "created_at")
    list_filter = ("format",)
    search_fields = ("job__title", "requested_by__username")
    raw_id_fields = ("job", "requested_by")


def _decide_disputes(modeladmin, request, queryset, *, uphold: bool) -> None:
    done = 0
    for dispute in queryset:
        try:
            reviewing.dispute_decide(dispute_id=dispute.pk, by=request.user, uphold=uphold)
            done += 1
        except ApplicationError as exc:
            modeladmin.message_user(
                request, f"Dispute #{dispute.pk}: {exc.message}", messages.ERROR
            )
    modeladmin.message_user(request, f"{done} dispute(s) {'upheld' if uphold else 'dismissed'}.")


@admin.action(description="Uphold: reject the work and take its pay back")
def uphold_disputes(modeladmin, request, queryset):
    _decide_disputes(modeladmin, request, queryset, uphold=True)


@admin.action(description="Dismiss: the work stays approved and paid")
def dismiss_disputes(modeladmin, request, queryset):
    _decide_disputes(modeladmin, request, queryset, uphold=False)


@admin.register(RejectionDispute)
class RejectionDisputeAdmin(admin.ModelAdmin):
    list_display = ("id", "assignment", "job", "raised_by", "status", "reason", "created_at")
    list_filter = ("status",)
    search_fields = ("job__title", "reason", "assignment__worker__username")
    raw_id_fields = ("assignment", "job", "raised_by", "decided_by")
    readonly_fields = ("status", "decided_by", "decided_at")
    actions = [uphold_disputes, dismiss_disputes]
