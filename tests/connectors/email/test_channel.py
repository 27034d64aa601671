"""Connecting a mailbox: the email connector's settings (validated, secrets encrypted and kept),
through the API and the admin settings pages, and the connection test against real servers."""

from __future__ import annotations

import pytest

from loket.connectors.base import InvalidConfig
from loket.connectors.registry import get_connector
from loket.inbox.models import Channel
from loket.inbox.services.channels import create_channel
from tests import factories
from tests.connectors.email import smtp_servers
from tests.workspace_settings.conftest import signed_in, url

BASE = {
    "address": "Support@Shop.Example",
    "from_name": "Shop support",
    "imap_host": "imap.shop.example",
    "imap_username": "support",
    "imap_password": "imap-secret",
    "smtp_host": "smtp.shop.example",
    "smtp_password": "smtp-secret",
}


def email_channel(workspace, **config):
    channel, _ = create_channel(
        workspace, get_connector("email"), name="Support mail", config={**BASE, **config}
    )
    return channel


def test_settings_are_validated_with_clear_reasons(workspace):
    connector = get_connector("email")
    cases = [
        ({"address": ""}, "address is required"),
        ({"address": "not-an-address"}, "address is not a valid email address"),
        ({"imap_port": 0}, "imap_port must be between 1 and 65535"),
        ({"imap_security": "ssl3"}, "imap_security must be one of tls, starttls, none"),
        ({"imap_processed_action": "move"}, "imap_processed_folder is required"),
        ({"imap_host": ""}, "imap_host is required"),
        ({"smtp_host": ""}, "smtp_host is required"),
        ({"from_name": "a\nb"}, "from_name must be one line"),
        ({"bogus": 1}, "unknown setting(s): bogus"),
    ]
    for change, reason in cases:
        with pytest.raises(InvalidConfig, match=reason.replace("(", r"\(").replace(")", r"\)")):
            connector.setup({**BASE, **change})
    # Mail forwarded to loket smtpd needs no IMAP server.
    assert connector.setup({**BASE, "inbound": "forward", "imap_host": ""}).settings["inbound"]


def test_secrets_are_encrypted_never_shown_and_kept_when_left_blank(workspace):
    channel = email_channel(workspace)
    assert channel.settings["address"] == "Support@shop.example"  # the domain lowercased
    assert "imap-secret" not in str(channel.settings)
    raw = Channel.objects.filter(pk=channel.pk).values_list("secrets", flat=True).get()
    assert "imap-secret" not in raw and "smtp-secret" not in raw
    assert channel.secrets == {"imap_password": "imap-secret", "smtp_password": "smtp-secret"}
    public = get_connector("email").public_settings(channel)
    assert "imap-secret" not in str(public)
    assert public["has_secret"]["imap_password"] is True
    assert public["forwarding_address"].startswith(channel.uuid.hex + "@")

    setup = get_connector("email").setup(
        {"imap_password": "", "from_name": "Desk"}, existing=channel
    )
    assert setup.secrets["imap_password"] == "imap-secret"
    assert setup.settings["from_name"] == "Desk"
    assert setup.settings["imap_host"] == "imap.shop.example"


def test_the_api_creates_updates_and_checks_an_email_channel(api, workspace):
    created = api.post("/channels", {"kind": "email", "name": "Mail", "config": BASE})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["settings"]["imap_host"] == "imap.shop.example"
    assert "imap-secret" not in created.content.decode()

    patched = api.patch(f"/channels/{body['id']}", {"config": {"imap_port": 1993}})
    assert patched.status_code == 200, patched.content
    assert patched.json()["settings"]["imap_port"] == 1993
    channel = Channel.objects.get(pk=body["id"])
    assert channel.secrets["imap_password"] == "imap-secret"

    bad = api.patch(f"/channels/{body['id']}", {"config": {"imap_port": "x"}})
    assert bad.status_code == 400 and "imap_port must be a whole number" in bad.content.decode()

    # Nothing listens on these hosts here: a clear failure, not an exception.
    checked = api.post(f"/channels/{body['id']}/check", {})
    assert checked.status_code == 200
    assert checked.json()["ok"] is False
    assert "IMAP:" in checked.json()["error"] and "SMTP:" in checked.json()["error"]


def test_the_connection_test_logs_in_to_real_imap_and_smtp_servers(
    api, workspace, dovecot, ca_bundle
):
    with smtp_servers.RecordingServer(tls="starttls", credentials={"support": "smtp-pass"}) as smtp:
        config = {
            "address": "support@shop.example",
            "imap_host": dovecot.host,
            "imap_port": dovecot.port,
            "imap_security": "starttls",
            "imap_username": dovecot.username,
            "imap_password": dovecot.password,
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "smtp_security": "starttls",
            "smtp_username": "support",
            "smtp_password": "smtp-pass",
        }
        created = api.post("/channels", {"kind": "email", "name": "Mail", "config": config})
        channel_id = created.json()["id"]
        ok = api.post(f"/channels/{channel_id}/check", {}).json()
        assert ok == {"ok": True, "error": ""}

        api.patch(f"/channels/{channel_id}", {"config": {"imap_password": "wrong"}})
        failed = api.post(f"/channels/{channel_id}/check", {}).json()
        assert failed["ok"] is False
        assert failed["error"].startswith("IMAP:") and "SMTP" not in failed["error"]


def test_an_admin_adds_and_edits_an_email_channel_in_the_settings(owner, workspace):
    client = signed_in(owner)
    page = client.get(url("channels", workspace)).content.decode()
    assert "New email channel" in page and 'name="imap_host"' in page
    form = {
        "kind": "email",
        "name": "Support mail",
        **{k: v for k, v in BASE.items()},
        "inbound": "imap",
        "imap_port": 993,
        "imap_security": "tls",
        "imap_folder": "INBOX",
        "imap_processed_action": "seen",
        "smtp_port": 587,
        "smtp_security": "starttls",
        "reopen_resolved": "on",
        "new_conversation_after_days": 7,
        "trusted_authserv_ids": "mx1.shop.example, mx2.shop.example",
    }
    response = client.post(url("channels", workspace), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    channel = Channel.objects.get(workspace=workspace, kind="email")
    assert channel.settings["trusted_authserv_ids"] == ["mx1.shop.example", "mx2.shop.example"]
    assert channel.secrets["smtp_password"] == "smtp-secret"

    edit = client.get(url("channel-edit", workspace, channel.pk)).content.decode()
    assert "smtp-secret" not in edit and "imap-secret" not in edit
    assert channel.uuid.hex in edit  # the forwarding address
    assert 'value="mx1.shop.example, mx2.shop.example"' in edit

    changed = {**form, "smtp_password": "", "imap_password": "", "from_name": "Desk"}
    assert client.post(url("channel-edit", workspace, channel.pk), changed).status_code == 302
    channel.refresh_from_db()
    assert channel.settings["from_name"] == "Desk"
    assert channel.secrets["smtp_password"] == "smtp-secret"

    invalid = {**changed, "imap_processed_action": "move", "imap_processed_folder": ""}
    response = client.post(url("channel-edit", workspace, channel.pk), invalid)
    assert response.status_code == 400
    assert "imap_processed_folder is required" in response.content.decode()

    checked = client.post(url("channel-check", workspace, channel.pk), follow=True)
    assert "The connection test failed" in checked.content.decode()


def test_another_workspaces_email_channel_is_out_of_reach(api, workspace):
    other = email_channel(factories.workspace("other"))
    assert api.patch(f"/channels/{other.pk}", {"config": {"imap_port": 1}}).status_code == 404
    assert api.post(f"/channels/{other.pk}/check", {}).status_code == 404
