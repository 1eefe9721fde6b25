"""The embedded SQLite store, one file (the default).

`transaction()` takes SQLite's write lock up front (BEGIN IMMEDIATE) so
concurrent consumers wait for each other instead of failing half-way. WAL
lets readers (status, trace) run beside a consumer; FULL sync because an
acknowledged publish must survive a power cut.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import AeError
from ..private_files import create_empty_private_file, private_folder
from ..secretbox import SecretBox
from .backend import Backend, Result


class SqliteBackend(Backend):
    name = "sqlite"
    missing_table_errors = (sqlite3.OperationalError,)

    def __init__(self, database: str | Path) -> None:
        super().__init__()
        self.path = Path(database)
        self.read_only = self.path.exists() and not (
            os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK)
        )
        with self.opening():
            if self.read_only:
                self.conn = self._connect_read_only()
                self.conn.execute("PRAGMA busy_timeout=30000")
                return  # the factory only checks its schema version: migrating writes
            private_folder(self.path.parent)
            # SQLite gives its WAL and shared-memory files the database file's mode
            create_empty_private_file(self.path)
            self.conn = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA busy_timeout=30000")

    @contextmanager
    def opening(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.DatabaseError, OSError) as exc:
            raise AeError(f"cannot open database {self.path}: {exc}") from exc

    def _connect_read_only(self) -> sqlite3.Connection:
        """Open for reading only. A WAL database normally needs its -shm file, which a
        read-only folder may not have; then it is opened as immutable (nothing can
        change it there anyway)."""
        uri = self.path.absolute().as_uri()
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError:
            conn.close()
        return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, check_same_thread=False, isolation_level=None)

    # -- the backend's part ----------------------------------------------------

    @property
    def location(self) -> str:
        return str(self.path)

    def close(self) -> None:
        self.conn.close()

    def _run(self, sql: str, params: Sequence[Any] = ()) -> Result:
        cursor = self.conn.execute(sql, params)
        rows = cursor.fetchall()
        columns = tuple(d[0] for d in cursor.description or ())
        return Result(rows, columns, cursor.rowcount)

    def _run_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    def _begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def _commit(self) -> None:
        self.conn.execute("COMMIT")

    def _rollback(self) -> None:
        self.conn.execute("ROLLBACK")

    def open_secret_box(self, environ: Mapping[str, str] | None, create: bool) -> SecretBox:
        return SecretBox.for_store(self.path, environ, create=create)

    def log_id_sequence(self) -> int:
        try:
            value = self._run("SELECT seq FROM sqlite_sequence WHERE name = 'delivery_log'").scalar()
        except sqlite3.OperationalError:  # no AUTOINCREMENT table yet (an old store opened read-only)
            return 0
        return int(value or 0)

    def columns(self, table: str) -> set[str]:
        """The names of a table's columns (migrations look before they add one)."""
        return {row[1] for row in self._run(f"PRAGMA table_info({table})").rows}
