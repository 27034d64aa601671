"""Finding the knowledge base's answer to a question: hybrid retrieval over published passages.

Two rankings of the workspace's passages are combined per article, with how many of the
question's words each article has (title and text, as crude stems), into one score:

* **words** — the database's full-text index (``knowledge/0002``), BM25 on both: PostgreSQL
  finds the passages with any of the question's words (English + Dutch stems, stop words of
  both left out) through its GIN index and BM25 is computed from their vectors; SQLite uses
  FTS5's ``bm25`` (Porter stemmer).
* **meaning** — cosine similarity between the question's embedding and the passages'
  (``loket.knowledge.embeddings``), in numpy, over a per-process matrix of the workspace's
  passages (2 KB a passage): exact up to ``EXACT_UP_TO`` passages, above it through an IVF index
  (k-means lists, ``PROBES`` of them scored; bench/knowledge_ann.py: recall@50 0.975 at 50,000
  passages, 0.8 ms a question instead of 4 ms). The matrix is brought up to date when an
  article is re-indexed here, or after ``MATRIX_SECONDS`` for changes made in another process:
  by the passage ids that came and went (``_refresh_matrix``), keeping the index's centroids.

Passages are grouped by article: an article's best passage stands for it, in the reader's
locale when the article has that translation. A hit's confidence weighs its evidence (meaning,
the question's words it has) and its lead over the next article: two articles close together
mean an ambiguous question, or one neither answers. ``answer`` takes the best article only when
that confidence is high enough (``ANSWER_THRESHOLD``) — the flow bot's knowledge step, the
widget and ``POST /api/v1/knowledge/answer`` make the same decision; below it they say they do
not know.
Nothing is generated: an answer is a passage an author wrote, with its article's link.

Passages of resolved conversations (a workspace's opt-in, loket.knowledge.conversations) are
internal and found only when both ``include_internal`` and ``include_conversations`` are asked
for (the composer's suggestions do, when the workspace learns from conversations): each is its
own hit ("Conversation #N", ``conversation_id``), never the help center's, the widget's, the
bot's or the API's. One whose conversation is no longer resolved is left out at once.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

import numpy as np
from django.db import connection
from django.db.models import Q
from django.utils.translation import gettext

from loket.knowledge import embeddings
from loket.knowledge import words as kb_words
from loket.knowledge.models import Passage
from loket.memo import PerWorkspace

MATRIX_SECONDS = 30.0
CANDIDATES = 50  # passages taken from each ranking before fusing
MAX_QUERY_CHARS = 500
# An article's score: its best passage's meaning and full-text scores, and how many of the
# question's words it has (tuned on bench/knowledge: see docs/knowledge.md).
SCORE_MEANING = 0.5
SCORE_WORDS = 0.5
SCORE_COVERAGE = 0.6
SCORE_TITLE = 0.4
# A hit's confidence: evidence and lead over the next article (LEAD_FULL: a lead that counts
# fully); ANSWER_THRESHOLD: the confidence an answer needs.
CONFIDENCE_MEANING = 0.41
CONFIDENCE_COVERAGE = 0.24
CONFIDENCE_LEAD = 0.35
LEAD_FULL = 0.5
ANSWER_THRESHOLD = 0.59


@dataclass
class Hit:
    """One article found for a question, with its best passage (or one resolved conversation:
    ``conversation_id`` set, no article or translation)."""

    article_id: int | None
    translation_id: int | None
    passage_id: int
    locale: str
    title: str
    slug: str
    heading: str
    text: str
    internal: bool
    score: float  # the article's combined score (for ordering)
    confidence: float  # 0..1: how sure the match is (for answering)
    meaning: float = 0.0  # cosine of the article's best passage
    words: float = 0.0  # normalised full-text score of its best passage
    coverage: float = 0.0  # share of the question's words the article has
    conversation_id: int | None = None  # a resolved conversation's agents' answer


@dataclass
class Answer:
    text: str | None  # the passage that answers, or None: not sure enough
    hit: Hit | None
    confidence: float
    hits: list[Hit] = field(default_factory=list)


# Nearest neighbours: exact below EXACT_UP_TO passages; above it an IVF index (numpy only):
# spherical k-means (IVF_ITERATIONS of Lloyd's on a sample of IVF_SAMPLE_PER_LIST vectors a
# list, about sqrt(n) lists, seeded) puts every passage in its nearest centroid's list; a question
# scores the centroids and scores exactly the passages of the PROBES nearest lists only (measured
# on bench/knowledge_ann.py: recall@50 against exact search, see docs/knowledge.md).
EXACT_UP_TO = 20_000
PROBES = 24
IVF_ITERATIONS = 8
IVF_SAMPLE_PER_LIST = 40
IVF_SEED = 9


@dataclass
class _Index:
    """An IVF index over a matrix whose rows are ordered by list: list j is rows
    ``offsets[j]:offsets[j + 1]``."""

    centroids: np.ndarray  # (k, 512) float32, L2-normalised
    offsets: np.ndarray  # (k + 1,) int64
    built_for: int  # passages when the centroids were made (a refresh keeps them while near)

    def lists(self) -> np.ndarray:
        """Each row's list."""
        return np.repeat(np.arange(len(self.centroids)), np.diff(self.offsets))


@dataclass
class _Matrix:
    ids: np.ndarray  # passage ids
    vectors: np.ndarray  # (n, 512) float32
    # passage id -> (article, translation, locale, internal, conversation); a conversation's
    # passage has no article or translation (None).
    meta: dict[int, tuple]
    internal: np.ndarray | None = None  # (n,) bool, per row
    conversation: np.ndarray | None = None  # (n,) bool: a resolved conversation's passage
    index: _Index | None = None  # above EXACT_UP_TO passages


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32, copy=False)


def _assign(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Each vector's nearest centroid, in blocks ((8192, k) scores at a time)."""
    assigned = np.empty(len(vectors), dtype=np.int64)
    for start in range(0, len(vectors), 8192):
        block = vectors[start : start + 8192] @ centroids.T
        assigned[start : start + 8192] = np.argmax(block, axis=1)
    return assigned


def _centroids(vectors: np.ndarray) -> np.ndarray:
    """Spherical k-means over a sample: about sqrt(n) centroids."""
    n = len(vectors)
    k = max(1, int(np.sqrt(n) + 0.5))
    rng = np.random.default_rng(IVF_SEED)
    sample = vectors[np.sort(rng.choice(n, size=min(n, k * IVF_SAMPLE_PER_LIST), replace=False))]
    centroids = sample[rng.choice(len(sample), size=k, replace=False)].copy()
    for _ in range(IVF_ITERATIONS):
        nearest = np.argmax(sample @ centroids.T, axis=1)
        sums = np.zeros_like(centroids)
        np.add.at(sums, nearest, sample)
        counts = np.bincount(nearest, minlength=k)
        empty = counts == 0
        if empty.any():  # an empty list takes a random vector of the sample
            sums[empty] = sample[rng.choice(len(sample), size=int(empty.sum()), replace=False)]
        centroids = _normalised(sums)
    return centroids


def _grouped(lists: np.ndarray, centroids: np.ndarray, built_for: int):
    """Rows in the order of their lists: the new order and the index."""
    order = np.argsort(lists, kind="stable")
    offsets = np.zeros(len(centroids) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(lists, minlength=len(centroids)))
    return order, _Index(centroids, offsets, built_for)


def _build_index(vectors: np.ndarray) -> tuple[np.ndarray, _Index]:
    """New centroids, every vector assigned to its nearest: the rows' new order and the index."""
    centroids = _centroids(vectors)
    return _grouped(_assign(vectors, centroids), centroids, len(vectors))


def _flags(ids: np.ndarray, meta: dict[int, tuple]) -> tuple[np.ndarray, np.ndarray]:
    """Per row: internal, and a resolved conversation's passage."""
    internal = np.array([bool(meta[int(pk)][3]) for pk in ids], dtype=bool)
    conversation = np.array([meta[int(pk)][4] is not None for pk in ids], dtype=bool)
    return internal, conversation


def _matrix(ids: np.ndarray, vectors: np.ndarray, meta: dict[int, tuple]) -> _Matrix:
    """A matrix over these passages, with an IVF index above EXACT_UP_TO."""
    index = None
    if len(ids) > EXACT_UP_TO:
        order, index = _build_index(vectors)
        ids, vectors = ids[order], vectors[order]
    return _Matrix(ids, vectors, meta, *_flags(ids, meta), index)


def _without(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return np.delete(array, rows, axis=0) if len(rows) else array


def _patched(
    old: _Matrix,
    removed: np.ndarray,
    new_ids: np.ndarray,
    new_vectors: np.ndarray,
    new_meta: dict[int, tuple],
) -> _Matrix:
    """``old`` without its rows ``removed`` and with the new passages. An IVF index keeps its
    centroids (each new row joins its nearest list, inserted at the list's end: one copy of the
    matrix, no k-means) while the number of passages stays within half and double of what they
    were made for; otherwise the matrix is made anew from the vectors at hand."""
    meta = dict(old.meta)
    for pk in old.ids[removed]:
        meta.pop(int(pk), None)
    meta.update(new_meta)
    size = len(old.ids) - len(removed) + len(new_ids)
    earlier = old.index
    if earlier is None or not (
        size > EXACT_UP_TO and earlier.built_for / 2 <= size <= earlier.built_for * 2
    ):
        return _matrix(
            np.concatenate([_without(old.ids, removed), new_ids]),
            np.concatenate([_without(old.vectors, removed), new_vectors]),
            meta,
        )
    k = len(earlier.centroids)
    kept_lists = _without(earlier.lists(), removed)
    new_lists = _assign(new_vectors, earlier.centroids)
    by_list = np.argsort(new_lists, kind="stable")
    new_ids, new_vectors, new_lists = new_ids[by_list], new_vectors[by_list], new_lists[by_list]
    counts = np.bincount(kept_lists, minlength=k)
    at = np.cumsum(counts)[new_lists]  # before the next list's first row

    def merged(old_rows: np.ndarray, new_rows: np.ndarray) -> np.ndarray:
        kept = _without(old_rows, removed)
        return np.insert(kept, at, new_rows, axis=0) if len(new_rows) else kept

    internal, conversation = _flags(new_ids, meta)
    offsets = np.zeros(k + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(counts + np.bincount(new_lists, minlength=k))
    return _Matrix(
        merged(old.ids, new_ids),
        merged(old.vectors, new_vectors),
        meta,
        merged(old.internal, internal),
        merged(old.conversation, conversation),
        _Index(earlier.centroids, offsets, earlier.built_for),
    )


def _passages(workspace_id: int):
    return Passage.objects.filter(workspace_id=workspace_id, model=embeddings.MODEL).exclude(
        embedding=None
    )


def _read(rows: list[tuple]) -> tuple[np.ndarray, np.ndarray, dict[int, tuple]]:
    if not rows:
        return (
            np.zeros(0, dtype=np.int64),
            np.zeros((0, embeddings.DIMENSIONS), np.float32),
            {},
        )
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    vectors = np.vstack([embeddings.from_bytes(r[5]) for r in rows])
    meta = {r[0]: (r[1], r[2], r[3], r[4], r[6]) for r in rows}
    return ids, vectors, meta


_FIELDS = (
    "pk",
    "article_id",
    "translation_id",
    "locale",
    "internal",
    "embedding",
    "conversation_id",
)


def _load_matrix(workspace_id: int) -> _Matrix:
    return _matrix(*_read(list(_passages(workspace_id).values_list(*_FIELDS))))


def _refresh_matrix(workspace_id: int, old: _Matrix) -> _Matrix:
    """The matrix brought up to date: passages are never changed, only made and deleted
    (loket.knowledge.indexing, .conversations), so the current ids say what changed. Unchanged:
    the same matrix; mostly new: read anew; otherwise only the new passages are read
    (``_patched``)."""
    current = np.array(
        list(_passages(workspace_id).order_by().values_list("pk", flat=True)), dtype=np.int64
    )
    removed = np.flatnonzero(~np.isin(old.ids, current))
    added = np.setdiff1d(current, old.ids, assume_unique=True)
    if not len(removed) and not len(added):
        return old
    if len(added) > max(len(current) // 2, 1000):
        return _load_matrix(workspace_id)
    rows = []
    for start in range(0, len(added), 2000):
        chunk = [int(pk) for pk in added[start : start + 2000]]
        rows += list(_passages(workspace_id).filter(pk__in=chunk).values_list(*_FIELDS))
    return _patched(old, removed, *_read(rows))


_matrices: PerWorkspace[_Matrix] = PerWorkspace(
    _load_matrix, seconds=MATRIX_SECONDS, limit=1000, refresh=_refresh_matrix
)
_matrix_lock = threading.Lock()


def forget(workspace_id: int) -> None:
    """Build the workspace's matrix anew on its next search."""
    with _matrix_lock:
        _matrices.forget(workspace_id)


def changed(workspace_id: int) -> None:
    """Passages were made or deleted: bring the matrix up to date on the next search."""
    with _matrix_lock:
        _matrices.expire(workspace_id)


def _words(query: str) -> list[str]:
    return kb_words.content_words(query)[:20]


def _word_scores(
    workspace_id: int, query: str, include_internal: bool, include_conversations: bool = False
) -> dict[int, float]:
    """Passage id -> full-text score, the best first (at most CANDIDATES)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Without the stop words of either language: the Dutch configuration keeps "can"
            # and "my", the English one "ik" and "mijn", and those would match everything.
            content = " ".join(_words(query))
            if not content:
                return {}
            cursor.execute(
                "SELECT plainto_tsquery('english'::regconfig, %s)::text,"
                " plainto_tsquery('dutch'::regconfig, %s)::text",
                [content, content],
            )
            lexemes = set()
            for text in cursor.fetchone():
                lexemes.update(re.findall(r"'((?:[^']|'')+)'", text or ""))
            if not lexemes:
                return {}
            tsquery = " | ".join("'" + lexeme.replace("'", "''") + "'" for lexeme in lexemes)
            # Every passage with any of the words, with its vector: BM25 is computed here, as
            # SQLite's FTS5 does it (ts_rank has no inverse document frequency, so a word in
            # every article would count as much as a rare one). The set holds every passage
            # that has a word of the question, so its counts are the document frequencies.
            cursor.execute(
                "SELECT p.id, p.search_document::text FROM knowledge_passage p,"
                " to_tsquery('simple'::regconfig, %s) q"
                " WHERE p.workspace_id = %s AND p.search_document @@ q"
                " AND (%s OR NOT p.internal) AND (%s OR p.conversation_id IS NULL) LIMIT %s",
                [tsquery, workspace_id, include_internal, include_conversations, BM25_ROWS],
            )
            found = _bm25(cursor.fetchall(), lexemes, len(_matrices.get(workspace_id).ids))
        else:
            words = _words(query)
            if not words:
                return {}
            match = " OR ".join('"' + w.replace('"', "") + '"' for w in words)
            cursor.execute(
                "SELECT f.rowid, -bm25(knowledge_passage_fts, 3.0, 1.0) AS rank"
                " FROM knowledge_passage_fts f JOIN knowledge_passage p ON p.id = f.rowid"
                " WHERE knowledge_passage_fts MATCH %s AND p.workspace_id = %s"
                " AND (%s OR NOT p.internal) AND (%s OR p.conversation_id IS NULL)"
                " ORDER BY rank DESC LIMIT %s",
                [match, workspace_id, include_internal, include_conversations, CANDIDATES],
            )
            found = {pk: float(rank) for pk, rank in cursor.fetchall()}
    if not found:
        return {}
    best = max(found.values()) or 1.0
    return {pk: max(0.0, score / best) for pk, score in found.items()}


_POSITIONS = re.compile(r"'((?:[^']|'')+)':([0-9A-D,]+)")
BM25_ROWS = 5000
BM25_K1 = 1.2
BM25_B = 0.75
HEADING_WEIGHT = 3.0  # a word in a passage's heading counts this many times (weight A)


def _bm25(rows: list[tuple[int, str]], terms: set[str], total: int) -> dict[int, float]:
    """BM25 of passages (id, tsvector as text) for the question's lexemes."""
    import math

    documents = []
    frequency: dict[str, int] = {}
    for pk, vector in rows:
        counts: dict[str, float] = {}
        length = 0.0
        for lexeme, positions in _POSITIONS.findall(vector or ""):
            weight = sum(HEADING_WEIGHT if p.endswith("A") else 1.0 for p in positions.split(","))
            length += weight
            lexeme = lexeme.replace("''", "'")
            if lexeme in terms:
                counts[lexeme] = weight
        for lexeme in counts:
            frequency[lexeme] = frequency.get(lexeme, 0) + 1
        documents.append((pk, counts, length))
    if not documents:
        return {}
    average = sum(length for _pk, _counts, length in documents) / len(documents) or 1.0
    total = max(total, len(documents))
    scores = {}
    for pk, counts, length in documents:
        score = 0.0
        for lexeme, tf in counts.items():
            idf = math.log(1 + (total - frequency[lexeme] + 0.5) / (frequency[lexeme] + 0.5))
            score += (
                idf * tf * (BM25_K1 + 1) / (tf + BM25_K1 * (1 - BM25_B + BM25_B * length / average))
            )
        scores[pk] = score
    return dict(sorted(scores.items(), key=lambda item: item[1], reverse=True)[:CANDIDATES])


def _meaning_scores(
    workspace_id: int, query: str, include_internal: bool, include_conversations: bool = False
) -> dict[int, float]:
    """Passage id -> cosine with the question, the best first (at most CANDIDATES)."""
    matrix = _matrices.get(workspace_id)
    if not len(matrix.ids):
        return {}
    question = embeddings.embed([query])[0]
    return _nearest(matrix, question, include_internal, include_conversations)


def _nearest(
    matrix: _Matrix, question: np.ndarray, include_internal: bool, include_conversations: bool
) -> dict[int, float]:
    """The CANDIDATES passages nearest the question among those asked for: exact, or through
    the index's PROBES nearest lists (more when those hold too few passages asked for)."""
    hidden = np.zeros(len(matrix.ids), dtype=bool)
    if not include_internal:
        hidden |= matrix.internal
    if not include_conversations:
        hidden |= matrix.conversation
    index = matrix.index
    if index is None:
        rows = np.arange(len(matrix.ids))
        cosines = matrix.vectors @ question
    else:
        lists = np.argsort(-(index.centroids @ question))
        probes = PROBES
        while True:
            chosen = lists[:probes]
            rows = np.concatenate(
                [np.arange(index.offsets[j], index.offsets[j + 1]) for j in chosen]
            )
            if (~hidden[rows]).sum() >= CANDIDATES or probes >= len(lists):
                break
            probes *= 2  # too few of the passages asked for in those lists
        cosines = np.concatenate(
            [matrix.vectors[index.offsets[j] : index.offsets[j + 1]] @ question for j in chosen]
        )
    shown = ~hidden[rows]
    rows, cosines = rows[shown], cosines[shown]
    take = min(CANDIDATES, len(rows))
    if not take:
        return {}
    best = np.argpartition(-cosines, take - 1)[:take]
    best = best[np.argsort(-cosines[best], kind="stable")]
    return {int(matrix.ids[rows[i]]): float(cosines[i]) for i in best}


@dataclass
class _Article:
    meaning: float = 0.0  # best passage cosine
    words: float = 0.0  # best passage full-text score (0..1, the best passage of all: 1)
    coverage: float = 0.0  # share of the question's words the article has (title and text)
    title_coverage: float = 0.0  # ... its titles alone
    score: float = 0.0
    passages: list = field(default_factory=list)


def _score(article: _Article) -> float:
    return (
        SCORE_MEANING * article.meaning
        + SCORE_WORDS * article.words
        + SCORE_COVERAGE * article.coverage
        + SCORE_TITLE * article.title_coverage
    )


def search(
    workspace_id: int,
    query: str,
    *,
    locale: str | None = None,
    limit: int = 5,
    include_internal: bool = False,
    include_conversations: bool = False,
) -> list[Hit]:
    """The articles that best answer ``query``, best first, one hit per article (its best
    passage, in the reader's locale when the article has it). With ``include_internal`` and
    ``include_conversations``, resolved conversations' answers too, a hit each."""
    from loket.inbox.models import ConversationStatus

    include_conversations = include_conversations and include_internal
    query = " ".join((query or "").split())[:MAX_QUERY_CHARS]
    if not query:
        return []
    meaning = _meaning_scores(workspace_id, query, include_internal, include_conversations)
    words = _word_scores(workspace_id, query, include_internal, include_conversations)
    if not meaning and not words:
        return []
    matrix = _matrices.get(workspace_id)
    # Passages group by their article, or by their conversation: ("a", id) / ("c", id).
    group_of = {
        pk: ("c", info[4]) if info[4] is not None else ("a", info[0])
        for pk, info in matrix.meta.items()
    }
    candidates = {group_of[pk] for pk in (*meaning, *words) if pk in group_of}
    article_ids = {key for kind, key in candidates if kind == "a"}
    conversation_ids = {key for kind, key in candidates if kind == "c"}
    passages = list(
        Passage.objects.filter(workspace_id=workspace_id)
        .filter(Q(article_id__in=article_ids) | Q(conversation_id__in=conversation_ids))
        .select_related("translation", "conversation")
        .only(
            "pk",
            "article_id",
            "translation_id",
            "conversation_id",
            "locale",
            "internal",
            "heading",
            "text",
            "translation__title",
            "translation__slug",
            "conversation__number",
            "conversation__status",
        )
    )
    articles: dict[tuple, _Article] = {}
    texts: dict[tuple, list[str]] = {}
    titles: dict[tuple, set[str]] = {}
    for passage in passages:
        if passage.internal and not include_internal:
            continue
        if passage.conversation_id is not None:
            resolved = passage.conversation.status == ConversationStatus.RESOLVED
            if not include_conversations or not resolved:
                continue  # reopened: its passage goes with the next sweep
            key = ("c", passage.conversation_id)
            title = ""
        else:
            key = ("a", passage.article_id)
            title = passage.translation.title
        found = articles.setdefault(key, _Article())
        found.passages.append(passage)
        found.meaning = max(found.meaning, meaning.get(passage.pk, 0.0))
        found.words = max(found.words, words.get(passage.pk, 0.0))
        texts.setdefault(key, []).extend((title, passage.heading, passage.text))
        titles.setdefault(key, set()).add(title)
    asked = _words(query)
    for key, found in articles.items():
        found.coverage = kb_words.coverage(asked, kb_words.stems(" ".join(texts[key])))
        found.title_coverage = kb_words.coverage(asked, kb_words.stems(" ".join(titles[key])))
        found.score = _score(found)
    ranked = sorted(articles.items(), key=lambda item: item[1].score, reverse=True)
    wanted = (locale or "").split("-")[0].lower()
    hits = []
    for (kind, key), found in ranked[:limit]:
        mine = [p for p in found.passages if p.locale.split("-")[0] == wanted] or found.passages
        best = max(mine, key=lambda p: (meaning.get(p.pk, 0.0) + words.get(p.pk, 0.0), -p.pk))
        if kind == "c":
            title = gettext("Conversation #%(number)s") % {"number": best.conversation.number}
            slug = ""
        else:
            title, slug = best.translation.title, best.translation.slug
        hits.append(
            Hit(
                article_id=key if kind == "a" else None,
                translation_id=best.translation_id,
                passage_id=best.pk,
                locale=best.locale,
                title=title,
                slug=slug,
                heading=best.heading,
                text=best.text,
                internal=best.internal,
                score=found.score,
                confidence=0.0,
                meaning=found.meaning,
                words=found.words,
                coverage=found.coverage,
                conversation_id=key if kind == "c" else None,
            )
        )
    _confidences(hits)
    return hits


def _confidences(hits: list[Hit]) -> None:
    """How sure each hit is: its evidence (meaning, the share of the question's words it has)
    and its lead over the next article — two articles close together mean the question is
    ambiguous, or answered by neither."""
    for index, hit in enumerate(hits):
        following = hits[index + 1].score if index + 1 < len(hits) else 0.0
        lead = min(1.0, max(0.0, hit.score - following) / LEAD_FULL)
        hit.confidence = round(
            CONFIDENCE_MEANING * max(0.0, hit.meaning)
            + CONFIDENCE_COVERAGE * hit.coverage
            + CONFIDENCE_LEAD * lead,
            4,
        )


def answer(workspace_id: int, question: str, *, locale: str | None = None) -> Answer:
    """The best article's passage when confident enough, else no answer (never invented)."""
    hits = search(workspace_id, question, locale=locale, limit=3)
    if not hits:
        return Answer(None, None, 0.0, [])
    best = hits[0]
    if best.confidence < ANSWER_THRESHOLD:
        return Answer(None, best, best.confidence, hits)
    return Answer(best.text, best, best.confidence, hits)
