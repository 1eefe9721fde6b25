"""Publishing on the application's own database connection, and the outbox.

An application that passes its open connection to `Client.publish` gets its
event committed exactly when its own transaction commits: the event is one
more row written on that connection, in ae's store (the same PostgreSQL
database, or the same SQLite file).

- ``queue = "db"``: the row goes straight into ``queue_messages``, the table
  queue consumers lease from.
- ``queue = "amqp"``: a broker cannot join a database transaction, so the row
  goes into ``outbox``, and the relay (`relay.py`) forwards it to RabbitMQ.

The relay takes unsent rows oldest first inside one store transaction, hands
them to the queue, marks them sent and commits. On PostgreSQL it first takes
an advisory lock held to that commit, so relays on several hosts take turns:
rows go out in id order and no two relays send the same row. A relay that dies
after the broker took the rows but before its commit sends them again under
the same message ids, marked relayed, and the consumer skips what it already
attempted for such a message.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from ..config import Config
from ..errors import AeError, InputError
from ..redaction import redact_url
from ..store import Store
from .base import TRIGGER_QUEUE

RELAY_LOCK = 0x6165_72656C  # "aerel": the PostgreSQL advisory lock relays take turns on
QUEUE_INSERT = (
    "INSERT INTO queue_messages (queue, message_id, body, headers, available_at, deliveries, created)"
    f" VALUES ('{TRIGGER_QUEUE}', ?, ?, '{{}}', ?, 0, ?)"
)
OUTBOX_INSERT = "INSERT INTO outbox (message_id, body, created) VALUES (?, ?, ?)"
WRONG_KIND = (
    "connection= takes a psycopg 3 connection, a sqlite3.Connection, or a SQLAlchemy Session or Connection"
    " over one; got {kind}"
)
AUTOCOMMIT = (
    "the connection is in autocommit mode and not inside a transaction, so the event would commit on its own:"
    " open a transaction first"
)


# -- the application's connection ------------------------------------------------


def driver_connection(connection: Any) -> Any:
    """The DB-API connection under a SQLAlchemy Session or Connection (imported by no one
    here: a Session has `get_bind`, a Connection's pool proxy has `driver_connection`)."""
    if type(connection).__module__.startswith("sqlalchemy"):
        if hasattr(connection, "get_bind"):
            connection = connection.connection()  # the Session's Connection, in its transaction
        connection = connection.connection.driver_connection
    return connection


@dataclass(frozen=True)
class StoreTarget:
    """Where an application's connection must lead, worked out once per client."""

    into_outbox: bool  # queue = "amqp": the outbox; else the table queue
    described: str  # the store, safe to print
    sqlite_file: str | None = None  # the SQLite store's file, links resolved
    postgres: tuple[str, int] | None = None  # the PostgreSQL store's database name and port
    queue_table_seen: set[str] = field(default_factory=set)  # once seen, ae never drops it

    @classmethod
    def of(cls, config: Config) -> StoreTarget:
        into_outbox = config.settings.queue == "amqp"
        if config.uses_postgres:
            parts = urlsplit(str(config.database))
            postgres = (unquote(parts.path.lstrip("/")), parts.port or 5432)
            return cls(into_outbox, redact_url(str(config.database)), postgres=postgres)
        return cls(into_outbox, str(config.database_path), sqlite_file=os.path.realpath(config.database_path))


def write_events(connection: Any, target: StoreTarget, rows: Sequence[tuple[str, bytes]]) -> None:
    """Write (message_id, body) rows on the application's connection, in its transaction."""
    now = time.time()
    params: list[tuple[Any, ...]]
    if target.into_outbox:
        sql, params = OUTBOX_INSERT, [(message_id, body, now) for message_id, body in rows]
    else:
        sql, params = QUEUE_INSERT, [(message_id, body, now, now) for message_id, body in rows]
    if isinstance(connection, sqlite3.Connection):
        _check_sqlite(connection, target)
        try:
            if not target.into_outbox:
                _make_queue_table(connection, target)
            connection.executemany(sql, params)
        except sqlite3.Error as exc:
            raise AeError(f"could not publish in the application's transaction: {exc}") from exc
        return
    if type(connection).__module__.split(".")[0] == "psycopg":
        _check_psycopg(connection, target)
        _write_psycopg(connection, sql.replace("?", "%s"), params)
        return
    raise InputError(WRONG_KIND.format(kind=f"{type(connection).__module__}.{type(connection).__name__}"))


def _check_sqlite(connection: sqlite3.Connection, target: StoreTarget) -> None:
    if target.sqlite_file is None:
        raise InputError(f"ae's store is PostgreSQL ({target.described}): a sqlite3 connection cannot reach it")
    autocommit = getattr(connection, "autocommit", -1)  # Python 3.12+; -1: the legacy transaction control
    opens_one = autocommit is False or (autocommit == -1 and connection.isolation_level is not None)
    if not (connection.in_transaction or opens_one):
        raise InputError(AUTOCOMMIT)
    files = [row[2] for row in connection.execute("PRAGMA database_list") if row[1] == "main"]
    if files and files[0] == target.sqlite_file:
        return  # the usual case, without a stat
    try:
        same = bool(files and files[0]) and os.path.samefile(files[0], target.sqlite_file)
    except OSError:
        same = False
    if not same:
        raise InputError(
            f"the sqlite3 connection is to {files[0] if files and files[0] else 'an in-memory database'},"
            f" not to ae's store {target.described}"
        )


def _make_queue_table(connection: sqlite3.Connection, target: StoreTarget) -> None:
    """The table queue's table, if no consumer made it yet: made on the application's
    connection, since its transaction holds the file's write lock (and a rollback
    takes the table back too, harmlessly)."""
    from .sqlite import SCHEMA

    if target.queue_table_seen:
        return
    if connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'queue_messages'").fetchone() is None:
        for statement in SCHEMA:
            connection.execute(statement)
    else:
        target.queue_table_seen.add("queue_messages")


def _check_psycopg(connection: Any, target: StoreTarget) -> None:
    from psycopg.pq import TransactionStatus

    if target.postgres is None:
        raise InputError(f"ae's store is the SQLite file {target.described}: a psycopg connection cannot reach it")
    status = connection.info.transaction_status
    if status == TransactionStatus.INERROR:
        raise InputError("the connection's transaction has failed already: roll it back first")
    if connection.autocommit and status == TransactionStatus.IDLE:
        raise InputError(AUTOCOMMIT)
    dbname, port = target.postgres
    if connection.info.dbname != dbname or connection.info.port != port:
        raise InputError(
            f"the connection is to database {connection.info.dbname!r} on port {connection.info.port},"
            f" not to ae's store {target.described}"
        )


def _write_psycopg(connection: Any, sql: str, params: list[tuple[Any, ...]]) -> None:
    import psycopg

    try:
        if len(params) == 1:
            connection.execute(sql, params[0])  # psycopg prepares it from its fifth run
        else:
            with connection.cursor() as cursor:
                cursor.executemany(sql, params)
    except psycopg.Error as exc:
        raise AeError(f"could not publish in the application's transaction: {exc}") from exc


# -- the relay's side ---------------------------------------------------------------


def has_unsent(store: Store) -> bool:
    """A cheap look first, so an idle relay never takes a write lock."""
    return store.execute("SELECT 1 FROM outbox WHERE sent_at IS NULL LIMIT 1").first() is not None


def take_unsent(store: Store, limit: int) -> list[tuple[int, str, bytes]]:
    """Inside the relay's transaction: wait for the relay turn, then the oldest unsent rows."""
    if store.backend == "postgresql":
        store.execute("SELECT pg_advisory_xact_lock(?)", (RELAY_LOCK,))
    rows = store.execute(
        "SELECT id, message_id, body FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT ?", (limit,)
    ).rows
    return [(int(row_id), str(message_id), bytes(body)) for row_id, message_id, body in rows]


def mark_sent(store: Store, row_ids: Sequence[int], now: float) -> None:
    store.execute_many("UPDATE outbox SET sent_at = ? WHERE id = ?", [(now, row_id) for row_id in row_ids])


def prune_sent(store: Store, before: float) -> int:
    """Forget rows sent before `before` (epoch seconds); return how many."""
    with store.transaction():
        return store.execute("DELETE FROM outbox WHERE sent_at < ?", (before,)).rowcount


def count_unsent(store: Store) -> int:
    return int(store.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").scalar() or 0)
