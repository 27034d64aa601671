"""Settings → Bot flows: the list (with each flow's figures), new / import / export / delete, and
the editor: the flow's settings, its steps as cards edited in the browser (sent as the draft's
JSON and stored as given, however unfinished), check_draft's errors shown at the step they name,
publishing, the per-step figures, and a test panel where the admin chats with the draft (one
``engine.simulate`` turn per message, nothing kept). Owners and admins only; another
workspace's flow is 404."""

from __future__ import annotations

import json
import re

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from loket.bots import definition as flow_definition
from loket.bots import engine, services
from loket.bots.models import BotSession, Flow, FlowTrigger, SessionState
from loket.inbox.models import Channel
from loket.problems import Problem, texts
from loket.tenancy.models import Team
from loket.tenancy.services import NotAllowed
from loket.web.workspace import workspace_view

TEMPLATES = "web/workspace_settings/"
MAX_IMPORT_BYTES = 1_000_000

STEP_TYPES = {
    "message": gettext_lazy("Send a message"),
    "choice": gettext_lazy("Ask with choices"),
    "input": gettext_lazy("Ask for input"),
    "condition": gettext_lazy("Branch on a condition"),
    "set": gettext_lazy("Set fields or labels"),
    "http": gettext_lazy("HTTP lookup"),
    "faq": gettext_lazy("Answer from a FAQ"),
    "handoff": gettext_lazy("Hand off to a person"),
    "close": gettext_lazy("Close the conversation"),
}
VALIDATION_LABELS = {
    "text": gettext_lazy("Any text"),
    "number": gettext_lazy("A number"),
    "email": gettext_lazy("An email address"),
    "phone": gettext_lazy("A phone number"),
    "date": gettext_lazy("A date"),
    "regex": gettext_lazy("A pattern (regular expression)"),
}
FIGURES = {
    "started": gettext_lazy("Started"),
    SessionState.COMPLETED: gettext_lazy("Completed"),
    SessionState.HANDED_OFF: gettext_lazy("Handed off"),
    SessionState.DROPPED: gettext_lazy("Dropped"),
    SessionState.STOPPED: gettext_lazy("Taken over"),
    SessionState.ACTIVE: gettext_lazy("Talking now"),
}


def starter_draft() -> dict:
    """What a new flow begins with: a greeting, then a person."""
    return {
        "start": "welcome",
        "language": "en",
        "steps": {
            "welcome": {
                "type": "message",
                "text": {"en": "Hi! How can I help?", "nl": "Hoi! Waarmee kan ik helpen?"},
                "next": "human",
            },
            "human": {
                "type": "handoff",
                "text": {
                    "en": "I will get a colleague for you.",
                    "nl": "Ik haal een collega voor je.",
                },
            },
        },
    }


def _flow(request, flow_id: int) -> Flow:
    flow = services.get_flow(request.workspace.pk, flow_id)
    if flow is None:
        raise Http404("no such flow")
    return flow


def _words(raw: str) -> list[str]:
    return [w.strip() for w in (raw or "").split(",") if w.strip()]


def _figures_by_flow(workspace_id: int) -> dict[int, dict[str, int]]:
    """Sessions per flow and state, in one query."""
    found: dict[int, dict[str, int]] = {}
    rows = (
        BotSession.objects.filter(workspace_id=workspace_id)
        .order_by()
        .values_list("flow_id", "state")
        .annotate(n=Count("pk"))
    )
    for flow_id, state, n in rows:
        figures = found.setdefault(flow_id, {"started": 0})
        figures[state] = figures.get(state, 0) + n
        figures["started"] += n
    return found


@workspace_view(admin=True)
@require_http_methods(["GET", "POST"])
def flows(request):
    """The list; POST makes a new flow (a name) and opens it in the editor."""
    workspace = request.workspace
    if request.method == "POST":
        try:
            flow = services.create_flow(
                workspace,
                name=request.POST.get("name", ""),
                draft=starter_draft(),
                handoff_words=["agent", "medewerker"],
                actor=request.membership,
            )
        except NotAllowed as exc:
            raise PermissionDenied(str(exc)) from exc
        except services.InvalidFlowSettings:
            messages.error(request, _("A flow needs a name of up to 200 characters."))
            return redirect("wsettings:flows", workspace.slug)
        messages.success(request, _("Flow “%(name)s” created.") % {"name": flow.name})
        return redirect("wsettings:flow-edit", workspace.slug, flow.pk)
    found = list(
        services.flows_of(workspace.pk).select_related("published").prefetch_related("channels")
    )
    figures = _figures_by_flow(workspace.pk)
    triggers = dict(FlowTrigger.choices)
    rows = [
        {
            "flow": flow,
            "trigger": triggers.get(flow.trigger, flow.trigger),
            "channels": ", ".join(c.name for c in flow.channels.all()),
            "figures": figures.get(flow.pk, {}),
        }
        for flow in found
    ]
    return render(request, TEMPLATES + "flows.html", {"rows": rows})


@workspace_view(admin=True)
@require_POST
def flow_import(request):
    """A flow from an uploaded export (JSON), switched off and unpublished."""
    workspace = request.workspace
    upload = request.FILES.get("file")
    try:
        if upload is None or upload.size > MAX_IMPORT_BYTES:
            raise ValueError
        data = json.loads(upload.read().decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        messages.error(request, _("Choose a flow export: a JSON file of up to 1 MB."))
        return redirect("wsettings:flows", workspace.slug)
    try:
        with transaction.atomic():
            flow = services.import_flow(workspace, data, actor=request.membership)
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.InvalidFlowSettings:
        messages.error(request, _("That file is not a Loket flow export."))
        return redirect("wsettings:flows", workspace.slug)
    except flow_definition.InvalidFlow as exc:
        messages.error(
            request,
            _("The flow in that file cannot be run: %(errors)s") % {"errors": exc},
        )
        return redirect("wsettings:flows", workspace.slug)
    messages.success(request, _("Flow “%(name)s” imported.") % {"name": flow.name})
    return redirect("wsettings:flow-edit", workspace.slug, flow.pk)


@workspace_view(admin=True)
def flow_export(request, flow_id: int):
    flow = _flow(request, flow_id)
    body = json.dumps(services.export_flow(flow), indent=2, ensure_ascii=False)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    filename = re.sub(r"[^A-Za-z0-9_-]+", "-", flow.name).strip("-").lower() or "flow"
    response["Content-Disposition"] = f'attachment; filename="{filename}.json"'
    return response


@workspace_view(admin=True)
@require_POST
def flow_delete(request, flow_id: int):
    flow = _flow(request, flow_id)
    services.delete_flow(flow, actor=request.membership)
    messages.success(request, _("Flow “%(name)s” deleted.") % {"name": flow.name})
    return redirect("wsettings:flows", request.workspace.slug)


@workspace_view(admin=True)
@require_POST
def flow_enabled(request, flow_id: int):
    flow = _flow(request, flow_id)
    enabled = request.POST.get("enabled") == "1"
    try:
        services.update_flow(flow, actor=request.membership, enabled=enabled)
    except services.InvalidFlowSettings:
        messages.error(request, _("Publish the flow before switching it on."))
    else:
        if enabled:
            messages.success(request, _("Flow “%(name)s” switched on.") % {"name": flow.name})
        else:
            messages.success(request, _("Flow “%(name)s” switched off.") % {"name": flow.name})
    target = request.POST.get("next") == "edit"
    if target:
        return redirect("wsettings:flow-edit", request.workspace.slug, flow.pk)
    return redirect("wsettings:flows", request.workspace.slug)


def _step_problems(
    errors: list[Problem], warnings: list[Problem]
) -> dict[str, dict[str, list[str]]]:
    """Errors and warnings by their step ("" for the flow as a whole), in the admin's language;
    on a step they leave out its name (the step's card shows it)."""
    found: dict[str, dict[str, list[str]]] = {}
    for kind, items in (("errors", errors), ("warnings", warnings)):
        for item in items:
            step = item.step or ""
            found.setdefault(step, {"errors": [], "warnings": []})[kind].append(item.text())
    return found


def _editor_page(request, flow: Flow, status: int = 200):
    workspace = request.workspace
    errors, warnings = services.check_draft(flow)
    figures = services.metrics(flow)
    step_figures = [
        {"step": step, "reached": row["reached"], "dropped": row["dropped"]}
        for step, row in figures["steps"].items()
    ]
    channels = list(Channel.objects.filter(workspace_id=workspace.pk).order_by("name"))
    chosen = set(flow.channels.values_list("pk", flat=True))
    teams = [
        {"value": t.pk, "label": t.name}
        for t in Team.objects.filter(workspace_id=workspace.pk).order_by("name")
    ]
    draft = flow.draft or {}
    if not isinstance(draft.get("steps"), dict):
        draft = {"start": "", "language": "en", "steps": {}}
    return render(
        request,
        TEMPLATES + "flow_edit.html",
        {
            "flow": flow,
            "triggers": FlowTrigger.choices,
            "channels": [{"channel": c, "chosen": c.pk in chosen} for c in channels],
            "keywords": ", ".join(flow.keywords or []),
            "handoff_words": ", ".join(flow.handoff_words or []),
            "errors": errors,
            "warnings": warnings,
            "figures": [
                {"label": label, "value": figures.get(key, 0)} for key, label in FIGURES.items()
            ],
            "step_figures": step_figures,
            "editor_state": {
                "draft": draft,
                "problems": _step_problems(errors, warnings),
                "teams": teams,
                "types": [{"value": k, "label": str(v)} for k, v in STEP_TYPES.items()],
                "validations": [
                    {"value": k, "label": str(v)} for k, v in VALIDATION_LABELS.items()
                ],
                "languages": ["en", "nl"],
                "outcomes": {value: str(label) for value, label in SessionState.choices},
            },
        },
        status=status,
    )


@workspace_view(admin=True)
@require_http_methods(["GET", "POST"])
def flow_edit(request, flow_id: int):
    """The editor; POST saves the settings and the draft as given (see check_draft)."""
    flow = _flow(request, flow_id)
    if request.method == "GET":
        return _editor_page(request, flow)
    changes: dict = {
        "name": request.POST.get("name", ""),
        "description": request.POST.get("description", ""),
        "trigger": request.POST.get("trigger", ""),
        "keywords": _words(request.POST.get("keywords", "")),
        "handoff_words": _words(request.POST.get("handoff_words", "")),
        "channel_ids": [int(v) for v in request.POST.getlist("channels") if v.isdigit()],
    }
    raw = request.POST.get("draft")
    if raw:
        try:
            changes["draft"] = json.loads(raw)
        except ValueError:
            messages.error(request, _("The steps could not be read: the JSON is not valid."))
            return _editor_page(request, flow, status=400)
        if not isinstance(changes["draft"], dict):
            messages.error(request, _("The steps could not be read: the JSON is not valid."))
            return _editor_page(request, flow, status=400)
    try:
        with transaction.atomic():
            services.update_flow(flow, actor=request.membership, **changes)
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.InvalidFlowSettings as exc:
        flow.refresh_from_db()
        messages.error(request, _("Not saved: %(reason)s") % {"reason": exc})
        return _editor_page(request, flow, status=400)
    enabled = request.POST.get("enabled") == "on"
    if enabled != flow.enabled:
        try:
            services.update_flow(flow, actor=request.membership, enabled=enabled)
        except services.InvalidFlowSettings:
            flow.enabled = False
            messages.error(request, _("Publish the flow before switching it on."))
    errors, _warnings = services.check_draft(flow)
    if errors:
        messages.warning(request, _("Draft saved; fix the errors below before publishing."))
    elif request.POST.get("publish"):
        return _publish(request, flow)
    else:
        messages.success(request, _("Draft saved."))
    return redirect("wsettings:flow-edit", request.workspace.slug, flow.pk)


def _publish(request, flow: Flow):
    try:
        version = services.publish(flow, actor=request.membership)
    except flow_definition.InvalidFlow:
        messages.error(request, _("The draft has errors; fix them before publishing."))
    else:
        messages.success(
            request,
            _("Version %(number)s published: new conversations get it.")
            % {"number": version.number},
        )
    return redirect("wsettings:flow-edit", request.workspace.slug, flow.pk)


@workspace_view(admin=True)
@require_POST
def flow_publish(request, flow_id: int):
    """The saved draft becomes the next version (the editor's button saves it first)."""
    return _publish(request, _flow(request, flow_id))


@workspace_view(admin=True)
@require_POST
def flow_test(request, flow_id: int):
    """The test panel: one turn of the draft in the editor (posted as JSON, not saved), from
    ``state`` (empty: start). Answers simulate's JSON, or ``{"errors": [...]}`` with 400."""
    _flow(request, flow_id)
    try:
        draft = json.loads(request.POST.get("draft") or "{}")
        state = json.loads(request.POST.get("state") or "null")
    except ValueError:
        return JsonResponse({"errors": [_("The steps could not be read.")]}, status=400)
    if state is not None and not isinstance(state, dict):
        state = None
    try:
        turn = engine.simulate(
            request.workspace,
            draft,
            state=state,
            text=(request.POST.get("text") or "").strip()[:4000] or None,
            choice_id=request.POST.get("choice_id") or None,
            language=(request.POST.get("language") or "")[:10],
            contact_name=request.membership.display_name or "Test",
        )
    except flow_definition.InvalidFlow as exc:
        return JsonResponse({"errors": texts(exc.errors)}, status=400)
    return JsonResponse(turn)
