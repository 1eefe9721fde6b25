"""The table queue on SQLite: the store's own file (the default)."""

from __future__ import annotations

import secrets

from .base import Envelope
from .table import TableQueue

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS queue_messages (id INTEGER PRIMARY KEY, queue TEXT NOT NULL,"
    " message_id TEXT NOT NULL, body BLOB NOT NULL, headers TEXT, available_at FLOAT NOT NULL, lease_token TEXT,"
    " deliveries INTEGER DEFAULT 0, created FLOAT)",
    "CREATE INDEX IF NOT EXISTS idx_queue_messages_queue_available_at ON queue_messages (queue, available_at)",
)


class SqliteQueue(TableQueue):
    backend = "sqlite"

    def _create_schema(self) -> None:
        # A look first: CREATE ... IF NOT EXISTS still waits for the write lock, which an
        # application publishing inside its own transaction on this file holds.
        if self.store.execute("SELECT 1 FROM sqlite_master WHERE name = 'queue_messages'").first():
            return
        for statement in SCHEMA:
            self.store.execute(statement)

    def _take(self, queues: list[str], limit: int) -> list[Envelope]:
        """Each queue is read on its own (queue, available_at) index, then merged:
        one query over both would sort every due row of a long backlog. SQLite's
        write lock (BEGIN IMMEDIATE) keeps other consumers out meanwhile."""
        now = self.clock()
        with self.store.transaction():
            rows: list[tuple] = []
            for queue in queues:
                rows.extend(
                    self.store.execute(
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
            self.store.execute_many(
                "UPDATE queue_messages SET available_at = ?, lease_token = ?, deliveries = deliveries + 1 WHERE id = ?",
                [(now + self.lease_seconds, token, row[0]) for token, row in zip(tokens, rows)],
            )
        return [
            self._envelope(row_id, queue, message_id, body, headers, not deliveries, token, now)
            for token, (row_id, queue, message_id, body, headers, deliveries, _) in zip(tokens, rows)
        ]


__all__ = ["SqliteQueue"]
