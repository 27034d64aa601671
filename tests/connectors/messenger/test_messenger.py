"""Facebook Messenger through the real webhook endpoint and the real outbound path, against a
fake graph.facebook.com."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from loket.connectors.base import InvalidConfig
from loket.connectors.registry import get_connector
from loket.inbox.models import (
    Attachment,
    AttachmentStatus,
    Channel,
    Contact,
    Conversation,
    DeliveryStatus,
    Direction,
    InboundEvent,
    InboundStatus,
    Message,
)
from loket.inbox.services import outbound
from loket.inbox.services.channels import reconfigure_channel
from tests.connectors.messenger import support
from tests.connectors.messenger.support import APP_SECRET, MESSAGES, PAGE_ID, PAGE_TOKEN, post
from tests.connectors.providers import Answer, run_tasks

PSID = "7012345678901234"
FIRST_MID = "m_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghijklmnopq"


def text_message() -> dict:
    return support.sample("messenger", "text_message.json")


def page_event(**body) -> dict:
    return support.event(PSID, PAGE_ID, **body)


def deliver(channel, *events):
    return post(channel, support.envelope("messenger", PAGE_ID, *events))


def conversation_with_customer(channel) -> Conversation:
    assert post(channel, text_message()).status_code == 200
    return Conversation.objects.get()


def reply(conversation, owner, text="Ja, zondag zijn we open van 12:00 tot 17:00.", **kw):
    conversation.refresh_from_db()
    return outbound.reply(conversation, author=owner, text=text, **kw)


# -- setup --------------------------------------------------------------------------------------


def test_setup_generates_a_verify_token_shown_once_and_subscribes_the_page(workspace, graph):
    channel, shown = support.make_channel(workspace, "messenger", verify_token="")
    assert shown["verify_token"] == channel.secrets["verify_token"]
    assert len(shown["verify_token"]) >= 24
    assert channel.settings == {"page_id": PAGE_ID, "page_name": "Fietsenwinkel De Ketting"}
    assert channel.secrets["page_access_token"] == PAGE_TOKEN
    (me,) = graph.requests_to("GET", support.ME)
    assert me.query["fields"] == ["id,name"]
    assert me.headers["authorization"] == f"Bearer {PAGE_TOKEN}"
    (subscribe,) = graph.requests_to("POST", rf"/v21\.0/{PAGE_ID}/subscribed_apps")
    assert subscribe.query["subscribed_fields"] == [
        "messages,messaging_postbacks,message_reactions,message_edits,"
        "message_deliveries,message_reads"
    ]
    connector = get_connector("messenger")
    assert connector.shows_webhook_url
    assert [f.name for f in connector.setup_fields] == [
        "page_id",
        "page_access_token",
        "app_secret",
        "verify_token",
    ]
    assert [f.name for f in connector.setup_fields if f.secret] == [
        "page_access_token",
        "app_secret",
        "verify_token",
    ]


def test_an_admins_verify_token_is_kept_and_not_shown_again(messenger):
    assert messenger.secrets["verify_token"] == support.VERIFY_TOKEN
    _, shown = support.make_channel(messenger.workspace, "messenger", page_id=PAGE_ID)
    assert shown == {}


def test_editing_with_blank_secrets_keeps_the_stored_ones(messenger):
    reconfigure_channel(
        messenger,
        get_connector("messenger"),
        {"page_id": PAGE_ID, "page_access_token": "", "app_secret": "", "verify_token": ""},
    )
    messenger.refresh_from_db()
    assert messenger.secrets["page_access_token"] == PAGE_TOKEN
    assert messenger.secrets["app_secret"] == APP_SECRET
    assert messenger.secrets["verify_token"] == support.VERIFY_TOKEN
    assert messenger.settings["page_name"] == "Fietsenwinkel De Ketting"


def test_an_expired_token_is_refused_in_plain_words_and_no_channel_is_left(workspace, graph):
    graph.then(
        "GET",
        support.ME,
        Answer(
            400,
            {"error": {"message": "Error validating access token", "type": "OAuthException",
                       "code": 190, "error_subcode": 463, "fbtrace_id": "A1"}},
        ),
    )  # fmt: skip
    with pytest.raises(InvalidConfig, match="access token is invalid or has expired"):
        support.make_channel(workspace, "messenger")
    assert not Channel.objects.filter(kind="messenger").exists()


def test_a_token_of_another_page_is_refused(workspace, graph):
    graph.then("GET", support.ME, Answer(200, {"id": "555555555555", "name": "Other"}))
    with pytest.raises(InvalidConfig, match="belongs to Page 555555555555"):
        support.make_channel(workspace, "messenger")


@pytest.mark.parametrize(
    ("config", "complaint"),
    [
        ({"page_id": "my page"}, "digits only"),
        ({"page_access_token": ""}, "Page access token is required"),
        ({"app_secret": "has spaces in it"}, "App secret: no spaces"),
        ({"colour": "blue"}, "unknown setting"),
    ],
)
def test_setup_says_what_is_wrong(workspace, graph, config, complaint):
    with pytest.raises(InvalidConfig, match=complaint):
        support.make_channel(workspace, "messenger", **config)


# -- webhook checks -----------------------------------------------------------------------------


def test_the_subscription_handshake_answers_the_challenge(messenger, client):
    url = f"/hooks/messenger/{messenger.uuid}/"
    check = {"hub.mode": "subscribe", "hub.verify_token": support.VERIFY_TOKEN}
    ok = client.get(url, {**check, "hub.challenge": "1158201444"})
    assert ok.status_code == 200
    assert ok.content == b"1158201444"
    wrong = client.get(
        url, {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"}
    )
    assert wrong.status_code == 403
    assert not InboundEvent.objects.exists()


def test_a_text_message_is_stored(messenger):
    response = post(messenger, text_message())
    assert response.status_code == 200
    message = support.inbound()
    assert message.text == "Is de winkel zondag open?"
    assert message.external_id == FIRST_MID
    assert message.sent_at == dt.datetime(2024, 11, 25, 8, 0, 0, 45000, tzinfo=dt.UTC)
    contact = message.conversation.contact
    assert contact.identities.get().external_id == PSID
    assert contact.name == ""  # the webhook has no name: a background job asks for it
    assert InboundEvent.objects.get().status == InboundStatus.PROCESSED


def test_a_new_senders_name_is_fetched_from_their_profile(messenger, graph):
    graph.route(
        "GET",
        rf"/v21\.0/{PSID}",
        Answer(200, {"first_name": "Joost", "last_name": "Bakker", "id": PSID}),
    )
    post(messenger, text_message())
    run_tasks()
    profile = graph.requests_to("GET", rf"/v21\.0/{PSID}")
    assert len(profile) == 1
    assert profile[0].query["fields"] == ["first_name,last_name,profile_pic"]
    assert profile[0].headers["authorization"] == f"Bearer {support.PAGE_TOKEN}"
    assert support.inbound().conversation.contact.name == "Joost Bakker"


def test_a_name_an_agent_typed_meanwhile_is_kept(messenger, graph):
    graph.route("GET", rf"/v21\.0/{PSID}", Answer(200, {"first_name": "Joost", "id": PSID}))
    post(messenger, text_message())
    Contact.objects.update(name="Joost from Utrecht")  # an agent, before the job ran
    run_tasks()
    assert support.inbound().conversation.contact.name == "Joost from Utrecht"


def test_a_throttled_profile_lookup_is_asked_again(messenger, graph):
    graph.route("GET", rf"/v21\.0/{PSID}", Answer(200, {"first_name": "Joost", "id": PSID}))
    graph.then(
        "GET",
        rf"/v21\.0/{PSID}",
        Answer(400, {"error": {"message": "Calls limit reached", "code": 613}}),
    )
    post(messenger, text_message())
    run_tasks(retries_due=True)
    assert len(graph.requests_to("GET", rf"/v21\.0/{PSID}")) == 2
    assert support.inbound().conversation.contact.name == "Joost"


def test_a_profile_meta_will_not_give_leaves_the_contact_as_it_is(messenger, graph):
    graph.route(
        "GET",
        rf"/v21\.0/{PSID}",
        Answer(400, {"error": {"message": "no permission", "code": 10}}),
    )
    post(messenger, text_message())
    run_tasks()
    assert support.inbound().conversation.contact.name == ""


@pytest.mark.parametrize("signature", ["", "sha256=" + "0" * 64, "wrong-secret"])
def test_a_bad_or_missing_signature_is_401_and_nothing_is_stored(messenger, signature):
    if signature == "wrong-secret":
        response = post(messenger, text_message(), secret="not-the-app-secret")
    else:
        response = post(messenger, text_message(), signature=signature)
    assert response.status_code == 401
    assert not Message.objects.exists()
    assert not InboundEvent.objects.exists()


def test_a_repeated_delivery_is_one_message(messenger):
    assert post(messenger, text_message()).status_code == 200
    assert post(messenger, text_message()).status_code == 200
    assert Message.objects.count() == 1
    statuses = sorted(InboundEvent.objects.values_list("status", flat=True))
    assert statuses == [InboundStatus.DUPLICATE, InboundStatus.PROCESSED]


def test_batched_entries_and_events_are_all_processed(messenger):
    payload = {
        "object": "page",
        "entry": [
            {"id": PAGE_ID, "time": 1, "messaging": [
                page_event(message={"mid": "m_1", "text": "eerste"}),
                support.event("7000000000000002", PAGE_ID,
                              message={"mid": "m_2", "text": "tweede"}),
            ]},
            {"id": PAGE_ID, "time": 2, "messaging": [
                page_event(timestamp=1732521609000, message={"mid": "m_3", "text": "derde"}),
            ]},
            {"id": "999999999999", "time": 3, "messaging": [
                page_event(message={"mid": "m_other_page", "text": "not ours"}),
            ]},
        ],
    }  # fmt: skip
    assert post(messenger, payload).status_code == 200
    texts = sorted(Message.objects.values_list("text", flat=True))
    assert texts == ["derde", "eerste", "tweede"]
    assert Conversation.objects.count() == 2
    result = InboundEvent.objects.get().result
    assert result["outcomes"] == ["created", "created", "created", "ignored"]


def test_an_image_is_downloaded_from_metas_cdn(messenger, graph):
    picture = b"\xff\xd8\xff\xe0 a jpeg of a flat tyre"
    graph.route("GET", r"/cdn/v/t1\.15752-9/.+", Answer(200, picture, content_type="image/jpeg"))
    url = f"{graph.url}/cdn/v/t1.15752-9/467_band_n.jpg?_nc_cat=1&oh=abc&oe=675A"
    image = {"type": "image", "payload": {"url": url}}
    assert (
        deliver(messenger, page_event(message={"mid": "m_img", "attachments": [image]})).status_code
        == 200
    )
    run_tasks(retries_due=True)
    attachment = Attachment.objects.get()
    assert attachment.status == AttachmentStatus.STORED
    assert attachment.filename == "467_band_n.jpg"
    assert attachment.content_type == "image/jpeg"
    with attachment.file.open("rb") as handle:
        assert handle.read() == picture
    assert graph.requests_to("GET", r"/cdn/.+")[0].query["oh"] == ["abc"]


def test_stickers_locations_quick_replies_and_unknown_content(messenger):
    sticker = {"type": "image", "payload": {"url": "https://scontent.example/369239263222822.png",
                                            "sticker_id": 369239263222822}}  # fmt: skip
    location = {"type": "location", "title": "Fietsenwinkel", "url": "https://l.facebook.com/x",
                "payload": {"coordinates": {"lat": 52.3676, "long": 4.9041}}}  # fmt: skip
    template = {"type": "template", "payload": {"template_type": "generic"}}
    deliver(
        messenger,
        page_event(message={"mid": "m_sticker", "sticker_id": 369239263222822,
                            "attachments": [sticker]}),
        page_event(message={"mid": "m_loc", "attachments": [location]}),
        page_event(message={"mid": "m_qr", "text": "Zondag",
                            "quick_reply": {"payload": "DAY_SUN"}}),
        page_event(message={"mid": "m_tpl", "attachments": [template]}),
    )  # fmt: skip
    sticker_message = Message.objects.get(external_id="m_sticker")
    assert sticker_message.data["sticker"] is True
    assert sticker_message.text == "[Sticker]"
    assert sticker_message.attachments.count() == 1
    place = Message.objects.get(external_id="m_loc")
    assert place.data["location"]["latitude"] == 52.3676
    assert place.data["location"]["longitude"] == 4.9041
    assert place.text == "Location: Fietsenwinkel"
    choice = Message.objects.get(external_id="m_qr")
    assert choice.data["choice"] == {"id": "DAY_SUN", "title": "Zondag"}
    unknown = Message.objects.get(external_id="m_tpl")
    assert unknown.data["unsupported"] == "template"
    assert "template" in unknown.text


def test_file_names_and_types_of_voice_clips_and_documents(messenger, graph):
    graph.route("GET", r"/v/t59\..+", Answer(200, b"media bytes"))
    cdn = f"{graph.url}/v/t59.3654-21"
    voice = {
        "type": "audio",
        "payload": {"url": f"{cdn}/1_n.mp4/audioclip-1732521600-2105.mp4?x=1"},
    }
    document = {"type": "file", "payload": {"url": f"{cdn}/2_n.pdf/Factuur%202024.pdf?x=2"}}
    deliver(messenger, page_event(message={"mid": "m_files", "attachments": [voice, document]}))
    run_tasks(retries_due=True)
    files = {a.filename: a for a in Attachment.objects.all()}
    assert files["audioclip-1732521600-2105.mp4"].content_type == "audio/mp4"
    assert files["Factuur 2024.pdf"].content_type == "application/pdf"
    assert {a.status for a in files.values()} == {AttachmentStatus.STORED}


def test_a_postback_is_a_message_with_the_choice(messenger):
    tap = {"title": "Openingstijden", "payload": "OPENING_HOURS", "mid": "m_postback_1"}
    assert deliver(messenger, page_event(postback=tap)).status_code == 200
    message = support.inbound()
    assert message.external_id == "m_postback_1"
    assert message.text == "Openingstijden"
    assert message.data["choice"] == {"id": "OPENING_HOURS", "title": "Openingstijden"}


def test_a_postback_without_an_id_gets_a_stable_one(messenger):
    tap = {"title": "Retour", "payload": "RETURNS"}
    deliver(messenger, page_event(postback=tap))
    deliver(messenger, page_event(postback=tap))
    deliver(messenger, page_event(timestamp=1732521700000, postback=tap))
    ids = list(Message.objects.order_by("pk").values_list("external_id", flat=True))
    assert len(ids) == 2 and ids[0].startswith("postback:") and ids[0] != ids[1]


def test_a_reaction_to_our_reply_and_its_removal(messenger, owner, graph):
    conversation = conversation_with_customer(messenger)
    sent = reply(conversation, owner)
    run_tasks(retries_due=True)
    sent.refresh_from_db()
    react = {"mid": sent.external_id, "action": "react", "reaction": "love", "emoji": "\u2764"}
    deliver(messenger, page_event(reaction=react))
    sent.refresh_from_db()
    assert sent.data["reactions"] == {PSID: "\u2764"}
    deliver(messenger, page_event(reaction={"mid": sent.external_id, "action": "unreact"}))
    sent.refresh_from_db()
    assert sent.data["reactions"] == {}


def test_an_edit_keeps_the_earlier_text(messenger):
    post(messenger, text_message())
    edit = {"mid": FIRST_MID, "text": "Is de winkel zaterdag open?", "num_edit": 1}
    assert deliver(messenger, page_event(message_edit=edit)).status_code == 200
    message = support.inbound()
    assert message.text == "Is de winkel zaterdag open?"
    assert message.data["edited"]["previous"] == ["Is de winkel zondag open?"]


def test_a_deleted_message_is_marked(messenger):
    post(messenger, text_message())
    deliver(messenger, page_event(message={"mid": FIRST_MID, "is_deleted": True}))
    assert support.inbound().data["deleted_at"]


def test_a_reply_names_the_message_it_answers(messenger):
    post(messenger, text_message())
    answer = {"mid": "m_reply", "text": "En maandag?", "reply_to": {"mid": FIRST_MID}}
    deliver(messenger, page_event(timestamp=1732521650000, message=answer))
    reply_message = Message.objects.get(external_id="m_reply")
    context = reply_message.data["reply_to"]
    assert context["excerpt"] == "Is de winkel zondag open?"
    assert context["id"] == Message.objects.get(external_id=FIRST_MID).pk


def test_echoes_of_the_pages_own_messages_are_ignored(messenger):
    echo = {"mid": "m_echo", "text": "Sent from the Page inbox", "is_echo": True, "app_id": 123}
    payload = support.envelope("messenger", PAGE_ID, support.event(PAGE_ID, PSID, message=echo))
    assert post(messenger, payload).status_code == 200
    assert not Message.objects.exists()
    assert InboundEvent.objects.get().status == InboundStatus.IGNORED


def test_unknown_events_and_objects_are_acknowledged_and_ignored(messenger):
    deliver(messenger, page_event(optin={"ref": "landing"}))
    post(messenger, {"object": "user", "entry": []})
    assert not Message.objects.exists()
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {InboundStatus.IGNORED}


def test_malformed_json_is_400(messenger):
    response = post(messenger, None, raw=b'{"object": "page", "entry": ')
    assert response.status_code == 400
    assert not Message.objects.exists()


# -- statuses -----------------------------------------------------------------------------------


def test_delivery_and_read_reports_move_our_reply_forward(messenger, owner, graph):
    conversation = conversation_with_customer(messenger)
    first = reply(conversation, owner, text="Eerste antwoord")
    run_tasks(retries_due=True)
    first.refresh_from_db()
    assert first.status == DeliveryStatus.SENT
    watermark = int(first.sent_at.timestamp() * 1000) + 1  # Meta's time of the message
    delivered = {"mids": [first.external_id], "watermark": watermark}
    deliver(messenger, page_event(timestamp=watermark, delivery=delivered))
    first.refresh_from_db()
    assert first.status == DeliveryStatus.DELIVERED

    # A delivery for a message sent from elsewhere (the Page inbox) is not Loket's.
    deliver(messenger, page_event(delivery={"mids": ["m_from_page_inbox"], "watermark": 1}))
    assert InboundEvent.objects.order_by("-pk").first().status == InboundStatus.IGNORED

    later = reply(conversation, owner, text="Tweede antwoord")
    run_tasks(retries_due=True)
    later.refresh_from_db()
    # Read up to the first reply only: the second stays sent.
    deliver(messenger, page_event(read={"watermark": watermark}))
    first.refresh_from_db()
    later.refresh_from_db()
    assert first.status == DeliveryStatus.READ
    assert later.status == DeliveryStatus.SENT
    # A delivery without ids: its watermark covers the second reply.
    mark = int(later.sent_at.timestamp() * 1000) + 1
    deliver(messenger, page_event(delivery={"watermark": mark}))
    later.refresh_from_db()
    assert later.status == DeliveryStatus.DELIVERED


# -- sending ------------------------------------------------------------------------------------


def test_a_reply_is_sent_exactly_as_documented(messenger, owner, graph):
    conversation = conversation_with_customer(messenger)
    message = reply(conversation, owner)
    run_tasks(retries_due=True)
    (request,) = graph.requests_to("POST", MESSAGES)
    assert request.headers["authorization"] == f"Bearer {PAGE_TOKEN}"
    assert request.headers["content-type"].startswith("application/json")
    assert request.json() == support.sample("messenger", "send_text_request.json")
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT
    assert message.external_id == "m_sent_1"


def test_throttling_with_retry_after_then_sent(messenger, owner, graph):
    conversation = conversation_with_customer(messenger)
    graph.then(
        "POST",
        MESSAGES,
        Answer(429, {"error": {"message": "(#613) Calls to this api have exceeded the rate limit.",
                               "type": "OAuthException", "code": 613}},
               headers={"Retry-After": "7"}),
    )  # fmt: skip
    message = reply(conversation, owner)
    run_tasks(retries_due=True)
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT
    assert message.external_id == "m_sent_1"
    assert message.send_attempts == 2
    assert len(graph.requests_to("POST", MESSAGES)) == 2


def test_a_server_error_then_sent(messenger, owner, graph):
    conversation = conversation_with_customer(messenger)
    failure = {"message": "An unknown error occurred", "code": 1, "is_transient": True}
    graph.then("POST", MESSAGES, Answer(500, {"error": failure}))
    message = reply(conversation, owner)
    run_tasks(retries_due=True)
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT
    assert len(graph.requests_to("POST", MESSAGES)) == 2


@pytest.mark.parametrize(
    ("error", "words"),
    [
        ({"code": 551, "error_subcode": 1545041}, "This person isn't available right now."),
        ({"code": 10, "error_subcode": 2018278}, "The reply window has closed"),
        ({"code": 200, "error_subcode": 2018108}, "blocked messages from this page"),
    ],
)
def test_a_refusal_fails_the_message_in_plain_words(messenger, owner, graph, error, words):
    conversation = conversation_with_customer(messenger)
    refusal = {"message": "(#x) refused", "type": "OAuthException", **error}
    graph.then("POST", MESSAGES, Answer(400, {"error": refusal}))
    message = reply(conversation, owner)
    run_tasks(retries_due=True)
    message.refresh_from_db()
    assert message.status == DeliveryStatus.FAILED
    assert words in message.error
    assert f"Meta error {error['code']}" in message.error
    assert len(graph.requests_to("POST", MESSAGES)) == 1


def test_after_24_hours_the_reply_carries_the_human_agent_tag(messenger, owner, graph):
    conversation = conversation_with_customer(messenger)
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=timezone.now() - dt.timedelta(hours=30)
    )
    message = reply(conversation, owner, text="Sorry voor de late reactie!")
    run_tasks(retries_due=True)
    (request,) = graph.requests_to("POST", MESSAGES)
    assert request.json() == {
        "recipient": {"id": PSID},
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
        "message": {"text": "Sorry voor de late reactie!"},
    }
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT


def test_after_7_days_no_reply_can_be_made(messenger, owner, graph):
    conversation = conversation_with_customer(messenger)
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=timezone.now() - dt.timedelta(days=8)
    )
    with pytest.raises(ValueError, match="more than 7 days ago"):
        reply(conversation, owner)
    run_tasks(retries_due=True)
    assert not graph.requests_to("POST", MESSAGES)
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


def test_a_window_that_closed_while_queued_fails_without_calling_meta(messenger, owner, graph):
    conversation = conversation_with_customer(messenger)
    message = reply(conversation, owner)
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=timezone.now() - dt.timedelta(days=8)
    )
    run_tasks(retries_due=True)
    message.refresh_from_db()
    assert message.status == DeliveryStatus.FAILED
    assert "more than 7 days ago" in message.error
    assert not graph.requests_to("POST", MESSAGES)


def test_files_are_uploaded_with_the_message(messenger, owner, graph):
    conversation = conversation_with_customer(messenger)
    pdf = outbound.OutgoingFile("factuur.pdf", "application/pdf", b"%PDF-1.7 invoice")
    photo = outbound.OutgoingFile("band.png", "image/png", b"\x89PNG tyre")
    message = reply(conversation, owner, text="Hierbij de factuur.", attachments=[pdf, photo])
    run_tasks(retries_due=True)
    text, first, second = graph.requests_to("POST", MESSAGES)
    assert text.json()["message"] == {"text": "Hierbij de factuur."}
    for request, kind, name, content in (
        (first, "file", "factuur.pdf", b"%PDF-1.7 invoice"),
        (second, "image", "band.png", b"\x89PNG tyre"),
    ):
        assert request.headers["content-type"].startswith("multipart/form-data")
        assert request.headers["authorization"] == f"Bearer {PAGE_TOKEN}"
        assert b'name="recipient"\r\n\r\n{"id": "7012345678901234"}' in request.body
        assert b'name="messaging_type"\r\n\r\nRESPONSE' in request.body
        expected = json.dumps({"attachment": {"type": kind, "payload": {"is_reusable": False}}})
        assert f'name="message"\r\n\r\n{expected}'.encode() in request.body
        assert f'name="filedata"; filename="{name}"'.encode() in request.body
        assert content in request.body
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT
    assert message.external_id == "m_sent_1"


def test_a_retry_after_a_half_sent_message_sends_only_the_rest(messenger, owner, graph):
    conversation = conversation_with_customer(messenger)
    photo = outbound.OutgoingFile("band.png", "image/png", b"\x89PNG tyre")
    graph.then(
        "POST",
        MESSAGES,
        Answer(200, {"recipient_id": PSID, "message_id": "m_text_part"}),
        Answer(503, {"error": {"message": "Service temporarily unavailable", "code": 2}}),
    )
    message = reply(conversation, owner, text="Kijk eens:", attachments=[photo])
    run_tasks(retries_due=True)
    requests = graph.requests_to("POST", MESSAGES)
    assert [r.headers["content-type"].split(";")[0] for r in requests] == [
        "application/json",
        "multipart/form-data",
        "multipart/form-data",
    ]
    message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT
    assert message.external_id == "m_text_part"


def test_a_long_reply_goes_out_as_several_messages(messenger, owner, graph):
    conversation = conversation_with_customer(messenger)
    paragraphs = [
        f"Stap {n}: " + "draai de ventieldop los en pomp de band op. " * 20 for n in (1, 2, 3)
    ]
    text = "\n\n".join(paragraphs)
    assert 2000 < len(text) < 4000
    message = reply(conversation, owner, text=text)
    run_tasks(retries_due=True)
    sent = [r.json()["message"]["text"] for r in graph.requests_to("POST", MESSAGES)]
    assert len(sent) == 2
    assert all(len(part) <= 2000 for part in sent)
    assert sent[0] == "\n\n".join(paragraphs[:2]).rstrip()  # cut at a paragraph break
    assert " ".join(sent).split() == text.split()
    message.refresh_from_db()
    assert message.external_id == "m_sent_1"
    assert message.data["sent_parts"]["text:2"] == "m_sent_2"


def test_split_text_never_loses_or_exceeds():
    from loket.connectors.messenger.connector import split_text

    assert split_text("", lambda s: len(s) <= 5) == []
    assert split_text("kort", lambda s: len(s) <= 5) == ["kort"]
    assert split_text("abcdefghijkl", lambda s: len(s) <= 5) == ["abcde", "fghij", "kl"]
    assert split_text("een twee drie vier", lambda s: len(s) <= 9) == ["een twee", "drie vier"]
    emoji = "\U0001f6b2" * 300  # 4 bytes each
    parts = split_text(emoji, lambda s: len(s.encode()) <= 1000)
    assert [len(p) for p in parts] == [250, 50]


def test_a_delivery_report_overtaking_the_send_is_applied_once_the_send_is_recorded(
    messenger, owner, graph
):
    conversation = conversation_with_customer(messenger)
    release = threading.Event()
    accepted = {"recipient_id": PSID, "message_id": "m_race"}
    graph.then("POST", MESSAGES, Answer(200, accepted, hold=release))
    message = reply(conversation, owner)
    before = len(graph.requests)

    def worker():
        try:
            run_tasks()
        finally:
            connection.close()

    sending = threading.Thread(target=worker)
    sending.start()
    try:
        assert graph.wait_for(before + 1)  # Meta has the message; Loket has not its id yet
        message.refresh_from_db()
        assert message.status == DeliveryStatus.SENDING
        report = {"mids": ["m_race"], "watermark": support.now_ms()}
        assert deliver(messenger, page_event(delivery=report)).status_code == 200
        assert InboundEvent.objects.order_by("-pk").first().status == InboundStatus.FAILED
    finally:
        release.set()
        sending.join(30)
    run_tasks(retries_due=True)
    message.refresh_from_db()
    assert message.external_id == "m_race"
    assert message.status == DeliveryStatus.DELIVERED
    assert InboundEvent.objects.order_by("-pk").first().status == InboundStatus.PROCESSED


def test_opening_the_conversation_marks_the_customers_messages_seen(messenger, owner, graph):
    conversation = conversation_with_customer(messenger)
    browser = Client()
    browser.force_login(owner.user)
    pane = f"/w/{messenger.workspace.slug}/inbox/{conversation.number}/pane/"
    assert browser.get(pane).status_code == 200
    assert browser.get(pane).status_code == 200  # opened again: told once
    run_tasks(retries_due=True)
    (seen,) = graph.requests_to("POST", MESSAGES)
    assert seen.json() == {"recipient": {"id": PSID}, "sender_action": "mark_seen"}
    assert seen.headers["authorization"] == f"Bearer {PAGE_TOKEN}"
    # After the team answered, or when the customer wrote more than 24 hours ago: nothing.
    reply(conversation, owner)
    run_tasks(retries_due=True)
    assert browser.get(pane).status_code == 200
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=timezone.now() - dt.timedelta(hours=25), last_outbound_at=None
    )
    assert browser.get(pane).status_code == 200
    run_tasks(retries_due=True)
    assert len(graph.requests_to("POST", MESSAGES)) == 2  # the seen and the reply


@pytest.mark.parametrize(
    "payload",
    [
        {"object": "page", "entry": "x"},
        {"object": "page", "entry": [None, 3, {"id": PAGE_ID, "messaging": "x"}]},
        {"object": "page", "entry": [{"id": PAGE_ID, "messaging": [None, {"sender": "x"}]}]},
        support.envelope("messenger", PAGE_ID, page_event(message="hello")),
        support.envelope("messenger", PAGE_ID, page_event(message={"mid": 5, "text": ["x"]})),
        support.envelope("messenger", PAGE_ID, page_event(timestamp=10**30, message={"mid": "a"})),
        support.envelope(
            "messenger",
            PAGE_ID,
            page_event(
                message={
                    "mid": "b",
                    "attachments": [
                        None,
                        {"type": "image", "payload": "x"},
                        {"type": "location", "payload": {}},
                    ],
                }
            ),
        ),
        support.envelope("messenger", PAGE_ID, page_event(reaction={"mid": ["x"], "emoji": 5})),
        support.envelope(
            "messenger", PAGE_ID, page_event(delivery={"mids": "x", "watermark": "y"})
        ),
        support.envelope("messenger", PAGE_ID, page_event(read={"watermark": None, "mid": {}})),
        support.envelope("messenger", PAGE_ID, page_event(postback=None)),
        [1, 2],
    ],
)
def test_odd_payloads_never_break_the_webhook(messenger, payload):
    response = post(messenger, payload)
    assert response.status_code in (200, 400)
    assert InboundEvent.objects.get().status != InboundStatus.FAILED or response.status_code == 400
