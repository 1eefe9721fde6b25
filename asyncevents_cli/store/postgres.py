"""The PostgreSQL store, shared by consumers on many hosts.

Chosen by a ``postgresql://user:password@host:port/dbname`` URL. Statements go
through psycopg 3 and a small psycopg_pool pool: a statement outside a
transaction borrows a connection in autocommit mode; `transaction()` holds one
connection from BEGIN to COMMIT, and only the thread that opened it uses it.

Differences from SQLite that the rules above the backend rely on:
- log ids commit in order: a transaction that logs attempts first takes an
  advisory lock held to its commit, so a search index that follows the log by
  `log_id` never sees id 101 before 100 commits;
- secrets: every host must open what any host sealed, so the key comes from
  AE_SECRET_KEY, the same on every host; no key file is made;
- a connection lost while COMMIT's reply is in flight is resolved by asking the
  server (`txid_status`) whether that transaction committed: a committed one
  returns normally, so no caller runs it (and logs its attempts) a second time;
- "cannot reach the database" (refused, reset, server shut down, pool
  timeout) becomes `DatabaseUnavailable`, exit 3. Other database errors pass
  through unchanged: the engine parks the one message they belong to.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from ..errors import CommitUnknown, DatabaseUnavailable
from ..redaction import redact_url
from ..secretbox import KEY_ENV, SecretBox, SecretKeyError
from .backend import Backend, Result

log = logging.getLogger("asyncevents_cli")

#: advisory lock keys (any two fixed numbers this application owns)
LOG_ORDER_LOCK = 0x6165_6C6F67  # "aelog"
SCHEMA_LOCK = 0x6165_736368  # "aesch"
CONNECT_TIMEOUT_SECONDS = 10
#: how long to keep asking how a transaction whose COMMIT's reply was lost ended
COMMIT_STATUS_WAIT_SECONDS = 10.0
#: SQLSTATEs that mean the server is going or gone (besides class 08, connection
#: exceptions, and errors with no state, raised by the client itself): admin,
#: crash and cannot-connect-now shutdowns, and too many connections
UNREACHABLE_STATES = ("57P01", "57P02", "57P03", "53300")


@functools.lru_cache(maxsize=512)
def _pyformat(sql: str) -> str:
    """The shared SQL's `?` placeholders as psycopg's `%s` (a literal % doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresBackend(Backend):
    name = "postgresql"
    like_operator = "ILIKE"

    def __init__(self, database: str, pool_size: int = 4) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        super().__init__()
        self.url = str(database)
        self.missing_table_errors = (psycopg.errors.UndefinedTable,)
        self._owner: int | None = None  # the thread whose transaction holds `_held`
        self._held: Any = None
        self._closed = False
        self._pool = ConnectionPool(
            self.url,
            min_size=1,
            max_size=max(1, pool_size),
            open=False,
            name="ae-store",
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_SECONDS},
            check=ConnectionPool.check_connection,
            timeout=CONNECT_TIMEOUT_SECONDS,
            reconnect_timeout=CONNECT_TIMEOUT_SECONDS,
        )
        with self._translated(connecting=True):
            # One plain connection first: a refused or failing server is reported at
            # once (the pool itself would keep retrying until its timeout).
            psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_SECONDS).close()
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)

    # -- the backend's part ----------------------------------------------------

    @property
    def location(self) -> str:
        return redact_url(self.url, keep_user=True)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.close(timeout=5)

    @contextmanager
    def _translated(self, connecting: bool = False) -> Iterator[None]:
        """psycopg's "cannot reach the server" as DatabaseUnavailable (exit 3): any
        failure to get a connection, and a statement's failure that means the server
        or the connection went away."""
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            yield
        except PoolTimeout as exc:
            raise self._unavailable(exc) from exc
        except psycopg.OperationalError as exc:
            state = exc.sqlstate
            if not connecting and state is not None and state not in UNREACHABLE_STATES and state[:2] != "08":
                raise  # e.g. a deadlock or a cancelled query: the statement's fault, not the server's absence
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> DatabaseUnavailable:
        detail = " ".join(str(exc).split()) or exc.__class__.__name__
        password = _password(self.url)
        if password:
            detail = detail.replace(password, "***")
        return DatabaseUnavailable(
            f"cannot reach the database {self.location}: {detail}",
            hint="check that PostgreSQL is running and the URL in settings.database",
        )

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        if self._held is not None and self._owner == threading.get_ident():
            yield self._held
            return
        with self._translated(connecting=True):
            conn = self._pool.getconn()
        try:
            yield conn
        finally:
            self._pool.putconn(conn)  # a broken one is discarded, and replaced on demand

    def _run(self, sql: str, params: Sequence[Any] = ()) -> Result:
        with self._connection() as conn, self._translated():
            cursor = conn.execute(_pyformat(sql), tuple(params))
            rows = cursor.fetchall() if cursor.description else []
            columns = tuple(c.name for c in cursor.description or ())
            return Result(rows, columns, cursor.rowcount)

    def _run_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = [tuple(row) for row in rows]
        if not batch:
            return
        with self._connection() as conn, self._translated(), conn.cursor() as cursor:
            cursor.executemany(_pyformat(sql), batch)

    def _begin(self) -> None:
        with self._translated(connecting=True):
            conn = self._pool.getconn()
        try:
            with self._translated():
                conn.execute("BEGIN")
        except BaseException:
            self._pool.putconn(conn)
            raise
        self._held, self._owner = conn, threading.get_ident()

    def _end(self, verb: str) -> None:
        conn, self._held, self._owner = self._held, None, None
        try:
            with self._translated():
                self._send(conn, verb)
        finally:
            self._pool.putconn(conn)

    def _send(self, conn: Any, verb: str) -> None:
        """COMMIT or ROLLBACK on the transaction's connection (tests lose COMMIT's reply here)."""
        conn.execute(verb)

    def _commit(self) -> None:
        """COMMIT; if the connection is lost on the way, ask the server how it ended.

        A connection cut while COMMIT's reply is in flight leaves the client unsure:
        the server may have committed. Running the transaction again (as the
        consumer's retries do) would then log the same attempts twice. So the
        transaction's id is read first, and after a lost COMMIT `txid_status` on
        a fresh connection says committed (done: no error) or aborted (the usual
        `DatabaseUnavailable`, safe to run again). A transaction that wrote
        nothing has no id, and nothing to do twice."""
        try:
            with self._translated():
                xid = self._held.execute("SELECT txid_current_if_assigned()").fetchone()[0]
        except BaseException:
            self._rollback()
            raise
        try:
            self._end("COMMIT")
        except DatabaseUnavailable as lost:
            if xid is None or not self._committed(int(xid), lost):
                raise

    def _committed(self, xid: int, lost: DatabaseUnavailable) -> bool:
        """Whether transaction `xid`, whose COMMIT's reply was lost, committed. The killed
        backend may still be finishing it ("in progress"), or the server may be briefly
        away: ask again for a while, then give up with `CommitUnknown`."""
        deadline = time.monotonic() + COMMIT_STATUS_WAIT_SECONDS
        delay = 0.02
        while True:
            with suppress(DatabaseUnavailable):
                status = self._run("SELECT txid_status(?)", (xid,)).scalar()
                if status in ("committed", "aborted"):
                    log.warning("connection lost during COMMIT; the server says the transaction %s", status)
                    return bool(status == "committed")
            if time.monotonic() + delay > deadline:
                raise CommitUnknown(
                    f"{lost.message} (during COMMIT; whether it committed is unknown)", hint=lost.hint
                ) from lost
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _rollback(self) -> None:
        import psycopg

        # If the connection is gone, the server rolled the transaction back itself.
        with suppress(psycopg.Error, DatabaseUnavailable):
            self._end("ROLLBACK")

    def lock_schema(self) -> None:
        self._run("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))

    def order_log_ids(self) -> None:
        self._run("SELECT pg_advisory_xact_lock(?)", (LOG_ORDER_LOCK,))

    def log_id_sequence(self) -> int:
        sequence = self._run("SELECT pg_get_serial_sequence('delivery_log', 'log_id')").scalar()
        row = self._run(f"SELECT last_value, is_called FROM {sequence}").first()
        return int(row[0]) if row and row[1] else 0

    def open_secret_box(self, environ: Mapping[str, str] | None, create: bool) -> SecretBox:
        env = os.environ if environ is None else environ
        if not env.get(KEY_ENV, "").strip():
            raise SecretKeyError(
                f"the store is PostgreSQL, shared by every host, so the key for subscription secrets comes from"
                f" {KEY_ENV} (no key file is made): {KEY_ENV} is not set",
                hint=f"`ae key generate` makes one: set {KEY_ENV} to the same key on every host",
            )
        return SecretBox.from_environment(env)


def _password(url: str) -> str | None:
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None
