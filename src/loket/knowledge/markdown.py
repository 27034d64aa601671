"""Articles are written in Markdown (CommonMark, with tables and strikethrough) and shown as
HTML sanitised with nh3 — an article's author is trusted less than the page it appears on."""

from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)
_TAGS = {
    "p",
    "br",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "strong",
    "em",
    "s",
    "del",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "img",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}}
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


# An uploaded image's reference as Markdown renders it (loket.knowledge.images).
_IMAGE_REFERENCE = re.compile(r'src="image:([0-9a-f]{24}\.(?:png|jpg|webp|gif))"')


def to_html(markdown: str, images: str | None = None) -> str:
    """Sanitised HTML; ``images``: the URL prefix of the page's uploaded images (the reference
    ``image:<key>`` becomes ``<images><key>``). Without it such images are left out."""
    html = _md.render(markdown or "")
    if images is not None:
        html = _IMAGE_REFERENCE.sub(lambda match: f'src="{images}{match[1]}"', html)
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "tel"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def to_text(markdown: str) -> str:
    """The words a reader sees, without Markdown's marks (for passages, snippets, answers)."""
    html = _md.render(markdown or "")
    text = nh3.clean(html, tags=set(), strip_comments=True)
    text = re.sub(r"&amp;", "&", re.sub(r"&lt;", "<", re.sub(r"&gt;", ">", text)))
    text = text.replace("&quot;", '"').replace("&#39;", "'")
    return re.sub(r"[ \t]+", " ", re.sub(r"\n{3,}", "\n\n", text)).strip()


def sections(markdown: str) -> list[tuple[str, str]]:
    """The body cut at its headings: ``[(heading, markdown of the section)]``; text before the
    first heading has the heading ``""``."""
    found: list[tuple[str, list[str]]] = [("", [])]
    fenced = False
    for line in (markdown or "").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match:
            found.append((match[2], []))
        else:
            found[-1][1].append(line)
    return [
        (heading, "\n".join(lines).strip())
        for heading, lines in found
        if "\n".join(lines).strip() or heading
    ]
