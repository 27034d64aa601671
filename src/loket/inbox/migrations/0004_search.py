"""Full-text search over message text and contacts (loket.inbox.search), per database vendor.

PostgreSQL: ``inbox_message.search_document``, a stored generated ``tsvector`` over the text (its
first 10,000 characters since 0007) in
the ``simple``, ``english`` and ``dutch`` configurations (NULL for activity lines, which are not
searched), with a partial GIN index; an expression GIN index over the contact's name, email and
phone. A generated column is the cheapest way to keep the vector current: no trigger call, and
every write path (the ingest's raw SQL included) gets it without knowing it exists. Adding it
rewrites the table under an exclusive lock, so building the index concurrently would gain
nothing here.

SQLite: FTS5 tables kept in sync by triggers: ``inbox_message_fts`` is an external-content table
over ``inbox_message`` (the text is not stored twice; activity lines are left out),
``inbox_contact_fts`` a small self-contained one over contacts.

The columns, tables and triggers live outside Django's model state on purpose: they exist on one
vendor only and Django never reads or writes them directly.
"""

from django.db import migrations

# Must stay in step with loket.inbox.search (the query side builds the same vectors).
PG_FORWARDS = [
    """
    ALTER TABLE inbox_message ADD COLUMN search_document tsvector GENERATED ALWAYS AS (
        CASE WHEN kind <> 'activity' THEN
            to_tsvector('simple'::regconfig, text)
            || to_tsvector('english'::regconfig, text)
            || to_tsvector('dutch'::regconfig, text)
        END
    ) STORED
    """,
    """
    CREATE INDEX inbox_message_search ON inbox_message USING gin (search_document)
    WHERE kind <> 'activity'
    """,
    # Email split at "@" and "." so any part of it matches; the phone also as digits only, so a
    # number typed with spaces or dashes finds one stored as +31612345678.
    """
    CREATE INDEX inbox_contact_search ON inbox_contact USING gin ((
        to_tsvector('simple'::regconfig,
            name || ' ' || email || ' ' || translate(email, '@.', '  ') || ' ' || phone
            || ' ' || regexp_replace(phone, '[^0-9]', '', 'g'))
    ))
    """,
]
PG_BACKWARDS = [
    "DROP INDEX IF EXISTS inbox_contact_search",
    "DROP INDEX IF EXISTS inbox_message_search",
    "ALTER TABLE inbox_message DROP COLUMN IF EXISTS search_document",
]

# Digits only, for phone numbers (SQLite has no regexp_replace).
_SQLITE_DIGITS = (
    "replace(replace(replace(replace(replace(replace({0}, ' ', ''), '+', ''), '-', ''),"
    " '(', ''), ')', ''), '.', '')"
)
SQLITE_FORWARDS = [
    """
    CREATE VIRTUAL TABLE inbox_message_fts USING fts5(
        text, content='inbox_message', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2'
    )
    """,
    # An external-content index must be told the old text to forget it.
    """
    CREATE TRIGGER inbox_message_fts_insert AFTER INSERT ON inbox_message
    WHEN new.kind <> 'activity' BEGIN
        INSERT INTO inbox_message_fts (rowid, text) VALUES (new.id, new.text);
    END
    """,
    """
    CREATE TRIGGER inbox_message_fts_delete AFTER DELETE ON inbox_message
    WHEN old.kind <> 'activity' BEGIN
        INSERT INTO inbox_message_fts (inbox_message_fts, rowid, text)
        VALUES ('delete', old.id, old.text);
    END
    """,
    """
    CREATE TRIGGER inbox_message_fts_update AFTER UPDATE OF text, kind ON inbox_message BEGIN
        INSERT INTO inbox_message_fts (inbox_message_fts, rowid, text)
        SELECT 'delete', old.id, old.text WHERE old.kind <> 'activity';
        INSERT INTO inbox_message_fts (rowid, text)
        SELECT new.id, new.text WHERE new.kind <> 'activity';
    END
    """,
    """
    INSERT INTO inbox_message_fts (rowid, text)
    SELECT id, text FROM inbox_message WHERE kind <> 'activity'
    """,
    """
    CREATE VIRTUAL TABLE inbox_contact_fts USING fts5(
        name, email, phone, phone_digits,
        tokenize='unicode61 remove_diacritics 2', prefix='2 3'
    )
    """,
    f"""
    CREATE TRIGGER inbox_contact_fts_insert AFTER INSERT ON inbox_contact BEGIN
        INSERT INTO inbox_contact_fts (rowid, name, email, phone, phone_digits)
        VALUES (new.id, new.name, new.email, new.phone, {_SQLITE_DIGITS.format("new.phone")});
    END
    """,  # noqa: S608 - fixed SQL
    """
    CREATE TRIGGER inbox_contact_fts_delete AFTER DELETE ON inbox_contact BEGIN
        DELETE FROM inbox_contact_fts WHERE rowid = old.id;
    END
    """,
    f"""
    CREATE TRIGGER inbox_contact_fts_update AFTER UPDATE OF name, email, phone ON inbox_contact
    BEGIN
        UPDATE inbox_contact_fts SET name = new.name, email = new.email, phone = new.phone,
            phone_digits = {_SQLITE_DIGITS.format("new.phone")}
        WHERE rowid = new.id;
    END
    """,  # noqa: S608 - fixed SQL
    f"""
    INSERT INTO inbox_contact_fts (rowid, name, email, phone, phone_digits)
    SELECT id, name, email, phone, {_SQLITE_DIGITS.format("phone")} FROM inbox_contact
    """,  # noqa: S608 - fixed SQL
]
SQLITE_BACKWARDS = [
    "DROP TRIGGER IF EXISTS inbox_contact_fts_update",
    "DROP TRIGGER IF EXISTS inbox_contact_fts_delete",
    "DROP TRIGGER IF EXISTS inbox_contact_fts_insert",
    "DROP TABLE IF EXISTS inbox_contact_fts",
    "DROP TRIGGER IF EXISTS inbox_message_fts_update",
    "DROP TRIGGER IF EXISTS inbox_message_fts_delete",
    "DROP TRIGGER IF EXISTS inbox_message_fts_insert",
    "DROP TABLE IF EXISTS inbox_message_fts",
]

STATEMENTS = {
    "postgresql": (PG_FORWARDS, PG_BACKWARDS),
    "sqlite": (SQLITE_FORWARDS, SQLITE_BACKWARDS),
}


def _run(schema_editor, forwards: bool) -> None:
    vendor = schema_editor.connection.vendor
    if vendor not in STATEMENTS:
        raise NotImplementedError(f"full-text search is not implemented for {vendor}")
    for statement in STATEMENTS[vendor][0 if forwards else 1]:
        schema_editor.execute(statement, params=None)


def create_search_indexes(apps, schema_editor) -> None:
    _run(schema_editor, forwards=True)


def drop_search_indexes(apps, schema_editor) -> None:
    _run(schema_editor, forwards=False)


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0003_inbox_view_indexes"),
    ]

    operations = [
        migrations.RunPython(create_search_indexes, drop_search_indexes, elidable=False),
    ]
