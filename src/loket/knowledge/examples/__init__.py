"""Example knowledge bases shipped with Loket (``<name>.json``, format ``loket.knowledge/1``).

``waddenveer.json`` is the demo workspace's: a ferry company to the Wadden islands with a shop
and an on-board café, 40-odd articles in English and Dutch (a few internal). ``loket demo``
seeds it, and ``bench/knowledge.py`` evaluates retrieval on it with the questions in
``bench/data/knowledge_questions.json``.

    {"format": "loket.knowledge/1",
     "categories": [{"slug", "names": {locale: name}, "descriptions": {locale: text}}],
     "articles": [{"key", "category", "internal", "translations": {locale: {"title", "body"}}}]}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

HERE = Path(__file__).resolve().parent
FORMAT = "loket.knowledge/1"


def load(name: str) -> dict[str, Any]:
    data = json.loads((HERE / f"{name}.json").read_text(encoding="utf-8"))
    if data.get("format") != FORMAT:
        raise ValueError(f"{name}.json is not {FORMAT}")
    return data


def import_into(workspace, data: dict[str, Any], *, index: bool = True) -> dict[str, int]:
    """Categories and articles, every translation published; returns article ids by key.
    ``index``: cut and embed them now (else the caller enqueues ``index_article``)."""
    from loket.knowledge.indexing import reindex_article
    from loket.knowledge.models import Article, ArticleTranslation, Category, TranslationStatus

    now = timezone.now()
    ids: dict[str, int] = {}
    with transaction.atomic():
        categories = {}
        for position, raw in enumerate(data.get("categories", [])):
            categories[raw["slug"]], _ = Category.objects.update_or_create(
                workspace=workspace,
                slug=raw["slug"],
                defaults={
                    "names": raw.get("names", {}),
                    "descriptions": raw.get("descriptions", {}),
                    "position": position,
                },
            )
        for position, raw in enumerate(data.get("articles", [])):
            article = Article.objects.create(
                workspace=workspace,
                category=categories.get(raw.get("category")),
                internal=bool(raw.get("internal")),
                position=position,
            )
            for locale, text in raw["translations"].items():
                slug = slugify(text["title"])[:190] or raw["key"]
                if ArticleTranslation.objects.filter(
                    workspace=workspace, locale=locale, slug=slug
                ).exists():
                    slug = f"{slug}-{article.pk}"
                ArticleTranslation.objects.create(
                    workspace=workspace,
                    article=article,
                    locale=locale,
                    slug=slug,
                    status=TranslationStatus.PUBLISHED,
                    title=text["title"],
                    body=text["body"],
                    draft_title=text["title"],
                    draft_body=text["body"],
                    published_at=now,
                    updated_at=now,
                )
            ids[raw["key"]] = article.pk
    if index:
        for article_id in ids.values():
            reindex_article(article_id)
    return ids
