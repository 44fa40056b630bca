"""API routes of this app, mounted under /api/."""

from django.urls import path

from . import views

urlpatterns = [
    path("jobs/<int:job_id>/videos/", views.JobVideosView.as_view(), name="api-job-videos"),
    path(
        "jobs/<int:job_id>/videos/<int:pk>/",
        views.JobVideoDetailView.as_view(),
        name="api-job-video",
    ),
    path("jobs/<int:job_id>/process/", views.JobProcessView.as_view(), name="api-job-process"),
    path(
        "jobs/<int:job_id>/ingestion/", views.JobIngestionView.as_view(), name="api-job-ingestion"
    ),
    path(
        "jobs/<int:job_id>/microtasks/",
        views.JobMicroTasksView.as_view(),
        name="api-job-microtasks",
    ),
    path(
        "jobs/<int:job_id>/microtasks/<int:pk>/",
        views.JobMicroTaskDetailView.as_view(),
        name="api-job-microtask",
    ),
]
