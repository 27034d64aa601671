from django.urls import path

from loket.web.reports import views

urlpatterns = [
    path("", views.overview, name="overview"),
    path("agents/", views.agents, name="agents"),
    path("busiest-hours/", views.busiest_hours, name="busiest_hours"),
    path("ratings/", views.ratings, name="ratings"),
    path("conversations/", views.conversations, name="conversations"),
]
