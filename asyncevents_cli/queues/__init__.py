"""Queue backends behind one interface; `open_queue` picks one from the settings."""

from __future__ import annotations

from collections.abc import Callable

from ..config import Config
from ..store import Store
from .base import KINDS, RETRY, TRIGGER, Envelope, Queue, QueueDepths, StoreLedger


def open_queue(
    config: Config, store: Callable[[], Store], existing_store: Callable[[], Store | None] = lambda: None
) -> Queue:
    """The backend named by ``settings.queue``: "db" (default) or "amqp".

    "db" is a table in the store's own database, whichever that is: SQLite
    (`SqliteQueue`) or PostgreSQL (`PostgresQueue`). `store` is called only for it, so commands on a broker
    never create a database file they do not need; the broker gets
    `existing_store`'s `info` table, if the store exists, for its identity and bookkeeping.
    """
    if config.settings.queue == "amqp":
        from .amqp import AmqpQueue  # pika is only imported when asked for

        def ledger() -> StoreLedger | None:
            found = existing_store()
            return None if found is None else found.info

        return AmqpQueue(config.settings.amqp_url, config.retry_policy, store=ledger)
    opened = store()
    if opened.backend.name == "postgresql":
        from .postgres import PostgresQueue

        return PostgresQueue(opened)
    from .sqlite import SqliteQueue

    return SqliteQueue(opened)


__all__ = ["open_queue", "Queue", "Envelope", "QueueDepths", "KINDS", "TRIGGER", "RETRY"]
