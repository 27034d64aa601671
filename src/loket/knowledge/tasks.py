"""Background jobs of the knowledge base (loket.jobs discovers ``tasks`` modules)."""

from loket.jobs.policy import job


# After the work people wait for (bot turns, deliveries): an article published a few seconds
# later in the search is fine, a bot answering late is not (seeding the demo enqueues 45).
@job(retries=3, backoff_base=5.0, priority=-10)
def index_article(article_id: int) -> None:
    """Re-cut and re-embed an article's published translations (enqueued with every publish,
    withdrawal, change of its internal flag, or deletion of a translation)."""
    from loket.knowledge import indexing

    indexing.reindex_article(article_id)


@job(every_seconds=5.0)
def detect_languages() -> None:
    """Give new conversations their customer's language (loket.knowledge.languages)."""
    from loket.knowledge import languages

    languages.catch_up()


@job(every_seconds=10.0)
def enrich_conversations() -> None:
    """Sentiment, urgency and suggested labels of conversations with new customer messages
    (loket.knowledge.enrichment)."""
    from loket.knowledge import enrichment

    for _ in range(100):  # until it has read every settled message so far
        if enrichment.sweep() < enrichment.BATCH:
            break


@job(every_seconds=3600.0)
def train_label_models() -> None:
    """Retrain the label models of workspaces where that is due (loket.knowledge.enrichment)."""
    from loket.knowledge import enrichment

    enrichment.train_due()


@job(every_seconds=60.0, priority=-10)
def learn_from_conversations() -> None:
    """Passages of resolved conversations' answers for workspaces that opted in; drops those
    of reopened conversations and of workspaces that opted out (loket.knowledge.conversations)."""
    from loket.knowledge import conversations

    conversations.catch_up()
