"""API routes of this app, mounted under /api/."""

from django.urls import path

from . import funding, proposals, review, views, work

urlpatterns = [
    # Money endpoints that price microtasks (``tasks.api.funding``); payments' paths and names.
    path("payments/jobs/<int:pk>/quote/", funding.JobQuoteView.as_view(), name="payments-quote"),
    path("payments/jobs/<int:pk>/fund/", funding.JobFundView.as_view(), name="payments-fund"),
    path(
        "payments/jobs/<int:pk>/fundings/<int:funding_id>/check/",
        funding.JobFundingCheckView.as_view(),
        name="payments-funding-check-api",
    ),
    path("payments/jobs/<int:pk>/bonuses/", funding.JobBonusView.as_view(), name="payments-bonus"),
    path("jobs/<int:job_id>/videos/", views.JobVideosView.as_view(), name="api-job-videos"),
    path(
        "jobs/<int:job_id>/videos/<int:pk>/",
        views.JobVideoDetailView.as_view(),
        name="api-job-video",
    ),
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
    path(
        "jobs/<int:job_id>/proposals/",
        proposals.JobProposalConfigView.as_view(),
        name="api-job-proposals",
    ),
    # Worker
    path("work/jobs/", work.JobBoardView.as_view(), name="api-work-jobs"),
    path("work/claim/", work.ClaimView.as_view(), name="api-work-claim"),
    path("work/assignments/", work.MyWorkView.as_view(), name="api-work-assignments"),
    path("work/assignments/<int:pk>/", work.AssignmentView.as_view(), name="api-work-assignment"),
    path(
        "work/assignments/<int:pk>/heartbeat/",
        work.HeartbeatView.as_view(),
        name="api-work-heartbeat",
    ),
    path("work/assignments/<int:pk>/release/", work.ReleaseView.as_view(), name="api-work-release"),
    path("work/assignments/<int:pk>/submit/", work.SubmitView.as_view(), name="api-work-submit"),
    path(
        "work/assignments/<int:pk>/propagate/",
        work.PropagateView.as_view(),
        name="api-work-propagate",
    ),
    path(
        "work/qualifications/",
        work.QualificationListView.as_view(),
        name="api-work-qualifications",
    ),
    # work/qualifications/<annotation_type>/ (a test: questions and scoring) is quality's:
    # quality.api.urls.
    # Requester
    # jobs/<id>/process|publish|pause|resume|complete/ answer the job with its review mode:
    # actions of quality.api.jobs.JobWithReviewViewSet (tasks cannot import quality).
    path(
        "jobs/<int:pk>/submissions/",
        review.JobSubmissionsView.as_view(),
        name="api-job-submissions",
    ),
    path("submissions/review/", review.BulkReviewView.as_view(), name="api-submissions-review"),
    path(
        "submissions/<int:pk>/approve/", review.ApproveView.as_view(), name="api-submission-approve"
    ),
    path("submissions/<int:pk>/reject/", review.RejectView.as_view(), name="api-submission-reject"),
    path("disputes/", review.DisputeListView.as_view(), name="api-disputes"),
    path(
        "disputes/<int:pk>/decide/", review.DisputeDecideView.as_view(), name="api-dispute-decide"
    ),
]
