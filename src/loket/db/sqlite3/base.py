"""SQLite with one writer per process.

SQLite allows one write transaction at a time; threads that contend for it through SQLite's busy
handler sleep and retry, which measured 1-1.6 s p99 latencies at 40 concurrent requests (see
shared/design/PERFORMANCE.md, rule 8). Here a process-wide lock is taken when a transaction
begins (``BEGIN IMMEDIATE``) and released at commit, rollback or close, so writing transactions
wait on the lock instead of sleeping in the busy handler (the lock is not FIFO). Readers are not
affected (WAL). Single writes outside a transaction (autocommit) and other processes still meet
the busy handler (30 s); the hot paths write in transactions.
"""

from __future__ import annotations

import threading

from django.db.backends.sqlite3 import base
from django.db.utils import OperationalError

_write_lock = threading.Lock()
WRITE_LOCK_TIMEOUT = 30.0


class DatabaseWrapper(base.DatabaseWrapper):
    _holds_write_lock = False

    def _start_transaction_under_autocommit(self):
        if not _write_lock.acquire(timeout=WRITE_LOCK_TIMEOUT):
            raise OperationalError("database is locked (waited for the writer lock)")
        self._holds_write_lock = True
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_write_lock()
            raise

    def _release_write_lock(self) -> None:
        if self._holds_write_lock:
            self._holds_write_lock = False
            _write_lock.release()

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._release_write_lock()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._release_write_lock()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._release_write_lock()
