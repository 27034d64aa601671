"""Mail handed to ``loket smtpd``: which channels take a recipient, and storing what arrives.

A channel with ``inbound = "forward"`` takes mail for its forwarding address
(``<channel uuid>@LOKET_SMTPD_DOMAIN``) and for its own address, with or without a ``+token``
(the per-conversation reply address). The receiver answers 250 only after ``store`` returned,
that is after the raw mail is committed to the journal of every channel it was addressed to.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db import close_old_connections

from loket.inbox.models import Channel
from loket.inbox.services import journal

_REFRESH_SECONDS = 15.0


def _base(address: str) -> str:
    """``local@domain`` without a ``+tag``, lowercased."""
    address = address.strip().lower()
    if "@" not in address:
        return address
    local, domain = address.rsplit("@", 1)
    return f"{local.split('+', 1)[0]}@{domain}"


class Recipients:
    """Addresses → channel ids, reloaded every few seconds (channels change rarely)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded_at = 0.0
        self._map: dict[str, list[int]] = {}

    def _load(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for channel in Channel.objects.filter(kind="email", is_active=True):
            if channel.settings.get("inbound") != "forward":
                continue
            for address in (
                f"{channel.uuid.hex}@{settings.LOKET_SMTPD_DOMAIN}",
                channel.settings.get("address", ""),
            ):
                if address:
                    found.setdefault(_base(address), []).append(channel.pk)
        return found

    def channels_for(self, address: str) -> list[int]:
        with self._lock:
            if time.monotonic() - self._loaded_at > _REFRESH_SECONDS:
                try:
                    self._map = self._load()
                finally:
                    close_old_connections()
                self._loaded_at = time.monotonic()
            return list(self._map.get(_base(address), ()))

    def accepts(self, address: str) -> bool:
        return bool(self.channels_for(address))


def store(recipients: Recipients, mail) -> list[int]:
    """Journal ``mail`` (a smtpd.ReceivedMail) once per channel it is addressed to; returns the
    journal row ids. Raises on a database error, so the sender is told to try again later."""
    try:
        channel_ids = []
        for recipient in mail.recipients:
            for channel_id in recipients.channels_for(recipient):
                if channel_id not in channel_ids:
                    channel_ids.append(channel_id)
        events = []
        for channel in Channel.objects.filter(pk__in=channel_ids):
            outcome = journal.record(
                channel,
                mail.raw,
                {"source": "smtp", "recipients": list(mail.recipients), "peer": mail.peer},
                content_type="message/rfc822",
            )
            events.append(outcome.event_id)
        return events
    finally:
        close_old_connections()
