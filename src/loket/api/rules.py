"""Rules over the API (loket.automation.rules has the engine and its allow-lists): every member
reads them and their history; owners and admins change them. ``POST /rules/test`` tries
conditions and actions against a conversation without acting."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import Http404
from ninja import Router, Schema, Status

from loket.api.main import ApiError
from loket.automation.models import Rule, RuleRun
from loket.automation.rules import actions as rule_actions
from loket.automation.rules import conditions as rule_conditions
from loket.automation.rules import engine, service
from loket.inbox import selectors
from loket.tenancy.services import NotAllowed

router = Router(tags=["rules"])


class RuleOut(Schema):
    id: int
    name: str
    enabled: bool
    position: int
    trigger: str
    minutes: int | None
    conditions: dict
    actions: list[dict]
    created_by_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


class RuleIn(Schema):
    name: str
    trigger: str
    actions: list[dict]
    conditions: dict = {}
    minutes: int | None = None  # the time-based triggers: how long
    enabled: bool = True


class RulePatch(Schema):
    name: str | None = None
    trigger: str | None = None
    actions: list[dict] | None = None
    conditions: dict | None = None
    minutes: int | None = None
    enabled: bool | None = None


class OrderIn(Schema):
    ids: list[int]


class RunOut(Schema):
    id: int
    rule_id: int
    rule_name: str
    conversation_id: int
    conversation_number: int
    trigger: str
    outcome: str
    matched: list[dict]
    done: list[dict]
    created_at: dt.datetime


class TrialIn(Schema):
    conversation_id: int
    conditions: dict = {}
    actions: list[dict] = []


class TrialOut(Schema):
    matched: bool
    conditions: list[dict]
    would_do: list[dict]


def rule_out(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.pk,
        "name": rule.name,
        "enabled": rule.enabled,
        "position": rule.position,
        "trigger": rule.trigger,
        "minutes": rule.minutes,
        "conditions": rule.conditions,
        "actions": rule.actions,
        "created_by_id": rule.created_by_id,
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
    }


def run_out(run: RuleRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "rule_id": run.rule_id,
        "rule_name": run.rule.name,
        "conversation_id": run.conversation_id,
        "conversation_number": run.conversation.number,
        "trigger": run.trigger,
        "outcome": run.outcome,
        "matched": run.matched,
        "done": run.done,
        "created_at": run.created_at,
    }


def _refused(exc: Exception) -> ApiError:
    if isinstance(exc, NotAllowed):
        return ApiError(403, "forbidden", str(exc))
    return ApiError(400, "invalid", str(exc))


def _rule(request, rule_id: int) -> Rule:
    rule = service.get_rule(request.membership.workspace_id, rule_id)
    if rule is None:
        raise Http404("no such rule")
    return rule


@router.get("/rules", response=list[RuleOut])
def list_rules(request):
    return [rule_out(rule) for rule in service.rules_of(request.membership.workspace_id)]


@router.post("/rules", response={201: RuleOut})
def create_rule(request, data: RuleIn):
    member = request.membership
    try:
        rule = service.create_rule(member.workspace, actor=member, **data.dict())
    except (NotAllowed, service.InvalidRule) as exc:
        raise _refused(exc) from exc
    return Status(201, rule_out(rule))


@router.post("/rules/order", response={204: None})
def reorder_rules(request, data: OrderIn):
    """Run the rules in this order (ids; rules left out keep their place after these)."""
    member = request.membership
    try:
        service.reorder_rules(member.workspace, data.ids, actor=member)
    except (NotAllowed, service.InvalidRule) as exc:
        raise _refused(exc) from exc
    return Status(204, None)


@router.post("/rules/test", response=TrialOut)
def test_rule(request, data: TrialIn):
    """What these conditions and actions would do to the conversation now; nothing is done."""
    member = request.membership
    try:
        conversation = selectors.conversation(member, data.conversation_id)
    except Http404 as exc:
        raise ApiError(400, "invalid", f"conversation_id: {exc}") from exc
    try:
        conditions = rule_conditions.clean(data.conditions, member.workspace_id)
        actions = rule_actions.clean(data.actions, member.workspace_id) if data.actions else []
    except (rule_conditions.InvalidCondition, rule_actions.InvalidAction) as exc:
        raise ApiError(400, "invalid", str(exc)) from exc
    trial = engine.try_rule(conditions, actions, conversation)
    return {"matched": trial.matched, "conditions": trial.checked, "would_do": trial.would_do}


# Declared before the /rules/{rule_id} routes, so a walk over the routes in order reads a
# rule's history before it deletes the rule.
@router.get("/rules/{int:rule_id}/runs", response=list[RunOut])
def rule_history(request, rule_id: int):
    """The rule's latest 100 runs, newest first."""
    rule = _rule(request, rule_id)
    return [run_out(run) for run in service.history(rule).select_related("rule")]


@router.get("/rules/{int:rule_id}", response=RuleOut)
def get_rule(request, rule_id: int):
    return rule_out(_rule(request, rule_id))


@router.patch("/rules/{int:rule_id}", response=RuleOut)
def update_rule(request, rule_id: int, data: RulePatch):
    rule = _rule(request, rule_id)
    changes = data.dict(exclude_unset=True)
    try:
        service.update_rule(rule, actor=request.membership, **changes)
    except (NotAllowed, service.InvalidRule) as exc:
        raise _refused(exc) from exc
    return rule_out(rule)


@router.delete("/rules/{int:rule_id}", response={204: None})
def delete_rule(request, rule_id: int):
    rule = _rule(request, rule_id)
    try:
        service.delete_rule(rule, actor=request.membership)
    except NotAllowed as exc:
        raise _refused(exc) from exc
    return Status(204, None)


@router.get("/conversations/{int:conversation_id}/rule-runs", response=list[RunOut])
def conversation_rule_runs(request, conversation_id: int):
    """The rules that ran on a conversation, newest first."""
    conversation = selectors.conversation(request.membership, conversation_id)
    return [run_out(run) for run in service.runs_on(conversation).select_related("conversation")]
