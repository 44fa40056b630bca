"""Page routes of this app, mounted at the site root."""

from django.urls import path

from . import requester_views, staff_views, views

urlpatterns = [
    path("requester/jobs/new/", requester_views.job_new, name="requester-job-new"),
    path("requester/jobs/<int:pk>/", requester_views.job_dashboard, name="requester-job-detail"),
    path(
        "requester/jobs/<int:pk>/status/<str:action>/",
        requester_views.job_action,
        name="requester-job-action",
    ),
    path(
        "requester/jobs/<int:pk>/review-mode/",
        requester_views.job_review_mode,
        name="requester-job-review-mode",
    ),
    path(
        "requester/jobs/<int:pk>/submissions/",
        requester_views.job_submissions,
        name="requester-job-submissions",
    ),
    path(
        "requester/jobs/<int:pk>/submissions/review/",
        requester_views.job_submissions_review,
        name="requester-job-submissions-review",
    ),
    path(
        "quality/jobs/<int:job_id>/gold/draw/<int:microtask_id>/",
        requester_views.gold_draw,
        name="quality-gold-draw",
    ),
    path("quality/me/", views.my_quality, name="quality-mine"),
    path("quality/me/appeal/<int:assignment_id>/", views.appeal, name="quality-appeal"),
    path("quality/jobs/<int:job_id>/", views.job_report, name="quality-job-report"),
    path("quality/jobs/<int:job_id>/gold/", views.gold_create, name="quality-gold-create"),
    path("quality/jobs/<int:job_id>/gold/import/", views.gold_import, name="quality-gold-import"),
    path("quality/review/", views.review_queue, name="quality-review-queue"),
    path("quality/review/<int:pk>/", views.review_detail, name="quality-review-detail"),
    path("quality/review/<int:pk>/resolve/", views.review_resolve, name="quality-review-resolve"),
    # Staff: the quality dashboard (the staff's landing page) and the decisions made in it.
    path("staff/", staff_views.quality_dashboard, name="staff-quality"),
    path("staff/appeals/<int:pk>/decide/", staff_views.appeal_decide, name="staff-appeal-decide"),
    path(
        "staff/disputes/<int:pk>/decide/", staff_views.dispute_decide, name="staff-dispute-decide"
    ),
    path("staff/flags/<int:pk>/resolve/", staff_views.flag_resolve, name="staff-flag-resolve"),
]
