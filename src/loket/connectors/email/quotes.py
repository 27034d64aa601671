"""Separate what the sender just wrote from the quoted history and signature under it.

`split_quoted` works on plain text, `split_quoted_html` on the HTML body, each with the markers
that the common mail clients leave in English, Dutch, German and French. Both are heuristics
tuned to one rule: never hide text the sender wrote above the quote. When unsure, or when the
whole message would disappear (a pure forward), everything stays visible. `html_to_text` lives
here too because the HTML splitter reads the text of the blocks it inspects.

mail-parser-reply was measured on the corpus and not used: it strips every line (so the
visible part is no longer a prefix of the body, and "quoted" is not what was removed), drops
inline answers below an attribution, keeps Dutch and French mobile signatures, and reduces a
pure forward to its separator line.
"""

from __future__ import annotations

import html as htmllib
import re
from bisect import bisect_right
from itertools import accumulate

__all__ = ["html_to_text", "split_quoted", "split_quoted_html"]

# --- plain text ---------------------------------------------------------------------------

# "On Mon, 3 Mar 2025 at 10:12, Jan <jan@x> wrote:", "Op 3 mrt. 2025 om 10:12 schreef Jan:",
# "Am 03.03.2025 um 10:12 schrieb Jan:", "Le 3 mars 2025 à 10:12, Jan a écrit :", also Apple's
# Dutch "... heeft Jan het volgende geschreven:". Clients wrap it over up to three lines.
_ATTR_START = re.compile(r"^\s*(?:on|op|am|le)\s", re.IGNORECASE)
_ATTR_VERB = r"(?:\bwrote|\b(?:schreef|geschreven|schrieb)\b[^\n]{0,250}?|\ba\s+[\u00e9e]crit)"
_ATTR_FULL = re.compile(
    rf"^\s*(?:on|op|am|le)\s.{{0,300}}?{_ATTR_VERB}\s*:\s*$", re.IGNORECASE | re.DOTALL
)
_ATTR_END = re.compile(rf"{_ATTR_VERB}\s*:\s*$", re.IGNORECASE)

# Outlook-style header blocks, also as rendered from HTML ("*From:*", "De :").
_LABEL = re.compile(
    r"^[ \t>]*\*{0,2}[ \t]*(from|van|von|de|sent|date|datum|verzonden|gesendet|envoy[\u00e9e]"
    r"|to|aan|an|\u00e0|a|cc|bcc|subject|onderwerp|betreff|objet|reply-to|antwort an)"
    r"[ \t]*\*{0,2}[ \t]*:",
    re.IGNORECASE,
)
_FROM_LABELS = frozenset({"from", "van", "von", "de"})
_STRONG_LABELS = frozenset(
    {"sent", "date", "datum", "verzonden", "gesendet", "envoy\u00e9", "envoye", "subject"}
    | {"onderwerp", "betreff", "objet"}
)
_SEPARATOR = re.compile(
    r"^[ \t>]*[-_=*]{2,}[ \t]*(?:original message|oorspronkelijk bericht|origineel bericht"
    r"|urspr\u00fcngliche nachricht|original-nachricht"
    r"|message d'origine|message original|forwarded message|doorgestuurd bericht"
    r"|weitergeleitete nachricht|message transf\u00e9r\u00e9|message transfere)[ \t]*[-_=*]{2,}\s*$"
    r"|^[ \t]*(?:begin forwarded message|begin doorgestuurd bericht"
    r"|anfang der weitergeleiteten nachricht|d\u00e9but du message r\u00e9exp\u00e9di\u00e9)"
    r"[ \t]*:\s*$",
    re.IGNORECASE,
)
_UNDERSCORES = re.compile(r"^[ \t]*_{8,}\s*$")

# Signatures: the RFC 3676 "-- " line (often stripped to "--") and the mobile defaults.
_SIG_DELIMITER = re.compile(r"^--[ \t]?$")
_MOBILE_SIGNATURE = re.compile(
    r"^[ \t]*(?:sent from my\b.{0,40}|sent from (?:outlook|mail|yahoo mail)\b.{0,60}"
    r"|get outlook for (?:ios|android)\b.{0,100}|sent with proton mail\b.{0,40}"
    r"|verstuurd vanaf mijn\b.{0,40}|verzonden vanaf mijn\b.{0,40}|verzonden met\b.{0,40}"
    r"|outlook voor (?:ios|android) downloaden\b.{0,100}"
    r"|von meinem\b.{0,40}\bgesendet\.?|gesendet von meinem\b.{0,40}|gesendet mit\b.{0,40}"
    r"|envoy[\u00e9e] de mon\b.{0,40}|envoy[\u00e9e] depuis\b.{0,60}"
    r"|t[\u00e9e]l[\u00e9e]charger outlook pour\b.{0,100})\s*$",
    re.IGNORECASE,
)
_MAX_SIGNATURE_LINES = 20


def _is_blank(line: str) -> bool:
    return not line.strip()


def _is_quoted(line: str) -> bool:
    return line.lstrip(" \t").startswith(">")


def _label(line: str) -> str:
    m = _LABEL.match(line)
    return m.group(1).lower() if m else ""


def _header_block_at(lines: list[str], i: int) -> bool:
    """A From:/Van:/Von:/De : line followed by at least two more header lines, one of them a
    Sent/Date/Subject, within the next few lines (blank lines allowed: HTML renderings)."""
    if _label(lines[i]) not in _FROM_LABELS:
        return False
    seen = 0
    strong = False
    for line in lines[i + 1 : i + 10]:
        label = _label(line)
        if not label:
            continue
        if label in _FROM_LABELS:
            break
        seen += 1
        strong = strong or label in _STRONG_LABELS
        if seen >= 2 and strong:
            return True
    return False


def _attribution_at(lines: list[str], i: int) -> int | None:
    """If an "On ... wrote:" attribution starts at line i, the index of its last line."""
    if not _ATTR_START.match(lines[i]) or _is_quoted(lines[i]):
        return None
    joined = ""
    for k in range(i, min(i + 3, len(lines))):
        if _is_blank(lines[k]):
            return None
        joined = f"{joined} {lines[k].strip()}" if joined else lines[k].strip()
        if _ATTR_FULL.match(joined):
            return k
    return None


def _ends_attribution(line: str) -> bool:
    """A short line ending in "wrote:" (or the Dutch, German, French verb) and a colon."""
    return len(line) < 300 and line.rstrip().endswith(":") and bool(_ATTR_END.search(line))


def _next_nonblank(lines: list[str], i: int) -> int | None:
    for k in range(i, len(lines)):
        if not _is_blank(lines[k]):
            return k
    return None


def _interleaved(lines: list[str], start: int) -> bool:
    """Own text after quoted lines below `start`: an inline (interleaved) reply."""
    seen_quote = False
    for line in lines[start:]:
        if _is_blank(line):
            continue
        if _is_quoted(line):
            seen_quote = True
        elif seen_quote:
            return True
    return False


# Lines that might start a quote (a superset of the exact checks in _quote_start), found with
# one pass over the text instead of several Python calls per line.
_CANDIDATE = re.compile(
    r"^[ \t]*(?:(?:on|op|am|le)\s|[-_=*]{2}|\*{0,2}[ \t]*(?:from|van|von|de)[ \t]*\*{0,2}[ \t]*:"
    r"|begin|anfang|d\u00e9but)"
    r"|:[ \t\r]*$",  # a line ending in a colon: "... wrote:"
    re.IGNORECASE | re.MULTILINE,
)


def _candidate_lines(lines: list[str]) -> list[int]:
    text = "".join(lines)
    starts = list(accumulate((len(line) for line in lines), initial=0))
    found = {bisect_right(starts, m.start()) - 1 for m in _CANDIDATE.finditer(text)}
    return sorted(i for i in found if i < len(lines))


def _quote_start(lines: list[str]) -> int | None:
    """Index of the line where the quoted history begins, or None."""
    candidates: list[int] = []
    for i in _candidate_lines(lines):
        line = lines[i]
        # Quoted lines are left to the trailing-block rule below, so that a header block
        # quoted inside an inline reply does not cut the answers under it.
        if _is_blank(line) or _is_quoted(line):
            continue
        if _SEPARATOR.match(line):
            candidates.append(i)
            break
        if _UNDERSCORES.match(line):
            k = _next_nonblank(lines, i + 1)
            if k is not None and k - i <= 2 and _header_block_at(lines, k):
                candidates.append(i)
                break
            continue
        if _header_block_at(lines, i):
            candidates.append(i)
            break
        end = _attribution_at(lines, i)
        if end is None and _ends_attribution(line):
            # "Jan Jansen <jan@x> wrote:" alone counts when a quoted line follows.
            k = _next_nonblank(lines, i + 1)
            if k is not None and _is_quoted(lines[k]):
                end = i
        # An attribution above inline answers is not a cut point: the answers would go.
        if end is not None and not _interleaved(lines, end + 1):
            candidates.append(i)
            break
    # The trailing run of ">" lines, with the attribution right above it.
    j = len(lines)
    while j > 0 and (_is_blank(lines[j - 1]) or _is_quoted(lines[j - 1])):
        j -= 1
    k = _next_nonblank(lines, j)
    if k is not None and _is_quoted(lines[k]):
        start = k
        above = k - 1
        while above >= 0 and _is_blank(lines[above]):
            above -= 1
        if above >= 0 and _ends_attribution(lines[above]):
            start = above
            for back in (above - 1, above - 2):  # a wrapped "On ...\n... wrote:"
                if back >= 0 and _attribution_at(lines, back) == above:
                    start = back
                    break
        candidates.append(start)
    return min(candidates) if candidates else None


def _signature_start(lines: list[str], end: int) -> int | None:
    """Index of a signature above `end` (the quote, or the end of the text), or None."""
    found = None
    for i in range(end - 1, max(-1, end - 1 - 40), -1):
        line = lines[i].rstrip("\r\n")
        if _SIG_DELIMITER.match(line):
            body = [ln for ln in lines[i + 1 : end] if not _is_blank(ln)]
            if len(body) <= _MAX_SIGNATURE_LINES:
                found = i
            break
    # A mobile signature counts only as the last thing before the quote or the end.
    k = end - 1
    while k >= 0 and _is_blank(lines[k]):
        k -= 1
    if k >= 0 and _MOBILE_SIGNATURE.match(lines[k].rstrip("\r\n")):
        found = k if found is None else min(found, k)
    return found


def split_quoted(text: str) -> tuple[str, str]:
    """(visible, quoted) for a plain-text body. `quoted` is the removed tail: the history and
    the signature above it. When nothing is recognised: (text, "")."""
    if not text or not text.strip():
        return text, ""
    lines = text.splitlines(keepends=True)
    quote = _quote_start(lines)
    end = quote if quote is not None else len(lines)
    signature = _signature_start(lines, end)
    cuts = [c for c in (signature, quote) if c is not None]
    for cut in sorted(set(cuts)):
        visible = "".join(lines[:cut]).rstrip()
        if visible.strip():
            return visible, "".join(lines[cut:]).strip("\r\n")
    # Everything would go (a pure forward, a lone signature): keep it all visible.
    return text, ""


# --- HTML -------------------------------------------------------------------------------

# No "<" inside a tag and bounded quoted values: stray "<" or quotes cost linear time, not
# quadratic, on hostile input.
_TAG = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9:-]*)((?:[^<>\"']|\"[^\"<]{0,4000}\"|'[^'<]{0,4000}')*)>"
)
_ATTR = re.compile(r"([a-zA-Z_:][-\w:.]*)\s*(?:=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+))?")
_CONTAINER_CLASSES = frozenset(
    {"gmail_quote", "gmail_quote_container", "gmail_attr", "yahoo_quoted", "moz-cite-prefix"}
    | {"protonmail_quote"}
)
_TO_END_IDS = ("divrplyfwdmsg", "appendonsend")
_HTML_SEPARATOR = re.compile(
    r"-{3,}\s*(?:original message|oorspronkelijk bericht|urspr\u00fcngliche nachricht"
    r"|message d'origine)\s*-{3,}",
    re.IGNORECASE,
)
_BLOCK_OPEN = re.compile(r"<(?:div|p)\b", re.IGNORECASE)


def _attrs(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in _ATTR.finditer(raw):
        value = m.group(2) or ""
        if value[:1] in "\"'":
            value = value[1:-1]
        out.setdefault(m.group(1).lower(), htmllib.unescape(value))
    return out


def _element_end(html: str, name: str, after: int) -> int | None:
    """End offset of the element whose start tag ends at `after` (nesting counted)."""
    depth = 1
    pattern = re.compile(rf"<(/?){name}(?=[\s>/])[^>]*>", re.IGNORECASE)
    for m in pattern.finditer(html, after):
        depth += -1 if m.group(1) else 1
        if depth == 0:
            return m.end()
    return None


_TOKEN = re.compile(
    r"<!--.*?(?:-->|\Z)|<(script|style|head|title|template|noscript)\b.*?(?:</\1\s*>|\Z)"
    r"|<img\b|<[^<>]*>|[^<]+|<",
    re.IGNORECASE | re.DOTALL,
)


def _has_content(fragment: str) -> bool:
    """Text or an image a reader would see (markup, styles and comments do not count).
    Stops at the first one: usually near the start of the fragment."""
    for m in _TOKEN.finditer(fragment):
        piece = m.group(0)
        if piece[:1] != "<" or piece == "<":
            text = htmllib.unescape(piece) if "&" in piece else piece
            if text.replace("\u200b", "").replace("\ufeff", "").strip():
                return True
        elif piece.lower() == "<img":
            return True
    return False


def _header_block_follows(html: str, pos: int) -> bool:
    lines = [ln for ln in html_to_text(html[pos : pos + 3000]).split("\n") if ln.strip()]
    return any(_header_block_at(lines, i) for i in range(min(3, len(lines))))


def _body_end(html: str, start: int) -> int:
    """Where the body content ends (before the last </body>), so closing tags stay visible."""
    end = html.lower().rfind("</body")
    return end if end >= start else len(html)


def _marker_kind(
    name: str, attrs: dict[str, str], html: str, after: int, rules: list[int]
) -> str | None:
    """Classify a start tag: "container" when the element holds the quote, "to_end" when
    everything after it is quoted (Outlook puts the quoted body after its header block)."""
    classes = set(attrs.get("class", "").lower().split())
    ident = attrs.get("id", "").lower()
    if name == "blockquote":
        cite = attrs.get("type", "").lower() == "cite" or "gmail_quote" in classes
        return "container" if cite else None
    if name == "div" and (
        classes & _CONTAINER_CLASSES or ident == "mail-editor-reference-message-container"
    ):
        return "container"
    if name == "div" and (ident.endswith(_TO_END_IDS) or "outlookmessageheader" in classes):
        return "to_end"
    ruled = name == "hr" or (name == "div" and "border-top" in attrs.get("style", "").lower())
    if ruled and rules[0] < 50:  # a bounded number of looks (newsletters are full of rules)
        rules[0] += 1
        if not _header_block_follows(html, after):
            return None
        # Outlook desktop: a rule or top-bordered div, then the From:/Sent: block.
        return "to_end"
    return None


_WRAPPER_BEFORE = re.compile(r"(?:<div\b[^<>]*>|<hr\b[^<>]*>|<p\b[^<>]*>\s*</p>|\s+)$", re.I)


def _climb(html: str, start: int, floor: int) -> int:
    """Move a to-the-end cut up over what opens right above it with nothing to show: the <hr>
    Outlook puts above its header block, and empty wrapper <div>s."""
    for _ in range(6):
        m = _WRAPPER_BEFORE.search(html, max(floor, start - 400), start)
        if not m or m.start() < floor:
            break
        start = m.start()
    return start


def _quote_spans(html: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    limit = -1
    rules = [0]
    for m in _TAG.finditer(html):
        if m.group(1) or m.start() < limit:
            continue
        name = m.group(2).lower()
        if name not in ("div", "blockquote", "hr"):
            continue
        kind = _marker_kind(name, _attrs(m.group(3)), html, m.end(), rules)
        if kind is None:
            continue
        start = m.start()
        end = _element_end(html, name, m.end()) if kind == "container" else None
        to_end = end is None  # a container never closed (truncated) runs to the end too
        if to_end:
            start = _climb(html, start, max(0, limit))
            end = _body_end(html, start)
        assert end is not None
        spans.append((start, end))
        limit = end
        if to_end:
            break
    if not spans or spans[-1][1] < len(html):
        # Old Outlook and plain-text-turned-HTML: a "-----Original Message-----" line.
        after = spans[-1][1] if spans else 0
        sep = _HTML_SEPARATOR.search(html, after)
        if sep:
            block = None
            for b in _BLOCK_OPEN.finditer(html, max(after, sep.start() - 300), sep.start()):
                block = b.start()
            start = block if block is not None else sep.start()
            spans.append((start, _body_end(html, start)))
    return spans


def _attribution_before(html: str, cut: int) -> int:
    """Move `cut` up over an "On ... wrote:" block right above it (clients without markers)."""
    window_start = max(0, cut - 800)
    opens = [m.start() for m in _BLOCK_OPEN.finditer(html, window_start, cut)]
    for pos in reversed(opens):
        text = " ".join(html_to_text(html[pos:cut]).split())
        if not text:
            continue
        # "... wrote:" alone must look like an attribution (a date or an address), so that a
        # sender's own "As I wrote:" line stays visible.
        if _ATTR_FULL.match(text) or (
            len(text) < 300 and _ATTR_END.search(text) and re.search(r"[@\d]", text)
        ):
            return pos
        break
    return cut


def split_quoted_html(html: str) -> tuple[str, str]:
    """(visible, quoted) for an HTML body: the quoted blocks are cut out as source text, the
    rest is left as sent (it is sanitised later). When nothing is recognised: (html, "")."""
    if not html or not html.strip():
        return html, ""
    spans = _quote_spans(html)
    if not spans:
        return html, ""
    # Only a trailing run of quote blocks goes: text after a block means an inline reply.
    first = None
    for i in range(len(spans) - 1, -1, -1):
        gap_end = spans[i + 1][0] if i + 1 < len(spans) else len(html)
        if _has_content(html[spans[i][1] : gap_end]):
            break
        first = i
    if first is None:
        return html, ""
    cut = _attribution_before(html, spans[first][0])
    last_end = spans[-1][1]
    visible = html[:cut] + html[last_end:]
    if not _has_content(html[:cut]):
        return html, ""
    return visible, html[cut:last_end]


# --- HTML to text -----------------------------------------------------------------------

_DROP = re.compile(
    r"<!--.*?(?:-->|\Z)"
    r"|<(script|style|title|template|noscript|xml)\b.*?(?:</\1\s*>|\Z)",
    re.IGNORECASE | re.DOTALL,
)
_PRE = re.compile(r"<pre\b.*?(?:</pre\s*>|\Z)", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"[ \t\r\n\f]+")
_DECLARATION = re.compile(r"<[!?][^>]*>")
_BLOCK_TAGS = frozenset(
    {"div", "tr", "table", "tbody", "thead", "tfoot", "ul", "ol", "dl", "dd", "dt", "section"}
    | {"article", "header", "footer", "address", "center", "form", "fieldset", "figure"}
    | {"main", "nav", "aside", "pre", "caption", "hr"}
)
_PARAGRAPH_TAGS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6"})
_QUOTE_OPEN, _QUOTE_CLOSE, _PRE_NEWLINE = "\x01", "\x02", "\x03"


def _drop_head(html: str) -> str:
    lower = html.lower()
    start = lower.find("<head")
    end = lower.find("</head", start)
    if start < 0 or end < 0 or lower[start + 5 : start + 6] not in (">", " ", "\n", "\t", "\r"):
        return html
    close = html.find(">", end)
    return html[:start] + (html[close + 1 :] if close >= 0 else "")


def _tag_to_text(m: re.Match[str]) -> str:
    closing, name = m.group(1), m.group(2).lower()
    if name == "br":
        return "\n"
    if name in _PARAGRAPH_TAGS:
        return "\n\n"
    if name in _BLOCK_TAGS:
        return "\n"
    if name == "li":
        return "" if closing else "\n- "
    if name in ("td", "th"):
        return " " if closing else ""
    if name == "blockquote":
        return f"\n{_QUOTE_CLOSE if closing else _QUOTE_OPEN}\n"
    return ""


def html_to_text(html: str) -> str:
    """Readable plain text from HTML: no tags, scripts or styles, entities decoded, line
    breaks kept, blockquotes as "> " lines (so the text quote heuristics see them)."""
    if not html:
        return ""
    s = _drop_head(html)
    s = _DROP.sub("", s)
    s = _PRE.sub(lambda m: m.group(0).replace("\r\n", "\n").replace("\n", _PRE_NEWLINE), s)
    s = _SPACE.sub(" ", s)
    s = _TAG.sub(_tag_to_text, s)
    s = _DECLARATION.sub("", s)
    s = htmllib.unescape(s).replace("\xa0", " ").replace(_PRE_NEWLINE, "\n")
    out: list[str] = []
    depth = 0
    for raw in s.split("\n"):
        line = " ".join(raw.split())
        if line == _QUOTE_OPEN:
            depth += 1
            continue
        if line == _QUOTE_CLOSE:
            depth = max(0, depth - 1)
            continue
        line = line.replace(_QUOTE_OPEN, "").replace(_QUOTE_CLOSE, "")
        if depth and line:
            line = f"{'> ' * depth}{line}"
        elif depth:
            line = ">" * depth
        out.append(line)
    text = "\n".join(out)
    text = re.sub(r"\n{3,}", "\n\n", text)
    text = re.sub(r"(?m)^(>+)(?:\n\1)+$", r"\1", text)  # runs of empty quote lines
    return text.strip()
