"""Instagram direct messages: what differs from Messenger (same connector underneath), and the
essentials through the real webhook endpoint and outbound path against a fake Graph API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from loket.connectors.base import InvalidConfig
from loket.connectors.registry import get_connector
from loket.inbox.models import (
    Attachment,
    AttachmentStatus,
    Channel,
    Conversation,
    DeliveryStatus,
    Direction,
    InboundEvent,
    InboundStatus,
    Message,
)
from loket.inbox.services import outbound
from tests.connectors.instagram.conftest import LINKED_PAGE
from tests.connectors.messenger import support
from tests.connectors.messenger.support import (
    IG_ACCOUNT_ID,
    MESSAGES,
    PAGE_ID,
    PAGE_TOKEN,
    post,
)
from tests.connectors.providers import Answer, run_tasks

IGSID = "6543210987654321"
FIRST_TEXT = "Hebben jullie deze jas ook in maat M?"


def text_message() -> dict:
    return support.sample("instagram", "text_message.json")


def first_mid() -> str:
    return text_message()["entry"][0]["messaging"][0]["message"]["mid"]


def ig_event(**body) -> dict:
    return support.event(IGSID, IG_ACCOUNT_ID, **body)


def deliver(channel, *events):
    return post(channel, support.envelope("instagram", IG_ACCOUNT_ID, *events))


def conversation_with_customer(channel) -> Conversation:
    assert post(channel, text_message()).status_code == 200
    conversation = Conversation.objects.get()
    return conversation


def reply(conversation, owner, text="Ja, maat M is er nog.", **kw):
    conversation.refresh_from_db()
    return outbound.reply(conversation, author=owner, text=text, **kw)


# -- setup --------------------------------------------------------------------------------------


def test_setup_checks_the_linked_account_and_keeps_its_username(instagram, graph):
    assert instagram.settings == {
        "instagram_account_id": IG_ACCOUNT_ID,
        "page_id": PAGE_ID,
        "page_name": "Jassen & Co",
        "instagram_username": "jassenenco",
    }
    (me,) = graph.requests_to("GET", support.ME)
    assert me.query["fields"] == ["id,name,instagram_business_account{id,username}"]
    assert not graph.requests_to("POST", r".*/subscribed_apps")  # set in the app dashboard
    connector = get_connector("instagram")
    assert connector.label == "Instagram"
    assert [f.name for f in connector.setup_fields] == [
        "instagram_account_id",
        "page_id",
        "page_access_token",
        "app_secret",
        "verify_token",
    ]
    assert connector.capabilities.tagged_window_hours == 168


def test_a_token_of_a_page_linked_to_another_account_is_refused(workspace, graph):
    other = {**LINKED_PAGE, "instagram_business_account": {"id": "17841499999999999"}}
    graph.then("GET", support.ME, Answer(200, other))
    with pytest.raises(InvalidConfig, match="linked to Instagram account 17841499999999999"):
        support.make_channel(workspace, "instagram")
    assert not Channel.objects.filter(kind="instagram").exists()


def test_the_account_id_must_be_a_number(workspace, graph):
    with pytest.raises(InvalidConfig, match="digits only"):
        support.make_channel(workspace, "instagram", instagram_account_id="@jassenenco")


def test_the_profile_lookup_asks_for_instagram_fields(instagram, graph):
    graph.route("GET", rf"/v21\.0/{IGSID}", Answer(200, {"name": "Sanne", "username": "sanne"}))
    profile = get_connector("instagram").fetch_profile(instagram, IGSID)
    assert profile["username"] == "sanne"
    (request,) = graph.requests_to("GET", rf"/v21\.0/{IGSID}")
    assert request.query["fields"] == ["name,username,profile_pic"]


# -- inbound ------------------------------------------------------------------------------------


def test_the_subscription_handshake(instagram, client):
    check = {"hub.mode": "subscribe", "hub.verify_token": support.VERIFY_TOKEN}
    ok = client.get(f"/hooks/instagram/{instagram.uuid}/", {**check, "hub.challenge": "42"})
    assert ok.status_code == 200 and ok.content == b"42"


def test_a_text_message_is_stored_once(instagram):
    assert post(instagram, text_message()).status_code == 200
    assert post(instagram, text_message()).status_code == 200
    message = support.inbound()
    assert message.text == FIRST_TEXT
    assert message.external_id == first_mid()
    assert message.conversation.contact.identities.get().external_id == IGSID


@pytest.mark.parametrize("signature", ["", "sha256=" + "ab" * 32])
def test_a_bad_or_missing_signature_is_401(instagram, signature):
    assert post(instagram, text_message(), signature=signature).status_code == 401
    assert not InboundEvent.objects.exists()


def test_a_page_notification_is_not_instagrams(instagram):
    page = support.envelope("messenger", IG_ACCOUNT_ID, ig_event(message={"mid": "x", "text": "y"}))
    assert post(instagram, page).status_code == 200
    assert not Message.objects.exists()
    assert InboundEvent.objects.get().status == InboundStatus.IGNORED


def test_batched_entries_for_this_account_only(instagram):
    payload = {
        "object": "instagram",
        "entry": [
            {"id": IG_ACCOUNT_ID, "time": 1, "messaging": [
                ig_event(message={"mid": "ig_1", "text": "een"}),
                ig_event(timestamp=1732521600999, message={"mid": "ig_2", "text": "twee"}),
            ]},
            {"id": IG_ACCOUNT_ID, "time": 2, "messaging": [
                support.event("6500000000000002", IG_ACCOUNT_ID,
                              message={"mid": "ig_3", "text": "drie"}),
            ]},
            {"id": "17841400000000999", "time": 3, "messaging": [
                ig_event(message={"mid": "ig_4", "text": "other account"}),
            ]},
        ],
    }  # fmt: skip
    assert post(instagram, payload).status_code == 200
    assert sorted(Message.objects.values_list("text", flat=True)) == ["drie", "een", "twee"]


def test_an_image_is_downloaded(instagram, graph):
    graph.route(
        "GET", r"/ig_messaging_cdn/", Answer(200, b"\xff\xd8 jas", content_type="image/jpeg")
    )
    url = f"{graph.url}/ig_messaging_cdn/?asset_id=17970000000000000&signature=AbC"
    image = {"type": "image", "payload": {"url": url}}
    deliver(instagram, ig_event(message={"mid": "ig_img", "attachments": [image]}))
    run_tasks(retries_due=True)
    attachment = Attachment.objects.get()
    assert attachment.status == AttachmentStatus.STORED
    assert (attachment.filename, attachment.content_type) == ("image.jpg", "image/jpeg")
    with attachment.file.open("rb") as handle:
        assert handle.read() == b"\xff\xd8 jas"
    (download,) = graph.requests_to("GET", r"/ig_messaging_cdn/")
    assert download.query["asset_id"] == ["17970000000000000"]


def test_shared_posts_reels_and_story_mentions(instagram, graph):
    graph.route("GET", r"/ig_cdn/.+", Answer(200, b"\x00\x00 media", content_type="video/mp4"))
    cdn = f"{graph.url}/ig_cdn"
    deliver(
        instagram,
        ig_event(message={"mid": "ig_share", "attachments": [
            {"type": "share", "payload": {"url": f"{cdn}/post_n.jpg"}}]}),
        ig_event(message={"mid": "ig_story", "attachments": [
            {"type": "story_mention", "payload": {"url": f"{cdn}/story.mp4"}}]}),
        ig_event(message={"mid": "ig_reel", "attachments": [
            {"type": "ig_reel", "payload": {"url": f"{cdn}/reel.mp4", "title": "Herfstjassen",
                                            "reel_video_id": "1789"}}]}),
        ig_event(message={"mid": "ig_post", "attachments": [
            {"type": "ig_post", "payload": {"ig_post_media_id": "1"}}]}),
    )  # fmt: skip
    run_tasks(retries_due=True)
    share = Message.objects.get(external_id="ig_share")
    assert share.text == "[Shared a post]"
    assert share.attachments.get().status == AttachmentStatus.STORED
    story = Message.objects.get(external_id="ig_story")
    assert story.text == "[Mentioned you in their story]"
    assert story.attachments.get().filename == "story.mp4"
    reel = Message.objects.get(external_id="ig_reel")
    assert reel.text == "[Shared a reel] Herfstjassen"
    assert reel.data["provider"]["shared"][0]["reel_video_id"] == "1789"
    unknown = Message.objects.get(external_id="ig_post")
    assert unknown.data["unsupported"] == "ig_post"
    assert not unknown.attachments.exists()


def test_reaction_edit_reply_and_deletion(instagram):
    post(instagram, text_message())
    mid = first_mid()
    deliver(
        instagram,
        ig_event(reaction={"mid": mid, "action": "react", "reaction": "love", "emoji": "\u2764"}),
        ig_event(message_edit={"mid": mid, "text": "En in maat L?", "num_edit": 1}),
        ig_event(timestamp=1732521609000,
                 message={"mid": "ig_reply", "text": "Of XL", "reply_to": {"mid": mid}}),
    )  # fmt: skip
    first = Message.objects.get(external_id=mid)
    assert first.data["reactions"] == {IGSID: "\u2764"}
    assert first.text == "En in maat L?"
    assert first.data["edited"]["previous"] == [FIRST_TEXT]
    answer = Message.objects.get(external_id="ig_reply")
    assert answer.data["reply_to"]["id"] == first.pk
    deliver(instagram, ig_event(message={"mid": mid, "is_deleted": True}))
    first.refresh_from_db()
    assert first.data["deleted_at"]


def test_a_story_reply_keeps_the_story(instagram):
    story = {"story": {"url": "https://lookaside.example/story", "id": "18000"}}
    deliver(instagram, ig_event(message={"mid": "ig_sr", "text": "Mooi!", "reply_to": story}))
    message = support.inbound()
    assert message.text == "Mooi!"
    assert message.data["provider"]["story_reply"]["id"] == "18000"


def test_a_postback_from_an_icebreaker_or_button(instagram):
    tap = {"mid": "ig_pb", "title": "Levertijd", "payload": "DELIVERY_TIME"}
    deliver(instagram, ig_event(postback=tap))
    message = support.inbound()
    assert message.text == "Levertijd"
    assert message.data["choice"] == {"id": "DELIVERY_TIME", "title": "Levertijd"}


def test_echoes_are_ignored(instagram):
    echo = {"mid": "ig_echo", "text": "from the Instagram app", "is_echo": True}
    from_us = support.event(IG_ACCOUNT_ID, IGSID, message=echo)
    post(instagram, support.envelope("instagram", IG_ACCOUNT_ID, from_us))
    assert not Message.objects.exists()
    assert InboundEvent.objects.get().status == InboundStatus.IGNORED


# -- statuses and sending -----------------------------------------------------------------------


def test_a_reply_is_sent_and_its_delivery_and_reading_recorded(instagram, owner, graph):
    conversation = conversation_with_customer(instagram)
    message = reply(conversation, owner)
    run_tasks(retries_due=True)
    (request,) = graph.requests_to("POST", MESSAGES)
    assert request.headers["authorization"] == f"Bearer {PAGE_TOKEN}"
    assert request.json() == {
        "recipient": {"id": IGSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Ja, maat M is er nog."},
    }
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT
    assert message.external_id == "m_sent_1"
    deliver(instagram, ig_event(delivery={"mids": ["m_sent_1"], "watermark": support.now_ms()}))
    message.refresh_from_db()
    assert message.status == DeliveryStatus.DELIVERED
    # Instagram's read report names the message seen.
    deliver(instagram, ig_event(read={"mid": "m_sent_1"}))
    message.refresh_from_db()
    assert message.status == DeliveryStatus.READ


@pytest.mark.parametrize(
    "first",
    [
        Answer(429, {"error": {"message": "rate", "code": 4}}, headers={"Retry-After": "3"}),
        Answer(500, {"error": {"message": "An unexpected error has occurred.", "code": 2}}),
    ],
)
def test_transient_errors_are_retried_until_sent(instagram, owner, graph, first):
    conversation = conversation_with_customer(instagram)
    graph.then("POST", MESSAGES, first)
    message = reply(conversation, owner)
    run_tasks(retries_due=True)
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT
    assert len(graph.requests_to("POST", MESSAGES)) == 2


def test_a_refusal_fails_in_plain_words(instagram, owner, graph):
    conversation = conversation_with_customer(instagram)
    refusal = {"message": "(#551) This person isn't available right now.", "code": 551,
               "error_subcode": 1545041, "type": "OAuthException"}  # fmt: skip
    graph.then("POST", MESSAGES, Answer(400, {"error": refusal}))
    message = reply(conversation, owner)
    run_tasks(retries_due=True)
    message.refresh_from_db()
    assert message.status == DeliveryStatus.FAILED
    assert message.error.startswith("This person isn't available right now.")


def test_reply_windows_human_agent_tag_then_closed(instagram, owner, graph):
    conversation = conversation_with_customer(instagram)
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=timezone.now() - dt.timedelta(hours=30)
    )
    reply(conversation, owner, text="Excuses voor het wachten")
    run_tasks(retries_due=True)
    (request,) = graph.requests_to("POST", MESSAGES)
    assert request.json()["messaging_type"] == "MESSAGE_TAG"
    assert request.json()["tag"] == "HUMAN_AGENT"
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=timezone.now() - dt.timedelta(days=8)
    )
    with pytest.raises(ValueError, match="more than 7 days ago"):
        reply(conversation, owner, text="Nog een vraag?")
    run_tasks(retries_due=True)
    assert len(graph.requests_to("POST", MESSAGES)) == 1
    assert Message.objects.filter(direction=Direction.OUTBOUND).count() == 1


def test_a_reply_longer_than_1000_bytes_is_split(instagram, owner, graph):
    conversation = conversation_with_customer(instagram)
    text = "Onze jassen zijn waterdicht \u2614 en winddicht. " * 30  # > 1000 bytes, < 2000 chars
    assert len(text) < 2000 < len(text.encode()) * 1.5
    reply(conversation, owner, text=text)
    run_tasks(retries_due=True)
    sent = [r.json()["message"]["text"] for r in graph.requests_to("POST", MESSAGES)]
    assert len(sent) >= 2
    assert all(len(part.encode()) <= 1000 for part in sent)
    assert " ".join(sent).split() == text.split()
