"""Group commit: several deliveries in one transaction, and what happens when one fails."""

from __future__ import annotations

import json

from django.db import connection
from django.test.utils import CaptureQueriesContext

from loket.inbox.models import InboundEvent, InboundStatus, Message
from loket.inbox.services import journal


def delivery(channel, message_id, text="hello", contact_id="c"):
    body = json.dumps({"id": message_id, "contact": {"id": contact_id}, "text": text}).encode()
    return journal.Delivery(channel, body, {}, "application/json")


def test_a_batch_is_stored_in_one_transaction(api_channel):
    batch = [delivery(api_channel, f"m{i}", contact_id=f"c{i % 2}") for i in range(4)]
    with CaptureQueriesContext(connection) as queries:
        outcomes = journal.record_batch(batch)
    assert [o.status for o in outcomes] == [InboundStatus.PROCESSED] * 4
    assert Message.objects.count() == 4
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    # One for the batch itself (nested in the test's transaction here), none per delivery.
    assert statements.count("SAVEPOINT") == 1
    assert InboundEvent.objects.count() == 4


def test_a_failing_delivery_does_not_lose_the_others(api_channel, monkeypatch):
    from loket.inbox.services import ingest

    real = ingest.receive

    def receive(channel, item):
        if item.text == "boom":
            raise RuntimeError("processing bug")
        return real(channel, item)

    monkeypatch.setattr(journal, "receive", receive)
    batch = [
        delivery(api_channel, "ok-1"),
        delivery(api_channel, "bad", text="boom"),
        delivery(api_channel, "ok-2"),
        journal.Delivery(api_channel, b"{not json", {}, "application/json"),
    ]
    outcomes = journal.record_batch(batch)
    assert [o.status for o in outcomes] == [
        InboundStatus.PROCESSED,
        InboundStatus.FAILED,
        InboundStatus.PROCESSED,
        InboundStatus.FAILED,
    ]
    assert outcomes[3].bad_payload and not outcomes[1].bad_payload
    assert sorted(Message.objects.values_list("external_id", flat=True)) == ["ok-1", "ok-2"]
    failed = InboundEvent.objects.get(status=InboundStatus.FAILED, error__contains="bug")
    assert json.loads(bytes(failed.payload))["id"] == "bad"  # kept, to be replayed
    assert InboundEvent.objects.count() == 4


def test_a_deadlock_is_tried_again_instead_of_journaled_as_failed(api_channel, monkeypatch):
    """PostgreSQL breaks a deadlock by failing one transaction: that delivery runs again."""
    from django.db import OperationalError

    from loket.inbox.models import InboundEvent, InboundStatus, Message
    from loket.inbox.services import journal

    class Deadlock(Exception):
        sqlstate = "40P01"

    real = journal._process
    calls = []

    def flaky(channel, body, meta):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("deadlock detected") from Deadlock()
        return real(channel, body, meta)

    monkeypatch.setattr(journal, "_process", flaky)
    body = b'{"id": "m-deadlock", "contact": {"id": "c-1"}, "text": "hi"}'
    outcome = journal.record(api_channel, body, {})
    assert len(calls) == 2 and outcome.status == InboundStatus.PROCESSED
    assert InboundEvent.objects.filter(channel=api_channel).count() == 1
    assert Message.objects.filter(external_id="m-deadlock").count() == 1
