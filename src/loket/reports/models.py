"""What reports read: each conversation's facts (``ReportFact``, made from its timeline by
``loket.reports.metrics``) and their sums per day (``DailyRollup``) and per hour
(``HourlyVolume``), kept current by ``loket.reports.rollups``. A report never scans messages or
conversations; a number's drill-down reads the facts behind it."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from loket.tenancy.models import workspace_key_covered_by_indexes


class FactKind(models.TextChoices):
    CREATED = "created"
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    CSAT = "csat"  # the customer's rating (inbox.SatisfactionRating), on the day it was last set


class ReportFact(models.Model):
    """One counted thing of one conversation, on the workspace-local day (and hour) it
    happened. Made anew whenever the conversation's timeline changes, so late and out-of-order
    messages correct it. ``member_id``: who responded (responses) or the assignee (the rest);
    ids without foreign keys, so a deleted member's or team's figures stay."""

    workspace = workspace_key_covered_by_indexes()
    conversation = models.ForeignKey(
        "inbox.Conversation", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=16, choices=FactKind.choices)
    at = models.DateTimeField()
    day = models.DateField()
    hour = models.PositiveSmallIntegerField()
    channel_id = models.BigIntegerField(null=True)
    team_id = models.BigIntegerField(null=True)
    member_id = models.BigIntegerField(null=True)
    priority = models.PositiveSmallIntegerField(default=0)
    seconds = models.FloatField(null=True)
    business_seconds = models.FloatField(null=True)
    responses = models.PositiveIntegerField(null=True)  # resolved: responses in the stretch
    by_bot = models.BooleanField(default=False)  # resolved by the bot
    handoff = models.BooleanField(default=False)  # resolved after a bot handed over
    rating = models.PositiveSmallIntegerField(null=True)  # csat: 1-5

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "day", "kind"], name="report_fact_ws_day"),
            models.Index(fields=["conversation"], name="report_fact_conversation"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of conversation {self.conversation_id} on {self.day}"


class DailySums(models.Model):
    """The sums a rollup row holds (what loket.reports.queries adds up)."""

    created = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0)
    reopened = models.PositiveIntegerField(default=0)
    bot_resolved = models.PositiveIntegerField(default=0)
    handoffs = models.PositiveIntegerField(default=0)
    resolution_responses = models.PositiveIntegerField(
        default=0
    )  # replies per resolution: / resolved
    resolution_seconds = models.FloatField(default=0)
    resolution_business_seconds = models.FloatField(default=0)
    first_responses = models.PositiveIntegerField(default=0)
    first_response_seconds = models.FloatField(default=0)
    first_response_business_seconds = models.FloatField(default=0)
    next_responses = models.PositiveIntegerField(default=0)
    next_response_seconds = models.FloatField(default=0)
    next_response_business_seconds = models.FloatField(default=0)
    ratings = models.PositiveIntegerField(default=0)  # CSAT answers
    rating_sum = models.PositiveIntegerField(default=0)
    ratings_satisfied = models.PositiveIntegerField(default=0)  # rated 4 or 5

    class Meta:
        abstract = True


class DailyRollup(DailySums):
    """The facts of one workspace-local day summed per channel, team, member and priority."""

    workspace = workspace_key_covered_by_indexes()
    day = models.DateField()
    channel_id = models.BigIntegerField(null=True)
    team_id = models.BigIntegerField(null=True)
    member_id = models.BigIntegerField(null=True)
    priority = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["workspace", "day"], name="report_daily_ws_day")]

    def __str__(self) -> str:
        return f"{self.day} of workspace {self.workspace_id}"


class DailyChannelMemberRollup(DailySums):
    """A day's ``DailyRollup`` rows summed again per channel and member only (team and
    priority summed out), made with them. A busy workspace has ~1,000 detailed rows a day (every
    combination of channel, team, member and priority) but only channels times members of
    these: the reports without a team or priority filter (the usual ones) read these, about ten
    times fewer rows."""

    workspace = workspace_key_covered_by_indexes()
    day = models.DateField()
    channel_id = models.BigIntegerField(null=True)
    member_id = models.BigIntegerField(null=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "day"], name="report_daily_cm_ws_day")]

    def __str__(self) -> str:
        return f"{self.day} of workspace {self.workspace_id} (per channel and member)"


class HourlyVolume(models.Model):
    """Conversations that came in (new or reopened) per workspace-local day and hour."""

    workspace = workspace_key_covered_by_indexes()
    day = models.DateField()
    hour = models.PositiveSmallIntegerField()
    channel_id = models.BigIntegerField(null=True)
    team_id = models.BigIntegerField(null=True)
    conversations = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["workspace", "day"], name="report_hourly_ws_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.hour}h of workspace {self.workspace_id}"


class ScheduleFrequency(models.TextChoices):
    DAILY = "daily", _("Daily")
    WEEKLY = "weekly", _("Weekly")


class ScheduleReport(models.TextChoices):
    OVERVIEW = "overview", _("Overview")
    AGENTS = "agents", _("Agents")


class ReportSchedule(models.Model):
    """A report e-mailed to chosen members after each day or ISO week (loket.reports.schedules):
    the previous period's figures against the period before, at ``hour`` o'clock in the
    workspace's time zone (weekly: on ``weekday``, 1 = Monday). ``last_period_sent`` is the
    first day of the last period claimed for sending; claiming it is one conditional UPDATE, so
    a period is sent at most once however many workers or retries try. Filters are ids like
    the rollups' (an id that no longer exists matches nothing)."""

    workspace = models.ForeignKey(
        "tenancy.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    name = models.CharField(max_length=100)
    frequency = models.CharField(max_length=8, choices=ScheduleFrequency.choices)
    weekday = models.PositiveSmallIntegerField(null=True, blank=True)  # ISO: 1 Monday .. 7
    hour = models.PositiveSmallIntegerField(default=8)  # 0-23, workspace-local
    report = models.CharField(
        max_length=16, choices=ScheduleReport.choices, default=ScheduleReport.OVERVIEW
    )
    channel_id = models.BigIntegerField(null=True, blank=True)
    team_id = models.BigIntegerField(null=True, blank=True)
    priority = models.PositiveSmallIntegerField(null=True, blank=True)
    business_time = models.BooleanField(default=False)
    recipients = models.ManyToManyField("tenancy.Membership", related_name="+", blank=True)
    created_by = models.ForeignKey(
        "tenancy.Membership",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    enabled = models.BooleanField(default=True)
    # The first day of the last period a send job was enqueued for (one job per period).
    last_period_enqueued = models.DateField(null=True, blank=True)
    last_period_sent = models.DateField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "name"], name="report_schedule_ws_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.frequency}) of workspace {self.workspace_id}"
