"""Turn one raw email (bytes) into a ParsedEmail: headers, bodies, attachments, loop signals.

Pure Python and free of Django, so the IMAP poller, the SMTP receiver and the tests share it.
Real-world mail is broken in every way imaginable, so nothing here raises on bad input except
UnparseableEmail for input with no header block at all: each problem is repaired as well as
possible and described in ParsedEmail.defects. The stdlib parser (email.policy.default) builds
the MIME tree; header values, parameters, charsets and base64 are decoded here, leniently,
because the stdlib's strict readings lose data on the mail people actually send.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import dataclasses
import hashlib
import mimetypes
import re
import unicodedata
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import errors as email_errors
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from urllib.parse import unquote, unquote_to_bytes

from .loops import (
    Bounce,
    auto_reason,
    bounce_from_delivery_status,
    bounce_from_text,
    looks_like_bounce,
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

_MAX_DEFECTS = 50
_MAX_SUBJECT = 1000
_MAX_NAME = 200
_MAX_ID = 250
_MAX_REFERENCES = 50
_MAX_DEPTH = 30
_MAX_PARTS = 1000


class _Defects:
    """An ordered, deduplicated, bounded list of defect notes."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, note: str) -> None:
        if note not in self.items and len(self.items) < _MAX_DEFECTS:
            self.items.append(note)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _strip_controls(value: str) -> str:
    return _CONTROL.sub("", value) if _CONTROL.search(value) else value


def _to_bytes(value: str) -> bytes:
    """The bytes behind a str the stdlib parser made (8-bit bytes are surrogate-escaped)."""
    try:
        return value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape")


def _human_size(n: int) -> str:
    for unit, size in (("MB", 1024 * 1024), ("KB", 1024)):
        if n >= size:
            return f"{n // size} {unit}" if n % size == 0 else f"{n / size:.1f} {unit}"
    return f"{n} bytes"


# --- charsets ---------------------------------------------------------------------------

# Decode with the superset the sender almost certainly meant (what browsers do too).
_SUPERSETS = {
    "ascii": "cp1252",
    "iso8859-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "big5": "big5hkscs",
    "tis-620": "cp874",
}
_ALIASES = {
    "x-sjis": "cp932",
    "sjis": "cp932",
    "x-gbk": "gb18030",
    "x-euc-jp": "euc_jp",
    "ks_c_5601-1987": "cp949",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "x-user-defined": "cp1252",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
}
_EXTRA_TRIES = {"iso2022_jp": ("iso2022_jp_ext", "iso2022_jp_2")}


def _codec(charset: str) -> str | None:
    """A Python text codec for a MIME charset name, or None when there is none."""
    name = charset.strip().strip("\"'").lower()
    if not name:
        return None
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None  # "base64", "zlib", "rot13"... are not charsets
    return info.name


def decode_text(data: bytes, charset: str, where: str, defects: _Defects) -> str:
    """Bytes to text: the declared charset (or its superset), then UTF-8, then Windows-1252,
    then Latin-1, which always works. Anything but the declared reading is a defect."""
    if not data:
        return ""
    declared = charset.strip().strip("\"'").lower()
    codec = _codec(declared) if declared else None
    if codec and codec != "utf-8" and not data.isascii() and not codec.startswith("utf-"):
        # A single- or multi-byte charset rarely yields valid UTF-8 by chance: the label is
        # wrong and the body is UTF-8 (a common misconfiguration).
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            defects.add(f"{where} declared {declared[:40]} but is UTF-8")
            return text
    tries: list[str] = []
    if codec:
        tries.append(_SUPERSETS.get(codec, codec))
        tries.append(codec)
        tries.extend(_EXTRA_TRIES.get(codec, ()))
    tries += ["utf-8", "cp1252", "latin-1"]
    for i, name in enumerate(dict.fromkeys(tries)):
        try:
            text = data.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
        if declared and codec is None:
            defects.add(f"unknown charset {declared[:40]!r} in {where}; read as {name}")
        elif codec and i > 0 and name not in (codec, *_EXTRA_TRIES.get(codec, ())):
            defects.add(f"{where} is not valid {declared[:40]}; read as {name}")
        elif codec == "ascii" and not data.isascii():
            defects.add(f"{where} declared us-ascii but has 8-bit text; read as {name}")
        elif not declared and name != "utf-8" and not data.isascii():
            defects.add(f"{where} has 8-bit text without a charset; read as {name}")
        return text
    return data.decode("latin-1")  # unreachable: latin-1 decodes everything


# --- base64 and encoded words -----------------------------------------------------------

_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")


def _b64decode(data: bytes) -> tuple[bytes, str]:
    """Lenient base64: junk characters skipped, padding repaired, a truncated tail dropped.
    Returns (bytes, problem) where problem is "" when the input was clean."""
    try:  # the common, well-formed case, in C (line breaks are skipped)
        return binascii.a2b_base64(data), ""
    except (binascii.Error, ValueError):
        pass
    compact = b"".join(data.split())
    body, padded, after = compact.partition(b"=")
    cleaned = _B64_JUNK.sub(b"", body)
    problem = ""
    if len(cleaned) != len(body) or after.strip(b"="):
        problem = "invalid characters in base64 data"
    if len(cleaned) % 4 == 1:
        cleaned = cleaned[:-1]
        problem = "base64 data is truncated"
    elif len(cleaned) % 4 and not padded and not problem:
        problem = "base64 padding is missing"
    cleaned += b"=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned), problem
    except binascii.Error:  # pragma: no cover - cleaned input is always decodable
        return b"", "undecodable base64 data"


_ENCODED_WORD = re.compile(r"=\?([^?\s\"]+)\?([QqBb])\?([^?]*)\?=")
_BROKEN_WORD = re.compile(r"=\?([^?\s\"]+)\?([QqBb])\?([^?]+)$")
_QP_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")


def _word_bytes(encoding: str, text: str, defects: _Defects) -> bytes:
    raw = text.encode("utf-8", "surrogateescape")
    if encoding in "Bb":
        data, problem = _b64decode(raw)
        if problem:
            defects.add(f"encoded word: {problem}")
        return data
    return _QP_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw.replace(b"_", b" "))


def decode_words(value: str, defects: _Defects, where: str = "header") -> str:
    """Decode RFC 2047 encoded words, leniently: also inside quotes, with spaces in Q text,
    unknown charsets, and UTF-8 sequences split across adjacent words."""
    if "=?" not in value:
        return value
    out: list[str] = []
    pos = 0
    pending: list[tuple[str, bytes]] = []  # adjacent words, merged per charset

    def flush() -> None:
        merged: list[tuple[str, bytes]] = []
        for charset, data in pending:
            if merged and merged[-1][0] == charset:
                merged[-1] = (charset, merged[-1][1] + data)
            else:
                merged.append((charset, data))
        for charset, data in merged:
            out.append(decode_text(data, charset, f"{where} encoded word", defects))
        pending.clear()

    for m in _ENCODED_WORD.finditer(value):
        between = value[pos : m.start()]
        if not pending or between.strip():
            flush()
            out.append(between)
        charset = m.group(1).split("*", 1)[0].lower()  # RFC 2231 language suffix
        pending.append((charset, _word_bytes(m.group(2), m.group(3), defects)))
        pos = m.end()
    flush()
    rest = value[pos:]
    broken = _BROKEN_WORD.search(rest)
    if broken:
        # An encoded word cut off before its "?=" (a truncated or badly folded header).
        defects.add(f"unterminated encoded word in {where}")
        data = _word_bytes(broken.group(2), broken.group(3), defects)
        rest = rest[: broken.start()] + decode_text(data, broken.group(1), where, defects)
    out.append(rest)
    return "".join(out)


# --- headers ----------------------------------------------------------------------------

_FOLD = re.compile(r"\r?\n(?=[ \t])")


class _Headers:
    """Raw header values of one message or part, decoded leniently on demand."""

    def __init__(self, msg: Message, defects: _Defects) -> None:
        self.defects = defects
        self.items: list[tuple[str, str]] = []
        try:
            raw_items = list(msg.raw_items())
        except Exception:  # a parser bug must not lose the whole mail
            raw_items = []
            defects.add("headers could not be read")
        for name, value in raw_items:
            if not isinstance(value, str):
                value = str(value)
            self.items.append((name.strip().lower(), value))

    def raw(self, name: str) -> list[str]:
        return [v for n, v in self.items if n == name]

    def text(self, name: str) -> list[str]:
        """Unfolded values with 8-bit bytes decoded (UTF-8, else Windows-1252)."""
        return [self._unraw(v, name) for v in self.raw(name)]

    def _unraw(self, value: str, name: str) -> str:
        value = _FOLD.sub("", value).replace("\r", "").replace("\n", " ")
        if not value.isascii():
            data = _to_bytes(value)
            try:
                value = data.decode("utf-8")
            except UnicodeDecodeError:
                value = data.decode("cp1252", "replace")
                self.defects.add(f"8-bit bytes in the {_title(name)} header read as Windows-1252")
        if "\x00" in value:
            self.defects.add(f"NUL bytes removed from the {_title(name)} header")
        return _strip_controls(value.replace("\t", " "))

    def single(self, name: str) -> str:
        """The first value, noting duplicates of a header that must appear once."""
        values = self.text(name)
        if len(values) > 1:
            self.defects.add(f"{len(values)} {_title(name)} headers; used the first")
        return values[0] if values else ""

    def decoded(self, name: str) -> list[str]:
        return [decode_words(v, self.defects, _title(name)) for v in self.text(name)]


def _title(name: str) -> str:
    return {"message-id": "Message-ID", "mime-version": "MIME-Version"}.get(
        name, "-".join(p.capitalize() for p in name.split("-"))
    )


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


# --- MIME parameters --------------------------------------------------------------------

_PARAM = re.compile(r";\s*([^\s=;]+)\s*=\s*(\"(?:[^\"\\]|\\.)*\"?|[^;]*)")
_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}")


def _parse_params(value: str, defects: _Defects, where: str) -> tuple[str, dict[str, str]]:
    """("main value", {param: value}) with RFC 2231 (name*=, name*0*=) and encoded words
    decoded; unquoted values with spaces kept whole."""
    main, _, _ = value.partition(";")
    simple: dict[str, str] = {}
    sections: dict[str, dict[int, tuple[str, bool]]] = {}
    for m in _PARAM.finditer(value, len(main)):
        name, raw = m.group(1).lower(), m.group(2).strip()
        if raw.startswith('"'):
            raw = re.sub(
                r"\\(.)", r"\1", raw[1:-1] if raw.endswith('"') and len(raw) > 1 else raw[1:]
            )
        base, star, rest = name.partition("*")
        if not star:
            simple.setdefault(base, raw)
        elif rest == "":
            sections.setdefault(base, {})[0] = (raw, True)
        else:
            index, sep, _ = rest.partition("*")
            if index.isdigit() and int(index) < 100:
                sections.setdefault(base, {})[int(index)] = (raw, sep == "*")
    params = dict(simple)
    for base, parts in sections.items():
        charset = ""
        data = b""
        for i in sorted(parts):
            raw, encoded = parts[i]
            if encoded:
                if i == min(parts) and raw.count("'") >= 2:
                    charset, _, raw = raw.split("'", 2)
                data += unquote_to_bytes(raw)
            else:
                data += raw.encode("utf-8", "surrogateescape")
        params[base] = decode_text(data, charset or "utf-8", f"{where} parameter", defects)
    for key, val in params.items():
        params[key] = _strip_controls(decode_words(val, defects, where))
    return main.strip().lower(), params


# --- filenames --------------------------------------------------------------------------

_FORBIDDEN = re.compile(r"[<>:\"|?*/\\]")
_RESERVED = re.compile(
    r"(?:con|prn|aux|nul|com[0-9\u00b9\u00b2\u00b3]|lpt[0-9\u00b9\u00b2\u00b3]"
    r"|conin\$|conout\$|clock\$)",
    re.IGNORECASE,
)
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,16}$")
_DEFAULT_NAMES = {
    "message/rfc822": "forwarded message.eml",
    "message/global": "forwarded message.eml",
    "text/calendar": "invite.ics",
    "application/ics": "invite.ics",
    "application/ms-tnef": "winmail.dat",
    "application/vnd.ms-tnef": "winmail.dat",
    "message/delivery-status": "delivery-status.txt",
    "message/global-delivery-status": "delivery-status.txt",
    "text/rfc822-headers": "returned headers.txt",
    "message/disposition-notification": "disposition-notification.txt",
    "application/pgp-signature": "signature.asc",
    "application/pkcs7-signature": "smime.p7s",
    "application/x-pkcs7-signature": "smime.p7s",
}
_EXTENSIONS = {"text/plain": ".txt", "image/jpeg": ".jpg", "application/octet-stream": ".bin"}
_MAX_FILENAME = 150


def _guess_extension(content_type: str) -> str:
    ext = _EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type, strict=False)
    return ext or ""


def safe_filename(name: str, content_type: str = "application/octet-stream") -> str:
    """A filename fit to show and to offer as a download name, never a path: the basename,
    without control, bidi and zero-width characters, "..", leading dots, <>:"|?* and Windows
    device names; NFC; at most 150 characters with the extension kept. Falls back to
    "attachment" plus an extension guessed from the content type."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        " " if unicodedata.category(c) in ("Zl", "Zp") else c
        for c in name
        if unicodedata.category(c) not in ("Cc", "Cf", "Cs")
    )
    name = unicodedata.normalize("NFC", name)
    name = _FORBIDDEN.sub("", name)
    while ".." in name:
        name = name.replace("..", ".")
    name = " ".join(name.split()).lstrip(". ").rstrip(". ")
    stem, dot, ext = name.partition(".")
    if _RESERVED.fullmatch(stem.strip()):
        name = f"{dot}{ext}" if dot else ""
    if name.startswith("."):  # a device name was removed: keep what followed it
        return f"attachment{name}"
    if not name:
        return _DEFAULT_NAMES.get(content_type) or f"attachment{_guess_extension(content_type)}"
    if len(name) > _MAX_FILENAME:
        m = _EXTENSION.search(name)
        suffix = m.group(0) if m else ""
        name = name[: _MAX_FILENAME - len(suffix)].rstrip(". ") + suffix
    return name


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

    def _payload(self, part: Message) -> bytes:
        """The decoded content of a leaf part."""
        cte = ""
        values = [v for n, v in part.raw_items() if n.lower() == "content-transfer-encoding"]
        if values:
            cte = values[0].strip().lower()
        if part.is_multipart():  # pragma: no cover - callers pass leaves
            return b""
        raw = _raw_payload(part)
        if cte == "base64":
            data, problem = _b64decode(raw)
            if problem:
                self.defects.add(f"{problem}; decoded what was there")
            return data
        try:
            data = part.get_payload(decode=True)
        except Exception:  # quopri/uu on garbage: keep the raw bytes
            self.defects.add(f"undecodable {cte or 'body'} content; kept as is")
            return raw
        return data if isinstance(data, bytes) else raw

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
            content = self._payload(part)
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
        content = self._payload(part)
        if ctype in ("text/rfc822-headers", "message/rfc822-headers"):
            headers = decode_text(content, params.get("charset", ""), ctype, self.defects)
            self.body.returned_ids.extend(_ids_in_header_text(headers))
        self._attach(filename, ctype, content, part)

    def _body_part(self, part: Message, ctype: str, params: dict[str, str]) -> None:
        data = self._payload(part)
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


def _raw_payload(part: Message) -> bytes:
    """A leaf's body bytes as they came (before transfer decoding). Read from the attribute:
    get_payload() without decode=True decodes 8-bit text with the declared charset, which
    fails on a broken charset parameter and loses the bytes a wrong one cannot read."""
    payload = getattr(part, "_payload", "")
    if isinstance(payload, bytes):
        return payload
    return _to_bytes(payload) if isinstance(payload, str) else b""


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


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: join soft-broken lines (ending in a space) per quote depth."""
    out: list[str] = []
    current: tuple[int, str] | None = None
    for line in text.split("\n"):
        stripped = line.lstrip(">")
        depth = len(line) - len(stripped)
        if stripped.startswith(" "):
            stripped = stripped[1:]  # space-stuffing
        if current is not None and current[0] == depth:
            joined = current[1] + stripped
        else:
            if current is not None:
                out.append(_flowed_line(*current))
            joined = stripped
        if stripped.endswith(" ") and stripped != "-- ":
            current = (depth, joined[:-1] if delsp else joined)
        else:
            out.append(_flowed_line(depth, joined))
            current = None
    if current is not None:
        out.append(_flowed_line(*current))
    return "\n".join(out)


def _flowed_line(depth: int, text: str) -> str:
    return f"{'>' * depth} {text}" if depth else text


_DEFECT_NOTES: dict[type, str] = {
    email_errors.StartBoundaryNotFoundDefect: "the MIME boundary was not found in the body",
    email_errors.CloseBoundaryNotFoundDefect: "the closing MIME boundary is missing (truncated?)",
    email_errors.FirstHeaderLineIsContinuationDefect: "the first header line is a continuation",
    email_errors.MisplacedEnvelopeHeaderDefect: "a misplaced mbox From line",
    email_errors.MissingHeaderBodySeparatorDefect: "a malformed header line ended the headers",
    email_errors.MultipartInvariantViolationDefect: "declared multipart but has no parts",
    email_errors.NoBoundaryInMultipartDefect: "a multipart without a boundary parameter",
    email_errors.InvalidMultipartContentTransferEncodingDefect: (
        "a multipart with a Content-Transfer-Encoding other than 7bit/8bit/binary"
    ),
    email_errors.InvalidBase64PaddingDefect: "base64 padding is missing",
    email_errors.InvalidBase64CharactersDefect: "invalid characters in base64 data",
    email_errors.InvalidBase64LengthDefect: "base64 data is truncated",
}


def _defect_note(defect: object) -> str:
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", type(defect).__name__).lower()
    return words.removesuffix(" defect")


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
