"""The "require two-factor authentication" policy of workspaces, for one user.

A workspace with ``require_2fa`` gives its members until ``require_2fa_since +
two_factor_grace_days`` to set up an authenticator app (TOTP); after that a member without one
may do nothing but enrol. A workspace that requires 2FA without a start time (set outside the
settings page) gives no grace. The strictest workspace a user belongs to decides.

Sessions are what this guards: :class:`loket.accounts.middleware.RequireTwoFactorMiddleware` for
pages, :func:`must_enrol` for anything else that trusts a session (the agents' websocket). API
tokens are not sessions and are not affected.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from allauth.mfa.models import Authenticator
from django.db.models import Exists, OuterRef
from django.utils import timezone

from loket.tenancy.models import Membership


@dataclass(frozen=True)
class TwoFactorRequirement:
    workspace_name: str
    workspace_time_zone: str
    deadline: dt.datetime


@dataclass(frozen=True)
class TwoFactorStatus:
    # Whether the user has an authenticator app; only looked up when a workspace requires one.
    enrolled: bool
    # Workspaces of the user that require 2FA, the earliest deadline first.
    requirements: tuple[TwoFactorRequirement, ...] = ()

    @property
    def required(self) -> bool:
        return bool(self.requirements)

    @property
    def deadline(self) -> dt.datetime | None:
        return self.requirements[0].deadline if self.requirements else None

    def must_enrol(self, now: dt.datetime | None = None) -> bool:
        """Required, not set up, and the grace period is over."""
        if self.enrolled or not self.required:
            return False
        return self.deadline <= (now or timezone.now())

    def in_grace(self, now: dt.datetime | None = None) -> bool:
        """Required and not set up yet, but there is still time."""
        if self.enrolled or not self.required:
            return False
        return self.deadline > (now or timezone.now())


_NO_GRACE = dt.datetime.min.replace(tzinfo=dt.UTC)


def two_factor_status(user) -> TwoFactorStatus:
    """One query: the user's workspaces that require 2FA, and whether they have TOTP."""
    if user is None or not user.is_authenticated:
        return TwoFactorStatus(enrolled=False)
    has_totp = Authenticator.objects.filter(
        user_id=OuterRef("user_id"), type=Authenticator.Type.TOTP
    )
    rows = (
        Membership.objects.filter(user_id=user.pk, workspace__require_2fa=True)
        .annotate(has_totp=Exists(has_totp))
        .values_list(
            "workspace__name",
            "workspace__time_zone",
            "workspace__require_2fa_since",
            "workspace__two_factor_grace_days",
            "has_totp",
        )
    )
    enrolled = False
    requirements = []
    for name, time_zone, since, grace_days, row_has_totp in rows:
        enrolled = enrolled or row_has_totp
        deadline = since + dt.timedelta(days=grace_days) if since else _NO_GRACE
        requirements.append(TwoFactorRequirement(name, time_zone, deadline))
    requirements.sort(key=lambda requirement: requirement.deadline)
    return TwoFactorStatus(enrolled=enrolled, requirements=tuple(requirements))


def has_totp_authenticator(user) -> bool:
    return Authenticator.objects.filter(user_id=user.pk, type=Authenticator.Type.TOTP).exists()


def must_enrol(user) -> bool:
    """True when ``user`` belongs to a workspace that requires 2FA, its grace period is over and
    they have no authenticator app yet: such a session may only be used to enrol (or sign out)."""
    return two_factor_status(user).must_enrol()
