"""Reads for invitations, always scoped to a workspace (or found by the secret of their link)."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils import timezone

from loket.tenancy.models import Invitation, Workspace, hash_token

HISTORY_LIMIT = 50


def _listing(workspace: Workspace) -> QuerySet[Invitation]:
    return (
        Invitation.objects.filter(workspace=workspace)
        .select_related("invited_by__user", "accepted_by")
        .prefetch_related("teams")
    )


def pending_invitations(workspace: Workspace) -> QuerySet[Invitation]:
    return (
        _listing(workspace)
        .filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now())
        .order_by("-created_at", "-pk")
    )


def past_invitations(workspace: Workspace, limit: int = HISTORY_LIMIT) -> list[Invitation]:
    """Accepted, revoked and expired invitations, the latest first."""
    done = (
        Q(accepted_at__isnull=False)
        | Q(revoked_at__isnull=False)
        | Q(expires_at__lte=timezone.now())
    )
    return list(_listing(workspace).filter(done).order_by("-created_at", "-pk")[:limit])


def invitation_in(workspace: Workspace, pk: int) -> Invitation | None:
    return Invitation.objects.filter(workspace=workspace, pk=pk).select_related("workspace").first()


def invitation_for_token(raw_token: str) -> Invitation | None:
    """The invitation a link's secret belongs to, whatever its state (the caller says why it
    cannot be used)."""
    if not raw_token or len(raw_token) > 200:
        return None
    return (
        Invitation.objects.select_related("workspace", "invited_by__user")
        .filter(token_hash=hash_token(raw_token))
        .first()
    )
