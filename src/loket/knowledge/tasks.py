"""Background jobs of the knowledge base (loket.jobs discovers ``tasks`` modules)."""

from loket.jobs.policy import job


@job(retries=3, backoff_base=5.0)
def index_article(article_id: int) -> None:
    """Re-cut and re-embed an article's published translations (enqueued with every publish,
    withdrawal, change of its internal flag, or deletion of a translation)."""
    from loket.knowledge import indexing

    indexing.reindex_article(article_id)


@job(every_seconds=5.0)
def detect_languages() -> None:
    """Give new conversations their customer's language (loket.knowledge.languages)."""
    from loket.knowledge import languages

    while languages.sweep() == languages.BATCH:
        pass
