"""Writes for invitations: invite, resend, revoke, accept.

An invitation's link carries a random secret; only its SHA-256 is stored
(``Invitation.token_hash``), so a database leak does not leak usable links, and a resend makes a
new secret (the old link stops working). Links expire after ``LOKET_INVITATION_DAYS`` (7).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass, field

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_lazy

from loket.accounts.notices import datetime_in_zone
from loket.events import Actor, Event, emit
from loket.tenancy.models import Invitation, Membership, Role, Team, User, Workspace, hash_token
from loket.tenancy.services import add_member

log = logging.getLogger(__name__)

# The roles' names in the current language (Role's own labels are not translated).
ROLE_LABELS = {
    Role.OWNER: gettext_lazy("Owner"),
    Role.ADMIN: gettext_lazy("Admin"),
    Role.SUPERVISOR: gettext_lazy("Supervisor"),
    Role.AGENT: gettext_lazy("Agent"),
}


@dataclass(frozen=True)
class MemberJoined(Event):
    name: str = field(init=False, default="member.joined")
    membership_id: int
    invitation_id: int | None = None


class InvitationError(Exception):
    """An invitation that cannot be made or used; ``str(exc)`` says why, for the person."""


class InvitationNotSent(InvitationError):
    """The invitation is saved, but its email could not be handed to the mail server."""


class InvitationState:
    PENDING = "pending"
    ACCEPTED = "accepted"
    REVOKED = "revoked"
    EXPIRED = "expired"


def invitation_state(invitation: Invitation, now: dt.datetime | None = None) -> str:
    if invitation.accepted_at is not None:
        return InvitationState.ACCEPTED
    if invitation.revoked_at is not None:
        return InvitationState.REVOKED
    if invitation.expires_at <= (now or timezone.now()):
        return InvitationState.EXPIRED
    return InvitationState.PENDING


def roles_invitable_by(membership: Membership) -> list[str]:
    """Admins invite agents and supervisors; only an owner may make owners and admins (the rule
    of the members page)."""
    if membership.role == Role.OWNER:
        return list(Role.values)
    if membership.role == Role.ADMIN:
        return [Role.SUPERVISOR, Role.AGENT]
    return []


def _new_token() -> tuple[str, str]:
    raw = secrets.token_urlsafe(32)
    return raw, hash_token(raw)


def _expiry(now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(days=settings.LOKET_INVITATION_DAYS)


def invitation_url(raw_token: str) -> str:
    return settings.LOKET_PUBLIC_URL + reverse("invitation_accept", args=[raw_token])


def send_invitation_email(invitation: Invitation, raw_token: str) -> None:
    workspace = invitation.workspace
    inviter = invitation.invited_by.user.get_full_name() if invitation.invited_by else ""
    context = {
        "workspace": workspace,
        "inviter": inviter,
        "url": invitation_url(raw_token),
        "expires": datetime_in_zone(invitation.expires_at, workspace.time_zone),
        "role": ROLE_LABELS.get(invitation.role, invitation.role),
    }
    # In the workspace's language: the invitee has no language of their own here yet.
    with translation.override(workspace.locale or settings.LANGUAGE_CODE):
        subject = gettext("You are invited to %(workspace)s on Loket") % {
            "workspace": workspace.name
        }
        body = render_to_string("accounts/email/invitation.txt", context)
    try:
        send_mail(subject, body, None, [invitation.email])
    except (smtplib.SMTPException, OSError) as exc:
        log.warning("invitation %s: the email could not be sent: %s", invitation.pk, exc)
        raise InvitationNotSent(
            gettext(
                "The invitation for %(email)s is saved, but the email could not be sent. "
                "Check the mail settings, then use Resend."
            )
            % {"email": invitation.email}
        ) from exc


def create_invitation(
    workspace: Workspace,
    *,
    email: str,
    role: str,
    invited_by: Membership,
    teams: Iterable[Team] = (),
    send: bool = True,
) -> tuple[Invitation, str]:
    """Invite ``email`` with ``role`` (and teams); returns the invitation and the raw secret of its
    link, which is mailed and never stored."""
    email = (email or "").strip().lower()
    teams = list(teams)
    if invited_by.workspace_id != workspace.pk:
        raise InvitationError(gettext("You are not a member of that workspace."))
    if role not in roles_invitable_by(invited_by):
        raise InvitationError(gettext("You cannot invite someone with that role."))
    if any(team.workspace_id != workspace.pk for team in teams):
        raise InvitationError(gettext("That team belongs to another workspace."))
    if Membership.objects.filter(workspace=workspace, user__email__iexact=email).exists():
        raise InvitationError(gettext("%(email)s is already a member.") % {"email": email})
    now = timezone.now()
    if Invitation.objects.filter(
        workspace=workspace,
        email=email,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=now,
    ).exists():
        raise InvitationError(
            gettext("%(email)s already has a pending invitation: resend or revoke it.")
            % {"email": email}
        )
    raw, token_hash = _new_token()
    with transaction.atomic():
        invitation = Invitation.objects.create(
            workspace=workspace,
            email=email,
            role=role,
            token_hash=token_hash,
            invited_by=invited_by,
            created_at=now,
            expires_at=_expiry(now),
        )
        if teams:
            invitation.teams.set(teams)
    if send:
        send_invitation_email(invitation, raw)
    return invitation, raw


def resend_invitation(invitation: Invitation, *, send: bool = True) -> str:
    """A new link (the old one stops working) valid for the full period again; an expired
    invitation can be resent, an accepted or revoked one cannot."""
    if invitation.accepted_at is not None or invitation.revoked_at is not None:
        raise InvitationError(gettext("This invitation can no longer be resent."))
    raw, token_hash = _new_token()
    invitation.token_hash = token_hash
    invitation.expires_at = _expiry(timezone.now())
    invitation.save(update_fields=["token_hash", "expires_at"])
    if send:
        send_invitation_email(invitation, raw)
    return raw


def revoke_invitation(invitation: Invitation) -> None:
    if invitation.accepted_at is not None:
        raise InvitationError(gettext("This invitation was already accepted."))
    if invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])


def _usable_locked(invitation: Invitation) -> Invitation:
    """Inside a transaction: the invitation row locked, still pending (else InvitationError)."""
    locked = (
        Invitation.objects.select_for_update().select_related("workspace").get(pk=invitation.pk)
    )
    if invitation_state(locked) != InvitationState.PENDING:
        raise InvitationError(gettext("This invitation can no longer be used."))
    return locked


def _join(invitation: Invitation, user: User) -> Membership:
    membership = Membership.objects.filter(workspace_id=invitation.workspace_id, user=user).first()
    joined = membership is None
    if joined:
        # An existing member keeps their role: an old invitation must not change it.
        membership = add_member(invitation.workspace, user, role=invitation.role)
    teams = list(invitation.teams.all())
    for team in teams:
        team.members.add(membership)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    if joined:
        emit(
            MemberJoined(
                workspace_id=invitation.workspace_id,
                actor=Actor("member", membership.pk),
                membership_id=membership.pk,
                invitation_id=invitation.pk,
            )
        )
    return membership


def accept_invitation(invitation: Invitation, user: User) -> Membership:
    """An existing, signed-in user accepts: the invitation must be for their email address."""
    if user.email.lower() != invitation.email.lower():
        raise InvitationError(gettext("This invitation is for another email address."))
    with transaction.atomic():
        return _join(_usable_locked(invitation), user)


def register_and_accept(invitation: Invitation, *, name: str, password: str) -> Membership:
    """A new person: their account (with the invited, now verified, email address) and their
    membership, at once. The password must have passed the validators already."""
    try:
        with transaction.atomic():
            locked = _usable_locked(invitation)
            user = User.objects.create_user(locked.email, password, name=name.strip()[:150])
            # The link reached this address, which proves it: 2FA setup needs a verified one.
            EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
            return _join(locked, user)
    except IntegrityError as exc:  # the address got an account in the meantime
        raise InvitationError(
            gettext("An account with this email address already exists: sign in to accept.")
        ) from exc
