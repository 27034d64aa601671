"""Invitations: the admins' page, the emailed link, joining as a new or an existing person."""

from __future__ import annotations

import datetime as dt
import hashlib
import smtplib

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.urls import reverse
from django.utils import timezone

from loket.accounts.invitations import (
    InvitationError,
    accept_invitation,
    create_invitation,
    resend_invitation,
    revoke_invitation,
)
from loket.tenancy.models import Invitation, Membership, Role, User
from loket.tenancy.services import add_member, create_team
from tests import factories
from tests.accounts.helpers import (
    PASSWORD,
    enable_totp,
    links_in_last_mail,
    path_of,
    sign_in,
    signed_in_user_id,
    totp_code,
)


def invitations_url(workspace) -> str:
    url = f"/w/{workspace.slug}/settings/invitations/"
    assert reverse("invitations:list", args=[workspace.slug]) == url  # the settings pages link it
    return url


def invite_link_path() -> str:
    [link] = [url for url in links_in_last_mail() if "/accounts/invitations/" in url]
    return path_of(link)


@pytest.fixture
def admin_client(client, owner):
    client.force_login(owner.user)
    return client


def invite(workspace, email="new@example.com", role=Role.AGENT, teams=()):
    return create_invitation(
        workspace, email=email, role=role, teams=teams, invited_by=factories.owner_of(workspace)
    )


# --- The admins' page --------------------------------------------------------------------------


def test_an_admin_invites_someone_by_email(admin_client, workspace, settings):
    settings.LOKET_PUBLIC_URL = "https://support.example.com"
    team = create_team(workspace, "Billing")
    page = admin_client.get(invitations_url(workspace))
    assert page.status_code == 200
    response = admin_client.post(
        invitations_url(workspace),
        {"email": "New@Example.com", "role": Role.SUPERVISOR, "teams": [team.pk]},
    )
    assert response.status_code == 302
    invitation = Invitation.objects.get(workspace=workspace)
    assert invitation.email == "new@example.com"
    assert invitation.role == Role.SUPERVISOR
    assert list(invitation.teams.all()) == [team]
    assert invitation.invited_by == factories.owner_of(workspace)
    assert (invitation.expires_at - timezone.now()).days == 6  # 7 days, minus a moment

    [message] = mail.outbox
    assert message.to == ["new@example.com"]
    assert "Acme" in message.subject
    [link] = [url for url in links_in_last_mail() if "/accounts/invitations/" in url]
    assert link.startswith("https://support.example.com/accounts/invitations/")
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in invitation.token_hash  # only the hash is stored

    listing = admin_client.get(invitations_url(workspace)).content.decode()
    assert "new@example.com" in listing and "Billing" in listing


def test_the_form_explains_mistakes(admin_client, workspace):
    factories.agent(workspace, "member@example.com")
    response = admin_client.post(
        invitations_url(workspace), {"email": "member@example.com", "role": Role.AGENT}
    )
    assert response.status_code == 400
    assert "member@example.com is already a member." in response.content.decode()
    response = admin_client.post(invitations_url(workspace), {"email": "nope", "role": "agent"})
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()
    invite(workspace, "twice@example.com")
    response = admin_client.post(
        invitations_url(workspace), {"email": "twice@example.com", "role": Role.AGENT}
    )
    assert "already has a pending invitation" in response.content.decode()
    assert Invitation.objects.filter(email="twice@example.com").count() == 1


def test_only_owners_invite_owners_and_admins(client, workspace):
    admin = add_member(workspace, factories.user("admin@example.com"), role=Role.ADMIN)
    client.force_login(admin.user)
    response = client.post(invitations_url(workspace), {"email": "x@example.com", "role": "owner"})
    assert response.status_code == 400
    assert not Invitation.objects.exists()
    with pytest.raises(InvitationError):
        create_invitation(workspace, email="x@example.com", role=Role.ADMIN, invited_by=admin)
    response = client.post(invitations_url(workspace), {"email": "x@example.com", "role": "agent"})
    assert response.status_code == 302


def test_resending_makes_a_new_link_and_the_old_one_stops_working(admin_client, client, workspace):
    invitation, old_token = invite(workspace)
    invitation.expires_at = timezone.now() + dt.timedelta(hours=1)
    invitation.save()
    response = admin_client.post(f"{invitations_url(workspace)}{invitation.pk}/resend/")
    assert response.status_code == 302
    new_path = invite_link_path()
    assert old_token not in new_path
    invitation.refresh_from_db()
    assert invitation.expires_at > timezone.now() + dt.timedelta(days=6)
    admin_client.logout()
    assert client.get(f"/accounts/invitations/{old_token}/").status_code == 404
    assert client.get(new_path).status_code == 200


def test_revoking(admin_client, client, workspace):
    invitation, token = invite(workspace)
    response = admin_client.post(f"{invitations_url(workspace)}{invitation.pk}/revoke/")
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    listing = admin_client.get(invitations_url(workspace)).content.decode()
    assert "Revoked" in listing
    with pytest.raises(InvitationError):
        resend_invitation(invitation)
    admin_client.logout()
    assert client.get(f"/accounts/invitations/{token}/").status_code == 410


def test_the_page_and_its_actions_are_for_admins_only(client, workspace):
    invitation, _ = invite(workspace)
    agent = factories.agent(workspace, "agent@example.com")
    client.force_login(agent.user)
    assert client.get(invitations_url(workspace)).status_code == 403
    assert client.post(invitations_url(workspace), {"email": "a@example.com"}).status_code == 403
    assert client.post(f"{invitations_url(workspace)}{invitation.pk}/revoke/").status_code == 403
    assert client.post(f"{invitations_url(workspace)}{invitation.pk}/resend/").status_code == 403
    invitation.refresh_from_db()
    assert invitation.revoked_at is None


def test_another_workspaces_invitations_are_not_there(admin_client, workspace):
    other = factories.workspace("other")
    theirs, _ = invite(other, "theirs@example.com")
    assert admin_client.get(invitations_url(other)).status_code == 404
    assert admin_client.post(f"{invitations_url(other)}{theirs.pk}/revoke/").status_code == 404
    # Their invitation's id under our own workspace's address: still not found.
    assert admin_client.post(f"{invitations_url(workspace)}{theirs.pk}/revoke/").status_code == 404
    assert admin_client.post(f"{invitations_url(workspace)}{theirs.pk}/resend/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert "theirs@example.com" not in admin_client.get(invitations_url(workspace)).content.decode()
    assert len(mail.outbox) == 1  # only the original invitation mail


def test_signed_out_people_are_sent_to_sign_in(client, workspace):
    response = client.get(invitations_url(workspace))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- The link ------------------------------------------------------------------------------------


def test_a_new_person_sets_name_and_password_and_joins(client, workspace):
    team = create_team(workspace, "Billing")
    invite(workspace, "new@example.com", role=Role.SUPERVISOR, teams=[team])
    path = invite_link_path()
    page = client.get(path)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Join Acme" in html and "new@example.com" in html

    response = client.post(path, {"name": "Noor", "password1": "short", "password2": "short"})
    assert response.status_code == 400
    assert "too short" in response.content.decode()
    assert not User.objects.filter(email="new@example.com").exists()

    response = client.post(
        path, {"name": "Noor", "password1": "Sturdy-passw0rd", "password2": "Sturdy-passw0rd"}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/w/{workspace.slug}/"
    user = User.objects.get(email="new@example.com")
    assert user.name == "Noor" and user.check_password("Sturdy-passw0rd")
    assert signed_in_user_id(client) == str(user.pk)
    membership = Membership.objects.get(workspace=workspace, user=user)
    assert membership.role == Role.SUPERVISOR
    assert list(membership.teams.all()) == [team]
    assert EmailAddress.objects.get(user=user).verified
    invitation = Invitation.objects.get(email="new@example.com")
    assert invitation.accepted_by == user and invitation.accepted_at is not None

    assert client.get(path)["Location"] == f"/w/{workspace.slug}/"  # opened again: just go in
    client.post("/accounts/logout/")
    used = client.get(path)
    assert used.status_code == 410
    assert "already used" in used.content.decode()
    assert sign_in(client, "new@example.com", "Sturdy-passw0rd").status_code == 302


def test_someone_with_an_account_signs_in_and_accepts(client, workspace):
    other = factories.workspace("other")
    person = add_member(other, factories.user("kim@example.com", name="Kim")).user
    invite(workspace, "KIM@example.com", role=Role.AGENT)
    path = invite_link_path()

    page = client.get(path)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Sign in to accept" in html
    assert f'href="/accounts/login/?next={path}"' in html
    assert client.post(path, {"name": "x", "password1": "y", "password2": "y"}).status_code == 200
    assert not Membership.objects.filter(workspace=workspace, user=person).exists()

    response = sign_in(client, "kim@example.com", PASSWORD, next=path)
    assert response["Location"] == path
    assert "Accept invitation" in client.get(path).content.decode()
    response = client.post(path)
    assert response["Location"] == f"/w/{workspace.slug}/"
    assert Membership.objects.get(workspace=workspace, user=person).role == Role.AGENT
    person.refresh_from_db()
    assert person.check_password(PASSWORD)  # their account is untouched


def test_someone_with_2fa_passes_it_on_the_way(client, workspace):
    person = factories.user("kim@example.com")
    secret, _ = enable_totp(person)
    invite(workspace, "kim@example.com")
    path = invite_link_path()
    response = sign_in(client, "kim@example.com", PASSWORD, next=path)
    assert response["Location"] == "/accounts/2fa/authenticate/"
    response = client.post("/accounts/2fa/authenticate/", {"code": totp_code(secret)})
    assert response["Location"] == path
    client.post(path)
    assert Membership.objects.filter(workspace=workspace, user=person).exists()


def test_signed_in_as_someone_else(client, workspace):
    stranger = factories.user("lee@example.com")
    invite(workspace, "kim@example.com")
    path = invite_link_path()
    client.force_login(stranger)
    page = client.get(path)
    assert page.status_code == 403
    assert "This invitation is for someone else" in page.content.decode()
    assert client.post(path).status_code == 403
    assert not Membership.objects.filter(workspace=workspace, user=stranger).exists()


def test_expired_revoked_and_unknown_links_say_so(client, workspace):
    expired, expired_token = invite(workspace, "late@example.com")
    expired.expires_at = timezone.now() - dt.timedelta(minutes=1)
    expired.save()
    revoked, revoked_token = invite(workspace, "gone@example.com")
    revoke_invitation(revoked)

    response = client.get(f"/accounts/invitations/{expired_token}/")
    assert response.status_code == 410
    assert "This invitation has expired" in response.content.decode()
    response = client.post(
        f"/accounts/invitations/{expired_token}/",
        {"name": "Late", "password1": "Sturdy-passw0rd", "password2": "Sturdy-passw0rd"},
    )
    assert response.status_code == 410
    assert not User.objects.filter(email="late@example.com").exists()

    response = client.get(f"/accounts/invitations/{revoked_token}/")
    assert response.status_code == 410
    assert "This invitation was withdrawn" in response.content.decode()

    response = client.get("/accounts/invitations/not-a-real-token/")
    assert response.status_code == 404
    assert "This invitation link is not valid" in response.content.decode()


def test_accepting_checks_the_state_again(workspace):
    invitation, _ = invite(workspace, "kim@example.com")
    person = factories.user("kim@example.com")
    revoke_invitation(invitation)
    with pytest.raises(InvitationError):
        accept_invitation(invitation, person)
    fresh, _ = invite(workspace, "kim@example.com")
    with pytest.raises(InvitationError):
        accept_invitation(fresh, factories.user("lee@example.com"))  # not their address
    accept_invitation(fresh, person)
    with pytest.raises(InvitationError):
        accept_invitation(fresh, person)  # used


def test_joining_a_workspace_that_requires_2fa_leads_to_enrolment(client, workspace):
    workspace.require_2fa = True
    workspace.require_2fa_since = timezone.now() - dt.timedelta(days=30)
    workspace.save()
    invite(workspace, "new@example.com")
    path = invite_link_path()
    response = client.post(
        path, {"name": "Noor", "password1": "Sturdy-passw0rd", "password2": "Sturdy-passw0rd"}
    )
    assert signed_in_user_id(client) is not None
    assert client.get(response["Location"])["Location"] == "/accounts/2fa/totp/activate/"
    assert client.get("/accounts/2fa/totp/activate/").status_code == 200  # no password again


class RefusingMailServer(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("the mail server went away")


def test_a_mail_server_failure_is_reported_and_resend_recovers(admin_client, workspace, settings):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingMailServer"
    response = admin_client.post(
        invitations_url(workspace), {"email": "new@example.com", "role": Role.AGENT}, follow=True
    )
    assert "the email could not be sent" in response.content.decode()
    invitation = Invitation.objects.get(email="new@example.com")  # kept, to resend

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    admin_client.post(f"{invitations_url(workspace)}{invitation.pk}/resend/")
    assert mail.outbox[-1].to == ["new@example.com"]
    admin_client.logout()
    assert admin_client.get(invite_link_path()).status_code == 200
