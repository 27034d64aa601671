"""Settings → Auto-replies (the greeting, the away message and the closing message with its
auto-resolve days, for the whole workspace or one channel), and a channel's own business hours,
holidays and time zone (shown on the channel's page). Owners and admins only; another
workspace's channel is a 404."""

from __future__ import annotations

import re

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from loket.automation import autoreplies
from loket.automation.models import AutoReply, AutoReplyKind
from loket.inbox.services.channels import set_channel_hours
from loket.tenancy import hours
from loket.tenancy.services import NotAllowed
from loket.web.workspace import workspace_view
from loket.web.workspace_settings import queries
from loket.web.workspace_settings.forms import WEEKDAY_LABELS

TEMPLATES = "web/workspace_settings/"

KIND_HELP = {
    AutoReplyKind.GREETING: gettext_lazy(
        "Answers the message that starts a conversation (at most one automatic answer per "
        "customer message, and one per customer within the rate limit)."
    ),
    AutoReplyKind.AWAY: gettext_lazy(
        "Answers a customer who writes outside business hours (the channel's own hours, else "
        "the workspace's), once per conversation."
    ),
    AutoReplyKind.CLOSING: gettext_lazy(
        "Resolves conversations pending on the customer for this many days, sending this "
        "message first. Never when the customer wrote last."
    ),
}
KIND_TITLES = {
    AutoReplyKind.GREETING: gettext_lazy("Greeting"),
    AutoReplyKind.AWAY: gettext_lazy("Away message"),
    AutoReplyKind.CLOSING: gettext_lazy("Closing message and automatic resolving"),
}


class AutoReplyForm(forms.Form):
    kind = forms.ChoiceField(choices=AutoReplyKind.choices, widget=forms.HiddenInput)
    mode = forms.ChoiceField(label=gettext_lazy("Use"), widget=forms.RadioSelect)
    body = forms.CharField(
        label=gettext_lazy("Text"),
        required=False,
        max_length=autoreplies.MAX_BODY,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=gettext_lazy(
            "Variables like {{contact.first_name|there}} and {{workspace.name}} work, as in "
            "canned replies."
        ),
    )
    days = forms.IntegerField(
        label=gettext_lazy("Resolve after (days pending)"),
        required=False,
        min_value=1,
        max_value=autoreplies.MAX_DAYS,
    )

    def __init__(self, *args, for_channel: bool, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("on", _("On")), ("off", _("Off"))]
        if for_channel:
            choices = [
                ("inherit", _("The workspace's")),
                ("on", _("Own text on this channel")),
                ("off", _("Off on this channel")),
            ]
        self.fields["mode"].choices = choices


def _auto_id(kind) -> str:
    """Element ids of their own per kind: the three forms share one page."""
    return f"id_{kind if kind in AutoReplyKind.values else 'x'}_%s"


def _initial(reply: AutoReply | None, kind: str, for_channel: bool) -> dict:
    if reply is None:
        return {"kind": kind, "mode": "inherit" if for_channel else "off", "body": ""}
    return {
        "kind": kind,
        "mode": "on" if reply.enabled else "off",
        "body": reply.body,
        "days": reply.days,
    }


def _sections(workspace, channel, bound: AutoReplyForm | None = None) -> list[dict]:
    found = {r.kind: r for r in AutoReply.objects.filter(workspace=workspace, channel=channel)}
    workspace_rows = {
        r.kind: r for r in AutoReply.objects.filter(workspace=workspace, channel__isnull=True)
    }
    sections = []
    for kind in AutoReplyKind.values:
        own = found.get(kind)
        if bound is not None and bound.data.get("kind") == kind:
            form = bound
        else:
            form = AutoReplyForm(
                initial=_initial(own, kind, channel is not None),
                for_channel=channel is not None,
                auto_id=_auto_id(kind),
            )
        sections.append(
            {
                "kind": kind,
                "title": KIND_TITLES[kind],
                "help": KIND_HELP[kind],
                "form": form,
                "workspace_reply": workspace_rows.get(kind) if channel is not None else None,
            }
        )
    return sections


def _page(request, channel, bound=None, status=200):
    workspace = request.workspace
    return render(
        request,
        TEMPLATES + "auto_replies.html",
        {
            "channel": channel,
            "channels": list(queries.channels(workspace)),
            "sections": _sections(workspace, channel, bound),
        },
        status=status,
    )


def _save(request, channel, form: AutoReplyForm) -> bool:
    data = form.cleaned_data
    kind, mode = data["kind"], data["mode"]
    try:
        if mode == "inherit":
            autoreplies.remove(request.workspace, kind, channel=channel, actor=request.membership)
        else:
            autoreplies.configure(
                request.workspace,
                kind,
                body=data["body"],
                enabled=mode == "on",
                channel=channel,
                actor=request.membership,
                days=data["days"] if kind == AutoReplyKind.CLOSING else None,
            )
    except autoreplies.InvalidAutoReply as exc:
        form.add_error(None, str(exc))
        return False
    except NotAllowed as exc:
        form.add_error(None, str(exc))
        return False
    return True


@workspace_view(admin=True)
@require_http_methods(["GET", "POST"])
def auto_replies(request):
    workspace = request.workspace
    raw = request.GET.get("channel") or request.POST.get("channel") or ""
    channel = queries.channel(workspace, int(raw)) if raw.isdigit() else None
    if request.method != "POST":
        return _page(request, channel)
    form = AutoReplyForm(
        request.POST, for_channel=channel is not None, auto_id=_auto_id(request.POST.get("kind"))
    )
    if form.is_valid() and _save(request, channel, form):
        messages.success(
            request, _("%(kind)s saved.") % {"kind": KIND_TITLES[form.cleaned_data["kind"]]}
        )
        url = redirect("wsettings:auto-replies", workspace.slug).url
        return redirect(f"{url}?channel={channel.pk}" if channel else url)
    return _page(request, channel, bound=form, status=400)


# -- a channel's own business hours -------------------------------------------------------------
class ChannelHoursForm(forms.Form):
    own_hours = forms.BooleanField(label=gettext_lazy("Hours of its own"), required=False)
    holidays = forms.CharField(
        label=gettext_lazy("Holidays"),
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy(
            "Closed all day: dates like 2026-12-25, one per line or comma separated. Empty: "
            "the workspace's holidays."
        ),
    )
    time_zone = forms.ChoiceField(label=gettext_lazy("Time zone"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [("", _("The workspace's"))] + [
            (zone, zone) for zone in sorted(hours.available_time_zones())
        ]
        for day, label in zip(hours.WEEKDAYS, WEEKDAY_LABELS, strict=True):
            self.fields[f"hours_{day}"] = forms.CharField(
                label=label,
                required=False,
                max_length=100,
                help_text=_("e.g. 09:00-12:30, 13:30-17:00; empty: closed"),
            )

    def hour_fields(self):
        return [self[f"hours_{day}"] for day in hours.WEEKDAYS]

    def value(self) -> dict | None:
        """The channel's ``business_hours`` as the service takes them (None: the workspace's)."""
        data = self.cleaned_data
        out: dict = {}
        if data.get("own_hours"):
            schedule = {}
            for day in hours.WEEKDAYS:
                ranges = []
                for part in filter(None, (p.strip() for p in data[f"hours_{day}"].split(","))):
                    start, _sep, end = part.partition("-")
                    ranges.append([start.strip(), end.strip()])
                if ranges:
                    schedule[day] = ranges
            out["hours"] = schedule
        days = [d for d in re.split(r"[\s,]+", data.get("holidays") or "") if d]
        if days:
            out["holidays"] = days
        if data.get("time_zone"):
            out["time_zone"] = data["time_zone"]
        return out or None

    @classmethod
    def for_channel(cls, channel, data=None) -> ChannelHoursForm:
        own = channel.business_hours or {}
        initial = {
            "own_hours": "hours" in own,
            "holidays": "\n".join(own.get("holidays") or []),
            "time_zone": own.get("time_zone", ""),
            **{
                f"hours_{day}": ", ".join(
                    f"{start}-{end}" for start, end in (own.get("hours") or {}).get(day, [])
                )
                for day in hours.WEEKDAYS
            },
        }
        return cls(data=data, initial=initial)


@workspace_view(admin=True)
@require_http_methods(["GET", "POST"])
def channel_hours(request, channel_id: int):
    """A channel's own hours: a card on the channel's page (loaded into it), or a page of its
    own without JavaScript and when the form comes back with errors."""
    channel = queries.channel(request.workspace, channel_id)
    form = ChannelHoursForm.for_channel(channel, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            set_channel_hours(channel, form.value())
        except hours.InvalidHours as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, _("Business hours of “%(name)s” saved.") % {"name": channel.name}
            )
            return redirect("wsettings:channel-edit", request.workspace.slug, channel.pk)
    template = "_channel_hours.html" if request.headers.get("HX-Request") else "channel_hours.html"
    return render(
        request,
        TEMPLATES + template,
        {"channel": channel, "form": form},
        status=400 if form.is_bound else 200,
    )
