"""Choices in outbound messages (buttons, quick replies, lists) and matching the answer.

A bot or agent that asks the customer to choose calls ``prepare()`` with the options; it
returns the text and the ``data`` to store with ``outbound.reply()``. A channel whose connector
shows choices natively (``Capabilities.choices``: how many) gets ``data["choices"]`` and renders
them as buttons, quick replies or a list; any other channel, or more options than the channel
shows, gets the options as numbered lines under the text (``"rendered": "numbered"``) and the
connector sends just the text.

``match()`` recognises the customer's answer however they gave it: a tapped button (the
connector's ``data["choice"]["id"]``), a number ("2", "2.", "#2") or the option's title typed
(case and accents ignored, small typos allowed, or a unique start of at least 4 letters).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from django.utils.translation import gettext

from loket.inbox import ports

NUMBERED = "numbered"
ELLIPSIS = "…"
TYPO_RATIO = 0.85
PREFIX_MIN = 4
ID_MAX = 256  # the longest id any channel keeps (WhatsApp's); longer ids are refused
TITLE_MAX = 200  # what Loket keeps of an option's title
DESCRIPTION_MAX = 300

_NUMBER = re.compile(
    r"^\s*(?:#|nr\.?\s*|no\.?\s*|number\s*|nummer\s*|option\s*|optie\s*)?(\d{1,3})\s*[.):]?\s*(.*)$",
    re.IGNORECASE | re.DOTALL,
)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (0: no limit), ending in "…" when cut, at a word
    boundary when one is near so the meaning stays readable."""
    text = " ".join(str(text or "").split())
    if not limit or len(text) <= limit:
        return text
    if limit <= 1:
        return text[:limit]
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= (limit - 1) * 2 // 3:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + ELLIPSIS


def normalise_items(items: Iterable[Any]) -> list[dict[str, str]]:
    """Options as ``{"id", "title", "description"}`` dicts. An option may be given as such a
    dict, a ``(id, title)`` pair or a plain title (which is then its id as well). Raises
    ValueError for an empty list, an option without a title, or ids that repeat."""
    result: list[dict[str, str]] = []
    for item in items:
        if isinstance(item, Mapping):
            title = str(item.get("title") or "").strip()
            ident = str(item.get("id") or title).strip()
            description = str(item.get("description") or "").strip()
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            ident, title, description = str(item[0]).strip(), str(item[1]).strip(), ""
        else:
            title = str(item or "").strip()
            ident, description = title, ""
        if not title:
            raise ValueError("every choice needs a title")
        if len(ident) > ID_MAX:
            raise ValueError(f"a choice id is at most {ID_MAX} characters: {ident[:40]!r}…")
        result.append(
            {
                "id": ident,
                "title": " ".join(title.split())[:TITLE_MAX],
                "description": " ".join(description.split())[:DESCRIPTION_MAX],
            }
        )
    if not result:
        raise ValueError("a choice needs at least one option")
    ids = [item["id"] for item in result]
    if len(set(ids)) != len(ids):
        raise ValueError("choice ids must differ")
    return result


def _channel(target):
    """The channel of a conversation (or the channel itself)."""
    channel = getattr(target, "channel", None)
    return channel if channel is not None and hasattr(channel, "kind") else target


def channel_limits(target) -> tuple[int, int]:
    """(how many options the channel shows natively, its longest title; 0: no limit)."""
    try:
        capabilities = ports.connector_for(_channel(target).kind).capabilities
    except LookupError:
        return 0, 0
    return (
        int(getattr(capabilities, "choices", 0) or 0),
        int(getattr(capabilities, "choice_title_max", 0) or 0),
    )


def numbered_text(text: str, items: list[dict[str, str]]) -> str:
    lines = []
    for number, item in enumerate(items, start=1):
        line = f"{number}. {item['title']}"
        if item.get("description"):
            line += f" - {item['description']}"
        lines.append(line)
    options = "\n".join(lines)
    text = (text or "").rstrip()
    return f"{text}\n\n{options}" if text else options


def prepare(
    conversation_or_channel, text: str, items: Iterable[Any], prompt: str = ""
) -> tuple[str, dict[str, Any]]:
    """The text and ``data`` to store for a message asking the customer to choose one of
    ``items`` on this conversation's (or channel's) channel. ``prompt``: the button that opens
    a list, where the channel needs one ("Choose" when not given)."""
    options = normalise_items(items)
    native, title_max = channel_limits(conversation_or_channel)
    prompt = " ".join(str(prompt or "").split()) or gettext("Choose")
    if native and len(options) <= native:
        shown = []
        for item in options:
            title = shorten(item["title"], title_max)
            entry = {**item, "title": title}
            if title != item["title"]:
                entry["full_title"] = item["title"]  # still matched when typed in full
            shown.append(entry)
        return text, {"choices": {"items": shown, "prompt": prompt}}
    return numbered_text(text, options), {
        "choices": {"items": options, "prompt": prompt, "rendered": NUMBERED}
    }


def native_choices(message) -> list[dict[str, str]]:
    """The options a connector should render natively for an outbound message (none when the
    message has none or they went out as numbered text)."""
    choices = (getattr(message, "data", None) or {}).get("choices")
    if not isinstance(choices, dict) or choices.get("rendered") == NUMBERED:
        return []
    items = choices.get("items")
    if not isinstance(items, list):
        return []
    return [
        {
            "id": str(item.get("id") or item.get("title") or ""),
            "title": str(item.get("title") or item.get("id") or ""),
            "description": str(item.get("description") or ""),
        }
        for item in items
        if isinstance(item, dict) and (item.get("id") or item.get("title"))
    ]


def prompt_of(message) -> str:
    choices = (getattr(message, "data", None) or {}).get("choices")
    prompt = choices.get("prompt") if isinstance(choices, dict) else ""
    return str(prompt or "") or gettext("Choose")


# -- matching the answer ---------------------------------------------------------------------


def fold(text: str) -> str:
    """Lower case, accents removed, anything but letters and digits as single spaces."""
    decomposed = unicodedata.normalize("NFKD", str(text or "").casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[\W_]+", " ", plain).split())


def _items_of(items) -> list[dict]:
    if isinstance(items, Mapping):  # a message's data["choices"]
        items = items.get("items") or []
    return [item for item in items or [] if isinstance(item, Mapping)]


def _titles(item: Mapping) -> list[str]:
    names = [fold(item.get("title") or ""), fold(item.get("full_title") or "")]
    return [name for name in names if name]


def _by_title(answer: str, items: list[dict]) -> dict | None:
    said = fold(answer)
    if not said:
        return None
    exact = [item for item in items if said in _titles(item) or said == fold(item.get("id"))]
    if len(exact) == 1:
        return exact[0]
    if exact:
        return None
    if len(said.replace(" ", "")) >= PREFIX_MIN:
        started = [item for item in items if any(t.startswith(said) for t in _titles(item))]
        if len(started) == 1:
            return started[0]
        if started:
            return None
    best: dict | None = None
    best_ratio = 0.0
    tie = False
    for item in items:
        ratio = max(
            (difflib.SequenceMatcher(None, said, title).ratio() for title in _titles(item)),
            default=0.0,
        )
        if ratio > best_ratio:
            best, best_ratio, tie = item, ratio, False
        elif ratio == best_ratio and ratio > 0:
            tie = True
    if best is not None and best_ratio >= TYPO_RATIO and not tie:
        return best
    return None


def match(message, items) -> dict | None:
    """The option (one of ``items``, or of a message's ``data["choices"]``) the customer's
    ``message`` chose, or None. ``message``: an inbound Message (or its text)."""
    options = _items_of(items)
    if not options:
        return None
    if isinstance(message, str):
        data, text = {}, message
    else:
        data, text = getattr(message, "data", None) or {}, getattr(message, "text", "") or ""
    choice = data.get("choice") if isinstance(data, Mapping) else None
    if isinstance(choice, Mapping):
        ident = str(choice.get("id") or "")
        for item in options:
            if ident and str(item.get("id")) == ident:
                return item
        # A button whose id Loket does not know (e.g. from a template): its title may match.
        found = _by_title(str(choice.get("title") or ""), options)
        if found is not None:
            return found
    text = text.strip()
    if not text:
        return None
    numbered = _NUMBER.match(text)
    if numbered:
        number, rest = int(numbered.group(1)), numbered.group(2).strip()
        if 1 <= number <= len(options):
            item = options[number - 1]
            # "2" or "2. Refund": the number; "2 tickets" names no option.
            if not fold(rest) or _by_title(rest, [item]) is item:
                return item
    return _by_title(text, options)
