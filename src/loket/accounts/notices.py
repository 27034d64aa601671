"""What a person is told on signing in about their workspaces' 2FA requirement."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.contrib import messages
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext

from loket.accounts.policy import TwoFactorRequirement, two_factor_status


def datetime_in_zone(value: dt.datetime, time_zone: str) -> str:
    """``value`` in a workspace's time zone, in the current language's format, zone named."""
    try:
        zone = zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    local = timezone.localtime(value, zone)
    return f"{formats.date_format(local, 'DATETIME_FORMAT')} ({local.tzname()})"


def deadline_text(requirement: TwoFactorRequirement) -> str:
    return datetime_in_zone(requirement.deadline, requirement.workspace_time_zone)


def tell_about_two_factor_deadline(sender, request, user, **kwargs) -> None:
    """During a grace period, every sign-in says until when the member has to set up 2FA.
    (After it, RequireTwoFactorMiddleware sends them to the setup instead.)"""
    if request is None or not hasattr(request, "_messages"):
        return  # a login without a browser request (tests' force_login, scripts)
    status = two_factor_status(user)
    if not status.in_grace():
        return
    requirement = status.requirements[0]
    messages.warning(
        request,
        format_html(
            '{} <a href="{}">{}</a>',
            gettext(
                "%(workspace)s requires two-factor authentication. Please set it up before "
                "%(deadline)s: after that, you cannot continue without it."
            )
            % {"workspace": requirement.workspace_name, "deadline": deadline_text(requirement)},
            reverse("mfa_activate_totp"),
            gettext("Set it up now"),
        ),
    )
