"""The table queue on SQLite: the store's own file (the default)."""

from __future__ import annotations

import secrets

from .base import Envelope
from .table import TableQueue


class SqliteQueue(TableQueue):
    backend = "sqlite"

    def _take(self, queues: list[str], limit: int) -> list[Envelope]:
        """Each queue is read on its own (queue, available_at) index, then merged:
        one query over both would sort every due row of a long backlog. SQLite's
        write lock (BEGIN IMMEDIATE) keeps other consumers out meanwhile."""
        now = self.clock()
        with self.store.transaction():
            rows: list[tuple] = []
            for queue in queues:
                rows.extend(
                    self.store.backend.execute(
                        "SELECT id, queue, message_id, body, headers, deliveries, available_at FROM queue_messages"
                        " WHERE queue = ? AND available_at <= ? ORDER BY available_at, id LIMIT ?",
                        (queue, now, limit),
                    ).rows
                )
            if len(queues) > 1:
                rows.sort(key=lambda r: (r[6], r[0]))
                del rows[limit:]
            if not rows:
                return []
            tokens = [secrets.token_hex(8) for _ in rows]
            self.store.backend.execute_many(
                "UPDATE queue_messages SET available_at = ?, lease_token = ?, deliveries = deliveries + 1 WHERE id = ?",
                [(now + self.lease_seconds, token, row[0]) for token, row in zip(tokens, rows)],
            )
        return [
            self._envelope(row_id, queue, message_id, body, headers, not deliveries, token, now)
            for token, (row_id, queue, message_id, body, headers, deliveries, _) in zip(tokens, rows)
        ]


__all__ = ["SqliteQueue"]
