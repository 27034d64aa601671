"""Settings → Macros: the list, the editor (the rules' action editor: rows of action type and
value, sent as JSON and checked by the service) and deleting. Every member manages their own
personal macros; owners and admins the shared ones. Another workspace's or member's macro is a
404; a shared one a member may not change is a 403."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from loket.automation import macros
from loket.automation.models import Macro
from loket.tenancy.services import NotAllowed
from loket.web.workspace import workspace_view
from loket.web.workspace_settings.rules import editor_catalog
from loket.web.workspace_settings.views import _canned_layout

TEMPLATES = "web/workspace_settings/"


def _described(macro: Macro) -> list[str]:
    return [macros.action_label(item.get("type")) for item in macro.actions]


@workspace_view
def macro_list(request):
    member = request.membership
    rows = [
        {
            "macro": macro,
            "may_manage": macros.may_manage(member, macro),
            "actions": _described(macro),
        }
        for macro in macros.visible(member)
    ]
    return render(
        request,
        TEMPLATES + "macros.html",
        {"rows": rows, "layout": _canned_layout(member)},
    )


def _catalog(member) -> dict:
    catalog = editor_catalog(member.workspace_id)
    if not member.is_admin:
        catalog["actions"] = [
            a for a in catalog["actions"] if a["type"] not in macros.ADMIN_ONLY_ACTIONS
        ]
    return catalog


def _editor(request, macro: Macro | None, fields: dict, error: str = "", status: int = 200):
    member = request.membership
    return render(
        request,
        TEMPLATES + "macro_edit.html",
        {
            "macro": macro,
            "fields": fields,
            "error": error,
            "catalog": _catalog(member),
            # The rules' editor script reads this shape; a macro has actions only.
            "editor_state": {
                "conditions": {"match": "all", "conditions": []},
                "actions": fields.get("actions") or [],
                "trigger": "",
                "minutes": None,
            },
            "layout": _canned_layout(member),
        },
        status=status,
    )


def _posted(request) -> tuple[dict, str]:
    try:
        actions = json.loads(request.POST.get("actions") or "[]")
    except ValueError:
        actions = None
    fields = {
        "name": request.POST.get("name", ""),
        "actions": actions if isinstance(actions, list) else [],
        "shared": request.POST.get("shared") == "on",
    }
    if actions is None:
        return fields, _("The macro could not be read; reload the page and try again.")
    return fields, ""


def _save(request, macro: Macro | None):
    member = request.membership
    fields, unreadable = _posted(request)
    if unreadable:
        return _editor(request, macro, fields, unreadable, status=400)
    if not member.is_admin:
        fields["shared"] = macro.is_shared if macro is not None else False
    try:
        if macro is None:
            macro = macros.create_macro(member, **fields)
            messages.success(request, _("Macro “%(name)s” created.") % {"name": macro.name})
        else:
            macros.update_macro(macro, actor=member, **fields)
            messages.success(request, _("Macro “%(name)s” saved.") % {"name": macro.name})
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from exc
    except macros.InvalidMacro as exc:
        return _editor(request, macro, fields, str(exc), status=400)
    return redirect("wsettings:macros", request.workspace.slug)


def _manageable(request, macro_id: int) -> Macro:
    macro = macros.get_visible(request.membership, macro_id)
    if not macros.may_manage(request.membership, macro):
        raise PermissionDenied(_("Only owners and admins can manage shared macros."))
    return macro


@workspace_view
@require_http_methods(["GET", "POST"])
def macro_new(request):
    if request.method == "POST":
        return _save(request, None)
    return _editor(request, None, {"name": "", "actions": [], "shared": False})


@workspace_view
@require_http_methods(["GET", "POST"])
def macro_edit(request, macro_id: int):
    macro = _manageable(request, macro_id)
    if request.method == "POST":
        return _save(request, macro)
    fields = {"name": macro.name, "actions": macro.actions, "shared": macro.is_shared}
    return _editor(request, macro, fields)


@workspace_view
@require_POST
def macro_delete(request, macro_id: int):
    macro = _manageable(request, macro_id)
    name = macro.name
    macros.delete_macro(macro, actor=request.membership)
    messages.success(request, _("Macro “%(name)s” deleted.") % {"name": name})
    return redirect("wsettings:macros", request.workspace.slug)
