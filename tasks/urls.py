"""Page routes of this app, mounted at the site root."""

from django.urls import path

from . import frame_views, funding_views, views, work_views

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
    path(
        "requester/jobs/<int:pk>/funding/",
        funding_views.job_funding_page,
        name="payments-job-funding",
    ),
    path(
        "requester/jobs/<int:pk>/funding/<int:funding_id>/check/",
        funding_views.funding_check_page,
        name="payments-funding-check",
    ),
    path(
        "requester/jobs/<int:pk>/funding/<int:funding_id>/cancel/",
        funding_views.funding_cancel_page,
        name="payments-funding-cancel",
    ),
    path(
        "requester/jobs/<int:pk>/budget/",
        funding_views.job_budget_page,
        name="requester-job-budget",
    ),
    path("work/", work_views.board, name="work-board"),
    path("work/claim/", work_views.claim, name="work-claim"),
    path("work/assignments/<int:pk>/", work_views.annotate, name="work-annotate"),
    path(
        "work/assignments/<int:pk>/frames/<int:index>.jpg",
        frame_views.assignment_frame,
        name="work-frame",
    ),
    path(
        "requester/microtasks/<int:pk>/frames/<int:index>.jpg",
        frame_views.requester_frame,
        name="requester-frame",
    ),
    path("work/mine/", work_views.my_work, name="work-mine"),
    path("work/qualify/<str:annotation_type>/", work_views.qualify, name="work-qualify"),
]
