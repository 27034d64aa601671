"""Channels: list, create (the secret shown once), show."""

from __future__ import annotations

import re

from loket.inbox.models import Channel, Conversation
from loket.tenancy.services import create_team
from tests import factories
from tests.api.conftest import assert_error

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
NEW = {
    "kind": "api",
    "name": "Shop backend",
    "config": {"outbound_url": "https://shop.example/out"},
}


def test_create_returns_id_webhook_url_and_the_secret_once(api, workspace):
    response = api.post("/channels", NEW)
    assert response.status_code == 201, response.content
    created = response.json()
    channel = Channel.objects.get(pk=created["id"])
    assert channel.workspace_id == workspace.pk
    assert created["kind"] == "api" and created["name"] == "Shop backend"
    assert created["uuid"] == str(channel.uuid)
    assert re.fullmatch(rf"https?://[^/]+/hooks/api/{UUID}/", created["webhook_url"])
    assert created["webhook_url"].endswith(f"/hooks/api/{channel.uuid}/")
    assert created["settings"] == {"outbound_url": "https://shop.example/out"}
    assert created["is_active"] is True
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > 20
    assert channel.secrets["secret"] == secret

    shown = api.get(f"/channels/{channel.pk}")
    assert shown.status_code == 200
    assert "secret" not in shown.json()
    assert secret not in shown.content.decode()
    assert created["shown_once"] == {"secret": secret}
    assert {k: v for k, v in created.items() if k not in ("secret", "shown_once")} == shown.json()

    listed = api.get("/channels")
    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()] == [channel.pk]
    assert "secret" not in listed.json()[0]
    assert secret not in listed.content.decode()


def test_the_secret_signs_deliveries_to_the_webhook_url(api, post_webhook):
    created = api.post("/channels", NEW).json()
    channel = Channel.objects.get(pk=created["id"])
    payload = {
        "type": "message",
        "id": "m-1",
        "contact": {"id": "c-9", "name": "Ann"},
        "text": "Hi",
    }
    response = post_webhook(channel, payload, secret=created["secret"])
    assert response.status_code in (200, 201, 202), response.content
    assert Conversation.objects.filter(channel=channel).count() == 1
    rejected = post_webhook(channel, {**payload, "id": "m-2"}, secret="whsec_wrong")
    assert rejected.status_code == 401


def test_a_second_channel_gets_its_own_secret_and_url(api):
    one = api.post("/channels", NEW).json()
    two = api.post("/channels", {**NEW, "name": "Other"}).json()
    assert one["secret"] != two["secret"]
    assert one["webhook_url"] != two["webhook_url"]
    assert [c["name"] for c in api.get("/channels").json()] == ["Other", "Shop backend"]


def test_create_with_a_default_team(api, workspace):
    team = create_team(workspace, "Support")
    created = api.post("/channels", {**NEW, "default_team_id": team.pk})
    assert created.status_code == 201
    assert created.json()["default_team_id"] == team.pk


def test_unknown_kind_is_a_400(api):
    error = assert_error(api.post("/channels", {**NEW, "kind": "pigeon"}), 400, "invalid")
    assert "pigeon" in error["message"]
    assert not Channel.objects.exists()


def test_bad_outbound_url_is_invalid_config(api):
    for url in ("ftp://example.com/x", "not a url", "https://"):
        response = api.post("/channels", {**NEW, "config": {"outbound_url": url}})
        assert_error(response, 400, "invalid_config")
    response = api.post(
        "/channels", {**NEW, "config": {"outbound_url": "https://x.example", "x": 1}}
    )
    assert_error(response, 400, "invalid_config")
    assert not Channel.objects.exists()


def test_a_missing_or_empty_name_is_a_400(api):
    assert_error(api.post("/channels", {"kind": "api"}), 400, "invalid")
    assert_error(api.post("/channels", {**NEW, "name": "   "}), 400, "invalid")
    assert_error(api.post("/channels", {**NEW, "config": "nope"}), 400, "invalid")
    assert not Channel.objects.exists()


def test_a_body_that_is_not_json_is_a_400(api):
    response = api.client.post("/api/v1/channels", data="{nope", content_type="application/json")
    assert_error(response, 400, "invalid")


def test_an_agent_cannot_add_channels(workspace):
    agent = factories.ApiClient(factories.agent(workspace))
    assert_error(agent.post("/channels", NEW), 403, "forbidden")
    assert not Channel.objects.exists()
    assert agent.get("/channels").status_code == 200


def test_show_an_unknown_channel_is_404(api):
    assert_error(api.get("/channels/424242"), 404, "not_found")
