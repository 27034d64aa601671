"""The SLA report and the flow-bot funnel: figures over a range of workspace-local days, for the
report pages (loket.web.reports.sla_bots) and the API (loket.api.reports). Definitions in
docs/reports.md.

**SLA.** Per policy and target (first response, next response, resolution): *achieved* are the
targets that ended by their due time (``SlaOutcome`` rows with ``met``, counted on the day they
ended), *breached* the targets whose due time passed (``SlaBreach`` rows, counted on the day of
the breach, whether the target has ended since or not). The achieved share is achieved out of
both. Two grouped queries (index ``sla_outcome_ws_completed`` / ``sla_breach_ws_recent``).

**Bots.** Per flow and per published version, the bot sessions that started in the range: how
they ended (grouped in the database by flow, version and state), and how many reached each step
(from each session's ``path``, a JSON list: one pass over the range's sessions, fetched as
tuples in chunks; bot sessions are few next to messages). Steps are listed in the flow's order
(its editor's ``order``, then breadth-first from the start).

Filters apply to the conversation as it is now: channel, team, assignee (SLA only: a bot session
has no agent of its own) and priority.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import Counter, defaultdict
from typing import Any

from django.db.models import Count, OuterRef, Q, Subquery

from loket.automation.models import SlaBreach, SlaOutcome, SlaPolicy, SlaTarget
from loket.bots.definition import links_of
from loket.bots.models import BotSession, Flow, FlowVersion, SessionState
from loket.reports.queries import Filters

TARGETS = tuple(SlaTarget.values)
ENDS = tuple(SessionState.values)  # active, completed, handed_off, dropped, stopped
HANDOFF_STEP = "__handoff__"  # too many wrong answers (etc.) where the flow names no step
CHUNK = 2000
NO_FILTERS = Filters()


def bounds(
    start: dt.date, end: dt.date, zone: zoneinfo.ZoneInfo
) -> tuple[dt.datetime, dt.datetime]:
    """The moments the days ``start`` to ``end`` (both included) begin and end, in ``zone``."""
    return (
        dt.datetime.combine(start, dt.time(), tzinfo=zone),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=zone),
    )


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# -- SLA --------------------------------------------------------------------------------------
def _conversation_filters(filters: Filters, *, agent: bool = True) -> Q:
    q = Q()
    if filters.channel_id is not None:
        q &= Q(conversation__channel_id=filters.channel_id)
    if filters.team_id is not None:
        q &= Q(conversation__team_id=filters.team_id)
    if agent and filters.member_id is not None:
        q &= Q(conversation__assignee_id=filters.member_id)
    if filters.priority is not None:
        q &= Q(conversation__priority=filters.priority)
    return q


def _target_figures(met: int, breached: int) -> dict:
    return {"met": met, "breached": breached, "achieved_share": _share(met, met + breached)}


def breaches(
    workspace_id: int,
    start: dt.date,
    end: dt.date,
    zone: zoneinfo.ZoneInfo,
    filters: Filters = NO_FILTERS,
    *,
    policy_id: int | None = None,
    target: str | None = None,
):
    """The range's breaches, newest first, each with ``completed_at``: when the late target
    ended after all (null while it runs, or when it ended without a record)."""
    since, until = bounds(start, end, zone)
    found = SlaBreach.objects.filter(
        _conversation_filters(filters),
        workspace_id=workspace_id,
        breached_at__gte=since,
        breached_at__lt=until,
    )
    if policy_id is not None:
        found = found.filter(policy_id=policy_id)
    if target is not None:
        found = found.filter(target=target)
    ended = SlaOutcome.objects.filter(
        conversation_id=OuterRef("conversation_id"),
        target=OuterRef("target"),
        due_at=OuterRef("due_at"),
    ).values("completed_at")[:1]
    return found.annotate(completed_at=Subquery(ended)).order_by("-breached_at", "-pk")


def sla(
    workspace_id: int,
    start: dt.date,
    end: dt.date,
    zone: zoneinfo.ZoneInfo,
    filters: Filters = NO_FILTERS,
) -> dict:
    """``{"totals": {target: figures}, "policies": [{"policy_id", "name", "targets"}]}``;
    figures are ``met``, ``breached`` and ``achieved_share`` (0..1, None without either). A
    policy that was deleted has ``policy_id`` None (its rows stay, without it)."""
    since, until = bounds(start, end, zone)
    scope = _conversation_filters(filters)
    met = (
        SlaOutcome.objects.filter(
            scope,
            workspace_id=workspace_id,
            met=True,
            completed_at__gte=since,
            completed_at__lt=until,
        )
        .values_list("policy_id", "target")
        .annotate(n=Count("pk"))
        .order_by()
    )
    late = (
        SlaBreach.objects.filter(
            scope, workspace_id=workspace_id, breached_at__gte=since, breached_at__lt=until
        )
        .values_list("policy_id", "target")
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts: dict[int | None, dict[str, list[int]]] = defaultdict(
        lambda: {target: [0, 0] for target in TARGETS}
    )
    for policy_id, target, n in met:
        counts[policy_id][target][0] += n
    for policy_id, target, n in late:
        counts[policy_id][target][1] += n
    names = dict(SlaPolicy.objects.filter(workspace_id=workspace_id).values_list("pk", "name"))
    # Every policy of the workspace is listed (with zeros), then a deleted one's rows.
    ids = sorted(names, key=lambda pk: (names[pk].lower(), pk))
    if None in counts:
        ids.append(None)
    policies = []
    totals = {target: [0, 0] for target in TARGETS}
    for policy_id in ids:
        row = counts.get(policy_id) or {target: [0, 0] for target in TARGETS}
        for target in TARGETS:
            totals[target][0] += row[target][0]
            totals[target][1] += row[target][1]
        policies.append(
            {
                "policy_id": policy_id,
                "name": names.get(policy_id),
                "targets": {target: _target_figures(*row[target]) for target in TARGETS},
                "all": _target_figures(
                    sum(row[t][0] for t in TARGETS), sum(row[t][1] for t in TARGETS)
                ),
            }
        )
    return {
        "totals": {target: _target_figures(*totals[target]) for target in TARGETS},
        "all": _target_figures(
            sum(totals[t][0] for t in TARGETS), sum(totals[t][1] for t in TARGETS)
        ),
        "policies": policies,
    }


# -- Bots -------------------------------------------------------------------------------------
def step_order(definition: dict) -> list[str]:
    """A definition's steps in the flow's order: the editor's ``order`` when it has one, then
    breadth-first from the start (each step's links in order, then the timeout's step), then any
    step nothing leads to by its id. (The steps' own key order is not kept by PostgreSQL.)"""
    steps = definition.get("steps") or {}
    found: list[str] = []
    seen: set[str] = set()

    def add(step_id: Any) -> None:
        if isinstance(step_id, str) and step_id in steps and step_id not in seen:
            seen.add(step_id)
            found.append(step_id)

    for step_id in definition.get("order") or []:
        add(step_id)
    queue = [definition.get("start")]
    timeout = definition.get("timeout")
    if isinstance(timeout, dict):
        queue.append(timeout.get("next"))
    visited: set[str] = set()
    while queue:
        step_id = queue.pop(0)
        if not isinstance(step_id, str) or step_id in visited or step_id not in steps:
            continue
        visited.add(step_id)
        add(step_id)
        step = steps[step_id]
        if isinstance(step, dict):
            queue.extend(links_of(step))
    for step_id in sorted(steps):
        add(step_id)
    return found


def _ends(counts: Counter) -> dict:
    started = sum(counts[state] for state in ENDS)
    return {
        "started": started,
        **{state: counts[state] for state in ENDS},
        **{f"{state}_share": _share(counts[state], started) for state in ENDS},
    }


def _funnel(definitions: list[dict], reached: Counter, dropped: Counter, started: int) -> list:
    """The steps of ``definitions`` (newest first: a step an older version had, the newer not,
    comes after), each with how many sessions reached it and were dropped there."""
    order: list[str] = []
    kinds: dict[str, dict] = {}
    for definition in definitions:
        for step_id in step_order(definition):
            if step_id not in kinds:
                order.append(step_id)
                kinds[step_id] = definition["steps"][step_id]
    if reached[HANDOFF_STEP]:
        order.append(HANDOFF_STEP)
        kinds[HANDOFF_STEP] = {"type": "handoff"}
    kinds = {k: v if isinstance(v, dict) else {} for k, v in kinds.items()}
    return [
        {
            "step": step_id,
            "type": kinds[step_id].get("type"),
            "title": kinds[step_id].get("title")
            if isinstance(kinds[step_id].get("title"), str)
            else "",
            "reached": reached[step_id],
            "reached_share": _share(reached[step_id], started),
            "dropped": dropped[step_id],
        }
        for step_id in order
    ]


def bots(
    workspace_id: int,
    start: dt.date,
    end: dt.date,
    zone: zoneinfo.ZoneInfo,
    filters: Filters = NO_FILTERS,
) -> list[dict]:
    """Per flow with sessions that started in the range (by name): how they ended, how many
    reached each step, how many the bot resolved (ended at a close step), and the same per
    version (newest first)."""
    since, until = bounds(start, end, zone)
    sessions = BotSession.objects.filter(
        _conversation_filters(filters, agent=False),
        workspace_id=workspace_id,
        started_at__gte=since,
        started_at__lt=until,
    )
    states: dict[tuple[int, int], Counter] = defaultdict(Counter)
    for flow_id, version_id, state, n in (
        sessions.values_list("flow_id", "version_id", "state").annotate(n=Count("pk")).order_by()
    ):
        states[flow_id, version_id][state] += n
    if not states:
        return []
    versions = {
        v.pk: v
        for v in FlowVersion.objects.filter(
            workspace_id=workspace_id, pk__in={version_id for _f, version_id in states}
        ).only("pk", "flow_id", "number", "definition")
    }
    close_steps = {
        pk: {
            step_id
            for step_id, step in (v.definition.get("steps") or {}).items()
            if isinstance(step, dict) and step.get("type") == "close"
        }
        for pk, v in versions.items()
    }
    reached: dict[tuple[int, int], Counter] = defaultdict(Counter)
    dropped: dict[tuple[int, int], Counter] = defaultdict(Counter)
    resolved: Counter = Counter()
    # One pass over the range's sessions, as tuples in chunks (their paths are JSON).
    for flow_id, version_id, state, step, path in sessions.values_list(
        "flow_id", "version_id", "state", "step", "path"
    ).iterator(chunk_size=CHUNK):
        key = (flow_id, version_id)
        path = path if isinstance(path, list) else []
        reached[key].update({s for s in path if isinstance(s, str)})
        if state == SessionState.DROPPED:
            dropped[key][step] += 1
        elif state == SessionState.COMPLETED and path and path[-1] in close_steps[version_id]:
            resolved[key] += 1
    names = dict(
        Flow.objects.filter(
            workspace_id=workspace_id, pk__in={flow_id for flow_id, _v in states}
        ).values_list("pk", "name")
    )
    flows = []
    for flow_id in sorted(names, key=lambda pk: (names[pk].lower(), pk)):
        keys = sorted(
            (key for key in states if key[0] == flow_id),
            key=lambda key: -versions[key[1]].number,
        )
        rows = []
        for key in keys:
            ends = _ends(states[key])
            rows.append(
                {
                    "version_id": key[1],
                    "number": versions[key[1]].number,
                    **ends,
                    "bot_resolved": resolved[key],
                    "bot_resolved_share": _share(resolved[key], ends["started"]),
                    "steps": _funnel(
                        [versions[key[1]].definition], reached[key], dropped[key], ends["started"]
                    ),
                }
            )
        ends = _ends(sum((states[key] for key in keys), Counter()))
        bot_resolved = sum(resolved[key] for key in keys)
        flows.append(
            {
                "flow_id": flow_id,
                "name": names[flow_id],
                **ends,
                "bot_resolved": bot_resolved,
                "bot_resolved_share": _share(bot_resolved, ends["started"]),
                "steps": _funnel(
                    [versions[key[1]].definition for key in keys],
                    sum((reached[key] for key in keys), Counter()),
                    sum((dropped[key] for key in keys), Counter()),
                    ends["started"],
                ),
                "versions": rows,
            }
        )
    return flows
