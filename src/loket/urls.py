from django.urls import include, path

from loket.api.main import api
from loket.connectors.webhooks import webhook_view
from loket.web import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("", views.home, name="home"),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", api.urls),
    path("hooks/<str:kind>/<str:channel_id>/", webhook_view, name="webhook"),
]
