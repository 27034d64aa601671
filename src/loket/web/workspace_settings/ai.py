"""Settings → AI: the workspace's optional language model (loket.knowledge.llm): the provider
form (base URL, model, a write-only API key, timeout, caps, prices, features, on/off), "Test
connection", today's tokens and the month's spend, and the log of recent calls, each with the
prompt, the sources and the answer. Owners and admins only; another workspace's call is 404."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from loket.knowledge import llm
from loket.knowledge.models import LlmCall, LlmProvider
from loket.problems import texts
from loket.web.workspace import workspace_view

TEMPLATES = "web/workspace_settings/"
FIELDS = (
    "base_url",
    "model",
    "timeout_seconds",
    "max_tokens_per_day",
    "max_cost_per_month_cents",
    "prompt_price",
    "completion_price",
)


def _context(request, provider: LlmProvider | None, **extra) -> dict:
    workspace = request.workspace
    shown = provider or LlmProvider(workspace=workspace)
    return {
        "provider": shown,
        "configured": provider is not None,
        "has_key": llm.has_key(provider),
        "features": [
            (key, label, key in (shown.features or [])) for key, label in llm.FEATURE_LABELS.items()
        ],
        "spent": llm.spending(workspace),
        "calls": [_labelled(call) for call in llm.recent_calls(workspace.pk)],
        **extra,
    }


def _labelled(call: LlmCall) -> LlmCall:
    call.purpose_label = llm.PURPOSE_LABELS.get(call.purpose, call.purpose)
    call.status_label = llm.STATUS_LABELS.get(call.status, call.status)
    return call


@workspace_view(admin=True)
@require_http_methods(["GET", "POST"])
def ai(request):
    provider = llm.provider_of(request.workspace.pk)
    if request.method == "POST":
        post = request.POST
        fields = {name: post.get(name, "") for name in FIELDS}
        fields.update(
            enabled=post.get("enabled") == "on",
            features=post.getlist("features"),
            api_key=post.get("api_key", ""),  # empty: keep the saved key
            clear_key=post.get("clear_key") == "on",
        )
        try:
            llm.configure(request.workspace, request.membership, **fields)
        except llm.InvalidProvider as exc:
            unsaved = provider or LlmProvider(workspace=request.workspace)
            for name in FIELDS:
                setattr(unsaved, name, fields[name])
            unsaved.enabled, unsaved.features = fields["enabled"], fields["features"]
            return render(
                request,
                TEMPLATES + "ai.html",
                _context(request, provider, errors=texts(exc.problems), unsaved=unsaved),
                status=400,
            )
        messages.success(request, _("The language model settings are saved."))
        return redirect("wsettings:ai", request.workspace.slug)
    return render(request, TEMPLATES + "ai.html", _context(request, provider))


@workspace_view(admin=True)
@require_POST
def ai_test(request):
    provider = llm.provider_of(request.workspace.pk)
    if provider is None:
        messages.error(request, _("Save the settings first."))
        return redirect("wsettings:ai", request.workspace.slug)
    try:
        row = llm.check_connection(provider, request.membership)
    except llm.LlmUnavailable as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("The model answered in %(ms)s ms: “%(text)s”.")
            % {"ms": row.duration_ms, "text": row.response[:100]},
        )
    return redirect("wsettings:ai", request.workspace.slug)


@workspace_view(admin=True)
@require_GET
def ai_call(request, call_id: int):
    call = (
        LlmCall.objects.filter(workspace_id=request.workspace.pk, pk=call_id)
        .select_related("member__user")
        .first()
    )
    if call is None:
        raise Http404("no such call")
    return render(request, TEMPLATES + "ai_call.html", {"call": _labelled(call)})
