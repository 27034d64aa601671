"""Which language a customer writes in, offline (``lingua-language-detector``, low-accuracy
mode: ~25 MB, ~0.03 ms a message, restricted to the workspace's languages).

``sweep`` (the ``detect_languages`` job, every few seconds) reads the customer messages that
arrived since its last run (``SweepMark``), in id order, and gives a conversation without a
language the one its customer's message is written in — through ``update_conversation``, so the
timeline, the events and the rules (``conversation.language``) see it. Nothing of this runs in
the ingest's transaction. A message too short to tell ("Hi!", "ok") leaves the conversation
as it is; its next message is read in the next sweep."""

from __future__ import annotations

import threading

from django.db import transaction
from django.utils import timezone

from loket.inbox.models import Conversation
from loket.knowledge.models import SweepMark
from loket.knowledge.sweeps import settled_customer_messages

SWEEP = "languages"
BATCH = 500
MIN_WORDS = 3  # shorter texts are guessed wrong too often
MIN_CONFIDENCE = 0.5
SUPPORTED = ("en", "nl", "de", "fr", "es", "it", "pt", "da", "sv", "nb", "pl", "tr")
_lock = threading.Lock()
_detectors: dict[tuple[str, ...], object] = {}


def _detector(codes: tuple[str, ...]):
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    with _lock:
        found = _detectors.get(codes)
        if found is None:
            languages = [
                Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())) for code in codes
            ]
            found = LanguageDetectorBuilder.from_languages(*languages).with_low_accuracy_mode()
            found = found.build()
            _detectors[codes] = found
    return found


def detect(text: str, languages: list[str]) -> tuple[str | None, float]:
    """(ISO 639-1 code, confidence) of ``text`` among ``languages``, or (None, 0) when it is too
    short or unclear. One allowed language: that one, for any text long enough."""
    codes = tuple(sorted({c.split("-")[0].lower() for c in languages} & set(SUPPORTED)))
    words = text.split()
    if not codes or len(words) < MIN_WORDS:
        return None, 0.0
    if len(codes) == 1:
        return codes[0], 1.0
    values = _detector(codes).compute_language_confidence_values(" ".join(words[:200]))
    if not values:
        return None, 0.0
    best = values[0]
    code = best.language.iso_code_639_1.name.lower()
    if best.value < MIN_CONFIDENCE:
        return None, float(best.value)
    return code, float(best.value)


def sweep(limit: int = BATCH) -> int:
    """Give conversations without a language their customer's (one batch of messages); returns
    how many got one."""
    return _sweep(limit)[1]


def catch_up(limit: int = BATCH, *, batches: int = 100) -> int:
    """Batches until the sweep has read every message so far (the periodic job)."""
    given = 0
    for _ in range(batches):
        read, found = _sweep(limit)
        given += found
        if read < limit:
            break
    return given


def _sweep(limit: int) -> tuple[int, int]:
    """(messages read, conversations given a language)."""
    from loket.inbox.services.conversations import update_conversation

    mark, _created = SweepMark.objects.get_or_create(name=SWEEP)
    rows = list(
        settled_customer_messages(mark.last_id).values_list("pk", "conversation_id", "text")[:limit]
    )
    if not rows:
        return 0, 0
    open_ids = set(
        Conversation.objects.filter(pk__in={r[1] for r in rows}, language="").values_list(
            "pk", flat=True
        )
    )
    decided: dict[int, str] = {}
    for _pk, conversation_id, text in rows:
        if conversation_id in open_ids and conversation_id not in decided:
            decided[conversation_id] = ""
        if conversation_id in decided and not decided[conversation_id]:
            decided[conversation_id] = text  # the first message long enough decides
            if len(text.split()) < MIN_WORDS:
                decided[conversation_id] = ""
    given = 0
    conversations = Conversation.objects.select_related("workspace").in_bulk(
        [pk for pk, text in decided.items() if text]
    )
    for conversation_id, text in decided.items():
        conversation = conversations.get(conversation_id)
        if conversation is None:
            continue
        code, _confidence = detect(text, conversation.workspace.languages or ["en"])
        if code is None:
            continue
        with transaction.atomic():
            locked = Conversation.objects.select_for_update().get(pk=conversation_id)
            if locked.language:
                continue
            update_conversation(
                locked, actor=None, language=code, context={"via": "language_detection"}
            )
            given += 1
    SweepMark.objects.filter(pk=mark.pk).update(last_id=rows[-1][0], updated_at=timezone.now())
    return len(rows), given
