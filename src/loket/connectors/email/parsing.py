"""Turn one raw email (bytes) into a ParsedEmail: headers, bodies, attachments, loop signals.

Pure Python and free of Django, so the IMAP poller, the SMTP receiver and the tests share it.
Real-world mail is broken in every way imaginable, so nothing here raises on bad input except
UnparseableEmail for input with no header block at all: each problem is repaired as well as
possible and described in ParsedEmail.defects. The stdlib parser (email.policy.default) builds
the MIME tree; header values, parameters, charsets and base64 are decoded by mime.py,
leniently, because the stdlib's strict readings lose data on the mail people actually send.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from urllib.parse import unquote

from .loops import (
    Bounce,
    auto_reason,
    bounce_from_delivery_status,
    bounce_from_text,
    looks_like_bounce,
)
from .mime import (
    _DEFECT_NOTES,
    _ENCODED_WORD,
    _FOLD,
    _TYPE,
    _decode_payload,
    _defect_note,
    _Defects,
    _Headers,
    _parse_params,
    _raw_payload,
    _strip_controls,
    _title,
    _unflow,
    decode_text,
    decode_words,
    safe_filename,
)
from .quotes import html_to_text, split_quoted, split_quoted_html

__all__ = [
    "AuthenticationResults",
    "Bounce",
    "EmailAddress",
    "ParsedAttachment",
    "ParsedEmail",
    "SkippedAttachment",
    "UnparseableEmail",
    "html_to_text",
    "normalise_message_id",
    "parse_email",
    "safe_filename",
    "split_quoted",
    "split_quoted_html",
]

DEFAULT_MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024


class UnparseableEmail(ValueError):
    """Hopeless input: empty, or without any header block."""


@dataclass(frozen=True)
class EmailAddress:
    name: str  # display name, decoded, "" when none
    address: str  # "local@domain", domain lowercased, "" when unusable


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str  # display-safe (safe_filename)
    content_type: str  # lowercased "type/subtype"
    content: bytes
    content_id: str = ""  # Content-ID without <>, for inline parts referenced as cid:
    inline: bool = False  # an inline image referenced by the HTML body


@dataclass(frozen=True)
class SkippedAttachment:
    filename: str
    content_type: str
    size: int
    reason: str  # e.g. "larger than the 25 MB limit"


@dataclass(frozen=True)
class AuthenticationResults:
    authserv_id: str
    spf: str  # "pass" | "fail" | "softfail" | "neutral" | "none" | "temperror" | "permerror" | ""
    dkim: str  # "pass" if any signature passed, else the first result
    dmarc: str


@dataclass(frozen=True)
class ParsedEmail:
    message_id: str  # without <>; "" when missing or invalid
    content_hash: str  # sha256 hex of the raw mail without trace headers (see _content_hash)
    subject: str  # decoded, whitespace-collapsed, "" when none
    sender: EmailAddress | None  # From (first address)
    reply_to: tuple[EmailAddress, ...]
    to: tuple[EmailAddress, ...]
    cc: tuple[EmailAddress, ...]
    delivered_to: tuple[str, ...]  # lowercased, from Delivered-To / X-Original-To / Envelope-To
    date: datetime | None  # timezone-aware (UTC when the header has no zone)
    in_reply_to: tuple[str, ...]  # Message-IDs without <>
    references: tuple[str, ...]  # without <>, header order, deduplicated, at most 50
    text: str  # the full plain-text body (derived from the HTML when there is no text part)
    html: str  # the HTML body as sent (NOT sanitised), "" when none
    visible_text: str  # `text` without quoted history and signature
    quoted_text: str  # what was removed from `text` ("" when nothing)
    visible_html: str  # `html` without the quoted history block(s) ("" when no html)
    quoted_html: str  # the removed HTML ("" when nothing)
    attachments: tuple[ParsedAttachment, ...]
    skipped_attachments: tuple[SkippedAttachment, ...]
    auto_submitted: bool  # must never trigger an automatic reply (see loops.py)
    auto_reason: str  # which signal, e.g. "Auto-Submitted: auto-replied", "bounce"
    bounce: Bounce | None
    authentication: AuthenticationResults | None  # only from a trusted host's header
    defects: tuple[str, ...]  # short notes on what was broken and how it was handled


# --- small helpers ----------------------------------------------------------------------

_MAX_SUBJECT = 1000
_MAX_NAME = 200
_MAX_ID = 250
_MAX_REFERENCES = 50
_MAX_DEPTH = 30
_MAX_PARTS = 1000


def _human_size(n: int) -> str:
    for unit, size in (("MB", 1024 * 1024), ("KB", 1024)):
        if n >= size:
            return f"{n // size} {unit}" if n % size == 0 else f"{n / size:.1f} {unit}"
    return f"{n} bytes"


# --- addresses, ids, dates --------------------------------------------------------------

_ADDRESS = re.compile(r"[^\s@<>()\[\],;:\"\\]+@[^\s@<>()\[\],;:\"\\]+")
_PLACEHOLDER = re.compile(r"QENCWORD(\d+)Q")


def _clean_address(value: str) -> str:
    value = value.strip().strip("<>").strip()
    if len(value) > 254 or not _ADDRESS.fullmatch(value):
        return ""
    local, _, domain = value.rpartition("@")
    domain = domain.lower().rstrip(".")
    return f"{local}@{domain}" if local and domain else ""


def _addresses(headers: _Headers, name: str) -> tuple[EmailAddress, ...]:
    out: list[EmailAddress] = []
    for value in headers.text(name):
        # Shield encoded words so that a comma inside one cannot split an address.
        words: list[str] = []

        def shield(m: re.Match[str], words: list[str] = words) -> str:
            words.append(m.group(0))
            return f"QENCWORD{len(words) - 1}Q"

        shielded = _ENCODED_WORD.sub(shield, value)
        try:
            pairs = getaddresses([shielded])
        except Exception:  # stdlib address parsing has had crash bugs
            pairs = [("", a) for a in _ADDRESS.findall(shielded)]
            headers.defects.add(f"{_title(name)} header could not be parsed; addresses salvaged")
        for display, addr in pairs:

            def unshield(text: str, words: list[str] = words) -> str:
                return _PLACEHOLDER.sub(lambda m: words[int(m.group(1))], text)

            display = unshield(display)
            address = _clean_address(unshield(addr))
            if not address and addr:
                found = _ADDRESS.search(f"{display} {addr}")
                if found:
                    address = _clean_address(found.group(0))
                    display = display.replace(found.group(0), "")
            display = decode_words(display, headers.defects, _title(name))
            display = " ".join(display.split()).strip("\"' ")
            if len(display) > _MAX_NAME:
                display = display[:_MAX_NAME]
                headers.defects.add(f"display name in {_title(name)} truncated")
            if address or display:
                out.append(EmailAddress(name=display, address=address))
    return tuple(out)


_COMMENT = re.compile(r"\([^()]*\)")
_ID_SHAPE = re.compile(r"[^\s<>@()\\,;:\x00-\x1f\x7f]+@[^\s<>@()\\,;:\x00-\x1f\x7f]+")
_ANGLE_ID = re.compile(r"<([^<>]*)>")


def _strip_comments(value: str) -> str:
    for _ in range(5):  # nested comments, a few levels deep
        stripped = _COMMENT.sub(" ", value)
        if stripped == value:
            break
        value = stripped
    return value


def normalise_message_id(value: str) -> str:
    """ "<abc@example.com> (comment)" -> "abc@example.com"; "" when not addr-spec-like."""
    value = _strip_comments(value or "")
    m = _ANGLE_ID.search(value)
    if m:
        value = m.group(1)
    elif "<" in value:
        value = value.split("<", 1)[1]
    value = "".join(value.split()).strip("<>")
    if len(value) > _MAX_ID or not value.isascii() or not _ID_SHAPE.fullmatch(value):
        return ""  # (UTF-8 ids, RFC 6532, are too rare to be worth the risk)
    return value


def _message_ids(values: list[str]) -> list[str]:
    """Every id in these header values, in order, deduplicated."""
    ids: list[str] = []
    for value in values:
        value = _strip_comments(value)
        tokens = _ANGLE_ID.findall(value) if "<" in value else re.split(r"[\s,]+", value)
        for token in tokens:
            mid = normalise_message_id(token)
            if mid:
                ids.append(mid)
    return list(dict.fromkeys(ids))


def _parse_date(value: str, defects: _Defects) -> datetime | None:
    if not value.strip():
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            defects.add("unparseable Date header")
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


# --- Authentication-Results (RFC 8601) ----------------------------------------------------

_RESULT = re.compile(r"(?:^|[\s;])(spf|dkim|dmarc)(?:/\d+)?\s*=\s*\"?([a-zA-Z]+)")


def _authentication(headers: _Headers, trusted: Collection[str]) -> AuthenticationResults | None:
    trusted_ids = {t.strip().lower() for t in trusted if t.strip()}
    if not trusted_ids:
        return None
    for value in headers.text("authentication-results"):  # topmost first: the nearest hop
        value = _strip_comments(value)
        first, _, rest = value.partition(";")
        if "=" in first:  # no authserv-id (Exchange Online writes it that way)
            continue
        tokens = first.split()
        authserv_id = tokens[0].lower() if tokens else ""
        if authserv_id not in trusted_ids:
            continue
        found: dict[str, list[str]] = {"spf": [], "dkim": [], "dmarc": []}
        for m in _RESULT.finditer(rest):
            result = m.group(2).lower()
            found[m.group(1).lower()].append("fail" if result == "hardfail" else result)
        dkim = "pass" if "pass" in found["dkim"] else next(iter(found["dkim"]), "")
        return AuthenticationResults(
            authserv_id=authserv_id,
            spf=next(iter(found["spf"]), ""),
            dkim=dkim,
            dmarc=next(iter(found["dmarc"]), ""),
        )
    return None


# --- content hash -----------------------------------------------------------------------

# Trace fields that each hop adds or rewrites; without them a re-delivered copy hashes equal.
_TRACE_FIELDS = frozenset(
    {"received", "delivered-to", "return-path", "envelope-to", "authentication-results"}
    | {"received-spf", "status", "content-length", "lines"}
)
_TRACE_PREFIXES = (b"x-", b"arc-")
_HEAD_END = re.compile(rb"\r?\n\r?\n")


def _content_hash(raw: bytes) -> str:
    """sha256 over the mail minus trace fields (Received, Delivered-To, Return-Path, X-*,
    ARC-*, Authentication-Results...) and the mbox From_ line, with line endings made LF:
    a hop that converts CRLF to LF delivers the same mail."""
    m = _HEAD_END.search(raw)
    head, body = (raw[: m.start()], raw[m.end() :]) if m else (raw, b"")
    kept: list[bytes] = []
    keep = True
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t"):
            if keep:
                kept.append(line)
            continue
        name = line.split(b":", 1)[0].strip().lower()
        keep = not (
            line.startswith(b"From ")
            or name.decode("latin-1") in _TRACE_FIELDS
            or name.startswith(_TRACE_PREFIXES)
        )
        if keep:
            kept.append(line)
    digest = hashlib.sha256(b"\n".join(kept))
    digest.update(b"\n\n")
    digest.update(body.replace(b"\r\n", b"\n"))
    return digest.hexdigest()


# --- the MIME walk ----------------------------------------------------------------------


@dataclass
class _Body:
    """What the walk over the MIME tree collects."""

    texts: list[str] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    attachments: list[ParsedAttachment] = field(default_factory=list)
    skipped: list[SkippedAttachment] = field(default_factory=list)
    report_type: str = ""
    delivery_status: list[str] = field(default_factory=list)
    returned_ids: list[str] = field(default_factory=list)
    parts: int = 0


class _Walker:
    def __init__(self, defects: _Defects, max_attachment_bytes: int) -> None:
        self.defects = defects
        self.max_bytes = max_attachment_bytes
        self.body = _Body()
        self.in_report = False  # walking the machine parts of a multipart/report

    # - part metadata -

    def _meta(self, part: Message) -> tuple[str, dict[str, str], str, dict[str, str]]:
        headers = _Headers(part, self.defects)
        ctype_raw = headers.text("content-type")
        if ctype_raw:
            ctype, params = _parse_params(ctype_raw[0], self.defects, "Content-Type")
            if not _TYPE.fullmatch(ctype):
                self.defects.add(f"invalid Content-Type {ctype[:40]!r}; read as text/plain")
                ctype = "text/plain"
        else:
            ctype, params = _safe_default_type(part), {}
        disp_raw = headers.text("content-disposition")
        disposition, dparams = ("", {})
        if disp_raw:
            disposition, dparams = _parse_params(disp_raw[0], self.defects, "Content-Disposition")
        return ctype, params, disposition, dparams

    # - the walk -

    def walk(
        self,
        part: Message,
        depth: int = 0,
        want_text: bool = True,
        want_html: bool = True,
        keep_unwanted: bool = True,
        root: bool = False,
    ) -> None:
        """Collect bodies and attachments below `part`. want_text/want_html say which body
        types this branch may supply; a text part it may not supply is an attachment when
        keep_unwanted (a related resource, a report part) and ignored when not (the
        alternative that was not chosen)."""
        self.body.parts += 1
        if self.body.parts > _MAX_PARTS:
            self.defects.add(f"more than {_MAX_PARTS} MIME parts; the rest was ignored")
            return
        if depth > _MAX_DEPTH:
            self.defects.add("MIME parts nested too deep; the innermost were ignored")
            return
        for defect in getattr(part, "defects", ()):
            self.defects.add(_DEFECT_NOTES.get(type(defect), _defect_note(defect)))
        ctype, params, disposition, dparams = self._meta(part)
        maintype, _, subtype = ctype.partition("/")
        payload = _children(part)
        wants = (want_text, want_html, keep_unwanted)
        if maintype == "message":
            self._message_part(part, ctype, dparams, params)
            return
        if maintype == "multipart" or isinstance(payload, list):
            if not isinstance(payload, list):
                recovered = self._recover_multipart(part, subtype or "mixed")
                if recovered is None:
                    self.defects.add("multipart without usable boundaries; read as plain text")
                    self._leaf(part, "text/plain", {}, "", {}, wants, True)
                    return
                payload = _children(recovered)
            if isinstance(payload, list):
                kind = subtype if maintype == "multipart" else "mixed"
                self._multipart(kind, params, payload, depth, wants)
            return
        self._leaf(part, ctype, params, disposition, dparams, wants, root)

    def _multipart(
        self,
        subtype: str,
        params: dict[str, str],
        children: list[Message],
        depth: int,
        wants: tuple[bool, bool, bool],
    ) -> None:
        want_text, want_html, keep = wants
        children = [c for c in children if isinstance(c, Message)]
        if not children:
            return
        if subtype == "alternative":
            # HTML from the last alternative that has it (the richest), text from the first.
            text_child = next((c for c in children if _provides(c, "text/plain")), None)
            html_child = next((c for c in reversed(children) if _provides(c, "text/html")), None)
            for child in children:
                self.walk(
                    child,
                    depth + 1,
                    want_text=want_text and child is text_child,
                    want_html=want_html and child is html_child,
                    keep_unwanted=keep and child is not text_child and child is not html_child,
                )
            return
        first: Message | None = children[0]
        if subtype == "related":
            start = params.get("start", "").strip().strip("<>")
            if start:
                first = next((c for c in children if _content_id(c) == start), children[0])
        elif subtype == "report":
            self.body.report_type = params.get("report-type", "").strip().lower()
        elif subtype == "encrypted":
            first = None
        elif subtype != "signed":  # mixed, digest, parallel and anything unknown
            for child in children:
                self.walk(child, depth + 1, want_text, want_html, keep)
            return
        # One part carries the body; the others are resources, reports or signatures.
        if first is not None:
            self.walk(first, depth + 1, want_text, want_html, keep)
        outer, self.in_report = self.in_report, subtype == "report"
        for child in children:
            if child is not first:
                self.walk(child, depth + 1, want_text=False, want_html=False)
        self.in_report = outer

    def _recover_multipart(self, part: Message, subtype: str) -> Message | None:
        """A multipart whose declared boundary never occurs: reparse with the boundary the
        body actually uses (the first "--x" line followed by a header line)."""
        data = _raw_payload(part)
        m = re.search(rb"(?m)^--([ -~]{1,70}?)[ \t]*\r?\n[A-Za-z-]+:", data)
        if not m:
            return None
        boundary = m.group(1).rstrip(b"-") if m.group(1).endswith(b"--") else m.group(1)
        if b'"' in boundary:
            return None
        head = b"Content-Type: multipart/" + subtype.encode("ascii", "replace")
        head += b'; boundary="' + boundary + b'"\r\n\r\n'
        try:
            reparsed = BytesParser(policy=policy.default).parsebytes(head + data)
        except Exception:
            return None
        if _children(reparsed) is None:
            return None
        self.defects.add("the declared MIME boundary is not in the body; used the one found")
        return reparsed

    def _message_part(
        self, part: Message, ctype: str, dparams: dict[str, str], params: dict[str, str]
    ) -> None:
        """message/*: a forwarded or returned message, or a delivery report, as attachment."""
        blocks = [p for p in _children(part) or () if isinstance(p, Message)]
        if blocks and ctype.endswith(("delivery-status", "disposition-notification")):
            content = _blocks_text(blocks).encode("utf-8", "surrogateescape")
            if ctype.endswith("delivery-status"):
                status = decode_text(content, "utf-8", ctype, self.defects)
                self.body.delivery_status.append(status)
        elif blocks:
            inner = blocks[0]
            self.body.returned_ids.extend(
                _message_ids([v for n, v in inner.raw_items() if n.lower() == "message-id"])
            )
            content = _serialise(inner, self.defects)
        else:
            content = _decode_payload(part, self.defects)
            if ctype.endswith("delivery-status"):
                status = decode_text(content, "utf-8", ctype, self.defects)
                self.body.delivery_status.append(status)
            elif ctype in ("message/rfc822", "message/global"):
                headers = decode_text(content[:65536], "utf-8", ctype, self.defects)
                self.body.returned_ids.extend(_ids_in_header_text(headers))
        name = dparams.get("filename") or params.get("name") or ""
        if not name and self.in_report and ctype in ("message/rfc822", "message/global"):
            name = "returned message.eml"
        self._attach(name, ctype, content, part)

    def _leaf(
        self,
        part: Message,
        ctype: str,
        params: dict[str, str],
        disposition: str,
        dparams: dict[str, str],
        wants: tuple[bool, bool, bool],
        root: bool,
    ) -> None:
        want_text, want_html, keep_unwanted = wants
        filename = dparams.get("filename") or params.get("name") or ""
        is_body = ctype in ("text/plain", "text/html") and (
            root or (disposition != "attachment" and not filename)
        )
        wanted = want_text if ctype == "text/plain" else want_html
        if is_body and not wanted and not keep_unwanted:
            return  # an alternative that was not chosen
        if is_body and wanted:
            self._body_part(part, ctype, params)
            return
        content = _decode_payload(part, self.defects)
        if ctype in ("text/rfc822-headers", "message/rfc822-headers"):
            headers = decode_text(content, params.get("charset", ""), ctype, self.defects)
            self.body.returned_ids.extend(_ids_in_header_text(headers))
        self._attach(filename, ctype, content, part)

    def _body_part(self, part: Message, ctype: str, params: dict[str, str]) -> None:
        data = _decode_payload(part, self.defects)
        charset = params.get("charset", "")
        if ctype == "text/html" and not charset:
            sniffed = _META_CHARSET.search(data[:4096])
            charset = sniffed.group(1).decode("ascii") if sniffed else ""
        text = decode_text(data, charset, f"the {ctype} body", self.defects)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\x00" in text:
            text = text.replace("\x00", "")
            self.defects.add("NUL characters removed from the body")
        if ctype == "text/plain":
            if params.get("format", "").lower() == "flowed":
                text = _unflow(text, params.get("delsp", "").lower() == "yes")
            self.body.texts.append(text)
        else:
            self.body.htmls.append(text)

    def _attach(self, name: str, ctype: str, content: bytes, part: Message) -> None:
        filename = safe_filename(name, ctype)
        if len(content) > self.max_bytes:
            self.body.skipped.append(
                SkippedAttachment(
                    filename=filename,
                    content_type=ctype,
                    size=len(content),
                    reason=f"larger than the {_human_size(self.max_bytes)} limit",
                )
            )
            return
        self.body.attachments.append(
            ParsedAttachment(
                filename=filename, content_type=ctype, content=content, content_id=_content_id(part)
            )
        )


def _children(part: Message) -> list[Message] | None:
    """The sub-parts of a multipart or message/* part, None for a leaf."""
    payload = part.get_payload() if part.is_multipart() else None
    return payload if isinstance(payload, list) else None


def _safe_default_type(part: Message) -> str:
    try:
        return part.get_default_type()
    except Exception:
        return "text/plain"


def _content_id(part: Message) -> str:
    values = [v for n, v in part.raw_items() if n.lower() == "content-id"]
    if not values:
        return ""
    value = "".join(_strip_controls(values[0]).split()).strip("<>")
    return value if 0 < len(value) <= _MAX_ID and value.isascii() else ""


def _provides(part: Message, ctype: str) -> bool:
    """Whether this alternative holds a body of the given type (not as an attachment)."""
    for sub in _iter_leaves(part, 0):
        try:
            found = sub.get_content_type() == ctype
            found = found and sub.get_content_disposition() != "attachment"
        except Exception:  # a header the stdlib cannot read: not this alternative's body
            found = False
        if found:
            return True
    return False


def _iter_leaves(part: Message, depth: int) -> Iterator[Message]:
    payload = _children(part)
    if depth > _MAX_DEPTH:
        return
    if payload is not None and part.get_content_maintype() == "multipart":
        for child in payload:
            if isinstance(child, Message):
                yield from _iter_leaves(child, depth + 1)
    else:
        yield part


def _blocks_text(blocks: list[Message]) -> str:
    """A message/delivery-status payload (parsed as header blocks) back as text."""
    out = []
    for block in blocks:
        if isinstance(block, Message):
            out.append("\n".join(f"{n}: {_FOLD.sub('', str(v))}" for n, v in block.raw_items()))
    return "\n\n".join(out)


def _serialise(msg: Message, defects: _Defects) -> bytes:
    """An embedded message as .eml bytes, headers kept as they came (not refolded)."""
    try:
        return msg.as_bytes(policy=msg.policy.clone(refold_source="none"))
    except Exception:  # broken inner headers: fall back to the string form
        defects.add("a forwarded message could not be re-serialised exactly")
        try:
            return msg.as_string(policy=policy.compat32).encode("utf-8", "surrogateescape")
        except Exception:
            return b""


def _ids_in_header_text(text: str) -> list[str]:
    m = re.search(r"(?im)^message-id[ \t]*:[ \t]*((?:.*)(?:\r?\n[ \t].*)*)", text)
    return _message_ids([m.group(1)]) if m else []


# --- the entry point --------------------------------------------------------------------

_META_CHARSET = re.compile(rb"<meta[^>]{0,200}charset=[\"']?([\w.:-]+)", re.IGNORECASE)
_HEADER_LINE = re.compile(rb"^(?:From |[!-9;-~]{1,100}:)")
_CID_REF = re.compile(r"cid:([^\s\"'<>)]+)", re.IGNORECASE)


def _prepare(raw: bytes, defects: _Defects) -> bytes:
    """Repair what would make the stdlib parser see no headers at all: a BOM, leading blank
    or garbage lines, NUL bytes in the header block."""
    data = raw
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        defects.add("a byte-order mark before the headers was removed")
    stripped = data.lstrip(b"\r\n\t ")
    if len(stripped) != len(data):
        data = stripped
        defects.add("blank lines before the headers were removed")
    # Up to ten garbage lines (and any blank ones) before the first header line are dropped.
    skip = garbage = pos = 0
    while garbage < 10 and skip < 1000:
        line = data[pos : data.find(b"\n", pos) + 1 or len(data)]
        if not line or _HEADER_LINE.match(line.replace(b"\x00", b"")):
            break
        pos += len(line)
        skip += 1
        garbage += bool(line.strip())
    if pos >= len(data) or garbage == 10 or skip == 1000:
        raise UnparseableEmail("no header block")
    if skip:
        data = data[pos:]
        defects.add(f"{skip} malformed line(s) before the headers were dropped")
    m = _HEAD_END.search(data)
    head, rest = (data[: m.start()], data[m.start() :]) if m else (data, b"")
    if b"\x00" in head:
        head = head.replace(b"\x00", b"")
        defects.add("NUL bytes removed from the headers")
    return head + rest


def parse_email(
    raw: bytes,
    *,
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    trusted_authserv_ids: Collection[str] = (),
) -> ParsedEmail:
    """Parse one raw message. Never raises for broken mail, only UnparseableEmail for empty
    input or input without headers; see ParsedEmail.defects for what was repaired."""
    if not raw or not raw.strip():
        raise UnparseableEmail("empty message")
    defects = _Defects()
    data = _prepare(bytes(raw), defects)
    try:
        msg = BytesParser(policy=policy.default).parsebytes(data)
    except Exception:  # e.g. RecursionError on absurd nesting
        defects.add("the MIME structure could not be parsed; read the headers only")
        msg = BytesParser(policy=policy.default).parsebytes(data, headersonly=True)
    headers = _Headers(msg, defects)
    if not headers.items:
        raise UnparseableEmail("no header block")

    message_id = ""
    raw_id = headers.single("message-id")
    if raw_id:
        message_id = normalise_message_id(raw_id)
        if not message_id:
            defects.add("invalid Message-ID")
    else:
        defects.add("no Message-ID")
    subject = " ".join(" ".join(headers.decoded("subject")[:1]).split())
    if len(headers.raw("subject")) > 1:
        defects.add(f"{len(headers.raw('subject'))} Subject headers; used the first")
    if len(subject) > _MAX_SUBJECT:
        defects.add(f"Subject of {len(subject)} characters truncated to {_MAX_SUBJECT}")
        subject = subject[:_MAX_SUBJECT]
    senders = _addresses(headers, "from")
    if len(headers.raw("from")) > 1:
        defects.add(f"{len(headers.raw('from'))} From headers; used the first")
    delivered = []
    for name in ("delivered-to", "x-original-to", "envelope-to"):
        for value in headers.text(name):
            delivered += [a.lower() for _, a in _safe_getaddresses(value) if _clean_address(a)]
    date = _parse_date(headers.single("date"), defects)
    in_reply_to = _message_ids(headers.text("in-reply-to"))
    references = _message_ids(headers.text("references"))
    if len(references) > _MAX_REFERENCES:
        defects.add(f"{len(references)} References trimmed to {_MAX_REFERENCES}")
        references = references[:1] + references[-(_MAX_REFERENCES - 1) :]

    walker = _Walker(defects, max(0, max_attachment_bytes))
    if not headers.raw("content-type") and not msg.is_multipart():
        defects.add("no Content-Type header; read as plain text")
    try:
        walker.walk(msg, root=True)
    except Exception as exc:  # never lose the headers to a body bug
        defects.add(f"internal error reading the body: {type(exc).__name__}")
    body = walker.body

    html = "\n".join(h for h in body.htmls if h.strip())
    text = "\n\n".join(t.strip("\n") for t in body.texts if t.strip())
    if not text and html:
        text = html_to_text(html)
    visible_text, quoted_text = split_quoted(text)
    visible_html, quoted_html = split_quoted_html(html)

    cid_refs = set()
    if "cid:" in html or "CID:" in html or "Cid:" in html:
        cid_refs = {unquote(m.group(1)).strip("<>").lower() for m in _CID_REF.finditer(html)}
    attachments: list[ParsedAttachment] = []
    seen: set[tuple[str, str, str, bytes]] = set()
    for attachment in body.attachments:
        key = (
            attachment.filename,
            attachment.content_type,
            attachment.content_id,
            attachment.content,
        )
        if key in seen:  # the same part in two alternatives
            continue
        seen.add(key)
        if attachment.content_id and attachment.content_id.lower() in cid_refs:
            attachment = dataclasses.replace(attachment, inline=True)
        attachments.append(attachment)

    sender = senders[0] if senders else None
    bounce, auto_why = _classify(headers, sender, subject, text, body)
    authentication = _authentication(headers, trusted_authserv_ids)
    return ParsedEmail(
        message_id=message_id,
        content_hash=_content_hash(bytes(raw)),
        subject=subject,
        sender=sender,
        reply_to=_addresses(headers, "reply-to"),
        to=_addresses(headers, "to"),
        cc=_addresses(headers, "cc"),
        delivered_to=tuple(dict.fromkeys(delivered)),
        date=date,
        in_reply_to=tuple(in_reply_to[:_MAX_REFERENCES]),
        references=tuple(references),
        text=text,
        html=html,
        visible_text=visible_text,
        quoted_text=quoted_text,
        visible_html=visible_html,
        quoted_html=quoted_html,
        attachments=tuple(attachments),
        skipped_attachments=tuple(body.skipped),
        auto_submitted=bool(auto_why),
        auto_reason=auto_why,
        bounce=bounce,
        authentication=authentication,
        defects=tuple(defects.items),
    )


def _safe_getaddresses(value: str) -> list[tuple[str, str]]:
    try:
        return getaddresses([value])
    except Exception:
        return [("", a) for a in _ADDRESS.findall(value)]


def _classify(
    headers: _Headers,
    sender: EmailAddress | None,
    subject: str,
    text: str,
    body: _Body,
) -> tuple[Bounce | None, str]:
    """(bounce, auto_reason): a bounce first, then the other machine-mail signals."""
    address = sender.address if sender else ""
    name = sender.name if sender else ""
    failed = " ".join(headers.text("x-failed-recipients"))
    null_path = any(v.strip() in ("", "<>") for v in headers.text("return-path"))
    returned = body.returned_ids[0] if body.returned_ids else ""
    bounce = None
    if body.delivery_status:
        bounce = bounce_from_delivery_status(
            "\n\n".join(body.delivery_status), returned, failed, text
        )
        if bounce is None:
            return None, "delivery report"
    elif body.report_type == "disposition-notification":
        return None, "disposition-notification"
    elif body.report_type == "delivery-status" or looks_like_bounce(
        address, name, subject, null_path
    ):
        bounce = bounce_from_text(text, subject, failed)
        if not bounce.original_message_id and returned:
            bounce = Bounce(
                returned, bounce.recipient, bounce.status, bounce.reason, bounce.permanent
            )
    if bounce is not None:
        original = normalise_message_id(bounce.original_message_id)
        if original != bounce.original_message_id:
            bounce = Bounce(
                original, bounce.recipient, bounce.status, bounce.reason, bounce.permanent
            )
        return bounce, "bounce"

    def lookup(name: str) -> list[str]:
        return headers.decoded(name)

    return None, auto_reason(lookup, address, subject)
