"""The flow bot's knowledge answers (``settings.LOKET_BOT_KNOWLEDGE_ANSWERER``): the faq step
asks here first. An answer is the best public passage when retrieval is confident enough
(``retrieval.answer``: the same decision as the API's), with the article's title and, when the
workspace's help center is on, its link; otherwise None, and the step tries its own list, then
takes its no-answer branch. Nothing is generated."""

from __future__ import annotations

from loket.knowledge import retrieval


def article_link(workspace_id: int, hit: retrieval.Hit) -> str:
    """The article's address in the workspace's help center, or "" when it has none."""
    try:
        from loket.knowledge import public
    except ImportError:  # pragma: no cover - the help center is part of the package
        return ""
    url_of = getattr(public, "article_url", None)
    return url_of(workspace_id, hit.locale, hit.slug) if url_of else ""


def answer(conversation, text: str, languages: list[str]) -> str | None:
    locale = next((language for language in languages if language), None)
    found = retrieval.answer(conversation.workspace_id, text, locale=locale)
    if found.text is None or found.hit is None:
        return None
    link = article_link(conversation.workspace_id, found.hit)
    source = f"{found.hit.title}: {link}" if link else found.hit.title
    return f"{found.text}\n\n{source}"
