"""Tenancy: users, workspaces (the tenant), memberships, teams and API tokens."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields):
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields):
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    locale = models.CharField(max_length=10, blank=True)
    # Per-user UI preferences (browser notifications, sounds); keys in loket.web.preferences.
    preferences = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.name or self.email

    def get_short_name(self) -> str:
        return (self.name or self.email).split(" ")[0]


def default_languages() -> list[str]:
    return ["en", "nl"]


class Workspace(models.Model):
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="UTC")
    locale = models.CharField(max_length=10, default="en")
    # The languages its customers write in: language detection chooses among these.
    languages = models.JSONField(default=default_languages, blank=True)
    # Next conversation number; incremented with an UPDATE so numbers never repeat.
    next_conversation_number = models.PositiveBigIntegerField(default=1)
    # Two-factor authentication for every member: members without it must enrol once
    # ``require_2fa_since + two_factor_grace_days`` has passed.
    require_2fa = models.BooleanField(default=False)
    require_2fa_since = models.DateTimeField(null=True, blank=True)
    two_factor_grace_days = models.PositiveSmallIntegerField(default=7)
    # Largest attachment stored, in MB (never above the operator's LOKET_ATTACHMENT_MAX_BYTES).
    attachment_max_mb = models.PositiveSmallIntegerField(default=25)
    # Opening hours per weekday and closed dates (loket.tenancy.hours); empty: always open.
    business_hours = models.JSONField(default=dict, blank=True)
    holidays = models.JSONField(default=list, blank=True)
    # Opt-in: resolved conversations' agent answers become internal suggestions for agents
    # (loket.knowledge.conversations); never shown to customers, the help center or the bot.
    learn_from_conversations = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug


class WorkspaceScoped(models.Model):
    """Every domain row carries its workspace."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True


def workspace_key_covered_by_indexes() -> models.ForeignKey:
    """The workspace key of a model whose composite indexes all start with ``workspace``: a
    separate index on it would only cost every insert and update (ingest's hot tables)."""
    return models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    ADMIN = "admin", _("Admin")
    SUPERVISOR = "supervisor", _("Supervisor")
    AGENT = "agent", _("Agent")


class Availability(models.TextChoices):
    ONLINE = "online", _("Online")
    AWAY = "away", _("Away")
    OFFLINE = "offline", _("Offline")


class Membership(WorkspaceScoped):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)
    availability = models.CharField(
        max_length=16, choices=Availability.choices, default=Availability.OFFLINE
    )
    # How many open conversations the auto-assigner may give this member at once.
    capacity = models.PositiveIntegerField(default=10)
    # Optional limits per kind of work within that total, e.g. {"chat": 5, "email": 10}
    # (loket.automation.assignment says which channel kinds count as which).
    capacities = models.JSONField(default=dict, blank=True)
    # When the auto-assigner last gave this member a conversation (workload balancing: of
    # members with equal free capacity, whoever waited longest goes first).
    last_assigned_at = models.DateTimeField(null=True, blank=True)
    # When the auto-assigner may give this member conversations (besides being online): weekday
    # ranges like Workspace.business_hours, in the workspace's time zone, skipping its holidays
    # (loket.tenancy.hours). None: no hours of their own, any time they are online.
    working_hours = models.JSONField(null=True, blank=True)
    # Added under this member's email replies (above the channel's signature).
    email_signature = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="membership_unique_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.workspace_id} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role in (Role.OWNER, Role.ADMIN)

    @property
    def reads_reports(self) -> bool:
        """Supervisors, admins and owners see the reports (loket.web.reports)."""
        return self.role in (Role.OWNER, Role.ADMIN, Role.SUPERVISOR)

    @property
    def display_name(self) -> str:
        return self.user.get_full_name()


class AvailabilityPeriod(models.Model):
    """A stretch of time a member spent in one availability, for the agents report's online time:
    opened and the previous one closed in the transaction that changes the availability
    (``loket.automation.assignment.set_availability``); ``ended_at`` is empty while it lasts."""

    workspace = workspace_key_covered_by_indexes()
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="+")
    availability = models.CharField(max_length=16, choices=Availability.choices)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "started_at"], name="availability_period_ws"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["membership"],
                condition=models.Q(ended_at__isnull=True),
                name="availability_period_one_open",
            )
        ]

    def __str__(self) -> str:
        return f"{self.membership_id} {self.availability} from {self.started_at}"


class AutoAssign(models.TextChoices):
    OFF = "off", _("Off")
    ROUND_ROBIN = "round_robin", _("Round robin")
    BALANCED = "balanced", _("Workload balancing")


class Team(WorkspaceScoped):
    name = models.CharField(max_length=100)
    members = models.ManyToManyField(Membership, related_name="teams", blank=True)
    # How the team's new conversations get an assignee (loket.automation.assignment).
    auto_assign = models.CharField(
        max_length=16, choices=AutoAssign.choices, default=AutoAssign.OFF
    )
    # Round robin: who got the last one.
    last_assigned = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # When a member goes offline, their open conversations go back to the assigner.
    reassign_when_offline = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="team_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class Invitation(WorkspaceScoped):
    """An admin's invitation to join a workspace; the link carries a secret of which only the
    SHA-256 is stored."""

    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)
    teams = models.ManyToManyField(Team, blank=True, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        Membership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "email"], name="invitation_ws_email")]

    def __str__(self) -> str:
        return f"invitation {self.email} @ {self.workspace_id}"


TOKEN_PREFIX = "lkt_"  # noqa: S105 - a public prefix, not a secret


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(WorkspaceScoped):
    """A bearer token for the REST API; only its SHA-256 is stored."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100, blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    # First characters, so a person can tell tokens apart without the secret.
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or 'token'})"

    @staticmethod
    def generate() -> str:
        return TOKEN_PREFIX + secrets.token_urlsafe(32)
