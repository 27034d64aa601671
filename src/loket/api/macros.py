"""Macros over the API: the token's member sees the workspace's shared macros and their own
personal ones (loket.automation.macros has the rules), and runs one on a conversation as
themselves."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ninja import Router, Schema, Status

from loket.api.main import ApiError
from loket.automation import macros
from loket.automation.models import Macro
from loket.inbox import selectors
from loket.tenancy.services import NotAllowed

router = Router(tags=["macros"])


class MacroOut(Schema):
    id: int
    name: str
    actions: list[dict[str, Any]]
    shared: bool
    owner_id: int | None
    created_by_id: int | None
    times_used: int
    last_used_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class MacroIn(Schema):
    name: str
    # The rules' actions: [{"type": "add_labels", "labels": ["spam"]}, {"type": "set_status", ...}]
    actions: list[dict[str, Any]]
    # False: personal to the token's member; True: shared with the workspace (admins only).
    shared: bool = False


class MacroPatch(Schema):
    name: str | None = None
    actions: list[dict[str, Any]] | None = None
    shared: bool | None = None


class ActionDone(Schema):
    type: str | None
    ok: bool
    detail: str


class RanOut(Schema):
    macro_id: int
    conversation_id: int
    done: list[ActionDone]
    failed: int


def macro_out(macro: Macro) -> dict[str, Any]:
    return {
        "id": macro.pk,
        "name": macro.name,
        "actions": macro.actions,
        "shared": macro.is_shared,
        "owner_id": macro.owner_id,
        "created_by_id": macro.created_by_id,
        "times_used": macro.times_used,
        "last_used_at": macro.last_used_at,
        "created_at": macro.created_at,
        "updated_at": macro.updated_at,
    }


def _refused(exc: Exception) -> ApiError:
    if isinstance(exc, NotAllowed):
        return ApiError(403, "forbidden", str(exc))
    field = getattr(exc, "field", "")
    return ApiError(400, "invalid", f"{field}: {exc}" if field else str(exc))


@router.post(
    "/conversations/{int:conversation_id}/macros/{int:macro_id}/run",
    response=RanOut,
)
def run_macro(request, conversation_id: int, macro_id: int):
    """Carry out the macro's actions on the conversation as the token's member. An action that
    cannot be done is reported in ``done`` with ``ok: false``; the others still happen."""
    member = request.membership
    conversation = selectors.conversation(member, conversation_id)
    macro = macros.get_visible(member, macro_id)
    ran = macros.run_macro(macro, conversation, actor=member)
    return {
        "macro_id": macro.pk,
        "conversation_id": conversation.pk,
        "done": ran.done,
        "failed": len(ran.failed),
    }


@router.get("/macros", response=list[MacroOut])
def list_macros(request):
    return [macro_out(macro) for macro in macros.visible(request.membership)]


@router.post("/macros", response={201: MacroOut})
def create_macro(request, data: MacroIn):
    try:
        macro = macros.create_macro(request.membership, **data.dict())
    except (macros.InvalidMacro, NotAllowed) as exc:
        raise _refused(exc) from exc
    return Status(201, macro_out(macro))


@router.get("/macros/{int:macro_id}", response=MacroOut)
def show_macro(request, macro_id: int):
    return macro_out(macros.get_visible(request.membership, macro_id))


@router.patch("/macros/{int:macro_id}", response=MacroOut)
def update_macro(request, macro_id: int, data: MacroPatch):
    member = request.membership
    macro = macros.get_visible(member, macro_id)
    given = data.dict(exclude_unset=True)
    for name, value in given.items():
        if value is None:
            raise ApiError(400, "invalid", f"{name} cannot be null")
    try:
        macro = macros.update_macro(macro, actor=member, **given)
    except (macros.InvalidMacro, NotAllowed) as exc:
        raise _refused(exc) from exc
    return macro_out(macro)


@router.delete("/macros/{int:macro_id}", response={204: None})
def delete_macro(request, macro_id: int):
    member = request.membership
    macro = macros.get_visible(member, macro_id)
    try:
        macros.delete_macro(macro, actor=member)
    except NotAllowed as exc:
        raise _refused(exc) from exc
    return Status(204, None)
