"""The composer's "Suggestions" panel: knowledge-base articles and canned replies for the
conversation's latest customer message (loket.knowledge.suggestions), loaded by htmx after the
pane has rendered, and the agent's feedback on them (inserted, not helpful)."""

from __future__ import annotations

from django.http import Http404, HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from loket.knowledge import suggestions
from loket.knowledge.models import SuggestionVerdict
from loket.web.inbox.views import _conversation
from loket.web.workspace import workspace_view

# What the panel may record; "edited" is decided when the reply is sent (views.send).
PANEL_VERDICTS = {SuggestionVerdict.USED, SuggestionVerdict.WRONG}


@require_GET
@workspace_view
def panel(request, number: int):
    conversation = _conversation(request, number)
    found = suggestions.for_conversation(conversation, request.membership)
    return render(
        request,
        "web/inbox/_suggestions_list.html",
        {"conversation": conversation, "suggestions": found},
    )


@require_POST
@workspace_view
def feedback(request, number: int):
    """``kind`` (article|canned|conversation), ``id``, ``verdict`` (used|wrong), ``text`` (what was
    inserted): ``{"id": <feedback id>}``, which the composer posts with the reply."""
    conversation = _conversation(request, number)
    verdict = request.POST.get("verdict", "")
    if verdict not in PANEL_VERDICTS:
        return HttpResponseBadRequest("verdict must be used or wrong")
    try:
        item_id = int(request.POST.get("id", ""))
    except ValueError:
        return HttpResponseBadRequest("id must be a number")
    try:
        row = suggestions.record(
            conversation,
            request.membership,
            kind=request.POST.get("kind", ""),
            item_id=item_id,
            verdict=verdict,
            text=request.POST.get("text", "") if verdict == SuggestionVerdict.USED else "",
        )
    except suggestions.NotFound:
        raise Http404("no such suggestion") from None
    except ValueError:
        return HttpResponseBadRequest("kind must be article, canned or conversation")
    return JsonResponse({"id": row.pk, "verdict": row.verdict})
