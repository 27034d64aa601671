"""Writes for tenancy: workspaces, members, teams, API tokens."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from loket.tenancy import hours
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


# -- Settings pages: the workspace profile, members' roles and teams ---------------------------
# The messages of NotAllowed are shown to the acting admin, so they are translated here.

ADMIN_ROLES = (Role.OWNER, Role.ADMIN)
MAX_TWO_FACTOR_GRACE_DAYS = 90


class NotAllowed(Exception):
    """A change the acting member may not make; ``str(exc)`` says why, for the person."""


def require_admin(actor: Membership | None, workspace_id: int, refusal: str) -> None:
    """Refuse (NotAllowed) a member of another workspace, or one who is neither owner nor admin,
    with ``refusal`` (translated by the caller); ``actor`` None: the system itself may."""
    if actor is None:
        return
    if actor.workspace_id != workspace_id:
        raise NotAllowed(gettext("That member belongs to another workspace."))
    if actor.role not in ADMIN_ROLES:
        raise NotAllowed(refusal)


MAX_ATTACHMENT_MB = 1000


def update_workspace_profile(
    workspace: Workspace,
    *,
    name: str,
    time_zone: str,
    locale: str,
    require_2fa: bool,
    two_factor_grace_days: int,
    attachment_max_mb: int | None = None,
    business_hours: dict | None = None,
    holidays: list | None = None,
) -> Workspace:
    """Switching required 2FA on starts the grace period now (an already running one is kept);
    switching it off forgets when it started."""
    name = (name or "").strip()
    if not name:
        raise ValueError("a workspace needs a name")
    if time_zone not in hours.available_time_zones():
        raise ValueError(f"unknown time zone {time_zone!r}")
    if locale not in {code for code, _ in settings.LANGUAGES}:
        raise ValueError(f"unsupported language {locale!r}")
    if not 0 <= two_factor_grace_days <= MAX_TWO_FACTOR_GRACE_DAYS:
        raise ValueError("grace period out of range")
    if attachment_max_mb is not None and not 1 <= attachment_max_mb <= MAX_ATTACHMENT_MB:
        raise ValueError("attachment limit out of range")
    with transaction.atomic():
        current = Workspace.objects.select_for_update().get(pk=workspace.pk)
        if not require_2fa:
            since = None
        elif current.require_2fa and current.require_2fa_since is not None:
            since = current.require_2fa_since
        else:
            since = timezone.now()
        changes = {
            "name": name[:200],
            "time_zone": time_zone,
            "locale": locale,
            "require_2fa": require_2fa,
            "require_2fa_since": since,
            "two_factor_grace_days": two_factor_grace_days,
        }
        if attachment_max_mb is not None:
            changes["attachment_max_mb"] = attachment_max_mb
        if business_hours is not None:
            changes["business_hours"] = hours.clean_schedule(business_hours)
        if holidays is not None:
            changes["holidays"] = hours.clean_holidays(holidays)
        for field, value in changes.items():
            setattr(workspace, field, value)
        workspace.save(update_fields=list(changes))
    return workspace


def _lock_workspace_roles(workspace_id: int, actor: Membership) -> tuple[str, set[int]]:
    """Inside a transaction: lock the workspace row so role changes and removals in it run one
    at a time (two owners demoting each other at once must not leave none), and return the
    actor's current role and the ids of the owners."""
    list(Workspace.objects.select_for_update().filter(pk=workspace_id).values_list("pk"))
    roles = dict(Membership.objects.filter(workspace_id=workspace_id).values_list("pk", "role"))
    owners = {pk for pk, role in roles.items() if role == Role.OWNER}
    return roles.get(actor.pk, ""), owners


def _check_may_manage(actor_role: str, target: Membership, new_role: str | None = None) -> None:
    if actor_role not in ADMIN_ROLES:
        raise NotAllowed(gettext("Only owners and admins can manage members."))
    if (target.role in ADMIN_ROLES or new_role in ADMIN_ROLES) and actor_role != Role.OWNER:
        raise NotAllowed(gettext("Only an owner can make or change owners and admins."))


def change_member(
    membership: Membership,
    *,
    actor: Membership,
    role: str | None = None,
    capacity: int | None = None,
) -> Membership:
    """Change a member's role and/or capacity. Only an owner may make or unmake owners and
    admins; the last owner keeps the role."""
    if role is not None and role not in Role.values:
        raise ValueError(f"unknown role {role!r}")
    if capacity is not None and capacity < 0:
        raise ValueError("capacity cannot be negative")
    if actor.workspace_id != membership.workspace_id:
        raise NotAllowed(gettext("That member belongs to another workspace."))
    with transaction.atomic():
        actor_role, owners = _lock_workspace_roles(membership.workspace_id, actor)
        target = Membership.objects.get(pk=membership.pk)
        fields: list[str] = []
        if role is not None and role != target.role:
            _check_may_manage(actor_role, target, role)
            if target.role == Role.OWNER and owners == {target.pk}:
                raise NotAllowed(
                    gettext("The last owner cannot be demoted; make someone else an owner first.")
                )
            target.role = role
            fields.append("role")
        if capacity is not None and capacity != target.capacity:
            if actor_role not in ADMIN_ROLES:
                raise NotAllowed(gettext("Only owners and admins can manage members."))
            target.capacity = capacity
            fields.append("capacity")
        if fields:
            target.save(update_fields=fields)
    membership.role, membership.capacity = target.role, target.capacity
    return membership


def remove_member(membership: Membership, *, actor: Membership) -> None:
    """Remove a member from the workspace (their account stays). Anyone but the last owner may
    leave; removing someone else follows the role rules of ``change_member``. The member's open,
    pending and snoozed conversations are unassigned with an activity line each, so the team
    sees them come back; resolved ones lose the assignee silently (on_delete=SET_NULL)."""
    # Imported here: tenancy is below the inbox, and only this one verb needs it.
    from loket.inbox.models import Conversation, ConversationStatus
    from loket.inbox.services.conversations import update_conversation

    if actor.workspace_id != membership.workspace_id:
        raise NotAllowed(gettext("That member belongs to another workspace."))
    with transaction.atomic():
        actor_role, owners = _lock_workspace_roles(membership.workspace_id, actor)
        target = Membership.objects.select_related("user").get(pk=membership.pk)
        if target.pk != actor.pk:
            _check_may_manage(actor_role, target)
        if target.role == Role.OWNER and owners == {target.pk}:
            raise NotAllowed(gettext("The last owner cannot be removed."))
        active = Conversation.objects.filter(
            workspace_id=target.workspace_id, assignee=target
        ).exclude(status__in=[ConversationStatus.RESOLVED, ConversationStatus.CLOSED])
        # Someone leaving: their own membership row is about to go, so the system unassigns.
        by = None if target.pk == actor.pk else actor
        for conversation in active:
            update_conversation(conversation, actor=by, assignee=None)
        target.delete()


def update_team(
    team: Team, *, name: str | None = None, members: Iterable[Membership] | None = None
) -> Team:
    """Rename the team and/or replace its members (given ones only)."""
    if name is not None:
        name = name.strip()
        if not name:
            raise ValueError("a team needs a name")
    if members is not None:
        members = list(members)
        if any(member.workspace_id != team.workspace_id for member in members):
            raise ValueError("a member belongs to another workspace")
    with transaction.atomic():
        if name is not None and name != team.name:
            team.name = name[:100]
            team.save(update_fields=["name"])
        if members is not None:
            team.members.set(members)
    return team


def delete_team(team: Team) -> None:
    """Conversations and channels of the team keep existing without one (on_delete=SET_NULL)."""
    team.delete()
