"""Publishing to RabbitMQ, on two paths.

Every message is persistent and carries a fresh ``message_id`` (the dispatcher
de-duplicates redeliveries by it). A batch of triggers is published in one AMQP
transaction, so it is all-or-nothing; ``tx.commit-ok`` comes only once the
broker has stored the messages. A channel cannot be in transaction and confirm
mode at once, so single messages (one trigger, retries, dead letters) go
through a second channel with publisher confirms. Both publish with
``mandatory``: a queue deleted since its declare returns the message, which is
re-declared and published again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions

from ..backoff import RetryPolicy
from ..errors import AeError
from ..messages import RetryMessage
from .amqp_connection import Connection
from .amqp_ownership import Ownership
from .amqp_topology import (
    FAILOVER_EXCHANGE,
    KILL_ROUTING_KEY,
    RETRY_ROUTING_KEY,
    TRIGGER_EXCHANGE,
    TRIGGER_ROUTING_KEY,
    declare_delay_queue,
    delay_queue,
)
from .base import TRIGGER_QUEUE
from .headers import DEATH_REASON_HEADER, GENERATION_HEADER, ORIGIN_HEADER, RETRY_COUNT_HEADER, STORE_HEADER

log = logging.getLogger("asyncevents_cli")
PUBLISH_ATTEMPTS = 3


def properties(
    message_id: str, headers: dict[str, Any] | None = None, owner: str | None = None
) -> pika.BasicProperties:
    """A persistent JSON message of `ae`, stamped with its store's identity (`owner`) if given."""
    if owner is not None:
        headers = {**(headers or {}), STORE_HEADER: owner}
    return pika.BasicProperties(
        message_id=message_id,
        delivery_mode=pika.DeliveryMode.Persistent,
        content_type="application/json",
        timestamp=int(time.time()),
        app_id="ae",
        headers=headers,
    )


class Publisher:
    def __init__(self, connection: Connection, ownership: Ownership, policy: RetryPolicy) -> None:
        self.connection = connection
        self.ownership = ownership
        self.policy = policy
        self._declared: set[str] = set()  # delay queues declared on this connection
        connection.on_drop(self._declared.clear)

    def triggers(self, ids: list[str], bodies: list[bytes], headers: dict[str, Any] | None = None) -> list[str]:
        """Publish trigger bodies under `ids`, all or none."""
        if not bodies:
            return []
        owner = self.ownership.identity(create=False)
        if len(bodies) > 1:
            return self.connection.run(lambda: self._in_transaction(ids, bodies, headers, owner))
        # One message is all-or-nothing by itself: publisher confirms, as the module.
        tries: list[None] = []

        def redeclare_on_retry() -> None:  # the topology was declared on connect
            if tries:
                self.connection.declare_topology()
            tries.append(None)

        message_id = self.confirmed(
            TRIGGER_ROUTING_KEY, bodies[0], headers, redeclare_on_retry, TRIGGER_EXCHANGE, ids[0], owner
        )
        return [message_id]

    def _in_transaction(
        self, ids: list[str], bodies: list[bytes], headers: dict[str, Any] | None, owner: str | None
    ) -> list[str]:
        pending = list(zip(ids, bodies))
        for _ in range(PUBLISH_ATTEMPTS):
            ch = self.connection.channel("tx")
            self.connection.returned.clear()
            for message_id, body in pending:
                ch.basic_publish(
                    TRIGGER_EXCHANGE,
                    TRIGGER_ROUTING_KEY,
                    body,
                    properties(message_id, headers, owner=owner),
                    mandatory=True,
                )
            ch.tx_commit()
            # Returns precede commit-ok on the wire; this dispatches them.
            self.connection.process_events(0)
            returned = {props.message_id for props, _ in self.connection.returned}
            if not returned:
                return ids
            log.warning("%d trigger(s) unroutable; re-declaring %s", len(returned), TRIGGER_QUEUE)
            self.connection.declare_topology()
            pending = [(i, b) for i, b in pending if i in returned]
        raise AeError(f"RabbitMQ kept returning triggers as unroutable to {TRIGGER_QUEUE}")

    def confirmed(
        self,
        routing_key: str,
        body: bytes,
        headers: dict[str, Any] | None,
        prepare: Callable[[], None],
        exchange: str = FAILOVER_EXCHANGE,
        message_id: str | None = None,
        owner: str | None = None,
    ) -> str:
        """Publish one message with confirms (to event.failover unless told); `prepare` declares its target.

        Without `exchange`, the message is a retry or dead letter of this store and carries its identity."""
        message_id = message_id or uuid.uuid4().hex
        if exchange == FAILOVER_EXCHANGE:
            owner = self.ownership.identity(create=True)

        def publish() -> str:
            for _ in range(PUBLISH_ATTEMPTS):
                prepare()
                try:
                    self.connection.channel("confirm").basic_publish(
                        exchange, routing_key, body, properties(message_id, headers, owner), mandatory=True
                    )
                    return message_id
                except pika.exceptions.UnroutableError:
                    log.info("message for %s was unroutable (queue deleted?); re-declaring", routing_key)
                    self._declared.clear()
                except pika.exceptions.NackError:
                    log.warning("broker refused a message for %s; publishing again", routing_key)
            raise AeError(f"RabbitMQ could not route a message with key {routing_key!r}")

        return self.connection.run(publish)

    def retry(self, message: RetryMessage, delay_seconds: float, generation: int) -> str:
        """Send a retry through the delay queue its death count calls for.

        The delay comes from the policy (the module's queue per back-off value);
        `delay_seconds` only decides between "after the back-off" and "now" (<= 0).
        """
        target = delay_queue(self.policy, message.death_count) if delay_seconds > 0 else None
        headers = {RETRY_COUNT_HEADER: message.death_count, GENERATION_HEADER: generation}
        if target is None:
            return self.confirmed(RETRY_ROUTING_KEY, message.encode(), headers, lambda: None)
        self.ownership.record_delay_queue(target.name)

        def declare() -> None:  # once per connection: delay queues do not expire
            if target.name not in self._declared:
                declare_delay_queue(self.connection.side, target)
                self._declared.add(target.name)

        return self.confirmed(target.routing_key, message.encode(), headers, declare)

    def dead_letter(self, body: bytes, reason: str, kind: str) -> str:
        headers = {DEATH_REASON_HEADER: reason, ORIGIN_HEADER: kind}
        return self.confirmed(KILL_ROUTING_KEY, body, headers, lambda: None)


__all__ = ["PUBLISH_ATTEMPTS", "Publisher", "properties"]
