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
    # Sent when a conversation pending on the customer is resolved automatically after ``days``.
    CLOSING = "closing", _("Closing message when resolving automatically")


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
    # The closing kind only: resolve after this many days pending on the customer (1-90).
    days = models.PositiveSmallIntegerField(null=True, blank=True)
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


class RuleTrigger(models.TextChoices):
    CONVERSATION_CREATED = "conversation_created", _("Conversation created")
    MESSAGE_RECEIVED = "message_received", _("Message received")
    MESSAGE_SENT = "message_sent", _("Message sent")
    CONVERSATION_UPDATED = "conversation_updated", _("Conversation updated")
    # Time-based: checked by a periodic job against the database's clock, once per episode.
    UNANSWERED_FOR = "unanswered_for", _("Open and unanswered for")
    PENDING_FOR = "pending_for", _("Pending for")
    NO_CUSTOMER_REPLY_FOR = "no_customer_reply_for", _("No customer reply for")
    SLA_AT_RISK = "sla_at_risk", _("SLA about to breach")
    SLA_BREACHED = "sla_breached", _("SLA breached")


TIMED_TRIGGERS = (
    RuleTrigger.UNANSWERED_FOR,
    RuleTrigger.PENDING_FOR,
    RuleTrigger.NO_CUSTOMER_REPLY_FOR,
)


class Rule(WorkspaceScoped):
    """When ``trigger`` happens and ``conditions`` hold, do ``actions`` (loket.automation.rules).

    ``conditions``: ``{"match": "all"|"any", "conditions": [condition or group]}``, a group
    being the same shape one level down; ``actions``: a list of ``{"type": ..., ...}``. Both are
    checked against allow-lists when saved (loket.automation.rules.config)."""

    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)  # run in this order, then by id
    trigger = models.CharField(max_length=32, choices=RuleTrigger.choices)
    # For the time-based triggers: how long, in minutes.
    minutes = models.PositiveIntegerField(null=True, blank=True)
    conditions = models.JSONField(default=dict, blank=True)
    actions = models.JSONField(default=list)
    created_by = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "trigger", "position"], name="rule_ws_trigger"),
        ]

    def __str__(self) -> str:
        return self.name


class RuleRunOutcome(models.TextChoices):
    DONE = "done", _("Done")
    PARTLY = "partly", _("Partly done")
    FAILED = "failed", _("Failed")
    STOPPED = "stopped", _("Stopped by the loop guard")


class RuleRun(WorkspaceScoped):
    """One time a rule's conditions held and it acted (or the loop guard stopped it): the
    rule's history and the conversation's record of what automation did."""

    workspace = workspace_key_covered_by_indexes()
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="runs", db_index=False)
    conversation = models.ForeignKey(
        "inbox.Conversation", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    trigger = models.CharField(max_length=32)
    # Why it ran: the conditions that held, as ``[{"field", "operator", "value", "actual"}]``.
    matched = models.JSONField(default=list, blank=True)
    # What it did: ``[{"type", "ok", "detail"}]`` per action, in order.
    done = models.JSONField(default=list, blank=True)
    outcome = models.CharField(max_length=8, choices=RuleRunOutcome.choices)
    # Time-based rules: the moment the waiting began; a rule acts once per episode.
    episode = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "conversation", "episode"],
                condition=Q(episode__isnull=False),
                name="rule_run_once_per_episode",
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "rule", "-created_at"], name="rule_run_history"),
            models.Index(fields=["conversation", "created_at"], name="rule_run_conversation"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id} on {self.conversation_id}: {self.outcome}"


class Macro(WorkspaceScoped):
    """A named bundle of actions an agent runs on a conversation with one click
    (loket.automation.macros). ``actions`` is the rules' list of ``{"type": ..., ...}``, checked
    by loket.automation.rules.actions.clean when saved.

    ``owner`` empty: shared with the workspace (managed by admins); set: personal, seen and
    managed by that member alone."""

    workspace = workspace_key_covered_by_indexes()
    owner = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=200)
    actions = models.JSONField(default=list)
    created_by = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # How often it was run, and when last: the most used ones are worth keeping tidy.
    times_used = models.PositiveIntegerField(default=0)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "name"], name="macro_ws_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_shared(self) -> bool:
        return self.owner_id is None


from loket.automation.models_sla import *  # noqa: E402,F403 - SLA rows live in their own module
