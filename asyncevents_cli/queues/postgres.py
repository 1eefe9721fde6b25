"""The table queue on PostgreSQL, shared by consumers on many hosts.

Leasing is one statement: the due rows are picked `FOR UPDATE SKIP LOCKED`
(so concurrent consumers take different rows and never wait on each other)
and stamped with the lease in the same UPDATE. The pick walks the
(available_at, id) index in order, so a long backlog is never sorted;
parked dead letters sit at the far end of it (due "never").
"""

from __future__ import annotations

import secrets

from .base import Envelope
from .table import TableQueue


class PostgresQueue(TableQueue):
    backend = "postgresql"

    def _take(self, queues: list[str], limit: int) -> list[Envelope]:
        now = self.clock()
        token = secrets.token_hex(8)  # one per batch: a lease is its row id and this token
        marks = ",".join("?" * len(queues))
        with self.store.transaction():
            rows = self.store.backend.execute(
                "UPDATE queue_messages q SET available_at = ?, lease_token = ?, deliveries = q.deliveries + 1"
                " FROM (SELECT id, available_at AS due_at FROM queue_messages"
                f"       WHERE available_at <= ? AND queue IN ({marks})"
                "       ORDER BY available_at, id LIMIT ? FOR UPDATE SKIP LOCKED) due"
                " WHERE q.id = due.id"
                " RETURNING q.id, q.queue, q.message_id, q.body, q.headers, q.deliveries, due.due_at",
                (now + self.lease_seconds, token, now, *queues, limit),
            ).rows
        rows.sort(key=lambda r: (r[6], r[0]))
        return [
            self._envelope(row_id, queue, message_id, body, headers, deliveries == 1, token, now)
            for row_id, queue, message_id, body, headers, deliveries, _ in rows
        ]


__all__ = ["PostgresQueue"]
