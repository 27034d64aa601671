"""Loket's own account pages (invitations); allauth's follow in loket.urls."""

urlpatterns: list = []
