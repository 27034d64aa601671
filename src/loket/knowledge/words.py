"""Words as the knowledge base's language-blind matching sees them (retrieval's word coverage and
SQLite query, the composer's canned-reply ranking): letters and digits, stop words of English
and Dutch left out, and crude stems — a word's first five letters, so "refund", "refunds" and
"refunded" meet, and so do "bestelling" and "bestellingen"."""

from __future__ import annotations

import re

WORD = re.compile(r"[^\W_]+", re.UNICODE)
STEM_LETTERS = 5
# Words that say nothing about what a question or message is about (English and Dutch).
STOP = frozenset(
    """a about after again all also an and any are as at be because been before but by can
    cannot could did do does doing don for from get got had has have hello her here hi hey him
    his how i if in into is it its just let like may me more most much must my not now of off
    on once only or other our out over please same she should some such than thank thanks that
    the their them then there these they this those through to too under until very was way we
    were what when where which while who why will with would you your yours dear beste
    aan al alle als ben bij dan dat de deze die dit doe doen door een en er geen had heb hebben
    heeft het hier hij hoe hun iets ik in is ja je jij jou jouw kan kun kunnen kunt maar me meer
    met mij mijn mag moet na naar niet nog nu of om ons onze ook op over te tot u uit uw van veel
    voor waar waarom wanneer wat we wel welke wie wij wil wilt zal ze zelf zich zijn zo zou
    alvast bedankt dank groet groeten graag hallo hoi""".split()  # noqa: SIM905
)


def stem(word: str) -> str:
    return word[:STEM_LETTERS]


def content_words(text: str, *, min_letters: int = 2) -> list[str]:
    """The words of ``text`` that carry meaning, lower-cased, in order."""
    return [w for w in WORD.findall(text.lower()) if len(w) >= min_letters and w not in STOP]


def stems(text: str) -> set[str]:
    """Every word of ``text`` (stop words included: they are looked up in it), as stems."""
    return {stem(w) for w in WORD.findall(text.lower()) if len(w) > 1}


def coverage(asked: list[str], found: set[str]) -> float:
    """The share of the ``asked`` words whose stems are among ``found``."""
    return sum(stem(w) in found for w in asked) / len(asked) if asked else 0.0
