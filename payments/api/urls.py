"""API routes of this app, mounted under /api/."""

from django.urls import path

from . import views

urlpatterns = [
    path("payments/jobs/<int:pk>/escrow/", views.JobEscrowView.as_view(), name="payments-escrow"),
    path("payments/jobs/<int:pk>/refund/", views.JobRefundView.as_view(), name="payments-refund"),
    path("payments/earnings/", views.EarningsView.as_view(), name="payments-earnings"),
    path("payments/payouts/", views.PayoutListView.as_view(), name="payments-payouts"),
    path("payments/connect/", views.ConnectOnboardingView.as_view(), name="payments-connect"),
    path(
        "payments/admin/payout-runs/",
        views.AdminPayoutRunView.as_view(),
        name="payments-admin-payout-run",
    ),
    path(
        "payments/admin/earnings/release/",
        views.AdminEarningsReleaseView.as_view(),
        name="payments-admin-earnings-release",
    ),
    path(
        "payments/admin/workers/<int:pk>/hold/",
        views.AdminWorkerHoldView.as_view(),
        name="payments-admin-hold",
    ),
    path(
        "payments/admin/payouts/<int:pk>/reverse/",
        views.AdminPayoutReverseView.as_view(),
        name="payments-admin-reverse",
    ),
    path(
        "payments/admin/reconcile/",
        views.AdminReconcileView.as_view(),
        name="payments-admin-reconcile",
    ),
]
