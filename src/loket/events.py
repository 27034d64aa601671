"""Typed domain events, emitted on commit.

Services call ``emit(event)`` inside their transaction; after a successful commit every subscriber
in ``settings.LOKET_EVENT_SUBSCRIBERS`` (the one list of them) is called with the event. A rolled
back transaction emits nothing. Every event carries its actor so automation can ignore what it
caused itself.

Follow-up work that must not be lost (automation's background jobs) is enqueued instead by the
functions in ``settings.LOKET_EVENT_ENQUEUERS``, called by ``emit`` itself, inside the caller's
transaction: the jobs commit with the data they act on, or not at all, and cost no commit of
their own. They only decide and enqueue; anything slow belongs in the job.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    type: str  # contact | member | bot | system | rule
    id: int | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls("system")


@dataclass(frozen=True)
class Event:
    name: str = field(init=False, default="event")
    workspace_id: int
    actor: Actor

    def as_dict(self) -> dict[str, Any]:
        # Shallow on purpose (dataclasses.asdict deep-copies, and this runs for every message).
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["actor"] = {"type": self.actor.type, "id": self.actor.id}
        return data


@dataclass(frozen=True)
class MessageCreated(Event):
    name: str = field(init=False, default="message.created")
    conversation_id: int
    message_id: int
    kind: str
    direction: str


@dataclass(frozen=True)
class MessageStatusChanged(Event):
    name: str = field(init=False, default="message.status_changed")
    conversation_id: int
    message_id: int
    status: str
    error: str = ""


@dataclass(frozen=True)
class MessageUpdated(Event):
    """A stored message changed: a reaction, the customer's edit or deletion, media stored."""

    name: str = field(init=False, default="message.updated")
    conversation_id: int
    message_id: int
    changes: dict[str, Any]


@dataclass(frozen=True)
class ConversationCreated(Event):
    name: str = field(init=False, default="conversation.created")
    conversation_id: int


@dataclass(frozen=True)
class ConversationUpdated(Event):
    name: str = field(init=False, default="conversation.updated")
    conversation_id: int
    changes: dict[str, Any]


@dataclass(frozen=True)
class SlaChanged(Event):
    """A conversation's SLA target came close to its due time (``state="at_risk"``) or passed it
    (``"breached"``); ``target`` is ``first_response``, ``next_response`` or ``resolution``."""

    name: str = field(init=False, default="conversation.sla")
    conversation_id: int
    target: str
    state: str
    due_at: str  # ISO 8601


@functools.cache
def _subscribers() -> list:
    return [import_string(path) for path in settings.LOKET_EVENT_SUBSCRIBERS]


def _deliver(event: Event) -> None:
    for subscriber in _subscribers():
        try:
            subscriber(event)
        except Exception:  # one failing subscriber must not starve the others
            log.exception("event subscriber %r failed for %s", subscriber, event.name)


@functools.cache
def _enqueuers() -> list:
    return [import_string(path) for path in settings.LOKET_EVENT_ENQUEUERS]


def emit(event: Event) -> None:
    for enqueue in _enqueuers():
        try:
            enqueue(event)
        except DatabaseError:
            raise  # the transaction is broken: the caller's work fails with it, as it must
        except Exception:  # a bug in one enqueuer must not stop the data from being stored
            log.exception("event enqueuer %r failed for %s", enqueue, event.name)
    transaction.on_commit(lambda: _deliver(event))
