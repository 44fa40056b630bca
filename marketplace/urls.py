from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from tasks import frame_views

from . import views
from .api.docs import SwaggerView

handler404 = views.not_found

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/login/", views.LoginPage.as_view(), name="login"),
    path("accounts/logout/", views.logout_view, name="logout"),
    path("accounts/signup/<str:role>/", views.signup, name="signup"),
    path("requester/jobs/", views.requester_jobs, name="requester-jobs"),
    path("admin/", admin.site.urls),
    path("api/", include("marketplace.api.urls")),
    path("api/", include("tasks.api.urls")),
    path("api/", include("quality.api.urls")),
    path("api/", include("payments.api.urls")),
    path("", include("tasks.urls")),
    path("", include("quality.urls")),
    path("", include("payments.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

# Media from local disk (the embedded default), a requester's videos and frames to them only;
# behind S3 the storage serves its own (signed) URLs.
if not settings.MEDIA_S3_BUCKET:
    urlpatterns += [re_path(r"^media/(?P<path>.*)$", frame_views.media, name="media")]
