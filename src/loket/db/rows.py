"""Single-row INSERT without the ORM's query compiler, for the ingest hot path.

The ORM spends ~0.2-0.4 ms of CPU compiling each statement; on the webhook path that, not the
database, was the limit (see bench/ and docs/benchmarks.md). These helpers build the SQL once per
(model, columns) from the model's metadata and prepare values through the model's own fields, so
column names and value conversions stay the ORM's.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

from django.db import connection, models
from django.db.models.fields import AutoFieldMixin
from django.utils import timezone


@functools.cache
def _insert_sql(model: type[models.Model], names: tuple[str, ...], conflict: tuple[str, ...],
                conflict_where: str, computed: tuple[tuple[str, str], ...] = (),
                source: str = "") -> str:  # fmt: skip
    meta = model._meta
    table = connection.ops.quote_name(meta.db_table)
    all_names = names + tuple(name for name, _ in computed)
    columns = ", ".join(connection.ops.quote_name(meta.get_field(n).column) for n in all_names)
    row = ", ".join(["%s"] * len(names) + [expression for _, expression in computed])
    # Identifiers come from model metadata, expressions and source from the caller's fixed
    # text; values are always parameters.
    if source:
        sql = f"INSERT INTO {table} ({columns}) SELECT {row} {source}"
    else:
        sql = f"INSERT INTO {table} ({columns}) VALUES ({row})"  # noqa: S608
    if conflict:
        target = ", ".join(connection.ops.quote_name(meta.get_field(n).column) for n in conflict)
        where = f" WHERE {conflict_where}" if conflict_where else ""
        sql += f" ON CONFLICT ({target}){where} DO NOTHING"
    return sql + f" RETURNING {connection.ops.quote_name(meta.pk.column)}"


# Field types whose Python values (str, int, bool, None) the driver takes as they are; anything
# else, subclasses that change preparation included (e.g. an encrypted field), is prepared by the
# field as the ORM would.
_SIMPLE_PREP = {
    models.CharField.get_prep_value,
    models.TextField.get_prep_value,
    models.IntegerField.get_prep_value,
    models.BooleanField.get_prep_value,
}


_SIMPLE_DB_PREP = {models.Field.get_db_prep_value, AutoFieldMixin.get_db_prep_value}


def _is_simple(field: models.Field, vendor: str) -> bool:
    if isinstance(field, models.ForeignKey):
        return _is_simple(field.target_field, vendor)
    kind = type(field)
    if kind is models.DateTimeField and vendor == "postgresql":
        return True  # psycopg sends aware datetimes as timestamptz itself
    return (
        kind.get_prep_value in _SIMPLE_PREP
        and kind.get_db_prep_value in _SIMPLE_DB_PREP
        and kind.get_db_prep_save is models.Field.get_db_prep_save
    )


@functools.cache
def _preparers(model: type[models.Model], names: tuple[str, ...], vendor: str):
    fields = [model._meta.get_field(name) for name in names]
    return [None if _is_simple(field, vendor) else field for field in fields]


def _prepared(model: type[models.Model], values: dict[str, Any], db) -> list[Any]:
    preparers = _preparers(model, tuple(values), db.vendor)
    return [
        value if field is None else field.get_db_prep_save(value, db)
        for field, value in zip(preparers, values.values(), strict=True)
    ]


def insert_statement(
    model: type[models.Model],
    values: dict[str, Any],
    db,
    *,
    on_conflict_do_nothing: tuple[str, ...] = (),
    conflict_where: str = "",
    computed: dict[str, str] | None = None,
    source: str = "",
) -> tuple[str, list[Any]]:
    """The SQL (``INSERT … RETURNING pk``) and parameters of ``insert()``, to embed in a larger
    statement (e.g. a data-modifying WITH). ``source`` (``FROM … WHERE …``) makes it an
    ``INSERT … SELECT`` that inserts a row only where the source yields one, and ``computed``
    maps further fields to SQL expressions over it (e.g. an id found by an earlier part of the
    statement)."""
    sql = _insert_sql(
        model,
        tuple(values),
        on_conflict_do_nothing,
        conflict_where,
        tuple((computed or {}).items()),
        source,
    )
    return sql, _prepared(model, values, db)


def insert(
    model: type[models.Model],
    values: dict[str, Any],
    *,
    on_conflict_do_nothing: tuple[str, ...] = (),
    conflict_where: str = "",
    cursor=None,
) -> int | None:
    """Insert one row and return its primary key; None when a conflict made it a no-op.

    ``values`` maps field names (``conversation_id`` for foreign keys) to Python values; fields
    left out take their database default or NULL, so give every NOT NULL field. Pass an open
    ``cursor`` to reuse it across statements.
    """
    sql = _insert_sql(model, tuple(values), on_conflict_do_nothing, conflict_where)
    with contextlib.nullcontext(cursor) if cursor is not None else connection.cursor() as cur:
        cur.execute(sql, _prepared(model, values, cur.db))
        row = cur.fetchone()
    return row[0] if row else None


@functools.cache
def _defaulted_fields(model: type[models.Model]) -> tuple[models.Field, ...]:
    return tuple(
        field
        for field in model._meta.concrete_fields
        # A db_default is the database's to fill in: the column is simply left out.
        if not field.primary_key
        and not field.has_db_default()
        and (field.has_default() or not field.null)
    )


def with_defaults(model: type[models.Model], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` completed with every other field's default, as ``Model(**values).save()``
    would store them (``auto_now``/``auto_now_add`` fields: now; nullable fields without a
    default, and fields with a ``db_default``, are left to the database), for ``insert()`` of a
    whole new row."""
    complete = {}
    for field in _defaulted_fields(model):
        if field.attname in values or field.name in values:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            complete[field.attname] = timezone.now()
        else:
            complete[field.attname] = field.get_default()
    complete.update(values)
    return complete


def db_value(model: type[models.Model], field: str, value: Any, db=None) -> Any:
    """A Python value as the database stores it in ``model.field`` (for raw comparisons)."""
    db = db or connection
    model_field = model._meta.get_field(field)
    if _is_simple(model_field, db.vendor):
        return value
    return model_field.get_db_prep_value(value, db)
