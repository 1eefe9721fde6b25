"""Tables about the store itself.

- ``store_info``         key/value facts: its identity, the log generation
- ``amqp_delay_queues``  every RabbitMQ delay queue this store's retries were
                         published to, so status counts them after a settings change
"""

from __future__ import annotations

import secrets
import uuid as uuidlib

from .backend import Backend
from .records import timestamp


def new_log_generation(backend: Backend) -> None:
    """A new log generation (migrations call it when they make or copy the log)."""
    backend.execute(
        "INSERT INTO store_info (key, value) VALUES ('log_generation', ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (secrets.token_hex(8),),
    )


class StoreInfoTable:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def identity(self, create: bool = True) -> str | None:
        """This store's id, made once at random: messages it publishes to a broker
        carry it, so a consumer can refuse another store's. None if not made yet
        and `create` is False."""
        try:
            value = self._info("identity")
        except self.backend.missing_table_errors:  # an older store opened read-only: no table, so no identity yet
            value = None
        if value is None and create:
            with self.backend.transaction():
                self.backend.execute(
                    "INSERT INTO store_info (key, value) VALUES ('identity', ?) ON CONFLICT (key) DO NOTHING",
                    (uuidlib.uuid4().hex,),
                )
            value = self._info("identity")
        return value

    def _info(self, key: str) -> str | None:
        value = self.backend.execute("SELECT value FROM store_info WHERE key = ?", (key,)).scalar()
        return None if value is None else str(value)

    def log_generation(self) -> str:
        """Changes whenever log ids may have restarted (a new or migrated log): a
        search index built for another generation must be rebuilt."""
        return self._info("log_generation") or ""

    def record_delay_queue(self, name: str) -> None:
        """Remember a delay queue before a retry is published to it."""
        with self.backend.transaction():
            self.backend.execute(
                "INSERT INTO amqp_delay_queues (name, first_used) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                (name, timestamp()),
            )

    def delay_queue_names(self) -> list[str]:
        try:
            return [row[0] for row in self.backend.execute("SELECT name FROM amqp_delay_queues ORDER BY name").rows]
        except self.backend.missing_table_errors:  # an older store opened read-only: it recorded none
            return []
