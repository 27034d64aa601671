"""The optional language model over the API (loket.knowledge.llm): a draft reply grounded in the
knowledge base with its sources, a conversation summary, a translation.

When the model cannot be used the answer is an error with a code a client can act on:
409 ``llm_not_configured`` (no provider, or switched off), ``llm_feature_off``, ``llm_capped``
(the day's tokens or the month's budget are used up), ``llm_no_sources`` (nothing in the
knowledge base to ground a draft in, or nothing to summarise); 502 ``llm_provider_error`` (the
model did not answer: unreachable, timeout, an HTTP error or a malformed answer). The summary
never needs a model: without one (or with summaries off) it is the extractive summary, marked
``"method": "extractive"``.

A conversation the token's member may not see is a 404 in the path and a 400 ``invalid`` as a
body's ``conversation_id``."""

from __future__ import annotations

from ninja import Field, Router, Schema

from loket.api.main import ApiError
from loket.inbox import selectors
from loket.knowledge import llm

router = Router(tags=["ai"])


class SourceOut(Schema):
    number: int  # as cited in the text: [1], [2], ...
    article_id: int
    locale: str
    title: str
    internal: bool  # an agents-only article: never link a customer to it
    url: str | None  # the article in the public help center, when it is there
    cited: bool  # the draft cites it


class DraftOut(Schema):
    text: str
    sources: list[SourceOut]
    call_id: int  # the logged request (Settings → AI)


class SummaryOut(Schema):
    text: str
    method: str  # "llm": by the language model; "extractive": facts picked out, no model
    call_id: int | None


class TranslateIn(Schema):
    text: str = Field(..., max_length=llm.MAX_TEXT)
    language: str = Field(..., max_length=16)  # a language code: "nl", "pt-BR"
    conversation_id: int | None = None  # logged with the request


class TranslationOut(Schema):
    text: str
    language: str
    call_id: int


def _refused(exc: llm.LlmUnavailable) -> ApiError:
    if exc.code == "invalid":
        return ApiError(400, "invalid", str(exc))
    if exc.code == "provider_error":
        return ApiError(502, "llm_provider_error", str(exc))
    return ApiError(409, f"llm_{exc.code}", str(exc))


@router.post("/conversations/{conversation_id}/ai/draft", response=DraftOut)
def draft(request, conversation_id: int):
    """A reply to the conversation's latest customer message, written by the language model
    from the knowledge base's best passages only (internal articles included), citing them as
    [1], [2]; with the sources it was given."""
    conversation = selectors.conversation(request.membership, conversation_id)
    try:
        found = llm.draft_reply(conversation, request.membership)
    except llm.LlmUnavailable as exc:
        raise _refused(exc) from None
    return {
        "text": found.text,
        "call_id": found.call_id,
        "sources": [
            {
                "number": s.number,
                "article_id": s.article_id,
                "locale": s.locale,
                "title": s.title,
                "internal": s.internal,
                "url": s.url,
                "cited": s.cited,
            }
            for s in found.sources
        ],
    }


@router.post("/conversations/{conversation_id}/ai/summary", response=SummaryOut)
def summary(request, conversation_id: int):
    """A short handoff summary: by the language model when the workspace has one with
    summaries on, else the extractive summary (the customer's first and latest messages, the
    number of messages, the labels, what a bot collected)."""
    conversation = selectors.conversation(request.membership, conversation_id)
    try:
        found = llm.summary_for(conversation, request.membership)
    except llm.LlmUnavailable as exc:
        raise _refused(exc) from None
    return {"text": found.text, "method": found.method, "call_id": found.call_id}


@router.post("/ai/translate", response=TranslationOut)
def translate(request, data: TranslateIn):
    """``text`` (a reply) translated into ``language`` by the language model."""
    conversation = None
    if data.conversation_id is not None:
        conversation = (
            selectors.conversations(request.membership).filter(pk=data.conversation_id).first()
        )
        if conversation is None:
            raise ApiError(400, "invalid", "conversation_id: no such conversation")
    try:
        found = llm.translate(data.text, data.language, request.membership, conversation)
    except llm.LlmUnavailable as exc:
        raise _refused(exc) from None
    return {"text": found.text, "language": found.language, "call_id": found.call_id}
