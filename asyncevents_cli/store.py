"""The embedded SQLite store: subscriptions, the delivery log, delivery states.

Tables
- ``subscriptions``  the module's columns, plus the (never printed) verification token,
                     the signature scheme, custom headers (JSON) and a rotated-out
                     token with the end of its grace period
- ``delivery_log``   one row per attempt; a search index follows it by ``log_id``
- ``deliveries``     one row per uuid: where its retry chain stands now, so a
                     trace can say "Retrying, next attempt at ..." or "Dead Lettered"
- ``store_info``     key/value facts about the store itself, such as its identity
- ``amqp_delay_queues``  every RabbitMQ delay queue this store's retries were
                     published to, so status counts them after a settings change

Writes that must happen together run inside `Store.transaction()`, which takes
SQLite's write lock up front (BEGIN IMMEDIATE) so concurrent consumers wait
for each other instead of failing half-way.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import uuid as uuidlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .errors import AeError, NotFound
from .netguard import redact_credentials
from .secretbox import PREFIX as SEALED_PREFIX
from .secretbox import SecretBox, is_sealed

ENABLED, DISABLED = 1, 0
MAX_ROWID = 2**63 - 1

# Delivery states (table `deliveries`)
DELIVERED = "delivered"
RETRYING = "retrying"
DEAD_LETTERED = "dead_lettered"
STOPPED = "stopped"  # a retry came due for a subscription that is now disabled or gone


def utcnow() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime | None = None) -> str:
    """UTC, second precision plus microseconds, sortable as text."""
    return (moment or utcnow()).strftime("%Y-%m-%d %H:%M:%S.%f")


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


@dataclass(frozen=True)
class Subscription:
    subscription_id: int
    event_name: str
    recipient_url: str
    status: int
    subscribed_at: str
    modified: str
    notifier: str
    store_id: int
    verification_token: str | None  # plaintext when read with reveal=True, else None
    signature_scheme: str = "magento"
    custom_headers: tuple[tuple[str, str], ...] = ()  # (name, value) pairs
    previous_token: str | None = None  # the token before the last rotation ...
    previous_token_expires: str | None = None  # ... accepted until then (UTC timestamp)

    @property
    def enabled(self) -> bool:
        return self.status == ENABLED

    @property
    def previous_token_until(self) -> datetime | None:
        return parse_timestamp(self.previous_token_expires) if self.previous_token_expires else None

    def public(self, now: datetime | None = None) -> dict[str, Any]:
        """The row as shown to users: no secret, and custom headers by name only."""
        row = asdict(self)
        for secret in ("verification_token", "previous_token", "previous_token_expires", "custom_headers"):
            del row[secret]
        row["status"] = "enabled" if self.enabled else "disabled"
        row["recipient_url"] = redact_credentials(self.recipient_url)
        row["header_names"] = [name for name, _ in self.custom_headers]
        until = self.previous_token_until
        in_grace = self.previous_token and until is not None and (now or utcnow()) < until
        expires = self.previous_token_expires
        row["previous_secret_until"] = expires[:19] if in_grace and expires else None
        return row


@dataclass(frozen=True)
class LogCondition:
    """One condition on delivery_log for `Store.logs_matching`: `column` `kind` `value`.

    kinds: `equals`; `like` (the whole value, `*` and `?` wildcards); `starts`
    (a prefix); `contains` (a substring, with wildcards; ASCII case is ignored)."""

    column: str
    kind: str
    value: Any


LOG_COLUMNS = ("log_id", "uuid", "subscription_id", "event_name", "success", "status_code", "response_data",
               "created", "serialized_data", "death_count", "duration", "message_id")


def _like(value: str) -> str:
    """A LIKE pattern: `*` and `?` are wildcards; `%`, `_` and `\\` are literal."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


@dataclass(frozen=True)
class Attempt:
    """What one delivery attempt produced, ready to be logged."""

    uuid: str
    subscription_id: int
    event_name: str
    success: bool
    status_code: int | None
    response_data: str
    serialized_data: str
    death_count: int
    duration: float  # seconds
    message_id: str | None = None  # the queue message that caused it


@dataclass(frozen=True)
class ChainState:
    """Where one delivery's retry chain stands after an attempt (a row of `deliveries`)."""

    uuid: str
    subscription_id: int
    event_name: str
    state: str
    death_count: int
    next_attempt_at: datetime | None = None
    attempted: bool = True  # False: the state changed without an attempt (stopped, replayed)
    generation: int = 0  # bumped by each replay; a write from an older generation is ignored


DELIVERY_LOG_SQL = """
CREATE TABLE delivery_log (
    log_id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT, subscription_id INTEGER, event_name TEXT, success INTEGER, status_code INTEGER,
    response_data TEXT, created TEXT, serialized_data TEXT, death_count INTEGER, duration FLOAT,
    message_id TEXT
)"""
DELIVERY_LOG_INDEXES = (["message_id", "subscription_id"], ["uuid"], ["created"], ["subscription_id", "success"])


def _create_private(path: Path) -> None:
    """Create an empty database file readable by its owner only (SQLite gives its WAL
    and shared-memory files the same mode)."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class Store:
    def __init__(self, path: str | Path, environ: dict[str, str] | None = None) -> None:
        import sqlite_utils  # here, not at the top: `ae --help` need not load it

        self.path = Path(path)
        self._environ = environ
        self._box: SecretBox | None = None
        self._lock = threading.RLock()
        self._depth = 0
        #: True on a read-only file or folder: reads work, every write says why it cannot
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
            # WAL lets readers (status, trace) run beside a consumer; FULL sync
            # because an acknowledged publish must survive a power cut.
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

    def _refuse_writes(self) -> None:
        if self.read_only:
            raise AeError(
                f"the database {self.path} is read-only: this command writes, so it cannot run"
                " (read commands such as status, logs and trace still work)"
            )

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit of writes; nested calls join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._refuse_writes()
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
            finally:
                self._depth = 0

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

    # -- log ids are never reused ----------------------------------------

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

    def _new_log_generation(self) -> None:
        self.conn.execute("INSERT OR REPLACE INTO store_info (key, value) VALUES ('log_generation', ?)",
                          (secrets.token_hex(8),))

    def log_generation(self) -> str:
        """Changes whenever log ids may have restarted (a new or migrated log): a
        search index built for another generation must be rebuilt."""
        row = self.conn.execute("SELECT value FROM store_info WHERE key = 'log_generation'").fetchone()
        return str(row[0]) if row else ""

    def log_id_high_water(self) -> int:
        """The largest log id ever handed out, even if pruned since."""
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'delivery_log'").fetchone()
        return max(int(row[0]) if row else 0, self.max_log_id())

    # -- secrets -------------------------------------------------------

    @property
    def secret_box(self) -> SecretBox:
        """The key for sealed values: made on first use, unless values sealed with
        some other key are already here (then the missing key is an error)."""
        if self._box is None:
            self._box = SecretBox.for_store(self.path, self._environ, create=not self._holds_sealed_values())
        return self._box

    def _holds_sealed_values(self) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM subscriptions WHERE verification_token LIKE ? LIMIT 1", (SEALED_PREFIX + "%",)
        ).fetchone()
        return row is not None

    def check_secret_key(self) -> None:
        """Raise SecretKeyError now, rather than mid-message, if the key does not open
        this store's secrets (consumers call this before taking any message)."""
        row = self.conn.execute(
            "SELECT verification_token FROM subscriptions WHERE verification_token LIKE ? LIMIT 1",
            (SEALED_PREFIX + "%",),
        ).fetchone()
        if row is not None:
            self.secret_box.open(row[0])

    def _seal_plaintext_tokens(self) -> None:
        """Encrypt secrets stored before encryption at rest (done once, on open): tokens,
        previous tokens and custom header values."""
        rows = self.conn.execute(
            "SELECT subscription_id, verification_token, previous_token, custom_headers FROM subscriptions"
            " WHERE verification_token NOT LIKE :p OR previous_token NOT LIKE :p OR custom_headers IS NOT NULL",
            {"p": SEALED_PREFIX + "%"},
        ).fetchall()
        plain = [r for r in rows if not is_sealed(r[1]) or (r[2] and not is_sealed(r[2]))
                 or any(not is_sealed(value) for _name, value in json.loads(r[3] or "[]"))]
        if not plain:
            return
        box = self.secret_box
        with self.transaction():
            self.conn.executemany(
                "UPDATE subscriptions SET verification_token = ?, previous_token = ?, custom_headers = ?"
                " WHERE subscription_id = ?",
                [(box.seal(box.open(token)), box.seal(box.open(previous)) if previous else None,
                  self._encode_headers([(n, box.open(v)) for n, v in json.loads(headers or "[]")]), sid)
                 for sid, token, previous, headers in plain],
            )

    def _encode_headers(self, headers: Sequence[tuple[str, str]]) -> str | None:
        """Custom headers as stored: names in the clear (listings show them), values sealed."""
        if not headers:
            return None
        return json.dumps([[name, self.secret_box.seal(value)] for name, value in headers])

    def _subscription(self, row: dict[str, Any], reveal: bool) -> Subscription:
        """A row as a Subscription. Unrevealed, the token is None (it cannot sign by
        mistake), header values are empty and the previous token stays sealed."""
        box = self.secret_box if reveal else None
        stored = row.pop("custom_headers", None)
        pairs = json.loads(stored) if stored else []
        row["custom_headers"] = tuple((name, box.open(value) if box else "") for name, value in pairs)
        row["verification_token"] = box.open(row["verification_token"]) if box else None
        if box and row.get("previous_token"):
            row["previous_token"] = box.open(row["previous_token"])
        return Subscription(**row)

    # Columns added after the first release: (name, SQL definition). A store
    # created earlier gains them on open; existing rows get the defaults.
    ADDED_SUBSCRIPTION_COLUMNS = (
        ("signature_scheme", "TEXT NOT NULL DEFAULT 'magento'"),
        ("custom_headers", "TEXT"),
        ("previous_token", "TEXT"),
        ("previous_token_expires", "TEXT"),
    )

    def _missing_subscription_columns(self) -> list[tuple[str, str]]:
        present = {row[1] for row in self.conn.execute("PRAGMA table_info(subscriptions)")}
        return [(name, sql) for name, sql in self.ADDED_SUBSCRIPTION_COLUMNS if name not in present]

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

    # -- identity and broker bookkeeping -------------------------------

    def identity(self, create: bool = True) -> str | None:
        """This store's id, made once at random: messages it publishes to a broker
        carry it, so a consumer can refuse another store's. None if not made yet
        and `create` is False."""
        try:
            row = self.conn.execute("SELECT value FROM store_info WHERE key = 'identity'").fetchone()
        except sqlite3.OperationalError:  # an older store opened read-only: no table, so no identity yet
            row = None
        if row is None and create:
            with self.transaction():
                self.conn.execute("INSERT OR IGNORE INTO store_info (key, value) VALUES ('identity', ?)",
                                  (uuidlib.uuid4().hex,))
            row = self.conn.execute("SELECT value FROM store_info WHERE key = 'identity'").fetchone()
        return str(row[0]) if row else None

    def record_delay_queue(self, name: str) -> None:
        """Remember a delay queue before a retry is published to it."""
        with self.transaction():
            self.conn.execute("INSERT OR IGNORE INTO amqp_delay_queues (name, first_used) VALUES (?, ?)",
                              (name, timestamp()))

    def delay_queue_names(self) -> list[str]:
        try:
            return [row[0] for row in self.conn.execute("SELECT name FROM amqp_delay_queues ORDER BY name")]
        except sqlite3.OperationalError:  # an older store opened read-only: it recorded none
            return []

    # -- subscriptions -------------------------------------------------

    def add_subscription(
        self, event_name: str, recipient_url: str, token: str, notifier: str = "http", store_id: int = 0,
        signature_scheme: str = "magento", custom_headers: Sequence[tuple[str, str]] = (),
    ) -> Subscription:
        now = timestamp()
        with self.transaction():
            cursor = self.conn.execute(
                "INSERT INTO subscriptions (event_name, recipient_url, verification_token, status,"
                " subscribed_at, modified, notifier, store_id, signature_scheme, custom_headers)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (event_name, recipient_url, self.secret_box.seal(token), ENABLED, now, now, notifier, store_id,
                 signature_scheme, self._encode_headers(custom_headers)),
            )
        return self.subscription(int(cursor.lastrowid or 0))

    # `reveal=False` reads leave `verification_token` None (listings, traces): they
    # need no key, and a None token cannot sign anything by mistake.

    def subscription(self, subscription_id: int, reveal: bool = True) -> Subscription:
        if not 0 < subscription_id <= MAX_ROWID:
            raise NotFound(f"no subscription with id {subscription_id}")
        rows = list(self.db.query("SELECT * FROM subscriptions WHERE subscription_id = ?", [subscription_id]))
        if not rows:
            raise NotFound(
                f"no subscription with id {subscription_id}", hint="run `ae subscriptions list` to see them"
            )
        return self._subscription(rows[0], reveal)

    def set_custom_headers(self, subscription_id: int, headers: Sequence[tuple[str, str]]) -> Subscription:
        """Replace a subscription's custom headers (an empty sequence removes them)."""
        with self.transaction():
            self.subscription(subscription_id, reveal=False)
            self.conn.execute(
                "UPDATE subscriptions SET custom_headers = ?, modified = ? WHERE subscription_id = ?",
                (self._encode_headers(headers), timestamp(), subscription_id),
            )
        return self.subscription(subscription_id)

    def rotate_token(self, subscription_id: int, new_token: str, previous_until: datetime | None) -> Subscription:
        """Make `new_token` current; the old one stays accepted until `previous_until` (None: not at all)."""
        with self.transaction():
            old = self.subscription(subscription_id)
            self.conn.execute(
                "UPDATE subscriptions SET verification_token = ?, previous_token = ?, previous_token_expires = ?,"
                " modified = ? WHERE subscription_id = ?",
                (self.secret_box.seal(new_token),
                 self.secret_box.seal(old.verification_token or "") if previous_until else None,
                 timestamp(previous_until) if previous_until else None, timestamp(), subscription_id),
            )
        return self.subscription(subscription_id)

    def find_subscription(self, subscription_id: int, reveal: bool = True) -> Subscription | None:
        try:
            return self.subscription(subscription_id, reveal)
        except NotFound:
            return None

    def subscriptions(self, event_name: str | None = None, reveal: bool = True) -> list[Subscription]:
        where, params = ("WHERE event_name = ?", [event_name]) if event_name else ("", [])
        sql = f"SELECT * FROM subscriptions {where} ORDER BY subscription_id"
        return [self._subscription(row, reveal) for row in self.db.query(sql, params)]

    def subscriptions_for(self, event_name: str, store_id: int) -> list[Subscription]:
        """Enabled subscribers of an event in a store: that store's and store 0's (all stores)."""
        rows = self.db.query(
            "SELECT * FROM subscriptions WHERE event_name = ? AND status = ? AND store_id IN (?, 0)"
            " ORDER BY subscription_id",
            [event_name, ENABLED, store_id],
        )
        return [self._subscription(row, True) for row in rows]

    def set_status(self, subscription_ids: Sequence[int], enabled: bool) -> list[Subscription]:
        """Enable or disable several subscriptions; all ids must exist or nothing changes."""
        with self.transaction():
            for subscription_id in subscription_ids:
                self.subscription(subscription_id, reveal=False)
            self.conn.executemany(
                "UPDATE subscriptions SET status = ?, modified = ? WHERE subscription_id = ?",
                [(ENABLED if enabled else DISABLED, timestamp(), i) for i in subscription_ids],
            )
        return [self.subscription(i, reveal=False) for i in subscription_ids]

    def delete_subscription(self, subscription_id: int) -> Subscription:
        with self.transaction():
            subscription = self.subscription(subscription_id, reveal=False)
            self.conn.execute("DELETE FROM subscriptions WHERE subscription_id = ?", (subscription_id,))
        return subscription

    # -- delivery log and states --------------------------------------

    def log_attempt(self, attempt: Attempt) -> int:
        cursor = self.conn.execute(
            "INSERT INTO delivery_log (uuid, subscription_id, event_name, success, status_code,"
            " response_data, created, serialized_data, death_count, duration, message_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                attempt.uuid,
                attempt.subscription_id,
                attempt.event_name,
                1 if attempt.success else 0,
                attempt.status_code,
                attempt.response_data,
                timestamp(),
                attempt.serialized_data,
                attempt.death_count,
                round(attempt.duration, 6),
                attempt.message_id,
            ),
        )
        return int(cursor.lastrowid or 0)

    def already_attempted(self, message_id: str, subscription_id: int) -> bool:
        """True if this queue message was already delivered to this subscription and
        logged: the message came back because its acknowledgement was lost."""
        row = self.conn.execute(
            "SELECT 1 FROM delivery_log WHERE message_id = ? AND subscription_id = ? LIMIT 1",
            (message_id, subscription_id),
        ).fetchone()
        return row is not None

    def log_attempts(self, attempts: Sequence[Attempt]) -> None:
        """Log many attempts at once (the consumer settles in batches)."""
        now = timestamp()
        self.conn.executemany(
            "INSERT INTO delivery_log (uuid, subscription_id, event_name, success, status_code,"
            " response_data, created, serialized_data, death_count, duration, message_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(a.uuid, a.subscription_id, a.event_name, 1 if a.success else 0, a.status_code, a.response_data,
              now, a.serialized_data, a.death_count, round(a.duration, 6), a.message_id) for a in attempts],
        )

    def set_delivery_state(
        self,
        uuid: str,
        subscription_id: int,
        event_name: str,
        state: str,
        death_count: int,
        next_attempt_at: datetime | None = None,
        attempted: bool = True,
        generation: int = 0,
    ) -> None:
        self.set_delivery_states([ChainState(uuid, subscription_id, event_name, state, death_count,
                                             next_attempt_at, attempted, generation)])

    def set_delivery_states(self, states: Sequence[ChainState]) -> None:
        """Record where chains stand. A state from a generation older than the chain's
        (an attempt that was under way when the chain was replayed) changes nothing."""
        now = timestamp()
        self.conn.executemany(
            "INSERT INTO deliveries (uuid, subscription_id, event_name, state, attempts, death_count,"
            " next_attempt_at, updated, generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(uuid) DO UPDATE SET state = excluded.state,"
            " attempts = deliveries.attempts + excluded.attempts, death_count = excluded.death_count,"
            " next_attempt_at = excluded.next_attempt_at, updated = excluded.updated,"
            " generation = excluded.generation"
            " WHERE excluded.generation >= deliveries.generation",
            [(c.uuid, c.subscription_id, c.event_name, c.state, 1 if c.attempted else 0, c.death_count,
              timestamp(c.next_attempt_at) if c.next_attempt_at else None, now, c.generation) for c in states],
        )

    def delivery(self, uuid: str) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM deliveries WHERE uuid = ?", [uuid]))
        return rows[0] if rows else None

    def attempts(self, uuid: str) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM delivery_log WHERE uuid = ? ORDER BY log_id", [uuid]))

    def recent_logs(
        self, event_name: str | None = None, failed_only: bool = False, limit: int = 50
    ) -> list[dict[str, Any]]:
        clauses, params = [], []
        if event_name:
            clauses.append("event_name = ?")
            params.append(event_name)
        if failed_only:
            clauses.append("success = 0")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT * FROM delivery_log {where} ORDER BY log_id DESC LIMIT ?"
        return list(self.db.query(sql, [*params, limit]))

    def logs_after(self, log_id: int, limit: int = 1000) -> list[dict[str, Any]]:
        """Log rows past `log_id`, oldest first: how a search index catches up."""
        return list(
            self.db.query("SELECT * FROM delivery_log WHERE log_id > ? ORDER BY log_id LIMIT ?", [log_id, limit])
        )

    def logs_by_id(self, log_ids: Sequence[int]) -> list[dict[str, Any]]:
        """The log rows of these ids, in no particular order."""
        rows: list[dict[str, Any]] = []
        for start in range(0, len(log_ids), 500):
            chunk = list(log_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows.extend(self.db.query(f"SELECT * FROM delivery_log WHERE log_id IN ({marks})", chunk))
        return rows

    def count_logs_after(self, log_id: int) -> int:
        row = self.conn.execute("SELECT COUNT(*) FROM delivery_log WHERE log_id > ?", (log_id,)).fetchone()
        return int(row[0])

    def logs_matching(self, conditions: Sequence[LogCondition], limit: int | None = None,
                      offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
        """(how many rows meet every condition, a page of them newest first)."""
        clauses: list[str] = []
        params: list[Any] = []
        for c in conditions:
            if c.column not in LOG_COLUMNS:
                raise ValueError(f"no delivery_log column {c.column!r}")
            if c.kind == "equals":
                clauses.append(f"{c.column} = ?")
                params.append(c.value)
            else:
                pattern = _like(str(c.value))
                pattern = {"like": pattern, "starts": pattern + "%", "contains": "%" + pattern + "%"}[c.kind]
                clauses.append(f"{c.column} LIKE ? ESCAPE '\\'")
                params.append(pattern)
        where = " AND ".join(clauses) or "1"
        total = self.conn.execute(f"SELECT COUNT(*) FROM delivery_log WHERE {where}", params).fetchone()[0]
        page = "" if limit is None else f" LIMIT {int(limit)} OFFSET {int(offset)}"
        rows = self.db.query(f"SELECT * FROM delivery_log WHERE {where} ORDER BY log_id DESC{page}", params)
        return int(total), list(rows)

    def uuids_of(self, log_ids: Sequence[int]) -> set[str]:
        """The delivery uuids these attempts belong to."""
        found: set[str] = set()
        for start in range(0, len(log_ids), 500):
            chunk = list(log_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self.conn.execute(
                f"SELECT DISTINCT uuid FROM delivery_log WHERE log_id IN ({marks})", chunk))
        return found

    def latest_attempts(self, uuids: Sequence[str]) -> list[dict[str, Any]]:
        """The newest attempt of each of these deliveries."""
        rows: list[dict[str, Any]] = []
        for start in range(0, len(uuids), 500):
            some = list(uuids[start : start + 500])
            marks = ",".join("?" * len(some))
            rows.extend(self.db.query(
                f"SELECT * FROM delivery_log WHERE log_id IN (SELECT MAX(log_id) FROM delivery_log"
                f" WHERE uuid IN ({marks}) GROUP BY uuid)", some))
        return rows

    def max_log_id(self) -> int:
        row = next(self.db.query("SELECT COALESCE(MAX(log_id), 0) AS m FROM delivery_log"))
        return int(row["m"])

    def prune_logs(self, older_than_days: float) -> list[int]:
        """Delete whole delivery chains that have finished (delivered, dead-lettered or
        stopped) and whose last attempt is older than the given age; return the removed
        log ids. A chain still retrying keeps every attempt, and a finished chain is
        kept whole until all of it is old, so no trace loses its earlier attempts."""
        cutoff = timestamp(utcnow() - timedelta(days=older_than_days))
        with self.transaction():
            self.conn.execute("DROP TABLE IF EXISTS temp.pruned_uuids")
            self.conn.execute(
                "CREATE TEMP TABLE pruned_uuids AS SELECT l.uuid FROM delivery_log l"
                " LEFT JOIN deliveries d ON d.uuid = l.uuid GROUP BY l.uuid"
                " HAVING MAX(l.created) < ? AND COALESCE(MAX(d.state), '') != ?",
                (cutoff, RETRYING),
            )
            ids = [r[0] for r in self.conn.execute(
                "SELECT log_id FROM delivery_log WHERE uuid IN (SELECT uuid FROM temp.pruned_uuids)")]
            self.conn.execute("DELETE FROM delivery_log WHERE uuid IN (SELECT uuid FROM temp.pruned_uuids)")
            self.conn.execute(
                "DELETE FROM deliveries WHERE state != ? AND uuid IN (SELECT uuid FROM temp.pruned_uuids)",
                (RETRYING,),
            )
            self.conn.execute("DROP TABLE temp.pruned_uuids")
        return ids

    def delivered_uuids(self, uuids: Sequence[str]) -> set[str]:
        """Those of `uuids` whose latest chain ended delivered."""
        found: set[str] = set()
        unique = sorted(set(uuids))
        for start in range(0, len(unique), 500):
            some = unique[start:start + 500]
            marks = ",".join("?" * len(some))
            found.update(row[0] for row in self.conn.execute(
                f"SELECT uuid FROM deliveries WHERE state = ? AND uuid IN ({marks})", (DELIVERED, *some)))
        return found

    def delivery_counts(self) -> list[dict[str, Any]]:
        """Per subscription: attempts, successes, failures, and chains by state."""
        return list(
            self.db.query(
                """
                SELECT s.subscription_id, s.event_name, s.recipient_url,
                       CASE s.status WHEN 1 THEN 'enabled' ELSE 'disabled' END AS status,
                       (SELECT COUNT(*) FROM delivery_log l WHERE l.subscription_id = s.subscription_id) AS attempts,
                       (SELECT COUNT(*) FROM delivery_log l
                         WHERE l.subscription_id = s.subscription_id AND l.success = 1) AS succeeded,
                       (SELECT COUNT(*) FROM delivery_log l
                         WHERE l.subscription_id = s.subscription_id AND l.success = 0) AS failed,
                       (SELECT COUNT(*) FROM deliveries d
                         WHERE d.subscription_id = s.subscription_id AND d.state = 'delivered') AS delivered,
                       (SELECT COUNT(*) FROM deliveries d
                         WHERE d.subscription_id = s.subscription_id AND d.state = 'retrying') AS retrying,
                       (SELECT COUNT(*) FROM deliveries d
                         WHERE d.subscription_id = s.subscription_id AND d.state = 'dead_lettered') AS dead_lettered
                FROM subscriptions s ORDER BY s.subscription_id
                """
            )
        )

    # -- API tokens and the server's queries (`ae tokens`, `ae serve`) --
    # Kept together so the server's SQL has one home. Tokens are stored as the
    # SHA-256 of a random 256-bit secret: enough for a high-entropy secret (no
    # salt or slow hash needed), and the secret itself is never kept.

    def _token_table(self) -> None:
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS api_tokens (name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE,"
            " events TEXT NOT NULL, created TEXT NOT NULL, last_used TEXT)"
        )

    def add_token(self, name: str, token_hash: str, events: Sequence[str]) -> dict[str, Any]:
        self._token_table()
        with self.transaction():
            if self.conn.execute("SELECT 1 FROM api_tokens WHERE name = ?", (name,)).fetchone():
                raise AeError(f"a token named {name!r} already exists",
                              hint=f"run `ae tokens revoke {name}` first, or pick another name")
            self.conn.execute(
                "INSERT INTO api_tokens (name, token_hash, events, created) VALUES (?, ?, ?, ?)",
                (name, token_hash, json.dumps(list(events)), timestamp()),
            )
        return self.tokens(name)[0]

    def tokens(self, name: str | None = None) -> list[dict[str, Any]]:
        """Token rows without their hashes, oldest first."""
        self._token_table()
        where, params = ("WHERE name = ?", [name]) if name is not None else ("", [])
        rows = self.db.query(f"SELECT name, events, created, last_used FROM api_tokens {where} ORDER BY created",
                             params)
        return [{**row, "events": json.loads(row["events"])} for row in rows]

    def token_by_hash(self, token_hash: str) -> dict[str, Any] | None:
        self._token_table()
        rows = list(self.db.query("SELECT name, events, created, last_used FROM api_tokens WHERE token_hash = ?",
                                  [token_hash]))
        return {**rows[0], "events": json.loads(rows[0]["events"])} if rows else None

    def touch_token(self, name: str, moment: datetime | None = None) -> None:
        with self.transaction():
            self.conn.execute("UPDATE api_tokens SET last_used = ? WHERE name = ?", (timestamp(moment), name))

    def revoke_token(self, name: str) -> None:
        self._token_table()
        with self.transaction():
            if not self.conn.execute("DELETE FROM api_tokens WHERE name = ?", (name,)).rowcount:
                raise NotFound(f"no token named {name!r}", hint="run `ae tokens list` to see them")

    def update_subscription(self, subscription_id: int, enabled: bool, notifier: str | None = None) -> Subscription:
        """The module's save of an existing subscription: a new status, and a new notifier if given."""
        with self.transaction():
            current = self.subscription(subscription_id)
            self.conn.execute(
                "UPDATE subscriptions SET status = ?, notifier = ?, modified = ? WHERE subscription_id = ?",
                (ENABLED if enabled else DISABLED, notifier or current.notifier, timestamp(), subscription_id),
            )
        return self.subscription(subscription_id)

    def last_uuid(self, subscription_id: int) -> str | None:
        """The uuid of a subscription's latest attempt: what "replay last" replays."""
        row = self.conn.execute(
            "SELECT uuid FROM delivery_log WHERE subscription_id = ? ORDER BY log_id DESC LIMIT 1",
            (subscription_id,),
        ).fetchone()
        return row[0] if row else None

    def log_page(self, limit: int, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
        """The admin logs grid: how many attempts there are, and one page of them, newest first."""
        total = int(self.conn.execute("SELECT COUNT(*) FROM delivery_log").fetchone()[0])
        rows = self.db.query(
            "SELECT log_id, uuid, subscription_id, event_name, success, status_code, created, death_count, duration"
            " FROM delivery_log ORDER BY log_id DESC LIMIT ? OFFSET ?",
            [limit, offset],
        )
        return total, list(rows)
