"""How well the lexicon estimate does on a hand-written, labelled set of customer messages in
English and Dutch (tests/knowledge/data/sentiment.json). The figures are printed (``-s``); the
"fresh" part was written after the word lists were fixed and was not used to adjust them, so
it is the fairer figure."""

from __future__ import annotations

import json
from pathlib import Path

from loket.knowledge import enrichment

DATA = Path(__file__).parent / "data" / "sentiment.json"


def _accuracy(items: list[dict], what: str) -> float:
    if not items:
        return 0.0
    hits = 0
    for item in items:
        found = enrichment.estimate(item["text"])
        hits += getattr(found, what) == item[what]
    return hits / len(items)


def test_sentiment_and_urgency_accuracy_on_the_labelled_set():
    messages = json.loads(DATA.read_text())["messages"]
    assert len(messages) >= 60
    assert {m["lang"] for m in messages} == {"en", "nl"}
    for lang in ("en", "nl"):
        assert {m["sentiment"] for m in messages if m["lang"] == lang} == {
            "negative",
            "neutral",
            "positive",
        }
    sentiment = _accuracy(messages, "sentiment")
    urgency = _accuracy(messages, "urgency")
    fresh = [m for m in messages if m.get("fresh")]
    print(
        f"\nsentiment accuracy {sentiment:.3f}, urgency accuracy {urgency:.3f} "
        f"on {len(messages)} messages"
    )
    for lang in ("en", "nl"):
        part = [m for m in messages if m["lang"] == lang]
        print(
            f"  {lang}: sentiment {_accuracy(part, 'sentiment'):.3f}, "
            f"urgency {_accuracy(part, 'urgency'):.3f} ({len(part)})"
        )
    print(
        f"  fresh (not used to adjust the lists): sentiment "
        f"{_accuracy(fresh, 'sentiment'):.3f}, urgency {_accuracy(fresh, 'urgency'):.3f} "
        f"({len(fresh)})"
    )
    assert sentiment >= 0.75
    assert urgency >= 0.8
