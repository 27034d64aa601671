from django.urls import path

from loket.web.inbox import views

urlpatterns = [
    path("", views.index, name="index"),
    path("inbox/list/", views.conversation_list, name="list"),
    path("inbox/counts/", views.counts, name="counts"),
    path("inbox/<int:number>/", views.index, name="conversation"),
    path("notifications/", views.notifications, name="notifications"),
    path("me/", views.preferences, name="preferences"),
]
