"""The IVF index of large workspaces (loket.knowledge.retrieval, above ``EXACT_UP_TO``), on the
waddenveer knowledge base's real passages and real customer questions, with a small threshold:
it finds what exact search finds, keeps internal passages out unless asked for, and exact search
is still what a workspace below the threshold gets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from loket.knowledge import embeddings, examples, indexing, retrieval
from loket.knowledge.models import Article, Passage

QUESTIONS = Path(__file__).resolve().parents[2] / "bench" / "data" / "knowledge_questions.json"


@pytest.fixture
def passages(workspace):
    examples.import_into(workspace, examples.load("waddenveer"))
    retrieval.forget(workspace.pk)
    yield Passage.objects.filter(workspace=workspace).count()
    retrieval.forget(workspace.pk)


@pytest.fixture(scope="module")
def questions():
    asked = [q["question"] for q in json.loads(QUESTIONS.read_text(encoding="utf-8"))]
    return embeddings.embed(asked[::3])


def nearest(workspace, questions, include_internal=False):
    matrix = retrieval._matrices.get(workspace.pk)
    return matrix, [
        retrieval._nearest(matrix, q, include_internal, include_conversations=False)
        for q in questions
    ]


def recall(exact, found):
    return sum(len(set(e) & set(f)) for e, f in zip(exact, found, strict=True)) / sum(
        len(e) for e in exact
    )


def test_the_index_finds_what_exact_search_finds(workspace, passages, questions, monkeypatch):
    assert passages > 200
    monkeypatch.setattr(retrieval, "CANDIDATES", 10)
    exact_matrix, exact = nearest(workspace, questions)
    assert exact_matrix.index is None
    monkeypatch.setattr(retrieval, "EXACT_UP_TO", 100)
    monkeypatch.setattr(retrieval, "PROBES", 6)
    retrieval.forget(workspace.pk)
    matrix, found = nearest(workspace, questions)
    lists = len(matrix.index.centroids)
    assert lists == round(passages**0.5) and lists > 2 * retrieval.PROBES
    # Every passage in exactly one list, rows ordered by list.
    assert matrix.index.offsets[-1] == passages and sorted(matrix.ids) == sorted(exact_matrix.ids)
    assert recall(exact, found) >= 0.95
    # The same cosines, best first, and the same best passage for nearly every question.
    for e, f in zip(exact, found, strict=True):
        assert list(f.values()) == sorted(f.values(), reverse=True)
        assert all(abs(score - e[pk]) < 1e-5 for pk, score in f.items() if pk in e)
    assert sum(next(iter(e)) == next(iter(f)) for e, f in zip(exact, found, strict=True)) >= (
        0.95 * len(exact)
    )
    # And the whole search through it answers as before.
    question = "kan ik mijn hond meenemen op de boot?"
    retrieval.forget(workspace.pk)
    with_index = [h.article_id for h in retrieval.search(workspace.pk, question)]
    monkeypatch.setattr(retrieval, "EXACT_UP_TO", 20_000)
    retrieval.forget(workspace.pk)
    assert [h.article_id for h in retrieval.search(workspace.pk, question)] == with_index


def test_internal_passages_only_when_asked_through_the_index(
    workspace, passages, questions, monkeypatch
):
    internal = set(
        Passage.objects.filter(workspace=workspace, internal=True).values_list("pk", flat=True)
    )
    assert internal
    monkeypatch.setattr(retrieval, "EXACT_UP_TO", 100)
    # One list probed: too few public passages in it, so more lists are taken until there are
    # CANDIDATES of them after filtering.
    monkeypatch.setattr(retrieval, "PROBES", 1)
    retrieval.forget(workspace.pk)
    matrix, public = nearest(workspace, questions)
    assert matrix.index is not None
    assert all(len(found) == retrieval.CANDIDATES for found in public)
    assert not any(set(found) & internal for found in public)
    _matrix, everything = nearest(workspace, questions, include_internal=True)
    assert any(set(found) & internal for found in everything)
    voucher = retrieval._meaning_scores(
        workspace.pk, "staff procedure for compensation after a delay", include_internal=False
    )
    assert voucher and not set(voucher) & internal


def test_exact_search_below_the_threshold(workspace, passages, questions, monkeypatch):
    monkeypatch.setattr(retrieval, "EXACT_UP_TO", passages)  # up to and including
    matrix, found = nearest(workspace, questions)
    assert matrix.index is None
    for question, result in zip(questions, found, strict=True):
        cosines = matrix.vectors @ question
        public = [
            (float(cosines[i]), int(pk))
            for i, pk in enumerate(matrix.ids)
            if not matrix.meta[int(pk)][3]
        ]
        best = sorted(public, reverse=True)[: retrieval.CANDIDATES]
        assert list(result.values()) == pytest.approx([cosine for cosine, _pk in best])
        assert len(set(result) & {pk for _cosine, pk in best}) >= len(best) - 1  # ties


def test_a_refresh_patches_the_matrix_and_keeps_the_centroids(
    workspace, passages, questions, monkeypatch
):
    monkeypatch.setattr(retrieval, "EXACT_UP_TO", 100)
    retrieval.forget(workspace.pk)
    matrix = retrieval._matrices.get(workspace.pk)
    centroids = matrix.index.centroids
    # Nothing changed: the very same matrix, nothing read but the ids.
    retrieval.changed(workspace.pk)
    assert retrieval._matrices.get(workspace.pk) is matrix

    # One article re-indexed (its passages deleted and made anew), another deleted.
    ids = list(Passage.objects.filter(workspace=workspace).values_list("article_id", flat=True))
    first, gone = ids[0], ids[-1]
    indexing.reindex_article(first)
    Article.objects.filter(pk=gone).delete()
    refreshed = retrieval._matrices.get(workspace.pk)  # reindex_article said it changed
    assert refreshed is not matrix and refreshed.index.centroids is centroids
    now = Passage.objects.filter(workspace=workspace).exclude(embedding=None)
    assert sorted(refreshed.ids) == sorted(now.values_list("pk", flat=True))
    assert refreshed.index.offsets[-1] == len(refreshed.ids)
    # Each row is in its nearest list, its vector and its facts are its own.
    lists = refreshed.index.lists()
    nearest = np.argmax(refreshed.vectors @ centroids.T, axis=1)
    assert (lists == nearest).all()
    stored = {
        pk: (embeddings.from_bytes(vector), internal)
        for pk, vector, internal in now.values_list("pk", "embedding", "internal")
    }
    for row, pk in enumerate(refreshed.ids):
        assert np.allclose(refreshed.vectors[row], stored[int(pk)][0])
        assert refreshed.internal[row] == stored[int(pk)][1]
    # Far from the size the centroids were made for: made anew.
    monkeypatch.setattr(retrieval, "EXACT_UP_TO", 10)
    articles = sorted(set(now.values_list("article_id", flat=True)))
    keep = articles[: len(articles) // 4]
    Article.objects.filter(workspace=workspace).exclude(pk__in=keep).delete()
    retrieval.changed(workspace.pk)
    smaller = retrieval._matrices.get(workspace.pk)
    assert smaller.index.centroids is not centroids
    assert smaller.index.built_for == len(smaller.ids) < refreshed.index.built_for / 2
