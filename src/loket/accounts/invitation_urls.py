"""Invitation management for a workspace's admins: ``/w/<slug>/settings/invitations/``."""

from django.urls import path

from loket.accounts import views

urlpatterns = [
    path("", views.invitation_list, name="list"),
    path("<int:pk>/resend/", views.invitation_resend, name="resend"),
    path("<int:pk>/revoke/", views.invitation_revoke, name="revoke"),
]
