"""Connector state kept in the database (credentials live in the channel's encrypted secrets)."""

from __future__ import annotations

from django.db import models

from loket.inbox.models import Channel


class Mailbox(models.Model):
    """An IMAP channel's reading position and poller lease.

    ``last_uid`` is saved in the transaction that journals the mail with that UID, so after a
    crash the poller resumes right after the last committed mail (anything fetched but not
    committed is fetched again; the journal's dedupe by Message-ID keeps it stored once).
    The lease (``holder`` until ``lease_until``) lets any number of worker processes run the
    poller service while only one reads each mailbox.
    """

    channel = models.OneToOneField(
        Channel, on_delete=models.CASCADE, primary_key=True, related_name="mailbox"
    )
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    last_uid = models.BigIntegerField(default=0)
    holder = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    stored = models.PositiveBigIntegerField(default=0)  # mails journaled from this mailbox
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"mailbox of channel {self.channel_id}"

    @property
    def error_is_current(self) -> bool:
        """An error since the last successful read."""
        if not self.last_error or self.last_error_at is None:
            return False
        return self.last_checked_at is None or self.last_error_at >= self.last_checked_at
