"""Proactive messages: rules per live-chat channel that open the widget with a message.

A channel's ``proactive`` setting is a list of at most ``MAX_RULES`` rules::

    {"message": "Need help with your order?",   # 1-500 characters
     "url_contains": "/checkout",                # optional; empty matches every page
     "seconds_on_page": 30,                      # 0-3600, time on the current page
     "returning_only": False,                    # only visitors who came before
     "business_hours_only": False,               # only while the workspace is open
     "texts": {"nl": "Hulp nodig bij je bestelling?"}}  # optional, per language

The backend only validates the rules and filters them for the moment (business hours); the
widget evaluates the rest on the host page and fires at most one per browser session.
"""

from __future__ import annotations

import re
from typing import Any

from loket.connectors.base import InvalidConfig

MAX_RULES = 10
MAX_MESSAGE = 500
MAX_URL = 200
MAX_SECONDS = 3600
_KEYS = {
    "message",
    "url_contains",
    "seconds_on_page",
    "returning_only",
    "business_hours_only",
    "texts",
}
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")


def _message(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidConfig(f"{field} must be text")
    value = value.strip()
    if not value:
        raise InvalidConfig(f"{field} must not be empty")
    if len(value) > MAX_MESSAGE:
        raise InvalidConfig(f"{field} is longer than {MAX_MESSAGE} characters")
    return value


def _flag(value: Any, field: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidConfig(f"{field} must be true or false")
    return value


def clean_rule(rule: Any, index: int) -> dict[str, Any]:
    where = f"proactive[{index}]"
    if not isinstance(rule, dict):
        raise InvalidConfig(f"{where} must be an object with a message")
    unknown = set(rule) - _KEYS
    if unknown:
        raise InvalidConfig(f"{where}: unknown key(s): {', '.join(sorted(map(str, unknown)))}")
    if "message" not in rule:
        raise InvalidConfig(f"{where} needs a message")
    url = rule.get("url_contains")
    if url is None:
        url = ""
    if not isinstance(url, str):
        raise InvalidConfig(f"{where}.url_contains must be text")
    url = url.strip()
    if len(url) > MAX_URL:
        raise InvalidConfig(f"{where}.url_contains is longer than {MAX_URL} characters")
    seconds = rule.get("seconds_on_page")
    if seconds is None:
        seconds = 0
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise InvalidConfig(f"{where}.seconds_on_page must be a whole number of seconds")
    if not 0 <= seconds <= MAX_SECONDS:
        raise InvalidConfig(f"{where}.seconds_on_page must be between 0 and {MAX_SECONDS}")
    texts = rule.get("texts")
    if texts is None:
        texts = {}
    if not isinstance(texts, dict):
        raise InvalidConfig(f"{where}.texts must map a language to a message")
    clean_texts = {}
    for language, text in texts.items():
        code = str(language).strip().lower()
        if not isinstance(language, str) or not _LANGUAGE.match(code):
            raise InvalidConfig(f"{where}.texts: {language!r} is not a language code like 'nl'")
        clean_texts[code] = _message(text, f"{where}.texts.{code}")
    return {
        "message": _message(rule["message"], f"{where}.message"),
        "url_contains": url,
        "seconds_on_page": seconds,
        "returning_only": _flag(rule.get("returning_only"), f"{where}.returning_only"),
        "business_hours_only": _flag(
            rule.get("business_hours_only"), f"{where}.business_hours_only"
        ),
        "texts": clean_texts,
    }


def clean_rules(value: Any) -> list[dict[str, Any]]:
    """A validated copy of a channel's ``proactive`` setting; InvalidConfig says what to fix."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidConfig("proactive must be a list of rules")
    if len(value) > MAX_RULES:
        raise InvalidConfig(f"proactive has at most {MAX_RULES} rules")
    return [clean_rule(rule, index) for index, rule in enumerate(value)]


def _text_for(rule: dict[str, Any], language: str) -> str:
    texts = rule.get("texts") or {}
    language = (language or "").lower()
    return texts.get(language) or texts.get(language.split("-")[0]) or rule["message"]


def rules_for_widget(channel, language: str) -> list[dict[str, Any]]:
    """The rules the widget should consider now, in the visitor's language: business-hours-only
    rules are left out while the workspace is closed. ``id`` is the rule's position."""
    from loket.tenancy import hours

    rules = channel.settings.get("proactive") or []
    if not rules:
        return []
    open_now = None
    out = []
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict) or not rule.get("message"):
            continue
        if rule.get("business_hours_only"):
            if open_now is None:
                open_now = hours.is_open(channel.workspace, channel=channel)
            if not open_now:
                continue
        out.append(
            {
                "id": index,
                "message": _text_for(rule, language),
                "url_contains": rule.get("url_contains") or "",
                "seconds_on_page": int(rule.get("seconds_on_page") or 0),
                "returning_only": bool(rule.get("returning_only")),
            }
        )
    return out
