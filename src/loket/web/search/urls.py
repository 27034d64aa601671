from django.urls import path

from loket.web.search import views

urlpatterns = [path("", views.index, name="index")]
