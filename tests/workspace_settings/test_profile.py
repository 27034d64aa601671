"""The workspace profile: name, time zone, default language and the require-2FA switch."""

from __future__ import annotations

import datetime as dt

from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.utils import timezone

from loket.tenancy.models import Workspace
from tests import factories
from tests.workspace_settings.conftest import url


def profile(**changes) -> dict:
    data = {
        "name": "Acme Support",
        "time_zone": "Europe/Amsterdam",
        "locale": "nl",
        "two_factor_grace_days": "7",
        "attachment_max_mb": "25",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_admin_saves_name_time_zone_and_language(admin_client, workspace):
    response = admin_client.post(url("index", workspace), profile(), follow=True)
    assert response.redirect_chain == [(url("index", workspace), 302)]
    assert "Workspace settings saved." in response.content.decode()
    workspace.refresh_from_db()
    assert (workspace.name, workspace.time_zone, workspace.locale) == (
        "Acme Support",
        "Europe/Amsterdam",
        "nl",
    )


def test_unknown_time_zone_and_language_are_refused_with_errors(admin_client, workspace):
    response = admin_client.post(
        url("index", workspace), profile(time_zone="Mars/Olympus_Mons", locale="xx", name=" ")
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert html.count('class="errorlist"') >= 3
    assert 'aria-invalid="true"' in html
    workspace.refresh_from_db()
    assert (workspace.name, workspace.time_zone, workspace.locale) == ("Acme", "UTC", "en")


def test_grace_period_is_bounded(admin_client, workspace):
    response = admin_client.post(url("index", workspace), profile(two_factor_grace_days="91"))
    assert response.status_code == 400
    workspace.refresh_from_db()
    assert workspace.two_factor_grace_days == 7


def test_requiring_2fa_starts_the_grace_period_once_and_switching_off_clears_it(
    admin_client, workspace
):
    before = timezone.now()
    admin_client.post(url("index", workspace), profile(require_2fa="on", two_factor_grace_days="3"))
    workspace.refresh_from_db()
    assert workspace.require_2fa is True
    assert workspace.two_factor_grace_days == 3
    started = workspace.require_2fa_since
    assert started is not None and before <= started <= timezone.now()

    # Saving again (another field changed) keeps the running grace period.
    Workspace.objects.filter(pk=workspace.pk).update(
        require_2fa_since=started - dt.timedelta(days=2)
    )
    admin_client.post(url("index", workspace), profile(require_2fa="on", name="Renamed"))
    workspace.refresh_from_db()
    assert workspace.require_2fa_since == started - dt.timedelta(days=2)
    assert workspace.name == "Renamed"

    admin_client.post(url("index", workspace), profile())  # the checkbox left unticked
    workspace.refresh_from_db()
    assert workspace.require_2fa is False
    assert workspace.require_2fa_since is None

    admin_client.post(url("index", workspace), profile(require_2fa="on"))
    workspace.refresh_from_db()
    assert workspace.require_2fa_since > started  # a new grace period


def test_page_counts_members_without_two_factor(admin_client, workspace, admin, agent):
    def shown() -> str:
        return admin_client.get(url("index", workspace)).content.decode()

    assert "3 members have not set up two-factor authentication yet." in shown()
    TOTP.activate(admin.user, generate_totp_secret())
    TOTP.activate(agent.user, generate_totp_secret())
    # Someone enrolled who is in another workspace only does not count here.
    TOTP.activate(factories.owner_of(factories.workspace("bravo")).user, generate_totp_secret())
    assert "1 member has not set up two-factor authentication yet." in shown()
    TOTP.activate(factories.owner_of(workspace).user, generate_totp_secret())
    assert "Every member has set up two-factor authentication." in shown()


def test_page_shows_the_current_values_and_the_deadline(admin_client, workspace):
    admin_client.post(
        url("index", workspace),
        profile(require_2fa="on", two_factor_grace_days="5", time_zone="Asia/Tokyo"),
    )
    html = admin_client.get(url("index", workspace)).content.decode()
    assert '<option value="Asia/Tokyo" selected>' in html
    assert '<option value="nl" selected>' in html
    assert 'name="require_2fa" id="id_require_2fa" checked' in html
    assert "members without it must set it up by" in html


def test_the_attachment_limit_is_per_workspace_and_capped_by_the_operator(
    admin_client, workspace, settings
):
    from loket.inbox.services import media

    response = admin_client.post(url("index", workspace), profile(attachment_max_mb="3"))
    assert response.status_code == 302
    workspace.refresh_from_db()
    assert workspace.attachment_max_mb == 3
    assert media.max_attachment_bytes(workspace.pk) == 3 * 1024 * 1024
    settings.LOKET_ATTACHMENT_MAX_BYTES = 1024 * 1024
    assert media.max_attachment_bytes(workspace.pk) == 1024 * 1024
    refused = admin_client.post(url("index", workspace), profile(attachment_max_mb="0"))
    assert refused.status_code == 400
