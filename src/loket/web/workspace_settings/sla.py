"""Settings → SLA policies: list, create, edit and delete a workspace's policies, with the
minutes per target and priority in one grid (loket.automation.sla has the rules). Admin-only;
another workspace's policy is a 404."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from loket.automation import sla
from loket.automation.models import SlaPolicy, SlaTarget, SlaWarnUnit
from loket.inbox import selectors
from loket.inbox.models import Priority
from loket.tenancy.services import NotAllowed
from loket.web.workspace import workspace_view

TEMPLATES = "web/workspace_settings/"


def _target_field(priority: int, target: str) -> str:
    return f"t_{priority}_{target}"


class SlaPolicyForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    enabled = forms.BooleanField(label=gettext_lazy("Enabled"), required=False, initial=True)
    is_default = forms.BooleanField(
        label=gettext_lazy("Default policy"),
        required=False,
        help_text=gettext_lazy("For new conversations of channels no other policy lists."),
    )
    business_hours = forms.TypedChoiceField(
        label=gettext_lazy("Count"),
        choices=[
            ("1", gettext_lazy("Business hours (the channel's, else the workspace's)")),
            ("0", gettext_lazy("Calendar hours (around the clock)")),
        ],
        coerce=lambda value: value == "1",
        initial="1",
    )
    warn_unit = forms.ChoiceField(
        label=gettext_lazy("Warn as “due soon”"), choices=SlaWarnUnit.choices
    )
    warn_value = forms.IntegerField(
        label=gettext_lazy("Warning at"),
        min_value=0,
        max_value=sla.MAX_MINUTES,
        initial=80,
        help_text=gettext_lazy("E.g. 80 percent of the target, or 15 minutes before the due time."),
    )
    channels = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Channels"),
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy(
            "New conversations of these channels get this policy. None: only as the default."
        ),
    )

    def __init__(self, *args, member, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channels"].queryset = selectors.channels(member).order_by("name")
        for priority in Priority.values:
            for target in SlaTarget.values:
                self.fields[_target_field(priority, target)] = forms.IntegerField(
                    required=False, min_value=1, max_value=sla.MAX_MINUTES
                )

    def grid(self) -> list[dict]:
        """The targets' rows (one per priority) for the template."""
        return [
            {
                "label": label,
                "cells": [
                    {"field": self[_target_field(priority, target)], "target": target_label}
                    for target, target_label in SlaTarget.choices
                ],
            }
            for priority, label in reversed(Priority.choices)
        ]

    def service_fields(self) -> dict:
        data = self.cleaned_data
        targets = {
            str(priority): {
                target: data[_target_field(priority, target)]
                for target in SlaTarget.values
                if data.get(_target_field(priority, target))
            }
            for priority in Priority.values
        }
        return {
            "name": data["name"],
            "enabled": data["enabled"],
            "is_default": data["is_default"],
            "business_hours": data["business_hours"],
            "warn_unit": data["warn_unit"],
            "warn_value": data["warn_value"],
            "channels": list(data["channels"]),
            "targets": {key: value for key, value in targets.items() if value},
        }

    @classmethod
    def initial_for(cls, policy: SlaPolicy) -> dict:
        initial = {
            "name": policy.name,
            "enabled": policy.enabled,
            "is_default": policy.is_default,
            "business_hours": "1" if policy.business_hours else "0",
            "warn_unit": policy.warn_unit,
            "warn_value": policy.warn_value,
            "channels": list(policy.channels.all()),
        }
        for priority in Priority.values:
            for target in SlaTarget.values:
                initial[_target_field(priority, target)] = policy.minutes(priority, target)
        return initial


def _page(request, form: SlaPolicyForm | None = None, status: int = 200):
    member = request.membership
    return render(
        request,
        TEMPLATES + "sla_policies.html",
        {
            "policies": list(sla.policies(member.workspace_id)),
            "form": form or SlaPolicyForm(member=member),
            "targets": SlaTarget.choices,
        },
        status=status,
    )


def _save_error(form: SlaPolicyForm, exc: sla.InvalidPolicy) -> None:
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, str(exc))


@workspace_view(admin=True)
@require_http_methods(["GET", "POST"])
def sla_policies(request):
    member = request.membership
    if request.method != "POST":
        return _page(request)
    form = SlaPolicyForm(request.POST, member=member)
    if form.is_valid():
        try:
            policy = sla.create_policy(member.workspace, actor=member, **form.service_fields())
        except sla.InvalidPolicy as exc:
            _save_error(form, exc)
        except NotAllowed as exc:
            raise PermissionDenied(str(exc)) from exc
        else:
            messages.success(request, _("SLA policy “%(name)s” created.") % {"name": policy.name})
            return redirect("wsettings:sla-policies", request.workspace.slug)
    return _page(request, form=form, status=400)


@workspace_view(admin=True)
@require_http_methods(["GET", "POST"])
def sla_policy_edit(request, policy_id: int):
    member = request.membership
    policy = sla.get_policy(member, policy_id)
    if request.method == "POST":
        form = SlaPolicyForm(request.POST, member=member)
        if form.is_valid():
            try:
                sla.update_policy(policy, actor=member, **form.service_fields())
            except sla.InvalidPolicy as exc:
                _save_error(form, exc)
            except NotAllowed as exc:
                raise PermissionDenied(str(exc)) from exc
            else:
                messages.success(request, _("SLA policy “%(name)s” saved.") % {"name": policy.name})
                return redirect("wsettings:sla-policies", request.workspace.slug)
    else:
        form = SlaPolicyForm(member=member, initial=SlaPolicyForm.initial_for(policy))
    return render(
        request,
        TEMPLATES + "sla_policy_edit.html",
        {"policy": policy, "form": form, "targets": SlaTarget.choices},
        status=400 if form.is_bound else 200,
    )


@workspace_view(admin=True)
@require_POST
def sla_policy_delete(request, policy_id: int):
    member = request.membership
    policy = sla.get_policy(member, policy_id)
    name = policy.name
    try:
        sla.delete_policy(policy, actor=member)
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from exc
    messages.success(request, _("SLA policy “%(name)s” deleted.") % {"name": name})
    return redirect("wsettings:sla-policies", request.workspace.slug)
