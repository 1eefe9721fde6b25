"""The message headers `ae` reads and writes, named once for every queue backend and the engine.

The names follow the Magento module where it has them (``x-retry-count``,
``x-death-reason``); the ``x-ae-`` ones are this project's own. The table queue
keeps them as JSON beside each row, RabbitMQ as AMQP headers.
"""

from __future__ import annotations

#: A retry's death count (the module's header).
RETRY_COUNT_HEADER = "x-retry-count"
#: The replay generation of a retry's chain; a replay starts a new one.
GENERATION_HEADER = "x-ae-generation"
#: Why a message was parked in the dead letters.
DEATH_REASON_HEADER = "x-death-reason"
#: Which queue a dead letter was parked from (``trigger`` or ``retry``).
ORIGIN_HEADER = "x-origin"
#: The identity of the store a message belongs to (see `Store.identity`).
STORE_HEADER = "x-ae-store"
#: Set on triggers the outbox relay forwards: one may have been sent before.
RELAYED_HEADER = "x-ae-relayed"

__all__ = [
    "DEATH_REASON_HEADER",
    "GENERATION_HEADER",
    "ORIGIN_HEADER",
    "RELAYED_HEADER",
    "RETRY_COUNT_HEADER",
    "STORE_HEADER",
]
