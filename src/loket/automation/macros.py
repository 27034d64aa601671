"""Macros: named bundles of actions an agent runs on a conversation with one click ("close as
spam": label, priority low, resolve; "escalate": team Billing, priority urgent, a note).

The actions are the rules' (loket.automation.rules.actions): checked with ``clean`` when saved
and carried out with ``perform`` as the agent, so the timeline shows each change as theirs,
plus one line saying which macro they ran. An action that cannot be done (its team was
deleted, the reply window has closed) is undone and reported; the others still happen.

Who may do what, as for canned replies: every member sees the shared macros and their own
personal ones (never another member's, admins included); any member manages their own; only
owners and admins manage shared ones. A macro another member may not see is a 404.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Case, F, IntegerField, Q, QuerySet, Value, When
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext

from loket.automation.models import Macro
from loket.automation.rules import actions as rule_actions
from loket.inbox.models import (
    AuthorType,
    Conversation,
    Direction,
    Message,
    MessageKind,
)
from loket.tenancy.models import Membership
from loket.tenancy.services import NotAllowed

NAME_MAX_LENGTH = Macro._meta.get_field("name").max_length
# Actions only owners and admins put in a macro: a webhook sends conversation data elsewhere.
ADMIN_ONLY_ACTIONS = frozenset({"webhook"})


class InvalidMacro(ValueError):
    """``str(exc)`` says what is wrong; ``field`` names the input ("name" or "actions")."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


# -- reads --------------------------------------------------------------------------------------
def visible(membership: Membership) -> QuerySet[Macro]:
    """The macros ``membership`` may see and run: the workspace's shared ones and their own,
    by name (a personal one before a shared one of the same name)."""
    personal_first = Case(
        When(owner__isnull=False, then=Value(0)), default=Value(1), output_field=IntegerField()
    )
    return (
        Macro.objects.filter(workspace_id=membership.workspace_id)
        .filter(Q(owner__isnull=True) | Q(owner=membership))
        .order_by("name", personal_first, "pk")
    )


def get_visible(membership: Membership, pk: int) -> Macro:
    """One macro ``membership`` may see; another workspace's or member's is a 404."""
    macro = visible(membership).filter(pk=pk).first()
    if macro is None:
        raise Http404("no such macro")
    return macro


def may_manage(membership: Membership, macro: Macro) -> bool:
    if macro.workspace_id != membership.workspace_id:
        return False
    if macro.is_shared:
        return membership.is_admin
    return macro.owner_id == membership.pk


# -- writes -------------------------------------------------------------------------------------
def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise InvalidMacro(gettext("A macro needs a name."), "name")
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidMacro(
            gettext("A name has at most %(limit)d characters.") % {"limit": NAME_MAX_LENGTH},
            "name",
        )
    return name


def _clean_actions(raw, actor: Membership) -> list[dict]:
    if not isinstance(raw, list) or not raw:
        raise InvalidMacro(gettext("A macro needs at least one action."), "actions")
    try:
        cleaned = rule_actions.clean(raw, actor.workspace_id)
    except rule_actions.InvalidAction as exc:
        raise InvalidMacro(str(exc), "actions") from None
    if not actor.is_admin and any(item["type"] in ADMIN_ONLY_ACTIONS for item in cleaned):
        raise InvalidMacro(
            gettext("Only owners and admins can put a webhook in a macro."), "actions"
        )
    return cleaned


def _require_admin_for_shared(actor: Membership) -> None:
    if not actor.is_admin:
        raise NotAllowed(gettext("Only owners and admins can manage shared macros."))


def create_macro(actor: Membership, *, name: str, actions: list, shared: bool = False) -> Macro:
    """A new macro: personal to ``actor``, or shared with the workspace (admins only)."""
    if shared:
        _require_admin_for_shared(actor)
    macro = Macro(
        workspace_id=actor.workspace_id,
        owner=None if shared else actor,
        name=_clean_name(name),
        actions=_clean_actions(actions, actor),
        created_by=actor,
    )
    macro.save()
    return macro


def _refuse(actor: Membership, macro: Macro, verb: str) -> None:
    if not may_manage(actor, macro):
        raise NotAllowed(
            gettext("Only owners and admins can manage shared macros.")
            if macro.is_shared
            else gettext("Only its owner can change a personal macro.")
        )


def update_macro(
    macro: Macro,
    *,
    actor: Membership,
    name: str | None = None,
    actions: list | None = None,
    shared: bool | None = None,
) -> Macro:
    """Change what is given. ``shared`` moves a macro between the workspace and the actor's
    own (admins only)."""
    _refuse(actor, macro, "change")
    if name is not None:
        macro.name = _clean_name(name)
    if actions is not None:
        macro.actions = _clean_actions(actions, actor)
    if shared is not None and shared != macro.is_shared:
        _require_admin_for_shared(actor)
        macro.owner = None if shared else actor
    macro.updated_at = timezone.now()
    macro.save()
    return macro


def delete_macro(macro: Macro, *, actor: Membership) -> None:
    _refuse(actor, macro, "delete")
    macro.delete()


# -- running ------------------------------------------------------------------------------------
@dataclass
class Ran:
    """What running a macro did: ``done`` is ``[{"type", "ok", "detail"}]`` per action."""

    macro: Macro
    conversation: Conversation
    done: list[dict]

    @property
    def failed(self) -> list[dict]:
        return [item for item in self.done if not item["ok"]]

    @property
    def summary(self) -> str:
        """One sentence for the agent: all done, or which actions failed and why."""
        if not self.failed:
            return gettext("Ran “%(name)s”.") % {"name": self.macro.name}
        reasons = "; ".join(
            f"{action_label(item['type'])}: {rule_actions.described_detail(item)}"
            for item in self.failed
        )
        return gettext("Ran “%(name)s”, but not everything: %(reasons)s") % {
            "name": self.macro.name,
            "reasons": reasons,
        }


def action_label(kind: str) -> str:
    action = rule_actions.ACTIONS.get(kind)
    return str(action.label) if action else kind


def run_macro(macro: Macro, conversation: Conversation, *, actor: Membership) -> Ran:
    """Carry out the macro's actions on ``conversation`` as ``actor``, in one transaction (each
    action in a savepoint of its own: one that fails is undone and reported, the rest happen),
    and say so on the timeline. The actor must be allowed to see the macro."""
    if not (
        macro.workspace_id == conversation.workspace_id == actor.workspace_id
        and (macro.is_shared or macro.owner_id == actor.pk)
    ):
        raise Http404("no such macro")
    doer = rule_actions.Doer(conversation, member=actor)
    with transaction.atomic():
        done = rule_actions.perform(doer, list(macro.actions))
        Message.objects.create(
            workspace_id=conversation.workspace_id,
            conversation_id=conversation.pk,
            channel_id=conversation.channel_id,
            direction=Direction.OUTBOUND,
            kind=MessageKind.ACTIVITY,
            author_type=AuthorType.MEMBER,
            author_member=actor,
            text="macro_ran",
            data={
                "action": "macro_ran",
                "macro_id": macro.pk,
                "macro_name": macro.name,
                "done": done,
            },
        )
        Macro.objects.filter(pk=macro.pk).update(
            times_used=F("times_used") + 1, last_used_at=timezone.now()
        )
    for work in doer.after_commit:
        work()
    return Ran(macro, doer.conversation, done)
