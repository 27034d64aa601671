"""Writes for tenancy: workspaces, members, teams, API tokens."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from loket.tenancy.models import ApiToken, Membership, Role, Team, User, Workspace, hash_token


@transaction.atomic
def create_workspace(*, slug: str, name: str, owner: User, locale: str = "en") -> Workspace:
    workspace = Workspace.objects.create(slug=slug, name=name, locale=locale)
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    return workspace


def add_member(
    workspace: Workspace, user: User, *, role: str = Role.AGENT, capacity: int = 10
) -> Membership:
    membership, _ = Membership.objects.get_or_create(
        workspace=workspace, user=user, defaults={"role": role, "capacity": capacity}
    )
    return membership


def create_team(workspace: Workspace, name: str, members: list[Membership] = ()) -> Team:
    team, _ = Team.objects.get_or_create(workspace=workspace, name=name)
    if members:
        team.members.add(*members)
    return team


def create_api_token(membership: Membership, *, name: str = "") -> tuple[ApiToken, str]:
    """Returns the stored token and the raw secret, which is shown once and never stored."""
    raw = ApiToken.generate()
    token = ApiToken.objects.create(
        workspace_id=membership.workspace_id,
        membership=membership,
        name=name,
        token_hash=hash_token(raw),
        prefix=raw[:10],
    )
    return token, raw


def revoke_api_token(token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


def authenticate_token(raw: str) -> ApiToken | None:
    """The live token for a raw bearer secret, with its membership, user and workspace loaded."""
    if not raw or not raw.startswith("lkt_"):
        return None
    token = (
        ApiToken.objects.select_related("membership__user", "workspace")
        .filter(token_hash=hash_token(raw), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.membership.user.is_active:
        return None
    now = timezone.now()
    # Recorded coarsely so a busy integration does not write on every request.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
