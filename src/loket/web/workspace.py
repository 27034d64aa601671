"""The agent app's request context: which workspace a page is for and who is looking.

Every page under ``/w/<slug>/`` goes through :func:`workspace_view`: the signed-in user's
membership of that workspace is loaded once (404 when there is none, so another workspace's
pages do not even admit they exist), and times render in the workspace's time zone.
"""

from __future__ import annotations

import functools
import zoneinfo

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from loket.tenancy.models import Membership


def membership_for(user, slug: str) -> Membership | None:
    return (
        Membership.objects.select_related("workspace", "user")
        .filter(user=user, workspace__slug=slug)
        .first()
    )


def workspace_zone(workspace) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(workspace.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def workspace_view(view=None, *, admin: bool = False):
    """Decorate a view taking ``(request, ...)``; the URL's ``workspace`` slug is consumed and
    ``request.membership`` / ``request.workspace`` are set. ``admin=True`` also requires an owner
    or admin role (403 otherwise)."""

    def decorate(func):
        @login_required
        @functools.wraps(func)
        def wrapper(request, workspace: str, *args, **kwargs):
            membership = membership_for(request.user, workspace)
            if membership is None:
                raise Http404("no such workspace")
            if admin and not membership.is_admin:
                raise PermissionDenied("only admins may do this")
            request.membership = membership
            request.workspace = membership.workspace
            with timezone.override(workspace_zone(membership.workspace)):
                response = func(request, *args, **kwargs)
                # Templates render lazily; rendering must still see the workspace's zone.
                if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                    response.render()
                return response

        return wrapper

    return decorate(view) if view is not None else decorate


def workspace_context(request) -> dict:
    """Template context for every page: the current membership and workspace (when any)."""
    membership = getattr(request, "membership", None)
    if membership is None:
        return {}
    from loket.inbox.services import notifications

    return {
        "membership": membership,
        "workspace": membership.workspace,
        # A callable: counted only where a template shows the badge.
        "unread_notifications": lambda: notifications.unread_count(membership),
    }
