"""The embedded SQLite store, one file (the default).

`transaction()` takes SQLite's write lock up front (BEGIN IMMEDIATE) so
concurrent consumers wait for each other instead of failing half-way. WAL
lets readers (status, trace) run beside a consumer; FULL sync because an
acknowledged publish must survive a power cut.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import AeError
from ..secretbox import SecretBox
from .api import Store
from .base import Result

DELIVERY_LOG_SQL = """
CREATE TABLE delivery_log (
    log_id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT, subscription_id INTEGER, event_name TEXT, success INTEGER, status_code INTEGER,
    response_data TEXT, created TEXT, serialized_data TEXT, death_count INTEGER, duration FLOAT,
    message_id TEXT
)"""
DELIVERY_LOG_INDEXES = (["message_id", "subscription_id"], ["uuid"], ["created"], ["subscription_id", "success"])
API_TOKENS_SQL = ("CREATE TABLE IF NOT EXISTS api_tokens (name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE,"
                  " events TEXT NOT NULL, created TEXT NOT NULL, last_used TEXT)")

# Columns added after the first release: (name, SQL definition). A store
# created earlier gains them on open; existing rows get the defaults.
ADDED_SUBSCRIPTION_COLUMNS = (
    ("signature_scheme", "TEXT NOT NULL DEFAULT 'magento'"),
    ("custom_headers", "TEXT"),
    ("previous_token", "TEXT"),
    ("previous_token_expires", "TEXT"),
)


def _create_private(path: Path) -> None:
    """Create an empty database file readable by its owner only (SQLite gives its WAL
    and shared-memory files the same mode)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class SqliteStore(Store):
    missing_table_errors = (sqlite3.OperationalError,)

    def __init__(self, database: str | Path, environ: Mapping[str, str] | None = None) -> None:
        import sqlite_utils  # here, not at the top: `ae --help` need not load it

        super().__init__(environ)
        self.path = Path(database)
        self.read_only = self.path.exists() and not (
            os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK))
        try:
            if self.read_only:
                self.db = sqlite_utils.Database(self._connect_read_only())
                self.db.execute("PRAGMA busy_timeout=30000")
                return  # no schema changes, migrations or sealing: they wait for a writable store
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                _create_private(self.path)
            conn = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA busy_timeout=30000")
            self._create_schema()
            self._seal_plaintext_tokens()
        except (sqlite3.DatabaseError, OSError) as exc:
            raise AeError(f"cannot open database {self.path}: {exc}") from None

    def _connect_read_only(self) -> sqlite3.Connection:
        """Open for reading only. A WAL database normally needs its -shm file, which a
        read-only folder may not have; then it is opened as immutable (nothing can
        change it there anyway)."""
        uri = self.path.absolute().as_uri()
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30, check_same_thread=False)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError:
            conn.close()
        return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, check_same_thread=False)

    # -- the backend's part ----------------------------------------------------

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def close(self) -> None:
        self.db.close()

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

    def _open_secret_box(self, create: bool) -> SecretBox:
        return SecretBox.for_store(self.path, self._environ, create=create)

    def _log_id_sequence(self) -> int:
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'delivery_log'").fetchone()
        return int(row[0]) if row else 0

    # -- schema ----------------------------------------------------------------

    def _create_schema(self) -> None:
        db = self.db
        if "store_info" not in db.table_names():
            db.table("store_info").create({"key": str, "value": str}, pk="key", not_null={"value"})
        if "amqp_delay_queues" not in db.table_names():
            db.table("amqp_delay_queues").create({"name": str, "first_used": str}, pk="name")
        if "subscriptions" not in db.table_names():
            db.table("subscriptions").create(
                {
                    "subscription_id": int,
                    "event_name": str,
                    "recipient_url": str,
                    "verification_token": str,
                    "status": int,
                    "subscribed_at": str,
                    "modified": str,
                    "notifier": str,
                    "store_id": int,
                },
                pk="subscription_id",
                not_null={"event_name", "recipient_url", "verification_token", "status", "notifier", "store_id"},
            )
            db.table("subscriptions").create_index(["event_name", "status"])
        self._migrate_subscriptions()
        if "delivery_log" not in db.table_names():
            with self.transaction():
                self.conn.execute(DELIVERY_LOG_SQL)
                self._new_log_generation()
            for columns in DELIVERY_LOG_INDEXES:
                db.table("delivery_log").create_index(columns, if_not_exists=True)
        elif not self._log_ids_are_never_reused():
            self._migrate_to_autoincrement()
        if "deliveries" not in db.table_names():
            db.table("deliveries").create(
                {
                    "uuid": str,
                    "subscription_id": int,
                    "event_name": str,
                    "state": str,
                    "attempts": int,
                    "death_count": int,
                    "next_attempt_at": str,
                    "updated": str,
                    "generation": int,
                },
                pk="uuid",
                not_null={"generation"},
                defaults={"generation": 0},
            )
        elif "generation" not in db.table("deliveries").columns_dict:
            # Stores made before replays had generations: every chain starts at 0.
            db.execute("ALTER TABLE deliveries ADD COLUMN generation INTEGER NOT NULL DEFAULT 0")
        self.conn.execute(API_TOKENS_SQL)

    def _log_ids_are_never_reused(self) -> bool:
        row = self.conn.execute("SELECT sql FROM sqlite_master WHERE name = 'delivery_log'").fetchone()
        return bool(row) and "AUTOINCREMENT" in row[0].upper()

    def _migrate_to_autoincrement(self) -> None:
        """Stores made before log ids were AUTOINCREMENT: copy the log into a table
        that never reuses an id. SQLite reuses the largest rowid once it is deleted,
        and a search index that remembers it would then skip the new rows; the new
        log generation makes every index rebuild once."""
        with self.transaction():
            self.conn.execute("ALTER TABLE delivery_log RENAME TO delivery_log_before_autoincrement")
            self.conn.execute(DELIVERY_LOG_SQL)
            self.conn.execute("INSERT INTO delivery_log SELECT log_id, uuid, subscription_id, event_name, success,"
                              " status_code, response_data, created, serialized_data, death_count, duration,"
                              " message_id FROM delivery_log_before_autoincrement")
            self.conn.execute("DROP TABLE delivery_log_before_autoincrement")
            self._new_log_generation()
        for columns in DELIVERY_LOG_INDEXES:
            self.db.table("delivery_log").create_index(columns, if_not_exists=True)

    def _missing_subscription_columns(self) -> list[tuple[str, str]]:
        present = {row[1] for row in self.conn.execute("PRAGMA table_info(subscriptions)")}
        return [(name, sql) for name, sql in ADDED_SUBSCRIPTION_COLUMNS if name not in present]

    def _migrate_subscriptions(self) -> None:
        if not self._missing_subscription_columns():
            return
        # Under the write lock, and checked again inside it: two processes may
        # open the same old store at once.
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for name, definition in self._missing_subscription_columns():
                self.conn.execute(f"ALTER TABLE subscriptions ADD COLUMN {name} {definition}")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
