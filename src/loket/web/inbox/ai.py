"""The composer's AI tools (loket.knowledge.llm): "Draft with AI" (a reply grounded in the
knowledge base, with its sources), "Summarise" (the model's handoff summary, or the offline
extractive one when the workspace has no model) and "Translate" (the reply into the customer's
language, shown when it differs from the agent's).

The pane renders only an empty slot (_ai.html, no query); htmx loads the buttons
(``tools``) once the pane is on the page, so the provider lookup is not on the pane's path.
Each tool answers with a small panel the composer shows under its buttons."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from loket.knowledge import llm
from loket.web.inbox.views import _conversation
from loket.web.workspace import workspace_view


def _primary(code: str) -> str:
    return (code or "").strip().lower().replace("_", "-").split("-")[0]


def agent_language(request) -> str:
    return (request.user.locale or getattr(request, "LANGUAGE_CODE", "") or "en").lower()


def translate_to(request, conversation) -> str | None:
    """The customer's language when it is known and differs from the agent's."""
    customer = llm.customer_language(conversation)
    if not customer or _primary(customer) == _primary(agent_language(request)):
        return None
    return customer


@require_GET
@workspace_view
def tools(request, number: int):
    conversation = _conversation(request, number)
    features = llm.features_on(llm.provider_of(conversation.workspace_id))
    target = translate_to(request, conversation) if llm.TRANSLATE in features else None
    return render(
        request,
        "web/inbox/_ai_tools.html",
        {
            "conversation": conversation,
            "can_draft": llm.DRAFT in features,
            "model_summary": llm.SUMMARY in features,
            "translate_to": target,
            "translate_name": llm.language_name(target, translated=True) if target else "",
        },
    )


def _unavailable(request, exc: llm.LlmUnavailable, **extra):
    return render(request, "web/inbox/_ai_error.html", {"error": exc, **extra})


@require_POST
@workspace_view
def draft(request, number: int):
    conversation = _conversation(request, number)
    try:
        found = llm.draft_reply(conversation, request.membership)
    except llm.LlmUnavailable as exc:
        return _unavailable(request, exc)
    return render(
        request, "web/inbox/_ai_draft.html", {"conversation": conversation, "draft": found}
    )


@require_POST
@workspace_view
def summary(request, number: int):
    conversation = _conversation(request, number)
    problem = None
    try:
        found = llm.summary_for(conversation, request.membership)
    except llm.LlmUnavailable as exc:
        problem = exc  # the offline summary instead, with the reason
        found = llm.extractive_summary(conversation)
    return render(
        request,
        "web/inbox/_ai_summary.html",
        {"conversation": conversation, "summary": found, "problem": problem},
    )


@require_POST
@workspace_view
def translate(request, number: int):
    conversation = _conversation(request, number)
    language = translate_to(request, conversation) or llm.customer_language(conversation)
    original = request.POST.get("text", "")
    try:
        found = llm.translate(original, language, request.membership, conversation)
    except llm.LlmUnavailable as exc:
        return _unavailable(request, exc)
    return render(
        request,
        "web/inbox/_ai_translation.html",
        {
            "translation": found,
            "original": original,
            "language_name": llm.language_name(found.language, translated=True),
        },
    )
