"""The inbound journal: a verified delivery is stored raw and processed in the same transaction.

``record``: parse + receive() run in a savepoint and the journal row is written with the
outcome, so one inbound message costs one commit. If processing raises, the savepoint is rolled
back and the row is kept as ``failed`` with the error and a replay task is enqueued; the
delivery is still acknowledged because it is stored. A payload that cannot be parsed is kept as
``failed`` too and answered 400.

``record_batch`` (the webhook routes) stores one or more deliveries in one commit without
savepoints, and falls back to ``record`` per delivery when processing any of them raises.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError, transaction
from django.utils import timezone

from loket.db import rows
from loket.inbox import ports, tasks
from loket.inbox.models import Channel, InboundEvent, InboundStatus
from loket.inbox.services.ingest import ReceiveResult, receive

log = logging.getLogger(__name__)


@dataclass
class JournalOutcome:
    event_id: int
    status: str
    error: str = ""
    bad_payload: bool = False
    results: list[ReceiveResult] = field(default_factory=list)


def _process(channel: Channel, body: bytes, meta: dict[str, Any]) -> list[ReceiveResult]:
    items = ports.connector_for(channel.kind).parse(channel, body, meta)
    return [receive(channel, item) for item in items]


def _summarise(results: list[ReceiveResult]) -> tuple[str, dict[str, Any]]:
    outcomes = [r.outcome for r in results]
    summary = {
        "outcomes": outcomes,
        "message_ids": [r.message_id for r in results if r.outcome == "created"],
    }
    if any(r.needs_retry for r in results):
        return InboundStatus.FAILED, summary
    if not results or all(o in ("ignored", "target_unknown") for o in outcomes):
        return InboundStatus.IGNORED, summary
    if all(o in ("duplicate", "ignored", "status_stale", "target_unknown") for o in outcomes):
        return InboundStatus.DUPLICATE, summary
    return InboundStatus.PROCESSED, summary


@dataclass(frozen=True)
class Delivery:
    """One verified inbound request, as the journal stores it."""

    channel: Channel
    body: bytes
    meta: dict[str, Any]
    content_type: str = ""


def record(
    channel: Channel,
    body: bytes,
    meta: dict[str, Any],
    *,
    content_type: str = "",
    also: Callable[[JournalOutcome], None] | None = None,
) -> JournalOutcome:
    """Journal and process one verified delivery. Returns once it is committed. ``also`` runs
    in the same transaction after the journal row is written (e.g. a mailbox poller saving how
    far it has read, so the position and the mail commit together)."""
    delivery = Delivery(channel, body, meta, content_type)
    attempt = 1
    while True:
        last = attempt == TRANSIENT_ATTEMPTS
        try:
            with transaction.atomic(durable=True):  # a 200 must mean committed, never "nested"
                outcome = _record(delivery, guarded=True, last=last)
                if also is not None:
                    also(outcome)
                return outcome
        except DatabaseError as exc:
            if last or not _transient(exc):
                raise
            # Another transaction held what this one needed (e.g. two deliveries starting
            # conversations in one workspace): PostgreSQL chose this one to give way. The
            # whole transaction is rolled back; doing it again is safe and usually succeeds.
            log.info("delivery on channel %s: %s; trying again", channel.pk, type(exc).__name__)
            time.sleep(0.01 * attempt)
            attempt += 1


TRANSIENT_ATTEMPTS = 3
_TRANSIENT_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure


def _transient(exc: BaseException) -> bool:
    cause = exc.__cause__ or exc
    return getattr(cause, "sqlstate", None) in _TRANSIENT_SQLSTATES


def record_batch(deliveries: list[Delivery]) -> list[JournalOutcome]:
    """Journal and process one or more deliveries in one transaction (group commit).

    The happy path has no savepoints: if processing any delivery raises, the whole batch is
    rolled back and each delivery is recorded on its own with ``record()``, whose savepoint
    keeps a failing one as a failed journal row. Returns once everything is committed.
    """
    try:
        with transaction.atomic(durable=True):
            return [_record(delivery, guarded=False) for delivery in deliveries]
    except Exception:
        log.info("a batch of %d deliveries failed; recording them one by one", len(deliveries))
        return [record(d.channel, d.body, d.meta, content_type=d.content_type) for d in deliveries]


def _record(delivery: Delivery, *, guarded: bool, last: bool = True) -> JournalOutcome:
    """Process and journal one delivery inside the caller's transaction. ``guarded``: in a
    savepoint, so a processing error is kept as a failed row instead of raised; a deadlock is
    raised unless this is the ``last`` attempt, so the caller can run the transaction again."""
    channel = delivery.channel
    retry = False
    error = ""
    bad = False
    results: list[ReceiveResult] = []
    try:
        if guarded:
            with transaction.atomic():
                results = _process(channel, delivery.body, delivery.meta)
        else:
            results = _process(channel, delivery.body, delivery.meta)
        status, summary = _summarise(results)
        if status == InboundStatus.FAILED:
            error = "a status report names a message that is not known (yet); retrying"
            retry = True
    except ports.BadPayload as exc:  # raised by parse(), before anything was written
        status, summary, error, bad = InboundStatus.FAILED, {}, str(exc), True
    except Exception as exc:
        if not guarded or (not last and _transient(exc)):
            raise
        log.exception("processing an inbound delivery on channel %s failed", channel.pk)
        status, summary, retry = InboundStatus.FAILED, {}, True
        error = f"{type(exc).__name__}: {exc}"
    now = timezone.now()
    event_id = rows.insert(
        InboundEvent,
        {
            "workspace_id": channel.workspace_id,
            "channel_id": channel.pk,
            "status": status,
            "payload": delivery.body,
            "content_type": delivery.content_type[:127],
            "meta": delivery.meta,
            "result": summary,
            "error": error[:5000],
            "attempts": 1,
            "received_at": now,
            "processed_at": now if status != InboundStatus.FAILED else None,
        },
    )
    if retry:
        tasks.replay_inbound_event.enqueue(event_id)
    return JournalOutcome(event_id, status, error, bad, results)


def replay(event_id: int) -> str:
    """Process a failed journal row again (a worker's retry, or an operator's replay)."""
    from loket.jobs.policy import RetryLater

    with transaction.atomic():
        event = (
            InboundEvent.objects.select_for_update()
            .select_related("channel")
            .filter(pk=event_id)
            .first()
        )
        if event is None or event.status != InboundStatus.FAILED:
            return event.status if event else "missing"
        event.attempts += 1
        try:
            with transaction.atomic():
                results = _process(event.channel, bytes(event.payload), event.meta)
        except ports.BadPayload as exc:
            event.error = str(exc)[:5000]
            event.save(update_fields=["attempts", "error"])
            return event.status
        except Exception as exc:
            event.error = f"{type(exc).__name__}: {exc}"[:5000]
            event.save(update_fields=["attempts", "error"])
            retry_error = exc
        else:
            retry_error = None
            status, summary = _summarise(results)
            event.status, event.result = status, summary
            if status != InboundStatus.FAILED:
                event.error, event.processed_at = "", timezone.now()
            event.save(update_fields=["attempts", "status", "result", "error", "processed_at"])
    if retry_error is not None:
        raise RetryLater(event.error) from retry_error
    if event.status == InboundStatus.FAILED:
        raise RetryLater(event.error or "still unmatched")
    return event.status


def replay_now(event: InboundEvent) -> InboundEvent:
    """An operator's replay of a failed row: process once now, report the outcome."""
    from loket.jobs.policy import RetryLater

    try:
        replay(event.pk)
    except RetryLater:
        pass
    event.refresh_from_db()
    return event
