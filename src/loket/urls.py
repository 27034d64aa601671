from django.contrib.staticfiles.views import serve as serve_static
from django.urls import include, path, re_path

from loket.api.main import api, not_found_view
from loket.connectors import public_media
from loket.connectors.webhooks import webhook_view
from loket.web import views

urlpatterns = [
    # Loket's own vendored assets, straight from the installed packages (no collectstatic step).
    re_path(r"^static/(?P<path>.*)$", serve_static, {"insecure": True}),
    path("healthz", views.healthz, name="healthz"),
    path("", views.home, name="home"),
    path("w/<slug:workspace>/", include("loket.web.urls")),
    path("accounts/", include("loket.accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", api.urls),
    re_path(r"^api/v1/(?P<rest>.*)$", not_found_view),
    path("hooks/<str:kind>/<str:channel_id>/", webhook_view, name="webhook"),
    path("widget/", include("loket.connectors.livechat.urls")),
    path("help/", include("loket.web.helpcenter.urls")),
    path("csat/", include("loket.web.csat.urls")),
    path("media/<str:token>/<str:filename>", public_media.serve, name="public_media"),
]
