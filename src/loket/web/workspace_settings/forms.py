"""Forms of the settings pages. Choices that name rows (members, teams) are limited to the
current workspace, so another workspace's id is an invalid choice, never a change."""

from __future__ import annotations

import re

from django import forms
from django.conf import settings
from django.core.validators import RegexValidator
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from loket.connectors.base import InvalidConfig
from loket.connectors.email.connector import SECRET_KEYS as EMAIL_SECRET_KEYS
from loket.inbox.services.labels import COLOR_PATTERN, NAME_MAX_LENGTH
from loket.tenancy import hours
from loket.tenancy.models import AutoAssign, Availability, Membership, Role, Team, Workspace
from loket.tenancy.services import (
    MAX_ATTACHMENT_MB,
    MAX_TWO_FACTOR_GRACE_DAYS,
)

MAX_CAPACITY = 1000
WEEKDAY_LABELS = (
    _("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"), _("Saturday"),
    _("Sunday"),
)  # fmt: skip

# The models' choice labels are not translated (changing them would need a migration).
ROLE_LABELS = {
    Role.OWNER: pgettext_lazy("member role", "Owner"),
    Role.ADMIN: pgettext_lazy("member role", "Admin"),
    Role.SUPERVISOR: pgettext_lazy("member role", "Supervisor"),
    Role.AGENT: pgettext_lazy("member role", "Agent"),
}
AVAILABILITY_LABELS = {
    Availability.ONLINE: pgettext_lazy("availability", "Online"),
    Availability.AWAY: pgettext_lazy("availability", "Away"),
    Availability.OFFLINE: pgettext_lazy("availability", "Offline"),
}


class WorkspaceProfileForm(forms.Form):
    name = forms.CharField(label=_("Workspace name"), max_length=200)
    time_zone = forms.ChoiceField(
        label=_("Time zone"),
        help_text=_("Dates and times in the inbox and reports are shown in this time zone."),
    )
    locale = forms.ChoiceField(
        label=_("Default language"),
        choices=settings.LANGUAGES,
        help_text=_("For members who have not chosen a language of their own."),
    )
    require_2fa = forms.BooleanField(
        label=_("Require two-factor authentication for every member"), required=False
    )
    two_factor_grace_days = forms.IntegerField(
        label=_("Grace period (days)"),
        min_value=0,
        max_value=MAX_TWO_FACTOR_GRACE_DAYS,
        help_text=_(
            "Members without two-factor authentication may keep working this many days after "
            "the requirement is switched on; then they must set it up before they continue."
        ),
    )
    attachment_max_mb = forms.IntegerField(
        label=_("Largest attachment (MB)"),
        min_value=1,
        max_value=MAX_ATTACHMENT_MB,
        help_text=_(
            "Larger files (in mail, chat or replies) are not stored; the message is kept and "
            "says which file was left out."
        ),
    )

    holidays = forms.CharField(
        label=_("Holidays"),
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Closed all day: dates like 2026-12-25, one per line or comma separated."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [
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

    def clean(self):
        data = super().clean()
        schedule = {}
        for day in hours.WEEKDAYS:
            text = (data.pop(f"hours_{day}", "") or "").strip()
            ranges = []
            for part in filter(None, (p.strip() for p in text.split(","))):
                start, _, end = part.partition("-")
                ranges.append([start.strip(), end.strip()])
            if ranges:
                schedule[day] = ranges
        holidays_text = data.get("holidays") or ""
        days = [d for d in re.split(r"[\s,]+", holidays_text) if d]
        try:
            data["business_hours"] = hours.clean_schedule(schedule)
            data["holidays"] = hours.clean_holidays(days)
        except hours.InvalidHours as exc:
            raise forms.ValidationError(str(exc)) from None
        return data

    @classmethod
    def for_workspace(cls, workspace: Workspace, data=None) -> WorkspaceProfileForm:
        initial = {
            "name": workspace.name,
            "time_zone": workspace.time_zone,
            "locale": workspace.locale,
            "require_2fa": workspace.require_2fa,
            "two_factor_grace_days": workspace.two_factor_grace_days,
            "attachment_max_mb": workspace.attachment_max_mb,
            "holidays": "\n".join(workspace.holidays or []),
            **{
                f"hours_{day}": ", ".join(
                    f"{start}-{end}" for start, end in (workspace.business_hours or {}).get(day, [])
                )
                for day in hours.WEEKDAYS
            },
        }
        return cls(data=data, initial=initial)


class MemberForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=list(ROLE_LABELS.items()))
    capacity = forms.IntegerField(
        label=_("Capacity"),
        min_value=0,
        max_value=MAX_CAPACITY,
        help_text=_("How many open conversations automatic assignment may give this member."),
    )
    # Optional limits per kind of work within the capacity (loket.automation.assignment).
    capacity_chat = forms.IntegerField(
        label=_("Chats at most"), min_value=0, max_value=MAX_CAPACITY, required=False
    )
    capacity_email = forms.IntegerField(
        label=_("Emails at most"), min_value=0, max_value=MAX_CAPACITY, required=False
    )

    def pop_capacities(self) -> dict | None:
        """The per-kind limits, taken out of ``cleaned_data`` (empty: no limit of its own);
        None when the form did not carry them (they stay as they are)."""
        keys = ("chat", "email")
        values = {kind: self.cleaned_data.pop(f"capacity_{kind}", None) for kind in keys}
        if not any(f"capacity_{kind}" in self.data for kind in keys):
            return None
        return {kind: value for kind, value in values.items() if value is not None}


class MemberChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Membership) -> str:
        if obj.user.name:
            return f"{obj.user.name} <{obj.user.email}>"
        return obj.user.email


class TeamForm(forms.Form):
    name = forms.CharField(label=_("Team name"), max_length=100)
    members = MemberChoiceField(
        label=_("Members"),
        queryset=Membership.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    # Left out of a post: the team's mode stays as it is.
    auto_assign = forms.ChoiceField(
        label=_("Automatic assignment"),
        choices=AutoAssign.choices,
        required=False,
        help_text=_(
            "New and reopened conversations of this team go to an online member with room: in "
            "turn (round robin) or to whoever has the most room (workload balancing)."
        ),
    )
    reassign_when_offline = forms.BooleanField(
        label=_("Reassign a member's open conversations when they go offline"), required=False
    )

    def __init__(self, workspace: Workspace, *args, team: Team | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        self.team = team
        self.fields["members"].queryset = (
            Membership.objects.filter(workspace=workspace)
            .select_related("user")
            .order_by("user__name", "user__email")
        )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        clash = Team.objects.filter(workspace=self.workspace, name__iexact=name)
        if self.team is not None:
            clash = clash.exclude(pk=self.team.pk)
        if clash.exists():
            raise forms.ValidationError(
                _("There is already a team called “%(name)s”."), params={"name": name}
            )
        return name


class LabelForm(forms.Form):
    name = forms.CharField(label=_("Label name"), max_length=NAME_MAX_LENGTH)
    color = forms.CharField(
        label=_("Colour"),
        max_length=7,
        validators=[
            RegexValidator(COLOR_PATTERN, _("A colour is written as #rrggbb, for example #1f5fd1."))
        ],
        # The browser's colour picker always sends #rrggbb; the server still checks.
        widget=forms.TextInput(attrs={"type": "color"}),
        initial="#6b7280",
    )


class TeamChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Team) -> str:
        return obj.name


def _team_field() -> TeamChoiceField:
    return TeamChoiceField(
        label=_("Default team"),
        queryset=Team.objects.none(),
        required=False,
        empty_label=_("No team"),
        help_text=_("New conversations on this channel go to this team."),
    )


class ChannelForm(forms.Form):
    name = forms.CharField(label=_("Channel name"), max_length=200)
    default_team = _team_field()

    def __init__(self, workspace: Workspace, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["default_team"].queryset = Team.objects.filter(workspace=workspace).order_by(
            "name"
        )


class ConnectorChannelForm(ChannelForm):
    """A channel's provider settings, built from its connector's ``setup_fields``. Secret fields
    are never filled in; left blank when editing, the stored value stays."""

    def __init__(self, workspace: Workspace, connector, *args, initial_config=None, **kwargs):
        super().__init__(workspace, *args, **kwargs)
        self.connector = connector
        self.editing = initial_config is not None
        self.setup_names = []
        for spec in connector.setup_fields:
            field_kwargs = {
                "label": spec.label,
                "help_text": spec.help,
                "required": spec.required and not (spec.secret and self.editing),
            }
            if spec.choices:
                field = forms.ChoiceField(choices=spec.choices, **field_kwargs)
            elif spec.secret:
                field = forms.CharField(
                    widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
                    max_length=4096,
                    **field_kwargs,
                )
                if self.editing:
                    field.help_text = " ".join(
                        str(t) for t in (spec.help, _("Leave blank to keep the saved one.")) if t
                    )
            else:
                field = forms.CharField(max_length=2000, **field_kwargs)
            value = (initial_config or {}).get(spec.name, spec.initial)
            if not spec.secret and value not in (None, ""):
                field.initial = value
            self.fields[spec.name] = field
            self.setup_names.append(spec.name)

    def setup_fields(self):
        return [self[name] for name in self.setup_names]

    def config(self) -> dict:
        secret = {spec.name for spec in self.connector.setup_fields if spec.secret}
        data = self.cleaned_data
        return {
            name: data[name].strip() if isinstance(data[name], str) else data[name]
            for name in self.setup_names
            if not (name in secret and not data[name])
        }


class ApiChannelForm(ChannelForm):
    outbound_url = forms.URLField(
        label=_("Outbound URL"),
        required=False,
        assume_scheme="https",
        help_text=_(
            "Where Loket posts your agents' replies, signed with the channel's secret. "
            "Leave empty if this channel only receives messages."
        ),
    )


_SECURITY = [
    ("tls", _("TLS (implicit, e.g. port 993 / 465)")),
    ("starttls", _("STARTTLS (e.g. port 143 / 587)")),
    ("none", _("None (only on a trusted network)")),
]


class EmailChannelForm(ChannelForm):
    """An email channel's settings; field names are the email connector's config keys. Blank
    passwords keep the stored ones when editing."""

    SECRETS = EMAIL_SECRET_KEYS

    address = forms.EmailField(
        label=_("Support address"),
        help_text=_("Customers write to this address; replies are sent from it."),
    )
    from_name = forms.CharField(
        label=_("Sender name"),
        max_length=200,
        required=False,
        help_text=_("Shown as the sender of replies, e.g. “Acme Support”."),
    )
    inbound = forms.ChoiceField(
        label=_("Receive mail"),
        choices=[
            ("imap", _("Read a mailbox over IMAP")),
            ("forward", _("Forward mail to Loket's own SMTP receiver")),
            ("esp", _("Receive mail from an email service's inbound webhook")),
        ],
    )
    esp = forms.ChoiceField(
        label=_("Email service"),
        required=False,
        choices=[
            ("", "—"),
            ("mailgun", "Mailgun"),
            ("postmark", "Postmark"),
            ("sendgrid", "SendGrid"),
            ("ses", "Amazon SES (through SNS)"),
        ],
    )
    esp_signing_key = forms.CharField(
        label=_("Mailgun webhook signing key"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
    )
    esp_webhook_password = forms.CharField(
        label=_("Webhook password"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_(
            "Postmark, SendGrid, Amazon SNS: put it in the webhook URL as "
            "https://loket:<password>@… ."
        ),
    )
    esp_sendgrid_public_key = forms.CharField(
        label=_("SendGrid security policy public key"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
    )
    esp_sns_topic_arn = forms.CharField(
        label=_("Amazon SNS topic ARN"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
    )
    imap_host = forms.CharField(label=_("IMAP server"), max_length=253, required=False)
    imap_port = forms.IntegerField(label=_("IMAP port"), min_value=1, max_value=65535, initial=993)
    imap_security = forms.ChoiceField(label=_("IMAP security"), choices=_SECURITY)
    imap_username = forms.CharField(label=_("IMAP user name"), max_length=254, required=False)
    imap_password = forms.CharField(
        label=_("IMAP password"), required=False, widget=forms.PasswordInput(render_value=False)
    )
    imap_oauth2_token = forms.CharField(
        label=_("IMAP OAuth2 access token"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Instead of a password (XOAUTH2, e.g. Microsoft 365 or Google)."),
    )
    imap_folder = forms.CharField(label=_("Folder to read"), max_length=200, initial="INBOX")
    imap_processed_action = forms.ChoiceField(
        label=_("After a mail is stored"),
        choices=[("seen", _("Mark it as read")), ("move", _("Move it to a folder"))],
    )
    imap_processed_folder = forms.CharField(
        label=_("Move stored mail to"), max_length=200, required=False
    )
    imap_sent_folder = forms.CharField(
        label=_("Sent folder"),
        max_length=200,
        required=False,
        help_text=_("Replies are copied here; leave empty if the SMTP server does it."),
    )
    smtp_host = forms.CharField(label=_("SMTP server"), max_length=253)
    smtp_port = forms.IntegerField(label=_("SMTP port"), min_value=1, max_value=65535, initial=587)
    smtp_security = forms.ChoiceField(label=_("SMTP security"), choices=_SECURITY)
    smtp_username = forms.CharField(label=_("SMTP user name"), max_length=254, required=False)
    smtp_password = forms.CharField(
        label=_("SMTP password"), required=False, widget=forms.PasswordInput(render_value=False)
    )
    smtp_oauth2_token = forms.CharField(
        label=_("SMTP OAuth2 access token"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
    )
    plus_addressing = forms.BooleanField(
        label=_("Reply address per conversation (support+…@)"),
        required=False,
        help_text=_("Only when your mail server delivers plus-addressed mail to the mailbox."),
    )
    reopen_resolved = forms.BooleanField(
        label=_("A reply reopens a resolved conversation"), required=False, initial=True
    )
    new_conversation_after_days = forms.IntegerField(
        label=_("… unless it was resolved more than this many days ago"),
        min_value=0,
        max_value=3650,
        initial=7,
    )
    trusted_authserv_ids = forms.CharField(
        label=_("Trusted Authentication-Results hosts"),
        max_length=2000,
        required=False,
        help_text=_(
            "Your own mail servers that add SPF/DKIM/DMARC results (comma separated). "
            "Results added by any other host are ignored."
        ),
    )
    signature = forms.CharField(
        label=_("Signature"),
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, workspace: Workspace, *args, initial_config=None, **kwargs):
        initial = {**(initial_config or {}), **kwargs.pop("initial", {})}
        if isinstance(initial.get("trusted_authserv_ids"), list):
            initial["trusted_authserv_ids"] = ", ".join(initial["trusted_authserv_ids"])
        super().__init__(workspace, *args, initial=initial, **kwargs)

    def config(self) -> dict:
        data = self.cleaned_data
        keys = [
            name
            for name in self.fields
            if name not in ("name", "default_team") and not name.startswith("csat_")
        ]
        return {key: data[key] for key in keys if not (key in self.SECRETS and not data[key])}


class LiveChatChannelForm(ChannelForm):
    """A live-chat widget's settings; field names are the live-chat connector's config keys."""

    title = forms.CharField(label=_("Widget title"), max_length=100, required=False)
    greeting = forms.CharField(
        label=_("Greeting"),
        max_length=500,
        required=False,
        help_text=_("The first thing a visitor reads, e.g. “Hi! How can we help?”"),
    )
    color = forms.RegexField(
        label=_("Colour"),
        regex=r"^#[0-9a-fA-F]{6}$",
        initial="#1f5fd1",
        widget=forms.TextInput(attrs={"type": "color"}),
    )
    position = forms.ChoiceField(
        label=_("Position"), choices=[("right", _("Bottom right")), ("left", _("Bottom left"))]
    )
    allowed_origins = forms.CharField(
        label=_("Websites allowed to show the chat"),
        max_length=4000,
        required=False,
        help_text=_(
            "Origins such as https://www.example.com, comma separated. Empty: any website."
        ),
    )
    reply_time = forms.CharField(
        label=_("Expected reply time"),
        max_length=100,
        required=False,
        help_text=_("Shown in the widget, e.g. “within a few minutes”."),
    )
    require_identity = forms.BooleanField(
        label=_("Only signed-in users of your website may chat"),
        required=False,
        help_text=_("Your website passes the user's id with an HMAC made with the secret."),
    )
    branding = forms.BooleanField(label=_("Show “Powered by Loket”"), required=False, initial=True)
    continuity_email_channel = forms.ChoiceField(
        label=_("Email replies to visitors who left, from"),
        required=False,
        help_text=_(
            "Outside business hours the chat then asks for an email address, and the visitor's "
            "answer to an emailed reply comes back into the chat."
        ),
    )

    KEYS = (
        "title",
        "greeting",
        "color",
        "position",
        "allowed_origins",
        "reply_time",
        "require_identity",
        "branding",
        "continuity_email_channel",
    )

    def __init__(self, workspace: Workspace, *args, initial_config=None, **kwargs):
        from loket.inbox.models import Channel

        initial = {**(initial_config or {}), **kwargs.pop("initial", {})}
        if isinstance(initial.get("allowed_origins"), list):
            initial["allowed_origins"] = ", ".join(initial["allowed_origins"])
        super().__init__(workspace, *args, initial=initial, **kwargs)
        rules = list(initial.get("proactive") or [])
        self.extra_rules = rules[self.PROACTIVE_ROWS :]
        self._add_proactive_fields(rules)
        self._add_prechat_fields(initial.get("prechat") or {})
        self.initial_texts = dict(initial.get("texts") or {})
        self._add_text_fields(self.initial_texts)
        mailboxes = Channel.objects.filter(workspace=workspace, kind="email").order_by("name")
        self.fields["continuity_email_channel"].choices = [("", _("Nobody: no email"))] + [
            (str(channel.uuid), channel.name) for channel in mailboxes
        ]

    team_photos = forms.FileField(
        label=_("Team photos"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
        help_text=_("Up to three small photos shown in the chat's header (PNG, JPEG or WebP)."),
    )
    clear_team_photos = forms.BooleanField(label=_("Remove the team photos"), required=False)

    PROACTIVE_ROWS = 3
    TEXT_KEYS = ("greeting", "placeholder", "prechat_intro", "offline_intro", "launcher_label")
    TEXT_LANGUAGES = ("en", "nl")

    def _add_text_fields(self, texts: dict) -> None:
        labels = {
            "greeting": _("Greeting"),
            "placeholder": _("Message box placeholder"),
            "prechat_intro": _("Pre-chat form introduction"),
            "offline_intro": _("Outside business hours"),
            "launcher_label": _("Launcher button label"),
        }
        for language in self.TEXT_LANGUAGES:
            for key in self.TEXT_KEYS:
                self.fields[f"text_{language}_{key}"] = forms.CharField(
                    label=f"{labels[key]} ({language})",
                    max_length=500,
                    required=False,
                    initial=(texts.get(language) or {}).get(key),
                    help_text=_("Empty: Loket's own text."),
                )

    def text_fields(self):
        return [
            self[f"text_{lang}_{key}"] for lang in self.TEXT_LANGUAGES for key in self.TEXT_KEYS
        ]

    def _add_proactive_fields(self, rules: list[dict]) -> None:
        """A few rows of proactive messages: message, page, seconds, who, when."""
        for index in range(self.PROACTIVE_ROWS):
            rule = rules[index] if index < len(rules) else {}
            prefix = f"proactive_{index}_"
            self.fields[prefix + "message"] = forms.CharField(
                label=_("Message"), max_length=500, required=False, initial=rule.get("message")
            )
            self.fields[prefix + "nl"] = forms.CharField(
                label=_("Message in Dutch"),
                max_length=500,
                required=False,
                initial=(rule.get("texts") or {}).get("nl"),
            )
            self.fields[prefix + "url_contains"] = forms.CharField(
                label=_("On pages whose address contains"),
                max_length=200,
                required=False,
                initial=rule.get("url_contains"),
            )
            self.fields[prefix + "seconds_on_page"] = forms.IntegerField(
                label=_("After seconds on the page"),
                min_value=0,
                max_value=3600,
                required=False,
                initial=rule.get("seconds_on_page", 0),
            )
            self.fields[prefix + "returning_only"] = forms.BooleanField(
                label=_("Only returning visitors"),
                required=False,
                initial=rule.get("returning_only", False),
            )
            self.fields[prefix + "business_hours_only"] = forms.BooleanField(
                label=_("Only during business hours"),
                required=False,
                initial=rule.get("business_hours_only", False),
            )

    def proactive_rows(self):
        names = ("message", "nl", "url_contains", "seconds_on_page", "returning_only",
                 "business_hours_only")  # fmt: skip
        return [
            [self[f"proactive_{index}_{name}"] for name in names]
            for index in range(self.PROACTIVE_ROWS)
        ]

    PRECHAT_BUILTIN = (
        # (key, type, label in the config when the admin gives none)
        ("name", "text", "Name"),
        ("email", "email", "Email"),
        ("phone", "tel", "Phone"),
    )
    PRECHAT_CUSTOM_ROWS = 3

    def _add_prechat_fields(self, prechat: dict) -> None:
        """The pre-chat form (``config.prechat``): name, email and phone, each asked or not and
        required or not, and a few custom questions (label, key, type, required). Fields set
        through the API beyond these rows are kept as they are."""
        fields = [f for f in prechat.get("fields") or [] if isinstance(f, dict)]
        builtin = {key for key, _type, _label in self.PRECHAT_BUILTIN}
        by_name = {f.get("name"): f for f in fields if f.get("name") in builtin}
        custom = [f for f in fields if f.get("name") not in builtin]
        self.extra_prechat = custom[self.PRECHAT_CUSTOM_ROWS :]
        self.fields["prechat_enabled"] = forms.BooleanField(
            label=_("Ask these questions before the chat starts"),
            required=False,
            initial=bool(prechat.get("enabled")),
        )
        asks = {
            "name": _("Ask for the name"),
            "email": _("Ask for the email address"),
            "phone": _("Ask for the phone number"),
        }
        for key, _type, default in self.PRECHAT_BUILTIN:
            field = by_name.get(key) or {}
            self.fields[f"prechat_{key}"] = forms.BooleanField(
                label=asks[key], required=False, initial=bool(field)
            )
            self.fields[f"prechat_{key}_required"] = forms.BooleanField(
                label=_("Required"), required=False, initial=bool(field.get("required"))
            )
            self.fields[f"prechat_{key}_label"] = forms.CharField(
                label=_("Label"),
                max_length=100,
                required=False,
                initial=field.get("label") or default,
            )
        for index in range(self.PRECHAT_CUSTOM_ROWS):
            field = custom[index] if index < len(custom) else {}
            prefix = f"prechat_custom_{index}_"
            self.fields[prefix + "label"] = forms.CharField(
                label=_("Question"), max_length=100, required=False, initial=field.get("label")
            )
            self.fields[prefix + "name"] = forms.CharField(
                label=_("Key"),
                max_length=40,
                required=False,
                initial=field.get("name"),
                help_text=_("e.g. order_number; empty: made from the question."),
            )
            self.fields[prefix + "type"] = forms.ChoiceField(
                label=_("Answer"),
                choices=[
                    ("text", _("Text")),
                    ("email", _("Email address")),
                    ("tel", _("Phone number")),
                ],
                initial=field.get("type") or "text",
                required=False,
            )
            self.fields[prefix + "required"] = forms.BooleanField(
                label=_("Required"), required=False, initial=bool(field.get("required"))
            )

    def prechat_rows(self):
        """(legend, fields) per row: name, email, phone, then the custom questions."""
        legends = {"name": _("Name"), "email": _("Email address"), "phone": _("Phone number")}
        rows = [
            (legends[key], [self[f"prechat_{key}{name}"] for name in ("", "_required", "_label")])
            for key, _type, _label in self.PRECHAT_BUILTIN
        ]
        for index in range(self.PRECHAT_CUSTOM_ROWS):
            names = ("label", "name", "type", "required")
            rows.append(
                (
                    _("Question %(number)s") % {"number": index + 1},
                    [self[f"prechat_custom_{index}_{name}"] for name in names],
                )
            )
        return rows

    def _prechat_custom(self, index: int) -> dict | None:
        """A custom question row as a config field (None when empty); an empty key is made
        from the question."""
        data = self.cleaned_data
        prefix = f"prechat_custom_{index}_"
        label = (data.get(prefix + "label") or "").strip()
        name = (data.get(prefix + "name") or "").strip()
        if not label and not name:
            return None
        if not name:
            name = re.sub(r"[^a-z0-9]+", "_", slugify(label)).strip("_")[:40]
        return {
            "name": name,
            "label": label,
            "type": data.get(prefix + "type") or "text",
            "required": bool(data.get(prefix + "required")),
        }

    def _prechat_config(self) -> dict:
        data = self.cleaned_data
        fields = [
            {
                "name": key,
                "label": (data.get(f"prechat_{key}_label") or "").strip() or default,
                "type": kind,
                "required": bool(data.get(f"prechat_{key}_required")),
            }
            for key, kind, default in self.PRECHAT_BUILTIN
            if data.get(f"prechat_{key}")
        ]
        for index in range(self.PRECHAT_CUSTOM_ROWS):
            field = self._prechat_custom(index)
            if field is not None:
                fields.append(field)
        return {"enabled": bool(data.get("prechat_enabled")), "fields": fields + self.extra_prechat}

    def clean(self):
        """The pre-chat questions go through the connector's own check (the one the API
        uses); a bad row's error is shown at its key, anything else above the form."""
        from loket.connectors.livechat.connector import _prechat as check_prechat

        data = super().clean()
        for index in range(self.PRECHAT_CUSTOM_ROWS):
            field = self._prechat_custom(index)
            if field is None:
                continue
            try:
                check_prechat({"fields": [field]})
            except InvalidConfig:
                self.add_error(
                    f"prechat_custom_{index}_name",
                    _(
                        "“%(key)s” cannot be a key: use lowercase letters, digits and “_”, "
                        "starting with a letter, e.g. order_number."
                    )
                    % {"key": field["name"]},
                )
        if not any(name.startswith("prechat_") for name in self.errors):
            try:
                check_prechat(self._prechat_config())
            except InvalidConfig as exc:
                self.add_error(None, str(exc))
        return data

    def config(self) -> dict:
        config = {key: self.cleaned_data[key] for key in self.KEYS}
        config["prechat"] = self._prechat_config()
        rules = []
        for index in range(self.PROACTIVE_ROWS):

            def value(name: str, index: int = index):
                return self.cleaned_data.get(f"proactive_{index}_{name}")

            if not (value("message") or "").strip():
                continue
            rule = {
                "message": value("message").strip(),
                "url_contains": (value("url_contains") or "").strip(),
                "seconds_on_page": value("seconds_on_page") or 0,
                "returning_only": bool(value("returning_only")),
                "business_hours_only": bool(value("business_hours_only")),
            }
            if (value("nl") or "").strip():
                rule["texts"] = {"nl": value("nl").strip()}
            rules.append(rule)
        # Rules beyond the rows shown (set through the API) are kept as they are.
        config["proactive"] = rules + self.extra_rules
        texts = {lang: dict(entries) for lang, entries in self.initial_texts.items()}
        for language in self.TEXT_LANGUAGES:
            entries = texts.setdefault(language, {})
            for key in self.TEXT_KEYS:
                value = (self.cleaned_data.get(f"text_{language}_{key}") or "").strip()
                if value:
                    entries[key] = value
                else:
                    entries.pop(key, None)
        config["texts"] = {lang: entries for lang, entries in texts.items() if entries}
        return config


class TokenForm(forms.Form):
    name = forms.CharField(
        label=_("Token name"),
        max_length=100,
        required=False,
        help_text=_("What the token is for, e.g. “Webshop integration”."),
    )


# -- Canned replies ---------------------------------------------------------------------------
class CannedReplyForm(forms.Form):
    """A canned reply's fields; the service (loket.automation.canned) checks them again and has
    the last word on clashes and permissions. ``shared`` is offered to admins only."""

    shortcut = forms.CharField(
        label=_("Shortcut"),
        max_length=33,  # a leading "/" is allowed and dropped
        help_text=_("Type “/” and this in the composer. Letters, digits, “-” and “_”."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    title = forms.CharField(label=_("Title"), max_length=200)
    language = forms.CharField(
        label=_("Language"),
        max_length=10,
        required=False,
        help_text=_("A code such as “en” or “nl”; empty for any language."),
        widget=forms.TextInput(attrs={"list": "canned-languages", "autocomplete": "off"}),
    )
    body = forms.CharField(
        label=_("Text"),
        max_length=10_000,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_(
            "Variables: {{contact.first_name}}, {{contact.name}}, {{contact.email}}, "
            "{{contact.phone}}, {{agent.name}}, {{agent.first_name}}, {{conversation.number}}, "
            "{{conversation.subject}}, {{workspace.name}}, {{contact.attributes.key}}, "
            "{{conversation.custom.key}}. A default after “|” is used when a value is missing: "
            "{{contact.first_name|there}}."
        ),
    )
    shared = forms.BooleanField(
        label=_("Shared with the whole workspace"),
        required=False,
        help_text=_("Unticked: a personal reply only you see and use."),
    )

    def __init__(self, *args, may_share: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not may_share:
            del self.fields["shared"]
