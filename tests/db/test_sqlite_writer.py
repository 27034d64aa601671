"""The embedded SQLite backend funnels write transactions through one writer per process."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from loket.db.sqlite3 import base as sqlite_backend
from loket.inbox.models import Contact
from tests import factories

pytestmark = pytest.mark.sqlite


def test_concurrent_writers_queue_instead_of_failing(transactional_db):
    """With SQLite's busy handler switched off, contending write transactions would fail at once
    with "database is locked"; the writer lock makes them wait their turn instead."""
    workspace = factories.workspace()
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def writer(index: int) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA busy_timeout = 0")
            start.wait()
            for n in range(25):
                with transaction.atomic():
                    Contact.objects.create(workspace=workspace, name=f"w{index}-{n}")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert Contact.objects.count() == 200
    assert not sqlite_backend._write_lock.locked()


def test_the_writer_lock_is_released_by_commit_rollback_and_errors(transactional_db):
    workspace = factories.workspace()
    with transaction.atomic():
        Contact.objects.create(workspace=workspace, name="committed")
        assert sqlite_backend._write_lock.locked()
    assert not sqlite_backend._write_lock.locked()
    with pytest.raises(ValueError), transaction.atomic():
        Contact.objects.create(workspace=workspace, name="rolled back")
        raise ValueError("boom")
    assert not sqlite_backend._write_lock.locked()
    assert list(Contact.objects.values_list("name", flat=True)) == ["committed"]
