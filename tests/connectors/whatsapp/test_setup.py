"""Connecting a WhatsApp number: what the admin enters, the verify token, the connection check,
templates at creation, and contacts that match an SMS contact by phone."""

from __future__ import annotations

import pytest

from loket.connectors.base import InvalidConfig
from loket.connectors.registry import get_connector
from loket.inbox.items import InboundContact, InboundMessage
from loket.inbox.models import MessageTemplate
from loket.inbox.services import contacts
from loket.inbox.services.channels import create_channel, reconfigure_channel
from loket.inbox.services.ingest import receive
from tests import factories
from tests.connectors.providers import Answer
from tests.connectors.whatsapp import support

CONFIG = {
    "phone_number_id": support.NUMBER_ID,
    "business_account_id": support.ACCOUNT_ID,
    "access_token": support.TOKEN,
    "app_secret": support.APP_SECRET,
}
NUMBER = r"/v21\.0/\d+"


def connector():
    return get_connector("whatsapp")


def test_the_connector_declares_its_form_and_capabilities():
    whatsapp = connector()
    fields = {field.name: field for field in whatsapp.setup_fields}
    assert list(fields) == [
        "phone_number_id",
        "business_account_id",
        "access_token",
        "app_secret",
        "verify_token",
    ]
    assert [name for name, field in fields.items() if field.secret] == [
        "access_token",
        "app_secret",
        "verify_token",
    ]
    assert not fields["verify_token"].required
    assert whatsapp.shows_webhook_url
    capabilities = whatsapp.capabilities
    assert capabilities.templates and capabilities.media and capabilities.delivery_statuses
    assert capabilities.read_receipts
    assert capabilities.reply_window_hours == 24
    assert capabilities.tagged_window_hours is None


def test_a_blank_verify_token_is_made_up_and_shown_once(workspace, graph):
    channel, shown = create_channel(workspace, connector(), name="WhatsApp", config=CONFIG)
    token = channel.secrets["verify_token"]
    assert shown == {"verify_token": token}
    assert len(token) >= 24
    assert "verify_token" not in connector().public_settings(channel)
    assert "access_token" not in str(connector().public_settings(channel))
    # The templates were synced when the channel was saved.
    assert MessageTemplate.objects.filter(channel=channel).count() == 2


def test_an_admins_verify_token_is_kept_and_not_shown(workspace, graph):
    config = {**CONFIG, "verify_token": "our-own-phrase"}
    channel, shown = create_channel(workspace, connector(), name="WhatsApp", config=config)
    assert channel.secrets["verify_token"] == "our-own-phrase"
    assert shown == {}


def test_editing_with_blank_secrets_keeps_the_stored_ones(channel):
    channel.settings = {**channel.settings, "display_phone_number": "+31 20 123 4567"}
    channel.save()
    edited = reconfigure_channel(
        channel,
        connector(),
        {**CONFIG, "access_token": "", "app_secret": "", "verify_token": ""},
    )
    assert edited.secrets == {
        "access_token": support.TOKEN,
        "app_secret": support.APP_SECRET,
        "verify_token": support.VERIFY_TOKEN,
    }
    assert edited.settings["display_phone_number"] == "+31 20 123 4567"
    renewed = reconfigure_channel(channel, connector(), {**CONFIG, "access_token": "EAAnew0token0"})
    assert renewed.secrets["access_token"] == "EAAnew0token0"


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"phone_number_id": "+31 20 123 4567"}, "phone number ID is a number of digits"),
        ({"business_account_id": ""}, "Business Account ID is a number of digits"),
        ({"access_token": ""}, "Enter the access token"),
        ({"app_secret": ""}, "Enter the app secret"),
        ({"app_secret": "has spaces in it"}, "no spaces"),
        ({"page_id": "1"}, "unknown setting"),
    ],
)
def test_setup_says_what_is_wrong(workspace, graph, change, complaint):
    with pytest.raises(InvalidConfig, match=complaint):
        create_channel(workspace, connector(), name="WhatsApp", config={**CONFIG, **change})


def test_a_failing_template_sync_does_not_stop_the_channel(workspace, graph):
    graph.then(
        "GET",
        r"/v21\.0/\d+/message_templates",
        Answer(500, {"error": {"message": "Please reduce the amount of data", "code": 1}}),
    )
    channel, _shown = create_channel(workspace, connector(), name="WhatsApp", config=CONFIG)
    assert channel.pk
    assert not MessageTemplate.objects.filter(channel=channel).exists()


def test_the_connection_check_reads_the_number(channel, graph):
    graph.then(
        "GET",
        NUMBER,
        Answer(
            200,
            {
                "display_phone_number": "+31 20 123 4567",
                "verified_name": "Acme Webshop",
                "quality_rating": "GREEN",
                "id": support.NUMBER_ID,
            },
        ),
    )
    connector().check_connection(channel)
    (request,) = graph.requests
    assert request.path == f"/v21.0/{support.NUMBER_ID}"
    assert request.query["fields"] == ["display_phone_number,verified_name,quality_rating"]
    assert request.headers["authorization"] == f"Bearer {support.TOKEN}"
    channel.refresh_from_db()
    assert channel.settings["verified_name"] == "Acme Webshop"
    assert channel.settings["display_phone_number"] == "+31 20 123 4567"
    assert channel.settings["quality_rating"] == "GREEN"


def test_an_expired_token_is_explained_in_plain_words(channel, graph):
    graph.then(
        "GET",
        NUMBER,
        Answer(
            401,
            {
                "error": {
                    "message": "Error validating access token: Session has expired on Tuesday.",
                    "type": "OAuthException",
                    "code": 190,
                    "error_subcode": 463,
                    "fbtrace_id": "AbC",
                }
            },
        ),
    )
    with pytest.raises(InvalidConfig) as raised:
        connector().check_connection(channel)
    assert "The access token is invalid or has expired" in str(raised.value)
    assert "190" in str(raised.value)


def test_a_whatsapp_contact_and_an_sms_contact_with_the_same_phone_are_suggested(
    workspace, channel
):
    assert support.post(channel, support.sample("text_message")).status_code == 200
    sms = factories.api_channel(workspace, name="SMS gateway")
    receive(
        sms,
        InboundMessage(
            external_id="SM1",
            contact=InboundContact("+31612345678", phone="+31 6 1234 5678"),
            text="Ik sms'te al eerder",
        ),
    )
    (pair,) = contacts.suggested_duplicates(workspace.pk)
    assert {pair.first.phone, pair.second.phone} == {"+31612345678", "+31 6 1234 5678"}
    assert [evidence.field for evidence in pair.evidence] == ["phone"]
