"""Files in the live chat: a visitor's upload (size, type and scanner limits) stored through
the journal; only the visitor's own conversation's files can be fetched with their token."""

from __future__ import annotations

import base64

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from loket.connectors.livechat import widget
from loket.connectors.registry import get_connector
from loket.inbox.models import Attachment, Conversation, Message
from loket.inbox.services import outbound
from loket.inbox.services.channels import create_channel

pytestmark = pytest.mark.django_db
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def refuse_pdfs(filename, content_type, data):
    if content_type == "application/pdf":
        raise widget.UploadRejected("PDFs are scanned and this one failed")


@pytest.fixture
def chat(workspace):
    channel, _ = create_channel(workspace, get_connector("livechat"), name="Site", config={})
    return channel


def upload(chat, token, name, content, content_type, client_id="f-1", text=""):
    return Client().post(
        f"/widget/{chat.uuid}/api/files",
        {
            "token": token,
            "client_id": client_id,
            "text": text,
            "file": SimpleUploadedFile(name, content, content_type=content_type),
        },
    )


def test_a_visitor_sends_an_image_and_only_they_can_fetch_it(chat, owner):
    token, _ = widget.start_session(chat)
    response = upload(chat, token, "photo.png", PNG, "image/png", text="The damage")
    assert response.status_code == 201, response.content
    shown = response.json()["message"]
    [item] = shown["attachments"]
    assert item["name"] == "photo.png" and item["content_type"] == "image/png"
    stored = Attachment.objects.get(pk=item["id"])
    assert stored.size == len(PNG) and Message.objects.get(pk=shown["id"]).text == "The damage"

    own = Client().get(item["url"], {"token": token})
    assert own.status_code == 200 and b"".join(own.streaming_content) == PNG
    assert own["Content-Security-Policy"].startswith("sandbox")
    stranger, _ = widget.start_session(chat)
    assert Client().get(item["url"], {"token": stranger}).status_code == 404
    assert Client().get(item["url"]).status_code == 401

    # The agent's reply with a file shows in the widget's history with its link.
    conversation = Conversation.objects.get(pk=Message.objects.get(pk=shown["id"]).conversation_id)
    reply = outbound.reply(
        conversation,
        author=owner,
        text="Our return label",
        attachments=[outbound.OutgoingFile("label.pdf", "application/pdf", b"%PDF-1.4 label")],
    )
    history = (
        Client()
        .post(f"/widget/{chat.uuid}/api/session", {"token": token}, content_type="application/json")
        .json()["messages"]
    )
    [label] = next(m for m in history if m["id"] == reply.pk)["attachments"]
    fetched = Client().get(label["url"], {"token": token})
    assert fetched.status_code == 200 and fetched["Content-Type"] == "application/octet-stream"


def test_uploads_are_limited_by_size_type_and_the_scanner(chat, settings):
    token, _ = widget.start_session(chat)
    settings.LOKET_WIDGET_UPLOAD_MAX_BYTES = 1000
    assert upload(chat, token, "big.png", b"x" * 2000, "image/png").status_code == 413
    assert upload(chat, token, "run.exe", b"MZ", "application/x-msdownload").status_code == 415
    assert upload(chat, token, "empty.png", b"", "image/png").status_code == 400
    settings.LOKET_UPLOAD_SCANNER = f"{__name__}.refuse_pdfs"
    refused = upload(chat, token, "doc.pdf", b"%PDF-1.4", "application/pdf")
    assert refused.status_code == 422 and "scanned" in refused.json()["error"]["message"]
    assert not Message.objects.filter(channel=chat).exists()  # nothing refused was stored
    settings.LOKET_WIDGET_UPLOADS_PER_HOUR = 1  # attempts count, refused ones too
    token, _ = widget.start_session(chat)
    assert upload(chat, token, "a.png", PNG, "image/png", client_id="a").status_code == 201
    assert upload(chat, token, "b.png", PNG, "image/png", client_id="b").status_code == 429
