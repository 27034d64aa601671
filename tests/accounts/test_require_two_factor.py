"""A workspace that requires 2FA: a grace period with a notice, then enrolment on every path."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.core import mail
from django.utils import timezone

from loket.accounts.policy import must_enrol, two_factor_status
from loket.tenancy.models import Workspace
from loket.tenancy.services import add_member
from tests import factories
from tests.accounts.helpers import (
    enable_totp,
    links_in_last_mail,
    path_of,
    sign_in,
    signed_in_user_id,
    totp_code,
)

ENROL = "/accounts/2fa/totp/activate/"


def require_2fa(workspace: Workspace, *, started_days_ago: float, grace_days: int = 7) -> None:
    workspace.require_2fa = True
    workspace.require_2fa_since = timezone.now() - dt.timedelta(days=started_days_ago)
    workspace.two_factor_grace_days = grace_days
    workspace.save()


@pytest.fixture
def agent(workspace):
    return factories.agent(workspace, "kim@example.com").user


def test_after_the_grace_period_every_page_leads_to_enrolment(client, workspace, agent):
    require_2fa(workspace, started_days_ago=8)
    assert must_enrol(agent)
    response = sign_in(client, "kim@example.com")
    assert signed_in_user_id(client) == str(agent.pk)

    for path in (response["Location"], "/", f"/w/{workspace.slug}/", "/accounts/password/change/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == ENROL, path
    page = client.get(ENROL)
    assert page.status_code == 200  # right after signing in, no second password prompt
    html = page.content.decode()
    assert (
        "Acme requires two-factor authentication. Set up an authenticator app to continue." in html
    )
    assert "Back to Loket" not in html  # no links that would only lead back here


def test_enrolling_lets_the_member_in(client, workspace, agent):
    require_2fa(workspace, started_days_ago=8)
    sign_in(client, "kim@example.com")
    client.get(ENROL)
    secret = client.session["mfa.totp.secret"]
    response = client.post(ENROL, {"code": totp_code(secret)})
    assert response["Location"] == "/accounts/2fa/recovery-codes/"
    assert client.get("/accounts/2fa/recovery-codes/").status_code == 200
    assert not must_enrol(agent)
    assert client.get(f"/w/{workspace.slug}/").status_code == 200


def test_during_the_grace_period_signing_in_shows_the_deadline(client, workspace, agent):
    require_2fa(workspace, started_days_ago=2, grace_days=7)
    workspace.time_zone = "Europe/Amsterdam"
    workspace.save()
    assert not must_enrol(agent)
    assert two_factor_status(agent).in_grace()

    response = sign_in(client, "kim@example.com")
    page = client.get(response["Location"], follow=True)
    assert page.status_code == 200
    assert page.redirect_chain[-1][0] != ENROL
    html = page.content.decode()
    assert "Acme requires two-factor authentication. Please set it up before" in html
    deadline = timezone.localtime(
        workspace.require_2fa_since + dt.timedelta(days=7),
        zoneinfo.ZoneInfo("Europe/Amsterdam"),
    )
    assert deadline.strftime("%Y") in html and f"({deadline.tzname()})" in html
    assert f'href="{ENROL}"' in html
    assert client.get(f"/w/{workspace.slug}/").status_code == 200  # not forced yet


def test_members_of_other_workspaces_and_enrolled_members_are_not_forced(client, workspace, agent):
    require_2fa(workspace, started_days_ago=30)
    outsider = factories.user("lee@example.com")
    factories.workspace("other")
    assert not must_enrol(outsider)
    enable_totp(agent)
    assert not must_enrol(agent)


def test_the_strictest_workspace_decides(workspace, agent):
    relaxed = factories.workspace("relaxed")
    add_member(relaxed, agent)
    require_2fa(relaxed, started_days_ago=1, grace_days=30)
    assert not must_enrol(agent)
    require_2fa(workspace, started_days_ago=10, grace_days=7)
    assert must_enrol(agent)
    assert two_factor_status(agent).requirements[0].workspace_name == "Acme"


def test_require_without_a_start_time_gives_no_grace(workspace, agent):
    workspace.require_2fa = True
    workspace.require_2fa_since = None
    workspace.save()
    assert must_enrol(agent)


def test_while_forced_sign_out_static_files_and_health_still_work(client, workspace, agent):
    require_2fa(workspace, started_days_ago=8)
    sign_in(client, "kim@example.com")
    assert client.get("/healthz").status_code == 200
    assert client.get("/static/accounts/auth.css").status_code == 200
    # The public help center reads the same for a member who still has to enrol.
    assert client.get(f"/help/{workspace.slug}/en/").status_code == 404  # not switched on
    assert client.post("/accounts/logout/").status_code == 302
    assert signed_in_user_id(client) is None


def test_htmx_requests_get_a_full_page_redirect(client, workspace, agent):
    require_2fa(workspace, started_days_ago=8)
    sign_in(client, "kim@example.com")
    response = client.get(f"/w/{workspace.slug}/", headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response["HX-Redirect"] == ENROL


def test_a_later_visit_asks_for_the_password_before_enrolling(client, workspace, agent):
    require_2fa(workspace, started_days_ago=8)
    sign_in(client, "kim@example.com")
    session = client.session
    records = session["account_authentication_methods"]
    for record in records:
        record["at"] -= 3600  # signed in an hour ago
    session["account_authentication_methods"] = records
    session.save()

    response = client.get(ENROL)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/reauthenticate/")
    reauth = client.get(response["Location"])
    assert reauth.status_code == 200  # reachable although forced
    response = client.post(response["Location"], {"password": "pw-for-tests-1"})
    assert response.status_code == 302
    assert response["Location"] == ENROL
    assert client.get(ENROL).status_code == 200


def test_signing_in_after_a_password_reset_is_forced_too(client, workspace, agent):
    require_2fa(workspace, started_days_ago=8)
    client.post("/accounts/password/reset/", {"email": "kim@example.com"})
    [link] = [url for url in links_in_last_mail() if "/password/reset/key/" in url]
    form_url = client.get(path_of(link))["Location"]
    client.post(form_url, {"password1": "a-New-passw0rd!", "password2": "a-New-passw0rd!"})
    assert len(mail.outbox) >= 1
    sign_in(client, "kim@example.com", "a-New-passw0rd!")
    assert signed_in_user_id(client) == str(agent.pk)
    assert client.get("/")["Location"] == ENROL


def test_the_api_is_not_affected(workspace):
    require_2fa(workspace, started_days_ago=8)
    owner = factories.owner_of(workspace)
    assert must_enrol(owner.user)
    api = factories.ApiClient(owner)  # bearer tokens, not sessions
    assert api.get("/conversations").status_code == 200
