"""Finding the knowledge base's answer to a question: hybrid retrieval over published passages.

Two rankings of the workspace's passages are fused (reciprocal rank fusion, then the scores
combined into a confidence):

* **words** — the database's full-text index (``knowledge/0002``): PostgreSQL ranks with
  ``ts_rank_cd`` on an English + Dutch stemmed vector, the question's words OR-ed (stop words
  left out by the same configurations); SQLite with FTS5's ``bm25`` (Porter stemmer).
* **meaning** — cosine similarity between the question's embedding and every passage's
  (``loket.knowledge.embeddings``), exact, in numpy, over a per-process matrix of the
  workspace's passages (2 KB a passage; 50,000 passages take ~2.5 ms a question). The matrix is
  rebuilt when an article is re-indexed here, or after ``MATRIX_SECONDS`` for changes made in
  another process.

Passages are grouped by article: an article's best passage stands for it, in the reader's
locale when the article has that translation. ``answer`` takes the best article only when the
evidence is strong enough (``ANSWER_THRESHOLD``) — the flow bot's knowledge step, the widget and
``POST /api/v1/knowledge/answer`` make the same decision; below it they say they do not know.
Nothing is generated: an answer is a passage an author wrote, with its article's link.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

import numpy as np
from django.db import connection

from loket.knowledge import embeddings
from loket.knowledge.models import Passage
from loket.memo import PerWorkspace

MATRIX_SECONDS = 30.0
CANDIDATES = 50  # passages taken from each ranking before fusing
RRF_K = 20
MAX_QUERY_CHARS = 500
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# What the question's words say beside its meaning: weights of the fused confidence.
WEIGHT_MEANING = 0.7
WEIGHT_WORDS = 0.3
ANSWER_THRESHOLD = 0.5  # confidence an answer needs (calibrated on bench/knowledge)
# Stop words for SQLite's OR query (PostgreSQL's configurations have their own lists).
_STOP = frozenset(
    """a an and are as at be but by can could do does for from have how i if in is it me my of
    on or our please the their there this to was we what when where which who why will with you
    your de het een en of ik je jij u uw mijn is zijn was kan kun kunt wil wilt hoe wat wanneer
    waar waarom welke wie met van voor op in aan bij dat die dit er naar niet ook om te tot
    als maar nog wel hebben heb heeft""".split()  # noqa: SIM905
)


@dataclass
class Hit:
    """One article found for a question, with its best passage."""

    article_id: int
    translation_id: int
    passage_id: int
    locale: str
    title: str
    slug: str
    heading: str
    text: str
    internal: bool
    score: float  # fused rank score (for ordering)
    confidence: float  # 0..1: how sure the match is (for answering)
    meaning: float = 0.0  # cosine of the best passage
    words: float = 0.0  # normalised full-text score of the best passage


@dataclass
class Answer:
    text: str | None  # the passage that answers, or None: not sure enough
    hit: Hit | None
    confidence: float
    hits: list[Hit] = field(default_factory=list)


@dataclass
class _Matrix:
    ids: np.ndarray  # passage ids
    vectors: np.ndarray  # (n, 512) float32
    meta: dict[int, tuple]  # passage id -> (article, translation, locale, internal)


def _load_matrix(workspace_id: int) -> _Matrix:
    rows = list(
        Passage.objects.filter(workspace_id=workspace_id, model=embeddings.MODEL)
        .exclude(embedding=None)
        .values_list("pk", "article_id", "translation_id", "locale", "internal", "embedding")
    )
    if not rows:
        return _Matrix(
            np.zeros(0, dtype=np.int64), np.zeros((0, embeddings.DIMENSIONS), np.float32), {}
        )
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    vectors = np.vstack([embeddings.from_bytes(r[5]) for r in rows])
    meta = {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}
    return _Matrix(ids, vectors, meta)


_matrices: PerWorkspace[_Matrix] = PerWorkspace(_load_matrix, seconds=MATRIX_SECONDS, limit=1000)
_matrix_lock = threading.Lock()


def forget(workspace_id: int) -> None:
    with _matrix_lock:
        _matrices.forget(workspace_id)


def _words(query: str) -> list[str]:
    return [w for w in _WORD.findall(query.lower()) if w not in _STOP and len(w) > 1][:20]


def _word_scores(workspace_id: int, query: str, include_internal: bool) -> dict[int, float]:
    """Passage id -> full-text score, the best first (at most CANDIDATES)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT plainto_tsquery('english'::regconfig, %s)::text,"
                " plainto_tsquery('dutch'::regconfig, %s)::text",
                [query, query],
            )
            lexemes = set()
            for text in cursor.fetchone():
                lexemes.update(re.findall(r"'((?:[^']|'')+)'", text or ""))
            if not lexemes:
                return {}
            tsquery = " | ".join("'" + lexeme.replace("'", "''") + "'" for lexeme in lexemes)
            cursor.execute(
                "SELECT p.id, ts_rank_cd(p.search_document, q, 1) AS rank"
                " FROM knowledge_passage p, to_tsquery('simple'::regconfig, %s) q"
                " WHERE p.workspace_id = %s AND p.search_document @@ q"
                " AND (%s OR NOT p.internal)"
                " ORDER BY rank DESC, p.id LIMIT %s",
                [tsquery, workspace_id, include_internal, CANDIDATES],
            )
            found = {pk: float(rank) for pk, rank in cursor.fetchall()}
        else:
            words = _words(query)
            if not words:
                return {}
            match = " OR ".join('"' + w.replace('"', "") + '"' for w in words)
            cursor.execute(
                "SELECT f.rowid, -bm25(knowledge_passage_fts, 3.0, 1.0) AS rank"
                " FROM knowledge_passage_fts f JOIN knowledge_passage p ON p.id = f.rowid"
                " WHERE knowledge_passage_fts MATCH %s AND p.workspace_id = %s"
                " AND (%s OR NOT p.internal)"
                " ORDER BY rank DESC LIMIT %s",
                [match, workspace_id, include_internal, CANDIDATES],
            )
            found = {pk: float(rank) for pk, rank in cursor.fetchall()}
    if not found:
        return {}
    best = max(found.values()) or 1.0
    return {pk: max(0.0, score / best) for pk, score in found.items()}


def _meaning_scores(workspace_id: int, query: str, include_internal: bool) -> dict[int, float]:
    """Passage id -> cosine with the question, the best first (at most CANDIDATES)."""
    matrix = _matrices.get(workspace_id)
    if not len(matrix.ids):
        return {}
    question = embeddings.embed([query])[0]
    cosines = matrix.vectors @ question
    order = np.argsort(-cosines)
    found: dict[int, float] = {}
    for index in order:
        pk = int(matrix.ids[index])
        if not include_internal and matrix.meta[pk][3]:
            continue
        found[pk] = float(cosines[index])
        if len(found) >= CANDIDATES:
            break
    return found


def search(
    workspace_id: int,
    query: str,
    *,
    locale: str | None = None,
    limit: int = 5,
    include_internal: bool = False,
) -> list[Hit]:
    """The articles that best answer ``query``, best first, one hit per article."""
    query = " ".join((query or "").split())[:MAX_QUERY_CHARS]
    if not query:
        return []
    meaning = _meaning_scores(workspace_id, query, include_internal)
    words = _word_scores(workspace_id, query, include_internal)
    fused: dict[int, float] = {}
    for ranking in (meaning, words):
        for rank, pk in enumerate(sorted(ranking, key=ranking.get, reverse=True)):
            fused[pk] = fused.get(pk, 0.0) + 1.0 / (RRF_K + rank + 1)
    if not fused:
        return []
    passages = {
        p.pk: p
        for p in Passage.objects.filter(pk__in=list(fused), workspace_id=workspace_id)
        .select_related("translation")
        .only(
            "pk",
            "article_id",
            "translation_id",
            "locale",
            "internal",
            "heading",
            "text",
            "translation__title",
            "translation__slug",
        )
    }
    by_article: dict[int, Hit] = {}
    wanted = (locale or "").split("-")[0].lower()
    for pk in sorted(fused, key=fused.get, reverse=True):
        passage = passages.get(pk)
        if passage is None:
            continue
        cosine = meaning.get(pk, 0.0)
        word = words.get(pk, 0.0)
        confidence = WEIGHT_MEANING * max(0.0, cosine) + WEIGHT_WORDS * word
        hit = Hit(
            article_id=passage.article_id,
            translation_id=passage.translation_id,
            passage_id=pk,
            locale=passage.locale,
            title=passage.translation.title,
            slug=passage.translation.slug,
            heading=passage.heading,
            text=passage.text,
            internal=passage.internal,
            score=fused[pk],
            confidence=confidence,
            meaning=cosine,
            words=word,
        )
        kept = by_article.get(passage.article_id)
        if kept is None:
            by_article[passage.article_id] = hit
        elif wanted and kept.locale.split("-")[0] != wanted and hit.locale.split("-")[0] == wanted:
            # The reader's own language, ranked as the article's best passage was.
            hit.score, hit.confidence = (
                max(kept.score, hit.score),
                max(kept.confidence, hit.confidence),
            )
            by_article[passage.article_id] = hit
    return sorted(by_article.values(), key=lambda h: h.score, reverse=True)[:limit]


def answer(workspace_id: int, question: str, *, locale: str | None = None) -> Answer:
    """The best article's passage when confident enough, else no answer (never invented)."""
    hits = search(workspace_id, question, locale=locale, limit=3)
    if not hits:
        return Answer(None, None, 0.0, [])
    best = hits[0]
    if best.confidence < ANSWER_THRESHOLD:
        return Answer(None, best, best.confidence, hits)
    return Answer(best.text, best, best.confidence, hits)
