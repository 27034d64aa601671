"""The SLA report and the flow-bot funnel pages (supervisors, admins and owners), on the report
pages' range and filters (loket.web.reports.views.Selection); the figures come from
loket.reports.sla_bots, each shown with its definition (docs/reports.md)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from loket.automation.models import SlaPolicy, SlaTarget
from loket.bots.models import SessionState
from loket.reports import sla_bots
from loket.reports.formatting import NONE
from loket.web.reports.views import Selection, _page, _reader
from loket.web.workspace import workspace_view, workspace_zone

SLA_DEFINITIONS = {
    "met": gettext_lazy(
        "Targets that ended by their due time in these days: the first reply by a person "
        "(first response), the reply to a customer's later message (next response), the "
        "resolution (resolution). Time spent pending does not count, and business hours apply "
        "when the policy says so."
    ),
    "breached": gettext_lazy(
        "Targets whose due time passed in these days, whether they have ended since or not. A "
        "response target still running when the conversation is resolved before its due time "
        "counts as neither."
    ),
    "achieved_share": gettext_lazy("Achieved out of achieved and breached."),
    "filters": gettext_lazy(
        "Channel, team, agent (the assignee) and priority are the conversation's as it is now."
    ),
}
BOT_DEFINITIONS = {
    "started": gettext_lazy("Bot sessions that started in these days (a flow started talking)."),
    "reached": gettext_lazy(
        "Sessions that came to a step at least once, out of the sessions started."
    ),
    "completed": gettext_lazy("The flow came to its end, or to a step that resolved."),
    "handed_off": gettext_lazy(
        "The bot handed the conversation to a person: a hand-off step, a word like “agent”, or "
        "too many wrong answers."
    ),
    "dropped": gettext_lazy("The customer went quiet and the bot stopped waiting."),
    "stopped": gettext_lazy("An agent replied or took over while the bot was talking."),
    "active": gettext_lazy("Still waiting for the customer's answer."),
    "bot_resolved": gettext_lazy("Sessions that ended at a step that resolves the conversation."),
    "filters": gettext_lazy(
        "Channel, team and priority are the conversation's as it is now; the agent filter does "
        "not apply to bots."
    ),
}


def _share(value: float | None) -> str:
    return NONE if value is None else f"{round(100 * value)}%"


def _choice(request, name: str, allowed) -> str | None:
    value = request.GET.get(name) or None
    return value if value in allowed else None


@require_GET
@workspace_view
def sla(request):
    """Per policy and target: achieved, breached, achieved share; then the breaches (20 a
    page, newest first), each linking to its conversation."""
    _reader(request)
    sel = Selection.of(request)
    workspace_id = request.workspace.pk
    zone = workspace_zone(request.workspace)
    figures = sla_bots.sla(workspace_id, sel.start, sel.end, zone, sel.filters)
    labels = dict(SlaTarget.choices)
    policy_param = request.GET.get("policy") or ""
    policy_id = int(policy_param) if policy_param.isdigit() else None
    if (
        policy_id is not None
        and not SlaPolicy.objects.filter(workspace_id=workspace_id, pk=policy_id).exists()
    ):
        policy_id = None  # another workspace's policy: as if not given
    target = _choice(request, "target", SlaTarget.values)

    def cells(targets: dict, policy: int | None) -> list[dict]:
        return [
            {
                "target": key,
                "label": labels[key],
                "met": targets[key]["met"],
                "breached": targets[key]["breached"],
                "share": _share(targets[key]["achieved_share"]),
                "url": "?" + sel.query(policy=policy or "", target=key) + "#breaches",
            }
            for key in sla_bots.TARGETS
        ]

    policies = [
        {
            "name": row["name"] or _("A deleted policy"),
            "deleted": row["policy_id"] is None,
            "cells": cells(row["targets"], row["policy_id"]),
            "all_share": _share(row["all"]["achieved_share"]),
        }
        for row in figures["policies"]
    ]
    found = sla_bots.breaches(
        workspace_id,
        sel.start,
        sel.end,
        zone,
        sel.filters,
        policy_id=policy_id,
        target=target,
    ).select_related("conversation", "policy")
    page = Paginator(found, 20).get_page(request.GET.get("page"))
    return _page(
        request,
        "sla.html",
        sel,
        totals=cells(figures["totals"], None),
        all_share=_share(figures["all"]["achieved_share"]),
        policies=policies,
        page=page,
        labels=labels,
        target=target,
        target_label=labels.get(target),
        policy_name=next(
            (row["name"] for row in figures["policies"] if row["policy_id"] == policy_id), None
        )
        if policy_id
        else None,
        breaches_query=sel.query(policy=policy_id or "", target=target or ""),
        definitions=SLA_DEFINITIONS,
    )


@require_GET
@workspace_view
def bots(request):
    """Per flow (and version): sessions started, how they ended, and the funnel of its steps."""
    _reader(request)
    sel = Selection.of(request)
    flows = sla_bots.bots(
        request.workspace.pk, sel.start, sel.end, workspace_zone(request.workspace), sel.filters
    )
    ends = [(state, label) for state, label in SessionState.choices]

    def shown(row: dict) -> dict:
        return {
            **row,
            "ends": [
                {
                    "state": state,
                    "label": label,
                    "count": row[state],
                    "share": _share(row[f"{state}_share"]),
                }
                for state, label in ends
            ],
            "bot_resolved_shown": _share(row["bot_resolved_share"]),
            "steps": [
                {
                    **step,
                    "label": (
                        _("Hand-off (too many wrong answers, a failed lookup, or no FAQ answer)")
                        if step["step"] == sla_bots.HANDOFF_STEP
                        else step["title"] or step["step"]
                    ),
                    "share": _share(step["reached_share"]),
                    "width": round(100 * (step["reached_share"] or 0)),
                }
                for step in row["steps"]
            ],
        }

    shown_flows = [
        {**shown(flow), "versions": [shown(version) for version in flow["versions"]]}
        for flow in flows
    ]
    return _page(
        request,
        "bots.html",
        sel,
        flows=shown_flows,
        ends=ends,
        definitions=BOT_DEFINITIONS,
        agent_ignored=sel.filters.member_id is not None,
    )
