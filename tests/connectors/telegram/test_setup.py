"""Connecting a bot: the token, the webhook registered with Telegram, the connection check."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from loket.connectors.base import InvalidConfig
from loket.inbox.models import Channel
from loket.inbox.services.channels import create_channel, reconfigure_channel
from tests.connectors.providers import Answer
from tests.connectors.telegram.conftest import OTHER_TOKEN, PUBLIC_URL, TOKEN, failure, method


def test_the_form_asks_for_the_bot_token_as_a_secret(connector):
    (field,) = connector.setup_fields
    assert (field.name, field.secret, field.required) == ("bot_token", True, True)
    assert "BotFather" in str(field.help)
    assert connector.shows_webhook_url is False
    caps = connector.capabilities
    assert (caps.text, caps.media, caps.typing, caps.delivery_statuses) == (
        True,
        True,
        False,
        False,
    )
    assert caps.reply_window_hours is None and caps.templates is False


def test_creating_the_channel_registers_the_webhook_with_its_secret(channel, telegram):
    secret = channel.secrets["webhook_secret"]
    assert len(secret) >= 32 and secret.replace("-", "").replace("_", "").isalnum()
    (request,) = telegram.requests_to("POST", method("setWebhook"))
    assert request.path == f"/bot{TOKEN}/setWebhook"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "url": f"{PUBLIC_URL}/hooks/telegram/{channel.uuid}/",
        "secret_token": secret,
        "allowed_updates": ["message", "edited_message", "message_reaction", "callback_query"],
        "drop_pending_updates": False,
    }
    # What getMe said about the bot is kept (not secret); the token and the secret are encrypted.
    assert channel.settings == {
        "bot_id": "7000000001",
        "bot_username": "loket_support_bot",
        "bot_name": "Loket Support",
    }
    assert channel.secrets["bot_token"] == TOKEN
    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets FROM inbox_channel WHERE id = %s", [channel.pk])
        (raw,) = cursor.fetchone()
    assert TOKEN not in str(raw) and channel.secrets["webhook_secret"] not in str(raw)


def test_each_channel_gets_its_own_random_secret(workspace, telegram, connector):
    one, _ = create_channel(workspace, connector, name="A", config={"bot_token": TOKEN})
    two, _ = create_channel(workspace, connector, name="B", config={"bot_token": TOKEN})
    assert one.secrets["webhook_secret"] != two.secrets["webhook_secret"]


@pytest.mark.parametrize(
    ("config", "complaint"),
    [
        ({}, "Enter the bot token"),
        ({"bot_token": "   "}, "Enter the bot token"),
        ({"bot_token": "not-a-token"}, "does not look like a Telegram bot token"),
        ({"bot_token": "123456:short"}, "does not look like a Telegram bot token"),
        ({"bot_token": f"bot{TOKEN}"}, "does not look like a Telegram bot token"),
        ({"bot_token": TOKEN, "webhook": "x"}, "unknown setting"),
    ],
)
def test_a_token_of_the_wrong_shape_is_refused(connector, config, complaint):
    with pytest.raises(InvalidConfig, match=complaint):
        connector.setup(config)


def test_editing_with_a_blank_token_keeps_the_token_and_the_secret(channel, connector):
    before = dict(channel.secrets)
    reconfigure_channel(channel, connector, {"bot_token": ""})
    channel.refresh_from_db()
    assert channel.secrets == before
    assert channel.settings["bot_username"] == "loket_support_bot"


def test_a_new_token_for_another_bot_registers_the_webhook_for_that_bot(
    channel, connector, telegram
):
    secret = channel.secrets["webhook_secret"]
    reconfigure_channel(channel, connector, {"bot_token": OTHER_TOKEN})
    channel.refresh_from_db()
    assert channel.secrets == {"bot_token": OTHER_TOKEN, "webhook_secret": secret}
    assert channel.settings == {
        "bot_id": "7000000002",
        "bot_username": "ferry_desk_bot",
        "bot_name": "Ferry Desk",
    }
    last = telegram.requests_to("POST", method("setWebhook"))[-1]
    assert last.path == f"/bot{OTHER_TOKEN}/setWebhook"
    assert last.json()["secret_token"] == secret


def test_a_wrong_token_is_refused_when_the_channel_is_created(workspace, telegram, connector):
    wrong = "7000000003:CCHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"
    with pytest.raises(InvalidConfig) as raised:
        create_channel(workspace, connector, name="Bot", config={"bot_token": wrong})
    assert "401 Unauthorized" in str(raised.value)
    assert "token is wrong or was revoked" in str(raised.value)
    assert not telegram.requests_to("POST", method("setWebhook"))
    assert not Channel.objects.filter(kind="telegram").exists()


def test_telegram_refusing_the_webhook_is_shown_with_its_reason(workspace, telegram, connector):
    telegram.then(
        "POST",
        method("setWebhook"),
        failure(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"),
    )
    with pytest.raises(InvalidConfig) as raised:
        create_channel(workspace, connector, name="Bot", config={"bot_token": TOKEN})
    assert "An HTTPS URL must be provided for webhook" in str(raised.value)
    assert "did not accept Loket's webhook" in str(raised.value)
    assert not Channel.objects.filter(kind="telegram").exists()


def test_a_refused_new_token_keeps_the_working_one(channel, connector, telegram):
    before = dict(channel.secrets)
    with pytest.raises(InvalidConfig, match="401 Unauthorized"):
        reconfigure_channel(
            channel, connector, {"bot_token": "7000000003:CCHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"}
        )
    channel.refresh_from_db()
    assert channel.secrets == before


def test_check_connection_passes_for_a_working_bot(channel, connector, telegram):
    connector.check_connection(channel)
    assert telegram.requests_to("POST", method("getWebhookInfo"))


def test_check_connection_explains_a_bad_token(channel, connector, telegram):
    telegram.then("POST", method("getMe"), failure(401, "Unauthorized"))
    with pytest.raises(InvalidConfig) as raised:
        connector.check_connection(channel)
    message = str(raised.value)
    assert "401 Unauthorized" in message
    assert "token is wrong or was revoked" in message
    assert "@BotFather" in message
    assert TOKEN not in message


def test_check_connection_reports_a_webhook_pointing_elsewhere(channel, connector, telegram):
    telegram.then(
        "POST",
        method("getWebhookInfo"),
        Answer(
            200,
            {"ok": True, "result": {"url": "https://old.example/tg", "pending_update_count": 3}},
        ),
    )
    with pytest.raises(InvalidConfig) as raised:
        connector.check_connection(channel)
    assert "https://old.example/tg" in str(raised.value)
    assert f"{PUBLIC_URL}/hooks/telegram/{channel.uuid}/" in str(raised.value)


def test_check_connection_reports_a_missing_webhook(channel, connector, telegram):
    telegram.then(
        "POST", method("getWebhookInfo"), Answer(200, {"ok": True, "result": {"url": ""}})
    )
    with pytest.raises(InvalidConfig, match="has no webhook"):
        connector.check_connection(channel)


def test_check_connection_reports_telegrams_last_delivery_error(channel, connector, telegram):
    info = {
        "url": f"{PUBLIC_URL}/hooks/telegram/{channel.uuid}/",
        "pending_update_count": 12,
        "last_error_date": int(time.time()) - 30,
        "last_error_message": "Wrong response from the webhook: 502 Bad Gateway",
    }
    telegram.then("POST", method("getWebhookInfo"), Answer(200, {"ok": True, "result": info}))
    with pytest.raises(InvalidConfig) as raised:
        connector.check_connection(channel)
    assert "502 Bad Gateway" in str(raised.value)
    assert "12 update(s) waiting" in str(raised.value)


def test_an_old_delivery_error_with_nothing_waiting_is_not_reported(channel, connector, telegram):
    info = {
        "url": f"{PUBLIC_URL}/hooks/telegram/{channel.uuid}/",
        "pending_update_count": 0,
        "last_error_date": int(time.time()) - 86400,
        "last_error_message": "Connection timed out",
    }
    telegram.then("POST", method("getWebhookInfo"), Answer(200, {"ok": True, "result": info}))
    connector.check_connection(channel)


def test_check_connection_when_telegram_cannot_be_reached(channel, connector, settings):
    settings.LOKET_TELEGRAM_API_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    with pytest.raises(InvalidConfig, match="could not reach Telegram") as raised:
        connector.check_connection(channel)
    assert TOKEN not in str(raised.value)
