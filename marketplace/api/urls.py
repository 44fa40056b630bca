from django.urls import path

from . import views

# /api/jobs/ (and the API root listing it) is mounted by quality.api.urls: the job's review mode
# is quality's (quality.api.jobs).

urlpatterns = [
    path("auth/signup/", views.SignupView.as_view(), name="api-signup"),
    path("auth/token/", views.TokenView.as_view(), name="api-token"),
    path("me/", views.MeView.as_view(), name="api-me"),
]
