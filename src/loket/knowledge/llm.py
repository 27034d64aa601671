"""An optional language model: draft replies grounded in the knowledge base (with citations),
conversation summaries and translations of replies, through any OpenAI-compatible
chat-completions endpoint (a local Ollama or vLLM server, or a hosted API).

Nothing leaves the machine unless a workspace has an ``LlmProvider`` that is switched on and
has the feature (``draft``, ``summary``, ``translate``) in its ``features``: otherwise every
function here raises ``LlmUnavailable`` before building a request. The summary has an offline
default, ``extractive_summary``, which picks facts out of the conversation (no model at all).

* **Provider interface**: ``LanguageModel`` (``complete(messages, *, max_tokens, temperature)
  -> Completion``); ``OpenAICompatible`` speaks ``POST {base_url}/chat/completions`` through
  Loket's SSRF-guarded client (``loket.http.client``). No provider SDK is imported anywhere.
* **Caps**: before a call, the workspace's tokens since midnight (its time zone) and its cost
  since the first of the month are summed over ``LlmCall``; at or over ``max_tokens_per_day`` or
  ``max_cost_per_month_cents`` the call is refused (status ``capped``, nothing sent). The cost
  of a call is ``prompt_tokens * prompt_price / 1000 + completion_tokens * completion_price /
  1000`` hundredths of a cent (prices are per 1,000 tokens in hundredths of a cent), stored in
  ``cost_cents`` as cents. Calls running at the same moment are not counted against each other,
  so a cap can be overshot by the calls in flight when it is reached.
* **Review log**: every call (``ok``, ``error``, ``capped``) writes an ``LlmCall`` row with the
  messages sent, the sources given (article id, locale, title), the answer, tokens, cost and
  duration.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import zoneinfo
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import get_language_info, gettext
from django.utils.translation import gettext_lazy as _

from loket import http
from loket.inbox.models import AuthorType, Conversation, Direction, Message, MessageKind
from loket.knowledge import public
from loket.knowledge.models import LlmCall, LlmProvider
from loket.problems import Invalid, Said
from loket.tenancy.models import Membership, Workspace
from loket.tenancy.services import require_admin

DRAFT, SUMMARY, TRANSLATE, TEST = "draft", "summary", "translate", "test"
FEATURES = (DRAFT, SUMMARY, TRANSLATE)
FEATURE_LABELS = {
    DRAFT: _("Draft replies from the knowledge base"),
    SUMMARY: _("Summarise conversations"),
    TRANSLATE: _("Translate replies"),
}

SOURCES = 4  # passages a draft is grounded in
SUMMARY_MESSAGES = 30  # the most recent messages a summary reads
MAX_MESSAGE_CHARS = 1_500  # of each message, in a prompt
MAX_TEXT = 10_000  # characters of a text to translate
MAX_ERROR = 500  # characters of a provider's error kept
DRAFT_TOKENS = 600
SUMMARY_TOKENS = 400
TEST_TOKENS = 5

_CITATION = re.compile(r"\[(\d{1,2})\]")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?$")


# -- the provider interface ---------------------------------------------------------------------
@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


class LanguageModel(Protocol):
    def complete(
        self, messages: list[dict], *, max_tokens: int, temperature: float
    ) -> Completion: ...


class ProviderError(Exception):
    """The model could not answer: unreachable, too slow, an HTTP error or an answer that is not
    a chat completion. The message says which, with the provider's own words when it sent any."""


def _provider_message(response: httpx.Response) -> str:
    """The error text in an error response: OpenAI's ``{"error": {"message"}}``, Ollama's
    ``{"error": "..."}``, ``{"message"}`` / ``{"detail"}``, or the body's start."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:MAX_ERROR]
    if isinstance(data, dict):
        found = data.get("error", data.get("message", data.get("detail")))
        if isinstance(found, dict):
            found = found.get("message") or found.get("code") or found
        if found:
            return str(found)[:MAX_ERROR]
    return str(data)[:MAX_ERROR]


class OpenAICompatible:
    """``POST {base_url}/chat/completions`` with ``model``, ``messages``, ``max_tokens`` and
    ``temperature`` (no streaming); reads ``choices[0].message.content`` and
    ``usage.prompt_tokens`` / ``usage.completion_tokens`` (0 when the server sends no usage)."""

    def __init__(self, base_url: str, model: str, *, api_key: str = "", timeout: float = 30):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout

    @classmethod
    def for_provider(cls, provider: LlmProvider) -> OpenAICompatible:
        key = (provider.api_key or {}).get("key", "") if isinstance(provider.api_key, dict) else ""
        return cls(
            provider.base_url, provider.model, api_key=key, timeout=provider.timeout_seconds or 30
        )

    def complete(self, messages: list[dict], *, max_tokens: int, temperature: float) -> Completion:
        url = f"{self.base_url}/chat/completions"
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": False,
        }
        try:
            with http.client(timeout=self.timeout) as client:
                response = client.post(url, json=body, headers=headers)
        except httpx.TimeoutException:
            raise ProviderError(
                f"no answer from {self.base_url} within {self.timeout:g} seconds (timeout)"
            ) from None
        except http.BlockedAddress as exc:
            raise ProviderError(str(exc)) from None
        except httpx.HTTPError as exc:
            raise ProviderError(f"could not reach {self.base_url}: {exc}") from None
        if not response.is_success:
            raise ProviderError(
                f"the provider answered HTTP {response.status_code}: "
                f"{_provider_message(response) or response.reason_phrase}"
            )
        try:
            data = response.json()
        except ValueError:
            raise ProviderError("the provider's answer is not valid JSON") from None
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices:
            raise ProviderError("the provider's answer has no choices")
        first = choices[0] if isinstance(choices[0], dict) else {}
        message = first.get("message") if isinstance(first.get("message"), dict) else {}
        content = message.get("content")
        if not isinstance(content, str):
            raise ProviderError("the provider's answer has no message content")
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return Completion(
            text=content.strip(),
            prompt_tokens=_count(usage.get("prompt_tokens")),
            completion_tokens=_count(usage.get("completion_tokens")),
        )


def _count(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


# -- availability, caps and the log -------------------------------------------------------------
class LlmUnavailable(Exception):
    """No model answer, and why, in words for the agent. ``code``: ``not_configured`` (no
    provider, or switched off), ``feature_off``, ``capped``, ``provider_error``, ``no_sources``
    (nothing in the knowledge base to ground a draft in), ``invalid``. ``call_id``: the logged
    call, when one was logged (capped, provider error)."""

    def __init__(self, code: str, said: Said, *, call_id: int | None = None) -> None:
        self.code = code
        self.said = said
        self.call_id = call_id
        super().__init__(code)

    def __str__(self) -> str:
        return str(self.said)


def provider_of(workspace_id: int) -> LlmProvider | None:
    return LlmProvider.objects.filter(workspace_id=workspace_id).first()


def features_on(provider: LlmProvider | None) -> frozenset[str]:
    """The features a provider may be used for right now (none when it is off)."""
    if provider is None or not provider.enabled or not provider.base_url or not provider.model:
        return frozenset()
    return frozenset(str(f) for f in (provider.features or []) if f in FEATURES)


def _require(workspace_id: int, feature: str) -> LlmProvider:
    provider = provider_of(workspace_id)
    if provider is None or not provider.enabled or not provider.base_url or not provider.model:
        raise LlmUnavailable(
            "not_configured", Said(_("No language model is set up for this workspace."))
        )
    if feature != TEST and feature not in features_on(provider):
        raise LlmUnavailable(
            "feature_off",
            Said(
                _("The language model is not switched on for “%(feature)s”."),
                feature=FEATURE_LABELS.get(feature, feature),
            ),
        )
    return provider


def _zone(workspace) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(workspace.time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


@dataclass
class Spending:
    tokens_today: int
    cost_month_cents: float
    day_start: dt.datetime
    month_start: dt.datetime


def spending(workspace, now: dt.datetime | None = None) -> Spending:
    """Tokens since midnight and cost since the first of the month, both in the workspace's time
    zone, over every logged call (one query)."""
    local = (now or timezone.now()).astimezone(_zone(workspace))
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day_start.replace(day=1)
    totals = LlmCall.objects.filter(
        workspace_id=workspace.pk, created_at__gte=month_start
    ).aggregate(
        prompt=Sum("prompt_tokens", filter=Q(created_at__gte=day_start)),
        completion=Sum("completion_tokens", filter=Q(created_at__gte=day_start)),
        cost=Sum("cost_cents"),
    )
    return Spending(
        tokens_today=(totals["prompt"] or 0) + (totals["completion"] or 0),
        cost_month_cents=float(totals["cost"] or 0.0),
        day_start=day_start,
        month_start=month_start,
    )


def cost_cents(provider: LlmProvider, prompt_tokens: int, completion_tokens: int) -> float:
    """Prices are per 1,000 tokens in hundredths of a cent; the result is in cents."""
    hundredths = (
        prompt_tokens * provider.prompt_price / 1000
        + completion_tokens * provider.completion_price / 1000
    )
    return hundredths / 100


def _cap_reached(provider: LlmProvider) -> Said | None:
    spent = spending(provider.workspace)
    if spent.tokens_today >= provider.max_tokens_per_day:
        return Said(
            _("The workspace has used its %(limit)s language-model tokens for today."),
            limit=provider.max_tokens_per_day,
        )
    if spent.cost_month_cents >= provider.max_cost_per_month_cents:
        return Said(
            _("The workspace has reached its language-model budget for this month."),
        )
    return None


def _source_row(source: Source) -> dict:
    return {
        "number": source.number,
        "article_id": source.article_id,
        "locale": source.locale,
        "title": source.title,
        "internal": source.internal,
    }


def run(
    provider: LlmProvider,
    *,
    purpose: str,
    messages: list[dict],
    max_tokens: int,
    temperature: float = 0.2,
    sources: list[Source] = (),
    conversation: Conversation | None = None,
    member: Membership | None = None,
    model: LanguageModel | None = None,
) -> tuple[Completion, LlmCall]:
    """Ask the model, within the caps, and log the call; ``LlmUnavailable`` when capped or the
    provider failed (the call is logged all the same)."""
    row = LlmCall(
        workspace_id=provider.workspace_id,
        conversation=conversation,
        member=member,
        purpose=purpose,
        model=provider.model[:200],
        prompt=messages,
        sources=[_source_row(s) for s in sources],
    )
    refusal = _cap_reached(provider)
    if refusal is not None:
        row.status, row.error = "capped", str(refusal)
        row.save()
        raise LlmUnavailable("capped", refusal, call_id=row.pk)
    model = model or OpenAICompatible.for_provider(provider)
    started = time.monotonic()
    try:
        completion = model.complete(messages, max_tokens=max_tokens, temperature=temperature)
    except ProviderError as exc:
        row.duration_ms = int((time.monotonic() - started) * 1000)
        row.status, row.error = "error", str(exc)[: MAX_ERROR * 2]
        row.save()
        raise LlmUnavailable(
            "provider_error",
            Said(_("The language model did not answer: %(error)s"), error=str(exc)),
            call_id=row.pk,
        ) from None
    row.duration_ms = int((time.monotonic() - started) * 1000)
    row.status = "ok"
    row.response = completion.text
    row.prompt_tokens = completion.prompt_tokens
    row.completion_tokens = completion.completion_tokens
    row.cost_cents = cost_cents(provider, completion.prompt_tokens, completion.completion_tokens)
    row.save()
    return completion, row


# -- helpers for prompts ------------------------------------------------------------------------
def language_name(code: str, *, translated: bool = False) -> str:
    """ "Dutch" for "nl" (English names for the prompts; ``translated``: in the active language,
    for the agent); the code itself when Django does not know it."""
    code = (code or "").strip().replace("_", "-")
    for candidate in (code, code.split("-")[0]):
        try:
            info = get_language_info(candidate.lower())
        except KeyError:
            continue
        return str(info["name_translated"]) if translated else info["name"]
    return code


def customer_language(conversation: Conversation) -> str:
    return (conversation.language or conversation.contact.locale or "").strip().lower()


def agent_language(member: Membership) -> str:
    return (getattr(member.user, "locale", "") or "en").strip().lower()


def _clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _timeline(
    conversation: Conversation, limit: int = SUMMARY_MESSAGES, *, notes: bool = True
) -> list[Message]:
    """The conversation's messages and (``notes``) internal notes, no activity lines: the most
    recent ``limit``, oldest first."""
    kinds = (MessageKind.MESSAGE, MessageKind.NOTE) if notes else (MessageKind.MESSAGE,)
    rows = list(
        Message.objects.filter(
            workspace_id=conversation.workspace_id,
            conversation_id=conversation.pk,
            kind__in=kinds,
        )
        .exclude(text="")
        .select_related("author_member__user")
        .order_by("-created_at", "-pk")[:limit]
    )
    rows.reverse()
    return rows


def _speaker(message: Message) -> str:
    if message.kind == MessageKind.NOTE:
        who = message.author_member.user.get_full_name() if message.author_member else "agent"
        return f"Internal note by {who}"
    if message.direction == Direction.INBOUND:
        return "Customer"
    if message.author_type == AuthorType.BOT:
        return "Bot"
    if message.author_member is not None:
        return f"Agent {message.author_member.user.get_full_name()}"
    return "Agent"


def transcript(messages: list[Message]) -> str:
    return "\n".join(f"{_speaker(m)}: {_clip(m.text)}" for m in messages)


# -- drafts -------------------------------------------------------------------------------------
@dataclass
class Source:
    number: int  # as cited: [1], [2], ...
    article_id: int
    locale: str
    title: str
    text: str
    internal: bool
    url: str | None  # the article in the public help center, when it is there
    cited: bool = False


@dataclass
class Draft:
    text: str
    sources: list[Source]
    call_id: int


DRAFT_SYSTEM = (
    "You are a customer-service agent of {workspace} writing a reply to the customer. "
    "Answer ONLY with facts from the numbered sources the user gives you; never add facts, "
    "prices, dates, links or promises that are not in them. Cite each source you use as [1], "
    "[2], ... right after the sentence it supports. If the sources do not answer the question, "
    "say briefly that you will look into it and get back to the customer. Write the reply in "
    "{language}, the customer's language, friendly and short, ready to send, without a subject "
    "line. Sources marked internal are for agents: use their facts but do not quote them word "
    "for word or mention that they exist."
)


def _draft_prompt(conversation: Conversation, question: str, sources: list[Source]) -> list[dict]:
    language = customer_language(conversation)
    name = language_name(language) if language else "the language of the customer's message"
    numbered = "\n\n".join(
        f"[{s.number}] {s.title} ({s.locale}{', internal' if s.internal else ''})\n{s.text}"
        for s in sources
    )
    # Without internal notes: what the draft says goes to the customer.
    earlier = _timeline(conversation, 10, notes=False)
    user = (
        f"Sources:\n\n{numbered}\n\n"
        f"The conversation so far (oldest first):\n{transcript(earlier)}\n\n"
        f"The customer's latest message, to answer:\n{_clip(question, 4000)}"
    )
    return [
        {
            "role": "system",
            "content": DRAFT_SYSTEM.format(workspace=conversation.workspace.name, language=name),
        },
        {"role": "user", "content": user},
    ]


def cited_numbers(text: str) -> set[int]:
    return {int(n) for n in _CITATION.findall(text or "")}


def find_sources(conversation: Conversation, question: str) -> list[Source]:
    """The knowledge base's best passages for ``question`` (internal articles included), with
    their help-center addresses."""
    from loket.knowledge import retrieval  # loads the embedding model on first use

    language = customer_language(conversation)
    hits = retrieval.search(
        conversation.workspace_id,
        question,
        locale=language or None,
        limit=SOURCES,
        include_internal=True,
    )
    hits = [hit for hit in hits if hit.confidence >= public.MIN_CONFIDENCE][:SOURCES]
    site = (
        public.address_of(conversation.workspace_id) if any(not h.internal for h in hits) else None
    )
    return [
        Source(
            number=position,
            article_id=hit.article_id,
            locale=hit.locale,
            title=hit.title,
            text=_clip(hit.text, 2_000),
            internal=hit.internal,
            url=site.article(hit.locale, hit.slug) if site and not hit.internal else None,
        )
        for position, hit in enumerate(hits, start=1)
    ]


def draft_reply(
    conversation: Conversation, member: Membership, *, model: LanguageModel | None = None
) -> Draft:
    """A reply to the conversation's latest customer message, written by the model from the
    knowledge base's passages only, citing them as [1], [2]."""
    from loket.knowledge.suggestions import latest_customer_message

    _same_workspace(conversation, member)
    provider = _require(conversation.workspace_id, DRAFT)
    message = latest_customer_message(conversation)
    if message is None:
        raise LlmUnavailable("no_sources", Said(_("The customer has not written anything yet.")))
    sources = find_sources(conversation, message.text)
    if not sources:
        raise LlmUnavailable(
            "no_sources",
            Said(_("The knowledge base has nothing on this message, so there is no draft.")),
        )
    completion, row = run(
        provider,
        purpose=DRAFT,
        messages=_draft_prompt(conversation, message.text, sources),
        max_tokens=DRAFT_TOKENS,
        temperature=0.2,
        sources=sources,
        conversation=conversation,
        member=member,
        model=model,
    )
    cited = cited_numbers(completion.text)
    for source in sources:
        source.cited = source.number in cited
    return Draft(text=completion.text, sources=sources, call_id=row.pk)


# -- summaries ----------------------------------------------------------------------------------
@dataclass
class Summary:
    text: str
    method: str  # "llm" | "extractive"
    call_id: int | None = None
    facts: list[tuple[str, str]] = field(default_factory=list)  # extractive: (label, value)


SUMMARY_SYSTEM = (
    "You summarise customer-service conversations for the colleague who takes one over. "
    "Write at most five short bullet points in {language}: what the customer wants, what has "
    "been done or promised so far, and what is still open. Use only what the conversation "
    "says. Internal notes are visible to agents only."
)


def summarise(
    conversation: Conversation,
    member: Membership,
    *,
    model: LanguageModel | None = None,
) -> Summary:
    """A short handoff summary of the conversation's most recent ~30 messages and notes, by the
    model."""
    _same_workspace(conversation, member)
    provider = _require(conversation.workspace_id, SUMMARY)
    messages = _timeline(conversation)
    if not messages:
        raise LlmUnavailable("no_sources", Said(_("The conversation has no messages yet.")))
    prompt = [
        {
            "role": "system",
            "content": SUMMARY_SYSTEM.format(language=language_name(agent_language(member))),
        },
        {"role": "user", "content": f"The conversation (oldest first):\n{transcript(messages)}"},
    ]
    completion, row = run(
        provider,
        purpose=SUMMARY,
        messages=prompt,
        max_tokens=SUMMARY_TOKENS,
        temperature=0.2,
        conversation=conversation,
        member=member,
        model=model,
    )
    return Summary(text=completion.text, method="llm", call_id=row.pk)


def extractive_summary(conversation: Conversation) -> Summary:
    """The offline summary: no model, only facts picked out of the conversation — the
    customer's first and latest messages, how many messages and notes there are, its labels,
    and what a bot collected (its session's variables). Nothing is written or rephrased."""
    from loket.bots.models import BotSession

    rows = list(
        Message.objects.filter(
            workspace_id=conversation.workspace_id,
            conversation_id=conversation.pk,
            kind__in=(MessageKind.MESSAGE, MessageKind.NOTE),
        )
        .order_by("created_at", "pk")
        .values_list("direction", "kind", "text")
    )
    customer = [t for d, k, t in rows if d == Direction.INBOUND and k == MessageKind.MESSAGE and t]
    replies = sum(1 for d, k, _t in rows if d == Direction.OUTBOUND and k == MessageKind.MESSAGE)
    notes = sum(1 for _d, k, _t in rows if k == MessageKind.NOTE)
    facts: list[tuple[str, str]] = []
    if customer:
        facts.append((str(_("First customer message")), _clip(customer[0], 300)))
        if len(customer) > 1:
            facts.append((str(_("Latest customer message")), _clip(customer[-1], 300)))
    facts.append(
        (
            str(_("Messages")),
            str(
                Said(
                    _("%(customer)s from the customer, %(replies)s replies, %(notes)s notes"),
                    customer=len(customer),
                    replies=replies,
                    notes=notes,
                )
            ),
        )
    )
    labels = sorted(label.name for label in conversation.labels.all())
    if labels:
        facts.append((str(_("Labels")), ", ".join(labels)))
    session = (
        BotSession.objects.filter(workspace_id=conversation.workspace_id, conversation=conversation)
        .order_by("-started_at", "-pk")
        .only("variables")
        .first()
    )
    collected = {
        str(k): v
        for k, v in ((session.variables or {}) if session else {}).items()
        if not str(k).startswith("_") and isinstance(v, str | int | float | bool) and str(v)
    }
    if collected:
        facts.append(
            (
                str(_("The bot collected")),
                "; ".join(f"{k}: {_clip(str(v), 100)}" for k, v in sorted(collected.items())),
            )
        )
    text = "\n".join(f"{label}: {value}" for label, value in facts)
    return Summary(text=text, method="extractive", facts=facts)


def summary_for(
    conversation: Conversation, member: Membership, *, model: LanguageModel | None = None
) -> Summary:
    """The model's summary when the workspace has one with summaries on; the extractive one
    otherwise. A capped or failing model raises ``LlmUnavailable`` (callers may fall back)."""
    provider = provider_of(conversation.workspace_id)
    if SUMMARY not in features_on(provider):
        return extractive_summary(conversation)
    return summarise(conversation, member, model=model)


# -- translations -------------------------------------------------------------------------------
@dataclass
class Translation:
    text: str
    language: str
    call_id: int


TRANSLATE_SYSTEM = (
    "You translate customer-service replies. Translate the user's text into {language}. Keep "
    "the meaning, tone and formatting; keep names, numbers, codes, links and placeholders such "
    "as {{{{contact.name}}}} exactly as they are. Answer with the translation only."
)


def translate(
    text: str,
    language: str,
    member: Membership,
    conversation: Conversation | None = None,
    *,
    model: LanguageModel | None = None,
) -> Translation:
    """The agent's ``text`` in ``language`` (a code like ``nl`` or ``pt-BR``)."""
    if conversation is not None:
        _same_workspace(conversation, member)
    language = (language or "").strip()
    if not _LANGUAGE.match(language):
        raise LlmUnavailable(
            "invalid", Said(_("“%(value)s” is not a language code."), value=language)
        )
    text = (text or "").strip()
    if not text:
        raise LlmUnavailable("invalid", Said(_("There is no text to translate.")))
    if len(text) > MAX_TEXT:
        raise LlmUnavailable(
            "invalid",
            Said(
                _("The text is too long to translate (at most %(limit)s characters)."),
                limit=MAX_TEXT,
            ),
        )
    provider = _require(member.workspace_id, TRANSLATE)
    prompt = [
        {"role": "system", "content": TRANSLATE_SYSTEM.format(language=language_name(language))},
        {"role": "user", "content": text},
    ]
    completion, row = run(
        provider,
        purpose=TRANSLATE,
        messages=prompt,
        max_tokens=min(4_000, 200 + len(text)),  # about a token per character at worst
        temperature=0.0,
        conversation=conversation,
        member=member,
        model=model,
    )
    return Translation(text=completion.text, language=language.lower(), call_id=row.pk)


def check_connection(provider: LlmProvider, member: Membership | None = None) -> LlmCall:
    """A tiny request to check the settings (logged, counted against the caps). Works while the
    provider is switched off, so it can be checked before it is."""
    if not provider.base_url or not provider.model:
        raise LlmUnavailable("not_configured", Said(_("Fill in the base URL and the model first.")))
    _completion, row = run(
        provider,
        purpose=TEST,
        messages=[{"role": "user", "content": "Reply with the single word OK."}],
        max_tokens=TEST_TOKENS,
        temperature=0.0,
        member=member,
    )
    return row


def _same_workspace(conversation: Conversation, member: Membership) -> None:
    if member.workspace_id != conversation.workspace_id:
        raise ValueError("the member and the conversation are of different workspaces")


# -- settings -----------------------------------------------------------------------------------
class InvalidProvider(Invalid):
    """Language-model settings that cannot be saved; the problems say why."""


_URL = URLValidator(schemes=["http", "https"])
FIELD_LABELS = {
    "timeout_seconds": _("Timeout (seconds)"),
    "max_tokens_per_day": _("Tokens per day"),
    "max_cost_per_month_cents": _("Cost per month (cents)"),
    "prompt_price": _("Prompt price"),
    "completion_price": _("Completion price"),
}
PURPOSE_LABELS = {
    DRAFT: _("Draft"),
    SUMMARY: _("Summary"),
    TRANSLATE: _("Translation"),
    TEST: _("Connection test"),
}
STATUS_LABELS = {"ok": _("Answered"), "error": _("Failed"), "capped": _("Refused: cap reached")}
LIMITS = {  # field: (lowest, highest)
    "timeout_seconds": (1, 600),
    "max_tokens_per_day": (0, 1_000_000_000),
    "max_cost_per_month_cents": (0, 100_000_000),
    "prompt_price": (0, 10_000_000),
    "completion_price": (0, 10_000_000),
}


def configure(workspace: Workspace, actor: Membership | None, **fields: Any) -> LlmProvider:
    """Create or change the workspace's provider (owners and admins). ``api_key``: a new key
    (None or "" keeps the saved one), ``clear_key=True`` removes it. Other fields as on
    ``LlmProvider``; numbers may come as strings (a form)."""
    require_admin(
        actor, workspace.pk, gettext("Only owners and admins can set up the language model.")
    )
    provider = provider_of(workspace.pk) or LlmProvider(workspace=workspace)
    problems: list[Said] = []
    if "base_url" in fields:
        base_url = (fields["base_url"] or "").strip()
        try:
            _URL(base_url)
        except ValidationError:
            problems.append(Said(_("The base URL must be an http:// or https:// address.")))
        provider.base_url = base_url[:500]
    if "model" in fields:
        model = (fields["model"] or "").strip()
        if not model or len(model) > 200:
            problems.append(Said(_("The model needs a name of up to 200 characters.")))
        provider.model = model
    for name, (lowest, highest) in LIMITS.items():
        if name not in fields:
            continue
        try:
            value = int(str(fields[name]).strip())
        except (TypeError, ValueError):
            value = None
        if value is None or not lowest <= value <= highest:
            problems.append(
                Said(
                    _("%(field)s must be a whole number from %(lowest)s to %(highest)s."),
                    field=FIELD_LABELS[name],
                    lowest=lowest,
                    highest=highest,
                )
            )
            continue
        setattr(provider, name, value)
    if "features" in fields:
        chosen = [str(f) for f in fields["features"] or []]
        unknown = [f for f in chosen if f not in FEATURES]
        if unknown:
            problems.append(Said(_("Unknown feature “%(value)s”."), value=", ".join(unknown)))
        provider.features = [f for f in FEATURES if f in chosen]
    if "enabled" in fields:
        provider.enabled = bool(fields["enabled"])
    if fields.get("clear_key"):
        provider.api_key = {}
    elif fields.get("api_key"):
        provider.api_key = {"key": str(fields["api_key"]).strip()}
    if provider.enabled and (not provider.base_url or not provider.model):
        problems.append(Said(_("Fill in the base URL and the model before switching it on.")))
    if problems:
        raise InvalidProvider(*problems)
    provider.updated_at = timezone.now()
    provider.save()
    return provider


def has_key(provider: LlmProvider | None) -> bool:
    return bool(provider and isinstance(provider.api_key, dict) and provider.api_key.get("key"))


def recent_calls(workspace_id: int, limit: int = 50):
    return (
        LlmCall.objects.filter(workspace_id=workspace_id)
        .select_related("member__user")
        .order_by("-created_at", "-pk")[:limit]
    )
