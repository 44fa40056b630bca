"""Page routes of this app, mounted at the site root (webhooks included)."""

from django.urls import path

from . import staff_views, views

urlpatterns = [
    path("stripe/webhook/", views.stripe_webhook, name="stripe-webhook"),
    path("stripe/webhook/connect/", views.stripe_connect_webhook, name="stripe-connect-webhook"),
    path("worker/earnings/", views.earnings_page, name="payments-earnings-page"),
    path("payments/connect/start/", views.connect_start, name="payments-connect-start"),
    path("payments/connect/refresh/", views.connect_refresh, name="payments-connect-refresh"),
    path("payments/connect/return/", views.connect_return, name="payments-connect-return"),
    # Staff: the money dashboard and the actions taken in it.
    path("staff/money/", staff_views.money_dashboard, name="payments-money"),
    path("staff/money/payout-run/", staff_views.payout_run, name="staff-payout-run"),
    path("staff/money/holds/", staff_views.payouts_hold, name="staff-payouts-hold"),
    path(
        "staff/money/holds/<int:worker_id>/release/",
        staff_views.payouts_release,
        name="staff-payouts-release",
    ),
]
