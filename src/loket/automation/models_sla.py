"""SLA policies' rows (loket.automation.sla); imported by loket.automation.models.

A policy's due times live on the conversation (``inbox.Conversation.*_due_at``); these rows are
the policies themselves and, for reports, the record of every target that came close to its due
time or passed it (one row per conversation, target and due time: the unique constraint is what
makes two workers of the periodic check announce it once)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loket.tenancy.models import WorkspaceScoped, workspace_key_covered_by_indexes

__all__ = ["SlaBreach", "SlaOutcome", "SlaPolicy", "SlaTarget", "SlaWarnUnit", "SlaWarning"]


class SlaTarget(models.TextChoices):
    FIRST_RESPONSE = "first_response", _("First response")
    NEXT_RESPONSE = "next_response", _("Next response")
    RESOLUTION = "resolution", _("Resolution")


class SlaWarnUnit(models.TextChoices):
    PERCENT = "percent", _("percent of the target")
    MINUTES = "minutes", _("minutes before the due time")


class SlaPolicy(WorkspaceScoped):
    """How soon a conversation is answered and resolved, per priority.

    ``targets`` maps a priority (``"0"`` none … ``"4"`` urgent) to minutes per target, e.g.
    ``{"4": {"first_response": 15, "next_response": 30, "resolution": 240}}``; a target that is
    missing or empty does not apply. Minutes count business hours (the channel's, else the
    workspace's) or calendar time. ``channels`` empty: any channel (the default policy applies
    it to new conversations); else new conversations of those channels get this policy."""

    name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False)
    business_hours = models.BooleanField(default=True)
    targets = models.JSONField(default=dict, blank=True)
    warn_unit = models.CharField(
        max_length=8, choices=SlaWarnUnit.choices, default=SlaWarnUnit.PERCENT
    )
    warn_value = models.PositiveIntegerField(default=80)
    channels = models.ManyToManyField("inbox.Channel", blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace"], condition=Q(is_default=True), name="sla_policy_one_default"
            ),
            models.UniqueConstraint(fields=["workspace", "name"], name="sla_policy_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name

    def minutes(self, priority: int, target: str) -> int | None:
        value = (self.targets or {}).get(str(priority), {}).get(target)
        return value if isinstance(value, int) and not isinstance(value, bool) else None


class SlaBreach(WorkspaceScoped):
    """A target that passed its due time (for reports: which, when, under which policy)."""

    workspace = workspace_key_covered_by_indexes()
    conversation = models.ForeignKey(
        "inbox.Conversation", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    policy = models.ForeignKey(
        SlaPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target = models.CharField(max_length=16, choices=SlaTarget.choices)
    due_at = models.DateTimeField()
    breached_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "target", "due_at"], name="sla_breach_once"
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "-breached_at"], name="sla_breach_ws_recent"),
        ]


class SlaWarning(WorkspaceScoped):
    """A target that came close to its due time ("at risk"), announced once."""

    workspace = workspace_key_covered_by_indexes()
    conversation = models.ForeignKey(
        "inbox.Conversation", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    target = models.CharField(max_length=16, choices=SlaTarget.choices)
    due_at = models.DateTimeField()
    warned_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "target", "due_at"], name="sla_warning_once"
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "-warned_at"], name="sla_warning_ws_recent"),
        ]


class SlaOutcome(WorkspaceScoped):
    """How a target ended: met (answered or resolved by its due time) or breached, written in
    the transaction that stops it (loket.automation.sla). The SLA report counts the met ones;
    breaches it counts from ``SlaBreach`` (when the due time passed, whether or not the target
    has ended since). A response target still running when the conversation is resolved before
    its due time ends neither met nor breached, and leaves no row. Targets that ended before
    this table existed have none (no backfill)."""

    workspace = workspace_key_covered_by_indexes()
    conversation = models.ForeignKey(
        "inbox.Conversation", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    policy = models.ForeignKey(
        SlaPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target = models.CharField(max_length=16, choices=SlaTarget.choices)
    due_at = models.DateTimeField()
    completed_at = models.DateTimeField()
    met = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "target", "due_at"], name="sla_outcome_once"
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "completed_at"], name="sla_outcome_ws_completed"),
        ]
