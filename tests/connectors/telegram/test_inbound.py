"""Telegram Updates through Loket's webhook endpoint: verified by the secret header, stored."""

from __future__ import annotations

import json

import pytest

from loket.inbox.models import (
    Attachment,
    AttachmentStatus,
    Contact,
    ContactIdentity,
    Conversation,
    InboundEvent,
    InboundStatus,
    Message,
)
from tests.connectors.telegram.conftest import payload


def test_a_text_message_is_stored_with_its_contact_and_conversation(channel, post_update):
    response = post_update(channel, payload("text_message"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    message = Message.objects.get()
    assert message.text == "Kan ik mijn overtocht naar Paros omboeken?"
    assert message.external_id == "480112233:1365"
    assert message.sent_at.isoformat() == "2024-11-25T08:00:00+00:00"
    assert message.direction == "in"
    assert message.data == {"provider": {"username": "pjansen"}}
    contact = message.conversation.contact
    assert (contact.name, contact.locale) == ("Pieter Jansen", "nl")
    identity = ContactIdentity.objects.get()
    assert (identity.contact_id, identity.channel_id) == (contact.pk, channel.pk)
    assert identity.external_id == "480112233"  # the chat a reply goes to
    assert Conversation.objects.get().channel_id == channel.pk
    assert InboundEvent.objects.get().status == InboundStatus.PROCESSED


@pytest.mark.parametrize(
    ("secret", "status"),
    [("", 401), ("not-the-secret", 403), ("x" * 300, 403)],
)
def test_a_missing_or_wrong_secret_is_rejected_and_stores_nothing(
    channel, post_update, secret, status
):
    response = post_update(channel, payload("text_message"), secret=secret)
    assert response.status_code == status
    assert response.json()["error"]["code"] == "unauthorized"
    assert not Message.objects.exists()
    assert not Contact.objects.exists()
    assert not InboundEvent.objects.exists()


def test_another_channels_secret_is_rejected(channel, post_update, workspace, connector):
    from loket.inbox.services.channels import create_channel
    from tests.connectors.telegram.conftest import TOKEN

    other, _ = create_channel(workspace, connector, name="Other", config={"bot_token": TOKEN})
    response = post_update(channel, payload("text_message"), secret=other.secrets["webhook_secret"])
    assert response.status_code == 403
    assert not InboundEvent.objects.exists()


def test_a_repeated_update_is_one_message(channel, post_update):
    assert post_update(channel, payload("text_message")).status_code == 200
    assert post_update(channel, payload("text_message")).status_code == 200
    assert Message.objects.count() == 1
    assert Conversation.objects.count() == 1
    statuses = sorted(InboundEvent.objects.values_list("status", flat=True))
    assert statuses == [InboundStatus.DUPLICATE, InboundStatus.PROCESSED]


def test_the_same_message_id_in_another_chat_is_another_message(channel, post_update):
    first = payload("text_message")
    second = payload("text_message")
    second["update_id"] += 100
    second["message"]["chat"]["id"] = second["message"]["from"]["id"] = 480119999
    post_update(channel, first)
    post_update(channel, second)
    assert sorted(Message.objects.values_list("external_id", flat=True)) == [
        "480112233:1365",
        "480119999:1365",
    ]
    assert Conversation.objects.count() == 2


def test_a_photo_is_stored_at_once_and_its_largest_size_downloaded_later(
    channel, post_update, telegram
):
    response = post_update(channel, payload("photo_message"))
    assert response.status_code == 200
    message = Message.objects.get()
    assert message.text == "Mijn boekingsbevestiging"
    attachment = Attachment.objects.get(message=message)
    assert attachment.status == AttachmentStatus.PENDING
    assert attachment.source_ref == "AgACAgQAAxkBAAIBXmZ1large"
    assert (attachment.filename, attachment.content_type) == ("photo_1366.jpg", "image/jpeg")
    assert not telegram.requests_to("POST", r"/bot[^/]+/getFile")  # nothing fetched yet


def test_an_edit_replaces_the_text_and_keeps_the_earlier_one(channel, post_update):
    post_update(channel, payload("text_message"))
    assert post_update(channel, payload("edited_message")).status_code == 200
    message = Message.objects.get()
    assert message.text == "Kan ik mijn overtocht naar Naxos omboeken?"
    assert message.data["edited"]["previous"] == ["Kan ik mijn overtocht naar Paros omboeken?"]
    assert message.data["edited"]["at"] == "2024-11-25T08:00:30+00:00"


@pytest.mark.usefixtures("transactional_db")  # the worker sends our message as in production
def test_a_reply_to_one_of_our_messages_links_it(channel, post_update, owner, telegram):
    from loket.inbox.services import outbound
    from tests.connectors.providers import run_tasks

    post_update(channel, payload("text_message"))
    conversation = Conversation.objects.get()
    telegram.next_id = iter([1367])  # the id Telegram gives our answer
    ours = outbound.reply(conversation, author=owner, text="Dat kan, stuur me je boekingscode.")
    run_tasks()
    ours.refresh_from_db()
    assert ours.external_id == "480112233:1367"

    assert post_update(channel, payload("reply_message")).status_code == 200
    answer = Message.objects.get(external_id="480112233:1368")
    assert answer.text == "PAR-88412"
    assert answer.data["reply_to"] == {
        "id": ours.pk,
        "excerpt": "Dat kan, stuur me je boekingscode.",
        "direction": "out",
    }


@pytest.mark.usefixtures("transactional_db")
def test_a_reaction_to_our_message_is_recorded_and_can_be_taken_back(
    channel, post_update, owner, telegram
):
    from loket.inbox.services import outbound
    from tests.connectors.providers import run_tasks

    post_update(channel, payload("text_message"))
    telegram.next_id = iter([1367])
    ours = outbound.reply(Conversation.objects.get(), author=owner, text="Dat kan.")
    run_tasks()

    assert post_update(channel, payload("message_reaction")).status_code == 200
    ours.refresh_from_db()
    assert ours.data["reactions"] == {"480112233": "\U0001f44d"}

    removed = payload("message_reaction")
    removed["update_id"] += 1
    removed["message_reaction"]["old_reaction"] = removed["message_reaction"]["new_reaction"]
    removed["message_reaction"]["new_reaction"] = []
    assert post_update(channel, removed).status_code == 200
    ours.refresh_from_db()
    assert ours.data["reactions"] == {}


def test_a_location_is_kept_as_data_with_readable_text(channel, post_update):
    post_update(channel, payload("location_message"))
    message = Message.objects.get()
    assert message.text == "Location: 37.085644, 25.148832"
    assert message.data["location"] == {
        "latitude": 37.085644,
        "longitude": 25.148832,
        "name": "",
        "address": "",
        "url": "https://www.openstreetmap.org/?mlat=37.085644&mlon=25.148832#map=17/37.085644/25.148832",
    }


def test_a_venue_has_its_name_and_address(channel, post_update):
    post_update(channel, payload("venue_message"))
    message = Message.objects.get()
    assert message.text == "Location: Port of Paros, Parikia 844 00, Greece (37.0853, 25.1479)"
    assert message.data["location"]["name"] == "Port of Paros"
    assert message.data["location"]["address"] == "Parikia 844 00, Greece"


def test_a_shared_contact_card_is_kept_as_data(channel, post_update):
    post_update(channel, payload("text_message"))
    post_update(channel, payload("shared_contact_message"))
    message = Message.objects.get(external_id="480112233:1372")
    assert message.text == "Contact: Eleni Papadopoulou, +306941234567"
    assert message.data["contacts"] == [
        {"name": "Eleni Papadopoulou", "phones": ["+306941234567"], "emails": []}
    ]
    assert Contact.objects.get().phone == ""  # someone else's number is not the customer's


def test_sharing_their_own_number_gives_the_contact_a_phone(channel, post_update):
    post_update(channel, payload("contact_message"))
    message = Message.objects.get()
    assert message.data["contacts"][0]["phones"] == ["+31612345678"]
    assert Contact.objects.get().phone == "+31612345678"


def test_a_sticker_is_an_attachment_shown_as_its_emoji(channel, post_update):
    post_update(channel, payload("sticker_message"))
    message = Message.objects.get()
    assert message.text == "\U0001f64f"
    assert message.data["sticker"] is True
    attachment = message.attachments.get()
    assert attachment.source_ref == "CAACAgIAAxkBAAIBY2Z1sticker"
    assert (attachment.filename, attachment.content_type) == ("sticker_1373.webp", "image/webp")


@pytest.mark.parametrize(
    ("name", "filename", "content_type", "text"),
    [
        ("document_message", "Boarding pass PAR-88412.pdf", "application/pdf", "Boarding pass"),
        ("voice_message", "voice_1376.ogg", "audio/ogg", ""),
        ("video_message", "haven.mp4", "video/mp4", "De boot is er niet"),
        ("animation_message", "thanks.mp4", "video/mp4", ""),
    ],
)
def test_files_keep_their_names_and_types(channel, post_update, name, filename, content_type, text):
    post_update(channel, payload(name))
    message = Message.objects.get()
    assert message.text == text
    attachment = message.attachments.get()  # an animation is also a "document": stored once
    assert (attachment.filename, attachment.content_type) == (filename, content_type)
    assert attachment.status == AttachmentStatus.PENDING


def test_a_kind_loket_cannot_show_becomes_a_placeholder(channel, post_update):
    assert post_update(channel, payload("poll_message")).status_code == 200
    message = Message.objects.get()
    assert message.data["unsupported"] == "poll"
    assert message.text == "[A Telegram message Loket cannot show: poll]"


def test_a_button_press_is_a_choice_and_the_spinner_is_answered(channel, post_update):
    response = post_update(channel, payload("callback_query"))
    assert response.status_code == 200
    # Telegram runs a method given as the webhook's answer: the button stops spinning.
    assert response.json() == {
        "method": "answerCallbackQuery",
        "callback_query_id": "2063398117839427641",
    }
    message = Message.objects.get()
    assert message.text == "Paros \u2192 Naxos, 14 dec"
    assert message.data["choice"] == {"id": "trip:NAX-11873", "title": "Paros \u2192 Naxos, 14 dec"}
    assert message.external_id == "480112233:callback:2063398117839427641"
    assert message.data["reply_to"] == {"external_id": "480112233:1380"}
    assert ContactIdentity.objects.get().external_id == "480112233"


def test_a_group_message_comes_from_the_person_within_that_group(channel, post_update):
    post_update(channel, payload("text_message"))
    assert post_update(channel, payload("group_message")).status_code == 200
    message = Message.objects.get(external_id="-1001876543210:52")
    assert message.data["provider"] == {
        "username": "pjansen",
        "chat": {"id": -1001876543210, "type": "supergroup", "title": "Paros trip 2024"},
        "user_id": 480112233,
    }
    assert message.conversation.contact.name == "Pieter Jansen"
    identities = sorted(ContactIdentity.objects.values_list("external_id", flat=True))
    assert identities == ["-1001876543210:480112233", "480112233"]
    # The group is its own conversation: nothing said privately is answered in the group.
    assert Conversation.objects.count() == 2


@pytest.mark.parametrize("name", ["my_chat_member", "group_member_joined"])
def test_updates_that_are_not_messages_are_acknowledged_and_ignored(channel, post_update, name):
    assert post_update(channel, payload(name)).status_code == 200
    assert not Message.objects.exists()
    assert InboundEvent.objects.get().status == InboundStatus.IGNORED


def test_a_body_that_is_not_an_update_is_a_400(channel, post_update):
    response = post_update(channel, None, raw=b'{"message": {}}')
    assert response.status_code == 400
    assert "update_id" in response.json()["error"]["message"]
    response = post_update(channel, None, raw=b"not json")
    assert response.status_code == 400
    assert not Message.objects.exists()


def test_the_journal_keeps_the_update_to_replay(channel, post_update):
    post_update(channel, payload("text_message"))
    event = InboundEvent.objects.get()
    assert json.loads(bytes(event.payload))["update_id"] == 725140187
    assert "webhook_secret" not in json.dumps(event.meta or {})


@pytest.mark.usefixtures("transactional_db")
def test_the_lean_asgi_route_verifies_stores_and_answers_the_button(channel):
    import httpx
    from asgiref.sync import async_to_sync

    from loket.asgi import application

    secret = channel.secrets["webhook_secret"]

    async def post(update: dict, token: str):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.post(
                f"/hooks/telegram/{channel.uuid}/",
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": token},
            )

    wrong = async_to_sync(post)(payload("text_message"), "nope")
    assert wrong.status_code == 403
    ok = async_to_sync(post)(payload("text_message"), secret)
    assert ok.status_code == 200
    button = async_to_sync(post)(payload("callback_query"), secret)
    assert button.json() == {
        "method": "answerCallbackQuery",
        "callback_query_id": "2063398117839427641",
    }
    assert sorted(Message.objects.values_list("external_id", flat=True)) == [
        "480112233:1365",
        "480112233:callback:2063398117839427641",
    ]
