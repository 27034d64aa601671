"""Reports → Scheduled e-mails: list, create, edit and delete a workspace's scheduled reports,
and send one now to yourself as a test (loket.reports.schedules has the rules). For
supervisors, admins and owners; another workspace's schedule is a 404, and only this
workspace's members who may read reports can be recipients."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from loket.inbox.models import Channel, Priority
from loket.reports import schedules
from loket.reports.models import ReportSchedule, ScheduleFrequency, ScheduleReport
from loket.tenancy.models import Team
from loket.tenancy.services import NotAllowed
from loket.web.workspace import workspace_view

TEMPLATES = "web/reports/"


def _reader(request) -> None:
    if not request.membership.reads_reports:
        raise PermissionDenied(_("Reports are for supervisors, admins and owners."))


class ScheduleForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    report = forms.ChoiceField(label=gettext_lazy("Report"), choices=ScheduleReport.choices)
    frequency = forms.ChoiceField(
        label=gettext_lazy("Send"),
        choices=ScheduleFrequency.choices,
        help_text=gettext_lazy(
            "Daily: the day before. Weekly: the week before (Monday to Sunday). Always compared "
            "with the period before it."
        ),
    )
    weekday = forms.TypedChoiceField(
        label=gettext_lazy("On (weekly)"),
        choices=schedules.WEEKDAYS,
        coerce=int,
        initial=1,
    )
    hour = forms.TypedChoiceField(
        label=gettext_lazy("At"),
        choices=[(h, f"{h:02d}:00") for h in range(24)],
        coerce=int,
        initial=8,
        help_text=gettext_lazy("In the workspace's time zone."),
    )
    channel_id = forms.TypedChoiceField(
        label=gettext_lazy("Channel"), coerce=int, required=False, empty_value=None
    )
    team_id = forms.TypedChoiceField(
        label=gettext_lazy("Team"), coerce=int, required=False, empty_value=None
    )
    priority = forms.TypedChoiceField(
        label=gettext_lazy("Priority"), coerce=int, required=False, empty_value=None
    )
    business_time = forms.TypedChoiceField(
        label=gettext_lazy("Times in"),
        choices=[("0", gettext_lazy("Calendar hours")), ("1", gettext_lazy("Business hours"))],
        coerce=lambda value: value == "1",
        initial="0",
    )
    recipient_ids = forms.TypedMultipleChoiceField(
        label=gettext_lazy("Recipients"),
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("Supervisors, admins and owners of this workspace."),
        error_messages={"required": gettext_lazy("Choose at least one recipient.")},
    )
    enabled = forms.BooleanField(label=gettext_lazy("Enabled"), required=False, initial=True)

    def __init__(self, *args, workspace_id: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        every = [("", _("All"))]
        self.fields["channel_id"].choices = every + list(
            Channel.objects.filter(workspace_id=workspace_id)
            .order_by("name")
            .values_list("pk", "name")
        )
        self.fields["team_id"].choices = every + list(
            Team.objects.filter(workspace_id=workspace_id)
            .order_by("name")
            .values_list("pk", "name")
        )
        self.fields["priority"].choices = every + list(Priority.choices)
        self.fields["recipient_ids"].choices = [
            (m.pk, f"{m.display_name} ({m.user.email})") for m in schedules.readers(workspace_id)
        ]

    def service_fields(self) -> dict:
        return dict(self.cleaned_data)

    @staticmethod
    def initial_for(schedule: ReportSchedule) -> dict:
        values = schedules.values_of(schedule)
        values["business_time"] = "1" if schedule.business_time else "0"
        values["weekday"] = schedule.weekday or 1
        return values


def _save_error(form: ScheduleForm, exc: Exception) -> None:
    field = getattr(exc, "field", None)
    form.add_error(field if field in form.fields else None, str(exc))


def _rows(workspace_id: int) -> list[dict]:
    return [
        {
            "schedule": schedule,
            "when": schedules.describe_when(schedule),
            "filters": " · ".join(schedules.filter_names(schedule)),
            "recipients": ", ".join(m.display_name for m in schedule.recipients.all()),
        }
        for schedule in schedules.schedules(workspace_id)
    ]


@workspace_view
@require_http_methods(["GET", "POST"])
def schedule_list(request):
    _reader(request)
    member = request.membership
    workspace_id = member.workspace_id
    status = 200
    if request.method == "POST":
        form = ScheduleForm(request.POST, workspace_id=workspace_id)
        if form.is_valid():
            try:
                schedule = schedules.create_schedule(
                    member.workspace, actor=member, **form.service_fields()
                )
            except (schedules.InvalidSchedule, NotAllowed) as exc:
                _save_error(form, exc)
            else:
                messages.success(
                    request,
                    _("Scheduled report “%(name)s” created. The first e-mail goes %(when)s.")
                    % {"name": schedule.name, "when": schedules.describe_when(schedule).lower()},
                )
                return redirect("reports:schedules", member.workspace.slug)
        status = 400
    else:
        form = ScheduleForm(
            workspace_id=workspace_id, initial={"recipient_ids": [member.pk], "enabled": True}
        )
    return render(
        request,
        TEMPLATES + "schedules.html",
        {"rows": _rows(workspace_id), "form": form},
        status=status,
    )


@workspace_view
@require_http_methods(["GET", "POST"])
def schedule_edit(request, schedule_id: int):
    _reader(request)
    member = request.membership
    schedule = schedules.get_schedule(member, schedule_id)
    status = 200
    if request.method == "POST":
        form = ScheduleForm(request.POST, workspace_id=member.workspace_id)
        if form.is_valid():
            try:
                schedules.update_schedule(schedule, actor=member, **form.service_fields())
            except (schedules.InvalidSchedule, NotAllowed) as exc:
                _save_error(form, exc)
            else:
                messages.success(request, _("Scheduled report saved."))
                return redirect("reports:schedules", member.workspace.slug)
        status = 400
    else:
        form = ScheduleForm(
            workspace_id=member.workspace_id, initial=ScheduleForm.initial_for(schedule)
        )
    return render(
        request,
        TEMPLATES + "schedule_edit.html",
        {"schedule": schedule, "form": form},
        status=status,
    )


@workspace_view
@require_POST
def schedule_delete(request, schedule_id: int):
    _reader(request)
    member = request.membership
    schedule = schedules.get_schedule(member, schedule_id)
    name = schedule.name
    schedules.delete_schedule(schedule, actor=member)
    messages.success(request, _("Scheduled report “%(name)s” deleted.") % {"name": name})
    return redirect("reports:schedules", member.workspace.slug)


@workspace_view
@require_POST
def schedule_send(request, schedule_id: int):
    """The period just ended, e-mailed now to the member who asks (a test)."""
    _reader(request)
    member = request.membership
    schedule = schedules.get_schedule(member, schedule_id)
    try:
        schedules.send_now(schedule, member)
    except schedules.SendFailed:
        messages.error(
            request,
            _("The e-mail could not be handed to the mail server. Check the mail settings."),
        )
    else:
        messages.success(
            request,
            _("“%(name)s” was sent to %(email)s.")
            % {"name": schedule.name, "email": member.user.email},
        )
    return redirect("reports:schedules", member.workspace.slug)
