"""Changing contacts: edit, merge two into one (and undo), block, and find likely duplicates.

A merge moves the source's identities and conversations to the target, fills the target's empty
fields from the source and sets ``source.merged_into``; :class:`ContactMerge` records what moved
so :func:`undo_contact_merge` can put exactly that back. Messages keep their ``author_contact``:
it says which contact record the message arrived under, and keeping it makes the undo exact.

A blocked contact's messages are still stored (ingest marks them ``data["blocked"]``, keeps
their conversation's status and creates new ones resolved) and never cause notifications.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Case, F, Max, Min, QuerySet, Value, When, Window
from django.db.models.functions import Length, Lower, Replace, Substr
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from loket import events
from loket.inbox.models import (
    AuthorType,
    Channel,
    Contact,
    ContactIdentity,
    ContactMerge,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    MessageKind,
)
from loket.inbox.services.conversations import (
    InvalidChange,
    _actor_for,
    check_actor,
    lock_in_order,
    update_conversation,
)
from loket.tenancy.models import Membership

_UNSET: Any = object()

# Field limits of the Contact model.
_LIMITS = {"name": 200, "email": 254, "phone": 40, "locale": 10}
# One message per field (the field's name and its article differ per language).
_TOO_LONG = {
    "name": gettext_lazy("the name is longer than %(limit)s characters"),
    "email": gettext_lazy("the email is longer than %(limit)s characters"),
    "phone": gettext_lazy("the phone is longer than %(limit)s characters"),
    "locale": gettext_lazy("the locale is longer than %(limit)s characters"),
}
_FILLED_FROM_SOURCE = ("name", "email", "phone", "locale")
# Separators people type in phone numbers; stripped in SQL too (portable: nested REPLACE).
_PHONE_SEPARATORS = (" ", "-", "(", ")", ".", "/", "+")


def normalise_phone(phone: str) -> str:
    """A phone number as duplicates are compared: without the separators people type and
    without an international ``00`` prefix, so ``+31 6-1234 5678`` and ``0031 612345678`` match.
    The same rule as the SQL in :func:`suggested_duplicates`."""
    for separator in _PHONE_SEPARATORS:
        phone = (phone or "").replace(separator, "")
    return phone[2:] if phone.startswith("00") else phone


def fill_profile(contact_id: int, channel_id: int, external_id: str) -> None:
    """Ask the channel's connector for a new sender's profile (their webhooks carry no name)
    and fill in what the contact still lacks; never overwrites what an agent entered meanwhile
    (each field is only written while it is still empty)."""
    from loket.inbox import ports
    from loket.jobs.policy import RetryLater

    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        return
    try:
        profile = ports.connector_for(channel.kind).contact_profile(channel, external_id)
    except ports.ProviderUnavailable as exc:
        if exc.transient:
            raise RetryLater(exc.reason, exc.retry_after) from exc
        return
    if profile is None:
        return
    contact = Contact.objects.filter(pk=contact_id, workspace_id=channel.workspace_id)
    for name in ("name", "phone", "locale"):
        value = getattr(profile, name)[: Contact._meta.get_field(name).max_length]
        if value:
            contact.filter(**{name: ""}).update(**{name: value})


def update_contact(
    contact: Contact,
    *,
    actor: Membership | None,
    name: str = _UNSET,
    email: str = _UNSET,
    phone: str = _UNSET,
    locale: str = _UNSET,
    attributes: dict[str, Any] = _UNSET,
    merge_attributes: dict[str, Any] | None = None,
    keep_existing: bool = False,
    max_attributes: int | None = None,
) -> Contact:
    """Apply the given changes; arguments left out stay as they are.

    ``attributes`` replaces the contact's attributes; ``merge_attributes`` merges into what the
    contact has at that moment (read under a row lock, so two writers never lose each other's
    keys): its keys replace theirs, unless ``keep_existing`` (then only keys the contact does not
    have yet are added), and with ``max_attributes`` a new key is added only while the contact
    has fewer than that many."""
    check_actor(actor, contact.workspace_id)
    changes: dict[str, Any] = {}
    for name_, value in (("name", name), ("email", email), ("phone", phone), ("locale", locale)):
        if value is _UNSET:
            continue
        value = (value or "").strip()
        if len(value) > _LIMITS[name_]:
            raise InvalidChange(_TOO_LONG[name_] % {"limit": _LIMITS[name_]})
        changes[name_] = value
    if changes.get("email"):
        try:
            validate_email(changes["email"])
        except ValidationError:
            raise InvalidChange(_("that is not a valid email address")) from None
    if attributes is not _UNSET:
        if not isinstance(attributes, dict) or not all(isinstance(k, str) for k in attributes):
            raise InvalidChange(_("attributes must map names to values"))
        changes["attributes"] = attributes
    if merge_attributes is not None:
        if attributes is not _UNSET:
            raise TypeError("give attributes or merge_attributes, not both")
        if not isinstance(merge_attributes, dict) or not all(
            isinstance(k, str) for k in merge_attributes
        ):
            raise InvalidChange(_("attributes must map names to values"))
    if not changes and not merge_attributes:
        return contact
    with transaction.atomic():
        if merge_attributes:
            current = (
                Contact.objects.select_for_update()
                .filter(pk=contact.pk)
                .values_list("attributes", flat=True)
                .first()
            )
            merged = dict(current or {})
            for key, value in merge_attributes.items():
                if key in merged:
                    if not keep_existing:
                        merged[key] = value
                elif max_attributes is None or len(merged) < max_attributes:
                    merged[key] = value
            if merged != (current or {}):
                changes["attributes"] = merged
            contact.attributes = merged
        if changes:
            Contact.objects.filter(pk=contact.pk).update(**changes, updated_at=timezone.now())
    for name_, value in changes.items():
        setattr(contact, name_, value)
    return contact


def identify(
    channel, external_id: str, *, name: str = "", email: str = "", phone: str = ""
) -> Contact:
    """The contact behind ``external_id`` on ``channel`` (created with its identity when new),
    with what the person told about themselves filled in where it was still empty; e.g. a
    live-chat visitor's pre-chat form before their first message."""
    from django.db import IntegrityError

    from loket.inbox.models import ContactIdentity

    given = {"name": name[:200], "email": email[:254], "phone": phone[:40]}
    for _attempt in range(2):
        identity = (
            ContactIdentity.objects.filter(channel=channel, external_id=external_id)
            .select_related("contact")
            .first()
        )
        if identity is not None:
            contact = identity.contact
            missing = {k: v for k, v in given.items() if v and not getattr(contact, k)}
            if missing:
                Contact.objects.filter(pk=contact.pk).update(**missing, updated_at=timezone.now())
                for key, value in missing.items():
                    setattr(contact, key, value)
            return contact
        try:
            with transaction.atomic():
                contact = Contact.objects.create(workspace_id=channel.workspace_id, **given)
                ContactIdentity.objects.create(
                    workspace_id=channel.workspace_id,
                    contact=contact,
                    channel=channel,
                    external_id=external_id,
                )
                return contact
        except IntegrityError:  # a message from the same visitor created it a moment ago
            continue
    raise RuntimeError(f"could not identify {external_id!r}")


def set_remote_images(contact: Contact, allowed: bool, *, actor: Membership | None) -> Contact:
    """Whether remote images in this contact's emails load without the agent asking."""
    check_actor(actor, contact.workspace_id)
    Contact.objects.filter(pk=contact.pk).update(
        load_remote_images=allowed, updated_at=timezone.now()
    )
    contact.load_remote_images = allowed
    return contact


def block_contact(contact: Contact, *, actor: Membership | None) -> Contact:
    """From now on the contact's messages are stored marked and notify nobody; their open
    conversations are resolved, so they leave every inbox view (new ones start resolved)."""
    check_actor(actor, contact.workspace_id)
    if contact.blocked_at is None:
        now = timezone.now()
        with transaction.atomic():
            # Conditional, so two agents blocking at once keep the first time.
            Contact.objects.filter(pk=contact.pk, blocked_at__isnull=True).update(
                blocked_at=now, updated_at=now
            )
            contact.refresh_from_db(fields=["blocked_at"])
            active = Conversation.objects.filter(
                workspace_id=contact.workspace_id,
                contact=contact,
                status__in=[
                    ConversationStatus.OPEN,
                    ConversationStatus.PENDING,
                    ConversationStatus.SNOOZED,
                ],
            )
            for conversation in active:
                update_conversation(conversation, actor=actor, status=ConversationStatus.RESOLVED)
    return contact


def unblock_contact(contact: Contact, *, actor: Membership | None) -> Contact:
    check_actor(actor, contact.workspace_id)
    if contact.blocked_at is not None:
        Contact.objects.filter(pk=contact.pk).update(blocked_at=None, updated_at=timezone.now())
        contact.blocked_at = None
    return contact


# -- merging -----------------------------------------------------------------------------------
def _conversation_activity(
    workspace_id: int,
    conversations: list[tuple[int, int]],
    actor: Membership | None,
    action: str,
    **data,
) -> None:
    """An activity line in each (conversation id, channel id), one INSERT for all, and a
    ``conversation.updated`` event each: the conversation now belongs to ``data["contact_id"]``."""
    Message.objects.bulk_create(
        Message(
            workspace_id=workspace_id,
            conversation_id=conversation_id,
            channel_id=channel_id,
            direction=Direction.OUTBOUND,
            kind=MessageKind.ACTIVITY,
            author_type=AuthorType.MEMBER if actor else AuthorType.SYSTEM,
            author_member=actor,
            text=action,
            data={"action": action, **data},
        )
        for conversation_id, channel_id in conversations
    )
    who = _actor_for(actor)
    for conversation_id, _channel_id in conversations:
        events.emit(
            events.ConversationUpdated(
                workspace_id, who, conversation_id, {"contact_id": data["contact_id"]}
            )
        )


@transaction.atomic
def merge_contacts(source: Contact, target: Contact, *, actor: Membership | None) -> ContactMerge:
    """Make ``source`` part of ``target``: its identities and conversations move there."""
    if source.pk == target.pk:
        raise InvalidChange(_("a contact cannot be merged into itself"))
    if source.workspace_id != target.workspace_id:
        raise InvalidChange(_("the contacts belong to different workspaces"))
    check_actor(actor, target.workspace_id)
    locked = lock_in_order(Contact, source.pk, target.pk)
    source, target = locked[source.pk], locked[target.pk]
    if source.merged_into_id is not None:
        raise InvalidChange(
            _("%(name)s was already merged into another contact") % {"name": source}
        )
    if target.merged_into_id is not None:
        raise InvalidChange(_("%(name)s was merged into another contact") % {"name": target})

    identity_ids = sorted(
        ContactIdentity.objects.filter(contact=source).values_list("pk", flat=True)
    )
    conversations = sorted(
        Conversation.objects.filter(contact=source).values_list("pk", "channel_id")
    )
    conversation_ids = [pk for pk, _ in conversations]
    ContactIdentity.objects.filter(pk__in=identity_ids).update(contact=target)
    Conversation.objects.filter(pk__in=conversation_ids).update(contact=target)

    # Fill in what the target does not know; never overwrite what it does.
    filled = {
        name: getattr(source, name)
        for name in _FILLED_FROM_SOURCE
        if getattr(source, name) and not getattr(target, name)
    }
    attributes_added = {
        key: value for key, value in source.attributes.items() if key not in target.attributes
    }
    for name, value in filled.items():
        setattr(target, name, value)
    if attributes_added:
        target.attributes = {**target.attributes, **attributes_added}
    target.save(update_fields=[*filled, "attributes", "updated_at"])
    source.merged_into = target
    source.save(update_fields=["merged_into", "updated_at"])

    merge = ContactMerge.objects.create(
        workspace_id=target.workspace_id,
        source=source,
        target=target,
        actor=actor,
        moved={
            "identity_ids": identity_ids,
            "conversation_ids": conversation_ids,
            "filled": filled,
            "attributes_added": attributes_added,
        },
    )
    _conversation_activity(
        target.workspace_id, conversations, actor, "contact_merged",
        contact_id=target.pk, contact_name=str(target), from_contact_id=source.pk,
        from_contact_name=str(source), merge_id=merge.pk,
    )  # fmt: skip
    return merge


@transaction.atomic
def undo_contact_merge(merge: ContactMerge, *, actor: Membership | None) -> ContactMerge:
    """Move exactly the merged identities and conversations back; clear what was filled in
    (unless someone changed it since)."""
    check_actor(actor, merge.workspace_id)
    merge = ContactMerge.objects.select_for_update().get(pk=merge.pk)
    if merge.undone_at is not None:
        raise InvalidChange(_("this merge was already undone"))
    locked = lock_in_order(Contact, merge.source_id, merge.target_id)
    source, target = locked[merge.source_id], locked[merge.target_id]
    if target.merged_into_id is not None:
        raise InvalidChange(
            _("%(name)s was merged into another contact since: undo that first") % {"name": target}
        )
    if source.merged_into_id != target.pk:
        raise InvalidChange(
            _("%(source)s is no longer merged into %(target)s")
            % {"source": source, "target": target}
        )

    moved = merge.moved
    identity_ids = sorted(
        ContactIdentity.objects.filter(
            contact=target, pk__in=moved.get("identity_ids", [])
        ).values_list("pk", flat=True)
    )
    conversations = sorted(
        Conversation.objects.filter(
            contact=target, pk__in=moved.get("conversation_ids", [])
        ).values_list("pk", "channel_id")
    )
    conversation_ids = [pk for pk, _ in conversations]
    ContactIdentity.objects.filter(pk__in=identity_ids).update(contact=source)
    Conversation.objects.filter(pk__in=conversation_ids).update(contact=source)

    cleared = [
        name
        for name, value in moved.get("filled", {}).items()
        if name in _FILLED_FROM_SOURCE and getattr(target, name) == value
    ]
    for name in cleared:
        setattr(target, name, "")
    attributes = dict(target.attributes)
    for key, value in moved.get("attributes_added", {}).items():
        if key in attributes and attributes[key] == value:
            del attributes[key]
    target.attributes = attributes
    target.save(update_fields=[*cleared, "attributes", "updated_at"])
    source.merged_into = None
    source.save(update_fields=["merged_into", "updated_at"])

    merge.undone_at = timezone.now()
    merge.save(update_fields=["undone_at"])
    _conversation_activity(
        source.workspace_id, conversations, actor, "contact_unmerged",
        contact_id=source.pk, contact_name=str(source), from_contact_id=target.pk,
        from_contact_name=str(target), merge_id=merge.pk,
    )  # fmt: skip
    return merge


# -- suggested duplicates ----------------------------------------------------------------------
@dataclass(frozen=True)
class Evidence:
    field: str  # "email" or "phone"
    value: str  # the matching value: the email in lower case, the phone by normalise_phone


@dataclass
class DuplicatePair:
    """Two contacts that look like one person; ``first`` is the older (the merge target)."""

    first: Contact
    second: Contact
    evidence: list[Evidence] = field(default_factory=list)


_MIN_PHONE_DIGITS = 6  # shorter "numbers" are extensions or typos, not evidence


def _phone_digits():
    expression = F("phone")
    for separator in _PHONE_SEPARATORS:
        expression = Replace(expression, Value(separator), Value(""))
    return expression


def _keyed_contacts(workspace_id: int, field_name: str) -> QuerySet:
    """The workspace's live contacts with a ``key`` for ``field_name``: the email in lower
    case, or the phone number's digits without an international ``00`` prefix (the same rule as
    :func:`normalise_phone`). ``field > ''`` keeps the scan within the (workspace, field) index."""
    live = Contact.objects.filter(
        workspace_id=workspace_id, merged_into__isnull=True, **{f"{field_name}__gt": ""}
    )
    if field_name == "email":
        return live.annotate(key=Lower("email"))
    return (
        live.annotate(digits=_phone_digits())
        .annotate(
            key=Case(
                When(digits__startswith="00", then=Substr("digits", 3)),
                default=F("digits"),
            )
        )
        .annotate(key_length=Length("key"))
        .filter(key_length__gte=_MIN_PHONE_DIGITS)
    )


def _duplicate_rows(workspace_id: int, field_name: str, *, limit: int) -> list[dict]:
    """Rows (key, pk, first): one per contact sharing its key with an older live contact
    (``first``, the oldest of them), the groups with the newest contact first, at most
    ``limit``. One query: window functions, filtered in the wrapping SELECT Django generates."""
    group = {"partition_by": [F("key")]}
    rows = (
        _keyed_contacts(workspace_id, field_name)
        .annotate(
            first=Window(Min("pk"), **group),
            newest=Window(Max("pk"), **group),
        )
        .filter(first__lt=F("pk"))
        .order_by("-newest", "key", "pk")
        .values("key", "pk", "first")
    )
    return list(rows[:limit])


def suggested_duplicates(workspace_id: int, limit: int = 50) -> list[DuplicatePair]:
    """Pairs of live contacts with the same email (ignoring case) or the same phone number
    (ignoring separators, see :func:`normalise_phone`), most recent first, each with its
    evidence. A group of three or more gives one pair per later contact, each paired with the
    group's oldest (the natural target).

    Five queries whatever the size of the result: one per field (a scan of the workspace's
    entries in the ``contact_ws_email`` / ``contact_ws_phone`` index range with a non-empty
    value), then the contacts shown with their identities and channels.
    """
    pairs: dict[tuple[int, int], list[Evidence]] = {}
    for field_name in ("email", "phone"):
        for row in _duplicate_rows(workspace_id, field_name, limit=limit):
            pairs.setdefault((row["first"], row["pk"]), []).append(Evidence(field_name, row["key"]))
    # The most recently created duplicate first, whichever evidence found it.
    order = sorted(pairs, key=lambda pair: -pair[1])[:limit]
    ids = {pk for pair in order for pk in pair}
    contacts = Contact.objects.filter(pk__in=ids).prefetch_related("identities__channel")
    by_id = {contact.pk: contact for contact in contacts}
    return [DuplicatePair(by_id[a], by_id[b], pairs[(a, b)]) for a, b in order]
