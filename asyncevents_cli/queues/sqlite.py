"""The default queue: a table in the store's own SQLite file.

A message is a row with ``available_at`` (epoch seconds). Receiving a message
leases it: ``available_at`` moves to now + lease and a fresh lease token is
written, the way SQS hides a message for its visibility timeout. ``ack``
deletes the row only while the token still matches. A consumer that dies
holding a lease simply lets it run out, and the row becomes due again.

Because the table lives in the store's database, `ack` joins the store's
open transaction: a message's attempt logs, its retries and its removal
commit together or not at all.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Sequence

from ..errors import AeError
from ..messages import RetryMessage, TriggerMessage
from ..store import Store
from ..store.sqlite import SqliteStore
from .base import (
    DEADLETTER_QUEUE,
    QUEUE_FOR_KIND,
    RETRY,
    RETRY_QUEUE,
    TRIGGER,
    TRIGGER_QUEUE,
    DeadLetter,
    Envelope,
    Queue,
    QueueDepths,
)

DEFAULT_LEASE_SECONDS = 60.0
PROGRESS_STEP = 500  # triggers written between progress reports
NEVER = 9e18  # dead letters are parked, never due
KIND_FOR_QUEUE = {queue: kind for kind, queue in QUEUE_FOR_KIND.items()}


class SqliteQueue(Queue):
    shares_store_transaction = True

    def __init__(
        self,
        store: Store,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        poll_interval: float = 0.05,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(store, SqliteStore):
            raise AeError(f"the db queue lives in a SQLite store; {store.location} is not one")
        self.store = store
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.clock = clock
        self._create_schema()

    def _create_schema(self) -> None:
        db = self.store.db
        if "queue_messages" in db.table_names():
            return
        db.table("queue_messages").create(
            {
                "id": int,
                "queue": str,
                "message_id": str,
                "body": bytes,
                "headers": str,
                "available_at": float,
                "lease_token": str,
                "deliveries": int,
                "created": float,
            },
            pk="id",
            not_null={"queue", "message_id", "body", "available_at"},
            defaults={"deliveries": 0},
        )
        db.table("queue_messages").create_index(["queue", "available_at"])

    def _insert(self, queue: str, body: bytes, available_at: float, headers: dict | None = None) -> str:
        message_id = uuid.uuid4().hex
        self.store.conn.execute(
            "INSERT INTO queue_messages (queue, message_id, body, headers, available_at, deliveries, created)"
            " VALUES (?, ?, ?, ?, ?, 0, ?)",
            (queue, message_id, body, json.dumps(headers or {}), available_at, self.clock()),
        )
        return message_id

    def publish_triggers(
        self, messages: Sequence[TriggerMessage], progress: Callable[[int], None] | None = None
    ) -> list[str]:
        now = self.clock()
        ids: list[str] = []
        with self.store.transaction():  # one transaction: all of them or none
            for message in messages:
                ids.append(self._insert(TRIGGER_QUEUE, message.encode(), now))
                if progress and len(ids) % PROGRESS_STEP == 0:
                    progress(PROGRESS_STEP)
        if progress and len(ids) % PROGRESS_STEP:
            progress(len(ids) % PROGRESS_STEP)
        return ids

    def publish_retry(self, message: RetryMessage, delay_seconds: float, generation: int = 0) -> str:
        with self.store.transaction():
            return self._insert(
                RETRY_QUEUE,
                message.encode(),
                self.clock() + max(0.0, delay_seconds),
                {"x-retry-count": message.death_count, "x-ae-generation": generation},
            )

    def dead_letter(self, body: bytes, reason: str, kind: str = RETRY) -> str:
        with self.store.transaction():
            return self._insert(DEADLETTER_QUEUE, body, NEVER, {"x-death-reason": reason, "x-origin": kind})

    def _take(self, queues: list[str], limit: int) -> list[Envelope]:
        """Lease up to `limit` due messages in one transaction, oldest first.

        Each queue is read on its own (queue, available_at) index, then merged:
        one query over both would sort every due row of a long backlog."""
        now = self.clock()
        with self.store.transaction():
            rows: list[tuple] = []
            for queue in queues:
                rows.extend(self.store.conn.execute(
                    "SELECT id, queue, message_id, body, headers, deliveries, available_at FROM queue_messages"
                    " WHERE queue = ? AND available_at <= ? ORDER BY available_at, id LIMIT ?",
                    (queue, now, limit),
                ).fetchall())
            if len(queues) > 1:
                rows.sort(key=lambda r: (r[6], r[0]))
                del rows[limit:]
            if not rows:
                return []
            tokens = [secrets.token_hex(8) for _ in rows]
            self.store.conn.executemany(
                "UPDATE queue_messages SET available_at = ?, lease_token = ?, deliveries = deliveries + 1"
                " WHERE id = ?",
                [(now + self.lease_seconds, token, row[0]) for token, row in zip(tokens, rows)],
            )
        return [
            Envelope(
                kind=KIND_FOR_QUEUE[queue],
                body=bytes(body),
                message_id=message_id,
                headers=json.loads(headers or "{}"),
                handle=(row_id, token, now),
                first_delivery=not deliveries,
            )
            for token, (row_id, queue, message_id, body, headers, deliveries, _) in zip(tokens, rows)
        ]

    def receive(self, kinds: Iterable[str], timeout: float) -> Envelope | None:
        taken = self.receive_many(kinds, 1, timeout)
        return taken[0] if taken else None

    def receive_many(self, kinds: Iterable[str], limit: int, timeout: float) -> list[Envelope]:
        queues = [QUEUE_FOR_KIND[k] for k in kinds]
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            try:
                taken = self._take(queues, max(1, limit))
            except sqlite3.OperationalError as exc:  # e.g. locked past busy_timeout
                raise AeError(f"queue database error: {exc}") from None
            if taken:
                return taken
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            time.sleep(min(self.poll_interval, remaining))

    def ack(self, envelope: Envelope) -> None:
        row_id, token, _ = envelope.handle
        with self.store.transaction():
            self.store.conn.execute(
                "DELETE FROM queue_messages WHERE id = ? AND lease_token = ?", (row_id, token)
            )

    def ack_many(self, envelopes: Sequence[Envelope]) -> None:
        with self.store.transaction():
            self.store.conn.executemany(
                "DELETE FROM queue_messages WHERE id = ? AND lease_token = ?",
                [e.handle[:2] for e in envelopes],
            )

    def release_many(self, envelopes: Sequence[Envelope]) -> None:
        now = self.clock()
        with self.store.transaction():
            self.store.conn.executemany(
                "UPDATE queue_messages SET available_at = ?, lease_token = NULL WHERE id = ? AND lease_token = ?",
                [(now, *e.handle[:2]) for e in envelopes],
            )

    def extend_many(self, envelopes: Sequence[Envelope]) -> None:
        now = self.clock()
        due = [e for e in envelopes if now - e.handle[2] >= self.lease_seconds / 2]
        if not due:
            return  # plenty of lease left: spare the write (and its fsync)
        with self.store.transaction():
            self.store.conn.executemany(
                "UPDATE queue_messages SET available_at = ? WHERE id = ? AND lease_token = ?",
                [(now + self.lease_seconds, *e.handle[:2]) for e in due],
            )
        for envelope in due:
            envelope.handle = (*envelope.handle[:2], now)

    def release(self, envelope: Envelope) -> None:
        row_id, token, _ = envelope.handle
        with self.store.transaction():
            self.store.conn.execute(
                "UPDATE queue_messages SET available_at = ?, lease_token = NULL WHERE id = ? AND lease_token = ?",
                (self.clock(), row_id, token),
            )

    def extend(self, envelope: Envelope) -> None:
        row_id, token, leased_at = envelope.handle
        now = self.clock()
        if now - leased_at < self.lease_seconds / 2:
            return  # plenty of lease left: spare the write (and its fsync)
        with self.store.transaction():
            self.store.conn.execute(
                "UPDATE queue_messages SET available_at = ? WHERE id = ? AND lease_token = ?",
                (now + self.lease_seconds, row_id, token),
            )
        envelope.handle = (row_id, token, now)

    def depths(self) -> QueueDepths:
        now = self.clock()
        counts = dict(
            self.store.conn.execute(
                """
                SELECT 'trigger', COUNT(*) FROM queue_messages WHERE queue = :t
                UNION ALL SELECT 'retry_due', COUNT(*) FROM queue_messages
                    WHERE queue = :r AND available_at <= :now
                UNION ALL SELECT 'retry_delayed', COUNT(*) FROM queue_messages
                    WHERE queue = :r AND available_at > :now AND lease_token IS NULL
                UNION ALL SELECT 'dead', COUNT(*) FROM queue_messages WHERE queue = :d
                UNION ALL SELECT 'in_flight', COUNT(*) FROM queue_messages
                    WHERE queue IN (:t, :r) AND lease_token IS NOT NULL AND available_at > :now
                """,
                {"t": TRIGGER_QUEUE, "r": RETRY_QUEUE, "d": DEADLETTER_QUEUE, "now": now},
            ).fetchall()
        )
        return QueueDepths(
            trigger=counts["trigger"],
            retry_due=counts["retry_due"],
            retry_delayed=counts["retry_delayed"],
            dead_letters=counts["dead"],
            in_flight=counts["in_flight"],
        )

    def is_empty(self, kinds: Iterable[str]) -> bool:
        queues = [QUEUE_FOR_KIND[k] for k in kinds]
        marks = ",".join("?" * len(queues))
        row = self.store.conn.execute(
            f"SELECT EXISTS (SELECT 1 FROM queue_messages WHERE queue IN ({marks}))", queues
        ).fetchone()
        return not row[0]

    def peek_dead_letters(self, limit: int) -> list[DeadLetter]:
        rows = self.store.conn.execute(
            "SELECT message_id, body, headers, created FROM queue_messages WHERE queue = ? ORDER BY id LIMIT ?",
            (DEADLETTER_QUEUE, limit),
        ).fetchall()
        letters = []
        for message_id, body, headers, created in rows:
            meta = json.loads(headers or "{}")
            letters.append(DeadLetter(message_id, meta.get("x-origin", RETRY), meta.get("x-death-reason", ""),
                                      bytes(body), created))
        return letters

    def purge_dead_letters(self, before: float | None = None) -> int:
        with self.store.transaction():
            cursor = self.store.conn.execute(
                "DELETE FROM queue_messages WHERE queue = ? AND (? IS NULL OR created < ?)",
                (DEADLETTER_QUEUE, before, before),
            )
        return cursor.rowcount

    def requeue_dead_triggers(self) -> list[str]:
        with self.store.transaction():
            rows = self.store.conn.execute(
                "SELECT id, message_id, headers FROM queue_messages WHERE queue = ? ORDER BY id", (DEADLETTER_QUEUE,)
            ).fetchall()
            parked = [(row_id, message_id) for row_id, message_id, headers in rows
                      if json.loads(headers or "{}").get("x-origin") == TRIGGER]
            self.store.conn.executemany(
                "UPDATE queue_messages SET queue = ?, available_at = ?, headers = '{}', lease_token = NULL,"
                " deliveries = 0 WHERE id = ?",
                [(TRIGGER_QUEUE, self.clock(), row_id) for row_id, _ in parked],
            )
        return [message_id for _, message_id in parked]


__all__ = ["SqliteQueue", "TRIGGER", "RETRY"]
