"""Settings → Rules: the ordered list, the editor (conditions and actions built in the browser
from the allow-lists, sent as JSON and checked by the service), "test this rule" against a
conversation, and each rule's history. Owners and admins only; another workspace's rule is 404.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from loket.automation.models import TIMED_TRIGGERS, CannedReply, Rule, RuleTrigger, SlaPolicy
from loket.automation.rules import actions as rule_actions
from loket.automation.rules import conditions as rule_conditions
from loket.automation.rules import engine, service
from loket.bots.models import Flow
from loket.inbox.models import Channel, Conversation, ConversationStatus, Label, Priority
from loket.knowledge.models import Sentiment, Urgency
from loket.tenancy.models import Membership, Team
from loket.tenancy.services import NotAllowed
from loket.web.workspace import workspace_view

TEMPLATES = "web/workspace_settings/"
EMPTY_CONDITIONS = {"match": "all", "conditions": []}
SLA_TARGET_LABELS = {
    "first_response": gettext_lazy("First response"),
    "next_response": gettext_lazy("Next response"),
    "resolution": gettext_lazy("Resolution"),
}
CHANGE_LABELS = {
    "status": gettext_lazy("Status"),
    "assignee_id": gettext_lazy("Assignee"),
    "team_id": gettext_lazy("Team"),
    "priority": gettext_lazy("Priority"),
    "labels": gettext_lazy("Labels"),
    "snoozed_until": gettext_lazy("Snooze time"),
    "language": gettext_lazy("Language"),
    "sentiment": gettext_lazy("Sentiment (estimate)"),
    "urgency": gettext_lazy("Urgency (estimate)"),
    "predicted_labels": gettext_lazy("Suggested labels"),
}


def _options(workspace_id: int) -> dict[str, list[dict]]:
    """The values the editor offers, per kind of value (one query each)."""
    members = Membership.objects.filter(workspace_id=workspace_id).select_related("user")
    return {
        "member": [{"value": m.pk, "label": m.display_name} for m in members],
        "team": [
            {"value": t.pk, "label": t.name}
            for t in Team.objects.filter(workspace_id=workspace_id).order_by("name")
        ],
        "channel": [
            {"value": c.pk, "label": c.name}
            for c in Channel.objects.filter(workspace_id=workspace_id).order_by("name")
        ],
        "channel_kind": [
            {"value": kind, "label": kind}
            for kind in sorted(
                set(
                    Channel.objects.filter(workspace_id=workspace_id).values_list("kind", flat=True)
                )
            )
        ],
        "status": [{"value": v, "label": str(label)} for v, label in ConversationStatus.choices],
        "settable_status": [
            {"value": v, "label": str(ConversationStatus(v).label)}
            for v in rule_actions.SETTABLE_STATUSES
        ],
        "priority": [{"value": v, "label": str(label)} for v, label in Priority.choices],
        "sentiment": [{"value": v, "label": str(label)} for v, label in Sentiment.choices],
        "urgency": [{"value": v, "label": str(label)} for v, label in Urgency.choices],
        "label": [
            {"value": name, "label": name}
            for name in Label.objects.filter(workspace_id=workspace_id)
            .order_by("name")
            .values_list("name", flat=True)
        ],
        "canned_reply": [
            {"value": r.pk, "label": f"/{r.shortcut} — {r.title}"}
            for r in CannedReply.objects.filter(
                workspace_id=workspace_id, owner__isnull=True
            ).order_by("shortcut")
        ],
        "flow": [
            {"value": f.pk, "label": f.name}
            for f in Flow.objects.filter(workspace_id=workspace_id).order_by("name")
        ],
        "sla_policy": [
            {"value": p.pk, "label": p.name}
            for p in SlaPolicy.objects.filter(workspace_id=workspace_id).order_by("name")
        ],
        "sla_target": [{"value": k, "label": str(v)} for k, v in SLA_TARGET_LABELS.items()],
        "change": [{"value": k, "label": str(v)} for k, v in CHANGE_LABELS.items()],
    }


def editor_catalog(workspace_id: int) -> dict:
    """Everything the rule (and macro) editor offers: fields with their operators, actions
    with what they ask for, triggers, and the workspace's values to choose from."""
    return {
        "fields": [
            {
                "name": name,
                "label": str(field.label),
                "kind": field.kind,
                "keyed": field.keyed,
                "values": field.values,
                "operators": [
                    {
                        "value": op,
                        "label": str(label),
                        "needs_value": op not in rule_conditions.NO_VALUE,
                    }
                    for op, label in field.operators.items()
                ],
            }
            for name, field in rule_conditions.FIELDS.items()
            if not field.bot_only
        ],
        "actions": [
            {"type": kind, "label": str(action.label), "param": action.param}
            for kind, action in rule_actions.ACTIONS.items()
        ],
        "triggers": [
            {"value": value, "label": str(label), "timed": value in TIMED_TRIGGERS}
            for value, label in RuleTrigger.choices
        ],
        "options": _options(workspace_id),
    }


def _rule(request, rule_id: int) -> Rule:
    rule = service.get_rule(request.workspace.pk, rule_id)
    if rule is None:
        raise Http404("no such rule")
    return rule


def _json(raw: str, fallback):
    try:
        return json.loads(raw) if raw else fallback
    except ValueError:
        return None


def _posted(request) -> tuple[dict, str | None]:
    """The rule's fields from the editor's form, and an error when its JSON is unreadable."""
    conditions = _json(request.POST.get("conditions", ""), EMPTY_CONDITIONS)
    actions = _json(request.POST.get("actions", ""), [])
    minutes_raw = (request.POST.get("minutes") or "").strip()
    fields = {
        "name": request.POST.get("name", ""),
        "trigger": request.POST.get("trigger", ""),
        "minutes": int(minutes_raw) if minutes_raw.isdigit() else None,
        "enabled": request.POST.get("enabled") == "on",
        "conditions": conditions,
        "actions": actions,
    }
    if conditions is None or actions is None:
        return fields, _("The rule could not be read; reload the page and try again.")
    return fields, None


@workspace_view(admin=True)
def rules(request):
    workspace = request.workspace
    found = list(service.rules_of(workspace.pk))
    triggers = dict(RuleTrigger.choices)
    rows = [
        {
            "rule": rule,
            "trigger": triggers.get(rule.trigger, rule.trigger),
            "actions": ", ".join(
                str(rule_actions.ACTIONS[a["type"]].label)
                for a in rule.actions
                if a.get("type") in rule_actions.ACTIONS
            ),
        }
        for rule in found
    ]
    return render(
        request,
        TEMPLATES + "rules.html",
        {
            "rows": rows,
            "webhook_secret": rule_actions.webhook_secret(workspace.pk),
            "limit": settings.LOKET_RULE_RUNS_PER_CONVERSATION,
        },
    )


def _editor_page(request, rule: Rule | None, fields: dict, error: str = "", status: int = 200):
    runs = list(service.history(rule, limit=50)) if rule is not None else []
    for run in runs:
        run.described = [
            {
                "label": _action_label(item.get("type")),
                "ok": item.get("ok"),
                "detail": rule_actions.described_detail(item),
            }
            for item in run.done
        ]
    return render(
        request,
        TEMPLATES + "rule_edit.html",
        {
            "rule": rule,
            "fields": fields,
            "error": error,
            "catalog": editor_catalog(request.workspace.pk),
            "editor_state": {
                "conditions": fields.get("conditions") or EMPTY_CONDITIONS,
                "actions": fields.get("actions") or [],
                "trigger": fields.get("trigger") or RuleTrigger.MESSAGE_RECEIVED,
                "minutes": fields.get("minutes"),
            },
            "runs": runs,
        },
        status=status,
    )


def _save(request, rule: Rule | None):
    fields, unreadable = _posted(request)
    if unreadable:
        return _editor_page(request, rule, fields, unreadable, status=400)
    try:
        if rule is None:
            rule = service.create_rule(request.workspace, actor=request.membership, **fields)
            messages.success(request, _("Rule “%(name)s” created.") % {"name": rule.name})
        else:
            service.update_rule(rule, actor=request.membership, **fields)
            messages.success(request, _("Rule “%(name)s” saved.") % {"name": rule.name})
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from exc
    except service.InvalidRule as exc:
        return _editor_page(request, rule if rule and rule.pk else None, fields, str(exc), 400)
    return redirect("wsettings:rules", request.workspace.slug)


@workspace_view(admin=True)
@require_http_methods(["GET", "POST"])
def rule_new(request):
    if request.method == "POST":
        return _save(request, None)
    return _editor_page(
        request,
        None,
        {"name": "", "trigger": RuleTrigger.MESSAGE_RECEIVED, "enabled": True,
         "conditions": EMPTY_CONDITIONS, "actions": []},
    )  # fmt: skip


@workspace_view(admin=True)
@require_http_methods(["GET", "POST"])
def rule_edit(request, rule_id: int):
    rule = _rule(request, rule_id)
    if request.method == "POST":
        return _save(request, rule)
    fields = {
        "name": rule.name,
        "trigger": rule.trigger,
        "minutes": rule.minutes,
        "enabled": rule.enabled,
        "conditions": rule.conditions,
        "actions": rule.actions,
    }
    return _editor_page(request, rule, fields)


@workspace_view(admin=True)
@require_POST
def rule_delete(request, rule_id: int):
    rule = _rule(request, rule_id)
    service.delete_rule(rule, actor=request.membership)
    messages.success(request, _("Rule “%(name)s” deleted.") % {"name": rule.name})
    return redirect("wsettings:rules", request.workspace.slug)


@workspace_view(admin=True)
@require_POST
def rule_move(request, rule_id: int):
    rule = _rule(request, rule_id)
    service.move_rule(rule, -1 if request.POST.get("direction") == "up" else 1,
                      actor=request.membership)  # fmt: skip
    return redirect("wsettings:rules", request.workspace.slug)


@workspace_view(admin=True)
@require_POST
def rule_enabled(request, rule_id: int):
    rule = _rule(request, rule_id)
    service.update_rule(rule, actor=request.membership, enabled=request.POST.get("enabled") == "1")
    if rule.enabled:
        messages.success(request, _("Rule “%(name)s” switched on.") % {"name": rule.name})
    else:
        messages.success(request, _("Rule “%(name)s” switched off.") % {"name": rule.name})
    return redirect("wsettings:rules", request.workspace.slug)


@workspace_view(admin=True)
@require_POST
def rule_test(request):
    """The "test this rule" panel: the editor's conditions and actions against one conversation
    (by its number), evaluated now; nothing is done."""
    fields, unreadable = _posted(request)
    context: dict = {"error": unreadable}
    number = (request.POST.get("conversation") or "").strip().lstrip("#")
    conversation = None
    if not unreadable:
        if not number.isdigit():
            context["error"] = _("Give a conversation number.")
        else:
            conversation = Conversation.objects.filter(
                workspace=request.workspace, number=int(number)
            ).first()
            if conversation is None:
                context["error"] = _("There is no conversation #%(number)s.") % {"number": number}
    if conversation is not None:
        try:
            conditions = rule_conditions.clean(fields["conditions"], request.workspace.pk)
            actions = (
                rule_actions.clean(fields["actions"], request.workspace.pk)
                if fields["actions"]
                else []
            )
        except (rule_conditions.InvalidCondition, rule_actions.InvalidAction) as exc:
            context["error"] = str(exc)
        else:
            trial = engine.try_rule(conditions, actions, conversation)
            context.update(
                conversation=conversation,
                trial=trial,
                checked=[_described(item) for item in trial.checked],
                would_do=[str(rule_actions.ACTIONS[a["type"]].label) for a in trial.would_do],
            )
    status = 200 if not context.get("error") else 400
    return render(request, TEMPLATES + "_rule_trial.html", context, status=status)


def _action_label(kind: str | None) -> str:
    if kind == "guard":
        return _("Loop guard")
    action = rule_actions.ACTIONS.get(kind or "")
    return str(action.label) if action else str(kind)


def _described(item: dict) -> dict:
    field = rule_conditions.FIELDS[item["field"]]
    operator = str(field.operators.get(item["operator"], item["operator"]))
    name = str(field.label) + (f" “{item['key']}”" if item.get("key") else "")
    value = item.get("value")
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    return {"field": name, "operator": operator, "value": value, "actual": item.get("actual"),
            "held": item["held"]}  # fmt: skip
