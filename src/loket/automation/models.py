"""Automation's rows. Every row carries its workspace; reads go through the selectors in the
module that owns the feature (canned replies: loket.automation.canned)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loket.tenancy.models import Membership, WorkspaceScoped, workspace_key_covered_by_indexes

SHORTCUT_MAX_LENGTH = 32


class CannedReply(WorkspaceScoped):
    """A saved answer an agent inserts by typing ``/shortcut`` in the composer.

    ``owner`` empty: shared with the whole workspace (managed by admins); set: personal, seen
    and managed by that member alone. The body is plain text with ``{{variables}}`` from an
    allow-list (loket.automation.canned), filled in for one conversation when it is used.
    """

    workspace = workspace_key_covered_by_indexes()
    owner = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # Lower-case letters, digits, "-" and "_" (validated by the service).
    shortcut = models.CharField(max_length=SHORTCUT_MAX_LENGTH)
    title = models.CharField(max_length=200)
    # A language code ("en", "nl", "pt-br"); empty: for any language.
    language = models.CharField(max_length=10, blank=True)
    body = models.TextField()
    created_by = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "shortcut"],
                condition=Q(owner__isnull=True),
                name="canned_reply_unique_shared",
            ),
            models.UniqueConstraint(
                fields=["owner", "shortcut"],
                condition=Q(owner__isnull=False),
                name="canned_reply_unique_personal",
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "shortcut"], name="canned_reply_ws_shortcut"),
        ]

    def __str__(self) -> str:
        return f"/{self.shortcut}"

    @property
    def is_shared(self) -> bool:
        return self.owner_id is None


class AutoReplyKind(models.TextChoices):
    GREETING = "greeting", _("Greeting on a new conversation")
    AWAY = "away", _("Away message outside business hours")


class AutoReply(WorkspaceScoped):
    """An automatic answer to a customer's message (loket.automation.autoreplies): for every
    channel of the workspace (``channel`` empty) or one channel, which then wins."""

    kind = models.CharField(max_length=16, choices=AutoReplyKind.choices)
    channel = models.ForeignKey(
        "inbox.Channel", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    enabled = models.BooleanField(default=True)
    # Plain text with the canned replies' {{variables}} (loket.automation.canned.render_text).
    body = models.TextField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "kind"],
                condition=Q(channel__isnull=True),
                name="autoreply_unique_workspace_kind",
            ),
            models.UniqueConstraint(
                fields=["workspace", "kind", "channel"],
                condition=Q(channel__isnull=False),
                name="autoreply_unique_channel_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} auto-reply"
from loket.automation.models_sla import *  # noqa: E402,F403 - SLA rows live in their own module
