"""Threading by hints (email): references, reply-address tokens, subject references with the
participant check, reopening, and the reason recorded on every threaded message."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from loket.inbox.items import InboundContact, InboundMessage, ThreadHints
from loket.inbox.models import Conversation, ConversationStatus, Message
from loket.inbox.services import outbound, threads
from loket.inbox.services.ingest import receive
from tests import factories


def mail(channel, message_id, *, sender="ann@example.com", hints=None, text="Hello", **kw):
    item = InboundMessage(
        external_id=message_id,
        contact=InboundContact(sender, name=sender.split("@")[0], email=sender),
        text=text,
        subject=kw.pop("subject", "Question"),
        thread=hints or ThreadHints(sender_address=sender),
        **kw,
    )
    return receive(channel, item)


def why(result) -> dict:
    return Message.objects.get(pk=result.message_id).data["thread"]


def test_a_new_mail_starts_a_conversation_even_with_one_open(api_channel):
    first = mail(api_channel, "m1@x")
    second = mail(api_channel, "m2@x")
    assert first.conversation_id != second.conversation_id
    assert why(second) == {"by": "new"}
    # Chat threading (no hints) still continues the sender's open conversation.
    chat = factories.inbound(api_channel, contact_id="ann@example.com", message_id="chat-1")
    assert chat.conversation_id == second.conversation_id


def test_in_reply_to_and_references_thread_into_the_conversation(api_channel):
    first = mail(api_channel, "m1@x")
    reply = mail(api_channel, "m2@x", hints=ThreadHints(references=("unknown@y", "m1@x")))
    assert reply.conversation_id == first.conversation_id
    assert why(reply) == {"by": "references"}


def test_a_reply_to_an_agents_outbound_mail_threads_by_its_message_id(api_channel, owner):
    first = mail(api_channel, "m1@x")
    conversation = Conversation.objects.get(pk=first.conversation_id)
    sent = outbound.reply(conversation, author=owner, text="Hi Ann")
    Message.objects.filter(pk=sent.pk).update(external_id="loket.1.abc@support.example")
    # Another person, copied on the mail, answers it: same conversation, their own contact.
    answer = mail(
        api_channel,
        "m3@x",
        sender="bob@example.com",
        hints=ThreadHints(references=("loket.1.abc@support.example",)),
    )
    assert answer.conversation_id == first.conversation_id
    assert Message.objects.get(pk=answer.message_id).author_contact.email == "bob@example.com"


def test_a_signed_reply_address_token_threads_and_a_forged_one_does_not(api_channel):
    first = mail(api_channel, "m1@x")
    token = threads.reply_token(first.conversation_id)
    assert threads.conversation_for_token(token.upper()) == first.conversation_id
    by_token = mail(api_channel, "m2@x", hints=ThreadHints(reply_token=token))
    assert by_token.conversation_id == first.conversation_id
    assert why(by_token) == {"by": "reply_address"}

    forged = token[:-1] + ("a" if token[-1] != "a" else "b")
    assert threads.conversation_for_token(forged) is None
    other = mail(api_channel, "m3@x", hints=ThreadHints(reply_token=forged))
    assert other.conversation_id != first.conversation_id


def test_a_subject_reference_needs_a_participant(api_channel):
    first = mail(api_channel, "m1@x")
    number = Conversation.objects.get(pk=first.conversation_id).number
    own = mail(
        api_channel,
        "m2@x",
        hints=ThreadHints(conversation_number=number, sender_address="ann@example.com"),
    )
    assert own.conversation_id == first.conversation_id
    assert why(own) == {"by": "subject_reference"}

    stranger = mail(
        api_channel,
        "m3@x",
        sender="mallory@evil.example",
        hints=ThreadHints(conversation_number=number, sender_address="mallory@evil.example"),
    )
    assert stranger.conversation_id != first.conversation_id
    assert why(stranger) == {"by": "new"}


def test_someone_copied_on_the_conversation_may_use_the_subject_reference(api_channel):
    first = mail(
        api_channel,
        "m1@x",
        data={"email": {"cc": [{"name": "Carol", "address": "Carol@Example.com"}]}},
    )
    number = Conversation.objects.get(pk=first.conversation_id).number
    carol = mail(
        api_channel,
        "m2@x",
        sender="carol@example.com",
        hints=ThreadHints(conversation_number=number, sender_address="carol@example.com"),
    )
    assert carol.conversation_id == first.conversation_id


def test_resolved_reopens_within_the_window_and_starts_anew_after_it(api_channel):
    first = mail(api_channel, "m1@x")
    Conversation.objects.filter(pk=first.conversation_id).update(
        status=ConversationStatus.RESOLVED, resolved_at=timezone.now() - dt.timedelta(days=1)
    )
    reopened = mail(api_channel, "m2@x", hints=ThreadHints(references=("m1@x",)))
    assert reopened.conversation_id == first.conversation_id
    assert Conversation.objects.get(pk=first.conversation_id).status == ConversationStatus.OPEN

    Conversation.objects.filter(pk=first.conversation_id).update(
        status=ConversationStatus.RESOLVED, resolved_at=timezone.now() - dt.timedelta(days=30)
    )
    late = mail(api_channel, "m3@x", hints=ThreadHints(references=("m2@x",)))
    assert late.conversation_id != first.conversation_id
    previous = Conversation.objects.get(pk=first.conversation_id).number
    assert why(late) == {"by": "new_after_previous", "previous": previous, "matched": "references"}


def test_closed_conversations_and_channels_that_do_not_reopen_start_anew(api_channel):
    first = mail(api_channel, "m1@x")
    Conversation.objects.filter(pk=first.conversation_id).update(status=ConversationStatus.CLOSED)
    after_close = mail(api_channel, "m2@x", hints=ThreadHints(references=("m1@x",)))
    assert after_close.conversation_id != first.conversation_id

    api_channel.settings = {**api_channel.settings, "reopen_resolved": False}
    api_channel.save()
    Conversation.objects.filter(pk=after_close.conversation_id).update(
        status=ConversationStatus.RESOLVED, resolved_at=timezone.now()
    )
    no_reopen = mail(api_channel, "m3@x", hints=ThreadHints(references=("m2@x",)))
    assert no_reopen.conversation_id not in (first.conversation_id, after_close.conversation_id)


def test_a_reference_into_a_merged_conversation_lands_in_its_target(api_channel):
    source = mail(api_channel, "m1@x")
    target = mail(api_channel, "m2@x")
    Conversation.objects.filter(pk=source.conversation_id).update(
        merged_into_id=target.conversation_id, status=ConversationStatus.CLOSED
    )
    reply = mail(api_channel, "m3@x", hints=ThreadHints(references=("m1@x",)))
    assert reply.conversation_id == target.conversation_id


def test_a_redelivered_mail_is_a_duplicate_and_starts_nothing(api_channel):
    first = mail(api_channel, "m1@x")
    again = mail(api_channel, "m1@x")
    assert again.outcome == "duplicate"
    assert Conversation.objects.filter(contact__email="ann@example.com").count() == 1
    assert first.outcome == "created"


def test_references_of_another_workspace_never_thread(api_channel):
    other_ws = factories.workspace("other")
    other_channel = factories.api_channel(other_ws)
    theirs = mail(other_channel, "secret@x")
    number = Conversation.objects.get(pk=theirs.conversation_id).number
    ours = mail(
        api_channel,
        "m1@x",
        hints=ThreadHints(
            references=("secret@x",),
            reply_token=threads.reply_token(theirs.conversation_id),
            conversation_number=number,
            sender_address="ann@example.com",
        ),
    )
    assert (
        Conversation.objects.get(pk=ours.conversation_id).workspace_id == api_channel.workspace_id
    )
