"""Page routes of this app, mounted at the site root."""

from django.urls import path

from . import work_views

urlpatterns = [
    path("work/", work_views.board, name="work-board"),
    path("work/claim/", work_views.claim, name="work-claim"),
    path("work/assignments/<int:pk>/", work_views.annotate, name="work-annotate"),
    path("work/mine/", work_views.my_work, name="work-mine"),
    path("work/qualify/<str:annotation_type>/", work_views.qualify, name="work-qualify"),
]
