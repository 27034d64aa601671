"""What a rule (or a macro) can do to a conversation: an allow-list of action types, each with
its parameters checked when saved and carried out through the same services agents use, so
every change leaves its activity line and event. An action is ``{"type": ..., ...params}``.

Actions that speak to the customer (``ANSWERS``: a canned reply, a bot flow) are skipped, and
recorded as skipped with the reason, when a rule would answer an automatic message
(``loket.automation.automatic``): an out-of-office or a bounce never gets a rule's reply. The
rule's other actions (labels, assignment, notes) still run.

Changes are made as the rule (``context={"via": "rule", ...}``): the timeline says which rule
did it and the events name the rule as their actor, so a rule is never triggered by itself.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from loket import crypto
from loket.automation import clock
from loket.automation.canned import render_text
from loket.automation.models import CannedReply
from loket.events import Actor
from loket.inbox.models import AuthorType, Conversation, ConversationStatus, MessageKind, Priority
from loket.inbox.services import notifications, outbound
from loket.inbox.services.conversations import ensure_labels, update_conversation
from loket.problems import Invalid, Said
from loket.tenancy.models import Membership, Team

MAX_ACTIONS = 20
MAX_TEXT = 5000
MAX_SNOOZE_MINUTES = 60 * 24 * 365
SETTABLE_STATUSES = (
    ConversationStatus.OPEN,
    ConversationStatus.PENDING,
    ConversationStatus.RESOLVED,
    ConversationStatus.CLOSED,
)


class InvalidAction(Invalid):
    """An action that cannot be saved; the problem says which and why."""


class Skipped(Exception):
    """An action with nothing to do any more (its team was deleted, say); the reason is logged
    as a message id with its values (``gettext_noop``), read in the reader's language."""

    def __init__(self, message: str, **values: Any) -> None:
        self.said = Said(message, **values)
        super().__init__(message % values if values else message)


@dataclass
class Doer:
    """Who acts and on what: a rule (``rule_id``) or an agent running a macro (``member``)."""

    conversation: Conversation
    rule_id: int | None = None
    rule_name: str = ""
    member: Membership | None = None
    # Why the message a rule would answer was sent by a machine ("" if a person sent it): the
    # actions in ANSWERS are then skipped.
    automatic: str = ""
    # Work to do after the transaction commits (the auto-assigner takes its own locks).
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    @property
    def context(self) -> dict:
        if self.rule_id is None:
            return {}
        return {"via": "rule", "rule_id": self.rule_id, "rule_name": self.rule_name}

    @property
    def event_actor(self) -> Actor | None:
        return Actor("rule", self.rule_id) if self.rule_id is not None else None

    def update(self, **changes) -> None:
        self.conversation = update_conversation(
            self.conversation, actor=self.member, context=self.context, **changes
        )


# -- parameter checks ---------------------------------------------------------------------------
def _member_id(params: dict, workspace_id: int) -> dict:
    value = params.get("member_id")
    if not Membership.objects.filter(workspace_id=workspace_id, pk=_int(value)).exists():
        raise InvalidAction(_("no member “%(value)s” in this workspace"), value=value)
    return {"member_id": int(value)}


def _team_id(params: dict, workspace_id: int) -> dict:
    value = params.get("team_id")
    if not Team.objects.filter(workspace_id=workspace_id, pk=_int(value)).exists():
        raise InvalidAction(_("no team “%(value)s” in this workspace"), value=value)
    return {"team_id": int(value)}


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return -1
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _nothing(params: dict, workspace_id: int) -> dict:
    return {}


def _labels(params: dict, workspace_id: int) -> dict:
    names = params.get("labels")
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not names:
        raise InvalidAction(_("name at least one label"))
    cleaned = []
    for name in names:
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > 64:
            raise InvalidAction(_("a label name is 1 to 64 characters"))
        cleaned.append(name.strip())
    return {"labels": list(dict.fromkeys(cleaned))}


def _priority(params: dict, workspace_id: int) -> dict:
    value = params.get("priority")
    if isinstance(value, bool) or value not in Priority.values:
        raise InvalidAction(
            _("unknown priority “%(value)s”; one of %(choices)s"),
            value=value,
            choices=", ".join(str(p) for p in Priority.values),
        )
    return {"priority": value}


def _status(params: dict, workspace_id: int) -> dict:
    value = params.get("status")
    if value not in SETTABLE_STATUSES:
        raise InvalidAction(
            _("unknown status “%(value)s”; one of %(choices)s (to snooze: “snooze”)"),
            value=value,
            choices=", ".join(SETTABLE_STATUSES),
        )
    return {"status": value}


def _minutes(params: dict, workspace_id: int) -> dict:
    value = params.get("minutes")
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_SNOOZE_MINUTES
    ):
        raise InvalidAction(_("snooze for a whole number of minutes, at least 1"))
    return {"minutes": value}


def _canned_reply(params: dict, workspace_id: int) -> dict:
    value = params.get("canned_reply_id")
    if not CannedReply.objects.filter(
        workspace_id=workspace_id, owner__isnull=True, pk=_int(value)
    ).exists():
        raise InvalidAction(_("no shared canned reply “%(value)s” in this workspace"), value=value)
    return {"canned_reply_id": int(value)}


def _sla_policy(params: dict, workspace_id: int) -> dict:
    from loket.automation.models import SlaPolicy

    value = params.get("policy_id")
    if not SlaPolicy.objects.filter(workspace_id=workspace_id, pk=_int(value)).exists():
        raise InvalidAction(_("no SLA policy “%(value)s” in this workspace"), value=value)
    return {"policy_id": int(value)}


def _flow(params: dict, workspace_id: int) -> dict:
    from loket.bots.models import Flow

    value = params.get("flow_id")
    if not Flow.objects.filter(workspace_id=workspace_id, pk=_int(value)).exists():
        raise InvalidAction(_("no bot flow “%(value)s” in this workspace"), value=value)
    return {"flow_id": int(value)}


def _text(params: dict, workspace_id: int) -> dict:
    text = params.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidAction(_("write the text"))
    if len(text) > MAX_TEXT:
        raise InvalidAction(_("the text is longer than %(max)s characters"), max=MAX_TEXT)
    return {"text": text.strip()}


def _notify(params: dict, workspace_id: int) -> dict:
    recipients = params.get("recipients")
    if not isinstance(recipients, list) or not recipients:
        raise InvalidAction(_("choose who to notify: the assignee or members"))
    members = {
        pk
        for pk in Membership.objects.filter(
            workspace_id=workspace_id, pk__in=[_int(r) for r in recipients if r != "assignee"]
        ).values_list("pk", flat=True)
    }
    cleaned: list = []
    for recipient in recipients:
        if recipient == "assignee":
            cleaned.append("assignee")
        elif _int(recipient) in members:
            cleaned.append(int(recipient))
        else:
            raise InvalidAction(_("no member “%(value)s” in this workspace"), value=recipient)
    text = params.get("text") or ""
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise InvalidAction(_("the text is longer than %(max)s characters"), max=MAX_TEXT)
    return {"recipients": list(dict.fromkeys(cleaned)), "text": text.strip()}


def _webhook(params: dict, workspace_id: int) -> dict:
    url = params.get("url")
    if not isinstance(url, str) or len(url) > 2000:
        raise InvalidAction(_("give the URL of the webhook"))
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidAction(_("the webhook URL must start with https:// (or http://)"))
    if parts.username or parts.password:
        raise InvalidAction(_("put no user name or password in the webhook URL"))
    return {"url": url.strip()}


# -- carrying out ---------------------------------------------------------------------------------
def _do_assign_agent(doer: Doer, params: dict) -> str:
    member = (
        Membership.objects.select_related("user")
        .filter(workspace_id=doer.conversation.workspace_id, pk=params["member_id"])
        .first()
    )
    if member is None:
        raise Skipped(gettext_noop("that member has left the workspace"))
    doer.update(assignee=member)
    return member.display_name


def _do_assign_team(doer: Doer, params: dict) -> str:
    team = Team.objects.filter(
        workspace_id=doer.conversation.workspace_id, pk=params["team_id"]
    ).first()
    if team is None:
        raise Skipped(gettext_noop("that team was deleted"))
    doer.update(team=team)
    return team.name


def _do_auto_assign(doer: Doer, params: dict) -> str:
    from loket.automation.assignment import auto_assign

    if doer.conversation.assignee_id is not None:
        doer.update(assignee=None)
    pk = doer.conversation.pk
    doer.after_commit.append(lambda: auto_assign(pk))
    return ""


def _do_unassign(doer: Doer, params: dict) -> str:
    doer.update(assignee=None)
    return ""


def _current_labels(doer: Doer) -> list:
    return list(doer.conversation.labels.all())


def _do_add_labels(doer: Doer, params: dict) -> str:
    current = _current_labels(doer)
    added = ensure_labels(doer.conversation.workspace_id, params["labels"])
    doer.update(labels=list({label.pk: label for label in [*current, *added]}.values()))
    return ", ".join(params["labels"])


def _do_remove_labels(doer: Doer, params: dict) -> str:
    unwanted = {name.casefold() for name in params["labels"]}
    kept = [label for label in _current_labels(doer) if label.name.casefold() not in unwanted]
    doer.update(labels=kept)
    return ", ".join(params["labels"])


def _do_set_priority(doer: Doer, params: dict) -> str:
    doer.update(priority=params["priority"])
    return str(Priority(params["priority"]).label)


def _do_set_status(doer: Doer, params: dict) -> str:
    doer.update(status=params["status"])
    return str(ConversationStatus(params["status"]).label)


def _do_snooze(doer: Doer, params: dict) -> str:
    until = clock.now() + dt.timedelta(minutes=params["minutes"])
    doer.update(status=ConversationStatus.SNOOZED, snoozed_until=until)
    return until.isoformat(timespec="minutes")


def _post(doer: Doer, text: str, kind: str) -> Any:
    return outbound.reply(
        doer.conversation,
        author=doer.member,
        text=text,
        kind=kind,
        author_type=AuthorType.MEMBER if doer.member else AuthorType.SYSTEM,
        data={"rule_id": doer.rule_id, "rule_name": doer.rule_name}
        if doer.rule_id is not None
        else None,
        event_actor=doer.event_actor,
    )


def _do_send_canned_reply(doer: Doer, params: dict) -> str:
    reply = CannedReply.objects.filter(
        workspace_id=doer.conversation.workspace_id,
        owner__isnull=True,
        pk=params["canned_reply_id"],
    ).first()
    if reply is None:
        raise Skipped(gettext_noop("that canned reply was deleted"))
    text, unknown = render_text(reply.body, doer.conversation, doer.member)
    if unknown:
        raise Skipped(
            gettext_noop("the canned reply uses unknown variables: %(names)s"),
            names=", ".join(unknown),
        )
    try:
        _post(doer, text, MessageKind.MESSAGE)
    except ValueError as exc:  # e.g. the channel's reply window has closed
        raise Skipped(gettext_noop("not sent: %(reason)s"), reason=str(exc)) from None
    return f"/{reply.shortcut}"


def _do_add_note(doer: Doer, params: dict) -> str:
    text, _unknown = render_text(params["text"], doer.conversation, doer.member)
    note = _post(doer, text, MessageKind.NOTE)
    notifications.notify_mentions(note, actor=doer.member)
    return ""


def _do_notify(doer: Doer, params: dict) -> str:
    ids = [r for r in params["recipients"] if r != "assignee"]
    if "assignee" in params["recipients"] and doer.conversation.assignee_id:
        ids.append(doer.conversation.assignee_id)
    members = list(
        Membership.objects.select_related("user").filter(
            workspace_id=doer.conversation.workspace_id, pk__in=ids
        )
    )
    if not members:
        raise Skipped(gettext_noop("nobody to notify (no assignee)"))
    mentions = " ".join(notifications.mention_token(m) for m in members)
    text, _unknown = render_text(params.get("text") or "", doer.conversation, doer.member)
    note = _post(doer, f"{mentions} {text}".strip(), MessageKind.NOTE)
    notifications.notify_mentions(note, actor=doer.member)
    return ", ".join(m.display_name for m in members)


def _do_apply_sla_policy(doer: Doer, params: dict) -> str:
    from loket.automation import sla
    from loket.automation.models import SlaPolicy

    policy = SlaPolicy.objects.filter(
        workspace_id=doer.conversation.workspace_id, pk=params["policy_id"]
    ).first()
    if policy is None:
        raise Skipped(gettext_noop("that SLA policy was deleted"))
    doer.conversation = sla.apply_policy(doer.conversation, policy, actor=doer.member)
    return policy.name


def _do_start_bot(doer: Doer, params: dict) -> str:
    from loket.bots import engine
    from loket.bots.models import Flow

    flow = (
        Flow.objects.select_related("published")
        .filter(workspace_id=doer.conversation.workspace_id, pk=params["flow_id"])
        .first()
    )
    if flow is None:
        raise Skipped(gettext_noop("that bot flow was deleted"))
    if flow.published_id is None:
        raise Skipped(gettext_noop("that bot flow is not published"))
    if engine.start(doer.conversation, flow) is None:
        raise Skipped(gettext_noop("a bot is already talking in this conversation"))
    return flow.name


def _do_webhook(doer: Doer, params: dict) -> str:
    from loket.automation.tasks import post_rule_webhook

    post_rule_webhook.enqueue(
        params["url"], doer.conversation.pk, doer.rule_id, clock.now().isoformat()
    )
    return urlsplit(params["url"]).hostname or ""


@dataclass(frozen=True)
class ActionType:
    label: Any
    clean: Callable[[dict, int], dict]
    do: Callable[[Doer, dict], str]
    # What the editor asks for: "member", "team", "labels", "priority", "status", "minutes",
    # "canned_reply", "sla_policy", "flow", "text", "notify", "url", or "" for nothing.
    param: str = ""


ACTIONS: dict[str, ActionType] = {
    "assign_agent": ActionType(_("Assign to agent"), _member_id, _do_assign_agent, "member"),
    "assign_team": ActionType(_("Assign to team"), _team_id, _do_assign_team, "team"),
    "auto_assign": ActionType(_("Hand to the auto-assigner"), _nothing, _do_auto_assign),
    "unassign": ActionType(_("Unassign"), _nothing, _do_unassign),
    "add_labels": ActionType(_("Add labels"), _labels, _do_add_labels, "labels"),
    "remove_labels": ActionType(_("Remove labels"), _labels, _do_remove_labels, "labels"),
    "set_priority": ActionType(_("Set priority"), _priority, _do_set_priority, "priority"),
    "set_status": ActionType(_("Set status"), _status, _do_set_status, "status"),
    "snooze": ActionType(_("Snooze"), _minutes, _do_snooze, "minutes"),
    "send_canned_reply": ActionType(
        _("Send a canned reply"), _canned_reply, _do_send_canned_reply, "canned_reply"
    ),
    "add_note": ActionType(_("Add an internal note"), _text, _do_add_note, "text"),
    "notify": ActionType(_("Notify"), _notify, _do_notify, "notify"),
    "apply_sla_policy": ActionType(
        _("Apply an SLA policy"), _sla_policy, _do_apply_sla_policy, "sla_policy"
    ),
    "start_bot": ActionType(_("Start a bot flow"), _flow, _do_start_bot, "flow"),
    "webhook": ActionType(_("Send a webhook"), _webhook, _do_webhook, "url"),
}


# Actions whose result the customer sees as an answer: never done by a rule for automatic mail.
ANSWERS = frozenset({"send_canned_reply", "start_bot"})


def answers_customer(actions: list[dict]) -> bool:
    return any(isinstance(item, dict) and item.get("type") in ANSWERS for item in actions)


def clean(raw: Any, workspace_id: int) -> list[dict]:
    """The actions as they will be stored, or InvalidAction saying which one is wrong."""
    if not isinstance(raw, list) or not raw:
        raise InvalidAction(_("a rule needs at least one action"))
    if len(raw) > MAX_ACTIONS:
        raise InvalidAction(_("at most %(max)s actions"), max=MAX_ACTIONS)
    cleaned = []
    for index, item in enumerate(raw, start=1):
        kind = item.get("type") if isinstance(item, dict) else None
        action = ACTIONS.get(kind) if isinstance(kind, str) else None
        if action is None:
            raise InvalidAction(
                *InvalidAction(
                    _("unknown type “%(kind)s”; one of %(choices)s"),
                    kind=kind,
                    choices=", ".join(ACTIONS),
                ).within(Said(_("action %(number)s"), number=index))
            )
        try:
            cleaned.append({"type": kind, **action.clean(item, workspace_id)})
        except InvalidAction as exc:
            place = Said(_("action %(number)s (%(kind)s)"), number=index, kind=action.label)
            raise InvalidAction(*exc.within(place)) from None
    return cleaned


# Details that are labels of choices, translated when read.
_LABEL_DETAILS = ("set_priority", "set_status")


def described_detail(item: dict) -> str:
    """What ``perform`` recorded about one action, in the reader's language."""
    said = item.get("said")
    if isinstance(said, dict) and isinstance(said.get("message"), str):
        return str(Said(said["message"], **(said.get("values") or {})))
    detail = item.get("detail") or ""
    if item.get("type") in _LABEL_DETAILS and detail:
        return gettext(detail)
    return detail


def perform(doer: Doer, actions: list[dict]) -> list[dict]:
    """Carry out the actions in order, each in its own savepoint: one that fails is recorded
    and undone, and the others still happen. Returns ``[{"type", "ok", "detail"}]`` (with
    ``"skipped": True`` for an action that had nothing to do, e.g. no answer to automatic mail)."""
    done = []
    for item in actions:
        action = ACTIONS.get(item.get("type"))
        if action is None:
            done.append({"type": item.get("type"), "ok": False, "detail": "unknown action"})
            continue
        if doer.automatic and item["type"] in ANSWERS:
            # Not a failure: the rule did right not to answer an out-of-office or a bounce.
            said = Said(
                gettext_noop("no answer to an automatic message (%(reason)s)"),
                reason=doer.automatic,
            )
            done.append(
                {
                    "type": item["type"],
                    "ok": False,
                    "skipped": True,
                    "detail": said.message % said.values,
                    "said": {"message": said.message, "values": said.values},
                }
            )
            continue
        try:
            with transaction.atomic():
                detail = action.do(doer, item)
            done.append({"type": item["type"], "ok": True, "detail": detail})
        except Skipped as exc:
            done.append(
                {
                    "type": item["type"],
                    "ok": False,
                    "detail": str(exc),
                    "said": {"message": exc.said.message, "values": exc.said.values},
                }
            )
        except Exception as exc:  # a broken action must not stop the others or the next rule
            done.append({"type": item["type"], "ok": False, "detail": f"failed: {exc}"})
    return done


# -- outbound webhooks ------------------------------------------------------------------------
def webhook_secret(workspace_id: int) -> str:
    """The key a workspace's rule webhooks are signed with, derived from LOKET_ENCRYPTION_KEY
    (shown to admins on the rules page, so receivers can check the signature)."""
    key = crypto.derived_key("rule-webhooks")
    digest = hmac.new(key, f"workspace:{workspace_id}".encode(), hashlib.sha256).digest()
    return "whsec_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    """``X-Loket-Signature``: ``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"
