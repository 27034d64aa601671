"""The composer's suggestions for a conversation's latest customer message, and what agents
think of them.

* **Articles**: the best three knowledge-base hits of ``retrieval.search`` for the message's
  text, internal (agents-only) articles included and marked, each with its source (title,
  locale, its help-center page when the help center shows it), the passage to insert and
  retrieval's confidence. Hits below ``MIN_CONFIDENCE`` are noise and left out. When the
  workspace learns from resolved conversations (loket.knowledge.conversations), their agents'
  answers too: internal, titled "Conversation #N", with ``conversation_id`` set and
  ``article_id`` 0. Cached per
  (conversation, message) for ``CACHE_SECONDS``, so reopening the pane does not embed again.
* **Canned replies**: the member's own and the workspace's shared replies, ranked by the words
  they share with the message (``canned_score``): no model, one query, so never cached.

Feedback, for all three sources (article, canned reply, resolved conversation): inserting a
suggestion records it as ``used`` (``record``); when the reply it went into
is sent, ``settle`` compares the text sent with the text inserted and turns it into ``edited``
when the reply kept less than ``EDITED_BELOW`` of the inserted words (``kept_share``); an agent
may also call a suggestion not helpful (``wrong``). ``quality`` counts the verdicts.

Nothing here runs while a message is received: suggestions are computed when an agent (or an
API client) asks for them.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import math
import re
from dataclasses import asdict, dataclass

from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone

from loket.automation import canned
from loket.automation.models import CannedReply
from loket.inbox.models import Conversation, Direction, Message, MessageKind
from loket.knowledge import public, retrieval
from loket.knowledge import words as kb_words
from loket.knowledge.models import (
    Article,
    SuggestionFeedback,
    SuggestionKind,
    SuggestionVerdict,
)
from loket.tenancy.models import Membership, Workspace

ARTICLES = 3
CANNED = 3
CACHE_SECONDS = 120
# The help center's floor for showing a hit (unrelated questions stay under it).
MIN_CONFIDENCE = public.MIN_CONFIDENCE
# A reply that kept less than this share of the inserted words (in order) counts as edited.
EDITED_BELOW = 0.8
MAX_TEXT = 10_000  # characters of inserted text kept for the check
QUALITY_DAYS = 30

_PLACEHOLDER = re.compile(r"\{\{[^{}\n]*\}\}")


@dataclass
class ArticleSuggestion:
    article_id: int | None  # None: a resolved conversation's answer (``conversation_id``)
    locale: str
    title: str
    text: str  # the passage, to insert
    internal: bool
    confidence: float
    url: str | None  # the article in the public help center, when it is there
    conversation_id: int | None = None  # the resolved conversation the answer comes from


@dataclass
class CannedSuggestion:
    id: int
    shortcut: str
    title: str
    text: str  # filled in for this conversation and member
    score: float


@dataclass
class Suggestions:
    message_id: int | None  # the customer message they answer (None: no customer message yet)
    articles: list[ArticleSuggestion]
    canned: list[CannedSuggestion]


# -- suggesting ---------------------------------------------------------------------------------
def latest_customer_message(conversation: Conversation) -> Message | None:
    """The newest message the customer wrote (with text) in the conversation."""
    return (
        Message.objects.filter(
            workspace_id=conversation.workspace_id,
            conversation_id=conversation.pk,
            direction=Direction.INBOUND,
            kind=MessageKind.MESSAGE,
        )
        .exclude(text="")
        .only("pk", "text")
        .order_by("-created_at", "-pk")
        .first()
    )


def _locale(conversation: Conversation) -> str | None:
    value = (conversation.language or conversation.contact.locale or "").strip().lower()
    return value.replace("_", "-") or None


def cache_key(conversation: Conversation, message: Message) -> str:
    digest = hashlib.sha256(message.text.encode()).hexdigest()[:16]
    return f"loket:kb-suggest:{conversation.workspace_id}:{conversation.pk}:{message.pk}:{digest}"


def for_conversation(conversation: Conversation, member: Membership) -> Suggestions:
    """The suggestions for the conversation's latest customer message, for ``member`` (whose
    personal canned replies count). The conversation must be one the member may see."""
    if member.workspace_id != conversation.workspace_id:
        raise ValueError("the member and the conversation are of different workspaces")
    message = latest_customer_message(conversation)
    if message is None:
        return Suggestions(None, [], [])
    return Suggestions(
        message.pk,
        article_suggestions(conversation, message),
        canned_suggestions(conversation, member, message.text),
    )


def article_suggestions(conversation: Conversation, message: Message) -> list[ArticleSuggestion]:
    key = cache_key(conversation, message)
    cached = cache.get(key)
    if cached is not None:
        return [ArticleSuggestion(**row) for row in cached]
    hits = retrieval.search(
        conversation.workspace_id,
        message.text,
        locale=_locale(conversation),
        limit=ARTICLES,
        include_internal=True,
        include_conversations=Workspace.objects.filter(
            pk=conversation.workspace_id, learn_from_conversations=True
        ).exists(),
    )
    hits = [
        hit
        for hit in hits
        if hit.confidence >= MIN_CONFIDENCE and hit.conversation_id != conversation.pk
    ][:ARTICLES]
    site = (
        public.address_of(conversation.workspace_id)
        if any(not hit.internal for hit in hits)
        else None
    )
    found = [
        ArticleSuggestion(
            article_id=hit.article_id,
            locale=hit.locale,
            title=hit.title,
            text=hit.text,
            internal=hit.internal,
            confidence=round(hit.confidence, 4),
            url=site.article(hit.locale, hit.slug) if site and not hit.internal else None,
            conversation_id=hit.conversation_id,
        )
        for hit in hits
    ]
    cache.set(key, [asdict(item) for item in found], CACHE_SECONDS)
    return found


def words(text: str) -> set[str]:
    """The stems of a text's meaningful words (no stop words, no ``{{variables}}``)."""
    text = _PLACEHOLDER.sub(" ", text or "").lower()
    return {kb_words.stem(w) for w in kb_words.content_words(text, min_letters=3)}


def canned_score(message_words: set[str], reply: CannedReply) -> float:
    """How well a canned reply matches a message: the stems they share (a shared title word
    counts twice), over the square root of the reply's own stems (long replies do not win by
    length alone). 0: nothing in common."""
    title = words(reply.title) | words(reply.shortcut.replace("-", " ").replace("_", " "))
    body = words(reply.body)
    shared = len(message_words & (title | body)) + len(message_words & title)
    if not shared:
        return 0.0
    return shared / math.sqrt(len(title | body))


def rank_canned(member: Membership, text: str, language: str | None) -> list[tuple]:
    """``(reply, score)`` of the replies the member may use that share words with ``text``,
    best first; ties in the composer's order (the conversation's language first)."""
    found = words(text)
    if not found:
        return []
    ranked = []
    for position, reply in enumerate(canned.for_composer(member, language)):
        score = canned_score(found, reply)
        if score > 0:
            ranked.append((-score, position, reply))
    ranked.sort(key=lambda row: (row[0], row[1]))
    return [(reply, -score) for score, _position, reply in ranked]


def canned_suggestions(
    conversation: Conversation, member: Membership, text: str
) -> list[CannedSuggestion]:
    language = conversation.language or conversation.contact.locale
    return [
        CannedSuggestion(
            id=reply.pk,
            shortcut=reply.shortcut,
            title=reply.title,
            text=canned.render_text(reply.body, conversation, member).text,
            score=round(score, 4),
        )
        for reply, score in rank_canned(member, text, language)[:CANNED]
    ]


# -- feedback -----------------------------------------------------------------------------------
class NotFound(LookupError):
    """The article or canned reply is not one the member may see (another workspace's, another
    member's personal reply, or none at all)."""


def record(
    conversation: Conversation,
    member: Membership,
    *,
    kind: str,
    item_id: int,
    verdict: str,
    text: str = "",
) -> SuggestionFeedback:
    """Store what ``member`` did with a suggestion in ``conversation``."""
    if kind not in SuggestionKind.values or verdict not in SuggestionVerdict.values:
        raise ValueError("unknown kind or verdict")
    if member.workspace_id != conversation.workspace_id:
        raise NotFound("no such conversation")
    article = reply = source = None
    if kind == SuggestionKind.ARTICLE:
        article = Article.objects.filter(workspace_id=member.workspace_id, pk=item_id).first()
        if article is None:
            raise NotFound("no such article")
    elif kind == SuggestionKind.CONVERSATION:
        # Another of the workspace's conversations whose answer was suggested; the passage may
        # be gone by now (reopened since), the judgement still counts.
        source = (
            Conversation.objects.filter(workspace_id=member.workspace_id, pk=item_id)
            .exclude(pk=conversation.pk)
            .only("pk")
            .first()
        )
        if source is None:
            raise NotFound("no such conversation")
    else:
        reply = canned.visible(member).filter(pk=item_id).first()
        if reply is None:
            raise NotFound("no such canned reply")
    return SuggestionFeedback.objects.create(
        workspace_id=conversation.workspace_id,
        conversation=conversation,
        member=member,
        kind=kind,
        article=article,
        canned_reply=reply,
        source_conversation=source,
        verdict=verdict,
        text=(text or "")[:MAX_TEXT],
    )


def pending(conversation: Conversation, member: Membership, ids) -> list[SuggestionFeedback]:
    """The member's insertions in this conversation named by ``ids`` (the composer posts them
    with the reply) that no reply has settled yet. No query without ids."""
    clean = []
    for value in ids or []:
        try:
            clean.append(int(value))
        except (TypeError, ValueError):
            continue
    if not clean:
        return []
    return list(
        SuggestionFeedback.objects.filter(
            workspace_id=conversation.workspace_id,
            conversation_id=conversation.pk,
            member=member,
            verdict=SuggestionVerdict.USED,
            message__isnull=True,
            pk__in=clean[:20],
        )
    )


def kept_share(inserted: str, sent: str) -> float:
    """The share of the inserted words the sent text kept, in order (difflib's matching blocks
    over words): 1.0 for the text as inserted, with or without a greeting around it."""
    before = (inserted or "").split()
    if not before:
        return 1.0
    after = (sent or "").split()
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    kept = sum(block.size for block in matcher.get_matching_blocks())
    return kept / len(before)


def settle(rows: list[SuggestionFeedback], message: Message) -> None:
    """The reply ``message`` went out with these insertions in it: each stays ``used`` or
    becomes ``edited`` by how much of it the reply kept."""
    for row in rows:
        row.kept = round(kept_share(row.text, message.text), 4)
        row.verdict = (
            SuggestionVerdict.EDITED if row.kept < EDITED_BELOW else SuggestionVerdict.USED
        )
        row.message = message
        row.save(update_fields=["kept", "verdict", "message"])


def quality(workspace_id: int, days: int = QUALITY_DAYS) -> dict:
    """Verdicts of the last ``days`` days: ``{"since", "days", "article": {"used": n, "edited":
    n, "wrong": n}, "canned": {...}, "conversation": {...}}``."""
    since = timezone.now() - dt.timedelta(days=days)
    counts = {kind: dict.fromkeys(SuggestionVerdict.values, 0) for kind in SuggestionKind.values}
    rows = (
        SuggestionFeedback.objects.filter(workspace_id=workspace_id, created_at__gte=since)
        .values("kind", "verdict")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in rows:
        if row["kind"] in counts and row["verdict"] in counts[row["kind"]]:
            counts[row["kind"]][row["verdict"]] = row["n"]
    return {"since": since, "days": days, **counts}
