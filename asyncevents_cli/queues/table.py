"""The table queue (`queue = "db"`): messages are rows in the store's own database.

A message is a row with ``available_at`` (epoch seconds). Receiving a message
leases it: ``available_at`` moves to now + lease and a lease token is written,
the way SQS hides a message for its visibility timeout. ``ack`` deletes the
row only while the token still matches. A consumer that dies holding a lease
simply lets it run out, and the row becomes due again.

Because the table lives in the store's database, every write joins the
store's open transaction: a message's attempt logs, its retries and its
removal commit together or not at all, on SQLite and on PostgreSQL alike
(`settle`), and a consumer's settle and its next lease share one commit
(`settle_and_take`).

The rules live here once; a backend (`sqlite.py`, `postgres.py`) only creates
the table and leases due rows (`_take`), the one step each engine does its
own way.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence

from ..database_errors import UNTRANSLATED_BUSY
from ..errors import AeError
from ..messages import RetryMessage, TriggerMessage
from ..store import Store
from .base import (
    DEADLETTER_QUEUE,
    QUEUE_FOR_KIND,
    RETRY,
    RETRY_QUEUE,
    TRIGGER,
    TRIGGER_QUEUE,
    DeadLetter,
    Envelope,
    FollowUps,
    Queue,
    QueueDepths,
    Runner,
    run_once,
)
from .headers import DEATH_REASON_HEADER, GENERATION_HEADER, ORIGIN_HEADER, RETRY_COUNT_HEADER

DEFAULT_LEASE_SECONDS = 60.0
PROGRESS_STEP = 500  # triggers written between progress reports
NEVER = 9e18  # dead letters are parked, never due
KIND_FOR_QUEUE = {queue: kind for kind, queue in QUEUE_FOR_KIND.items()}


class TableQueue(Queue):
    #: the store backend whose database holds this queue's table
    backend = ""

    def __init__(
        self,
        store: Store,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        poll_interval: float = 0.05,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if store.backend != self.backend:
            raise AeError(
                f"{type(self).__name__} keeps its table in a {self.backend} store; {store.location} is {store.backend}"
            )
        self.store = store
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.clock = clock
        if not store.read_only:
            self._create_schema()

    # -- what a backend provides --------------------------------------------------

    def _create_schema(self) -> None:
        raise NotImplementedError

    def _take(self, queues: list[str], limit: int) -> list[Envelope]:
        """Lease up to `limit` due messages of `queues`, oldest first."""
        raise NotImplementedError

    # -- the rules, once -----------------------------------------------------------

    def settle(
        self, follow_ups: Sequence[FollowUps], record: Callable[[], None], envelopes: Sequence[Envelope]
    ) -> None:
        """One transaction: the follow-ups, the store's records and the acknowledgements
        commit together or not at all (so a settle tried again places nothing twice)."""
        with self.store.transaction():
            for follow_up in follow_ups:
                follow_up.place()
            record()
            if envelopes:
                self.ack_many(envelopes)

    def settle_and_take(
        self, settle: Callable[[], None], take: Callable[[], list[Envelope]], run: Runner = run_once
    ) -> list[Envelope]:
        """One transaction for the batch and the next lease: one fsync for both. A failure
        rolls back the lot, so the lot is what `run` tries again."""

        def together() -> list[Envelope]:
            with self.store.transaction():
                settle()
                return take()

        return run(together)

    def release_without_store(self, envelopes: Sequence[Envelope]) -> None:
        """Nothing to do: the leases are rows in the lost database, and they lapse by themselves."""

    def _envelope(
        self,
        row_id: int,
        queue: str,
        message_id: str,
        body: bytes,
        headers: str | None,
        first_delivery: bool,
        token: str,
        leased_at: float,
    ) -> Envelope:
        return Envelope(
            kind=KIND_FOR_QUEUE[queue],
            body=bytes(body),
            message_id=message_id,
            headers=json.loads(headers or "{}"),
            handle=(row_id, token, leased_at),
            first_delivery=first_delivery,
        )

    def _insert(self, queue: str, body: bytes, available_at: float, headers: dict | None = None) -> str:
        message_id = uuid.uuid4().hex
        self.store.execute(
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
            for start in range(0, len(messages), PROGRESS_STEP):
                chunk = messages[start : start + PROGRESS_STEP]
                rows = [(TRIGGER_QUEUE, uuid.uuid4().hex, m.encode(), "{}", now, now) for m in chunk]
                self.store.execute_many(
                    "INSERT INTO queue_messages (queue, message_id, body, headers, available_at, deliveries,"
                    " created) VALUES (?, ?, ?, ?, ?, 0, ?)",
                    rows,
                )
                ids.extend(row[1] for row in rows)
                if progress:
                    progress(len(chunk))
        return ids

    def forward_triggers(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Joins the store's open transaction, so the relay's move from outbox to queue is
        one commit: each message arrives exactly once."""
        now = self.clock()
        with self.store.transaction():
            self.store.execute_many(
                "INSERT INTO queue_messages (queue, message_id, body, headers, available_at, deliveries, created)"
                " VALUES (?, ?, ?, '{}', ?, 0, ?)",
                [(TRIGGER_QUEUE, message_id, body, now, now) for message_id, body in items],
            )

    def publish_retry(self, message: RetryMessage, delay_seconds: float, generation: int = 0) -> str:
        with self.store.transaction():
            return self._insert(
                RETRY_QUEUE,
                message.encode(),
                self.clock() + max(0.0, delay_seconds),
                {RETRY_COUNT_HEADER: message.death_count, GENERATION_HEADER: generation},
            )

    def dead_letter(self, body: bytes, reason: str, kind: str = RETRY) -> str:
        with self.store.transaction():
            return self._insert(DEADLETTER_QUEUE, body, NEVER, {DEATH_REASON_HEADER: reason, ORIGIN_HEADER: kind})

    def receive(self, kinds: Iterable[str], timeout: float) -> Envelope | None:
        taken = self.receive_many(kinds, 1, timeout)
        return taken[0] if taken else None

    def receive_many(self, kinds: Iterable[str], limit: int, timeout: float) -> list[Envelope]:
        queues = [QUEUE_FOR_KIND[k] for k in kinds]
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            try:
                taken = self._take(queues, max(1, limit))
            except UNTRANSLATED_BUSY as exc:  # e.g. locked past busy_timeout
                raise AeError(f"queue database error: {exc}") from exc
            if taken:
                return taken
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            time.sleep(min(self.poll_interval, remaining))

    def ack(self, envelope: Envelope) -> None:
        self.ack_many([envelope])

    def ack_many(self, envelopes: Sequence[Envelope]) -> None:
        with self.store.transaction():
            self.store.execute_many(
                "DELETE FROM queue_messages WHERE id = ? AND lease_token = ?", [e.handle[:2] for e in envelopes]
            )

    def release(self, envelope: Envelope) -> None:
        self.release_many([envelope])

    def release_many(self, envelopes: Sequence[Envelope]) -> None:
        now = self.clock()
        with self.store.transaction():
            self.store.execute_many(
                "UPDATE queue_messages SET available_at = ?, lease_token = NULL WHERE id = ? AND lease_token = ?",
                [(now, *e.handle[:2]) for e in envelopes],
            )

    def extend(self, envelope: Envelope) -> None:
        self.extend_many([envelope])

    def extend_many(self, envelopes: Sequence[Envelope]) -> None:
        now = self.clock()
        due = [e for e in envelopes if now - e.handle[2] >= self.lease_seconds / 2]
        if not due:
            return  # plenty of lease left: spare the write (and its fsync)
        with self.store.transaction():
            self.store.execute_many(
                "UPDATE queue_messages SET available_at = ? WHERE id = ? AND lease_token = ?",
                [(now + self.lease_seconds, *e.handle[:2]) for e in due],
            )
        for envelope in due:
            envelope.handle = (*envelope.handle[:2], now)

    def depths(self) -> QueueDepths:
        now = self.clock()
        t, r, d = TRIGGER_QUEUE, RETRY_QUEUE, DEADLETTER_QUEUE
        counts = dict(
            self.store.execute(
                """
            SELECT 'trigger', COUNT(*) FROM queue_messages WHERE queue = ?
            UNION ALL SELECT 'retry_due', COUNT(*) FROM queue_messages WHERE queue = ? AND available_at <= ?
            UNION ALL SELECT 'retry_delayed', COUNT(*) FROM queue_messages
                WHERE queue = ? AND available_at > ? AND lease_token IS NULL
            UNION ALL SELECT 'dead', COUNT(*) FROM queue_messages WHERE queue = ?
            UNION ALL SELECT 'in_flight', COUNT(*) FROM queue_messages
                WHERE queue IN (?, ?) AND lease_token IS NOT NULL AND available_at > ?
            """,
                (t, r, now, r, now, d, t, r, now),
            ).rows
        )
        return QueueDepths(
            trigger=int(counts["trigger"]),
            retry_due=int(counts["retry_due"]),
            retry_delayed=int(counts["retry_delayed"]),
            dead_letters=int(counts["dead"]),
            in_flight=int(counts["in_flight"]),
        )

    def is_empty(self, kinds: Iterable[str]) -> bool:
        queues = [QUEUE_FOR_KIND[k] for k in kinds]
        marks = ",".join("?" * len(queues))
        found = self.store.execute(f"SELECT 1 FROM queue_messages WHERE queue IN ({marks}) LIMIT 1", queues)
        return found.first() is None

    def peek_dead_letters(self, limit: int) -> list[DeadLetter]:
        rows = self.store.execute(
            "SELECT message_id, body, headers, created FROM queue_messages WHERE queue = ? ORDER BY id LIMIT ?",
            (DEADLETTER_QUEUE, limit),
        ).rows
        letters = []
        for message_id, body, headers, created in rows:
            meta = json.loads(headers or "{}")
            letters.append(
                DeadLetter(
                    message_id, meta.get(ORIGIN_HEADER, RETRY), meta.get(DEATH_REASON_HEADER, ""), bytes(body), created
                )
            )
        return letters

    def purge_dead_letters(self, before: float | None = None) -> int:
        with self.store.transaction():
            if before is None:
                done = self.store.execute("DELETE FROM queue_messages WHERE queue = ?", (DEADLETTER_QUEUE,))
            else:
                done = self.store.execute(
                    "DELETE FROM queue_messages WHERE queue = ? AND created < ?", (DEADLETTER_QUEUE, before)
                )
        return done.rowcount

    def requeue_dead_triggers(self) -> list[str]:
        with self.store.transaction():
            rows = self.store.execute(
                "SELECT id, message_id, headers FROM queue_messages WHERE queue = ? ORDER BY id", (DEADLETTER_QUEUE,)
            ).rows
            parked = [
                (row_id, message_id)
                for row_id, message_id, headers in rows
                if json.loads(headers or "{}").get(ORIGIN_HEADER) == TRIGGER
            ]
            self.store.execute_many(
                "UPDATE queue_messages SET queue = ?, available_at = ?, headers = '{}', lease_token = NULL,"
                " deliveries = 0 WHERE id = ?",
                [(TRIGGER_QUEUE, self.clock(), row_id) for row_id, _ in parked],
            )
        return [message_id for _, message_id in parked]
