from django.urls import path

from loket.web.workspace_settings import views

urlpatterns = [path("", views.index, name="index")]
