"""Scheduled reports: a report e-mailed to chosen members after each day or ISO week.

A ``ReportSchedule`` names the report (overview or agents), its filters (channel, team,
priority), calendar or business time, the recipients (members who may read reports) and when:
every day, or on one weekday, at a local hour of the workspace's time zone. When that hour has
come, the period just ended (the day before, or the ISO week before) is *due*:

- ``enqueue_due`` (the ``send_due_report_schedules`` job, every minute) finds due schedules and
  enqueues one ``send_report_schedule`` job per schedule and period: it moves
  ``last_period_enqueued`` forward with one conditional UPDATE and enqueues in the same
  transaction, so two ticks (or two workers) never enqueue the same period twice.
- ``send`` (that job) claims the period the same way on ``last_period_sent``: a second job, a
  retry or another worker finds it claimed and sends nothing. It then sends one e-mail per
  recipient who may still read the workspace's reports (a member who left or lost the role gets
  nothing), in the recipient's language (their own, else the workspace's), with a plain-text
  and an HTML part: the figures against the period before, and a link to the report page with
  the same days and filters.

Times are compared as the workspace's wall clock (its hour and weekday now), so daylight
saving needs no arithmetic: an hour skipped in spring is due at the next hour, an hour repeated
in autumn is due at its first occurrence and claimed once.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.core import mail
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext, gettext_lazy

from loket.inbox.models import Channel, Priority
from loket.reports import queries
from loket.reports.formatting import NONE
from loket.reports.formatting import change as _change
from loket.reports.formatting import duration as _duration
from loket.reports.formatting import share as _share
from loket.reports.models import ReportSchedule, ScheduleFrequency, ScheduleReport
from loket.reports.queries import Filters
from loket.tenancy.hours import _zone
from loket.tenancy.models import Membership, Role, Team, Workspace
from loket.tenancy.services import NotAllowed

log = logging.getLogger(__name__)

READER_ROLES = (Role.OWNER, Role.ADMIN, Role.SUPERVISOR)  # Membership.reads_reports
MAX_RECIPIENTS = 50

WEEKDAYS = [
    (1, gettext_lazy("Monday")),
    (2, gettext_lazy("Tuesday")),
    (3, gettext_lazy("Wednesday")),
    (4, gettext_lazy("Thursday")),
    (5, gettext_lazy("Friday")),
    (6, gettext_lazy("Saturday")),
    (7, gettext_lazy("Sunday")),
]


class InvalidSchedule(Exception):
    """A schedule that cannot be saved; ``field`` names the culprit, ``str(exc)`` says why."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --- reading and writing schedules -------------------------------------------------------


def schedules(workspace_id: int):
    return (
        ReportSchedule.objects.filter(workspace_id=workspace_id)
        .prefetch_related("recipients__user")
        .order_by("name", "pk")
    )


def _require_reader(actor: Membership, workspace_id: int) -> None:
    if actor.workspace_id != workspace_id or not actor.reads_reports:
        raise NotAllowed(gettext("Scheduled reports are for supervisors, admins and owners."))


def get_schedule(actor: Membership, schedule_id: int) -> ReportSchedule:
    """The workspace's schedule (404 for another workspace's or an unknown id)."""
    _require_reader(actor, actor.workspace_id)
    found = schedules(actor.workspace_id).filter(pk=schedule_id).first()
    if found is None:
        raise Http404("no such report schedule")
    return found


def readers(workspace_id: int):
    """The members who may receive a report: supervisors, admins and owners, active users."""
    return (
        Membership.objects.filter(
            workspace_id=workspace_id, role__in=READER_ROLES, user__is_active=True
        )
        .select_related("user")
        .order_by("user__name", "user__email")
    )


def _clean(workspace: Workspace, fields: dict) -> dict:
    """The fields checked and normalised (InvalidSchedule on the first problem)."""
    name = " ".join(str(fields.get("name") or "").split())
    if not name:
        raise InvalidSchedule(gettext("Give the schedule a name."), "name")
    if len(name) > 100:
        raise InvalidSchedule(gettext("The name is longer than 100 characters."), "name")
    frequency = fields.get("frequency")
    if frequency not in ScheduleFrequency.values:
        raise InvalidSchedule(gettext("Choose daily or weekly."), "frequency")
    weekday = fields.get("weekday")
    if frequency == ScheduleFrequency.WEEKLY:
        if weekday not in range(1, 8):
            raise InvalidSchedule(
                gettext("Choose the weekday the weekly report is sent on."), "weekday"
            )
    else:
        weekday = None
    hour = fields.get("hour")
    if not isinstance(hour, int) or isinstance(hour, bool) or not 0 <= hour <= 23:
        raise InvalidSchedule(gettext("The hour is a whole number from 0 to 23."), "hour")
    report = fields.get("report") or ScheduleReport.OVERVIEW
    if report not in ScheduleReport.values:
        raise InvalidSchedule(gettext("Choose the overview or the agents report."), "report")
    channel_id = fields.get("channel_id")
    if (
        channel_id is not None
        and not Channel.objects.filter(workspace_id=workspace.pk, pk=channel_id).exists()
    ):
        raise InvalidSchedule(gettext("This workspace has no such channel."), "channel_id")
    team_id = fields.get("team_id")
    if (
        team_id is not None
        and not Team.objects.filter(workspace_id=workspace.pk, pk=team_id).exists()
    ):
        raise InvalidSchedule(gettext("This workspace has no such team."), "team_id")
    priority = fields.get("priority")
    if priority is not None and priority not in Priority.values:
        raise InvalidSchedule(gettext("Unknown priority."), "priority")
    ids = list(dict.fromkeys(int(pk) for pk in fields.get("recipient_ids") or []))
    if not ids:
        raise InvalidSchedule(gettext("Choose at least one recipient."), "recipient_ids")
    if len(ids) > MAX_RECIPIENTS:
        raise InvalidSchedule(
            gettext("At most %(n)s recipients.") % {"n": MAX_RECIPIENTS}, "recipient_ids"
        )
    members = {
        m.pk: m
        for m in Membership.objects.filter(workspace_id=workspace.pk, pk__in=ids).select_related(
            "user"
        )
    }
    for pk in ids:
        member = members.get(pk)
        if member is None:
            raise InvalidSchedule(
                gettext("Recipient %(id)s is not a member of this workspace.") % {"id": pk},
                "recipient_ids",
            )
        if not member.reads_reports:
            raise InvalidSchedule(
                gettext(
                    "%(name)s cannot read reports: only supervisors, admins and owners can "
                    "receive them."
                )
                % {"name": member.display_name},
                "recipient_ids",
            )
    return {
        "name": name,
        "frequency": frequency,
        "weekday": weekday,
        "hour": hour,
        "report": report,
        "channel_id": channel_id,
        "team_id": team_id,
        "priority": priority,
        "business_time": bool(fields.get("business_time", False)),
        "enabled": bool(fields.get("enabled", True)),
        "recipients": [members[pk] for pk in ids],
    }


FIELDS = (
    "name",
    "frequency",
    "weekday",
    "hour",
    "report",
    "channel_id",
    "team_id",
    "priority",
    "business_time",
    "enabled",
    "recipient_ids",
)


def values_of(schedule: ReportSchedule) -> dict:
    values = {name: getattr(schedule, name) for name in FIELDS if name != "recipient_ids"}
    values["recipient_ids"] = sorted(m.pk for m in schedule.recipients.all())
    return values


def create_schedule(workspace: Workspace, *, actor: Membership, **fields) -> ReportSchedule:
    """A new schedule; its first e-mail goes at the next scheduled time (not at once for a
    period whose hour has passed already)."""
    _require_reader(actor, workspace.pk)
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise InvalidSchedule(f"unknown fields: {', '.join(sorted(unknown))}")
    cleaned = _clean(workspace, fields)
    recipients = cleaned.pop("recipients")
    with transaction.atomic():
        schedule = ReportSchedule(workspace=workspace, created_by=actor, **cleaned)
        schedule.last_period_sent = schedule.last_period_enqueued = latest_period(
            schedule, timezone.now()
        )
        schedule.save()
        schedule.recipients.set(recipients)
    return schedule


def update_schedule(schedule: ReportSchedule, *, actor: Membership, **fields) -> ReportSchedule:
    """Change the given fields (the rest stay). A new frequency starts at its next scheduled
    time, like a new schedule."""
    _require_reader(actor, schedule.workspace_id)
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise InvalidSchedule(f"unknown fields: {', '.join(sorted(unknown))}")
    cleaned = _clean(schedule.workspace, {**values_of(schedule), **fields})
    recipients = cleaned.pop("recipients")
    with transaction.atomic():
        frequency_changed = cleaned["frequency"] != schedule.frequency
        for name, value in cleaned.items():
            setattr(schedule, name, value)
        if frequency_changed:
            schedule.last_period_sent = schedule.last_period_enqueued = latest_period(
                schedule, timezone.now()
            )
        schedule.save()
        schedule.recipients.set(recipients)
    return schedule


def delete_schedule(schedule: ReportSchedule, *, actor: Membership) -> None:
    _require_reader(actor, schedule.workspace_id)
    schedule.delete()


# --- when ----------------------------------------------------------------------------------


def period_of(frequency: str, start: dt.date) -> tuple[dt.date, dt.date]:
    """The period's first and last day (both included)."""
    if frequency == ScheduleFrequency.WEEKLY:
        return start, start + dt.timedelta(days=6)
    return start, start


def previous_period(schedule: ReportSchedule, now: dt.datetime) -> dt.date:
    """The first day of the period just ended in the workspace's zone: yesterday, or last
    week's Monday (whatever the schedule's hour; "Send now" uses it)."""
    today = now.astimezone(_zone(schedule.workspace.time_zone)).date()
    if schedule.frequency == ScheduleFrequency.WEEKLY:
        return today - dt.timedelta(days=today.weekday() + 7)
    return today - dt.timedelta(days=1)


def latest_period(schedule: ReportSchedule, now: dt.datetime) -> dt.date:
    """The first day of the latest period whose sending time has come by ``now``: the day
    before the last day whose ``hour`` has begun (daily), or the ISO week before the last
    ``weekday`` at ``hour`` (weekly). Wall-clock comparison in the workspace's zone."""
    local = now.astimezone(_zone(schedule.workspace.time_zone))
    today = local.date()
    if schedule.frequency == ScheduleFrequency.WEEKLY:
        monday = today - dt.timedelta(days=today.weekday())
        weekday = schedule.weekday or 1
        passed = (local.isoweekday(), local.hour) >= (weekday, schedule.hour)
        return monday - dt.timedelta(days=7 if passed else 14)
    return today - dt.timedelta(days=1 if local.hour >= schedule.hour else 2)


def due(now: dt.datetime | None = None) -> list[tuple[ReportSchedule, dt.date]]:
    """Enabled schedules with a period not yet enqueued, and that period."""
    now = now or timezone.now()
    found = []
    for schedule in ReportSchedule.objects.filter(enabled=True).select_related("workspace"):
        period = latest_period(schedule, now)
        if schedule.last_period_enqueued is None or schedule.last_period_enqueued < period:
            found.append((schedule, period))
    return found


def enqueue_due(now: dt.datetime | None = None) -> int:
    """One send job per due schedule and period; how many were enqueued."""
    from loket.reports.tasks import send_report_schedule

    enqueued = 0
    for schedule, period in due(now):
        with transaction.atomic():
            moved = (
                ReportSchedule.objects.filter(pk=schedule.pk, enabled=True)
                .filter(Q(last_period_enqueued__isnull=True) | Q(last_period_enqueued__lt=period))
                .update(last_period_enqueued=period)
            )
            if moved:
                send_report_schedule.enqueue(schedule.pk, period.isoformat())
                enqueued += 1
    return enqueued


def claim(schedule_id: int, period: dt.date) -> bool:
    """Mark ``period`` sent, unless it (or a later one) is already: one conditional UPDATE, so
    of concurrent claims exactly one wins."""
    return bool(
        ReportSchedule.objects.filter(pk=schedule_id, enabled=True)
        .filter(Q(last_period_sent__isnull=True) | Q(last_period_sent__lt=period))
        .update(last_period_sent=period, last_sent_at=timezone.now())
    )


# --- what ----------------------------------------------------------------------------------


def _ratio(value: float | None) -> str:
    return NONE if value is None else f"{value:.1f}"


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    previous: str
    change: str  # "+25%", or "" without a comparison
    good: bool | None  # the change is for the better (None: no change or none to compare)


def key_figures(now: dict, before: dict, business: bool) -> list[Figure]:
    """The overview's figures of the period with the period before's and the change."""
    suffix = "_business_seconds" if business else "_seconds"
    rows = (
        (gettext("New conversations"), "created", str, False),
        (gettext("Resolutions"), "resolved", str, False),
        (gettext("Reopened"), "reopened", str, True),
        (gettext("First response time"), "first_response" + suffix, _duration, True),
        (gettext("Next response time"), "next_response" + suffix, _duration, True),
        (gettext("Resolution time"), "resolution" + suffix, _duration, True),
        (gettext("Replies per resolution"), "replies_per_resolution", _ratio, True),
        (gettext("Resolved by the bot"), "bot_resolved_share", _share, False),
        (gettext("Handed over by the bot"), "handoff_share", _share, False),
        (gettext("Customer satisfaction"), "csat_score", _share, False),
    )
    figures = []
    for label, key, shown, lower in rows:
        change, good = _change(now[key], before[key], lower)
        figures.append(Figure(label, shown(now[key]), shown(before[key]), change, good))
    return figures


def agent_rows(schedule: ReportSchedule, start: dt.date, end: dt.date) -> list[dict]:
    """The agents report's rows: per member, most responses first."""
    suffix = "_business_seconds" if schedule.business_time else "_seconds"
    figures = queries.by_dimension(
        schedule.workspace_id, start, end, "member_id", filters_of(schedule)
    )
    names = {
        m.pk: m.display_name
        for m in Membership.objects.filter(
            workspace_id=schedule.workspace_id, pk__in=[pk for pk in figures if pk]
        ).select_related("user")
    }
    rows = []
    for member_id, f in figures.items():
        name = names.get(member_id, gettext("Unassigned") if member_id is None else "?")
        rows.append(
            {
                "name": name,
                "responses": f["first_responses"] + f["next_responses"],
                "first_response": _duration(f["first_response" + suffix]),
                "resolved": f["resolved"],
                "resolution": _duration(f["resolution" + suffix]),
                "csat": _share(f["csat_score"]),
                "ratings": f["ratings"],
            }
        )
    rows.sort(key=lambda row: (-row["responses"], -row["resolved"], row["name"]))
    return rows


def filters_of(schedule: ReportSchedule) -> Filters:
    return Filters(
        channel_id=schedule.channel_id, team_id=schedule.team_id, priority=schedule.priority
    )


def report_url(schedule: ReportSchedule, start: dt.date, end: dt.date) -> str:
    """The report page with the same days, filters and clock."""
    name = "reports:agents" if schedule.report == ScheduleReport.AGENTS else "reports:overview"
    values = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "channel": schedule.channel_id or "",
        "team": schedule.team_id or "",
        "priority": "" if schedule.priority is None else schedule.priority,
        "clock": "business" if schedule.business_time else "",
    }
    query = urlencode({k: v for k, v in values.items() if v != ""})
    return f"{settings.LOKET_PUBLIC_URL}{reverse(name, args=[schedule.workspace.slug])}?{query}"


def filter_names(schedule: ReportSchedule) -> list[str]:
    names = []
    if schedule.channel_id:
        channel = Channel.objects.filter(
            workspace_id=schedule.workspace_id, pk=schedule.channel_id
        ).first()
        names.append(
            gettext("Channel: %(name)s")
            % {"name": channel.name if channel else gettext("(deleted)")}
        )
    if schedule.team_id:
        team = Team.objects.filter(workspace_id=schedule.workspace_id, pk=schedule.team_id).first()
        names.append(
            gettext("Team: %(name)s") % {"name": team.name if team else gettext("(deleted)")}
        )
    if schedule.priority is not None:
        names.append(gettext("Priority: %(name)s") % {"name": Priority(schedule.priority).label})
    names.append(gettext("Business hours") if schedule.business_time else gettext("Calendar hours"))
    return names


def _period_text(schedule: ReportSchedule, start: dt.date, end: dt.date) -> str:
    if start == end:
        return formats.date_format(start, "DATE_FORMAT")
    return gettext("week %(week)s, %(start)s to %(end)s") % {
        "week": start.isocalendar().week,
        "start": formats.date_format(start, "DATE_FORMAT"),
        "end": formats.date_format(end, "DATE_FORMAT"),
    }


def language_of(member: Membership) -> str:
    """The recipient's own language, else the workspace's (like the invitations)."""
    return member.user.locale or member.workspace.locale or settings.LANGUAGE_CODE


@dataclass
class Computed:
    """A period's numbers, computed once for every recipient."""

    start: dt.date
    end: dt.date
    now: dict
    before: dict
    before_start: dt.date
    before_end: dt.date


def compute(schedule: ReportSchedule, period: dt.date) -> Computed:
    start, end = period_of(schedule.frequency, period)
    now, before, (before_start, before_end) = queries.compare(
        schedule.workspace_id, start, end, filters_of(schedule)
    )
    return Computed(start, end, now, before, before_start, before_end)


def _exports():
    """``loket.reports.exports`` when this installation has it (the CSV attachment)."""
    try:
        from loket.reports import exports
    except ImportError:  # pragma: no cover - the exports arrived with the same issue
        return None
    return exports


def attachment(schedule: ReportSchedule, start: dt.date, end: dt.date) -> tuple[str, bytes] | None:
    """The report's table as CSV (file name, bytes), in the active language: the overview's
    days and total, or the agents' rows. Small: one row per day or member."""
    exports = _exports()
    if exports is None:
        return None
    build = (
        exports.agents_table if schedule.report == ScheduleReport.AGENTS else exports.overview_table
    )
    table = build(schedule.workspace_id, start, end, filters_of(schedule))
    name = f"{schedule.workspace.slug}-{schedule.report}-{start.isoformat()}"
    if end != start:
        name += f"-{end.isoformat()}"
    return f"{name}.csv", b"".join(exports.csv_chunks(table))


def compose(
    schedule: ReportSchedule, computed: Computed, recipient: Membership, connection=None
) -> mail.EmailMultiAlternatives:
    """The e-mail for one recipient, in their language."""
    with translation.override(language_of(recipient)):
        period = _period_text(schedule, computed.start, computed.end)
        attached = attachment(schedule, computed.start, computed.end)
        context = {
            "schedule": schedule,
            "workspace": schedule.workspace,
            "recipient": recipient,
            "period": period,
            "previous": _period_text(schedule, computed.before_start, computed.before_end),
            "daily": schedule.frequency == ScheduleFrequency.DAILY,
            "figures": key_figures(computed.now, computed.before, schedule.business_time),
            "agents": agent_rows(schedule, computed.start, computed.end)
            if schedule.report == ScheduleReport.AGENTS
            else None,
            "filters": filter_names(schedule),
            "url": report_url(schedule, computed.start, computed.end),
            "settings_url": settings.LOKET_PUBLIC_URL
            + reverse("reports:schedules", args=[schedule.workspace.slug]),
            "attached": attached is not None,
        }
        subject = gettext("%(name)s: %(period)s") % {"name": schedule.name, "period": period}
        text = render_to_string("reports/email/scheduled_report.txt", context)
        html = render_to_string("reports/email/scheduled_report.html", context)
    message = mail.EmailMultiAlternatives(
        subject, text, None, [recipient.user.email], connection=connection
    )
    message.attach_alternative(html, "text/html")
    if attached is not None:
        message.attach(attached[0], attached[1], "text/csv")
    return message


def recipients_now(schedule: ReportSchedule) -> list[Membership]:
    """The recipients who may read the workspace's reports at this moment."""
    return list(
        schedule.recipients.filter(
            workspace_id=schedule.workspace_id, role__in=READER_ROLES, user__is_active=True
        )
        .select_related("user", "workspace")
        .order_by("pk")
    )


def _deliver(
    schedule: ReportSchedule, period: dt.date, recipients: Iterable[Membership]
) -> tuple[int, list[str]]:
    computed = compute(schedule, period)
    sent, failures = 0, []
    connection = mail.get_connection()
    for recipient in recipients:
        try:
            compose(schedule, computed, recipient, connection).send()
            sent += 1
        except (smtplib.SMTPException, OSError) as exc:
            log.warning(
                "report schedule %s: mail to member %s failed: %s", schedule.pk, recipient.pk, exc
            )
            failures.append(f"{recipient.user.email}: {exc}")
    return sent, failures


class SendFailed(Exception):
    """No recipient's e-mail could be handed to the mail server (the claim is released)."""


def send(schedule_id: int, period: dt.date) -> int:
    """Claim ``period`` of the schedule and e-mail it; how many e-mails were sent (0 when the
    period was claimed already, or the schedule is gone or disabled). When not one e-mail could
    be handed over, the claim is released and ``SendFailed`` raised (the job retries)."""
    schedule = ReportSchedule.objects.select_related("workspace").filter(pk=schedule_id).first()
    if schedule is None:
        return 0
    before = schedule.last_period_sent
    if not claim(schedule_id, period):
        return 0
    recipients = recipients_now(schedule)
    sent, failures = _deliver(schedule, period, recipients)
    error = "; ".join(failures)[:500]
    ReportSchedule.objects.filter(pk=schedule_id).update(last_error=error)
    if failures and not sent:
        ReportSchedule.objects.filter(pk=schedule_id, last_period_sent=period).update(
            last_period_sent=before
        )
        raise SendFailed(error)
    return sent


def send_now(schedule: ReportSchedule, member: Membership) -> int:
    """The period just ended, to ``member`` only (a test; nothing is claimed)."""
    _require_reader(member, schedule.workspace_id)
    period = previous_period(schedule, timezone.now())
    sent, failures = _deliver(schedule, period, [member])
    if failures:
        raise SendFailed("; ".join(failures))
    return sent


def describe_when(schedule: ReportSchedule) -> str:
    """ "Every day at 08:00" / "Every Monday at 08:00" in the current language."""
    time = f"{schedule.hour:02d}:00"
    if schedule.frequency == ScheduleFrequency.WEEKLY:
        weekday = dict(WEEKDAYS).get(schedule.weekday, "?")
        return gettext("Every %(weekday)s at %(time)s") % {"weekday": weekday, "time": time}
    return gettext("Every day at %(time)s") % {"time": time}
