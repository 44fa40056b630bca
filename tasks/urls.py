"""Page routes of this app, mounted at the site root."""

from django.urls import path

from . import views

urlpatterns = [
    path(
        "requester/jobs/<int:pk>/videos/",
        views.job_videos_upload,
        name="requester-job-videos-upload",
    ),
    path(
        "requester/jobs/<int:pk>/videos/<int:video_id>/delete/",
        views.job_video_delete,
        name="requester-job-video-delete",
    ),
    path("requester/jobs/<int:pk>/process/", views.job_process, name="requester-job-process"),
]
