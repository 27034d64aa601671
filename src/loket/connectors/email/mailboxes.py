"""Reading IMAP mailboxes: one poller thread per active IMAP email channel, under a lease.

The supervisor runs as a background service (``loket.jobs.services``) in every ``loket worker``
and in the in-process workers of ``loket serve``. Each mailbox is read by whichever process holds
its lease (a row in ``connectors_mailbox``, renewed while the poller lives), so several worker
processes never read one mailbox twice over. Every fetched mail is journaled together with the
new reading position in one transaction, and only then marked on the server (see imap.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections
from django.db.models import F, Q
from django.utils import timezone

from loket.connectors.email import imap
from loket.connectors.models import Mailbox
from loket.inbox.models import Channel
from loket.inbox.services import journal

log = logging.getLogger(__name__)

HOLDER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_seconds() -> float:
    return settings.LOKET_MAILBOX_LEASE_SECONDS


def acquire(channel_id: int, holder: str = HOLDER) -> bool:
    """Take or renew a mailbox's lease; False when another live process holds it."""
    now = timezone.now()
    Mailbox.objects.get_or_create(channel_id=channel_id)
    return bool(
        Mailbox.objects.filter(channel_id=channel_id)
        .filter(Q(holder=holder) | Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(holder=holder, lease_until=now + dt.timedelta(seconds=lease_seconds()))
    )


def release(channel_id: int, holder: str = HOLDER) -> None:
    Mailbox.objects.filter(channel_id=channel_id, holder=holder).update(holder="", lease_until=None)


def store(channel: Channel, uid: int, raw: bytes, state: imap.MailboxState) -> None:
    """Journal one fetched mail and the reading position after it, in one transaction."""

    def advance(outcome) -> None:
        moved = Mailbox.objects.filter(channel_id=channel.pk).update(
            uidvalidity=state.uidvalidity,
            last_uid=state.last_uid,
            stored=F("stored") + 1,
            last_checked_at=timezone.now(),
        )
        if not moved:  # read before any lease was taken (a one-off poll)
            Mailbox.objects.create(
                channel_id=channel.pk,
                uidvalidity=state.uidvalidity,
                last_uid=state.last_uid,
                stored=1,
                last_checked_at=timezone.now(),
            )

    journal.record(
        channel,
        raw,
        {"source": "imap", "uid": uid, "uidvalidity": state.uidvalidity},
        content_type="message/rfc822",
        also=advance,
    )


def load_state(channel_id: int) -> imap.MailboxState:
    row = Mailbox.objects.filter(channel_id=channel_id).values("uidvalidity", "last_uid").first()
    return imap.MailboxState(**row) if row else imap.MailboxState()


def record_error(channel_id: int, error: Exception) -> None:
    Mailbox.objects.filter(channel_id=channel_id).update(
        last_error=str(error)[:2000], last_error_at=timezone.now()
    )


@dataclass
class _Running:
    thread: threading.Thread
    stop: threading.Event
    signature: tuple  # the settings it was started with: a change restarts it


def _imap_channels() -> list[Channel]:
    return [
        channel
        for channel in Channel.objects.filter(kind="email", is_active=True)
        if channel.settings.get("inbound") == "imap" and channel.settings.get("imap_host")
    ]


def _signature(channel: Channel) -> tuple:
    return (repr(sorted(channel.settings.items())), repr(sorted(channel.secrets.items())))


class Supervisor:
    """Starts, renews and stops the mailbox pollers of this process."""

    def __init__(self, stop: threading.Event, *, holder: str = HOLDER) -> None:
        self.stop = stop
        self.holder = holder
        self.running: dict[int, _Running] = {}

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    self.step()
                except Exception:
                    log.exception("the mailbox supervisor failed a round; trying again")
                finally:
                    close_old_connections()
                self.stop.wait(settings.LOKET_MAILBOX_RESCAN_SECONDS)
        finally:
            for channel_id in list(self.running):
                self._stop(channel_id)

    def step(self) -> None:
        wanted = {channel.pk: channel for channel in _imap_channels()}
        for channel_id in list(self.running):
            running = self.running[channel_id]
            channel = wanted.get(channel_id)
            if (
                channel is None
                or not running.thread.is_alive()
                or running.signature != _signature(channel)
                or not acquire(channel_id, self.holder)  # renews a lease we hold
            ):
                self._stop(channel_id)
        for channel_id, channel in wanted.items():
            if channel_id not in self.running and acquire(channel_id, self.holder):
                self._start(channel)

    def _start(self, channel: Channel) -> None:
        from loket.connectors.registry import get_connector

        connector = get_connector("email")
        stop = threading.Event()
        poller = imap.MailboxPoller(
            lambda: connector.imap_settings(_fresh(channel.pk)),
            lambda: load_state(channel.pk),
            lambda uid, raw, state: store(channel, uid, raw, state),
            idle_timeout=settings.LOKET_MAILBOX_IDLE_SECONDS,
            poll_interval=settings.LOKET_MAILBOX_POLL_SECONDS,
            stop=stop,
            on_error=lambda error: record_error(channel.pk, error),
        )

        def run() -> None:
            try:
                poller.run()
            finally:
                close_old_connections()

        thread = threading.Thread(target=run, name=f"loket-imap-{channel.pk}", daemon=True)
        self.running[channel.pk] = _Running(thread, stop, _signature(channel))
        thread.start()
        log.info("reading mailbox of channel %s (%s)", channel.pk, channel.name)

    def _stop(self, channel_id: int) -> None:
        running = self.running.pop(channel_id)
        running.stop.set()
        running.thread.join(timeout=10)
        try:
            release(channel_id, self.holder)
        except Exception:  # the lease simply runs out
            log.warning("releasing the lease of mailbox %s failed", channel_id)


def _fresh(channel_id: int) -> Channel:
    return Channel.objects.get(pk=channel_id)


def run_supervisor(stop: threading.Event) -> None:
    if settings.LOKET_MAILBOX_POLLING:
        Supervisor(stop).run()
