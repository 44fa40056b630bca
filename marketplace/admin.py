from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import Job, Qualification, RequesterProfile, User, WorkerProfile


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "email", "role", "is_staff", "is_active", "date_joined")
    list_filter = ("role", "is_staff", "is_active")
    fieldsets = (*BaseUserAdmin.fieldsets, ("Marketplace", {"fields": ("role",)}))


@admin.register(RequesterProfile)
class RequesterProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "organisation", "stripe_customer_id", "created_at")
    search_fields = ("user__username", "organisation", "stripe_customer_id")


@admin.register(WorkerProfile)
class WorkerProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "country", "status", "payouts_enabled", "payouts_held", "created_at")
    list_filter = ("status", "payouts_enabled", "payouts_held", "country")
    search_fields = ("user__username", "stripe_account_id")


@admin.register(Qualification)
class QualificationAdmin(admin.ModelAdmin):
    list_display = ("worker", "annotation_type", "status", "score", "attempts", "updated_at")
    list_filter = ("annotation_type", "status")
    search_fields = ("worker__username",)


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "title",
        "requester",
        "annotation_type",
        "status",
        "budget",
        "currency",
        "overlap_min",
        "overlap_max",
        "created_at",
    )
    list_filter = ("status", "annotation_type", "currency")
    search_fields = ("title", "requester__username")
    date_hierarchy = "created_at"
    raw_id_fields = ("requester",)
