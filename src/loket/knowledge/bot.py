"""The flow bot's knowledge answers (``settings.LOKET_BOT_KNOWLEDGE_ANSWERER``): the faq step
asks here first. An answer is the best public passage when retrieval is confident enough
(``retrieval.answer``: the same decision as the API's), with the article's title and, when the
workspace's help center is on, its link; otherwise None, and the step tries its own list, then
takes its no-answer branch. Nothing is generated."""

from __future__ import annotations

from loket.knowledge import public, retrieval


def answer(conversation, text: str, languages: list[str]) -> str | None:
    locale = next((language for language in languages if language), None)
    found = retrieval.answer(conversation.workspace_id, text, locale=locale)
    if found.text is None or found.hit is None:
        return None
    link = public.article_url(conversation.workspace_id, found.hit.locale, found.hit.slug)
    source = f"{found.hit.title}: {link}" if link else found.hit.title
    return f"{found.text}\n\n{source}"
