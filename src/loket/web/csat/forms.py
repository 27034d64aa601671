"""The CSAT fields on a channel's settings page (every kind but the live chat, whose widget
asks for a rating itself). The setting is checked by loket.reports.csat.clean_setting."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from loket.reports import csat

ENABLED = "csat_enabled"
DELAY = "csat_delay_minutes"


def add_fields(form: forms.Form, channel) -> None:
    """Give a channel's settings form the two survey fields (nothing for the live chat)."""
    if not csat.applies_to(channel):
        return
    current = csat.setting_of(channel)
    form.csat_before = current  # a provider reconfigure may drop it before save() runs
    form.fields[ENABLED] = forms.BooleanField(
        label=_("Send a satisfaction survey after a conversation is resolved"),
        required=False,
        initial=current["enabled"],
        help_text=_(
            "The customer gets a short question on this channel asking them to rate the help "
            "from 1 to 5, with a link where they can add a comment."
        ),
    )
    form.fields[DELAY] = forms.IntegerField(
        label=_("Survey delay (minutes)"),
        required=False,  # left empty: the delay stays as it is
        min_value=0,
        max_value=csat.DELAY_MAX,
        initial=current["delay_minutes"],
        help_text=_(
            "How long after resolving the survey goes out (0 to %(max)d). Not sent if the "
            "conversation is reopened meanwhile."
        )
        % {"max": csat.DELAY_MAX},
    )


def has_fields(form: forms.Form) -> bool:
    return ENABLED in form.fields


def save(form: forms.Form, channel) -> None:
    """Store the survey setting from a valid form (ValueError as clean_setting says)."""
    if not has_fields(form):
        return
    delay = form.cleaned_data.get(DELAY)
    if delay is None:
        delay = getattr(form, "csat_before", csat.setting_of(channel))["delay_minutes"]
    csat.set_setting(
        channel, {"enabled": bool(form.cleaned_data.get(ENABLED)), "delay_minutes": delay}
    )
