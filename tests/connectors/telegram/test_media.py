"""A customer's photo: stored with the message at once, fetched by the worker through getFile
and the file URL, into Loket's own storage."""

from __future__ import annotations

import hashlib

import pytest

from loket.inbox.models import Attachment, AttachmentStatus, Message
from tests.connectors.providers import Answer, run_tasks
from tests.connectors.telegram.conftest import TOKEN, failure, method, payload

pytestmark = pytest.mark.usefixtures("transactional_db")  # the worker runs as in production

PHOTO = b"\xff\xd8\xff\xe0 a JPEG photo"


def test_a_photo_is_downloaded_into_loket_storage(channel, post_update, telegram):
    assert post_update(channel, payload("photo_message")).status_code == 200
    message = Message.objects.get()  # there before the download
    assert message.attachments.get().status == AttachmentStatus.PENDING

    run_tasks()

    (lookup,) = telegram.requests_to("POST", method("getFile"))
    assert lookup.path == f"/bot{TOKEN}/getFile"
    assert lookup.json() == {"file_id": "AgACAgQAAxkBAAIBXmZ1large"}  # the largest size
    (download,) = telegram.requests_to("GET", r"/file/.+")
    assert download.path == f"/file/bot{TOKEN}/photos/file_12.jpg"
    attachment = Attachment.objects.get()
    assert attachment.status == AttachmentStatus.STORED
    assert attachment.file.read() == PHOTO
    assert attachment.size == len(PHOTO)
    assert attachment.sha256 == hashlib.sha256(PHOTO).hexdigest()
    assert (attachment.filename, attachment.content_type) == ("photo_1366.jpg", "image/jpeg")
    assert TOKEN not in attachment.file.name and TOKEN not in attachment.source_url


def test_a_file_over_telegrams_20_mb_bot_limit_fails_with_a_reason(channel, post_update, telegram):
    telegram.then("POST", method("getFile"), failure(400, "Bad Request: file is too big"))
    post_update(channel, payload("video_message"))
    run_tasks(retries_due=True)
    attachment = Attachment.objects.get()
    assert attachment.status == AttachmentStatus.FAILED
    assert "larger than the 20 MB Telegram lets bots download" in attachment.error
    assert len(telegram.requests_to("POST", method("getFile"))) == 1  # not retried
    assert not telegram.requests_to("GET", r"/file/.+")
    assert Message.objects.get().text == "De boot is er niet"  # the message itself stays


@pytest.mark.parametrize(
    "trouble",
    [
        failure(429, "Too Many Requests: retry after 1", retry_after=1),
        failure(502, "Bad Gateway"),
        Answer(500, b"<html>Internal Server Error</html>", content_type="text/html"),
    ],
)
def test_telegram_trouble_while_looking_a_file_up_is_retried(
    channel, post_update, telegram, trouble
):
    telegram.then("POST", method("getFile"), trouble)
    post_update(channel, payload("photo_message"))
    run_tasks()
    assert Attachment.objects.get().status == AttachmentStatus.PENDING  # waiting to retry
    run_tasks(retries_due=True)
    attachment = Attachment.objects.get()
    assert attachment.status == AttachmentStatus.STORED
    assert attachment.file.read() == PHOTO
    assert len(telegram.requests_to("POST", method("getFile"))) == 2


def test_a_file_id_telegram_does_not_know_fails_for_good(channel, post_update, telegram):
    telegram.then(
        "POST",
        method("getFile"),
        failure(400, "Bad Request: wrong file_id or the file is temporarily unavailable"),
    )
    post_update(channel, payload("document_message"))
    run_tasks(retries_due=True)
    attachment = Attachment.objects.get()
    assert attachment.status == AttachmentStatus.FAILED
    assert "Telegram could not provide the file" in attachment.error
    assert "wrong file_id" in attachment.error


def test_an_expired_file_path_is_not_retried_forever(channel, post_update, telegram):
    telegram.files.clear()  # getFile answers, the download is 404
    post_update(channel, payload("photo_message"))
    run_tasks(retries_due=True)
    attachment = Attachment.objects.get()
    assert attachment.status == AttachmentStatus.FAILED
    assert "404" in attachment.error
    assert TOKEN not in attachment.error
