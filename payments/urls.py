"""Page routes of this app, mounted at the site root (webhooks included)."""

from django.urls import path

from . import views

urlpatterns = [
    path("stripe/webhook/", views.stripe_webhook, name="stripe-webhook"),
    path("stripe/webhook/connect/", views.stripe_connect_webhook, name="stripe-connect-webhook"),
    path("worker/earnings/", views.earnings_page, name="payments-earnings-page"),
    path("payments/connect/start/", views.connect_start, name="payments-connect-start"),
    path("payments/connect/refresh/", views.connect_refresh, name="payments-connect-refresh"),
    path("payments/connect/return/", views.connect_return, name="payments-connect-return"),
    path("staff/money/", views.money_page, name="payments-money"),
]
