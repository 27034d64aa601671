from django.urls import path

from loket.web.contacts import views

urlpatterns = [path("", views.index, name="index")]
