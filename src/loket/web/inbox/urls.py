from django.urls import path

from loket.web.inbox import views

urlpatterns = [
    path("", views.index, name="index"),
    path("notifications/", views.notifications, name="notifications"),
    path("me/", views.preferences, name="preferences"),
]
