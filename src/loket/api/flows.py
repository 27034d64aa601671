"""Bot flows over the API (loket.bots has the schema, the services and the engine): every member
reads flows, their checks, exports and figures, and may try a draft (``POST /flows/{id}/test``,
rolled back); owners and admins create, change, publish, import and delete them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.http import Http404
from ninja import Body, Router, Schema, Status

from loket.api.main import ApiError, error
from loket.bots import definition as flow_definition
from loket.bots import engine, services
from loket.bots.models import Flow
from loket.problems import Problem, texts
from loket.tenancy.services import NotAllowed

router = Router(tags=["flows"])


class FlowOut(Schema):
    id: int
    name: str
    description: str
    enabled: bool
    trigger: str
    keywords: list[str]
    handoff_words: list[str]
    channel_ids: list[int]
    draft: dict
    published_version: int | None
    published: dict | None
    created_at: dt.datetime
    updated_at: dt.datetime


class FlowIn(Schema):
    name: str
    description: str = ""
    trigger: str = "new_conversation"
    keywords: list[str] = []
    handoff_words: list[str] = []
    channel_ids: list[int] = []
    draft: dict | None = None


class FlowPatch(Schema):
    name: str | None = None
    description: str | None = None
    trigger: str | None = None
    keywords: list[str] | None = None
    handoff_words: list[str] | None = None
    channel_ids: list[int] | None = None
    enabled: bool | None = None
    draft: dict | None = None


class ProblemOut(Schema):
    level: str  # error (it cannot be published) or warning
    step: str | None  # the step it is on; none: the flow as a whole
    message: str  # what is wrong, without the step


class CheckOut(Schema):
    errors: list[str]
    warnings: list[str]
    problems: list[ProblemOut]  # the errors, then the warnings, each with its step


class PublishOut(Schema):
    version: int
    warnings: list[str]


class TestIn(Schema):
    state: dict | None = None
    text: str | None = None
    choice_id: str | None = None
    language: str = ""


class TestOut(Schema):
    replies: list[dict]
    state: dict
    done: str


def flow_out(flow: Flow) -> dict[str, Any]:
    version = flow.published
    return {
        "id": flow.pk,
        "name": flow.name,
        "description": flow.description,
        "enabled": flow.enabled,
        "trigger": flow.trigger,
        "keywords": flow.keywords or [],
        "handoff_words": flow.handoff_words or [],
        "channel_ids": sorted(channel.pk for channel in flow.channels.all()),
        "draft": flow.draft or {},
        "published_version": version.number if version else None,
        "published": version.definition if version else None,
        "created_at": flow.created_at,
        "updated_at": flow.updated_at,
    }


def _refused(exc: Exception) -> ApiError:
    if isinstance(exc, NotAllowed):
        return ApiError(403, "forbidden", str(exc))
    return ApiError(400, "invalid", str(exc))


def _flow(request, flow_id: int) -> Flow:
    flow = services.get_flow(request.membership.workspace_id, flow_id)
    if flow is None:
        raise Http404("no such flow")
    return flow


def _invalid(request, exc: flow_definition.InvalidFlow):
    """400 with every problem of the definition, each naming its step."""
    return error(
        request,
        400,
        "invalid",
        str(exc),
        errors=texts(exc.errors),
        problems=_problems_out(exc.errors, "error"),
    )


def _problems_out(problems: list[Problem], level: str) -> list[dict]:
    return [
        {"level": level, "step": problem.step, "message": problem.text()} for problem in problems
    ]


@router.get("/flows", response=list[FlowOut])
def list_flows(request):
    flows = (
        services.flows_of(request.membership.workspace_id)
        .select_related("published")
        .prefetch_related("channels")
    )
    return [flow_out(flow) for flow in flows]


@router.post("/flows", response={201: FlowOut})
def create_flow(request, data: FlowIn):
    member = request.membership
    try:
        with transaction.atomic():
            flow = services.create_flow(member.workspace, actor=member, **data.dict())
    except flow_definition.InvalidFlow as exc:
        return _invalid(request, exc)
    except (NotAllowed, services.InvalidFlowSettings) as exc:
        raise _refused(exc) from exc
    return Status(201, flow_out(flow))


@router.post("/flows/import", response={201: FlowOut})
def import_flow(request, data: Body[dict]):
    """A new flow (switched off, unpublished) from what ``GET /flows/{id}/export`` gave."""
    member = request.membership
    try:
        flow = services.import_flow(member.workspace, data, actor=member)
    except flow_definition.InvalidFlow as exc:
        return _invalid(request, exc)
    except (NotAllowed, services.InvalidFlowSettings) as exc:
        raise _refused(exc) from exc
    return Status(201, flow_out(flow))


# Declared before the /flows/{flow_id} routes, so a walk over the routes in order reads, checks,
# exports, tests and publishes a flow before it deletes it.
@router.get("/flows/{int:flow_id}/check", response=CheckOut)
def check_flow(request, flow_id: int):
    """What is wrong with the draft (errors: it cannot be published) and what looks odd."""
    errors, warnings = services.check_draft(_flow(request, flow_id))
    return {
        "errors": texts(errors),
        "warnings": texts(warnings),
        "problems": _problems_out(errors, "error") + _problems_out(warnings, "warning"),
    }


@router.get("/flows/{int:flow_id}/export", response=dict)
def export_flow(request, flow_id: int):
    return services.export_flow(_flow(request, flow_id))


@router.get("/flows/{int:flow_id}/metrics", response=dict)
def flow_metrics(request, flow_id: int):
    """Sessions started, completed, handed off, dropped, stopped, active; per step how many
    reached it and how many were dropped there."""
    return services.metrics(_flow(request, flow_id))


@router.post("/flows/{int:flow_id}/test", response=TestOut)
def test_flow(request, flow_id: int, data: TestIn):
    """One turn of the DRAFT, as the editor's test panel runs it: nothing is kept or sent.
    ``state`` is what the previous call returned (none: start the flow)."""
    flow = _flow(request, flow_id)
    try:
        return engine.simulate(
            request.membership.workspace,
            flow.draft,
            state=data.state,
            text=data.text,
            choice_id=data.choice_id,
            language=(data.language or "")[:10],
        )
    except flow_definition.InvalidFlow as exc:
        return _invalid(request, exc)


@router.post("/flows/{int:flow_id}/publish", response=PublishOut)
def publish_flow(request, flow_id: int):
    """The draft becomes the version new conversations get; 400 lists why it cannot."""
    flow = _flow(request, flow_id)
    try:
        version = services.publish(flow, actor=request.membership)
    except flow_definition.InvalidFlow as exc:
        return _invalid(request, exc)
    except NotAllowed as exc:
        raise _refused(exc) from exc
    _errors, warnings = services.check_draft(flow)
    return {"version": version.number, "warnings": texts(warnings)}


@router.get("/flows/{int:flow_id}", response=FlowOut)
def get_flow(request, flow_id: int):
    return flow_out(_flow(request, flow_id))


@router.patch("/flows/{int:flow_id}", response=FlowOut)
def update_flow(request, flow_id: int, data: FlowPatch):
    """Settings and the draft (stored as given, even unfinished: see ``/check``)."""
    flow = _flow(request, flow_id)
    changes = {k: v for k, v in data.dict(exclude_unset=True).items()}
    try:
        with transaction.atomic():
            services.update_flow(flow, actor=request.membership, **changes)
    except (NotAllowed, services.InvalidFlowSettings) as exc:
        raise _refused(exc) from exc
    return flow_out(flow)


@router.delete("/flows/{int:flow_id}", response={204: None})
def delete_flow(request, flow_id: int):
    flow = _flow(request, flow_id)
    try:
        services.delete_flow(flow, actor=request.membership)
    except NotAllowed as exc:
        raise _refused(exc) from exc
    return Status(204, None)
