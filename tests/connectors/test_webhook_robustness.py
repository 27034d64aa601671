"""One odd request or a client that gives up must never cost other deliveries their answer."""

from __future__ import annotations

import json
import threading
import time

import pytest

from loket.connectors import signing, webhooks
from loket.connectors.base import WebhookRequest
from loket.inbox.models import Message


@pytest.mark.parametrize(
    "header",
    [
        "t={now},v1=\u00e9\u00e9",  # non-ASCII signature (headers arrive decoded as latin-1)
        "t=" + "9" * 400 + ",v1=00",  # a timestamp too large for a float
        "t=-5,v1=00",
        "t=\u0661\u0662,v1=00",  # Unicode digits
        "v1=00",
        "",
    ],
)
def test_malformed_signature_headers_are_rejected_not_crashed(header):
    header = header.replace("{now}", str(int(time.time())))
    with pytest.raises(signing.InvalidSignature):
        signing.verify("secret", b"{}", header)


def _request(channel, body: bytes, signature: str) -> WebhookRequest:
    path = f"/hooks/api/{channel.uuid}/"
    return WebhookRequest(
        method="POST",
        url=f"http://testserver{path}",
        path=path,
        query_string="",
        headers={"content-type": "application/json", "x-loket-signature": signature},
        body=body,
    )


def test_a_malformed_request_does_not_fail_its_batch(api_channel):
    good = json.dumps({"id": "g1", "contact": {"id": "c"}, "text": "hi"}).encode()
    batch = [
        ("api", str(api_channel.uuid), _request(api_channel, good, "t=1,v1=\u00e9")),
        ("api", str(api_channel.uuid), _request(api_channel, good, signing.sign(
            api_channel.secrets["secret"], good))),
    ]  # fmt: skip
    answers = webhooks.handle_webhooks(batch)
    assert [a.status for a in answers] == [401, 200]
    assert Message.objects.filter(external_id="g1").count() == 1


def test_a_cancelled_request_does_not_stop_the_writer(monkeypatch):
    release = threading.Event()
    calls = []

    def slow_store(admitted):
        calls.append(len(admitted))
        release.wait(10)
        return [webhooks._error(200, "ok", "stored") for _ in admitted]

    monkeypatch.setattr(webhooks, "store", slow_store)
    monkeypatch.setattr(webhooks.IngestWriter, "_wanted", staticmethod(lambda: 1))
    writer = webhooks.IngestWriter()
    request = ("connector", "delivery", "request")  # what admit() hands over
    first = writer.submit(request)
    deadline = time.monotonic() + 10
    while not calls and time.monotonic() < deadline:  # the writer holds the first batch
        time.sleep(0.01)
    second = writer.submit(request)
    third = writer.submit(request)
    assert second.cancel()  # e.g. the client went away while waiting
    release.set()
    assert first.result(timeout=10).status == 200
    assert third.result(timeout=10).status == 200
    assert all(thread.is_alive() for thread in writer._threads)
    assert writer.submit(request).result(timeout=10).status == 200
