"""CSAT surveys on the conversation's own channel.

A channel's ``settings["csat"]`` (``{"enabled": bool, "delay_minutes": 0..10080}``, checked by
``clean_setting`` here and nowhere else) turns the survey on. When a conversation on such a
channel is resolved, ``enqueue_jobs`` (an event enqueuer: the job commits with the resolution)
schedules ``send_csat_survey`` after the delay. The survey goes out through
``outbound.reply`` as a SYSTEM message with ``data["csat_survey"]``: five choices (``csat:1`` ..
``csat:5``) plus a link for a comment on channels that show choices, a short text with links on
the others. The live chat is left out: its widget asks for a rating itself after resolve.

The link is ``/csat/<token>/``: a signed conversation id (its own salt, valid
``TOKEN_MAX_AGE``), opening a page where the customer rates 1-5 with an optional comment.

A customer who answers the survey in the conversation (a tapped ``csat:N`` button, or "4"
typed) reopens the resolved conversation, as any message of theirs does (ingest). The reopen
enqueues ``take_survey_answer``: when every message the customer sent since the survey is an
answer to it, the conversation is resolved again (an activity line says why; its resolution
time stays the original one) and the rating stored; when they also wrote something else, the
rating is stored and the conversation stays open for an agent.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from loket import events
from loket.jobs.policy import job

log = logging.getLogger(__name__)

DELAY_MAX = 10080  # minutes: a week
DEFAULT_DELAY = 60
NOT_ON = frozenset({"livechat"})  # the widget asks for a rating itself
TOKEN_SALT = "loket.csat.survey"  # noqa: S105 (a salt, not a secret)
TOKEN_MAX_AGE = dt.timedelta(days=30)
CHOICE_PREFIX = "csat:"
DASH = "\u2013"

SCORES = [
    (1, gettext_lazy("Bad")),
    (2, gettext_lazy("Poor")),
    (3, gettext_lazy("Okay")),
    (4, gettext_lazy("Good")),
    (5, gettext_lazy("Great")),
]


# -- the per-channel setting -------------------------------------------------------------------


def applies_to(channel) -> bool:
    """Whether a channel of this kind can have the survey (the live chat asks by itself)."""
    return channel.kind not in NOT_ON


def clean_setting(value: Any) -> dict[str, Any]:
    """The channel's CSAT setting, checked: ``{"enabled": bool, "delay_minutes": 0..10080}``.
    Keys left out take their defaults. Raises ValueError saying what is wrong."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ValueError(_("The satisfaction survey setting must be an object."))
    unknown = set(value) - {"enabled", "delay_minutes"}
    if unknown:
        raise ValueError(
            _("Unknown satisfaction survey setting: %(names)s")
            % {"names": ", ".join(sorted(unknown))}
        )
    enabled = value.get("enabled", False)
    if not isinstance(enabled, bool):
        raise ValueError(_("“enabled” must be true or false."))
    delay = value.get("delay_minutes", DEFAULT_DELAY)
    if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= DELAY_MAX:
        raise ValueError(
            _("The survey delay must be a whole number of minutes from 0 to %(max)d.")
            % {"max": DELAY_MAX}
        )
    return {"enabled": enabled, "delay_minutes": delay}


def setting_of(channel) -> dict[str, Any]:
    """The channel's setting as stored (off when missing or unreadable)."""
    try:
        return clean_setting((channel.settings or {}).get("csat"))
    except ValueError:
        return clean_setting({})


def set_setting(channel, value: Any) -> dict[str, Any]:
    """Check and store the channel's CSAT setting (ValueError when it is wrong, or when the
    channel's kind has no survey)."""
    cleaned = clean_setting(value)
    if not applies_to(channel):
        raise ValueError(
            _("The live chat asks for a rating itself after a conversation is resolved.")
        )
    channel.settings = {**(channel.settings or {}), "csat": cleaned}
    channel.save(update_fields=["settings"])
    return cleaned


# -- the link ------------------------------------------------------------------------------------


class BadToken(Exception):
    """The link is not one of ours (or its conversation is gone)."""


class ExpiredToken(BadToken):
    """The link is ours but too old."""


def make_token(conversation_id: int) -> str:
    return signing.dumps({"c": int(conversation_id)}, salt=TOKEN_SALT)


def read_token(token: str) -> int:
    """The conversation id in a survey link's token; BadToken / ExpiredToken otherwise."""
    try:
        value = signing.loads(token, salt=TOKEN_SALT, max_age=TOKEN_MAX_AGE)
    except signing.SignatureExpired:
        raise ExpiredToken from None
    except signing.BadSignature:
        raise BadToken from None
    if not isinstance(value, dict) or not isinstance(value.get("c"), int):
        raise BadToken
    return value["c"]


def survey_url(conversation_id: int, rating: int | None = None, token: str = "") -> str:
    url = settings.LOKET_PUBLIC_URL + reverse(
        "csat:rate", args=[token or make_token(conversation_id)]
    )
    return f"{url}?{urlencode({'rating': rating})}" if rating else url


# -- the survey ---------------------------------------------------------------------------------


def score_items() -> list[dict[str, str]]:
    """The five answers as choices (in the active language)."""
    return [
        {"id": f"{CHOICE_PREFIX}{score}", "title": f"{score} {DASH} {label}"}
        for score, label in SCORES
    ]


def language_of(conversation) -> str:
    wanted = (conversation.language or "").split("-")[0].lower()
    known = {code for code, _name in settings.LANGUAGES}
    return wanted if wanted in known else settings.LANGUAGE_CODE


def survey_content(conversation) -> tuple[str, dict[str, Any]]:
    """The survey's text and ``data`` for this conversation's channel (in the active
    language)."""
    from loket.inbox.services import choices

    token = make_token(conversation.pk)
    link = survey_url(conversation.pk, token=token)
    items = score_items()
    native, _title_max = choices.channel_limits(conversation)
    if native >= len(items):
        text = _(
            "Your conversation with us is resolved. How did we do? Choose a rating below."
            "\n\nWant to add a comment? %(link)s"
        ) % {"link": link}
        text, data = choices.prepare(conversation, text, items, prompt=_("Rate us"))
    elif conversation.channel.kind == "email":
        lines = [
            _("Your conversation with us is resolved. How did we do? Click a rating:"),
            "",
            *[
                f"{item['title']}: {survey_url(conversation.pk, score, token)}"
                for score, item in enumerate(items, start=1)
            ],
            "",
            _("You can add a comment on the same page."),
        ]
        text, data = "\n".join(lines), {}
    else:
        text = _(
            "Your conversation with us is resolved. How did we do? Rate us from 1 to 5: %(link)s"
        ) % {"link": link}
        data = {}
    data["csat_survey"] = {"items": items}
    return text, data


def _parse(iso: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return None


@job(priority=-5)
def send_csat_survey(conversation_id: int, resolved_at_iso: str) -> None:
    """Send the survey for the resolution at ``resolved_at_iso``: only when the conversation
    is still resolved at that same time, has no rating, and no survey went out for it yet
    (running twice sends one)."""
    from loket.inbox.models import Conversation, ConversationStatus, Message, SatisfactionRating
    from loket.inbox.services import outbound

    resolved_at = _parse(resolved_at_iso)
    with transaction.atomic():
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("channel")
            .filter(pk=conversation_id)
            .first()
        )
        if (
            conversation is None
            or resolved_at is None
            or conversation.status != ConversationStatus.RESOLVED
            or conversation.resolved_at != resolved_at
            or not applies_to(conversation.channel)
            or not setting_of(conversation.channel)["enabled"]
            or not conversation.channel.is_active
        ):
            return
        if SatisfactionRating.objects.filter(conversation_id=conversation_id).exists():
            return
        if Message.objects.filter(
            conversation_id=conversation_id,
            data__csat_survey__resolved_at=resolved_at_iso,
        ).exists():
            return
        with translation.override(language_of(conversation)):
            text, data = survey_content(conversation)
        data["csat_survey"]["resolved_at"] = resolved_at_iso
        try:
            outbound.reply(conversation, author=None, author_type="system", text=text, data=data)
        except ValueError as exc:  # e.g. the channel's reply window has closed
            log.info("no CSAT survey for conversation %s: %s", conversation_id, exc)


def latest_survey(conversation_id: int):
    from loket.inbox.models import Direction, Message

    return (
        Message.objects.filter(
            conversation_id=conversation_id,
            direction=Direction.OUTBOUND,
            author_type="system",
            data__has_key="csat_survey",
        )
        .order_by("-pk")
        .first()
    )


def answer_of(message, survey) -> int | None:
    """The score a customer's message gives in answer to ``survey``, or None."""
    from loket.inbox.services import choices

    data = message.data or {}
    choice = data.get("choice") if isinstance(data, dict) else None
    if isinstance(choice, dict) and str(choice.get("id") or "").startswith(CHOICE_PREFIX):
        score = str(choice["id"])[len(CHOICE_PREFIX) :]
        return int(score) if score in {"1", "2", "3", "4", "5"} else None
    if message.attachments.exists():
        return None
    items = (survey.data.get("csat_survey") or {}).get("items") or score_items()
    found = choices.match(message, items)
    if found is None:
        return None
    return int(str(found["id"])[len(CHOICE_PREFIX) :])


@job(priority=-5)
def take_survey_answer(conversation_id: int) -> None:
    """A customer's message reopened a conversation: if it answered the latest survey, store
    the rating and (when all they said since is the answer) resolve it again."""
    from loket.inbox.models import (
        Conversation,
        ConversationStatus,
        Direction,
        Message,
        MessageKind,
        SatisfactionRating,
    )
    from loket.inbox.services import satisfaction
    from loket.inbox.services.conversations import update_conversation

    with transaction.atomic():
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("channel")
            .filter(pk=conversation_id)
            .first()
        )
        if conversation is None or conversation.status != ConversationStatus.OPEN:
            return
        survey = latest_survey(conversation_id)
        if (
            survey is None
            or SatisfactionRating.objects.filter(conversation_id=conversation_id).exists()
        ):
            return
        since = list(
            Message.objects.filter(
                conversation_id=conversation_id,
                pk__gt=survey.pk,
                kind=MessageKind.MESSAGE,
            ).order_by("pk")
        )
        said = [m for m in since if m.direction == Direction.INBOUND]
        if not said or any(m.direction == Direction.OUTBOUND for m in since):
            return  # someone already answered the customer: the conversation goes on
        scores = [answer_of(m, survey) for m in said]
        if scores[0] is None:
            return
        only_answers = all(score is not None for score in scores)
        if only_answers:
            resolved_at = _parse((survey.data.get("csat_survey") or {}).get("resolved_at"))
            conversation = update_conversation(
                conversation, actor=None, status=ConversationStatus.RESOLVED,
                context={"via": "csat"},
            )  # fmt: skip
            if resolved_at is not None:  # its resolution time stays what it was
                Conversation.objects.filter(pk=conversation_id).update(resolved_at=resolved_at)
                conversation.resolved_at = resolved_at
        try:
            satisfaction.rate(
                conversation,
                scores[-1] if only_answers else scores[0],
                source=conversation.channel.kind,
                require_resolved=False,
            )
        except satisfaction.RatingRefused as exc:
            log.info("survey answer not taken for conversation %s: %s", conversation_id, exc)


# -- the enqueuer -------------------------------------------------------------------------------


def enqueue_jobs(event: events.Event) -> None:
    """Event enqueuer (settings.LOKET_EVENT_ENQUEUERS), inside the transaction that resolved
    the conversation: the survey job commits with the resolution. A customer's message that
    reopens a conversation enqueues the look at whether it answered a survey (no query here)."""
    if not isinstance(event, events.ConversationUpdated):
        return
    status = event.changes.get("status")
    if status == "open" and event.actor.type == "contact":
        take_survey_answer.enqueue(event.conversation_id)
        return
    if status != "resolved":
        return
    from loket.inbox.models import Conversation

    row = (
        Conversation.objects.filter(pk=event.conversation_id)
        .select_related("channel")
        .only("pk", "resolved_at", "channel__kind", "channel__settings")
        .first()
    )
    if row is None or row.resolved_at is None or not applies_to(row.channel):
        return
    setting = setting_of(row.channel)
    if not setting["enabled"]:
        return
    task = send_csat_survey
    if setting["delay_minutes"]:
        delay = dt.timedelta(minutes=setting["delay_minutes"])
        task = task.using(run_after=row.resolved_at + delay)
    task.enqueue(row.pk, row.resolved_at.isoformat())
