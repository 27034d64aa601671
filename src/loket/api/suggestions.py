"""The composer's suggestions over the API (loket.knowledge.suggestions), so outside tools can
see and evaluate them: for a conversation's latest customer message, the best knowledge-base
passages (internal, agents-only articles included and marked) and canned replies; feedback on
them (used, edited, wrong) and the workspace's suggestion quality over the last 30 days.

A conversation the token's member may not see, and an article or canned reply of another
workspace (or another member's personal reply), is a 404."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from django.http import Http404
from ninja import Router, Schema, Status

from loket.inbox import selectors
from loket.knowledge import suggestions

router = Router(tags=["knowledge"])


class ArticleSuggestionOut(Schema):
    article_id: int | None  # null: an answer from a resolved conversation (opt-in)
    conversation_id: int | None  # that conversation
    locale: str
    title: str
    text: str  # the passage, as the composer inserts it
    internal: bool  # for agents only: never show it to a customer as a link
    confidence: float  # 0..1, retrieval's confidence
    url: str | None  # the article in the public help center, when it is there


class CannedSuggestionOut(Schema):
    id: int
    shortcut: str
    title: str
    text: str  # filled in for this conversation and the token's member


class SuggestionsOut(Schema):
    message_id: int | None  # the customer message they answer; null: none yet
    articles: list[ArticleSuggestionOut]
    canned: list[CannedSuggestionOut]


class FeedbackIn(Schema):
    kind: Literal["article", "canned", "conversation"]
    id: int  # the article's, canned reply's or resolved conversation's id (its conversation_id)
    verdict: Literal["used", "edited", "wrong"]


class FeedbackOut(Schema):
    id: int
    kind: str
    verdict: str
    created_at: dt.datetime


class VerdictCounts(Schema):
    used: int
    edited: int
    wrong: int


class QualityOut(Schema):
    since: dt.datetime
    days: int
    article: VerdictCounts
    canned: VerdictCounts
    conversation: VerdictCounts


@router.get("/conversations/{conversation_id}/suggestions", response=SuggestionsOut)
def get_suggestions(request, conversation_id: int):
    """The composer's suggestions for the conversation's latest customer message: up to three
    articles (best first) and up to three canned replies (most words in common first)."""
    conversation = selectors.conversation(request.membership, conversation_id)
    found = suggestions.for_conversation(conversation, request.membership)
    return {
        "message_id": found.message_id,
        "articles": [
            {
                "article_id": a.article_id,
                "conversation_id": a.conversation_id,
                "locale": a.locale,
                "title": a.title,
                "text": a.text,
                "internal": a.internal,
                "confidence": a.confidence,
                "url": a.url,
            }
            for a in found.articles
        ],
        "canned": [
            {"id": c.id, "shortcut": c.shortcut, "title": c.title, "text": c.text}
            for c in found.canned
        ],
    }


@router.post("/conversations/{conversation_id}/suggestions/feedback", response={201: FeedbackOut})
def post_feedback(request, conversation_id: int, data: FeedbackIn):
    """What the token's member did with a suggestion in this conversation."""
    conversation = selectors.conversation(request.membership, conversation_id)
    try:
        row = suggestions.record(
            conversation,
            request.membership,
            kind=data.kind,
            item_id=data.id,
            verdict=data.verdict,
        )
    except suggestions.NotFound as exc:
        raise Http404(str(exc)) from None
    return Status(
        201,
        {"id": row.pk, "kind": row.kind, "verdict": row.verdict, "created_at": row.created_at},
    )


@router.get("/knowledge/suggestion-quality", response=QualityOut)
def suggestion_quality(request):
    """How agents judged the suggestions of the last 30 days, per kind and verdict."""
    return suggestions.quality(request.membership.workspace_id)
