"""Reads for the settings pages, each scoped to one workspace (another workspace's id is a 404)."""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    QuerySet,
    When,
)
from django.shortcuts import get_object_or_404

from loket.inbox.models import Channel, Label
from loket.tenancy.models import ApiToken, Membership, Role, Team, Workspace

_ROLE_ORDER = Case(
    *(When(role=role, then=rank) for rank, role in enumerate(Role.values)),
    output_field=IntegerField(),
)


def _has_totp():
    return Exists(
        Authenticator.objects.filter(user_id=OuterRef("user_id"), type=Authenticator.Type.TOTP)
    )


def members(workspace: Workspace) -> QuerySet[Membership]:
    """Owners first, then admins, supervisors, agents; ``has_two_factor`` and ``teams`` loaded,
    in a constant number of queries."""
    return (
        Membership.objects.filter(workspace=workspace)
        .select_related("user")
        .annotate(has_two_factor=_has_totp(), role_rank=_ROLE_ORDER)
        .prefetch_related(Prefetch("teams", queryset=Team.objects.order_by("name")))
        .order_by("role_rank", "user__name", "user__email")
    )


def members_without_two_factor(workspace: Workspace) -> int:
    return Membership.objects.filter(workspace=workspace).exclude(_has_totp()).count()


def member(workspace: Workspace, pk: int) -> Membership:
    return get_object_or_404(Membership.objects.select_related("user"), workspace=workspace, pk=pk)


def member_choices(workspace: Workspace) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(workspace=workspace)
        .select_related("user")
        .order_by("user__name", "user__email")
    )


def teams(workspace: Workspace) -> QuerySet[Team]:
    return (
        Team.objects.filter(workspace=workspace)
        .prefetch_related(
            Prefetch(
                "members",
                queryset=Membership.objects.select_related("user").order_by("user__name"),
            )
        )
        .order_by("name")
    )


def team(workspace: Workspace, pk: int) -> Team:
    return get_object_or_404(Team, workspace=workspace, pk=pk)


def labels(workspace: Workspace) -> QuerySet[Label]:
    return (
        Label.objects.filter(workspace=workspace)
        .annotate(conversation_count=Count("conversations"))
        .order_by("name")
    )


def label(workspace: Workspace, pk: int) -> Label:
    return get_object_or_404(Label, workspace=workspace, pk=pk)


def channels(workspace: Workspace) -> QuerySet[Channel]:
    return (
        Channel.objects.filter(workspace=workspace)
        .select_related("default_team")
        .order_by("name", "pk")
    )


def channel(workspace: Workspace, pk: int) -> Channel:
    return get_object_or_404(
        Channel.objects.select_related("default_team"), workspace=workspace, pk=pk
    )


def mailbox(channel: Channel):
    """An IMAP channel's reading state (last checked, last error, mails stored), or None."""
    from loket.connectors.models import Mailbox

    return Mailbox.objects.filter(channel=channel).first() if channel.kind == "email" else None


def own_tokens(membership: Membership) -> QuerySet[ApiToken]:
    """Live tokens first (newest first), then revoked ones."""
    return ApiToken.objects.filter(membership=membership).order_by(
        F("revoked_at").asc(nulls_first=True), "-created_at", "-pk"
    )


def own_token(membership: Membership, pk: int) -> ApiToken:
    return get_object_or_404(ApiToken, membership=membership, pk=pk)
