"""The search selector on both backends: what matches, what never does, odd input, escaping,
ranking windows and an index that follows every write."""

from __future__ import annotations

import importlib
import itertools

import pytest
from django.db import connection

from loket.inbox import search as search_module
from loket.inbox.items import InboundContact, InboundMessage
from loket.inbox.models import Contact, Conversation, Message, MessageKind
from loket.inbox.search import parse, search
from loket.inbox.selectors import BadCursor
from loket.inbox.services.conversations import update_conversation
from loket.inbox.services.ingest import receive
from loket.inbox.services.outbound import reply
from tests import factories

_ids = itertools.count(1)


def customer_says(channel, text, *, contact="c-1", name="Customer", email="", phone=""):
    """One customer message through the ingest path; returns the stored message."""
    result = receive(
        channel,
        InboundMessage(
            external_id=f"search-{next(_ids)}",
            contact=InboundContact(contact, name=name, email=email, phone=phone),
            text=text,
        ),
    )
    return Message.objects.get(pk=result.message_id)


def message_ids(owner, query, **kwargs) -> list[int]:
    return [hit.pk for hit in search(owner, query, **kwargs).messages]


def contact_ids(owner, query) -> list[int]:
    return [hit.pk for hit in search(owner, query).contacts]


# --- contacts --------------------------------------------------------------------------------
def test_contacts_match_by_name_email_and_phone(owner, api_channel):
    ann = customer_says(api_channel, "hi", contact="a", name="Ann Visser", email="ann@shop.example")
    bob = customer_says(api_channel, "hi", contact="b", name="Bob", phone="+31 6 1234 5678")
    ann_id, bob_id = ann.author_contact_id, bob.author_contact_id
    assert contact_ids(owner, "Visser") == [ann_id]
    assert contact_ids(owner, "ann visser") == [ann_id]
    assert contact_ids(owner, "ann@shop.example") == [ann_id]
    assert contact_ids(owner, "shop") == [ann_id]  # a part of the address
    assert contact_ids(owner, "Viss") == [ann_id]  # while typing
    assert contact_ids(owner, "0612345678") == []
    assert contact_ids(owner, "+31612345678") == [bob_id]  # typed without spaces
    assert contact_ids(owner, "+31 6 1234") == [bob_id]
    assert contact_ids(owner, "bob") == [bob_id]
    assert contact_ids(owner, "carol") == []


def test_an_exact_contact_comes_before_prefix_matches(owner, api_channel):
    customer_says(api_channel, "hi", contact="a", name="Janneke Bos")
    jan = customer_says(api_channel, "hi", contact="b", name="Jan")
    customer_says(api_channel, "hi", contact="c", name="Jansen Smit")
    assert contact_ids(owner, "jan")[0] == jan.author_contact_id
    assert len(contact_ids(owner, "jan")) == 3


def test_merged_contacts_are_not_listed(owner, api_channel):
    ann = customer_says(api_channel, "hi", contact="a", name="Ann")
    other = customer_says(api_channel, "hi", contact="b", name="Ann Two")
    Contact.objects.filter(pk=other.author_contact_id).update(merged_into=ann.author_contact_id)
    assert contact_ids(owner, "ann") == [ann.author_contact_id]


# --- message text ----------------------------------------------------------------------------
def test_messages_match_customer_text_replies_and_notes_but_not_activity(owner, api_channel):
    inbound = customer_says(api_channel, "The parcel never arrived")
    conversation = Conversation.objects.get(pk=inbound.conversation_id)
    answer = reply(conversation, author=owner, text="Sorry, a new parcel is on its way")
    note = reply(
        conversation, author=owner, text="Parcel lost by the courier", kind=MessageKind.NOTE
    )
    update_conversation(conversation, actor=owner, status="resolved")
    activity = Message.objects.get(conversation=conversation, kind=MessageKind.ACTIVITY)
    assert set(message_ids(owner, "parcel")) == {inbound.pk, answer.pk, note.pk}
    assert message_ids(owner, "courier") == [note.pk]
    assert activity.text and message_ids(owner, activity.text) == []


def test_a_hit_says_where_the_message_is(owner, api_channel):
    message = customer_says(api_channel, "Where is my invoice?", name="Ann Visser")
    conversation = message.conversation
    (hit,) = search(owner, "invoice").messages
    assert hit.pk == message.pk
    assert hit.conversation_id == conversation.pk
    assert hit.conversation_number == conversation.number
    assert hit.contact_name == "Ann Visser"
    assert hit.channel_name == api_channel.name
    assert hit.created_at == message.created_at
    assert "<mark>invoice</mark>" in hit.snippet


def test_all_words_must_match(owner, api_channel):
    both = customer_says(api_channel, "refund for the broken charger", contact="a")
    customer_says(api_channel, "refund for the shoes", contact="b")
    assert message_ids(owner, "refund charger") == [both.pk]


def test_english_stemming(owner, api_channel):
    message = customer_says(api_channel, "I placed two orders yesterday")
    assert message_ids(owner, "order") == [message.pk]
    assert message_ids(owner, "ordered ") == [message.pk]  # a finished word, stemmed


@pytest.mark.postgres
def test_dutch_stemming_on_postgres(owner, api_channel):
    message = customer_says(api_channel, "Mijn bestellingen zijn nog niet bezorgd")
    assert message_ids(owner, "bestelling ") == [message.pk]
    highlighted = search(owner, "bestelling ").messages[0].snippet
    assert "<mark>bestellingen</mark>" in highlighted


@pytest.mark.sqlite
def test_dutch_words_match_as_typed_on_sqlite(owner, api_channel):
    message = customer_says(api_channel, "Mijn bestellingen zijn nog niet bezorgd")
    assert message_ids(owner, "bestellingen") == [message.pk]
    assert message_ids(owner, "bestel") == [message.pk]  # the prefix while typing


def test_the_last_word_matches_as_a_prefix_while_typing(owner, api_channel):
    message = customer_says(api_channel, "My subscription renewal failed")
    assert message_ids(owner, "subscr") == [message.pk]
    assert message_ids(owner, "subscr ") == []  # a finished word is a whole word
    assert message_ids(owner, "su") == []  # too short to expand


def test_highlighting_escapes_the_stored_text(owner, api_channel):
    customer_says(api_channel, "<script>alert('x')</script> <b>refund</b> & more")
    (hit,) = search(owner, "refund").messages
    assert "<script" not in hit.snippet and "<b>" not in hit.snippet
    assert "&lt;script&gt;" in hit.snippet
    assert "&lt;b&gt;<mark>refund</mark>&lt;/b&gt; &amp; more" in hit.snippet


def test_a_long_message_is_cut_around_the_match(owner, api_channel):
    text = "filler " * 300 + "the needle is here " + "tail " * 300
    customer_says(api_channel, text)
    snippet = search(owner, "needle").messages[0].snippet
    assert "<mark>needle</mark>" in snippet
    assert snippet.startswith("…") and snippet.endswith("…")
    assert len(snippet) < 600


def test_another_workspaces_rows_never_appear(owner, api_channel):
    other_ws = factories.workspace("other")
    other_channel = factories.api_channel(other_ws)
    other = customer_says(other_channel, "secret refund plan", name="Zed Secret")
    mine = customer_says(api_channel, "my refund", name="Ann")
    results = search(owner, "refund")
    assert [hit.pk for hit in results.messages] == [mine.pk]
    assert search(owner, "secret").messages == []
    assert search(owner, "zed").contacts == []
    other_owner = factories.owner_of(other_ws)
    assert message_ids(other_owner, "refund") == [other.pk]


@pytest.mark.parametrize(
    "query",
    ['"', "*", "NEAR(", "-", "a OR", "'", "\\", "", "   ", "AND", "(x", "x)", "text:x", "^x",
     "a" * 500, "x\x00y", "😀", "'; DROP TABLE inbox_message; --", '"unclosed', "NOT", "-refund",
     "refund*", "re*und", "{refund}", "refund:*", "!refund", "refund & | !", "@@", "<->"],
)  # fmt: skip
def test_odd_queries_do_not_fail(owner, api_channel, query):
    customer_says(api_channel, "please refund me", name="Ann")
    results = search(owner, query)
    assert isinstance(results.messages, list) and isinstance(results.contacts, list)


def test_punctuation_around_words_is_ignored(owner, api_channel):
    message = customer_says(api_channel, "please refund me")
    assert message_ids(owner, '"refund"') == [message.pk]
    assert message_ids(owner, "refund!") == [message.pk]
    assert message_ids(owner, "NEAR(refund") == []  # "near" is a word too, and not in the text


def test_an_empty_query_finds_nothing(owner, api_channel):
    customer_says(api_channel, "anything")
    assert search(owner, "").messages == [] and search(owner, " * ").contacts == []
    assert not parse("- * ()")


def test_query_terms_are_bounded():
    terms = parse(" ".join(f"word{i}" for i in range(50)))
    assert len(terms.pieces) == search_module.MAX_PIECES
    assert parse("x" * 1000).pieces[0] == "x" * search_module.MAX_PIECE_CHARS


# --- ranking and pages -----------------------------------------------------------------------
def test_relevance_first_then_recency(owner, api_channel):
    old_strong = customer_says(api_channel, "refund refund refund, I want my refund", contact="a")
    weak = customer_says(api_channel, "about the refund and many other words here", contact="b")
    new_weak = customer_says(api_channel, "about the refund and many other words here", contact="c")
    assert message_ids(owner, "refund") == [old_strong.pk, new_weak.pk, weak.pk]


def test_pages_walk_every_match_once(owner, api_channel, monkeypatch):
    monkeypatch.setattr(search_module, "CANDIDATES", 4)  # several ranking windows
    expected = {
        customer_says(api_channel, f"refund number {i}", contact=f"c{i}").pk for i in range(11)
    }
    customer_says(api_channel, "unrelated", contact="x")
    seen, cursor, pages = [], None, 0
    while True:
        results = search(owner, "refund", limit=3, cursor=cursor)
        seen += [hit.pk for hit in results.messages]
        pages += 1
        cursor = results.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(expected) and len(seen) == len(expected)
    assert pages >= 4
    # The windows go from newer to older messages.
    assert min(seen[:3]) > max(seen[-2:])


def test_contacts_come_with_the_first_page_only(owner, api_channel, monkeypatch):
    monkeypatch.setattr(search_module, "CANDIDATES", 2)
    for i in range(3):
        customer_says(api_channel, "refund please", contact=f"c{i}", name="Refund Person")
    first = search(owner, "refund", limit=1)
    assert first.contacts and first.next_cursor
    assert search(owner, "refund", limit=1, cursor=first.next_cursor).contacts == []


@pytest.mark.parametrize(
    "cursor", ["nonsense", "MC4w", "LTEuMA", "OTk5OTk5OTk5OTk5OTk5OTk5OTkuMA", "€"]
)
def test_a_foreign_cursor_is_refused(owner, cursor):
    with pytest.raises(BadCursor):
        search(owner, "refund", cursor=cursor)


# --- the index follows writes ----------------------------------------------------------------
def test_the_index_follows_updates_and_deletes(owner, api_channel):
    message = customer_says(api_channel, "my umbrella broke")
    assert message_ids(owner, "umbrella") == [message.pk]
    Message.objects.filter(pk=message.pk).update(text="my parasol broke")
    assert message_ids(owner, "umbrella") == []
    assert message_ids(owner, "parasol") == [message.pk]
    message.refresh_from_db()
    message.text = "my sunshade broke"
    message.save()
    assert message_ids(owner, "parasol") == [] and message_ids(owner, "sunshade") == [message.pk]
    Message.objects.filter(pk=message.pk).update(kind=MessageKind.ACTIVITY)
    assert message_ids(owner, "sunshade") == []
    Message.objects.filter(pk=message.pk).update(kind=MessageKind.NOTE)
    assert message_ids(owner, "sunshade") == [message.pk]
    Message.objects.filter(pk=message.pk).delete()
    assert message_ids(owner, "sunshade") == []


def test_the_index_follows_contact_changes(owner, api_channel):
    message = customer_says(api_channel, "hi", name="Ann")
    contact = Contact.objects.get(pk=message.author_contact_id)
    contact.name = "Annabel Smit"
    contact.phone = "+44 20 7946 0000"
    contact.save()
    assert contact_ids(owner, "annabel") == [contact.pk]
    assert contact_ids(owner, "442079") == [contact.pk]
    Contact.objects.filter(pk=contact.pk).update(name="Bea")
    assert contact_ids(owner, "annabel") == [] and contact_ids(owner, "bea") == [contact.pk]


def test_messages_stored_by_the_ingest_path_are_found_at_once(owner, api_channel):
    result = factories.inbound(api_channel, "Kortingscode werkt niet", message_id="x-1")
    assert message_ids(owner, "kortingscode") == [result.message_id]
    duplicate = factories.inbound(api_channel, "Kortingscode werkt niet", message_id="x-1")
    assert duplicate.outcome == "duplicate"
    assert message_ids(owner, "kortingscode") == [result.message_id]


# --- the indexes themselves ------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)  # SQLite's schema editor works outside a transaction
def test_the_migration_can_be_reversed_and_applied_again(owner, api_channel):
    migration = importlib.import_module("loket.inbox.migrations.0004_search")
    message = customer_says(api_channel, "reversible umbrella", name="Ann")
    with connection.schema_editor() as editor:
        migration.drop_search_indexes(None, editor)
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        columns = [
            c.name for c in connection.introspection.get_table_description(cursor, "inbox_message")
        ]
    assert "inbox_message_fts" not in tables and "search_document" not in columns
    with connection.schema_editor() as editor:
        migration.create_search_indexes(None, editor)
    assert message_ids(owner, "umbrella") == [message.pk]  # existing rows are indexed
    assert contact_ids(owner, "ann") == [message.author_contact_id]


@pytest.mark.sqlite
def test_lost_sqlite_triggers_are_made_again(owner, api_channel):
    # What a table rebuild by a later migration does to them.
    with connection.cursor() as cursor:
        for name in search_module.SQLITE_TRIGGERS:
            cursor.execute(f"DROP TRIGGER {name}")
    missed = customer_says(api_channel, "written while the triggers were gone", name="Ann")
    assert message_ids(owner, "triggers") == []
    assert search_module.ensure_sqlite_index() is True
    assert message_ids(owner, "triggers") == [missed.pk]
    assert contact_ids(owner, "ann") == [missed.author_contact_id]
    assert search_module.ensure_sqlite_index() is False
    later = customer_says(api_channel, "and the triggers work again", contact="c-2")
    assert set(message_ids(owner, "triggers")) == {missed.pk, later.pk}


@pytest.mark.postgres
def test_postgres_finds_a_rare_word_through_the_gin_indexes(owner, api_channel):
    """The queries repeat the indexed expressions exactly (else no index could serve them), and
    the planner sees the words (no generic plan that would walk every row for a rare one)."""
    first = customer_says(api_channel, "hello", name="Ann")
    conversation = first.conversation
    Contact.objects.bulk_create(
        Contact(workspace_id=owner.workspace_id, name=f"Person {i}", email=f"p{i}@example.com")
        for i in range(3000)
    )
    Message.objects.bulk_create(
        Message(workspace_id=owner.workspace_id, conversation=conversation, channel=api_channel,
                direction="in", author_type="contact", text=f"ordinary message {i} " * 5)
        for i in range(3000)
    )  # fmt: skip
    rare = customer_says(api_channel, "a zeppelin arrived", contact="z", name="Zelda Zeppelin")
    seen = []

    def record(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE inbox_contact")
        cursor.execute("ANALYZE inbox_message")
    with connection.execute_wrapper(record):
        results = search(owner, "zeppelin")
    assert [hit.pk for hit in results.messages] == [rare.pk]
    assert [hit.pk for hit in results.contacts] == [rare.author_contact_id]
    contact_sql = next(sql for sql in seen if "FROM inbox_contact\n" in sql)
    message_sql = next(sql for sql in seen if "WITH walk" in sql)
    plans = {}
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # as the search does
        for name, sql in (("contact", contact_sql), ("message", message_sql)):
            cursor.execute("EXPLAIN " + sql)
            plans[name] = "\n".join(row[0] for row in cursor.fetchall())
    assert "Bitmap Index Scan on inbox_contact_search" in plans["contact"], plans["contact"]
    assert "Bitmap Index Scan on inbox_message_search" in plans["message"], plans["message"]


def test_find_contacts_is_the_contact_half_of_search(owner, api_channel):
    ann = customer_says(api_channel, "hi", contact="a", name="Ann Visser")
    customer_says(api_channel, "Visser wrote this", contact="b", name="Bob")
    hits = search_module.find_contacts(owner, "viss", limit=5)
    assert [hit.pk for hit in hits] == [ann.author_contact_id]
    assert hits[0].display_name == "Ann Visser"
    assert search_module.find_contacts(owner, "  ") == []
