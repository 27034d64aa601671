"""Automation's rows. Every row carries its workspace; reads go through the selectors in the
module that owns the feature (canned replies: loket.automation.canned)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

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
