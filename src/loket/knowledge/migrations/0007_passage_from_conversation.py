"""A passage may come from a resolved conversation (loket.knowledge.conversations) instead of
an article's translation.

On SQLite, making ``translation`` and ``article`` nullable remakes the table, and dropping the
old one drops the full-text triggers of ``knowledge/0002``: they are made again here and the
FTS5 index rebuilt from the table (its row ids are the passages' ids, kept by the remake)."""

import django.db.models.deletion
from django.db import migrations, models

SQLITE_TRIGGERS = [
    """
    CREATE TRIGGER IF NOT EXISTS knowledge_passage_fts_insert AFTER INSERT ON knowledge_passage
    BEGIN
        INSERT INTO knowledge_passage_fts (rowid, heading, text)
        VALUES (new.id, new.heading, new.text);
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS knowledge_passage_fts_delete AFTER DELETE ON knowledge_passage
    BEGIN
        INSERT INTO knowledge_passage_fts (knowledge_passage_fts, rowid, heading, text)
        VALUES ('delete', old.id, old.heading, old.text);
    END
    """,
    "INSERT INTO knowledge_passage_fts (knowledge_passage_fts) VALUES ('rebuild')",
]


def restore_fts(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_TRIGGERS:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0014_conversation_sla_indexes"),
        ("knowledge", "0006_llm_and_insights"),
    ]

    operations = [
        # Backwards, the remake happens after this operation's reverse: triggers again at the end.
        migrations.RunPython(migrations.RunPython.noop, restore_fts, elidable=False),
        migrations.AddField(
            model_name="passage",
            name="conversation",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="inbox.conversation",
            ),
        ),
        migrations.AddField(
            model_name="passage",
            name="source_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="passage",
            name="article",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="knowledge.article",
            ),
        ),
        migrations.AlterField(
            model_name="passage",
            name="translation",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="passages",
                to="knowledge.articletranslation",
            ),
        ),
        migrations.RunPython(restore_fts, migrations.RunPython.noop, elidable=False),
    ]
