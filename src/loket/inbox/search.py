"""Search over a workspace's contacts and message text: one selector, :func:`search`.

Contacts match on name, email and phone (every word as a prefix; a phone number typed in any
format also matches its digits). Messages match on their text: customer messages, replies and
internal notes, never activity lines. Each backend uses its own full-text index, made by
migration ``inbox/0004_search``:

* PostgreSQL: ``inbox_message.search_document``, a generated ``tsvector`` of the text (its
  first 10,000 characters: migration ``0007``) in the ``simple``, ``english`` and ``dutch``
  configurations (so "orders" finds "order" and
  "bestellingen" finds "bestelling", and names and codes match as typed), with a GIN index.
  Every word of the query matches any of its three forms; the last word, while still being
  typed, also as a prefix.
* SQLite: FTS5 with the Porter stemmer (English stemming; Dutch words match as typed, or by
  prefix while typing), kept in sync with ``inbox_message`` by triggers; bm25 ranking.

Relevance is ranked on a bounded candidate set (shared/design/PERFORMANCE.md, rule 6): a page
ranks the newest ``CANDIDATES`` matching messages by relevance, then recency, and the next window
starts below the oldest of them. A search thus costs the same on page 1 as on page 50, and never
ranks every match of a frequent word.

Snippets are built from escaped text: the stored text is never trusted as HTML, only ``<mark>``
is added around matches.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import html
import json
import re
import secrets
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.safestring import SafeString, mark_safe

from loket.inbox.selectors import BadCursor
from loket.tenancy.models import Membership

MAX_QUERY_CHARS = 200
MAX_PIECES = 8  # words (or email addresses, codes...) of a query that are used
MAX_PIECE_CHARS = 64
PREFIX_MIN_CHARS = 3  # a shorter last word is not expanded: "a*" would match half the index
CANDIDATES = 200  # messages ranked together; a window of the newest matches
WALK = 16_000  # PostgreSQL: newest messages read before anything else (see _Postgres)
WALK_MAX = 160_000  # ... and at most this many more when the words look common enough
CONTACT_CANDIDATES = 500  # contacts ordered together; more means "type more"
SNIPPET_CHARS = 220
HIGHLIGHT_CHARS = 20_000  # of a long message, the part searched for the words to highlight
_NO_BOUND = 2**63 - 1

_WORD = re.compile(r"[^\W_]+")
_PHONE = re.compile(r"[\d\s+\-().]+")


# --- the query -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Terms:
    """What a query means, whatever was typed: safe to hand to either index."""

    pieces: tuple[str, ...]  # whitespace-separated parts holding a letter or digit
    prefix: str  # the last piece as a word prefix while it is being typed, else ""
    words: tuple[str, ...]  # letter and digit runs, lowercased (for contacts)
    digits: str  # the query as a phone number, digits only, else ""

    def __bool__(self) -> bool:
        return bool(self.pieces)


def parse(query: str | None) -> Terms:
    text = (query or "").replace("\x00", "")[:MAX_QUERY_CHARS]
    chunks = text.split()
    pieces = tuple(p[:MAX_PIECE_CHARS] for p in chunks if _WORD.search(p))[:MAX_PIECES]
    prefix = ""
    if pieces and chunks[-1] == pieces[-1] and not text[-1:].isspace():
        last = pieces[-1].lower()
        if _WORD.fullmatch(last) and len(last) >= PREFIX_MIN_CHARS:
            prefix = last
    words = tuple(dict.fromkeys(w.lower() for p in pieces for w in _WORD.findall(p)))
    digits = ""
    if _PHONE.fullmatch(text.strip() or "x"):
        digits = re.sub(r"\D", "", text)
        digits = digits if len(digits) >= 3 else ""
    return Terms(pieces, prefix, words[:MAX_PIECES], digits)


# --- results ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ContactHit:
    pk: int
    name: str
    email: str
    phone: str

    @property
    def display_name(self) -> str:
        return self.name or self.email or self.phone or f"#{self.pk}"


@dataclass(frozen=True)
class MessageHit:
    pk: int
    conversation_id: int
    conversation_number: int
    subject: str
    direction: str
    kind: str
    created_at: dt.datetime
    contact_name: str
    channel_name: str
    snippet: SafeString  # escaped text with <mark> around the matches


@dataclass(frozen=True)
class SearchResults:
    query: str
    terms: Terms
    contacts: list[ContactHit]
    messages: list[MessageHit]
    next_cursor: str | None


def search(
    member: Membership,
    query: str | None,
    *,
    limit: int = 20,
    cursor: str | None = None,
    contact_limit: int = 8,
) -> SearchResults:
    """Contacts (first page only) and messages of ``member``'s workspace matching ``query``,
    best first. Raises :class:`BadCursor` for a cursor this function did not give out."""
    terms = parse(query)
    top, offset = decode_cursor(cursor) if cursor else (_NO_BOUND, 0)
    limit = max(1, min(limit, CANDIDATES))
    if not terms:
        return SearchResults(query or "", terms, [], [], None)
    backend = _BACKENDS[connection.vendor]
    with backend.session(terms) as state:
        contacts = [] if cursor else backend.contacts(member.workspace_id, terms, contact_limit)
        messages, next_cursor = backend.messages(
            member.workspace_id, terms, top, offset, limit, state
        )
    return SearchResults(query or "", terms, contacts, messages, next_cursor)


def find_contacts(member: Membership, query: str | None, *, limit: int = 20) -> list[ContactHit]:
    """Only the contacts of :func:`search` (name, email or phone, best first), through the same
    index: for a contacts page's search box."""
    terms = parse(query)
    if not terms:
        return []
    backend = _BACKENDS[connection.vendor]
    with backend.session(terms):
        return backend.contacts(member.workspace_id, terms, max(1, min(limit, CONTACT_CANDIDATES)))


def encode_cursor(top: int, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{top}.{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        top, offset = (int(part) for part in raw.split("."))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCursor("the cursor is not one search gave out") from exc
    if not (0 < top <= _NO_BOUND and 0 <= offset < CANDIDATES):
        raise BadCursor("the cursor is not one search gave out")
    return top, offset


def _next_cursor(top: int, offset: int, limit: int, found: int, lowest: int) -> str | None:
    if offset + limit < found:
        return encode_cursor(top, offset + limit)
    if found >= CANDIDATES:  # a full window: older matches may follow below it
        return encode_cursor(lowest, 0)
    return None


def _message_hit(row, snippet) -> MessageHit:
    """A hit from a page row; both backends select the same columns in the same order."""
    return MessageHit(
        pk=row[2],
        conversation_id=row[3],
        conversation_number=row[4],
        subject=row[5],
        direction=row[6],
        kind=row[7],
        created_at=_as_datetime(row[8]),
        contact_name=_display(row[10], row[11], row[12]),
        channel_name=row[13],
        snippet=snippet,
    )


def _as_datetime(value) -> dt.datetime:
    if isinstance(value, str):  # SQLite
        value = parse_datetime(value)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    return value


def _display(name: str, email: str, phone: str) -> str:
    return name or email or phone


def _contact_rank_sql(terms: Terms, digits_sql: str, position: str) -> tuple[str, list]:
    """ORDER BY terms for contacts: exact name, email or phone first, then names starting with
    the query, then the newest."""
    whole = " ".join(terms.pieces).lower()
    sql = (
        f"CASE WHEN lower(name) = %s OR lower(email) = %s OR ({digits_sql}) = %s THEN 0"
        f" WHEN {position}(lower(name), %s) = 1 THEN 1 ELSE 2 END, created_at DESC, id DESC"
    )
    return sql, [whole, whole, terms.digits or "-", whole]


# --- PostgreSQL ------------------------------------------------------------------------------
# The same expressions as the migration's (an index is used only for the very same expression).
PG_CONTACT_DOCUMENT = (
    "to_tsvector('simple'::regconfig, name || ' ' || email || ' ' || translate(email, '@.', '  ')"
    " || ' ' || phone || ' ' || regexp_replace(phone, '[^0-9]', '', 'g'))"
)
_PG_DIGITS = "regexp_replace(phone, '[^0-9]', '', 'g')"


class _Postgres:
    """Plans that stay cheap whatever the planner guesses about the words.

    Whether to walk the newest messages or to read the GIN index depends on how many messages
    match, and the planner's guess is often far off (a prefix, two common words that rarely
    meet): guessing "frequent" walks backwards through millions of rows for a rare word,
    guessing "rare" reads every match of a common word through the index (at 5M messages,
    ~100 ms for the index alone with a few hundred thousand matches). So the search finds out:

    1. ``walk``: the newest ``WALK`` messages are read newest first (the GIN index cannot be
       used there), stopping at ``CANDIDATES`` matches: enough for any common word;
    2. ``more``: when that found some but too few, the walk goes on for as many rows as the
       density seen so far predicts, up to ``WALK_MAX``;
    3. ``older``: when the words are rarer than that, the older messages are read through the
       GIN index. Sequential scans are off for the search, and ``id + 0`` and
       ``workspace_id + 0`` leave the planner no other index to walk; by then the words are
       known to be rare among recent messages, so there are few matches to read (unless a word
       was common long ago and not since).

    Words are searched as typed first; the last one as a prefix (a word being typed) only when
    that does not fill the window, as reading a common prefix through the GIN index is costly.
    Contacts are read through their GIN index. The words are looked up first (one query for the
    lexemes of every configuration), so the text-search query is small and free of duplicates,
    and values are inlined as quoted literals so the planner always sees them.
    """

    @classmethod
    @contextlib.contextmanager
    def session(cls, terms: Terms):
        """Yields the lexemes of each piece (simple, English, Dutch) after setting the planner
        up for the search. Read-only: rolling back at the end also undoes the settings, even
        inside a caller's transaction."""
        pieces = ", ".join(cls._literal(piece) for piece in terms.pieces)
        # No parallel workers or JIT: starting them costs more (~40-50 ms) than the bounded
        # reads below. A larger work_mem keeps GIN bitmaps exact (a lossy one rechecks pages).
        sql = f"""
            SELECT set_config('enable_seqscan', 'off', true),
                   set_config('max_parallel_workers_per_gather', '0', true),
                   set_config('jit', 'off', true),
                   set_config('work_mem', '16MB', true),
                   (SELECT json_agg(json_build_array(
                        tsvector_to_array(to_tsvector('simple'::regconfig, piece)),
                        tsvector_to_array(to_tsvector('english'::regconfig, piece)),
                        tsvector_to_array(to_tsvector('dutch'::regconfig, piece))
                    ) ORDER BY n)
                    FROM unnest(ARRAY[{pieces}]::text[]) WITH ORDINALITY AS p (piece, n))
        """  # noqa: S608 - every value is a quoted literal
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql)
                lexemes = cursor.fetchone()[-1]
            if isinstance(lexemes, str):  # json without a registered loader
                lexemes = json.loads(lexemes)
            yield lexemes
            transaction.set_rollback(True)

    @staticmethod
    def _literal(value: str) -> str:
        from psycopg import sql

        connection.ensure_connection()
        return sql.Literal(value).as_string(connection.connection)

    @classmethod
    def _tsquery(cls, terms: Terms, lexemes, *, prefix: bool) -> str:
        """Every piece must match in one of its forms: ``(a | b) & (c | d:*)``."""
        parts = []
        for i, forms in enumerate(lexemes):
            groups = list(dict.fromkeys(tuple(form) for form in forms if form))
            prefix = terms.prefix if prefix and i == len(lexemes) - 1 else ""
            alternatives = [
                " & ".join(_tsquery_lexeme(lexeme) for lexeme in group)
                for group in groups
                if group != (prefix,)  # the prefix below covers the word itself
            ]
            if prefix:
                alternatives.append(_tsquery_lexeme(prefix) + ":*")
            if alternatives:
                parts.append("(" + " | ".join(f"({a})" for a in alternatives) + ")")
        return f"{cls._literal(' & '.join(parts))}::tsquery" if parts else ""

    @classmethod
    def contacts(cls, workspace_id: int, terms: Terms, limit: int) -> list[ContactHit]:
        if not terms.words:
            return []
        query = " & ".join(f"'{word}':*" for word in terms.words)  # letters and digits only
        if terms.digits:
            query = f"({query}) | '{terms.digits}':*"
        order, params = _contact_rank_sql(terms, _PG_DIGITS, "strpos")
        values = iter(params)
        order = re.sub("%s", lambda _: cls._literal(next(values)), order)
        tsquery = f"to_tsquery('simple'::regconfig, {cls._literal(query)})"
        # "workspace_id + 0": not through the workspace's recency index, which would run the
        # text search on every contact when the planner takes the words for common ones.
        sql = f"""
            SELECT id, name, email, phone FROM (
                SELECT id, name, email, phone, created_at FROM inbox_contact
                WHERE workspace_id + 0 = {int(workspace_id)} AND merged_into_id IS NULL
                  AND {PG_CONTACT_DOCUMENT} @@ {tsquery}
                LIMIT {CONTACT_CANDIDATES}
            ) AS found
            ORDER BY {order} LIMIT {int(limit)}
        """  # noqa: S608 - every value is a quoted literal or an int
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return [ContactHit(*row) for row in cursor.fetchall()]

    @classmethod
    def messages(cls, workspace_id, terms: Terms, top: int, offset: int, limit: int, lexemes):
        # As typed first; the prefix of a word being typed only when that does not fill the
        # window (reading a common prefix through the GIN index costs ~40 ms more).
        prefix = False
        rows = cls._page(
            cls._tsquery(terms, lexemes, prefix=False), workspace_id, top, offset, limit
        )
        if terms.prefix and (not rows or rows[0][0] < CANDIDATES):
            prefix = True
            rows = cls._page(
                cls._tsquery(terms, lexemes, prefix=True), workspace_id, top, offset, limit
            )
        if not rows:
            return [], None
        found, lowest = rows[0][0], rows[0][1]
        highlighter = Highlighter(
            simple=[lexeme for forms in lexemes for lexeme in forms[0]],
            stems=[lexeme for forms in lexemes for lexeme in forms[1] + forms[2]],
            prefix=terms.prefix if prefix else "",
        )
        hits = [_message_hit(row, highlighter.snippet(row[9])) for row in rows]
        return hits, _next_cursor(top, offset, limit, found, lowest)

    @staticmethod
    def _page(match: str, workspace_id, top: int, offset: int, limit: int) -> list:
        """The rows of one page, ranked within its window (see the class docstring)."""
        if not match:  # only stop words in every configuration
            return []
        ws, top, window = int(workspace_id), int(top), CANDIDATES
        # The rows to walk on when the first walk found k < window matches in WALK rows, with a
        # margin for chance (matches come unevenly): half as many again, and 20 more.
        more_rows = f"ceil((({window} - k) * 1.5 + 20) * {WALK} / greatest(k, 1))"
        sql = f"""
            WITH walk AS MATERIALIZED (
                SELECT id FROM (
                    SELECT id, search_document, kind, workspace_id FROM inbox_message
                    WHERE id < {top} ORDER BY id DESC LIMIT {WALK}
                ) AS newest
                WHERE (search_document @@ {match}) IS TRUE
                  AND kind <> 'activity' AND workspace_id = {ws}
                ORDER BY id DESC LIMIT {window}
            ), seen AS MATERIALIZED (
                SELECT count(*) AS k FROM walk
            ), bound AS MATERIALIZED (  -- the oldest message the first walk read (0: none left)
                SELECT coalesce((
                    SELECT id FROM inbox_message WHERE id < {top}
                    ORDER BY id DESC OFFSET {WALK - 1} LIMIT 1
                ), 0) AS id
            ), more AS MATERIALIZED (
                SELECT id FROM (
                    SELECT id, search_document, kind, workspace_id FROM inbox_message
                    WHERE id < (SELECT id FROM bound) ORDER BY id DESC
                    LIMIT (SELECT least({more_rows}, {WALK_MAX}) FROM seen)
                ) AS next
                WHERE (SELECT k BETWEEN 1 AND {window - 1} AND {more_rows} <= {WALK_MAX}
                       FROM seen)
                  AND (search_document @@ {match}) IS TRUE
                  AND kind <> 'activity' AND workspace_id = {ws}
                ORDER BY id DESC LIMIT (SELECT {window} - k FROM seen)
            ), older AS MATERIALIZED (
                SELECT id FROM inbox_message
                WHERE (SELECT k FROM seen) + (SELECT count(*) FROM more) < {window}
                  AND (SELECT id FROM bound) > 0
                  AND search_document @@ {match} AND kind <> 'activity'
                  AND workspace_id + 0 = {ws} AND id + 0 < (SELECT id FROM bound)
                ORDER BY id + 0 DESC LIMIT {window}
            ), candidates AS (
                SELECT id FROM walk UNION SELECT id FROM more UNION SELECT id FROM older
                ORDER BY id DESC LIMIT {window}
            ), ranked AS (
                SELECT c.id, count(*) OVER () AS found, min(c.id) OVER () AS lowest,
                       row_number() OVER (
                           ORDER BY ts_rank(m.search_document, {match}) DESC, c.id DESC
                       ) AS position
                FROM candidates AS c JOIN inbox_message AS m ON m.id = c.id
            )
            SELECT r.found, r.lowest, m.id, m.conversation_id, v.number, v.subject, m.direction,
                   m.kind, m.created_at, left(m.text, {HIGHLIGHT_CHARS}), ct.name, ct.email,
                   ct.phone, ch.name
            FROM ranked AS r
            JOIN inbox_message AS m ON m.id = r.id
            JOIN inbox_conversation AS v ON v.id = m.conversation_id
            JOIN inbox_contact AS ct ON ct.id = v.contact_id
            JOIN inbox_channel AS ch ON ch.id = m.channel_id
            WHERE r.position > {int(offset)} AND r.position <= {int(offset) + int(limit)}
            ORDER BY r.position
        """  # noqa: S608 - every value is a quoted literal or an int
        with connection.cursor() as cursor:
            cursor.execute(sql)
            rows = cursor.fetchall()
        return rows


def _tsquery_lexeme(lexeme: str) -> str:
    """A lexeme in tsquery syntax: quoted, with quotes and backslashes doubled."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


class Highlighter:
    """Marks the words of a text that the query matched (PostgreSQL: ``ts_headline`` would drop
    anything shaped like an HTML tag from the text, and knows only one configuration at a time).

    A word is marked when it equals a query word, or starts with the English or Dutch stem of
    one, or with the prefix being typed."""

    def __init__(self, simple: list[str], stems: list[str], prefix: str) -> None:
        self.exact = {part for lexeme in simple for part in _WORD.findall(lexeme)}
        stemmed = {part for lexeme in stems for part in _WORD.findall(lexeme)} - self.exact
        self.prefixes = tuple(sorted(stemmed | ({prefix} if prefix else set())))

    def matches(self, word: str) -> bool:
        word = word.lower()
        return word in self.exact or word.startswith(self.prefixes)

    def snippet(self, text: str, width: int = SNIPPET_CHARS) -> SafeString:
        spans = [m.span() for m in _WORD.finditer(text) if self.matches(m.group())]
        start = 0
        if spans and spans[0][0] > width // 4 and len(text) > width:
            start = _word_start(text, spans[0][0] - width // 4)
        end = len(text) if len(text) - start <= width else _word_end(text, start + width)
        out = ["…" if start else ""]
        at = start
        for left, right in spans:
            if left < start:
                continue
            if right > end:
                break
            out += [html.escape(text[at:left]), "<mark>", html.escape(text[left:right]), "</mark>"]
            at = right
        out += [html.escape(text[at:end]), "…" if end < len(text) else ""]
        return mark_safe("".join(out))  # noqa: S308 - every piece of text is escaped


def _word_start(text: str, at: int) -> int:
    space = text.rfind(" ", 0, at)
    return space + 1 if space >= 0 and at - space < 30 else at


def _word_end(text: str, at: int) -> int:
    space = text.find(" ", at)
    return space if 0 <= space < at + 30 else at


# --- SQLite ----------------------------------------------------------------------------------
_SQLITE_DIGITS = (
    "replace(replace(replace(replace(replace(replace(phone, ' ', ''), '+', ''), '-', ''),"
    " '(', ''), ')', ''), '.', '')"
)


def _fts_string(text: str) -> str:
    """An FTS5 string: everything inside is literal text for the tokenizer (no operators)."""
    return '"' + text.replace('"', '""') + '"'


class _SQLite:
    """FTS5 reads matches newest first (``ORDER BY rowid DESC``) without sorting them, except for
    a prefix (``"refu"*``), whose matches FTS5 merges in full first: 0.3-3 s for a common prefix
    at 5M messages. So the words are searched as typed first, and the prefix only when that
    does not fill the window (a word still being typed)."""

    @staticmethod
    def session(terms: Terms):
        return contextlib.nullcontext()

    @staticmethod
    def _match(terms: Terms, *, prefix: bool) -> str:
        phrases = [_fts_string(piece) for piece in terms.pieces]
        if prefix and terms.prefix:  # the last piece is that one word
            phrases[-1] = f"{_fts_string(terms.prefix)}*"
        return " AND ".join(phrases)

    @staticmethod
    def contacts(workspace_id: int, terms: Terms, limit: int) -> list[ContactHit]:
        if not terms.words:
            return []
        match = " AND ".join(f"{_fts_string(word)}*" for word in terms.words)
        if terms.digits:
            match = f"({match}) OR phone_digits : {_fts_string(terms.digits)}*"
        order, params = _contact_rank_sql(terms, _SQLITE_DIGITS, "instr")
        sql = f"""
            SELECT id, name, email, phone FROM (
                SELECT c.id, c.name, c.email, c.phone, c.created_at
                FROM inbox_contact_fts AS f JOIN inbox_contact AS c ON c.id = f.rowid
                WHERE inbox_contact_fts MATCH %s AND c.workspace_id = %s
                  AND c.merged_into_id IS NULL
                LIMIT {CONTACT_CANDIDATES}
            )
            ORDER BY {order} LIMIT %s
        """  # noqa: S608 - values are parameters
        with connection.cursor() as cursor:
            cursor.execute(sql, [match, workspace_id, *params, limit])
            return [ContactHit(*row) for row in cursor.fetchall()]

    @classmethod
    def messages(cls, workspace_id, terms: Terms, top: int, offset: int, limit: int, state=None):
        rows = cls._page(cls._match(terms, prefix=False), workspace_id, top, offset, limit)
        if terms.prefix and (not rows or rows[0][0][0] < CANDIDATES):
            rows = cls._page(cls._match(terms, prefix=True), workspace_id, top, offset, limit)
        if not rows:
            return [], None
        rows, (opening, closing) = rows
        found, lowest = rows[0][0], rows[0][1]
        hits = [_message_hit(row, _marked(row[9], opening, closing)) for row in rows]
        return hits, _next_cursor(top, offset, limit, found, lowest)

    @staticmethod
    def _page(match: str, workspace_id, top: int, offset: int, limit: int):
        """(rows, marks) of one page ranked within its window, or None when there are none."""
        # Random marks: no stored text can contain them, so every other character is escaped.
        token = secrets.token_hex(8)
        opening, closing = f"\ue000{token}\ue001", f"\ue002{token}\ue003"
        sql = f"""
            WITH candidates AS (
                SELECT inbox_message_fts.rowid AS id, bm25(inbox_message_fts) AS rank
                FROM inbox_message_fts JOIN inbox_message AS m ON m.id = inbox_message_fts.rowid
                WHERE inbox_message_fts MATCH %s AND m.workspace_id = %s
                  AND inbox_message_fts.rowid < %s
                ORDER BY inbox_message_fts.rowid DESC LIMIT {CANDIDATES}
            ), ranked AS (
                SELECT id, row_number() OVER (ORDER BY rank, id DESC) AS position,
                       count(*) OVER () AS found, min(id) OVER () AS lowest
                FROM candidates
            ), page AS (
                SELECT * FROM ranked WHERE position > %s AND position <= %s
            )
            SELECT r.found, r.lowest, m.id, m.conversation_id, v.number, v.subject, m.direction,
                   m.kind, m.created_at,
                   snippet(inbox_message_fts, 0, %s, %s, '…', 40),
                   ct.name, ct.email, ct.phone, ch.name
            FROM page AS r
            JOIN inbox_message_fts ON inbox_message_fts.rowid = r.id
            JOIN inbox_message AS m ON m.id = r.id
            JOIN inbox_conversation AS v ON v.id = m.conversation_id
            JOIN inbox_contact AS ct ON ct.id = v.contact_id
            JOIN inbox_channel AS ch ON ch.id = m.channel_id
            WHERE inbox_message_fts MATCH %s
            ORDER BY r.position
        """  # noqa: S608 - values are parameters
        params = [match, workspace_id, top, offset, offset + limit, opening, closing, match]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return (rows, (opening, closing)) if rows else None


def _marked(text: str, opening: str, closing: str) -> SafeString:
    escaped = html.escape(text)
    return mark_safe(escaped.replace(opening, "<mark>").replace(closing, "</mark>"))  # noqa: S308


_BACKENDS = {"postgresql": _Postgres, "sqlite": _SQLite}


# --- keeping the SQLite index whole ------------------------------------------------------------
# Django rebuilds a SQLite table to alter it (copy, drop, rename), and dropping a table drops its
# triggers: after such a migration the triggers must be made again and the index rebuilt.
SQLITE_TRIGGERS = {
    "inbox_message_fts_insert": """
        CREATE TRIGGER inbox_message_fts_insert AFTER INSERT ON inbox_message
        WHEN new.kind <> 'activity' BEGIN
            INSERT INTO inbox_message_fts (rowid, text) VALUES (new.id, new.text);
        END""",
    "inbox_message_fts_delete": """
        CREATE TRIGGER inbox_message_fts_delete AFTER DELETE ON inbox_message
        WHEN old.kind <> 'activity' BEGIN
            INSERT INTO inbox_message_fts (inbox_message_fts, rowid, text)
            VALUES ('delete', old.id, old.text);
        END""",
    "inbox_message_fts_update": """
        CREATE TRIGGER inbox_message_fts_update AFTER UPDATE OF text, kind ON inbox_message
        BEGIN
            INSERT INTO inbox_message_fts (inbox_message_fts, rowid, text)
            SELECT 'delete', old.id, old.text WHERE old.kind <> 'activity';
            INSERT INTO inbox_message_fts (rowid, text)
            SELECT new.id, new.text WHERE new.kind <> 'activity';
        END""",
    "inbox_contact_fts_insert": f"""
        CREATE TRIGGER inbox_contact_fts_insert AFTER INSERT ON inbox_contact BEGIN
            INSERT INTO inbox_contact_fts (rowid, name, email, phone, phone_digits)
            VALUES (new.id, new.name, new.email, new.phone,
                    {_SQLITE_DIGITS.replace("phone", "new.phone")});
        END""",  # noqa: S608 - fixed SQL
    "inbox_contact_fts_delete": """
        CREATE TRIGGER inbox_contact_fts_delete AFTER DELETE ON inbox_contact BEGIN
            DELETE FROM inbox_contact_fts WHERE rowid = old.id;
        END""",
    "inbox_contact_fts_update": f"""
        CREATE TRIGGER inbox_contact_fts_update AFTER UPDATE OF name, email, phone
        ON inbox_contact BEGIN
            UPDATE inbox_contact_fts SET name = new.name, email = new.email, phone = new.phone,
                phone_digits = {_SQLITE_DIGITS.replace("phone", "new.phone")}
            WHERE rowid = new.id;
        END""",  # noqa: S608 - fixed SQL
}
SQLITE_REINDEX = (
    "INSERT INTO inbox_message_fts (inbox_message_fts) VALUES ('delete-all')",
    "INSERT INTO inbox_message_fts (rowid, text)"
    " SELECT id, text FROM inbox_message WHERE kind <> 'activity'",
    "DELETE FROM inbox_contact_fts",
    f"""INSERT INTO inbox_contact_fts (rowid, name, email, phone, phone_digits)
        SELECT id, name, email, phone, {_SQLITE_DIGITS} FROM inbox_contact""",  # noqa: S608
)


def ensure_sqlite_index(using=None) -> bool:
    """Recreate missing search triggers and rebuild the index; True when something was missing.
    A no-op on PostgreSQL (its index is a generated column and a GIN index, which survive
    ``ALTER TABLE``) and before the search migration has run."""
    from django.db import connections

    db = connections[using] if using else connection
    if db.vendor != "sqlite":
        return False
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT type, name FROM sqlite_master WHERE name LIKE 'inbox\\_%\\_fts%' ESCAPE '\\'"
        )
        present = {name for _, name in cursor.fetchall()}
        if "inbox_message_fts" not in present:
            return False  # the migration has not run (or was reversed)
        missing = [name for name in SQLITE_TRIGGERS if name not in present]
        if not missing:
            return False
        for name in missing:
            cursor.execute(SQLITE_TRIGGERS[name])
        for statement in SQLITE_REINDEX:
            cursor.execute(statement)
    return True
