"""Full-text search over the knowledge base's passages (loket.knowledge.retrieval), per vendor.

PostgreSQL: ``knowledge_passage.search_document``, a stored generated ``tsvector`` of the heading
and text in the ``english`` and ``dutch`` configurations (stemmed, stop words left out), with a
GIN index. SQLite: ``knowledge_passage_fts``, an external-content FTS5 table (Porter stemmer)
kept by triggers; passages are only ever inserted and deleted (an article is re-cut whole).
Like the inbox's search (inbox 0004), these live outside Django's model state.
"""

from django.db import migrations

PG_FORWARDS = [
    """
    ALTER TABLE knowledge_passage ADD COLUMN search_document tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, heading), 'A')
        || setweight(to_tsvector('dutch'::regconfig, heading), 'A')
        || to_tsvector('english'::regconfig, text)
        || to_tsvector('dutch'::regconfig, text)
    ) STORED
    """,
    "CREATE INDEX knowledge_passage_search ON knowledge_passage USING gin (search_document)",
]
PG_BACKWARDS = [
    "DROP INDEX IF EXISTS knowledge_passage_search",
    "ALTER TABLE knowledge_passage DROP COLUMN IF EXISTS search_document",
]
SQLITE_FORWARDS = [
    """
    CREATE VIRTUAL TABLE knowledge_passage_fts USING fts5(
        heading, text, content='knowledge_passage', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2'
    )
    """,
    """
    CREATE TRIGGER knowledge_passage_fts_insert AFTER INSERT ON knowledge_passage BEGIN
        INSERT INTO knowledge_passage_fts (rowid, heading, text)
        VALUES (new.id, new.heading, new.text);
    END
    """,
    """
    CREATE TRIGGER knowledge_passage_fts_delete AFTER DELETE ON knowledge_passage BEGIN
        INSERT INTO knowledge_passage_fts (knowledge_passage_fts, rowid, heading, text)
        VALUES ('delete', old.id, old.heading, old.text);
    END
    """,
]
SQLITE_BACKWARDS = [
    "DROP TRIGGER IF EXISTS knowledge_passage_fts_delete",
    "DROP TRIGGER IF EXISTS knowledge_passage_fts_insert",
    "DROP TABLE IF EXISTS knowledge_passage_fts",
]


def _run(schema_editor, statements: dict[str, list[str]]) -> None:
    for statement in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement)


def forwards(apps, schema_editor):
    _run(schema_editor, {"postgresql": PG_FORWARDS, "sqlite": SQLITE_FORWARDS})


def backwards(apps, schema_editor):
    _run(schema_editor, {"postgresql": PG_BACKWARDS, "sqlite": SQLITE_BACKWARDS})


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0001_knowledge_base")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
