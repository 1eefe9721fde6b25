"""Tables about the store itself.

- ``store_info``         key/value facts: its identity, the log generation
- ``amqp_delay_queues``  every RabbitMQ delay queue this store's retries were
                         published to, so status counts them after a settings change
"""

from __future__ import annotations

import secrets
import uuid as uuidlib

from .base import StoreBase
from .records import timestamp


class StoreInfoTable(StoreBase):
    def identity(self, create: bool = True) -> str | None:
        """This store's id, made once at random: messages it publishes to a broker
        carry it, so a consumer can refuse another store's. None if not made yet
        and `create` is False."""
        try:
            value = self._info("identity")
        except self.missing_table_errors:  # an older store opened read-only: no table, so no identity yet
            value = None
        if value is None and create:
            with self.transaction():
                self._run(
                    "INSERT INTO store_info (key, value) VALUES ('identity', ?) ON CONFLICT (key) DO NOTHING",
                    (uuidlib.uuid4().hex,),
                )
            value = self._info("identity")
        return value

    def _info(self, key: str) -> str | None:
        value = self._run("SELECT value FROM store_info WHERE key = ?", (key,)).scalar()
        return None if value is None else str(value)

    def _new_log_generation(self) -> None:
        self._run(
            "INSERT INTO store_info (key, value) VALUES ('log_generation', ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (secrets.token_hex(8),),
        )

    def log_generation(self) -> str:
        """Changes whenever log ids may have restarted (a new or migrated log): a
        search index built for another generation must be rebuilt."""
        return self._info("log_generation") or ""

    def log_id_high_water(self) -> int:
        """The largest log id ever handed out, even if pruned since."""
        return max(self._log_id_sequence(), self._run("SELECT COALESCE(MAX(log_id), 0) FROM delivery_log").scalar())

    def _log_id_sequence(self) -> int:
        """The last log id the backend's id sequence handed out (0 if none)."""
        raise NotImplementedError

    def record_delay_queue(self, name: str) -> None:
        """Remember a delay queue before a retry is published to it."""
        with self.transaction():
            self._run(
                "INSERT INTO amqp_delay_queues (name, first_used) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                (name, timestamp()),
            )

    def delay_queue_names(self) -> list[str]:
        try:
            return [row[0] for row in self._run("SELECT name FROM amqp_delay_queues ORDER BY name").rows]
        except self.missing_table_errors:  # an older store opened read-only: it recorded none
            return []
