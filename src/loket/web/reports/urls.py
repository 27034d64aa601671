from django.urls import path

from loket.web.reports import breakdowns, views
from loket.web.reports.exports import export
from loket.web.reports.schedules import (
    schedule_delete,
    schedule_edit,
    schedule_list,
    schedule_send,
)
from loket.web.reports.sla_bots import bots, sla

urlpatterns = [
    path("", views.overview, name="overview"),
    path("agents/", views.agents, name="agents"),
    path("busiest-hours/", views.busiest_hours, name="busiest_hours"),
    path("channels/", breakdowns.channels, name="channels"),
    path("teams/", breakdowns.teams, name="teams"),
    path("labels/", breakdowns.labels, name="labels"),
    path("ratings/", views.ratings, name="ratings"),
    path("sla/", sla, name="sla"),
    path("bots/", bots, name="bots"),
    path("conversations/", views.conversations, name="conversations"),
    path("export/<str:report>.<str:fmt>", export, name="export"),
    path("schedules/", schedule_list, name="schedules"),
    path("schedules/<int:schedule_id>/", schedule_edit, name="schedule-edit"),
    path("schedules/<int:schedule_id>/delete/", schedule_delete, name="schedule-delete"),
    path("schedules/<int:schedule_id>/send/", schedule_send, name="schedule-send"),
]
