"""Enforces a workspace's "require two-factor authentication" setting on every login path.

Whatever way a session was started (the sign-in form, after a password reset, accepting an
invitation), every later request passes here: a member who must enrol (see
:mod:`loket.accounts.policy`) is sent to the authenticator-app setup and can reach nothing else
but sign-out, re-authentication, static files and the health check. The REST API authenticates
with bearer tokens, not sessions, so it is not affected.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import reverse

from loket.accounts.policy import two_factor_status


@functools.cache
def _allowed_prefixes() -> tuple[str, ...]:
    # Reversed once: the URL configuration does not change while the process runs.
    return (
        reverse("mfa_index"),  # /accounts/2fa/…: setup, recovery codes
        reverse("account_reauthenticate"),  # the setup asks for the password after 5 minutes
        reverse("account_logout"),
        settings.STATIC_URL,
        reverse("healthz"),
        "/api/",  # bearer tokens, not sessions
        "/hooks/",  # providers' webhooks, no session at all
        "/help/",  # the public help center: the same for everyone, signed in or not
    )


class RequireTwoFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(_allowed_prefixes()) or not request.user.is_authenticated:
            return self.get_response(request)
        if not two_factor_status(request.user).must_enrol():
            return self.get_response(request)
        # The setup page itself says which workspace requires it (accounts_tags).
        target = reverse("mfa_activate_totp")
        if request.headers.get("HX-Request"):
            # htmx would swap the setup page into a fragment; make it load the whole page.
            response = HttpResponse(status=204)
            response["HX-Redirect"] = target
            return response
        return HttpResponseRedirect(target)
