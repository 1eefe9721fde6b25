"""Reading and sweeping RabbitMQ's dead letters (``event.failover.deadletter``).

Parked messages are read on a channel of their own with ``basic.get``; those
not acknowledged go back where they were when that channel closes, so a read
that is interrupted removes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .amqp_connection import Connection
from .amqp_publish import Publisher
from .amqp_topology import TRIGGER_EXCHANGE, TRIGGER_ROUTING_KEY
from .base import DEADLETTER_QUEUE, RETRY, TRIGGER, DeadLetter
from .headers import DEATH_REASON_HEADER, ORIGIN_HEADER


def _letter(props: Any, body: bytes) -> DeadLetter:
    headers = dict(props.headers or {})
    return DeadLetter(
        props.message_id or None,
        str(headers.get(ORIGIN_HEADER, RETRY)),
        str(headers.get(DEATH_REASON_HEADER, "")),
        body,
        float(props.timestamp) if props.timestamp else None,
    )


class DeadLetters:
    def __init__(self, connection: Connection, publisher: Publisher) -> None:
        self.connection = connection
        self.publisher = publisher

    def peek(self, limit: int) -> list[DeadLetter]:
        """Up to `limit` parked messages, acknowledging none: closing the channel puts every one back."""

        def peek() -> list[DeadLetter]:
            channel = self.connection.new_channel()
            letters: list[DeadLetter] = []
            try:
                while len(letters) < limit:
                    method, props, body = channel.basic_get(DEADLETTER_QUEUE, auto_ack=False)
                    if method is None:
                        break
                    letters.append(_letter(props, body))
            finally:
                if channel.is_open:
                    channel.close()
            return letters

        return self.connection.run(peek)

    def sweep(self, take: Callable[[Any, bytes], bool]) -> int:
        """Read every parked message; acknowledge (remove) those `take(props, body)` accepts.
        Closing the channel puts the others back. Returns how many were taken."""

        def sweep() -> int:
            channel = self.connection.new_channel()
            taken = 0
            try:
                while True:
                    method, props, body = channel.basic_get(DEADLETTER_QUEUE, auto_ack=False)
                    if method is None:
                        return taken
                    if take(props, body):
                        channel.basic_ack(method.delivery_tag)
                        taken += 1
            finally:
                if channel.is_open:
                    channel.close()

        return self.connection.run(sweep)

    def purge(self, before: float | None = None) -> int:
        if before is None:
            return self.connection.run(
                lambda: int(self.connection.side().queue_purge(DEADLETTER_QUEUE).method.message_count)
            )
        return self.sweep(lambda props, _body: bool(props.timestamp) and props.timestamp < before)

    def requeue_triggers(self, owner: str | None) -> list[str]:
        """Each parked trigger is published again (confirmed) before its parked copy is
        removed: a crash in between leaves both, never neither."""
        ids: list[str] = []

        def requeue(props: Any, body: bytes) -> bool:
            if str(dict(props.headers or {}).get(ORIGIN_HEADER, RETRY)) != TRIGGER:
                return False
            ids.append(
                self.publisher.confirmed(
                    TRIGGER_ROUTING_KEY, body, None, lambda: None, exchange=TRIGGER_EXCHANGE, owner=owner
                )
            )
            return True

        self.sweep(requeue)
        return ids


__all__ = ["DeadLetters"]
