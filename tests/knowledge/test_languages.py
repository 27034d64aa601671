"""Language detection after ingest (loket.knowledge.languages): a conversation without a language
gets its customer's, among the workspace's languages, from a background sweep — never in the
ingest's transaction; a message too short to tell leaves it for the next one; a language
already set stays; rules hear of it as a change."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from loket.inbox.models import Conversation, Message
from loket.knowledge import languages
from loket.knowledge.models import SweepMark
from tests import factories

_seen: list = []


def remember(event) -> None:
    _seen.append(event)


@pytest.fixture
def captured_events(settings):
    """Events as emitted (through the enqueuers' hook, inside the emitting transaction)."""
    from loket import events

    settings.LOKET_EVENT_ENQUEUERS = [*settings.LOKET_EVENT_ENQUEUERS, f"{__name__}.remember"]
    events._enqueuers.cache_clear()
    _seen.clear()
    yield _seen
    events._enqueuers.cache_clear()


def conversation_of(channel, text, contact):
    result = factories.inbound(channel, text, contact_id=contact, name="Klant")
    return Conversation.objects.get(pk=result.conversation_id)


def test_detect_among_the_workspaces_languages():
    assert languages.detect("Mijn bestelling is nog steeds niet aangekomen", ["en", "nl"])[0] == (
        "nl"
    )
    assert languages.detect("My order still has not arrived, can you check?", ["en", "nl"])[0] == (
        "en"
    )
    assert languages.detect("Hallo!", ["en", "nl"]) == (None, 0.0)  # too short to tell
    assert (
        languages.detect("Meine Bestellung ist noch nicht angekommen", ["en", "nl", "de"])[0]
        == "de"
    )
    assert languages.detect("whatever is written here", ["nl"])[0] == "nl"  # one language


def test_the_sweep_gives_new_conversations_their_language(workspace, captured_events):
    workspace.languages = ["en", "nl", "de"]
    workspace.save()
    channel = factories.api_channel(workspace)
    dutch = conversation_of(channel, "Hoi, kan ik mijn boeking nog omzetten naar morgen?", "a")
    short = conversation_of(channel, "Hi!", "b")
    german = conversation_of(channel, "Ich möchte meine Buchung bitte stornieren", "c")
    assert dutch.language == ""  # nothing decided in the ingest's transaction
    assert languages.sweep() == 2
    dutch.refresh_from_db()
    short.refresh_from_db()
    german.refresh_from_db()
    assert (dutch.language, short.language, german.language) == ("nl", "", "de")
    changed = [e for e in captured_events if e.name == "conversation.updated"]
    assert {(e.conversation_id, e.changes["language"]) for e in changed} >= {
        (dutch.pk, "nl"),
        (german.pk, "de"),
    }
    # The short one's customer writes more: the next sweep decides; the others stay.
    factories.inbound(channel, "I would like to change my booking to Friday", contact_id="b")
    factories.inbound(channel, "Actually, can you answer in English please?", contact_id="a")
    assert languages.sweep() == 1
    short.refresh_from_db()
    dutch.refresh_from_db()
    assert (short.language, dutch.language) == ("en", "nl")
    assert languages.sweep() == 0  # everything read once
    assert SweepMark.objects.get(name=languages.SWEEP).last_id > 0


def test_the_periodic_job_runs_the_sweep(workspace):
    channel = factories.api_channel(workspace)
    conversation = conversation_of(channel, "Where can I find my invoice for last month?", "x")
    from loket.knowledge.tasks import detect_languages

    detect_languages.call()
    conversation.refresh_from_db()
    assert conversation.language == "en"


def test_catching_up_reads_every_batch(workspace):
    channel = factories.api_channel(workspace)
    conversations = [
        conversation_of(channel, f"Could you please check my booking number {n} again?", f"c{n}")
        for n in range(5)
    ]
    assert languages.catch_up(limit=2) == 5  # three batches of at most two messages
    assert {
        c.language for c in Conversation.objects.filter(pk__in=[c.pk for c in conversations])
    } == {"en"}


def test_a_message_is_read_once_it_has_settled(workspace, settings):
    settings.LOKET_SWEEP_SETTLE_SECONDS = 60
    channel = factories.api_channel(workspace)
    conversation = conversation_of(channel, "Where can I find the timetable for Texel?", "s")
    assert languages.catch_up() == 0  # too fresh: a lower id might still be committing
    Message.objects.filter(conversation=conversation).update(
        created_at=timezone.now() - dt.timedelta(seconds=61)
    )
    assert languages.catch_up() == 1
    conversation.refresh_from_db()
    assert conversation.language == "en"
