"""API routes of this app, mounted under /api/."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import exports, jobs, qualification, views

# A requester's jobs (marketplace's fields and lifecycle, quality's review mode), and the API root.
router = DefaultRouter()
router.register("jobs", jobs.JobWithReviewViewSet, basename="job")

urlpatterns = [
    path("", include(router.urls)),
    path(
        "jobs/<int:job_id>/export/<str:fmt>/",
        exports.JobExportView.as_view(),
        name="api-job-export",
    ),
    path(
        "work/qualifications/<str:annotation_type>/",
        qualification.QualificationTestView.as_view(),
        name="api-work-qualification",
    ),
    path("quality/me/trust/", views.MyTrustView.as_view(), name="api-quality-my-trust"),
    path("quality/me/checks/", views.MyChecksView.as_view(), name="api-quality-my-checks"),
    path("quality/appeals/", views.AppealCreateView.as_view(), name="api-quality-appeals"),
    path(
        "quality/appeals/<int:pk>/decide/",
        views.AppealDecideView.as_view(),
        name="api-quality-appeal-decide",
    ),
    path(
        "quality/jobs/<int:job_id>/report/",
        views.JobReportView.as_view(),
        name="api-quality-job-report",
    ),
    path(
        "quality/jobs/<int:job_id>/gold-import/",
        views.GoldImportView.as_view(),
        name="api-quality-gold-import",
    ),
    path(
        "quality/jobs/<int:job_id>/policy/",
        views.JobPolicyView.as_view(),
        name="api-quality-job-policy",
    ),
    path(
        "quality/microtasks/<int:pk>/gold/",
        views.GoldAnswerView.as_view(),
        name="api-quality-gold-answer",
    ),
    path(
        "quality/microtasks/<int:pk>/gold/validate/",
        views.GoldValidateView.as_view(),
        name="api-quality-gold-validate",
    ),
    path(
        "quality/gold/disputed/", views.DisputedGoldView.as_view(), name="api-quality-gold-disputed"
    ),
    path("quality/review/", views.ReviewQueueView.as_view(), name="api-quality-review-queue"),
    path("quality/review/<int:pk>/", views.ReviewDetailView.as_view(), name="api-quality-review"),
    path(
        "quality/review/<int:pk>/resolve/",
        views.ReviewResolveView.as_view(),
        name="api-quality-review-resolve",
    ),
    path(
        "quality/workers/<int:pk>/report/",
        views.WorkerReportView.as_view(),
        name="api-quality-worker-report",
    ),
    path("quality/flags/", views.FlagListView.as_view(), name="api-quality-flags"),
    path(
        "quality/flags/<int:pk>/resolve/",
        views.FlagResolveView.as_view(),
        name="api-quality-flag-resolve",
    ),
]
