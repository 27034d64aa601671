"""Managing rules: create, change, order and delete, by owners and admins; reading them and
their history, scoped to one workspace."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from loket.automation.models import TIMED_TRIGGERS, Rule, RuleRun, RuleTrigger
from loket.automation.rules import actions as rule_actions
from loket.automation.rules import conditions as rule_conditions
from loket.automation.rules.engine import forget_rules
from loket.problems import Invalid
from loket.tenancy.models import Membership, Workspace
from loket.tenancy.services import require_admin

MAX_NAME = 200
MAX_TIMED_MINUTES = 60 * 24 * 90


class InvalidRule(Invalid):
    """A rule that cannot be saved; the problems say why."""


def _check_admin(actor: Membership | None, workspace_id: int) -> None:
    require_admin(actor, workspace_id, gettext("Only owners and admins can change rules."))


def _clean(workspace_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    if "name" in fields:
        name = (fields["name"] or "").strip()
        if not name:
            raise InvalidRule(_("a rule needs a name"))
        if len(name) > MAX_NAME:
            raise InvalidRule(_("the name is longer than %(max)s characters"), max=MAX_NAME)
        cleaned["name"] = name
    if "trigger" in fields:
        if fields["trigger"] not in RuleTrigger.values:
            raise InvalidRule(
                _("unknown trigger “%(value)s”; one of %(choices)s"),
                value=fields["trigger"],
                choices=", ".join(RuleTrigger.values),
            )
        cleaned["trigger"] = fields["trigger"]
    if "minutes" in fields:
        cleaned["minutes"] = fields["minutes"]
    if "enabled" in fields:
        cleaned["enabled"] = bool(fields["enabled"])
    try:
        if "conditions" in fields:
            cleaned["conditions"] = rule_conditions.clean(fields["conditions"], workspace_id)
        if "actions" in fields:
            cleaned["actions"] = rule_actions.clean(fields["actions"], workspace_id)
    except (rule_conditions.InvalidCondition, rule_actions.InvalidAction) as exc:
        raise InvalidRule(*exc.problems) from None
    return cleaned


def _check_timing(rule: Rule) -> None:
    if rule.trigger in TIMED_TRIGGERS:
        minutes = rule.minutes
        if isinstance(minutes, bool) or not isinstance(minutes, int):
            raise InvalidRule(_("a time-based rule needs a number of minutes"))
        if not 1 <= minutes <= MAX_TIMED_MINUTES:
            raise InvalidRule(_("minutes must be between 1 and %(max)s"), max=MAX_TIMED_MINUTES)
    else:
        rule.minutes = None


def create_rule(
    workspace: Workspace,
    *,
    name: str,
    trigger: str,
    actions: list,
    conditions: dict | None = None,
    minutes: int | None = None,
    enabled: bool = True,
    actor: Membership | None = None,
) -> Rule:
    """A new rule, run after the workspace's existing ones."""
    _check_admin(actor, workspace.pk)
    fields = _clean(
        workspace.pk,
        {"name": name, "trigger": trigger, "actions": actions,
         "conditions": conditions, "minutes": minutes, "enabled": enabled},
    )  # fmt: skip
    rule = Rule(workspace=workspace, created_by=actor, **fields)
    _check_timing(rule)
    with transaction.atomic():
        last = Rule.objects.filter(workspace=workspace).aggregate(at=Max("position"))["at"]
        rule.position = (last or 0) + 1
        rule.save()
    forget_rules(workspace.pk)
    return rule


def update_rule(rule: Rule, *, actor: Membership | None = None, **changes: Any) -> Rule:
    """Change what is given (name, trigger, minutes, conditions, actions, enabled)."""
    _check_admin(actor, rule.workspace_id)
    unknown = set(changes) - {"name", "trigger", "minutes", "conditions", "actions", "enabled"}
    if unknown:
        raise InvalidRule(_("unknown field “%(name)s”"), name=sorted(unknown)[0])
    fields = _clean(rule.workspace_id, changes)
    for name, value in fields.items():
        setattr(rule, name, value)
    _check_timing(rule)
    rule.updated_at = timezone.now()
    rule.save()
    forget_rules(rule.workspace_id)
    return rule


def delete_rule(rule: Rule, *, actor: Membership | None = None) -> None:
    _check_admin(actor, rule.workspace_id)
    rule.delete()
    forget_rules(rule.workspace_id)


def reorder_rules(workspace: Workspace, ids: list[int], *, actor: Membership | None = None) -> None:
    """Run the rules in this order; rules left out keep their place after the named ones."""
    _check_admin(actor, workspace.pk)
    rules = {rule.pk: rule for rule in Rule.objects.filter(workspace=workspace)}
    if any(pk not in rules for pk in ids):
        raise InvalidRule(_("a rule in that order is not in this workspace"))
    ordered = [rules[pk] for pk in dict.fromkeys(ids)]
    ordered += sorted(
        (rule for pk, rule in rules.items() if pk not in set(ids)),
        key=lambda rule: (rule.position, rule.pk),
    )
    with transaction.atomic():
        for position, rule in enumerate(ordered, start=1):
            if rule.position != position:
                Rule.objects.filter(pk=rule.pk).update(position=position)


def move_rule(rule: Rule, offset: int, *, actor: Membership | None = None) -> None:
    """Move a rule up (-1) or down (+1) in the order."""
    ids = list(
        Rule.objects.filter(workspace_id=rule.workspace_id)
        .order_by("position", "pk")
        .values_list("pk", flat=True)
    )
    index = ids.index(rule.pk)
    target = max(0, min(len(ids) - 1, index + offset))
    ids.insert(target, ids.pop(index))
    reorder_rules(rule.workspace, ids, actor=actor)


# -- reads --------------------------------------------------------------------------------------
def rules_of(workspace_id: int):
    return Rule.objects.filter(workspace_id=workspace_id).order_by("position", "pk")


def get_rule(workspace_id: int, rule_id: int) -> Rule | None:
    return Rule.objects.filter(workspace_id=workspace_id, pk=rule_id).first()


def history(rule: Rule, limit: int = 100):
    return (
        RuleRun.objects.filter(workspace_id=rule.workspace_id, rule=rule)
        .select_related("conversation")
        .order_by("-created_at", "-pk")[:limit]
    )


def runs_on(conversation, limit: int = 50):
    return (
        RuleRun.objects.filter(
            workspace_id=conversation.workspace_id, conversation_id=conversation.pk
        )
        .select_related("rule")
        .order_by("-created_at", "-pk")[:limit]
    )
