"""A flow's definition: a graph of steps stored as JSON, checked against this schema whenever a
draft is saved or published. What ``clean`` accepts, the engine (loket.bots.engine) can run.

    {"start": "welcome", "language": "en",
     "timeout": {"minutes": 30, "next": "still_there"},        # optional: the customer went quiet
     "order": ["welcome", "ask", ...],                          # optional: the editor's order
     "steps": {"welcome": {"type": "message", "text": {"en": "Hi!", "nl": "Hoi!"}, "next": "ask"},
               ...}}

Texts are a string or ``{"<language>": "..."}`` (the conversation's language, else the
contact's, else the flow's ``language``), with ``{{variables}}``: what the flow collected
(``{{booking_code}}``) and the canned replies' names (``{{contact.first_name}}``). ``next`` is a
step id, or null: the flow is done. Step types and their keys:

- ``message``: text, media (``{"url", "filename"}``: an image or file the bot fetches and
  sends with the text; where the channel cannot carry files, the link goes in the text); next.
- ``choice``: text, options ``[{"id", "title", "next"}]`` (2 to 10), save_as, retry_text,
  max_attempts (default 3), fail (where to go after that many wrong answers; default: hand off).
- ``input``: text, validate (text | number | email | phone | date | regex, with ``pattern``),
  save_as, retry_text, max_attempts, next, fail.
- ``condition``: branches ``[{"if": <rule conditions>, "next"}]``, else. Conditions are the rules'
  (loket.automation.rules.conditions) plus ``{"field": "variable", "key": "booking_code", ...}``.
- ``set``: contact (attributes: ``{"key": "text"}``), conversation (custom fields), labels
  (added), priority; next.
- ``http``: method (GET | POST), url, headers, body (JSON, for POST), timeout (1 to 10 s), map
  ``{"variable": "path.in.the.answer"}``; next; fail (error, timeout, not 2xx, not JSON).
- ``faq``: text (optional: ask first), items ``[{"question", "keywords": [...], "answer"}]``;
  next (answered), miss (no match).
- ``handoff``: text, team_id (optional), note (default true: what the bot collected, as an
  internal note).
- ``close``: text (optional); the conversation is resolved.
"""

from __future__ import annotations

import re
from typing import Any

import regex
from django.utils.translation import gettext_lazy as _

from loket.problems import Invalid, Problem, Said

MAX_STEPS = 200
MAX_OPTIONS = 10
MAX_TEXT = 4000
STEP_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
VARIABLE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})?$")
VALIDATIONS = ("text", "number", "email", "phone", "date", "regex")

# The keys each step type takes: required, then optional.
STEP_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "message": (set(), {"text", "media", "next", "title"}),
    "choice": ({"text", "options"}, {"save_as", "retry_text", "max_attempts", "fail", "title"}),
    "input": (
        {"text", "validate", "save_as"},
        {"pattern", "retry_text", "max_attempts", "next", "fail", "title"},
    ),
    "condition": ({"branches"}, {"else", "title"}),
    "set": (set(), {"contact", "conversation", "labels", "priority", "next", "title"}),
    "http": ({"url"}, {"method", "headers", "body", "timeout", "map", "next", "fail", "title"}),
    "faq": ({"items"}, {"text", "next", "miss", "title"}),
    "handoff": (set(), {"text", "team_id", "note", "title"}),
    "close": (set(), {"text", "title"}),
}
# The keys of a step that name another step.
LINKS = ("next", "fail", "else", "miss")


class InvalidFlow(Invalid):
    """A definition that cannot be run; ``errors`` lists every problem, each naming its step."""

    @property
    def errors(self) -> list[Problem]:
        return self.problems


def _text_ok(value: Any, *, optional: bool = False) -> bool:
    if value is None or value == "":
        return optional
    if isinstance(value, str):
        return len(value) <= MAX_TEXT
    if isinstance(value, dict) and value:
        return all(
            isinstance(k, str) and LANGUAGE.match(k) and isinstance(v, str) and len(v) <= MAX_TEXT
            for k, v in value.items()
        )
    return False


def links_of(step: dict) -> list[str]:
    """Every step id this step can go to."""
    found = [step[key] for key in LINKS if isinstance(step.get(key), str)]
    for option in step.get("options") or []:
        if isinstance(option, dict) and isinstance(option.get("next"), str):
            found.append(option["next"])
    for branch in step.get("branches") or []:
        if isinstance(branch, dict) and isinstance(branch.get("next"), str):
            found.append(branch["next"])
    return found


def _check_step(step_id: str, step: Any, workspace_id: int | None, errors: list[Problem]) -> None:
    def wrong(message: Any, **values: Any) -> None:
        errors.append(Problem(Said(message, **values), step=step_id))

    if not isinstance(step, dict):
        wrong(_("a step is an object with a type"))
        return
    kind = step.get("type")
    if kind not in STEP_KEYS:
        wrong(_("unknown type “%(kind)s”; one of %(kinds)s"), kind=kind, kinds=", ".join(STEP_KEYS))
        return
    required, optional = STEP_KEYS[kind]
    keys = set(step) - {"type"}
    for missing in sorted(required - keys):
        wrong(_("a %(kind)s step needs “%(key)s”"), kind=kind, key=missing)
    for unknown in sorted(keys - required - optional):
        wrong(_("a %(kind)s step has no “%(key)s”"), kind=kind, key=unknown)
    for key in LINKS:
        if key in step and step[key] is not None and not isinstance(step[key], str):
            wrong(_("“%(key)s” is a step id or null"), key=key)
    if kind == "message":
        media = step.get("media")
        if media is not None and (
            not isinstance(media, dict)
            or not isinstance(media.get("url"), str)
            or not re.match(r"^https?://", media["url"])
            or len(media["url"]) > 2000
            or not isinstance(media.get("filename", ""), str)
            or set(media) - {"url", "filename"}
        ):
            wrong(_("media is a link (https://…) with an optional file name"))
        if not step.get("media") and not _text_ok(step.get("text")):
            wrong(_("a message needs a text or media"))
    optional_text = kind in ("handoff", "close", "faq") or (kind == "message" and step.get("media"))
    if "text" in step and not _text_ok(step["text"], optional=bool(optional_text)):
        wrong(_("write the text (up to %(max)s characters in each language)"), max=MAX_TEXT)
    if "retry_text" in step and not _text_ok(step["retry_text"], optional=True):
        wrong(_("the retry text is up to %(max)s characters in each language"), max=MAX_TEXT)
    if "save_as" in step and not (
        isinstance(step["save_as"], str) and VARIABLE.match(step["save_as"])
    ):
        wrong(_("save the answer as a variable name (lower-case letters, digits and _)"))
    attempts = step.get("max_attempts", 3)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 10:
        wrong(_("the number of attempts is 1 to 10"))
    if kind == "choice":
        options = step.get("options")
        if not isinstance(options, list) or not 2 <= len(options) <= MAX_OPTIONS:
            wrong(_("a choice has 2 to %(max)s options"), max=MAX_OPTIONS)
        else:
            ids = set()
            for n, option in enumerate(options, start=1):
                if not isinstance(option, dict) or not isinstance(option.get("id"), str):
                    wrong(_("option %(number)s needs an id"), number=n)
                    continue
                if option["id"] in ids:
                    wrong(_("option id “%(id)s” is used twice"), id=option["id"])
                ids.add(option["id"])
                if not _text_ok(option.get("title")):
                    wrong(_("option %(number)s needs a title"), number=n)
                if set(option) - {"id", "title", "next"}:
                    wrong(_("option %(number)s has unknown keys"), number=n)
    if kind == "input":
        if step.get("validate") not in VALIDATIONS:
            wrong(_("check the answer as one of %(choices)s"), choices=", ".join(VALIDATIONS))
        if step.get("validate") == "regex":
            pattern = step.get("pattern")
            if not isinstance(pattern, str) or not pattern or len(pattern) > 500:
                wrong(_("the pattern is 1 to 500 characters"))
            else:
                try:
                    regex.compile(pattern)
                except regex.error as exc:
                    wrong(_("the pattern is not valid: %(reason)s"), reason=exc)
    if kind == "condition":
        from loket.automation.rules import conditions as rule_conditions

        branches = step.get("branches")
        if not isinstance(branches, list) or not branches:
            wrong(_("a condition has at least one branch"))
        else:
            for n, branch in enumerate(branches, start=1):
                if not isinstance(branch, dict) or "if" not in branch:
                    wrong(_("branch %(number)s needs a condition and a next step"), number=n)
                    continue
                if workspace_id is not None:
                    try:
                        branch["if"] = rule_conditions.clean(branch["if"], workspace_id)
                    except rule_conditions.InvalidCondition as exc:
                        place = Said(_("branch %(number)s"), number=n)
                        errors.extend(exc.within(place, step=step_id))
    if kind == "set":
        for key in ("contact", "conversation"):
            value = step.get(key, {})
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and re.match(r"^[A-Za-z0-9_-]{1,100}$", k) and isinstance(v, str)
                for k, v in value.items()
            ):
                wrong(
                    _("%(what)s fields are names (letters, digits, - and _) with texts"), what=key
                )
        labels = step.get("labels", [])
        if not isinstance(labels, list) or not all(
            isinstance(x, str) and 0 < len(x) <= 64 for x in labels
        ):
            wrong(_("labels are a list of label names"))
        if "priority" in step and step["priority"] not in (0, 1, 2, 3, 4):
            wrong(_("the priority is 0 to 4"))
    if kind == "http":
        url = step.get("url")
        if not isinstance(url, str) or not re.match(r"^https?://", url) or len(url) > 2000:
            wrong(_("the URL starts with https:// (or http://)"))
        if step.get("method", "GET") not in ("GET", "POST"):
            wrong(_("the method is GET or POST"))
        timeout = step.get("timeout", 5)
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 1 <= timeout <= 10
        ):
            wrong(_("the timeout is 1 to 10 seconds"))
        headers = step.get("headers", {})
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            wrong(_("headers are names with texts"))
        mapping = step.get("map", {})
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and VARIABLE.match(k) and isinstance(v, str) and v
            for k, v in mapping.items()
        ):
            wrong(_("the answer is mapped as variable names to paths in the answer"))
    if kind == "faq":
        items = step.get("items")
        if not isinstance(items, list) or not items:
            wrong(_("a list of answers has at least one answer"))
        else:
            for n, item in enumerate(items, start=1):
                if not isinstance(item, dict) or not _text_ok(item.get("answer")):
                    wrong(_("question %(number)s needs an answer"), number=n)
                    continue
                keywords = item.get("keywords", [])
                if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
                    wrong(_("question %(number)s: keywords are a list of words"), number=n)
                if not keywords and not item.get("question"):
                    wrong(_("question %(number)s needs a question or keywords"), number=n)
    if kind == "handoff" and step.get("team_id") is not None and workspace_id is not None:
        from loket.tenancy.models import Team

        team_id = step["team_id"]
        if (
            not isinstance(team_id, int)
            or not Team.objects.filter(workspace_id=workspace_id, pk=team_id).exists()
        ):
            wrong(_("no team “%(value)s” in this workspace"), value=team_id)


def reachable(definition: dict) -> set[str]:
    steps = definition.get("steps") or {}
    seen: set[str] = set()
    todo = [definition.get("start")]
    timeout = definition.get("timeout") or {}
    if isinstance(timeout, dict) and timeout.get("next"):
        todo.append(timeout["next"])
    while todo:
        step_id = todo.pop()
        if not isinstance(step_id, str) or step_id in seen or step_id not in steps:
            continue
        seen.add(step_id)
        if isinstance(steps[step_id], dict):
            todo.extend(links_of(steps[step_id]))
    return seen


def clean(raw: Any, workspace_id: int | None = None) -> tuple[dict, list[Problem]]:
    """The definition as it will be stored, and warnings (steps nothing leads to); or
    InvalidFlow listing every error."""
    errors: list[Problem] = []

    def wrong(message: Any, **values: Any) -> None:
        errors.append(Problem(Said(message, **values)))

    if not isinstance(raw, dict):
        raise InvalidFlow(_("a flow is an object with start and steps"))
    steps = raw.get("steps")
    if not isinstance(steps, dict) or not steps:
        raise InvalidFlow(_("a flow needs steps"))
    if len(steps) > MAX_STEPS:
        wrong(_("a flow has at most %(max)s steps"), max=MAX_STEPS)
    unknown = set(raw) - {"start", "language", "steps", "timeout", "order"}
    if unknown:
        wrong(_("a flow has no “%(key)s”"), key=sorted(unknown)[0])
    for step_id in steps:
        if not STEP_ID.match(step_id):
            wrong(_("step id “%(step)s”: letters, digits, - and _, up to 64"), step=step_id)
    order = raw.get("order")
    if order is not None and (
        not isinstance(order, list) or any(step_id not in steps for step_id in order)
    ):
        wrong(_("order lists step ids (the order of the steps in the editor)"))
    if raw.get("start") not in steps:
        wrong(_("the first step “%(step)s” is not a step"), step=raw.get("start"))
    language = raw.get("language", "en")
    if not isinstance(language, str) or not LANGUAGE.match(language):
        wrong(_("“%(language)s” is not a language code"), language=language)
    timeout = raw.get("timeout")
    if timeout is not None:
        minutes = timeout.get("minutes") if isinstance(timeout, dict) else None
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 10080:
            wrong(_("the silence timeout is 1 to 10080 minutes"))
        elif timeout.get("next") is not None and timeout.get("next") not in steps:
            wrong(
                _("after the silence timeout it goes to “%(step)s”, which is not a step"),
                step=timeout.get("next"),
            )
    for step_id, step in steps.items():
        _check_step(step_id, step, workspace_id, errors)
        if isinstance(step, dict):
            for target in links_of(step):
                if target not in steps:
                    errors.append(
                        Problem(
                            Said(_("goes to “%(target)s”, which is not a step"), target=target),
                            step=step_id,
                        )
                    )
    if errors:
        raise InvalidFlow(*errors)
    found = reachable(raw)
    warnings = [
        Problem(Said(_("nothing leads to this step")), step=step_id)
        for step_id in steps
        if step_id not in found
    ]
    return raw, warnings


def localized(text: Any, languages: list[str]) -> str:
    """The text in the first of ``languages`` it has (then its first), for a str as is."""
    if text is None:
        return ""
    if isinstance(text, str):
        return text
    for language in languages:
        if not language:
            continue
        if language in text:
            return text[language]
        base = language.split("-")[0]
        if base in text:
            return text[base]
    return next(iter(text.values()), "")
