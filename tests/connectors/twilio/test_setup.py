"""Connecting a Twilio channel: what an admin enters, and the connection check."""

from __future__ import annotations

import pytest

from loket.connectors.base import InvalidConfig
from loket.connectors.registry import get_connector
from loket.inbox.services.channels import reconfigure_channel
from tests.connectors.providers import Answer

from .conftest import NUMBER, SID, TOKEN, basic, make_channel

ACCOUNT = rf"/2010-04-01/Accounts/{SID}\.json"


def setup(**config):
    return get_connector("twilio").setup(
        {"account_sid": SID, "auth_token": TOKEN, "phone_number": NUMBER, **config}
    )


def test_setup_fields_and_capabilities():
    connector = get_connector("twilio")
    fields = {field.name: field for field in connector.setup_fields}
    assert list(fields) == ["account_sid", "auth_token", "phone_number", "messaging_service_sid"]
    assert fields["auth_token"].secret and not fields["account_sid"].secret
    assert not fields["phone_number"].required and not fields["messaging_service_sid"].required
    assert connector.shows_webhook_url
    caps = connector.capabilities
    assert (caps.text, caps.media, caps.delivery_statuses) == (True, True, True)
    assert (caps.read_receipts, caps.templates, caps.reply_window_hours) == (False, False, None)


def test_the_token_is_a_secret_and_the_number_is_normalised():
    result = setup(phone_number="+31 970 (1020) 3040")
    assert result.settings == {
        "account_sid": SID,
        "phone_number": "+3197010203040",
        "messaging_service_sid": "",
    }
    assert result.secrets == {"auth_token": TOKEN}
    assert setup(phone_number="0031970102030 40").settings["phone_number"] == "+3197010203040"


@pytest.mark.parametrize(
    ("config", "complaint"),
    [
        ({"account_sid": "SK" + "0" * 32}, "AC followed by 32"),
        ({"account_sid": "AC123"}, "AC followed by 32"),
        ({"auth_token": ""}, "auth token is 32 characters"),
        ({"auth_token": "not-a-token"}, "auth token is 32 characters"),
        ({"phone_number": "0612345678"}, "international (E.164)"),
        ({"phone_number": "+31 6 12"}, "international (E.164)"),
        ({"phone_number": "", "messaging_service_sid": ""}, "phone number to send from"),
        ({"phone_number": "", "messaging_service_sid": "MG12"}, "MG followed by 32"),
        ({"webhook": "x"}, "unknown setting(s): webhook"),
    ],
)
def test_setup_says_what_to_fix(config, complaint):
    with pytest.raises(InvalidConfig, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        setup(**config)


def test_editing_with_a_blank_token_keeps_the_stored_one(workspace, provider):
    channel = make_channel(workspace)
    connector = get_connector("twilio")
    reconfigure_channel(
        channel,
        connector,
        {"account_sid": SID, "auth_token": "", "phone_number": "+3197010203041"},
    )
    channel.refresh_from_db()
    assert channel.secrets == {"auth_token": TOKEN}
    assert channel.settings["phone_number"] == "+3197010203041"
    other = "AC" + "1" * 32
    with pytest.raises(InvalidConfig, match="auth token of the new account"):
        connector.setup({"account_sid": other, "auth_token": ""}, existing=channel)


def test_check_connection_fetches_the_account_with_basic_auth(workspace, provider):
    channel = make_channel(workspace)
    get_connector("twilio").check_connection(channel)
    (request,) = provider.requests_to("GET", ACCOUNT)
    assert request.headers["authorization"] == basic()


def test_check_connection_says_when_the_credentials_are_wrong(workspace, provider):
    channel = make_channel(workspace)
    provider.then(
        "GET",
        ACCOUNT,
        Answer(401, {"code": 20003, "message": "Authenticate", "more_info": "", "status": 401}),
    )
    with pytest.raises(InvalidConfig, match="the account SID or auth token is wrong"):
        get_connector("twilio").check_connection(channel)


def test_check_connection_says_when_the_account_is_suspended(workspace, provider):
    channel = make_channel(workspace)
    provider.then("GET", ACCOUNT, Answer(200, {"sid": SID, "status": "suspended"}))
    with pytest.raises(InvalidConfig, match="account is suspended"):
        get_connector("twilio").check_connection(channel)


def test_check_connection_says_when_twilio_cannot_be_reached(workspace, provider, settings):
    channel = make_channel(workspace)
    settings.LOKET_TWILIO_API_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    with pytest.raises(InvalidConfig, match="Could not reach Twilio"):
        get_connector("twilio").check_connection(channel)
