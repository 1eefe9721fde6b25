"""The embedded SQLite store, one file (the default).

`transaction()` takes SQLite's write lock up front (BEGIN IMMEDIATE) so
concurrent consumers wait for each other instead of failing half-way. WAL
lets readers (status, trace) run beside a consumer; FULL sync because an
acknowledged publish must survive a power cut.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import AeError
from ..private_files import create_empty_private_file, private_folder
from ..secretbox import SecretBox
from .api import Store
from .base import Result
from .lanes import LANE_COLUMNS, LANE_TABLES, LANES_DESCRIPTION
from .schema import FILTER_COLUMNS, FILTER_DESCRIPTION, FILTER_TABLE, Migration

DELIVERY_LOG_SQL = """
CREATE TABLE delivery_log (
    log_id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT, subscription_id INTEGER, event_name TEXT, success INTEGER, status_code INTEGER,
    response_data TEXT, created TEXT, serialized_data TEXT, death_count INTEGER, duration FLOAT,
    message_id TEXT
)"""
DELIVERY_LOG_INDEXES = (("message_id", "subscription_id"), ("uuid",), ("created",), ("subscription_id", "success"))
TABLES = (
    "CREATE TABLE IF NOT EXISTS store_info (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS amqp_delay_queues (name TEXT PRIMARY KEY, first_used TEXT)",
    "CREATE TABLE IF NOT EXISTS subscriptions (subscription_id INTEGER PRIMARY KEY, event_name TEXT NOT NULL,"
    " recipient_url TEXT NOT NULL, verification_token TEXT NOT NULL, status INTEGER NOT NULL, subscribed_at TEXT,"
    " modified TEXT, notifier TEXT NOT NULL, store_id INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS idx_subscriptions_event_name_status ON subscriptions (event_name, status)",
    "CREATE TABLE IF NOT EXISTS deliveries (uuid TEXT PRIMARY KEY, subscription_id INTEGER, event_name TEXT,"
    " state TEXT, attempts INTEGER, death_count INTEGER, next_attempt_at TEXT, updated TEXT,"
    " generation INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS api_tokens (name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE,"
    " events TEXT NOT NULL, created TEXT NOT NULL, last_used TEXT)",
)
#: Events published inside an application's own transaction (`queue = "amqp"`),
#: waiting for the relay to forward them; `sent_at` is set once the broker has them.
#: (IF NOT EXISTS: a store whose version table was lost is brought level again.)
OUTBOX_TABLES = (
    "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL,"
    " body BLOB NOT NULL, created FLOAT NOT NULL, sent_at FLOAT)",
    "CREATE INDEX IF NOT EXISTS idx_outbox_unsent ON outbox (id) WHERE sent_at IS NULL",
)
# Columns added to the first tables before the schema had versions: (table,
# name, SQL definition). A store made earlier gains them; rows get the defaults.
ADDED_COLUMNS = (
    ("subscriptions", "signature_scheme", "TEXT NOT NULL DEFAULT 'magento'"),
    ("subscriptions", "custom_headers", "TEXT"),
    ("subscriptions", "previous_token", "TEXT"),
    ("subscriptions", "previous_token_expires", "TEXT"),
    ("deliveries", "generation", "INTEGER NOT NULL DEFAULT 0"),
)


def _first_schema(store: SqliteStore) -> None:
    """Version 1: today's tables on a new file, or any older store brought level."""
    for statement in TABLES:
        store._run(statement)
    for table, name, definition in ADDED_COLUMNS:
        if name not in store._columns(table):
            store._run(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")
    sql = store._run("SELECT sql FROM sqlite_master WHERE name = 'delivery_log'").scalar()
    if sql is None:
        store._run(DELIVERY_LOG_SQL)
        store._new_log_generation()
    elif "AUTOINCREMENT" not in sql.upper():
        # SQLite reuses the largest rowid once it is deleted, and a search index that
        # remembers it would then skip the new rows: copy the log into a table that
        # never reuses an id; the new log generation makes every index rebuild once.
        store._run("ALTER TABLE delivery_log RENAME TO delivery_log_before_autoincrement")
        store._run(DELIVERY_LOG_SQL)
        store._run(
            "INSERT INTO delivery_log SELECT log_id, uuid, subscription_id, event_name, success,"
            " status_code, response_data, created, serialized_data, death_count, duration,"
            " message_id FROM delivery_log_before_autoincrement"
        )
        store._run("DROP TABLE delivery_log_before_autoincrement")
        store._new_log_generation()
    for columns in DELIVERY_LOG_INDEXES:
        store._run(
            f"CREATE INDEX IF NOT EXISTS idx_delivery_log_{'_'.join(columns)} ON delivery_log ({', '.join(columns)})"
        )


def _filter_schema(store: SqliteStore) -> None:
    """Version 6 (see `schema.FILTER_COLUMNS`); a column already there is kept, as in version 1."""
    columns = store._columns("subscriptions")
    for name, definition in FILTER_COLUMNS:
        if name not in columns:
            store._run(f"ALTER TABLE subscriptions ADD COLUMN {name} {definition}")
    store._run(FILTER_TABLE)


def _add_column(store: SqliteStore, table: str, name: str, definition: str) -> None:
    """ALTER TABLE ADD COLUMN unless it is there: a store whose version table was lost
    (brought level by migration 1 again) may have it already; SQLite has no IF NOT EXISTS here."""
    if name not in store._columns(table):
        store._run(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")


def _add_columns(store: SqliteStore, columns: Sequence[tuple[str, str, str]]) -> None:
    for table, name, definition in columns:
        _add_column(store, table, name, definition)


#: Migration 4: each attempt records the recipient it went to (a subscription's URL can change
#: after it); added only if missing, as 2 and 3 do, so a store brought level again migrates.

MIGRATIONS = (
    Migration(
        1,
        "subscriptions, delivery_log, deliveries, store_info, amqp_delay_queues, api_tokens"
        " (stores from before versions are brought level)",
        apply=_first_schema,
    ),
    Migration(
        2,
        "subscriptions.rate_limit, rate_buckets (per-subscription rate limits)",
        (
            "CREATE TABLE IF NOT EXISTS rate_buckets (subscription_id INTEGER PRIMARY KEY, tokens REAL NOT NULL,"
            " updated INTEGER NOT NULL, version INTEGER NOT NULL DEFAULT 0)",
        ),
        apply=lambda store: _add_column(store, "subscriptions", "rate_limit", "TEXT"),
    ),
    Migration(
        3,
        LANES_DESCRIPTION,
        LANE_TABLES,
        apply=lambda store: _add_columns(store, LANE_COLUMNS),
    ),
    Migration(
        4,
        "delivery_log.recipient_url: where each attempt was sent",
        apply=lambda store: _add_column(store, "delivery_log", "recipient_url", "TEXT"),
    ),
    Migration(5, "outbox: events published in an application's transaction, for the relay", OUTBOX_TABLES),
    Migration(6, FILTER_DESCRIPTION, apply=lambda store: _filter_schema(store)),
)


class SqliteStore(Store):
    backend = "sqlite"
    missing_table_errors = (sqlite3.OperationalError,)
    migrations = MIGRATIONS

    def __init__(self, database: str | Path, environ: Mapping[str, str] | None = None, migrate: bool = True) -> None:
        super().__init__(environ)
        self.path = Path(database)
        self._db: Any = None
        self.read_only = self.path.exists() and not (
            os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK)
        )
        try:
            if self.read_only:
                self.conn = self._connect_read_only()
                self.conn.execute("PRAGMA busy_timeout=30000")
                self.check_schema_version()
                return  # no migrations or sealing: they wait for a writable store
            private_folder(self.path.parent)
            # SQLite gives its WAL and shared-memory files the database file's mode
            create_empty_private_file(self.path)
            self.conn = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA busy_timeout=30000")
            if migrate:
                self.migrate()
                self._seal_plaintext_tokens()
            else:
                self.check_schema_version()
        except (sqlite3.DatabaseError, OSError) as exc:
            raise AeError(f"cannot open database {self.path}: {exc}") from None

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

    @property
    def db(self) -> Any:
        """The connection as a sqlite_utils Database, for tests and tools that want one."""
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self.conn)
        return self._db

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

    def _open_secret_box(self, create: bool) -> SecretBox:
        return SecretBox.for_store(self.path, self._environ, create=create)

    def _log_id_sequence(self) -> int:
        try:
            value = self._run("SELECT seq FROM sqlite_sequence WHERE name = 'delivery_log'").scalar()
        except sqlite3.OperationalError:  # no AUTOINCREMENT table yet (an old store opened read-only)
            return 0
        return int(value or 0)

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self._run(f"PRAGMA table_info({table})").rows}
