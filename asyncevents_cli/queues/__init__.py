"""Queue backends behind one interface; `open_queue` picks one from the settings."""

from __future__ import annotations

from collections.abc import Callable

from ..config import Config
from ..store import Store
from .base import KINDS, RETRY, TRIGGER, Envelope, Queue, QueueDepths


def open_queue(
    config: Config, store: Callable[[], Store], existing_store: Callable[[], Store | None] = lambda: None
) -> Queue:
    """The backend named by ``settings.queue``: "db" (default) or "amqp".

    "db" is a table in the store's own database, whichever that is: SQLite
    (`SqliteQueue`) or PostgreSQL (`PostgresQueue`). `store` is called only for it, so commands on a broker
    never create a database file they do not need; the broker gets
    `existing_store`, the store if it exists, for its identity and bookkeeping.
    """
    if config.settings.queue == "amqp":
        from .amqp import AmqpQueue  # pika is only imported when asked for

        return AmqpQueue(config.settings.amqp_url, config.retry_policy, store=existing_store)
    opened = store()
    if opened.backend.name == "postgresql":
        from .postgres import PostgresQueue

        return PostgresQueue(opened)
    from .sqlite import SqliteQueue

    return SqliteQueue(opened)


__all__ = ["open_queue", "Queue", "Envelope", "QueueDepths", "KINDS", "TRIGGER", "RETRY"]
