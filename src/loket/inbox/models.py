"""The core domain: channels, contacts, conversations, messages, attachments, labels and the
inbound journal. Every row carries its workspace; reads go through loket.inbox.selectors."""

from __future__ import annotations

import os
import secrets
import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loket.crypto import EncryptedJSONField
from loket.tenancy.models import Membership, Team, WorkspaceScoped, workspace_key_covered_by_indexes


class Channel(WorkspaceScoped):
    """One connected account: a mailbox, a WhatsApp number, a widget, an API channel."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=32)  # a connector key from loket.connectors.registry
    name = models.CharField(max_length=200)
    # Non-secret settings, shown to admins.
    settings = models.JSONField(default=dict, blank=True)
    # Credentials and signing secrets, encrypted at rest.
    secrets = EncryptedJSONField(purpose="channel-secrets", blank=True)
    default_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL)
    # Hours of its own ({"hours", "holidays", "time_zone"}, see loket.tenancy.hours); None: the
    # workspace's.
    business_hours = models.JSONField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class Contact(WorkspaceScoped):
    workspace = workspace_key_covered_by_indexes()
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    locale = models.CharField(max_length=10, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A blocked contact's messages are still stored, but marked and never notified.
    blocked_at = models.DateTimeField(null=True, blank=True)
    # Remote images in this contact's emails load without asking (they tell the sender the
    # mail was opened, so by default an agent loads them per message).
    load_remote_images = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "email"], name="contact_ws_email"),
            models.Index(fields=["workspace", "phone"], name="contact_ws_phone"),
            models.Index(fields=["workspace", "-created_at", "-id"], name="contact_ws_recent"),
        ]

    def __str__(self) -> str:
        return self.name or self.email or self.phone or f"contact {self.pk}"

    @property
    def display_name(self) -> str:
        return str(self)


class ContactIdentity(WorkspaceScoped):
    """The same person on one channel: unique per (channel, external id)."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="identities")
    # Covered by the unique (channel, external_id) index.
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+", db_index=False)
    external_id = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"], name="identity_unique_external"
            )
        ]


class Label(WorkspaceScoped):
    name = models.CharField(max_length=64)
    color = models.CharField(max_length=7, default="#6b7280")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="label_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class ConversationStatus(models.TextChoices):
    OPEN = "open", _("Open")
    PENDING = "pending", _("Pending")
    SNOOZED = "snoozed", _("Snoozed")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")


class Priority(models.IntegerChoices):
    NONE = 0, _("None")
    LOW = 1, _("Low")
    MEDIUM = 2, _("Medium")
    HIGH = 3, _("High")
    URGENT = 4, _("Urgent")


class Conversation(WorkspaceScoped):
    workspace = workspace_key_covered_by_indexes()
    # Channel and team keys are covered by the per-channel and per-team inbox view indexes.
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="+", db_index=False)
    # Covered by the conv_thread index (contact, channel, -last_message_at).
    contact = models.ForeignKey(
        Contact, on_delete=models.PROTECT, related_name="conversations", db_index=False
    )
    number = models.PositiveBigIntegerField()
    subject = models.CharField(max_length=255, blank=True)
    status = models.CharField(
        max_length=16, choices=ConversationStatus.choices, default=ConversationStatus.OPEN
    )
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NONE)
    assignee = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    labels = models.ManyToManyField(Label, blank=True, related_name="conversations")
    language = models.CharField(max_length=10, blank=True)
    custom_attributes = models.JSONField(default=dict, blank=True)
    # Snoozed with no time: wakes when the customer replies.
    snoozed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    last_message_at = models.DateTimeField(default=timezone.now)
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    last_outbound_at = models.DateTimeField(null=True, blank=True)
    # Since when the customer waits for an answer; cleared by an agent reply.
    waiting_since = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # Set when this conversation was merged into another (its messages moved there).
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # SLA (loket.automation.sla): the policy, the due time of each running target (empty: not
    # running, met, or paused), the nearest of them and the nearest "at risk" moment (the list's
    # chip and sort), when the periodic check must look next, and when a pause (pending: the
    # customer's turn) began. ``sla_clock`` holds each target's start and paused minutes.
    sla_policy = models.ForeignKey(
        "automation.SlaPolicy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    next_response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    sla_due_at = models.DateTimeField(null=True, blank=True)
    sla_warn_at = models.DateTimeField(null=True, blank=True)
    sla_check_at = models.DateTimeField(null=True, blank=True)
    sla_paused_at = models.DateTimeField(null=True, blank=True)
    sla_clock = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "number"], name="conversation_number")
        ]
        indexes = [
            models.Index(
                fields=["workspace", "status", "-last_message_at", "-id"], name="conv_ws_status"
            ),
            models.Index(fields=["workspace", "-last_message_at", "-id"], name="conv_ws_recent"),
            models.Index(
                fields=["workspace", "assignee", "status", "-last_message_at", "-id"],
                name="conv_ws_assignee",
            ),
            models.Index(
                fields=["channel", "status", "-last_message_at", "-id"], name="conv_channel_view"
            ),
            models.Index(
                fields=["team", "status", "-last_message_at", "-id"], name="conv_team_view"
            ),
            models.Index(fields=["contact", "channel", "-last_message_at"], name="conv_thread"),
            models.Index(
                fields=["snoozed_until"],
                name="conv_snoozed",
                condition=Q(status="snoozed", snoozed_until__isnull=False),
            ),
            # The list sorted by "SLA due" (nearest first) and the periodic SLA check.
            models.Index(
                fields=["workspace", "status", "sla_due_at", "id"],
                name="conv_ws_sla_due",
                condition=Q(sla_due_at__isnull=False),
            ),
            models.Index(
                fields=["sla_check_at"],
                name="conv_sla_check",
                condition=Q(sla_check_at__isnull=False),
            ),
            models.Index(
                fields=["sla_policy"],
                name="conv_sla_policy",
                condition=Q(sla_policy__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.number}"


class Direction(models.TextChoices):
    INBOUND = "in", _("Inbound")
    OUTBOUND = "out", _("Outbound")


class MessageKind(models.TextChoices):
    MESSAGE = "message", _("Message")
    NOTE = "note", _("Internal note")
    ACTIVITY = "activity", _("Activity")


class AuthorType(models.TextChoices):
    CONTACT = "contact", _("Contact")
    MEMBER = "member", _("Member")
    BOT = "bot", _("Bot")
    SYSTEM = "system", _("System")


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    READ = "read", _("Read")
    FAILED = "failed", _("Failed")


# Delivery statuses only move forward along this order; "failed" is possible until delivery.
DELIVERY_RANK = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENDING: 1,
    DeliveryStatus.SENT: 2,
    DeliveryStatus.FAILED: 2,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.READ: 4,
}


class Message(WorkspaceScoped):
    # Covered by the message_timeline index (conversation, created_at, id).
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    # Denormalised from the conversation so (channel, external_id) can be unique.
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="+")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    kind = models.CharField(max_length=10, choices=MessageKind.choices, default=MessageKind.MESSAGE)
    author_type = models.CharField(max_length=10, choices=AuthorType.choices)
    author_member = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)  # always sanitised before it is stored
    # The provider's id of this message (inbound: the sender's id; outbound: set after sending),
    # unique per channel and direction.
    external_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 - NULL: not unique-checked
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, blank=True)
    error = models.TextField(blank=True)
    send_attempts = models.PositiveIntegerField(default=0)
    # Activity details, provider extras, etc.
    data = models.JSONField(default=dict, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)  # when the sender says it was sent
    created_at = models.DateTimeField(default=timezone.now)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Per direction: a provider's id for a message it sent us and the id of a message
            # we sent through it are different namespaces (an integrator may reuse one).
            models.UniqueConstraint(
                fields=["channel", "direction", "external_id"],
                condition=Q(external_id__isnull=False),
                name="message_unique_external",
            )
        ]
        indexes = [
            models.Index(fields=["conversation", "created_at", "id"], name="message_timeline"),
        ]

    def __str__(self) -> str:
        return f"message {self.pk} ({self.direction}/{self.kind})"

    @property
    def is_customer_visible(self) -> bool:
        return self.kind == MessageKind.MESSAGE


def attachment_key(instance: Attachment, filename: str) -> str:
    # Random keys: the stored path never derives from a name an outsider chose.
    ext = os.path.splitext(filename)[1].lower()[:10]
    ext = ext if ext[1:].isalnum() else ""
    return (
        f"attachments/{instance.workspace_id}/{secrets.token_hex(2)}/{secrets.token_hex(16)}{ext}"
    )


class AttachmentStatus(models.TextChoices):
    PENDING = "pending", _("Downloading")
    STORED = "stored", _("Stored")
    FAILED = "failed", _("Failed")


class Attachment(WorkspaceScoped):
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_key, max_length=255, blank=True)
    filename = models.CharField(max_length=255)  # metadata only, never a path
    content_type = models.CharField(max_length=127, default="application/octet-stream")
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    source_url = models.URLField(max_length=2000, blank=True)
    # Or the provider's media reference, resolved through the channel's connector.
    source_ref = models.CharField(max_length=255, blank=True)
    # An email part's Content-ID: the message's HTML shows it where it says cid:<content_id>.
    content_id = models.CharField(max_length=255, blank=True)
    inline = models.BooleanField(default=False)  # part of the body, not a download
    status = models.CharField(
        max_length=10, choices=AttachmentStatus.choices, default=AttachmentStatus.STORED
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.filename


class MessageTemplate(WorkspaceScoped):
    """A pre-approved message a channel's provider allows outside the reply window (WhatsApp
    message templates), synced from the provider. ``components`` is the provider's definition
    (header, body with {{1}}-style variables, footer, buttons), kept as given."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+", db_index=False)
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=16)
    category = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=32, blank=True)  # APPROVED, PENDING, REJECTED, ...
    external_id = models.CharField(max_length=64, blank=True)
    components = models.JSONField(default=list, blank=True)
    synced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "name", "language"], name="template_unique_name"
            )
        ]
        ordering = ["name", "language"]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"


class InboundStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    PROCESSED = "processed", _("Processed")
    DUPLICATE = "duplicate", _("Duplicate")
    IGNORED = "ignored", _("Ignored")
    FAILED = "failed", _("Failed")


class InboundEvent(WorkspaceScoped):
    """The inbound journal: every verified delivery, raw, committed before it is acknowledged."""

    workspace = workspace_key_covered_by_indexes()
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(
        max_length=10, choices=InboundStatus.choices, default=InboundStatus.RECEIVED
    )
    payload = models.BinaryField()
    content_type = models.CharField(max_length=127, blank=True)
    # Request metadata a connector needs to re-parse the payload (never auth secrets).
    meta = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "status", "-received_at"], name="inbound_ws_status"),
        ]


class SavedView(WorkspaceScoped):
    """A named inbox filter: personal (``owner`` set) or shared with the workspace. ``filters``
    holds only allow-listed fields and operators (loket.web.views_filters)."""

    owner = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=100)
    filters = models.JSONField(default=list, blank=True)
    sort = models.CharField(max_length=20, default="recent")
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.name


class NotificationKind(models.TextChoices):
    MENTION = "mention", _("Mention")
    ASSIGNED = "assigned", _("Assigned")
    MESSAGE = "message", _("New message")
    SLA = "sla", _("SLA")


class Notification(WorkspaceScoped):
    recipient = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=NotificationKind.choices)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    actor = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["recipient", "read_at", "-created_at"], name="notification_inbox")
        ]


class Draft(WorkspaceScoped):
    """What an agent has typed but not sent, per conversation (kept across devices)."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=MessageKind.choices, default=MessageKind.MESSAGE)
    text = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["membership", "conversation"], name="draft_unique")
        ]


class ContactMerge(WorkspaceScoped):
    """One contact merged into another; ``moved`` lists what moved so it can be undone."""

    source = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    target = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    moved = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    undone_at = models.DateTimeField(null=True, blank=True)


class ConversationMerge(WorkspaceScoped):
    """One conversation merged into another of the same contact; undoable from ``moved``."""

    source = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    target = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    moved = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    undone_at = models.DateTimeField(null=True, blank=True)


class SatisfactionRating(WorkspaceScoped):
    """A customer's rating of a resolved conversation (CSAT): one per conversation, which the
    customer may change for a while (LOKET_CSAT_CHANGE_HOURS)."""

    conversation = models.OneToOneField(
        Conversation, on_delete=models.CASCADE, related_name="satisfaction"
    )
    rating = models.PositiveSmallIntegerField()  # 1 (very unhappy) to 5 (very happy)
    comment = models.TextField(blank=True)
    source = models.CharField(max_length=32, blank=True)  # the channel kind it was given on
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.rating}/5 for conversation {self.conversation_id}"
