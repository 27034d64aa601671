"""loket.db.rows: single-row SQL for the hot path, with the ORM's column names and conversions."""

from __future__ import annotations

import datetime as dt
import uuid

from django.db import connection
from django.utils import timezone

from loket.db import rows
from loket.inbox.models import Channel, ContactIdentity, Message
from tests import factories


def test_insert_prepares_values_like_the_orm(api_channel):
    result = factories.inbound(api_channel, "hi", contact_id="c")
    message = Message.objects.get(pk=result.message_id)
    when = timezone.now() - dt.timedelta(minutes=5)
    pk = rows.insert(
        Message,
        {
            "workspace_id": message.workspace_id,
            "conversation_id": message.conversation_id,
            "channel_id": api_channel.pk,
            "direction": "in",
            "kind": "message",
            "author_type": "contact",
            "text": "second",
            "html": "",
            "external_id": "raw-1",
            "status": "",
            "error": "",
            "send_attempts": 0,
            "data": {"nested": ["json", 1]},
            "sent_at": when,
            "created_at": when,
        },
    )
    stored = Message.objects.get(pk=pk)
    assert stored.data == {"nested": ["json", 1]}
    assert stored.sent_at == when
    assert stored.text == "second"


def test_on_conflict_do_nothing_returns_none(api_channel):
    factories.inbound(api_channel, contact_id="c")
    identity = ContactIdentity.objects.get()
    values = {
        "workspace_id": identity.workspace_id,
        "contact_id": identity.contact_id,
        "channel_id": api_channel.pk,
        "external_id": "c",
        "created_at": timezone.now(),
    }
    assert (
        rows.insert(ContactIdentity, values, on_conflict_do_nothing=("channel", "external_id"))
        is None
    )
    assert ContactIdentity.objects.count() == 1


def test_fields_with_their_own_preparation_are_never_passed_through(api_channel):
    # An encrypted field is a TextField subclass: it must still be encrypted.
    pk = rows.insert(
        Channel,
        {
            "workspace_id": api_channel.workspace_id,
            "uuid": uuid.uuid4(),
            "kind": "api",
            "name": "Renamed",
            "settings": {},
            "secrets": {"secret": "s3cret"},
            "is_active": True,
            "created_at": timezone.now(),
        },
    )
    channel = Channel.objects.get(pk=pk)
    assert channel.secrets == {"secret": "s3cret"} and channel.name == "Renamed"
    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets FROM inbox_channel WHERE id = %s", [pk])
        assert "s3cret" not in cursor.fetchone()[0]
