"""Public, expiring links to stored attachments (for providers that fetch outbound media)."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from django.core import signing

from loket.connectors import public_media
from loket.inbox.models import Attachment, Message
from loket.inbox.services import outbound
from tests import factories


@pytest.fixture
def attachment(workspace, owner, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    channel = factories.api_channel(workspace)
    factories.inbound(channel, "Hello")
    conversation = Message.objects.get().conversation
    outbound.reply(
        conversation,
        author=owner,
        text="Photo",
        attachments=[outbound.OutgoingFile("auto.png", "image/png", b"\x89PNG tiny")],
    )
    return Attachment.objects.get()


def _path(url: str) -> str:
    return urlsplit(url).path


def test_a_valid_link_serves_the_file_so_it_cannot_script(attachment, client, settings):
    url = public_media.public_url(attachment)
    assert url.startswith(f"{settings.LOKET_PUBLIC_URL}/media/")
    assert url.endswith("/auto.png")
    response = client.get(_path(url))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\x89PNG tiny"
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert client.head(_path(url)).status_code == 200


def test_a_document_type_a_browser_would_run_is_served_as_a_download(attachment, client):
    Attachment.objects.filter(pk=attachment.pk).update(content_type="text/html")
    attachment.refresh_from_db()
    response = client.get(_path(public_media.public_url(attachment)))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")


def test_tampered_expired_or_foreign_tokens_are_404(attachment, client):
    good = _path(public_media.public_url(attachment))
    token = good.split("/")[2]
    payload, _, sig = token.rpartition(":")
    flipped = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    expired = signing.dumps(
        {"a": attachment.pk, "w": attachment.workspace_id, "e": int(time.time()) - 1},
        salt=public_media.SALT,
    )
    other_workspace = signing.dumps(
        {"a": attachment.pk, "w": attachment.workspace_id + 1, "e": int(time.time()) + 60},
        salt=public_media.SALT,
    )
    other_salt = signing.dumps(
        {"a": attachment.pk, "w": attachment.workspace_id, "e": int(time.time()) + 60}
    )
    for bad in (f"{payload}:{flipped}", expired, other_workspace, other_salt, "nonsense"):
        assert client.get(f"/media/{bad}/auto.png").status_code == 404, bad
    assert client.post(good).status_code == 405
    assert client.get(good).status_code == 200


def test_a_link_stops_working_once_its_time_is_up(attachment):
    token = public_media.token_for(attachment, max_age_seconds=60)
    assert public_media.attachment_for(token) == attachment
    payload = signing.loads(token, salt=public_media.SALT)
    assert time.time() + 55 < payload["e"] <= time.time() + 60


def test_the_link_names_the_file_readably(attachment, client):
    Attachment.objects.filter(pk=attachment.pk).update(filename="mijn auto 100%.png")
    attachment.refresh_from_db()
    url = public_media.public_url(attachment)
    assert url.endswith("/mijn%20auto%20100%25.png")
    assert client.get(_path(url)).status_code == 200
