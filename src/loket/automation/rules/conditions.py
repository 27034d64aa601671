"""Rule conditions: an allow-list of fields and, per kind of field, of operators — never raw
lookups or code. A rule's conditions are one group::

    {"match": "all" | "any", "conditions": [condition or group, ...]}

where a group is the same shape one level down (so "A and (B or C)"), and a condition is
``{"field": "message.text", "operator": "contains", "value": "refund"}`` (keyed fields add
``"key"``: ``{"field": "contact.attribute", "key": "plan", ...}``). No conditions: always.

``clean`` checks a group when a rule is saved and says in plain words what is wrong;
``evaluate`` answers for one conversation and explains which conditions held.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import regex
from django.utils.translation import gettext_lazy as _

from loket.automation.rules.facts import Facts
from loket.inbox.models import Channel, ConversationStatus, Priority
from loket.knowledge.models import Sentiment, Urgency
from loket.problems import Invalid, Said
from loket.tenancy.models import Membership, Team

MAX_CONDITIONS = 40
MAX_TEXT = 500
PATTERN_TIMEOUT = 0.05  # seconds; a pattern that takes longer over a message does not match
_KEY = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
SLA_TARGETS = ("first_response", "next_response", "resolution")
CHANGEABLE = (
    "status",
    "assignee_id",
    "team_id",
    "priority",
    "labels",
    "snoozed_until",
    "language",
    # What the enrichment sweep estimates (loket.knowledge.enrichment).
    "sentiment",
    "urgency",
    "predicted_labels",
)


class InvalidCondition(Invalid):
    """A condition that cannot be saved; the problem says which and why."""


# -- operators per kind of field ----------------------------------------------------------------
TEXT_OPERATORS = {
    "contains": _("contains"),
    "not_contains": _("does not contain"),
    "equals": _("is"),
    "not_equals": _("is not"),
    "starts_with": _("starts with"),
    "ends_with": _("ends with"),
    "matches": _("matches the pattern"),
    "is_empty": _("is empty"),
    "is_not_empty": _("is not empty"),
}
CHOICE_OPERATORS = {"is": _("is one of"), "is_not": _("is none of")}
OPTIONAL_CHOICE_OPERATORS = {
    **CHOICE_OPERATORS,
    "is_empty": _("is nobody"),
    "is_not_empty": _("is somebody"),
}
PRIORITY_OPERATORS = {**CHOICE_OPERATORS, "at_least": _("is at least"), "at_most": _("is at most")}
NUMBER_OPERATORS = {
    "equals": _("equals"),
    "greater_than": _("is more than"),
    "less_than": _("is less than"),
}
BOOL_OPERATORS = {"is_true": _("yes"), "is_false": _("no")}
SET_OPERATORS = {
    "includes_any": _("include any of"),
    "includes_all": _("include all of"),
    "includes_none": _("include none of"),
}
NO_VALUE = {"is_empty", "is_not_empty", "is_true", "is_false"}


@dataclass(frozen=True)
class Field:
    label: Any
    kind: str  # text | choice | priority | number | bool | set
    read: Callable[[Facts, str], Any]
    operators: dict
    # For choice and set fields: what the values are ("channel", "team", "member", "status",
    # "channel_kind", "label", "sla_target", "change", "language", "sentiment", "urgency").
    values: str = ""
    keyed: bool = False
    bot_only: bool = False  # offered in the flow editor, not the rules editor


def _attribute(data: Any, key: str) -> str:
    value = data.get(key) if isinstance(data, dict) else None
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


FIELDS: dict[str, Field] = {
    "message.text": Field(
        _("Message text"), "text", lambda f, k: f.message_text, TEXT_OPERATORS
    ),
    "message.is_first": Field(
        _("First message of the conversation"), "bool", lambda f, k: f.is_first_message,
        BOOL_OPERATORS,
    ),
    "message.has_attachments": Field(
        _("Message has attachments"), "bool", lambda f, k: f.has_attachments, BOOL_OPERATORS
    ),
    "channel": Field(
        _("Channel"), "choice", lambda f, k: f.conversation.channel_id, CHOICE_OPERATORS,
        values="channel",
    ),
    "channel.kind": Field(
        _("Kind of channel"), "choice", lambda f, k: f.channel.kind,
        CHOICE_OPERATORS, values="channel_kind",
    ),
    "conversation.subject": Field(
        _("Subject"), "text", lambda f, k: f.conversation.subject, TEXT_OPERATORS
    ),
    "conversation.status": Field(
        _("Status"), "choice", lambda f, k: f.conversation.status, CHOICE_OPERATORS,
        values="status",
    ),
    "conversation.priority": Field(
        _("Priority"), "priority", lambda f, k: f.conversation.priority, PRIORITY_OPERATORS,
        values="priority",
    ),
    "conversation.language": Field(
        _("Language"), "text", lambda f, k: f.conversation.language, TEXT_OPERATORS
    ),
    "conversation.labels": Field(
        _("Labels"), "set", lambda f, k: f.label_names, SET_OPERATORS, values="label"
    ),
    # Estimated by the enrichment sweep (loket.knowledge.enrichment), one query when asked.
    "conversation.sentiment": Field(
        _("Sentiment (estimate)"), "choice", lambda f, k: f.sentiment, CHOICE_OPERATORS,
        values="sentiment",
    ),
    "conversation.urgency": Field(
        _("Urgency (estimate)"), "choice", lambda f, k: f.urgency, CHOICE_OPERATORS,
        values="urgency",
    ),
    "conversation.predicted_label": Field(
        _("Suggested labels"), "set", lambda f, k: f.predicted_label_names, SET_OPERATORS,
        values="label",
    ),
    "conversation.team": Field(
        _("Team"), "choice", lambda f, k: f.conversation.team_id, OPTIONAL_CHOICE_OPERATORS,
        values="team",
    ),
    "conversation.assignee": Field(
        _("Assignee"), "choice", lambda f, k: f.conversation.assignee_id,
        OPTIONAL_CHOICE_OPERATORS, values="member",
    ),
    "conversation.custom": Field(
        _("Conversation field"), "text",
        lambda f, k: _attribute(f.conversation.custom_attributes, k), TEXT_OPERATORS, keyed=True,
    ),
    "contact.name": Field(_("Contact name"), "text", lambda f, k: f.contact.name, TEXT_OPERATORS),
    "contact.email": Field(
        _("Contact email"), "text", lambda f, k: f.contact.email, TEXT_OPERATORS
    ),
    "contact.phone": Field(
        _("Contact phone"), "text", lambda f, k: f.contact.phone, TEXT_OPERATORS
    ),
    "contact.attribute": Field(
        _("Contact attribute"), "text", lambda f, k: _attribute(f.contact.attributes, k),
        TEXT_OPERATORS, keyed=True,
    ),
    "contact.previous_conversations": Field(
        _("Contact's earlier conversations"), "number",
        lambda f, k: f.previous_conversations, NUMBER_OPERATORS,
    ),
    "business_hours.inside": Field(
        _("Within business hours"), "bool", lambda f, k: f.inside_business_hours,
        BOOL_OPERATORS,
    ),
    "update.changed": Field(
        _("What changed"), "set", lambda f, k: set(f.changes), SET_OPERATORS, values="change"
    ),
    # What a bot flow collected (loket.bots); empty everywhere else.
    "variable": Field(
        _("Bot variable"), "text",
        lambda f, k: _attribute(getattr(f, "variables", None) or {}, k), TEXT_OPERATORS,
        keyed=True, bot_only=True,
    ),
    "sla.target": Field(
        _("SLA target"), "choice", lambda f, k: f.sla_target, CHOICE_OPERATORS,
        values="sla_target",
    ),
}  # fmt: skip


# -- cleaning -----------------------------------------------------------------------------------
def _known_values(values: str, workspace_id: int) -> set | None:
    """The values a choice or set field accepts in this workspace (None: free text)."""
    if values == "channel":
        return set(Channel.objects.filter(workspace_id=workspace_id).values_list("pk", flat=True))
    if values == "team":
        return set(Team.objects.filter(workspace_id=workspace_id).values_list("pk", flat=True))
    if values == "member":
        return set(
            Membership.objects.filter(workspace_id=workspace_id).values_list("pk", flat=True)
        )
    if values == "status":
        return set(ConversationStatus.values)
    if values == "priority":
        return set(Priority.values)
    if values == "channel_kind":
        # The kinds the workspace has channels of (core does not import the connector registry).
        return set(Channel.objects.filter(workspace_id=workspace_id).values_list("kind", flat=True))
    if values == "sla_target":
        return set(SLA_TARGETS)
    if values == "change":
        return set(CHANGEABLE)
    if values == "sentiment":
        return set(Sentiment.values)
    if values == "urgency":
        return set(Urgency.values)
    return None  # labels: names, compared without case


def _clean_condition(raw: Any, workspace_id: int) -> dict:
    if not isinstance(raw, dict):
        raise InvalidCondition(_("a condition is an object with field and operator"))
    name = raw.get("field")
    field = FIELDS.get(name) if isinstance(name, str) else None
    if field is None:
        raise InvalidCondition(_("unknown field “%(name)s”"), name=name)
    operator = raw.get("operator")
    if operator not in field.operators:
        raise InvalidCondition(
            _("%(field)s has no operator “%(operator)s”; one of %(operators)s"),
            field=name,
            operator=operator,
            operators=", ".join(field.operators),
        )
    cleaned: dict[str, Any] = {"field": name, "operator": operator}
    if field.keyed:
        key = raw.get("key")
        if not isinstance(key, str) or not _KEY.match(key):
            raise InvalidCondition(
                _("%(field)s needs a key (letters, digits, - and _)"), field=name
            )
        cleaned["key"] = key
    if operator in NO_VALUE:
        return cleaned
    value = raw.get("value")
    if field.kind in ("text",):
        if not isinstance(value, str) or not value.strip():
            raise InvalidCondition(_("%(field)s needs a text"), field=name)
        if len(value) > MAX_TEXT:
            raise InvalidCondition(_("the text is longer than %(max)s characters"), max=MAX_TEXT)
        if operator == "matches":
            try:
                regex.compile(value, regex.IGNORECASE)
            except regex.error as exc:
                raise InvalidCondition(
                    _("the pattern is not valid: %(reason)s"), reason=exc
                ) from None
        cleaned["value"] = value
    elif field.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidCondition(_("%(field)s needs a whole number, 0 or more"), field=name)
        cleaned["value"] = value
    elif field.kind == "priority" and operator in ("at_least", "at_most"):
        if value not in Priority.values:
            raise InvalidCondition(_("unknown priority “%(value)s”"), value=value)
        cleaned["value"] = value
    else:  # choice, priority is/is_not, set: a list of values
        items = value if isinstance(value, list) else [value]
        if not items or any(item in (None, "") for item in items):
            raise InvalidCondition(_("%(field)s needs at least one value"), field=name)
        known = _known_values(field.values, workspace_id)
        if known is None:  # label names
            if not all(isinstance(item, str) and len(item) <= 64 for item in items):
                raise InvalidCondition(_("labels are given by name"))
            items = [item.strip() for item in items]
        else:
            unknown = [item for item in items if item not in known]
            if unknown:
                raise InvalidCondition(
                    _("%(field)s has no value “%(value)s” in this workspace"),
                    field=name,
                    value=unknown[0],
                )
        cleaned["value"] = list(dict.fromkeys(items))
    return cleaned


def clean(raw: Any, workspace_id: int) -> dict:
    """The conditions as they will be stored, or InvalidCondition saying what is wrong."""
    if raw in (None, {}, []):
        return {"match": "all", "conditions": []}
    count = 0

    def placed(exc: InvalidCondition, place: str) -> InvalidCondition:
        if not place:
            return exc
        return InvalidCondition(*exc.within(Said(_("condition %(place)s"), place=place)))

    def group(value: Any, place: str, depth: int) -> dict:
        nonlocal count
        if not isinstance(value, dict) or not isinstance(value.get("conditions", []), list):
            raise placed(InvalidCondition(_("a group is {'match', 'conditions': [...]}")), place)
        match = value.get("match", "all")
        if match not in ("all", "any"):
            raise placed(
                InvalidCondition(_("match is “all” or “any”, not “%(match)s”"), match=match),
                place,
            )
        items = []
        for index, item in enumerate(value.get("conditions", []), start=1):
            here = f"{place}.{index}" if place else str(index)
            if isinstance(item, dict) and "conditions" in item:
                if depth >= 1:
                    raise placed(InvalidCondition(_("groups go one level deep")), here)
                items.append(group(item, here, depth + 1))
                continue
            count += 1
            if count > MAX_CONDITIONS:
                raise InvalidCondition(
                    _("a rule has at most %(max)s conditions"), max=MAX_CONDITIONS
                )
            try:
                items.append(_clean_condition(item, workspace_id))
            except InvalidCondition as exc:
                raise placed(exc, here) from None
        return {"match": match, "conditions": items}

    return group(raw, "", 0)


# -- evaluating ---------------------------------------------------------------------------------
def _text_holds(operator: str, actual: str, expected: str) -> bool:
    actual = actual or ""
    if operator == "is_empty":
        return not actual.strip()
    if operator == "is_not_empty":
        return bool(actual.strip())
    if operator == "matches":
        try:
            return (
                regex.search(expected, actual, regex.IGNORECASE, timeout=PATTERN_TIMEOUT)
                is not None
            )
        except TimeoutError:
            return False
    a, e = actual.casefold(), expected.casefold()
    return {
        "contains": lambda: e in a,
        "not_contains": lambda: e not in a,
        "equals": lambda: a.strip() == e.strip(),
        "not_equals": lambda: a.strip() != e.strip(),
        "starts_with": lambda: a.lstrip().startswith(e),
        "ends_with": lambda: a.rstrip().endswith(e),
    }[operator]()


def holds(condition: dict, facts: Facts) -> tuple[bool, Any]:
    """Whether one condition holds, and the value it looked at (for the run log)."""
    field = FIELDS[condition["field"]]
    actual = field.read(facts, condition.get("key", ""))
    operator, expected = condition["operator"], condition.get("value")
    if field.kind == "text":
        return _text_holds(operator, actual, expected), actual[:200]
    if field.kind == "bool":
        return bool(actual) == (operator == "is_true"), bool(actual)
    if field.kind == "number":
        return {
            "equals": actual == expected,
            "greater_than": actual > expected,
            "less_than": actual < expected,
        }[operator], actual
    if field.kind == "set":
        wanted = {str(v).casefold() for v in expected}
        have = {str(v).casefold() for v in actual}
        result = {
            "includes_any": bool(have & wanted),
            "includes_all": wanted <= have,
            "includes_none": not (have & wanted),
        }[operator]
        return result, sorted(have)
    # choice and priority
    if operator == "is_empty":
        return actual in (None, ""), actual
    if operator == "is_not_empty":
        return actual not in (None, ""), actual
    if operator == "at_least":
        return actual >= expected, actual
    if operator == "at_most":
        return actual <= expected, actual
    inside = actual in expected
    return (inside if operator == "is" else not inside), actual


@dataclass
class Verdict:
    matched: bool
    # Every condition looked at, in order: {"field", "operator", "value", "actual", "held"}.
    checked: list[dict]

    @property
    def reasons(self) -> list[dict]:
        return [item for item in self.checked if item["held"]]


# What reading a field costs: 0, nothing beyond the triggering message (or the event); 1, the
# conversation and contact (one query, once); 2, a query of its own. A group looks at cheap
# conditions first, so a rule that fails on the message's text reads nothing else.
# (Conditions have no side effects: their order does not change the answer.)
FREE = frozenset({"message.text", "update.changed", "sla.target", "variable"})
COSTLY = frozenset(
    {
        "conversation.labels",
        "conversation.sentiment",
        "conversation.urgency",
        "conversation.predicted_label",
        "message.is_first",
        "message.has_attachments",
        "contact.previous_conversations",
        "channel.kind",
        "business_hours.inside",
    }
)


def reads_conversation(conditions: dict) -> bool:
    """Whether evaluating these conditions may read more than the message: then loading the
    conversation with the message, in one query, is cheaper than a second query later."""
    for item in conditions.get("conditions") or ():
        if "conditions" in item:
            if reads_conversation(item):
                return True
        elif item.get("field") not in FREE:
            return True
    return False


def _cost(item: dict) -> int:
    if "conditions" in item:
        return 1
    field = item.get("field")
    return 0 if field in FREE else 2 if field in COSTLY else 1


def evaluate(conditions: dict, facts: Facts, *, explain_all: bool = False) -> Verdict:
    """Whether the conditions hold. Stops at the first answer unless ``explain_all`` (the "test
    this rule" panel shows every condition, in the rule's order)."""
    checked: list[dict] = []

    def group(value: dict) -> bool:
        items = value.get("conditions") or []
        if not items:
            return True
        if not explain_all:
            items = sorted(items, key=_cost)
        want_all = value.get("match", "all") == "all"
        result = want_all
        for item in items:
            if "conditions" in item:
                held = group(item)
            else:
                held, actual = holds(item, facts)
                checked.append({**item, "actual": actual, "held": held})
            if want_all and not held:
                result = False
                if not explain_all:
                    break
            if not want_all and held:
                result = True
                if not explain_all:
                    break
        return result

    return Verdict(group(conditions or {}), checked)
