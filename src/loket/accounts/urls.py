"""Loket's own account pages (invitations); allauth's follow in loket.urls, so a path here
overrides allauth's."""

from django.http import Http404
from django.urls import path

from loket.accounts import views


def _not_offered(request, *args, **kwargs):
    # The login address is the invited one, so people do not add or change addresses themselves.
    raise Http404("not offered")


urlpatterns = [
    path("invitations/<str:token>/", views.accept, name="invitation_accept"),
    path("email/", _not_offered),
]
