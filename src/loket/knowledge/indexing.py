"""Cutting published articles into passages and embedding them (the ``index_article`` job).

A translation becomes passages: the title with the text before the first heading, then each
section under its heading; a long section is cut into pieces of about ``PASSAGE_WORDS`` words
at paragraph ends. What is embedded is the passage with its article's title and heading in
front (a passage alone often lacks the subject: "It costs €15." under "Pets on board").
Embedding runs before the transaction that swaps the article's passages, so readers never see
an article with half its passages."""

from __future__ import annotations

from django.db import transaction

from loket.knowledge import embeddings
from loket.knowledge import markdown as kb_markdown
from loket.knowledge.models import Article, ArticleTranslation, Passage, TranslationStatus

PASSAGE_WORDS = 160


def _pieces(text: str) -> list[str]:
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    pieces: list[str] = []
    current: list[str] = []
    words = 0
    for paragraph in paragraphs:
        count = len(paragraph.split())
        if current and words + count > PASSAGE_WORDS:
            pieces.append("\n\n".join(current))
            current, words = [], 0
        current.append(paragraph)
        words += count
    if current:
        pieces.append("\n\n".join(current))
    return pieces


def passages_of(translation: ArticleTranslation) -> list[dict]:
    """The passages of a translation's published text, in order: ``{"heading", "text"}``."""
    found = []
    for heading, section in kb_markdown.sections(translation.body):
        text = kb_markdown.to_text(section)
        for piece in _pieces(text) or ([""] if heading else []):
            found.append({"heading": heading, "text": piece or heading})
    if not found:
        found.append({"heading": "", "text": translation.title})
    return found


def embedded_text(title: str, heading: str, text: str) -> str:
    return ". ".join(part for part in (title, heading, text) if part)


def reindex_article(article_id: int) -> int:
    """Rebuild the article's passages from its published translations; returns how many."""
    article = Article.objects.filter(pk=article_id).first()
    if article is None:
        return 0
    translations = list(
        ArticleTranslation.objects.filter(article=article, status=TranslationStatus.PUBLISHED)
    )
    rows = []
    for translation in translations:
        for position, passage in enumerate(passages_of(translation)):
            rows.append(
                Passage(
                    workspace_id=article.workspace_id,
                    translation=translation,
                    article=article,
                    locale=translation.locale,
                    internal=article.internal,
                    position=position,
                    heading=passage["heading"][:300],
                    text=passage["text"],
                    model=embeddings.MODEL,
                )
            )
    vectors = embeddings.embed(
        [embedded_text(r.translation.title, r.heading, r.text) for r in rows]
    )
    for row, vector in zip(rows, vectors, strict=True):
        row.embedding = embeddings.to_bytes(vector)
    with transaction.atomic():
        Passage.objects.filter(article_id=article_id).delete()
        Passage.objects.bulk_create(rows)
    from loket.knowledge import retrieval

    retrieval.changed(article.workspace_id)
    return len(rows)
