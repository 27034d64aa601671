"""Decode the low-level pieces of a mail: charsets, base64 and other transfer encodings,
RFC 2047 encoded words, header values, MIME parameters (RFC 2231), format=flowed text
and filenames.

Real-world mail gets every one of these wrong, so nothing here raises on bad input: each
problem is repaired as well as possible and recorded in a _Defects collector, which parsing.py
hands back as ParsedEmail.defects. parsing.py holds the message structure (what the headers
mean, addresses, the MIME walk, parse_email); this module only turns bytes and raw header
text into text, and must not import parsing.py.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import mimetypes
import re
from email import errors as email_errors
from email.message import Message
from urllib.parse import unquote_to_bytes

from loket.inbox.services import media

__all__ = ["decode_text", "decode_words", "safe_filename"]


# --- defects and small helpers ----------------------------------------------------------

_MAX_DEFECTS = 50


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


# --- transfer encodings and format=flowed -----------------------------------------------


def _raw_payload(part: Message) -> bytes:
    """A leaf's body bytes as they came (before transfer decoding). Read from the attribute:
    get_payload() without decode=True decodes 8-bit text with the declared charset, which
    fails on a broken charset parameter and loses the bytes a wrong one cannot read."""
    payload = getattr(part, "_payload", "")
    if isinstance(payload, bytes):
        return payload
    return _to_bytes(payload) if isinstance(payload, str) else b""


def _decode_payload(part: Message, defects: _Defects) -> bytes:
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
            defects.add(f"{problem}; decoded what was there")
        return data
    try:
        data = part.get_payload(decode=True)
    except Exception:  # quopri/uu on garbage: keep the raw bytes
        defects.add(f"undecodable {cte or 'body'} content; kept as is")
        return raw
    return data if isinstance(data, bytes) else raw


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


# --- the stdlib parser's defects --------------------------------------------------------

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
    """The shared neutraliser (loket.inbox.services.media.safe_filename), with a mail part's
    own fallback name ("forwarded message.eml", "invite.ics", ...) and a 150-character cap."""
    default = _DEFAULT_NAMES.get(content_type) or f"attachment{_guess_extension(content_type)}"
    return media.safe_filename(name, default=default, limit=_MAX_FILENAME)
