"""Reading Updates that need no round trip through the endpoint: odd shapes and edge cases."""

from __future__ import annotations

import json

import pytest

from loket.connectors.base import BadPayload
from loket.inbox.items import Ignored, InboundMessage, MessageEdit, Reaction
from tests.connectors.telegram.conftest import payload


def parse(connector, update: dict):
    return connector.parse(None, json.dumps(update).encode(), {})


def test_a_reaction_with_several_and_custom_emoji(connector):
    update = payload("message_reaction")
    update["message_reaction"]["new_reaction"] = [
        {"type": "emoji", "emoji": "\u2764"},
        {"type": "custom_emoji", "custom_emoji_id": "5368324170671202286"},
    ]
    (reaction,) = parse(connector, update)
    assert isinstance(reaction, Reaction)
    assert reaction.target_external_id == "480112233:1367"
    assert reaction.emoji == "\u2764\u2b50"
    assert reaction.contact.external_id == "480112233"


def test_an_anonymous_reaction_count_is_ignored(connector):
    update = {"update_id": 9, "message_reaction_count": {"chat": {"id": -100}, "message_id": 5}}
    (item,) = parse(connector, update)
    assert isinstance(item, Ignored)


def test_a_live_location_moving_is_not_an_edit(connector):
    update = payload("location_message")
    update["edited_message"] = update.pop("message")
    update["edited_message"]["edit_date"] = 1732521999
    (item,) = parse(connector, update)
    assert isinstance(item, Ignored)


def test_an_edited_caption_is_an_edit(connector):
    update = payload("photo_message")
    update["edited_message"] = update.pop("message")
    update["edited_message"]["caption"] = "Mijn nieuwe boekingsbevestiging"
    (item,) = parse(connector, update)
    assert item == MessageEdit("480112233:1366", "Mijn nieuwe boekingsbevestiging", item.at)


def test_an_anonymous_group_admin_speaks_as_the_group(connector):
    update = payload("group_message")
    message = update["message"]
    message["from"] = {
        "id": 1087968824,
        "is_bot": True,
        "first_name": "Group",
        "username": "GroupAnonymousBot",
    }
    message["sender_chat"] = {
        "id": -1001876543210,
        "title": "Paros trip 2024",
        "type": "supergroup",
    }
    # "from" is Telegram's placeholder bot for anonymous admins: the chat is the sender.
    (item,) = parse(connector, update)
    assert isinstance(item, InboundMessage)
    assert item.contact.external_id == "-1001876543210:-1001876543210"
    assert item.contact.name == "Paros trip 2024"


def test_channel_posts_and_other_bots_are_ignored(connector):
    post = {
        "update_id": 1,
        "channel_post": {"message_id": 1, "chat": {"id": -1002, "type": "channel"}},
    }
    assert isinstance(parse(connector, post)[0], Ignored)
    bot = payload("text_message")
    bot["message"]["from"]["is_bot"] = True
    assert isinstance(parse(connector, bot)[0], Ignored)


def test_a_button_on_an_inline_message_has_no_chat_to_answer(connector):
    update = payload("callback_query")
    del update["callback_query"]["message"]
    update["callback_query"]["inline_message_id"] = "AAAAAGxNAQBvhA"
    assert isinstance(parse(connector, update)[0], Ignored)


def test_an_unknown_content_kind_is_named_in_the_placeholder(connector):
    update = payload("text_message")
    del update["message"]["text"]
    update["message"]["dice"] = {"emoji": "\U0001f3b2", "value": 4}
    (item,) = parse(connector, update)
    assert item.data["unsupported"] == "dice"
    assert "dice" in item.text


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'{"message": {"message_id": 1}}',
        json.dumps({"update_id": 1, "message": {"message_id": "1", "chat": {"id": 5}}}).encode(),
        json.dumps({"update_id": 1, "message": {"message_id": 1, "chat": {}}}).encode(),
        json.dumps(
            {"update_id": 1, "message": {"message_id": 1, "chat": {"id": 5}, "photo": [{}]}}
        ).encode(),
    ],
)
def test_malformed_updates_are_bad_payloads(connector, body):
    with pytest.raises(BadPayload):
        connector.parse(None, body, {})
