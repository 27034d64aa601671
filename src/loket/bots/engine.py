"""Running flows: starting a bot session, answering the customer's messages step by step, handing
off to a person, timeouts, and an agent taking over.

- A customer message in a workspace with enabled flows enqueues ``bot_turn`` in the ingest's own
  transaction (``enqueue_jobs``); the job locks the conversation's active session (or starts one
  when a flow's trigger matches), handles the message, and runs steps until one waits for the
  customer or the flow ends — one transaction, so a restart resumes where the last turn left
  off, and a message is handled once, in order (``last_message_id``).
- A step that calls out (an HTTP lookup, a file to send) never runs inside that transaction (on
  SQLite it would hold the one write lock for as long as the business's API takes): the turn
  stops before it (``fetching``), commits, and enqueues ``bot_fetch`` with it; that job calls
  out with no transaction open, then goes on in a new one where the turn stopped
  (``go_on_after_fetch``). A session left fetching by a worker that died is picked up again by
  ``run_timeouts``.
- Every bot message goes through the one outbound path (statuses, retries, reply windows);
  choices are rendered per channel by ``loket.inbox.services.choices``.
- A bot never answers an automatic message (``loket.automation.automatic.is_automatic``: an
  out-of-office, a bounce, a mailing, a WhatsApp system message): it starts no flow, and an
  active session does not take it as the customer's answer (it waits for the person).
- "agent" / "medewerker" (the flow's ``handoff_words``) reach a person from any step; an agent's
  reply stops the bot (``on_event``); a customer who goes quiet follows the flow's timeout path,
  or the session is dropped (``run_timeouts``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import regex
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from loket import events, http
from loket.automation import clock
from loket.automation.automatic import first_from_a_person, is_automatic
from loket.automation.canned import render_text
from loket.bots import definition as flow_definition
from loket.bots.models import BotSession, Flow, FlowTrigger, SessionState
from loket.inbox.models import (
    AuthorType,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    MessageKind,
)
from loket.inbox.services import choices as choice_service
from loket.inbox.services import outbound
from loket.inbox.services.conversations import ensure_labels, update_conversation
from loket.memo import PerWorkspace
from loket.tenancy.hours import Schedule
from loket.tenancy.models import Team

log = logging.getLogger(__name__)
MAX_STEPS_PER_TURN = 50  # a flow that loops without asking anything is handed off
DEFAULT_HANDOFF_WORDS = ("agent", "medewerker", "human", "mens", "person")
_VARIABLE = re.compile(r"\{\{\s*([a-z][a-z0-9_]{0,63})\s*\}\}")


# -- which workspaces have flows (kept briefly per process, like the rules) ---------------------
def _load_enabled_flows(workspace_id: int) -> tuple[Flow, ...]:
    flows = tuple(
        Flow.objects.filter(workspace_id=workspace_id, enabled=True, published__isnull=False)
        .select_related("published")
        .prefetch_related("channels")
        .order_by("pk")
    )
    for flow in flows:
        flow.channel_ids = {channel.pk for channel in flow.channels.all()}
    return flows


_enabled = PerWorkspace(_load_enabled_flows)


def enabled_flows(workspace_id: int) -> tuple[Flow, ...]:
    return _enabled.get(workspace_id)


def may_start_on_arrival(workspace_id: int, channel_id: int) -> bool:
    """Whether a flow may greet a new conversation on this channel (the auto-assigner then
    leaves it to the bot; a hand-off, or its periodic pass, assigns it)."""
    return any(
        flow.trigger in (FlowTrigger.NEW_CONVERSATION, FlowTrigger.OUTSIDE_HOURS)
        and (not flow.channel_ids or channel_id in flow.channel_ids)
        for flow in enabled_flows(workspace_id)
    )


def forget_flows(workspace_id: int) -> None:
    _enabled.forget(workspace_id)


def enqueue_jobs(event: events.Event) -> None:
    """Enqueuer (settings.LOKET_EVENT_ENQUEUERS): a customer's message in a workspace with
    flows gets a bot turn, stored with the message."""
    if (
        isinstance(event, events.MessageCreated)
        and event.direction == Direction.INBOUND
        and event.kind == MessageKind.MESSAGE
        and event.actor.type == AuthorType.CONTACT
        and enabled_flows(event.workspace_id)
    ):
        from loket.bots.tasks import bot_turn

        bot_turn.enqueue(event.message_id)


def on_event(event: events.Event) -> None:
    """Subscriber (settings.LOKET_EVENT_SUBSCRIBERS): an agent who replies in a conversation, or
    takes it, takes over from the bot."""
    if event.actor.type != AuthorType.MEMBER or not enabled_flows(event.workspace_id):
        return
    took_over = (
        isinstance(event, events.MessageCreated)
        and event.kind == MessageKind.MESSAGE
        and event.direction == Direction.OUTBOUND
    ) or (isinstance(event, events.ConversationUpdated) and event.changes.get("assignee_id"))
    if took_over:
        BotSession.objects.filter(
            workspace_id=event.workspace_id,
            conversation_id=event.conversation_id,
            state=SessionState.ACTIVE,
        ).update(state=SessionState.STOPPED, ended_at=timezone.now(), updated_at=timezone.now())


# -- a turn -----------------------------------------------------------------------------------
@dataclass
class Turn:
    session: BotSession
    conversation: Conversation
    flow: Flow
    definition: dict
    languages: list[str]
    answer: Message | None = None  # the customer's message this turn handles, until used
    sent: list[int] = field(default_factory=list)
    # What steps that call out got, by step id (fetched before this transaction began).
    fetched: dict[str, Any] = field(default_factory=dict)
    # Call out in place instead of stopping (the test panel, which keeps nothing anyway).
    call_out_in_place: bool = False

    @property
    def variables(self) -> dict[str, Any]:
        return self.session.variables


def _languages(conversation: Conversation, definition: dict) -> list[str]:
    return [
        conversation.language or "",
        getattr(conversation.contact, "locale", "") or "",
        definition.get("language") or "en",
    ]


def _fill(turn: Turn, text: Any) -> str:
    """A step's text in the customer's language with the flow's variables and the canned
    replies' names filled in."""
    raw = flow_definition.localized(text, turn.languages)

    def variable(match: re.Match) -> str:
        value = turn.variables.get(match.group(1))
        return match.group(0) if value is None else str(value)

    raw = _VARIABLE.sub(variable, raw)
    return render_text(raw, turn.conversation).text


def _shown_options(turn: Turn, options: list[dict]) -> list[dict]:
    """A choice's options as the customer sees them: titles in their language, filled in."""
    return [{"id": option["id"], "title": _fill(turn, option["title"])} for option in options]


def _say(turn: Turn, text: Any, *, options: list[dict] | None = None) -> None:
    body = _fill(turn, text)
    data: dict[str, Any] = {
        "bot": {"flow_id": turn.flow.pk, "flow_name": turn.flow.name, "step": turn.session.step}
    }
    if options:
        body, extra = choice_service.prepare(turn.conversation, body, _shown_options(turn, options))
        data.update(extra)
    if not body.strip():
        return
    try:
        message = outbound.reply(
            turn.conversation, author=None, author_type=AuthorType.BOT, text=body, data=data
        )
    except ValueError as exc:  # e.g. the channel's reply window has closed
        log.info("bot could not answer in conversation %s: %s", turn.conversation.pk, exc)
        return
    turn.sent.append(message.pk)


def _is_handoff_word(turn: Turn, message: Message) -> bool:
    """The customer asks for a person ("agent", "medewerker"): typed, not a tapped option
    (an option may well read "Talk to a person" and lead somewhere of its own)."""
    if (message.data or {}).get("choice"):
        return False
    words = turn.flow.handoff_words or DEFAULT_HANDOFF_WORDS
    tokens = re.findall(r"\w+", choice_service.fold(message.text))
    wanted = {choice_service.fold(word) for word in words}
    return bool(tokens) and len(tokens) <= 4 and any(token in wanted for token in tokens)


def _handoff_step(turn: Turn) -> dict:
    """Where a typed hand-off word leads: the flow's own hand-off step (its words, its team),
    the first in the editor's order; else a plain hand-off."""
    steps = turn.definition["steps"]
    order = turn.definition.get("order") or list(steps)
    for step_id in order:
        step = steps.get(step_id)
        if isinstance(step, dict) and step.get("type") == "handoff":
            return step
    return {"type": "handoff"}


# -- validating answers -----------------------------------------------------------------------
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE_FORMATS = ("%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%y", "%d/%m/%y")


def validated(step: dict, text: str) -> str | None:
    """The customer's answer as it is kept, or None when it does not pass the step's check."""
    text = (text or "").strip()
    if not text or len(text) > 1000:
        return None
    kind = step.get("validate", "text")
    if kind == "text":
        return text
    if kind == "number":
        candidate = text.replace(" ", "").replace(",", ".")
        try:
            float(candidate)
        except ValueError:
            return None
        return candidate
    if kind == "email":
        return text.lower() if _EMAIL.match(text) else None
    if kind == "phone":
        digits = re.sub(r"[\s().-]", "", text)
        if not re.fullmatch(r"\+?\d{6,15}", digits):
            return None
        return digits
    if kind == "date":
        for fmt in _DATE_FORMATS:
            try:
                return dt.datetime.strptime(text, fmt).date().isoformat()
            except ValueError:
                continue
        return None
    if kind == "regex":
        # As typed; then without inner spaces and in capitals ("ab 123456" for AB123456).
        for candidate in dict.fromkeys(
            (text, text.replace(" ", ""), text.replace(" ", "").upper())
        ):
            try:
                if regex.fullmatch(step["pattern"], candidate, timeout=0.05):
                    return candidate
            except TimeoutError:
                return None
        return None
    return None


# -- steps ------------------------------------------------------------------------------------
WAIT = object()  # the step asked and waits for the customer


def _ask(turn: Turn, step: dict) -> object:
    _say(turn, step["text"], options=step.get("options") if step["type"] == "choice" else None)
    return WAIT


def _handle_answer(turn: Turn, step: dict) -> str | object | None:
    """The customer answered a choice or input step: where to go next, or WAIT (asked again)."""
    message, turn.answer = turn.answer, None
    accepted: Any = None
    if step["type"] == "choice":
        item = choice_service.match(message, _shown_options(turn, step["options"]))
        if item is not None:
            option = next(o for o in step["options"] if o["id"] == item["id"])
            if step.get("save_as"):
                turn.variables[step["save_as"]] = option["id"]
                turn.variables[f"{step['save_as']}_title"] = _fill(turn, option["title"])
            return option.get("next")
    elif step["type"] == "faq":
        return _answer_faq(turn, step, message.text)
    else:
        accepted = validated(step, message.text)
        if accepted is not None:
            turn.variables[step["save_as"]] = accepted
            return step.get("next")
    turn.session.attempts += 1
    if turn.session.attempts >= step.get("max_attempts", 3):
        turn.session.attempts = 0
        return step.get("fail", "__handoff__")
    _say(turn, step.get("retry_text") or step["text"], options=step.get("options"))
    return WAIT


@dataclass
class MediaAnswer:
    """A message step's file, or why it could not be had."""

    upload: outbound.OutgoingFile | None
    error: str = ""


def _fetch_media(turn: Turn, media: dict) -> MediaAnswer:
    """The step's file, fetched through the guarded client within the attachment size limit
    (no database writes: it runs outside the turn's transaction)."""
    from loket.inbox.services import media as media_service

    url = _VARIABLE.sub(
        lambda m: quote(str(turn.variables.get(m.group(1), "")), safe=""), media["url"]
    )
    limit = media_service.max_attachment_bytes(turn.conversation.workspace_id)
    try:
        with (
            http.client(follow_redirects=True, timeout=10.0) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            content = media_service.read_limited(response, limit)
            content_type = response.headers.get("content-type", "").split(";")[0].strip()
    except (httpx.HTTPError, ValueError) as exc:
        log.info("bot media %s not sent in conversation %s: %s", url, turn.conversation.pk, exc)
        return MediaAnswer(None, str(exc)[:200] or type(exc).__name__)
    filename = media.get("filename") or url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
    upload = outbound.OutgoingFile(
        filename=media_service.safe_filename(filename, default="file"),
        content_type=content_type or "application/octet-stream",
        content=content,
    )
    return MediaAnswer(upload)


def _step_message(turn: Turn, step: dict):
    media = step.get("media")
    if not media:
        _say(turn, step.get("text"))
        return step.get("next")
    from loket.inbox import ports

    text = _fill(turn, step.get("text"))
    carries_files = ports.connector_for(turn.conversation.channel.kind).capabilities.media
    upload = None
    if carries_files:
        step_id = turn.session.step
        got = turn.fetched.pop(step_id) if step_id in turn.fetched else _fetch_media(turn, media)
        upload = got.upload
        if got.error:
            turn.variables["media_error"] = got.error
    if upload is None:  # no files on this channel (or none to be had): the link instead
        _say(turn, f"{text}\n{media['url']}".strip())
        return step.get("next")
    try:
        message = outbound.reply(
            turn.conversation,
            author=None,
            author_type=AuthorType.BOT,
            text=text,
            attachments=[upload],
            data={
                "bot": {
                    "flow_id": turn.flow.pk,
                    "flow_name": turn.flow.name,
                    "step": turn.session.step,
                }
            },
        )
        turn.sent.append(message.pk)
    except ValueError as exc:
        log.info("bot could not send media in conversation %s: %s", turn.conversation.pk, exc)
        _say(turn, f"{text}\n{media['url']}".strip())
    return step.get("next")


def _step_condition(turn: Turn, step: dict):
    from loket.automation.rules import conditions as rule_conditions
    from loket.automation.rules.facts import Facts

    facts = Facts(turn.conversation, message=turn.answer, now=clock.now())
    facts.variables = turn.variables
    for branch in step["branches"]:
        if rule_conditions.evaluate(branch["if"], facts).matched:
            return branch.get("next")
    return step.get("else")


def _step_set(turn: Turn, step: dict):
    conversation = turn.conversation
    contact_values = {k: _fill(turn, v) for k, v in (step.get("contact") or {}).items()}
    if contact_values:
        from loket.inbox.services.contacts import update_contact

        contact = conversation.contact
        update_contact(
            contact, actor=None, attributes={**(contact.attributes or {}), **contact_values}
        )
    custom = {k: _fill(turn, v) for k, v in (step.get("conversation") or {}).items()}
    if custom:
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        locked.custom_attributes = {**(locked.custom_attributes or {}), **custom}
        locked.save(update_fields=["custom_attributes", "updated_at"])
        conversation.custom_attributes = locked.custom_attributes
    changes: dict[str, Any] = {}
    if step.get("labels"):
        current = list(conversation.labels.all())
        added = ensure_labels(conversation.workspace_id, step["labels"])
        changes["labels"] = list({label.pk: label for label in [*current, *added]}.values())
    if "priority" in step:
        changes["priority"] = step["priority"]
    if changes:
        turn.conversation = update_conversation(
            conversation, actor=None, context=_context(turn), **changes
        )
    return step.get("next")


def _json_path(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            raise KeyError(path)
    return data


def _rendered_json(turn: Turn, value: Any) -> Any:
    if isinstance(value, str):
        return _fill(turn, value)
    if isinstance(value, list):
        return [_rendered_json(turn, v) for v in value]
    if isinstance(value, dict):
        return {k: _rendered_json(turn, v) for k, v in value.items()}
    return value


@dataclass
class LookupAnswer:
    """What an HTTP lookup got: the variables to set from the answer, or why it failed."""

    status: int | None
    variables: dict[str, Any]
    error: str = ""


def _lookup(turn: Turn, step: dict) -> LookupAnswer:
    """Call the business's API for an ``http`` step (no database work: it runs outside the
    turn's transaction)."""

    def encoded(match: re.Match) -> str:
        value = turn.variables.get(match.group(1))
        return match.group(0) if value is None else quote(str(value), safe="")

    url = _VARIABLE.sub(encoded, step["url"])
    headers = {k: _fill(turn, v) for k, v in (step.get("headers") or {}).items()}
    method = step.get("method", "GET")
    status = None
    try:
        with http.client(timeout=float(step.get("timeout", 5))) as client:
            if method == "POST":
                response = client.post(
                    url, json=_rendered_json(turn, step.get("body") or {}), headers=headers
                )
            else:
                response = client.get(url, headers=headers)
        status = response.status_code
        if not 200 <= response.status_code < 300:
            raise ValueError(f"HTTP {response.status_code}")
        answer = response.json()
        found = {}
        for variable, path in (step.get("map") or {}).items():
            value = _json_path(answer, path)
            found[variable] = (
                value if isinstance(value, str | int | float | bool) else json.dumps(value)
            )
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        log.info("bot lookup %s failed in conversation %s: %s", url, turn.conversation.pk, exc)
        return LookupAnswer(status, {}, str(exc)[:200] or type(exc).__name__)
    return LookupAnswer(status, found)


def _step_http(turn: Turn, step: dict):
    step_id = turn.session.step
    answer = turn.fetched.pop(step_id) if step_id in turn.fetched else _lookup(turn, step)
    if answer.status is not None:
        turn.variables["http_status"] = answer.status
    if answer.error:
        turn.variables["http_error"] = answer.error
        return step.get("fail", "__handoff__")
    turn.variables.update(answer.variables)
    return step.get("next")


def _calls_out(turn: Turn, step: dict) -> bool:
    """Whether running ``step`` means waiting on another server."""
    if step["type"] == "http":
        return True
    if step["type"] == "message" and step.get("media"):
        from loket.inbox import ports

        return ports.connector_for(turn.conversation.channel.kind).capabilities.media
    return False


def _call_out(turn: Turn, step: dict) -> Any:
    """What the step waits on, fetched with no transaction open (see the module's docstring)."""
    if step["type"] == "http":
        return _lookup(turn, step)
    return _fetch_media(turn, step["media"])


def _faq_score(item: dict, text: str, languages: list[str]) -> float:
    folded = choice_service.fold(text)
    words = set(re.findall(r"\w+", folded))
    best = 0.0
    for keyword in item.get("keywords") or []:
        keyword = choice_service.fold(keyword)
        if keyword and (keyword in words or (" " in keyword and keyword in folded)):
            best = max(best, 1.0)
    question = choice_service.fold(flow_definition.localized(item.get("question"), languages))
    if question:
        import difflib

        best = max(best, difflib.SequenceMatcher(None, folded, question).ratio())
    return best


def _answer_faq(turn: Turn, step: dict, text: str):
    """The knowledge base first (a hook the knowledge issue fills), then the step's own list."""
    hook = getattr(settings, "LOKET_BOT_KNOWLEDGE_ANSWERER", "")
    if hook:
        from django.utils.module_loading import import_string

        found = import_string(hook)(turn.conversation, text, turn.languages)
        if found:
            _say(turn, found)
            return step.get("next")
    scored = [(_faq_score(item, text, turn.languages), item) for item in step["items"]]
    score, best = max(scored, key=lambda pair: pair[0])
    if score >= 0.6:
        _say(turn, best["answer"])
        return step.get("next")
    return step.get("miss", "__handoff__")


def _step_faq(turn: Turn, step: dict):
    if step.get("text"):
        _say(turn, step["text"])
        return WAIT
    answer, turn.answer = turn.answer, None
    return _answer_faq(turn, step, answer.text if answer else "")


def _context(turn: Turn) -> dict:
    return {"via": "bot", "flow_id": turn.flow.pk, "flow_name": turn.flow.name}


def _summary(turn: Turn) -> str:
    lines = [f"Bot “{turn.flow.name}” handed this conversation over."]
    collected = {k: v for k, v in turn.variables.items() if not k.startswith("http_")}
    if collected:
        lines.append("Collected:")
        lines += [f"- {key}: {value}" for key, value in collected.items()]
    if turn.variables.get("http_error"):
        lines.append(f"Lookup failed: {turn.variables['http_error']}")
    lines.append("Steps: " + " → ".join(turn.session.path[-20:]))
    return "\n".join(lines)


def handoff(turn: Turn, step: dict) -> None:
    if step.get("text"):
        _say(turn, step["text"])
    if step.get("note", True):
        outbound.reply(
            turn.conversation,
            author=None,
            author_type=AuthorType.BOT,
            text=_summary(turn),
            kind=MessageKind.NOTE,
            data={"bot": {"flow_id": turn.flow.pk, "flow_name": turn.flow.name, "handoff": True}},
        )
    team = None
    if step.get("team_id"):
        team = Team.objects.filter(
            workspace_id=turn.conversation.workspace_id, pk=step["team_id"]
        ).first()
    if team is not None and team.pk != turn.conversation.team_id:
        turn.conversation = update_conversation(
            turn.conversation, actor=None, team=team, context=_context(turn)
        )
    turn.session.state = SessionState.HANDED_OFF
    pk = turn.conversation.pk

    def assign() -> None:
        from loket.automation.assignment import auto_assign

        auto_assign(pk)

    transaction.on_commit(assign)


def _step_close(turn: Turn, step: dict):
    if step.get("text"):
        _say(turn, step["text"])
    turn.conversation = update_conversation(
        turn.conversation, actor=None, status=ConversationStatus.RESOLVED, context=_context(turn)
    )
    turn.session.state = SessionState.COMPLETED
    return None


STEPS = {
    "message": _step_message,
    "choice": _ask,
    "input": _ask,
    "condition": _step_condition,
    "set": _step_set,
    "http": _step_http,
    "faq": _step_faq,
}


def _advance(turn: Turn) -> None:
    """Run steps from where the session is until one waits for the customer or the flow ends."""
    session, steps = turn.session, turn.definition["steps"]
    for _ in range(MAX_STEPS_PER_TURN):
        if session.state != SessionState.ACTIVE:
            return
        step_id = session.step
        step = steps.get(step_id) if step_id != "__handoff__" else {"type": "handoff"}
        if step is None:  # the end of the flow
            session.state = SessionState.COMPLETED
            return
        if session.waiting:
            if turn.answer is None:
                return
            session.waiting = False
            target = _handle_answer(turn, step)
        elif step["type"] == "handoff":
            handoff(turn, step)
            return
        elif step["type"] == "close":
            _step_close(turn, step)
            return
        elif not turn.call_out_in_place and step_id not in turn.fetched and _calls_out(turn, step):
            session.fetching = True  # bot_fetch goes on from here, outside this transaction
            return
        else:
            target = STEPS[step["type"]](turn, step)
        if target is WAIT:
            session.waiting = True
            return
        session.attempts = 0
        if target is None:
            session.state = SessionState.COMPLETED
            return
        session.step = target
        session.path.append(target)
    log.warning(
        "flow %s looped in conversation %s; handing off", turn.flow.pk, turn.conversation.pk
    )
    handoff(turn, {"type": "handoff"})


# How long a session may be fetching before run_timeouts goes on in the job's place (more than
# the longest lookup a step may take).
FETCH_GRACE = dt.timedelta(minutes=2)


def _timeout_at(definition: dict, now: dt.datetime) -> dt.datetime:
    minutes = (definition.get("timeout") or {}).get("minutes") or settings.LOKET_BOT_IDLE_MINUTES
    return now + dt.timedelta(minutes=minutes)


def _finish(turn: Turn, now: dt.datetime) -> None:
    session = turn.session
    session.updated_at = now
    if session.state != SessionState.ACTIVE:
        session.ended_at = now
        session.timeout_at = None
        session.fetching = False
    elif session.fetching:
        # The job goes on from here; should its worker die, run_timeouts does after this.
        session.timeout_at = now + FETCH_GRACE
    else:
        session.timeout_at = _timeout_at(turn.definition, now) if session.waiting else None
    session.save()
    if session.state == SessionState.ACTIVE and session.fetching:
        from loket.bots.tasks import bot_fetch

        bot_fetch.enqueue(session.pk, len(session.path))


def _new_session(conversation: Conversation, flow: Flow) -> BotSession:
    start = flow.published.definition["start"]
    session = BotSession.objects.create(
        workspace_id=conversation.workspace_id,
        conversation=conversation,
        flow=flow,
        version=flow.published,
        step=start,
        path=[start],
    )
    if (
        conversation.assignee_id is not None
        and not Message.objects.filter(
            conversation=conversation, author_type=AuthorType.MEMBER, kind=MessageKind.MESSAGE
        ).exists()
    ):
        # Auto-assigned the moment it arrived: the bot talks first; a hand-off assigns again.
        update_conversation(
            conversation,
            actor=None,
            assignee=None,
            context={"via": "bot", "flow_id": flow.pk, "flow_name": flow.name},
        )
    return session


def _flow_to_start(conversation: Conversation, message: Message) -> Flow | None:
    flows = enabled_flows(conversation.workspace_id)
    if not flows:
        return None
    first = first_from_a_person(message)  # out-of-office mail before it does not count
    human = Message.objects.filter(
        conversation=conversation, author_type=AuthorType.MEMBER, kind=MessageKind.MESSAGE
    ).exists()
    if human:
        return None  # a person is already talking with this customer
    if BotSession.objects.filter(conversation=conversation, state=SessionState.STOPPED).exists():
        return None  # an agent took over from a bot here: no bot starts again by itself
    text = choice_service.fold(message.text)
    for flow in flows:
        if flow.channel_ids and conversation.channel_id not in flow.channel_ids:
            continue
        if flow.trigger == FlowTrigger.NEW_CONVERSATION and first:
            return flow
        if flow.trigger == FlowTrigger.OUTSIDE_HOURS and first:
            schedule = Schedule.of(conversation.workspace, conversation.channel)
            if not schedule.is_open(message.created_at):
                return flow
        if flow.trigger == FlowTrigger.KEYWORD and any(
            re.search(rf"(?<!\w){re.escape(choice_service.fold(k))}(?!\w)", text)
            for k in flow.keywords or []
        ):
            return flow
    return None


def turn(message_id: int) -> BotSession | None:
    """Handle one customer message (the ``bot_turn`` job)."""
    message = (
        Message.objects.select_related(
            "conversation__contact", "conversation__workspace", "conversation__channel"
        )
        .filter(pk=message_id, direction=Direction.INBOUND, kind=MessageKind.MESSAGE)
        .first()
    )
    if message is None or (message.data or {}).get("blocked"):
        return None
    if is_automatic(message):
        # Machine mail starts no flow and answers no question; the turn for the customer's next
        # message passes over it.
        return None
    conversation = message.conversation
    now = clock.now()
    with transaction.atomic():
        session = (
            BotSession.objects.select_for_update()
            .select_related("flow", "version")
            .filter(conversation=conversation, state=SessionState.ACTIVE)
            .first()
        )
        if session is None:
            flow = _flow_to_start(conversation, message)
            if flow is None:
                return None
            try:
                with transaction.atomic():
                    session = _new_session(conversation, flow)
            except IntegrityError:  # another turn started one just now: handle it there
                return None
            current = Turn(
                session,
                conversation,
                flow,
                session.version.definition,
                _languages(conversation, session.version.definition),
            )
            current.answer = None  # the message that started the flow is not an answer
        else:
            if session.last_message_id is not None and message.pk <= session.last_message_id:
                return session  # handled already (a retried job, or with an earlier one)
            # Every customer message since the last one handled, in order, up to this one: two
            # quick messages may have their jobs run the other way round.
            pending = Message.objects.filter(
                conversation=conversation,
                direction=Direction.INBOUND,
                kind=MessageKind.MESSAGE,
                author_type=AuthorType.CONTACT,
                pk__gt=session.last_message_id or 0,
                pk__lte=message.pk,
            ).order_by("pk")
            current = Turn(
                session,
                conversation,
                session.flow,
                session.version.definition,
                _languages(conversation, session.version.definition),
            )
            for answer in pending:
                if session.state != SessionState.ACTIVE:
                    break
                if not is_automatic(answer):  # an out-of-office is no answer
                    current.answer = answer
                    if _is_handoff_word(current, answer):
                        handoff(current, _handoff_step(current))
                    elif not session.fetching:  # else it was said before the bot's next question
                        _advance(current)
                session.last_message_id = answer.pk
            session.last_message_id = message.pk
            _finish(current, now)
            return session
        _advance(current)
        session.last_message_id = message.pk
        _finish(current, now)
    return session


def start(conversation: Conversation, flow: Flow) -> BotSession | None:
    """Start ``flow`` in a conversation now (a rule's or macro's action); None when a bot is
    already talking there or the flow is not published."""
    if flow.published_id is None or flow.workspace_id != conversation.workspace_id:
        return None
    now = clock.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                session = _new_session(conversation, flow)
        except IntegrityError:
            return None
        # What the customer said before the start is not an answer to the bot's first question
        # (the rule that started it may have reacted to that very message).
        session.last_message_id = (
            Message.objects.filter(
                conversation=conversation, direction=Direction.INBOUND, kind=MessageKind.MESSAGE
            )
            .order_by("-pk")
            .values_list("pk", flat=True)
            .first()
        )
        current = Turn(
            session,
            conversation,
            flow,
            session.version.definition,
            _languages(conversation, session.version.definition),
        )
        _advance(current)
        _finish(current, now)
    return session


def go_on_after_fetch(session_id: int, at: int | None = None) -> BotSession | None:
    """The ``bot_fetch`` job: call out for the step the session stopped before (no transaction
    open), then go on from there in a new one. ``at``: the length of the session's path when it
    stopped; a session that has moved on since (or was handed off) is left alone."""
    session = (
        BotSession.objects.select_related(
            "flow",
            "version",
            "conversation__contact",
            "conversation__workspace",
            "conversation__channel",
        )
        .filter(pk=session_id, state=SessionState.ACTIVE, fetching=True)
        .first()
    )
    if session is None or (at is not None and len(session.path) != at):
        return None
    at, step_id, definition = len(session.path), session.step, session.version.definition
    step = definition["steps"].get(step_id)
    languages = _languages(session.conversation, definition)
    current = Turn(session, session.conversation, session.flow, definition, languages)
    got = _call_out(current, step) if step is not None else None
    now = clock.now()
    with transaction.atomic():
        locked = (
            BotSession.objects.select_for_update()
            .filter(pk=session_id, state=SessionState.ACTIVE, fetching=True)
            .first()
        )
        if locked is None or len(locked.path) != at or locked.step != step_id:
            return None
        locked.fetching = False
        current = Turn(
            locked,
            session.conversation,
            session.flow,
            definition,
            languages,
            fetched={step_id: got} if step is not None else {},
        )
        _advance(current)
        _finish(current, now)
    return locked


def run_timeouts(limit: int = 200) -> int:
    """Sessions whose customer went quiet: follow the flow's timeout path, or drop them. A
    session still fetching long after it stopped (its job's worker died) goes on instead."""
    now = clock.now()
    due = list(
        BotSession.objects.filter(state=SessionState.ACTIVE, timeout_at__lte=now)
        .order_by("timeout_at")
        .values_list("pk", "fetching")[:limit]
    )
    handled = 0
    for pk, fetching in due:
        if fetching:
            handled += go_on_after_fetch(pk) is not None
            continue
        with transaction.atomic():
            session = (
                BotSession.objects.select_for_update(skip_locked=True)
                .select_related(
                    "flow",
                    "version",
                    "conversation__contact",
                    "conversation__workspace",
                    "conversation__channel",
                )
                .filter(pk=pk, state=SessionState.ACTIVE, fetching=False, timeout_at__lte=now)
                .first()
            )
            if session is None:
                continue
            definition = session.version.definition
            current = Turn(
                session,
                session.conversation,
                session.flow,
                definition,
                _languages(session.conversation, definition),
            )
            target = (definition.get("timeout") or {}).get("next")
            if target and session.path.count(target) < 3:
                session.step, session.waiting, session.attempts = target, False, 0
                session.path.append(target)
                _advance(current)
            else:
                session.state = SessionState.DROPPED
            _finish(current, now)
            handled += 1
    return handled


# -- trying a draft ---------------------------------------------------------------------------
class _Rollback(Exception):
    pass


SIMULATED_STATE_KEYS = ("step", "waiting", "attempts", "variables", "path")
MAX_SIMULATED_CALLS = 5  # calls out in one turn of the test panel before it calls in place


def simulate(
    workspace,
    draft: dict,
    *,
    state: dict | None = None,
    text: str | None = None,
    choice_id: str | None = None,
    language: str = "",
    contact_name: str = "Test customer",
) -> dict[str, Any]:
    """One turn of a draft flow for the editor's test panel, leaving no trace: a throw-away
    channel, contact, conversation and flow are made, the turn runs as it would (HTTP lookups
    included), and everything is rolled back. ``state``: what the previous call returned (None:
    start the flow); ``text`` / ``choice_id``: the tester's message. Returns ``{"replies":
    [{"text", "choices", "note"}], "state", "done"}``: ``done`` is how the session ended
    (completed, handed_off, ...), or "" while it still talks. An invalid draft raises
    definition.InvalidFlow."""
    import copy
    import secrets

    from loket.bots.models import FlowVersion
    from loket.inbox.models import Channel, Contact

    definition, _warnings = flow_definition.clean(copy.deepcopy(draft), workspace.pk)
    outcome: dict[str, Any] = {}
    # A step that calls out does so outside the transaction, as in a real turn: the attempt is
    # rolled back, the call made, and the turn run again with what it got.
    fetched: dict[str, Any] = {}
    for attempt in range(MAX_SIMULATED_CALLS + 1):
        calling: tuple[Turn, dict] | None = None
        try:
            with transaction.atomic():
                channel = Channel.objects.create(workspace=workspace, kind="api", name="Flow test")
                contact = Contact.objects.create(
                    workspace=workspace, name=contact_name, locale=language[:10]
                )
                conversation = Conversation.objects.create(
                    workspace=workspace,
                    channel=channel,
                    contact=contact,
                    number=2**62 + secrets.randbelow(2**60),  # never seen: rolled back
                    language=language[:10],
                )
                flow = Flow.objects.create(workspace=workspace, name="Test", draft=definition)
                version = FlowVersion.objects.create(
                    workspace=workspace, flow=flow, number=1, definition=definition
                )
                flow.published = version
                session = BotSession.objects.create(
                    workspace=workspace,
                    conversation=conversation,
                    flow=flow,
                    version=version,
                    step=definition["start"],
                    path=[definition["start"]],
                )
                if state:
                    for key in SIMULATED_STATE_KEYS:
                        if key in state:
                            setattr(session, key, copy.deepcopy(state[key]))
                current = Turn(
                    session,
                    conversation,
                    flow,
                    definition,
                    _languages(conversation, definition),
                    fetched=dict(fetched),
                    call_out_in_place=attempt == MAX_SIMULATED_CALLS,
                )
                if state and (text or choice_id):
                    data = (
                        {"choice": {"id": choice_id, "title": text or choice_id}}
                        if choice_id
                        else {}
                    )
                    current.answer = Message.objects.create(
                        workspace=workspace,
                        conversation=conversation,
                        channel=channel,
                        direction=Direction.INBOUND,
                        kind=MessageKind.MESSAGE,
                        author_type=AuthorType.CONTACT,
                        author_contact=contact,
                        text=text or "",
                        data=data,
                    )
                    if _is_handoff_word(current, current.answer):
                        handoff(current, _handoff_step(current))
                if session.state == SessionState.ACTIVE:
                    _advance(current)
                if session.fetching:
                    calling = (current, definition["steps"][session.step])
                    raise _Rollback
                said = Message.objects.filter(
                    conversation=conversation, author_type=AuthorType.BOT
                ).order_by("pk")
                outcome = {
                    "replies": [
                        {
                            "text": message.text,
                            "note": message.kind == MessageKind.NOTE,
                            "choices": [
                                {"id": item["id"], "title": item["title"]}
                                for item in ((message.data or {}).get("choices") or {}).get(
                                    "items", []
                                )
                            ],
                        }
                        for message in said
                    ],
                    "state": {key: getattr(session, key) for key in SIMULATED_STATE_KEYS},
                    "done": "" if session.state == SessionState.ACTIVE else session.state,
                }
                raise _Rollback
        except _Rollback:
            pass
        if calling is None:
            break
        called, step = calling
        fetched[called.session.step] = _call_out(called, step)
    return outcome
