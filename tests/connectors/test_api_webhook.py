"""The API channel's inbound webhook: verification, journaling, dedupe and acknowledgement."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import Client

from loket.inbox.models import Conversation, InboundEvent, InboundStatus, Message
from tests import factories


def delivery(message_id="ext-1", contact_id="cust-1", text="Where is my order?", **extra):
    return {
        "id": message_id,
        "contact": {"id": contact_id, "name": "Emily Carter", "email": "emily@example.org"},
        "text": text,
        "sent_at": "2026-11-25T09:30:00Z",
        **extra,
    }


def test_a_signed_delivery_is_stored_and_acknowledged(api_channel, post_webhook):
    response = post_webhook(api_channel, delivery())
    assert response.status_code == 200
    message = Message.objects.get()
    assert message.text == "Where is my order?"
    assert message.external_id == "ext-1"
    assert message.sent_at.isoformat() == "2026-11-25T09:30:00+00:00"
    assert message.conversation.contact.email == "emily@example.org"
    event = InboundEvent.objects.get()
    assert event.status == InboundStatus.PROCESSED
    assert json.loads(bytes(event.payload))["id"] == "ext-1"
    assert event.result["message_ids"] == [message.pk]


def test_a_bad_signature_is_401_and_stores_nothing(api_channel, post_webhook):
    response = post_webhook(api_channel, delivery(), secret="whsec_not-the-channel-secret")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert not Message.objects.exists()
    assert not InboundEvent.objects.exists()


def test_a_missing_signature_is_401(api_channel, client):
    response = client.post(
        f"/hooks/api/{api_channel.uuid}/", data=delivery(), content_type="application/json"
    )
    assert response.status_code == 401
    assert "missing" in response.json()["error"]["message"]
    assert not InboundEvent.objects.exists()


def test_an_old_signature_is_rejected_as_a_replay(api_channel, post_webhook):
    body = json.dumps(delivery()).encode()
    old = factories.signature(api_channel.secrets["secret"], body, int(time.time()) - 301)
    response = post_webhook(api_channel, None, raw=body, signature=old)
    assert response.status_code == 401
    assert "5 minutes" in response.json()["error"]["message"]
    assert not Message.objects.exists()


def test_malformed_json_is_400_with_a_clear_error(api_channel, post_webhook):
    response = post_webhook(api_channel, None, raw=b'{"id": "x", "contact": ')
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "bad_payload"
    assert "not valid JSON" in error["message"]
    assert not Message.objects.exists()
    # Kept in the journal (verified, so worth seeing), marked failed with the reason.
    event = InboundEvent.objects.get()
    assert event.status == InboundStatus.FAILED
    assert "not valid JSON" in event.error


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        ({"contact": {"id": "c"}, "text": "hi"}, "'id' is required"),
        ({"id": "1", "text": "hi"}, "'contact' must be an object"),
        ({"id": "1", "contact": {"id": "c"}}, "needs 'text' or 'attachments'"),
        ({"id": "1", "contact": {"id": "c", "email": "nope"}, "text": "x"}, "valid email"),
        ({"id": "1", "contact": {"id": "c"}, "text": "x", "sent_at": "yesterday"}, "ISO 8601"),
        ([1, 2], "JSON object"),
    ],
)
def test_invalid_deliveries_say_what_is_wrong(api_channel, post_webhook, payload, complaint):
    response = post_webhook(api_channel, payload)
    assert response.status_code == 400
    assert complaint in response.json()["error"]["message"]
    assert not Message.objects.exists()


def test_an_unknown_event_kind_is_acknowledged_and_journaled_as_ignored(api_channel, post_webhook):
    response = post_webhook(api_channel, {"type": "contact.typing", "contact": {"id": "c"}})
    assert response.status_code == 200
    assert not Message.objects.exists()
    event = InboundEvent.objects.get()
    assert event.status == InboundStatus.IGNORED


def test_a_repeated_delivery_is_a_harmless_no_op(api_channel, post_webhook):
    assert post_webhook(api_channel, delivery()).status_code == 200
    assert post_webhook(api_channel, delivery()).status_code == 200
    assert Message.objects.count() == 1
    assert Conversation.objects.count() == 1
    statuses = sorted(InboundEvent.objects.values_list("status", flat=True))
    assert statuses == [InboundStatus.DUPLICATE, InboundStatus.PROCESSED]


def test_unknown_channels_and_wrong_methods(api_channel, client):
    assert client.post("/hooks/api/not-a-uuid/", data=b"{}", content_type="x").status_code == 404
    other = "00000000-0000-4000-8000-000000000000"
    assert client.post(f"/hooks/api/{other}/", data=b"{}", content_type="x").status_code == 404
    assert (
        client.post(f"/hooks/nope/{api_channel.uuid}/", data=b"{}", content_type="x").status_code
        == 404
    )
    assert client.get(f"/hooks/api/{api_channel.uuid}/").status_code == 405


def test_an_inactive_channel_takes_no_deliveries(api_channel, post_webhook):
    api_channel.is_active = False
    api_channel.save()
    assert post_webhook(api_channel, delivery()).status_code == 404
    assert not InboundEvent.objects.exists()


def test_the_same_delivery_posted_20_times_from_8_threads_is_one_message(transactional_db):
    workspace = factories.workspace()
    channel = factories.api_channel(workspace)
    body = json.dumps(delivery(message_id="race-1", contact_id="racer")).encode()
    secret = channel.secrets["secret"]
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)
    jobs = iter(range(20))

    def sender():
        try:
            send_all()
        finally:
            connection.close()  # the test client leaves thread connections open

    def send_all():
        client = Client()
        start.wait()
        while True:
            with lock:
                if next(jobs, None) is None:
                    return
            response = client.post(
                f"/hooks/api/{channel.uuid}/",
                data=body,
                content_type="application/json",
                headers={"X-Loket-Signature": factories.signature(secret, body)},
            )
            with lock:
                statuses.append(response.status_code)

    threads = [threading.Thread(target=sender) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert statuses == [200] * 20
    assert Message.objects.filter(external_id="race-1").count() == 1
    assert Conversation.objects.count() == 1
    assert factories.Contact.objects.count() == 1
    outcomes = list(InboundEvent.objects.values_list("status", flat=True))
    assert outcomes.count(InboundStatus.PROCESSED) == 1
    assert outcomes.count(InboundStatus.DUPLICATE) == 19


def test_the_lean_asgi_route_serves_the_same_webhook(transactional_db):
    from loket.asgi import application

    workspace = factories.workspace()
    channel = factories.api_channel(workspace)
    body = json.dumps(delivery(message_id="asgi-1")).encode()
    headers = {
        "X-Loket-Signature": factories.signature(channel.secrets["secret"], body),
        "Content-Type": "application/json",
    }

    async def post(data: bytes, sig_headers: dict):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.post(f"/hooks/api/{channel.uuid}/", content=data, headers=sig_headers)

    ok = async_to_sync(post)(body, headers)
    assert ok.status_code == 200
    assert ok.json() == {"status": "ok"}
    bad = async_to_sync(post)(body, {**headers, "X-Loket-Signature": "t=1,v1=00"})
    assert bad.status_code == 401
    assert Message.objects.filter(external_id="asgi-1").count() == 1


def test_concurrent_deliveries_through_the_lean_route_are_all_stored(transactional_db):
    import asyncio

    from loket.asgi import application

    workspace = factories.workspace()
    channel = factories.api_channel(workspace)
    secret = channel.secrets["secret"]

    async def post_all():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:

            async def post(i):
                body = json.dumps(delivery(message_id=f"lean-{i}", contact_id=f"c{i % 3}"))
                raw = body.encode()
                headers = {"X-Loket-Signature": factories.signature(secret, raw)}
                return await c.post(f"/hooks/api/{channel.uuid}/", content=raw, headers=headers)

            return await asyncio.gather(*(post(i) for i in range(30)))

    responses = async_to_sync(post_all)()
    assert [r.status_code for r in responses] == [200] * 30
    failed = list(InboundEvent.objects.exclude(status="processed").values_list("status", "error"))
    assert not failed, failed
    assert Message.objects.filter(external_id__startswith="lean-").count() == 30
    assert Conversation.objects.count() == 3


def test_a_database_outage_is_503_so_the_provider_retries(api_channel, post_webhook, monkeypatch):
    from django.db import OperationalError

    def down(deliveries):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr("loket.inbox.services.journal.record_batch", down)
    response = post_webhook(api_channel, delivery())
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"


def test_the_lean_route_answers_503_when_storing_fails(transactional_db, monkeypatch):
    from loket.asgi import application

    def broken(admitted):
        raise RuntimeError("writer crashed")

    monkeypatch.setattr("loket.connectors.webhooks.store", broken)
    channel = factories.api_channel(factories.workspace())
    body = json.dumps(delivery(message_id="lost-1")).encode()
    headers = {"X-Loket-Signature": factories.signature(channel.secrets["secret"], body)}

    async def post():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.post(f"/hooks/api/{channel.uuid}/", content=body, headers=headers)

    response = async_to_sync(post)()
    assert response.status_code == 503
    assert not Message.objects.filter(external_id="lost-1").exists()


def test_the_same_delivery_20_times_through_the_lean_route_is_one_message(transactional_db):
    import asyncio

    from loket.asgi import application

    channel = factories.api_channel(factories.workspace())
    body = json.dumps(delivery(message_id="lean-race", contact_id="racer")).encode()
    secret = channel.secrets["secret"]

    async def post_all():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:

            async def post():
                headers = {"X-Loket-Signature": factories.signature(secret, body)}
                return await c.post(f"/hooks/api/{channel.uuid}/", content=body, headers=headers)

            return await asyncio.gather(*(post() for _ in range(20)))

    responses = async_to_sync(post_all)()
    assert [r.status_code for r in responses] == [200] * 20
    assert Message.objects.filter(external_id="lean-race").count() == 1
    assert Conversation.objects.count() == 1
    outcomes = list(InboundEvent.objects.values_list("status", flat=True))
    assert outcomes.count(InboundStatus.PROCESSED) == 1
    assert outcomes.count(InboundStatus.DUPLICATE) == 19
