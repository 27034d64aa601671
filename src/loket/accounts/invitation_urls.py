"""Invitation management for a workspace's admins: ``/w/<slug>/settings/invitations/``."""

urlpatterns: list = []
