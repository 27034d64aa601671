"""A WhatsApp conversation in the agent app (issue 6's must-show), against a local Meta Graph API:
the customer's photo arrives (shown while it downloads, then as the image), the 24-hour window
has closed so the composer offers only templates ("before"), the agent sends a template with
its variables previewed, the customer reacts to it and the reaction appears live ("after")."""

from __future__ import annotations

import datetime as dt
import json
import struct
import zlib

import httpx
from django.utils import timezone
from playwright.sync_api import expect

from loket.connectors.meta import webhooks
from loket.inbox.models import Attachment, Conversation, Message
from tests.connectors.providers import Answer
from tests.connectors.whatsapp import support

LIVE = 10_000  # ms: a bound on how long a live update may take, not a speed claim


def parcel_photo(width: int = 360, height: int = 240) -> bytes:
    """A real PNG (a parcel-brown box on a light background) for the customer's photo."""
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            inside = width * 0.25 < x < width * 0.75 and height * 0.2 < y < height * 0.8
            tape = inside and abs(x - width / 2) < 8
            row += bytes((196, 164, 120) if tape else (166, 124, 82) if inside else (236, 240, 244))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def fake_graph(meta_graph, photo: bytes):
    meta_graph.reset()
    meta_graph.route(
        "GET",
        r"/v21\.0/\d+/message_templates",
        Answer(200, {"data": support.TEMPLATES}),
    )
    meta_graph.route(
        "GET",
        r"/v21\.0/\d+",
        lambda request: Answer(
            200,
            {
                "messaging_product": "whatsapp",
                "url": f"{meta_graph.url}/whatsapp_business/attachments/?mid=1",
                "mime_type": "image/png",
                "file_size": len(photo),
                "id": request.path.rsplit("/", 1)[-1],
            },
        ),
    )
    meta_graph.route(
        "GET", r"/whatsapp_business/attachments/", Answer(200, photo, content_type="image/png")
    )
    meta_graph.route(
        "POST",
        r"/v21\.0/\d+/messages",
        Answer(200, support.sent_answer("wamid.HBgLMzE2MTIzNDU2NzgVAgARGBJUZW1wbGF0ZQA=")),
    )


def post_signed(agent_app, channel, payload: dict) -> None:
    body = json.dumps(payload).encode()
    response = httpx.post(
        agent_app.url(f"/hooks/whatsapp/{channel.uuid}/"),
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": webhooks.signature(support.APP_SECRET, body),
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text


def test_a_whatsapp_conversation_with_a_photo_a_template_and_a_reaction(
    agent_app, browser_pages, screenshot, meta_graph, settings
):
    settings.LOKET_META_GRAPH_URL = meta_graph.url  # the channel's template sync, in this process
    fake_graph(meta_graph, parcel_photo())
    channel = support.make_channel(agent_app.workspace)

    question = support.message("text", {"body": "Hoi! Mijn pakket kwam beschadigd aan."})
    photo = support.message(
        "image",
        {"caption": "Zo kwam het pakket aan", "mime_type": "image/png", "id": "1003383421387256"},
    )
    post_signed(agent_app, channel, support.notification(support.change([question, photo])))
    conversation = Conversation.objects.get(channel=channel)
    # The customer wrote 30 hours ago: only a template may go out now.
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=timezone.now() - dt.timedelta(hours=30)
    )

    (page,) = browser_pages("agent-a", goto="/w/acme/")
    page.locator("#conv-list a.conv-link", has_text="Sanne de Vries").first.click()
    page.wait_for_function("() => !!document.querySelector('#composer')?._x_dataStack")
    # The in-process worker downloads the photo through the Graph API; the message is there
    # from the start and its image replaces the "Downloading" line live (message.updated).
    attachment = Attachment.objects.get(message__conversation=conversation)
    image = page.locator(f'#timeline img[alt="{attachment.filename}"]')
    expect(image).to_be_visible(timeout=LIVE)
    notice = page.locator("#reply-window")
    expect(notice).to_contain_text("only an approved message template")
    expect(page.locator("#composer-text")).to_be_disabled()
    picker = page.locator("#template-picker")
    expect(picker).to_be_visible()
    picker.locator("select").select_option(label="order_update (nl)")
    inputs = picker.locator("input[type=text]")
    expect(inputs).to_have_count(3)  # one header variable, two body variables
    inputs.nth(0).fill("#10452")
    inputs.nth(1).fill("Sanne")
    inputs.nth(2).fill("vandaag opnieuw verzonden")
    expect(picker.locator(".template-preview")).to_contain_text(
        "Hoi Sanne, je bestelling is vandaag opnieuw verzonden."
    )
    screenshot(page, "whatsapp-before")

    page.locator("#composer button[type=submit]").click()
    sent = page.locator("#timeline .msg.out").last
    expect(sent).to_contain_text(
        "Hoi Sanne, je bestelling is vandaag opnieuw verzonden.", timeout=LIVE
    )
    expect(sent).to_contain_text("Template order_update (nl)")
    reply = Message.objects.get(conversation=conversation, direction="out")
    expect(page.locator(f"#m{reply.pk} .ticks")).to_have_attribute(
        "data-status", "sent", timeout=LIVE
    )
    reply.refresh_from_db()  # its WhatsApp id, recorded with "sent"
    sent_body = meta_graph.requests_to("POST", r"/v21\.0/\d+/messages")[-1].json()
    assert sent_body["type"] == "template"
    assert sent_body["template"]["name"] == "order_update"

    # The customer reacts to the template message; it shows without a reload.
    reaction = support.message(
        "reaction", {"message_id": reply.external_id, "emoji": "🙏"}, message_id=support.wamid()
    )
    post_signed(agent_app, channel, support.notification(support.change([reaction])))
    expect(page.locator(f"#m{reply.pk} .reaction")).to_have_text("🙏", timeout=LIVE)
    screenshot(page, "whatsapp-after")
