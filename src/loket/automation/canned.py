"""Canned replies: saved answers with variables, shared with the workspace or personal.

Who may do what:

- every member sees the workspace's shared replies and their own personal ones, never another
  member's personal ones (an admin included: those are that member's business);
- any member creates, edits and deletes their own personal replies;
- only owners and admins create, edit and delete shared ones.

A reply another member may not see is indistinguishable from one that does not exist (404).

Variables are filled in by :func:`render` from an allow-list, never by a template engine::

    {{contact.name}} {{contact.first_name}} {{contact.email}} {{contact.phone}}
    {{agent.name}} {{agent.first_name}}
    {{conversation.number}} {{conversation.subject}} {{workspace.name}}
    {{contact.attributes.<key>}} {{conversation.custom.<key>}}

``{{contact.first_name|there}}`` gives a default for when the value is missing or empty. A
known variable without a value and without a default becomes empty text. Anything else in
double braces is left exactly as written, and reported, so the agent sees and fixes it before
sending. The result is plain text: values are never interpreted again (a contact called
``{{agent.name}}`` stays literally that) and nothing is HTML-escaped or -rendered here; the
composer shows the text in a text box and sending treats it as text like anything typed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from django.db import IntegrityError, transaction
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.http import Http404
from django.utils.translation import gettext

from loket.automation.models import SHORTCUT_MAX_LENGTH, CannedReply
from loket.inbox.models import Conversation
from loket.tenancy.models import Membership
from loket.tenancy.services import NotAllowed

SHORTCUT_PATTERN = re.compile(rf"^[A-Za-z0-9_-]{{1,{SHORTCUT_MAX_LENGTH}}}$")
LANGUAGE_PATTERN = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})?$")
TITLE_MAX_LENGTH = CannedReply._meta.get_field("title").max_length
BODY_MAX_LENGTH = 10_000


class InvalidCannedReply(ValueError):
    """``str(exc)`` says what is wrong, for the person who entered it; ``field`` names the
    input it is about."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


# -- reads --------------------------------------------------------------------------------------
def _primary(language: str | None) -> str:
    """The primary language subtag: "nl" for "nl", "nl-BE" and "nl_be"; "" for nothing."""
    return (language or "").strip().lower().replace("_", "-").split("-")[0]


def visible(
    membership: Membership, language: str | None = None, query: str = ""
) -> QuerySet[CannedReply]:
    """The replies ``membership`` may see and use: the workspace's shared ones and their own
    personal ones.

    ``language`` given: only replies in that language (its primary subtag: "nl-BE" matches "nl"
    and "nl-be") and replies for any language, the language's own first. ``query``: shortcut or
    title contains it (case-insensitive). Ordered by shortcut, personal before shared."""
    queryset = CannedReply.objects.filter(workspace_id=membership.workspace_id).filter(
        Q(owner__isnull=True) | Q(owner=membership)
    )
    order: list = []
    primary = _primary(language)
    if primary:
        in_language = Q(language=primary) | Q(language__startswith=f"{primary}-")
        queryset = queryset.filter(in_language | Q(language=""))
        queryset = queryset.annotate(
            language_rank=Case(When(in_language, then=Value(0)), default=Value(1),
                               output_field=IntegerField())
        )  # fmt: skip
        order.append("language_rank")
    query = (query or "").strip().lstrip("/")
    if query:
        queryset = queryset.filter(Q(shortcut__icontains=query) | Q(title__icontains=query))
    personal_first = Case(When(owner__isnull=False, then=Value(0)), default=Value(1),
                          output_field=IntegerField())  # fmt: skip
    return queryset.order_by(*order, "shortcut", personal_first, "language", "pk")


def get_visible(membership: Membership, pk: int) -> CannedReply:
    """One reply ``membership`` may see; another workspace's or member's is a 404."""
    reply = visible(membership).filter(pk=pk).first()
    if reply is None:
        raise Http404("no such canned reply")
    return reply


def for_composer(membership: Membership, language: str | None) -> list[CannedReply]:
    """Every reply the member may use, for the composer's "/" menu: those in ``language``
    first, then those for any language, then the rest (a detected language can be wrong)."""
    primary = _primary(language)

    def rank(reply: CannedReply) -> tuple:
        own = _primary(reply.language)
        group = 1 if not own else (0 if own == primary and primary else 2)
        return (group, reply.shortcut, reply.is_shared, reply.language, reply.pk)

    return sorted(visible(membership), key=rank)


def may_manage(membership: Membership, reply: CannedReply) -> bool:
    if reply.workspace_id != membership.workspace_id:
        return False
    if reply.is_shared:
        return membership.is_admin
    return reply.owner_id == membership.pk


# -- writes -------------------------------------------------------------------------------------
def _clean_shortcut(shortcut: str) -> str:
    shortcut = (shortcut or "").strip().lstrip("/")
    if not shortcut:
        raise InvalidCannedReply(gettext("A canned reply needs a shortcut."), "shortcut")
    if not SHORTCUT_PATTERN.match(shortcut):
        raise InvalidCannedReply(
            gettext("A shortcut has at most %(limit)d letters, digits, “-” and “_” (no spaces).")
            % {"limit": SHORTCUT_MAX_LENGTH},
            "shortcut",
        )
    return shortcut.lower()


def _clean_title(title: str) -> str:
    title = " ".join((title or "").split())
    if not title:
        raise InvalidCannedReply(gettext("A canned reply needs a title."), "title")
    if len(title) > TITLE_MAX_LENGTH:
        raise InvalidCannedReply(
            gettext("A title has at most %(limit)d characters.") % {"limit": TITLE_MAX_LENGTH},
            "title",
        )
    return title


def _clean_language(language: str) -> str:
    language = (language or "").strip().lower().replace("_", "-")
    if language and not LANGUAGE_PATTERN.match(language):
        raise InvalidCannedReply(
            gettext("A language is a code such as “en”, “nl” or “pt-br”, or empty for any."),
            "language",
        )
    return language


def _clean_body(body: str) -> str:
    body = (body or "").replace("\r\n", "\n").strip()
    if not body:
        raise InvalidCannedReply(gettext("A canned reply needs a text."), "body")
    if len(body) > BODY_MAX_LENGTH:
        raise InvalidCannedReply(
            gettext("A canned reply has at most %(limit)d characters.")
            % {"limit": BODY_MAX_LENGTH},
            "body",
        )
    return body


def _taken(shortcut: str) -> InvalidCannedReply:
    return InvalidCannedReply(
        gettext("The shortcut /%(shortcut)s is already in use.") % {"shortcut": shortcut},
        "shortcut",
    )


def _check_free(reply: CannedReply) -> None:
    clash = CannedReply.objects.filter(workspace_id=reply.workspace_id, shortcut=reply.shortcut)
    clash = (
        clash.filter(owner__isnull=True)
        if reply.is_shared
        else clash.filter(owner_id=reply.owner_id)
    )
    if reply.pk is not None:
        clash = clash.exclude(pk=reply.pk)
    if clash.exists():
        raise _taken(reply.shortcut)


def _save(reply: CannedReply, **kwargs) -> None:
    _check_free(reply)
    try:
        with transaction.atomic():
            reply.save(**kwargs)
    except IntegrityError:  # taken meanwhile by someone else
        raise _taken(reply.shortcut) from None


def _require_admin_for_shared(actor: Membership) -> None:
    if not actor.is_admin:
        raise NotAllowed(gettext("Only owners and admins can manage shared canned replies."))


def create_canned_reply(
    actor: Membership,
    *,
    shortcut: str,
    title: str,
    body: str,
    language: str = "",
    shared: bool = False,
) -> CannedReply:
    """A new reply: personal to ``actor``, or shared with the workspace (admins only)."""
    if shared:
        _require_admin_for_shared(actor)
    reply = CannedReply(
        workspace_id=actor.workspace_id,
        owner=None if shared else actor,
        shortcut=_clean_shortcut(shortcut),
        title=_clean_title(title),
        language=_clean_language(language),
        body=_clean_body(body),
        created_by=actor,
    )
    _save(reply)
    return reply


def update_canned_reply(
    reply: CannedReply,
    *,
    actor: Membership,
    shortcut: str | None = None,
    title: str | None = None,
    body: str | None = None,
    language: str | None = None,
    shared: bool | None = None,
) -> CannedReply:
    """Change what is given. ``shared`` moves a reply between the workspace and the actor's own
    (an admin sharing their personal reply, or taking a shared one over as personal)."""
    if not may_manage(actor, reply):
        raise NotAllowed(
            gettext("Only owners and admins can manage shared canned replies.")
            if reply.is_shared
            else gettext("Only its owner can change a personal canned reply.")
        )
    if shortcut is not None:
        reply.shortcut = _clean_shortcut(shortcut)
    if title is not None:
        reply.title = _clean_title(title)
    if body is not None:
        reply.body = _clean_body(body)
    if language is not None:
        reply.language = _clean_language(language)
    if shared is not None and shared != (reply.is_shared):
        _require_admin_for_shared(actor)
        reply.owner = None if shared else actor
    _save(reply)
    return reply


def delete_canned_reply(reply: CannedReply, *, actor: Membership) -> None:
    if not may_manage(actor, reply):
        raise NotAllowed(
            gettext("Only owners and admins can manage shared canned replies.")
            if reply.is_shared
            else gettext("Only its owner can delete a personal canned reply.")
        )
    reply.delete()


# -- rendering ----------------------------------------------------------------------------------
class Rendered(NamedTuple):
    text: str
    # Variables left as written because they are not on the allow-list, each once, in order
    # ("contact.age", "{{ bogus }}" as "bogus").
    unknown: list[str]


# Anything in double braces on one line; what it names is checked against the allow-list.
_PLACEHOLDER = re.compile(r"\{\{([^{}\n]{0,200})\}\}")
_NAME = re.compile(r"^[a-z_]+(?:\.[A-Za-z0-9_-]+)+$")
_KEY = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def _first_word(value: str) -> str:
    words = value.split()
    return words[0] if words else ""


def _text(value) -> str:
    """A custom attribute's value as text: scalars as written, lists of scalars joined; other
    shapes (objects) have no text form and count as missing."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    return ""


def _agent_name(agent: Membership | None) -> str:
    if agent is None:
        return ""
    return (agent.user.name or "").strip() or agent.display_name


def _agent_first_name(agent: Membership | None) -> str:
    if agent is None:
        return ""
    return _first_word(agent.user.name or "") or agent.user.get_short_name()


def _values(conversation: Conversation, agent: Membership | None) -> dict[str, Callable[[], str]]:
    """The allow-list: each name and how to read its value (lazily: only what the text uses)."""
    contact = conversation.contact
    return {
        "contact.name": lambda: contact.name,
        "contact.first_name": lambda: _first_word(contact.name),
        "contact.email": lambda: contact.email,
        "contact.phone": lambda: contact.phone,
        "agent.name": lambda: _agent_name(agent),
        "agent.first_name": lambda: _agent_first_name(agent),
        "conversation.number": lambda: str(conversation.number),
        "conversation.subject": lambda: conversation.subject,
        "workspace.name": lambda: conversation.workspace.name,
    }


# Names with a free key after them, and the dictionary the key is looked up in.
_KEYED: dict[str, Callable[[Conversation], dict]] = {
    "contact.attributes.": lambda conversation: conversation.contact.attributes,
    "conversation.custom.": lambda conversation: conversation.custom_attributes,
}


def _default(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    return raw


def render_text(body: str, conversation: Conversation, agent: Membership | None = None) -> Rendered:
    """``body`` with its variables filled in for ``conversation``, written by ``agent`` (None:
    by automation, so agent variables are empty or their defaults)."""
    values = _values(conversation, agent)
    unknown: list[str] = []

    def replace(match: re.Match) -> str:
        inner = match.group(1)
        name, bar, fallback = inner.partition("|")
        name = name.strip()
        value: str | None = None
        if _NAME.match(name):
            if name in values:
                value = values[name]()
            else:
                for prefix, source in _KEYED.items():
                    key = name[len(prefix) :]
                    if name.startswith(prefix) and _KEY.match(key):
                        data = source(conversation)
                        value = _text(data.get(key)) if isinstance(data, dict) else ""
                        break
        if value is None:  # not on the allow-list: keep it visible, as written
            if name and name not in unknown:
                unknown.append(name)
            return match.group(0)
        value = (value or "").strip()
        if not value and bar:
            return _default(fallback)
        return value

    return Rendered(_PLACEHOLDER.sub(replace, body), unknown)


def render(
    reply: CannedReply, conversation: Conversation, agent: Membership | None = None
) -> Rendered:
    """The reply's text for ``conversation`` (unpacks as ``text, unknown_variables``). Nothing is
    sent. The reply, the conversation and the agent must be of one workspace."""
    if reply.workspace_id != conversation.workspace_id or (
        agent is not None and agent.workspace_id != conversation.workspace_id
    ):
        raise ValueError("the canned reply, conversation and agent are of different workspaces")
    return render_text(reply.body, conversation, agent)
