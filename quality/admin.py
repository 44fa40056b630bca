from django.contrib import admin, messages

from marketplace.errors import ApplicationError
from tasks.admin import MicroTaskAdmin
from tasks.models import MicroTask

from . import qualifying, services
from .models import (
    Appeal,
    ConsensusResult,
    FraudFlag,
    GoldAnswer,
    GoldResult,
    JobQualityPolicy,
    RequesterStanding,
    ReviewItem,
    StandingEvidence,
    TrustEvidence,
    WorkerTrust,
)


def _validate_gold(modeladmin, request, queryset, *, valid: bool) -> None:
    done = 0
    for gold in queryset:
        try:
            services.gold_validate(microtask_id=gold.microtask_id, by=request.user, valid=valid)
            done += 1
        except ApplicationError as exc:
            modeladmin.message_user(request, f"Gold #{gold.pk}: {exc.message}", messages.ERROR)
    modeladmin.message_user(
        request, f"{done} gold answer(s) {'validated' if valid else 'refused'}."
    )


@admin.action(description="Validate: counts platform-wide (with the results so far)")
def validate_gold(modeladmin, request, queryset):
    _validate_gold(modeladmin, request, queryset, valid=True)


@admin.action(description="Refuse: the answer is wrong; it counts nowhere and is retired")
def refuse_gold(modeladmin, request, queryset):
    _validate_gold(modeladmin, request, queryset, valid=False)


@admin.register(GoldAnswer)
class GoldAnswerAdmin(admin.ModelAdmin):
    list_display = (
        "microtask",
        "source",
        "created_by",
        "validation",
        "validated_via",
        "created_at",
    )
    list_filter = ("source", "validation", "validated_via")
    search_fields = ("microtask__id", "microtask__job__title")
    raw_id_fields = ("microtask", "created_by", "validated_by")
    readonly_fields = ("validation", "validated_via", "validated_by", "validated_at")
    actions = [validate_gold, refuse_gold]


class StandingEvidenceInline(admin.TabularInline):
    model = StandingEvidence
    extra = 0
    fields = ("at", "kind", "score", "standing_before", "standing_after", "counts_platform_wide",
              "void", "note")  # fmt: skip
    readonly_fields = fields
    can_delete = False


@admin.register(RequesterStanding)
class RequesterStandingAdmin(admin.ModelAdmin):
    list_display = ("worker", "requester", "annotation_type", "standing", "excluded")
    list_filter = ("annotation_type", "excluded")
    search_fields = ("worker__username", "requester__username")
    raw_id_fields = ("worker", "requester")
    inlines = [StandingEvidenceInline]


@admin.register(GoldResult)
class GoldResultAdmin(admin.ModelAdmin):
    list_display = ("assignment", "worker", "annotation_type", "score", "passed", "created_at")
    list_filter = ("passed", "annotation_type")
    search_fields = ("worker__username",)
    raw_id_fields = ("assignment", "microtask", "worker")


@admin.register(ConsensusResult)
class ConsensusResultAdmin(admin.ModelAdmin):
    list_display = ("microtask", "algorithm", "agreement", "replicas", "decision", "is_current")
    list_filter = ("algorithm", "decision", "is_current")
    search_fields = ("microtask__id",)
    raw_id_fields = ("microtask",)


class TrustEvidenceInline(admin.TabularInline):
    model = TrustEvidence
    extra = 0
    fields = ("at", "kind", "score", "trust_before", "trust_after", "note")
    readonly_fields = fields
    can_delete = False


@admin.action(description="Lift suspension: the worker may claim this type of work again")
def lift_suspensions(modeladmin, request, queryset):
    done = 0
    for row in queryset.select_related("worker"):
        try:
            services.worker_suspension_lift(trust_row=row, by=request.user)
            done += 1
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{row}: {exc.message}", messages.ERROR)
    modeladmin.message_user(request, f"{done} suspension(s) lifted; trust kept as it was.")


@admin.register(WorkerTrust)
class WorkerTrustAdmin(admin.ModelAdmin):
    list_display = ("worker", "annotation_type", "trust", "tier", "gold_count", "suspended")
    list_filter = ("annotation_type", "tier", "suspended")
    search_fields = ("worker__username",)
    raw_id_fields = ("worker",)
    inlines = [TrustEvidenceInline]
    actions = [lift_suspensions]


@admin.register(TrustEvidence)
class TrustEvidenceAdmin(admin.ModelAdmin):
    list_display = ("trust", "kind", "score", "trust_before", "trust_after", "at")
    list_filter = ("kind",)
    search_fields = ("trust__worker__username", "note")
    raw_id_fields = ("trust", "assignment")


@admin.register(FraudFlag)
class FraudFlagAdmin(admin.ModelAdmin):
    list_display = ("assignment", "worker", "job", "kind", "status", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("worker__username", "job__title")
    raw_id_fields = ("assignment", "worker", "job", "resolved_by")


@admin.register(ReviewItem)
class ReviewItemAdmin(admin.ModelAdmin):
    list_display = ("microtask", "job", "status", "reason", "resolved_by", "created_at")
    list_filter = ("status",)
    search_fields = ("job__title", "reason")
    raw_id_fields = ("microtask", "job", "resolved_by")


def _decide(modeladmin, request, queryset, *, uphold: bool) -> None:
    done = 0
    for appeal in queryset:
        try:
            services.appeal_decide(appeal_id=appeal.pk, by=request.user, uphold=uphold)
            done += 1
        except ApplicationError as exc:
            modeladmin.message_user(request, f"Appeal #{appeal.pk}: {exc.message}", messages.ERROR)
    modeladmin.message_user(request, f"{done} appeal(s) {'upheld' if uphold else 'denied'}.")


@admin.action(description="Uphold: approve and pay the work")
def uphold_appeals(modeladmin, request, queryset):
    _decide(modeladmin, request, queryset, uphold=True)


@admin.action(description="Deny: the rejection stands")
def deny_appeals(modeladmin, request, queryset):
    _decide(modeladmin, request, queryset, uphold=False)


@admin.register(Appeal)
class AppealAdmin(admin.ModelAdmin):
    list_display = ("assignment", "worker", "status", "decided_by", "created_at")
    list_filter = ("status",)
    search_fields = ("worker__username", "message")
    raw_id_fields = ("assignment", "worker", "decided_by")
    actions = [uphold_appeals, deny_appeals]


@admin.register(JobQualityPolicy)
class JobQualityPolicyAdmin(admin.ModelAdmin):
    list_display = ("job", "partial_credit", "auto_approve", "auto_reject", "min_confidence")
    list_filter = ("partial_credit", "auto_approve", "auto_reject")
    search_fields = ("job__title",)
    raw_id_fields = ("job",)


@admin.action(description="Copy to the qualification test")
def copy_to_qualification(modeladmin, request, queryset):
    """Gold microtasks with their known answers become qualification questions."""
    made = []
    for mt in queryset.order_by("pk"):
        try:
            made.append(qualifying.qualification_item_from_gold(microtask_id=mt.pk))
        except ApplicationError as exc:
            modeladmin.message_user(request, f"Microtask #{mt.pk}: {exc.message}", messages.ERROR)
    if made:
        modeladmin.message_user(
            request,
            f"{len(made)} qualification question(s) created. Every worker taking the test sees "
            "these frames: consider retiring the microtasks from gold.",
        )


class GoldAwareMicroTaskAdmin(MicroTaskAdmin):
    """tasks' microtask admin plus the action that needs quality's gold answers: the list stays
    tasks' (its columns, filters, URL), and tasks imports nothing of quality to offer it."""

    actions = [*(MicroTaskAdmin.actions or ()), copy_to_qualification]


admin.site.unregister(MicroTask)
admin.site.register(MicroTask, GoldAwareMicroTaskAdmin)
