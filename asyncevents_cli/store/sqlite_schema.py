"""The SQLite store's migrations (see `schema.py`).

SQLite's ALTER TABLE cannot say ADD COLUMN IF NOT EXISTS, so the steps that add
columns look first (`SqliteBackend.columns`): a store whose version table was
lost is brought level again by running every migration once more.
"""

from __future__ import annotations

from collections.abc import Sequence

from .lanes import LANE_COLUMNS, LANE_TABLES, LANES_DESCRIPTION
from .schema import FILTER_COLUMNS, FILTER_DESCRIPTION, FILTER_TABLE, QUEUE_DESCRIPTION, Migration
from .sqlite import SqliteBackend
from .store_info import new_log_generation

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
#: Migration 7: the table queue's messages (`queues/table.py`, `queue = "db"`, the
#: default). Stores made before it have the table already, created by the queue itself
#: when first used, so IF NOT EXISTS; a store only ever used with RabbitMQ gains an
#: empty one.
QUEUE_TABLES = (
    "CREATE TABLE IF NOT EXISTS queue_messages (id INTEGER PRIMARY KEY, queue TEXT NOT NULL,"
    " message_id TEXT NOT NULL, body BLOB NOT NULL, headers TEXT, available_at FLOAT NOT NULL, lease_token TEXT,"
    " deliveries INTEGER DEFAULT 0, created FLOAT)",
    "CREATE INDEX IF NOT EXISTS idx_queue_messages_queue_available_at ON queue_messages (queue, available_at)",
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


def _first_schema(backend: SqliteBackend) -> None:
    """Version 1: today's tables on a new file, or any older store brought level."""
    for statement in TABLES:
        backend.execute(statement)
    for table, name, definition in ADDED_COLUMNS:
        if name not in backend.columns(table):
            backend.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")
    sql = backend.execute("SELECT sql FROM sqlite_master WHERE name = 'delivery_log'").scalar()
    if sql is None:
        backend.execute(DELIVERY_LOG_SQL)
        new_log_generation(backend)
    elif "AUTOINCREMENT" not in sql.upper():
        # SQLite reuses the largest rowid once it is deleted, and a search index that
        # remembers it would then skip the new rows: copy the log into a table that
        # never reuses an id; the new log generation makes every index rebuild once.
        backend.execute("ALTER TABLE delivery_log RENAME TO delivery_log_before_autoincrement")
        backend.execute(DELIVERY_LOG_SQL)
        backend.execute(
            "INSERT INTO delivery_log SELECT log_id, uuid, subscription_id, event_name, success,"
            " status_code, response_data, created, serialized_data, death_count, duration,"
            " message_id FROM delivery_log_before_autoincrement"
        )
        backend.execute("DROP TABLE delivery_log_before_autoincrement")
        new_log_generation(backend)
    for columns in DELIVERY_LOG_INDEXES:
        backend.execute(
            f"CREATE INDEX IF NOT EXISTS idx_delivery_log_{'_'.join(columns)} ON delivery_log ({', '.join(columns)})"
        )


def _filter_schema(backend: SqliteBackend) -> None:
    """Version 6 (see `schema.FILTER_COLUMNS`); a column already there is kept, as in version 1."""
    columns = backend.columns("subscriptions")
    for name, definition in FILTER_COLUMNS:
        if name not in columns:
            backend.execute(f"ALTER TABLE subscriptions ADD COLUMN {name} {definition}")
    backend.execute(FILTER_TABLE)


def _add_column(backend: SqliteBackend, table: str, name: str, definition: str) -> None:
    """ALTER TABLE ADD COLUMN unless it is there: a store whose version table was lost
    (brought level by migration 1 again) may have it already; SQLite has no IF NOT EXISTS here."""
    if name not in backend.columns(table):
        backend.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")


def _add_columns(backend: SqliteBackend, columns: Sequence[tuple[str, str, str]]) -> None:
    for table, name, definition in columns:
        _add_column(backend, table, name, definition)


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
        apply=lambda backend: _add_column(backend, "subscriptions", "rate_limit", "TEXT"),
    ),
    Migration(
        3,
        LANES_DESCRIPTION,
        LANE_TABLES,
        apply=lambda backend: _add_columns(backend, LANE_COLUMNS),
    ),
    Migration(
        4,
        "delivery_log.recipient_url: where each attempt was sent",
        apply=lambda backend: _add_column(backend, "delivery_log", "recipient_url", "TEXT"),
    ),
    Migration(5, "outbox: events published in an application's transaction, for the relay", OUTBOX_TABLES),
    Migration(6, FILTER_DESCRIPTION, apply=lambda backend: _filter_schema(backend)),
    Migration(7, QUEUE_DESCRIPTION, QUEUE_TABLES),
)
