"""The shipped Waddenveer knowledge base and the bench's labelled questions are hand-written data:
these checks keep them from rotting silently (a renamed article key, a missing translation, an
internal article used as an answer, a set that shrank below what the evaluation promises)."""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib.resources import files
from pathlib import Path

import pytest
from django.utils.text import slugify

from loket.knowledge.markdown import to_html, to_text

LOCALES = ("en", "nl")
QUESTIONS = Path(__file__).resolve().parents[2] / "bench" / "data" / "knowledge_questions.json"
HELDOUT = QUESTIONS.with_name("knowledge_questions_heldout.json")


def words(text: str) -> int:
    return len(re.findall(r"\w+", to_text(text)))


@pytest.fixture(scope="module")
def kb() -> dict:
    with (files("loket.knowledge") / "examples" / "waddenveer.json").open(encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def questions() -> list[dict]:
    return json.loads(QUESTIONS.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def heldout() -> list[dict]:
    return json.loads(HELDOUT.read_text(encoding="utf-8"))


def test_categories(kb):
    assert kb["format"] == "loket.knowledge/1"
    categories = kb["categories"]
    assert 6 <= len(categories) <= 8
    slugs = [c["slug"] for c in categories]
    assert len(set(slugs)) == len(slugs), "duplicate category slugs"
    for c in categories:
        assert c["slug"] == slugify(c["slug"]), c["slug"]
        for locale in LOCALES:
            assert c["names"][locale].strip(), (c["slug"], locale)
            assert c["descriptions"][locale].strip(), (c["slug"], locale)
    for locale in LOCALES:
        names = [c["names"][locale] for c in categories]
        assert len(set(names)) == len(names), f"duplicate category names in {locale}"


def test_articles(kb):
    categories = {c["slug"] for c in kb["categories"]}
    articles = kb["articles"]
    assert len(articles) >= 42
    keys = [a["key"] for a in articles]
    assert len(set(keys)) == len(keys), [k for k, n in Counter(keys).items() if n > 1]
    internal = [a["key"] for a in articles if a["internal"]]
    assert 3 <= len(internal) <= 4, internal

    problems = []
    for a in articles:
        assert set(a) == {"key", "category", "internal", "translations"}, a["key"]
        assert a["key"] == slugify(a["key"]), a["key"]
        assert a["category"] in categories, a["key"]
        assert isinstance(a["internal"], bool), a["key"]
        assert set(a["translations"]) == set(LOCALES), a["key"]
        for locale, t in a["translations"].items():
            if not t.get("title", "").strip():
                problems.append(f"{a['key']}/{locale}: no title")
            n = words(t.get("body", ""))
            if n < 60:
                problems.append(f"{a['key']}/{locale}: body has {n} words, at least 60 expected")
            if not to_html(t["body"]).strip():
                problems.append(f"{a['key']}/{locale}: body renders empty")
        if a["translations"]["en"]["body"] == a["translations"]["nl"]["body"]:
            problems.append(f"{a['key']}: the Dutch body is the English one")
    assert not problems, "\n".join(problems)

    for locale in LOCALES:
        titles = [a["translations"][locale]["title"] for a in articles]
        slugs = [slugify(t) for t in titles]
        assert len(set(slugs)) == len(slugs), (
            locale,
            [s for s, n in Counter(slugs).items() if n > 1],
        )

    # Every category has something a customer can read, and the bodies use real Markdown.
    public_categories = {a["category"] for a in articles if not a["internal"]}
    assert public_categories == categories
    bodies = [t["body"] for a in articles for t in a["translations"].values()]
    assert sum("\n## " in "\n" + b for b in bodies) >= 20
    assert sum("<table>" in to_html(b) for b in bodies) >= 10
    assert sum("<li>" in to_html(b) for b in bodies) >= 20


def check_labels(kb: dict, questions: list[dict]) -> set[str]:
    """The checks both question sets share; returns the public article keys."""
    articles = {a["key"]: a for a in kb["articles"]}
    public = {k for k, a in articles.items() if not a["internal"]}

    texts = [q["question"].strip().lower() for q in questions]
    assert len(set(texts)) == len(texts), [t for t, n in Counter(texts).items() if n > 1]

    problems = []
    for q in questions:
        if set(q) != {"question", "language", "article", "cross"}:
            problems.append(f"{q}: unexpected fields")
            continue
        if q["language"] not in LOCALES:
            problems.append(f"{q['question']!r}: language {q['language']!r}")
        if not isinstance(q["cross"], bool):
            problems.append(f"{q['question']!r}: cross is not true/false")
        if q["article"] is None:
            if q["cross"]:
                problems.append(f"{q['question']!r}: unanswered question marked cross")
        elif q["article"] not in articles:
            problems.append(f"{q['question']!r}: no article {q['article']!r}")
        elif q["article"] not in public:
            problems.append(f"{q['question']!r}: labelled with internal article {q['article']!r}")
    assert not problems, "\n".join(problems)

    languages = Counter(q["language"] for q in questions)
    assert 0.4 <= languages["en"] / len(questions) <= 0.6, languages
    cross = [q for q in questions if q["cross"]]
    assert {q["language"] for q in cross} == set(LOCALES)
    return public


def test_questions(kb, questions):
    public = check_labels(kb, questions)
    assert len(questions) >= 170

    answered = Counter(q["article"] for q in questions if q["article"])
    assert sum(answered.values()) / len(public) >= 3
    assert not public - set(answered), (
        f"public articles without a question: {public - set(answered)}"
    )

    assert sum(q["article"] is None for q in questions) >= 25
    assert sum(q["cross"] for q in questions) >= 20


def test_heldout_questions(kb, questions, heldout):
    """The held-out set (never tuned on) is new: no question of the main set again."""
    public = check_labels(kb, heldout)
    assert len(heldout) >= 90

    main = {q["question"].strip().lower() for q in questions}
    again = [q["question"] for q in heldout if q["question"].strip().lower() in main]
    assert not again, f"questions already in the main set: {again}"

    answered = Counter(q["article"] for q in heldout if q["article"])
    assert not public - set(answered), (
        f"public articles without a held-out question: {public - set(answered)}"
    )
    assert max(answered.values()) <= 4, answered.most_common(3)
    assert 12 <= sum(q["article"] is None for q in heldout) <= 20
    assert 10 <= sum(q["cross"] for q in heldout) <= 16
