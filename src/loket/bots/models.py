"""The flow bot's rows: flows, their published versions, and one bot session per conversation
the bot is talking in. Every row carries its workspace."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loket.tenancy.models import Membership, WorkspaceScoped, workspace_key_covered_by_indexes


class FlowTrigger(models.TextChoices):
    NEW_CONVERSATION = "new_conversation", _("A new conversation")
    KEYWORD = "keyword", _("A keyword in the customer's message")
    OUTSIDE_HOURS = "outside_hours", _("A new conversation outside business hours")
    MANUAL = "manual", _("Only when a rule or macro starts it")


class Flow(WorkspaceScoped):
    """A bot flow: the draft being edited, and the version customers talk to (``published``).
    Publishing stores a new ``FlowVersion``; sessions keep the version they started on."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=False)
    trigger = models.CharField(
        max_length=20, choices=FlowTrigger.choices, default=FlowTrigger.NEW_CONVERSATION
    )
    keywords = models.JSONField(default=list, blank=True)  # for the keyword trigger
    # The channels it talks on; none: every channel of the workspace.
    channels = models.ManyToManyField("inbox.Channel", blank=True, related_name="+")
    # Words that always reach a human, whatever the step ("agent", "medewerker").
    handoff_words = models.JSONField(default=list, blank=True)
    draft = models.JSONField(default=dict, blank=True)
    published = models.ForeignKey(
        "FlowVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class FlowVersion(WorkspaceScoped):
    """A published, immutable definition (loket.bots.definition has its schema)."""

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    published_by = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["flow", "number"], name="flow_version_number"),
        ]

    def __str__(self) -> str:
        return f"{self.flow_id} v{self.number}"


class SessionState(models.TextChoices):
    ACTIVE = "active", _("Talking")
    COMPLETED = "completed", _("Completed")
    HANDED_OFF = "handed_off", _("Handed to a person")
    DROPPED = "dropped", _("Dropped (the customer went quiet)")
    STOPPED = "stopped", _("Stopped (an agent took over)")


class BotSession(WorkspaceScoped):
    """The bot talking in one conversation, on one flow version: where it is, what it has
    collected. Survives restarts: every turn is one transaction on this row."""

    workspace = workspace_key_covered_by_indexes()
    # related_name: the auto-assigner leaves conversations the bot is talking in alone.
    conversation = models.ForeignKey(
        "inbox.Conversation", on_delete=models.CASCADE, related_name="bot_sessions"
    )
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="sessions")
    version = models.ForeignKey(FlowVersion, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=12, choices=SessionState.choices, default="active")
    step = models.CharField(max_length=64)  # the step it is at (waiting for an answer there)
    waiting = models.BooleanField(default=False)  # asked, waiting for the customer's answer
    # Stopped before a step that calls out (an HTTP lookup, a file to fetch): the ``bot_fetch``
    # job calls out with no transaction open and goes on from here (loket.bots.engine).
    fetching = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)  # invalid answers at this step
    variables = models.JSONField(default=dict, blank=True)
    path = models.JSONField(default=list, blank=True)  # the steps taken, in order
    # The last customer message handled: a message is answered once, in order.
    last_message_id = models.BigIntegerField(null=True, blank=True)
    timeout_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation"],
                condition=Q(state="active"),
                name="bot_session_one_active",
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "flow", "state"], name="bot_session_flow_state"),
            models.Index(
                fields=["timeout_at"],
                condition=Q(state="active", timeout_at__isnull=False),
                name="bot_session_timeouts",
            ),
        ]

    def __str__(self) -> str:
        return f"bot in {self.conversation_id} at {self.step} ({self.state})"
