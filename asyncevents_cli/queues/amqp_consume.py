"""Consuming from RabbitMQ, and acknowledging with as few frames as the channel allows.

One channel with a prefetch limit consumes ``event.trigger`` and/or
``event.failover.retry``; deliveries land in a local buffer that `take` hands
out, and they are acknowledged only when settled. Envelopes from a connection
that is gone are stale: settling them is a no-op (the broker has requeued them),
and the copy that comes back is recognised by the dispatcher through its
``message_id``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from ..errors import AeError
from .amqp_connection import CONNECTION_ERRORS, OPERATION_ERRORS, Connection, describe
from .base import KINDS, QUEUE_FOR_KIND, Envelope
from .headers import RELAYED_HEADER

log = logging.getLogger("asyncevents_cli")


def multiple_ack_split(tags: Sequence[int], unsettled: Iterable[int]) -> tuple[int | None, list[int]]:
    """How to acknowledge `tags` in as few frames as possible, while `unsettled` (other
    delivery tags of the channel) must stay unacknowledged: the highest tag for one
    ``multiple`` ack (None: none), then the tags to acknowledge one by one.

    A ``multiple`` ack settles every tag up to it, so it may reach only up to the
    lowest unsettled tag."""
    ordered = sorted(tags)
    below = min(unsettled, default=ordered[-1] + 1 if ordered else 0)
    upto = [tag for tag in ordered if tag < below]
    return (upto[-1] if upto else None), ordered[len(upto) :]


class Consumption:
    """The consumers on the consume channel, the prefetch buffer, and what is handed out."""

    def __init__(self, connection: Connection, check: Callable[[Envelope], AeError | None]) -> None:
        self.connection = connection
        #: why a delivery must not be handed out (another store's), else None
        self.check = check
        self._consumers: dict[str, str] = {}  # kind -> consumer tag
        self._buffer: deque[Envelope] = deque()  # delivered, not yet handed out
        self._held: dict[tuple[int, int], str] = {}  # handed out, not settled -> kind
        connection.on_drop(self._forget)

    def _forget(self) -> None:
        self._consumers.clear()
        self._buffer.clear()
        self._held.clear()

    def _on_delivery(self, kind: str, generation: int) -> Callable[..., None]:
        def deliver(_ch: BlockingChannel, method: Any, props: pika.BasicProperties, body: bytes) -> None:
            self._buffer.append(
                Envelope(
                    kind=kind,
                    body=body,
                    message_id=props.message_id or None,
                    headers=dict(props.headers or {}),
                    handle=(generation, method.delivery_tag),
                    first_delivery=not method.redelivered and RELAYED_HEADER not in (props.headers or {}),
                )
            )

        return deliver

    def _consume(self, kinds: tuple[str, ...]) -> None:
        """Have consumers on exactly the queues of `kinds`."""
        ch = self.connection.channel("consume")
        for kind in [k for k in self._consumers if k not in kinds]:
            ch.basic_cancel(self._consumers.pop(kind))
            for envelope in [e for e in self._buffer if e.kind == kind]:
                self._buffer.remove(envelope)
                ch.basic_nack(envelope.handle[1], requeue=True)
        for kind in kinds:
            if kind not in self._consumers:
                self._consumers[kind] = ch.basic_consume(
                    QUEUE_FOR_KIND[kind], self._on_delivery(kind, self.connection.generation)
                )

    def _hand_out(self) -> Envelope:
        """The next buffered delivery, now held; raises (having put it back) if it is another store's."""
        envelope = self._buffer.popleft()
        self._held[envelope.handle] = envelope.kind
        refusal = self.check(envelope)
        if refusal is not None:
            # if the connection is gone, the broker requeued the message with it
            with contextlib.suppress(*OPERATION_ERRORS):
                self.connection.channel("consume").basic_nack(envelope.handle[1], requeue=True)
            self._held.pop(envelope.handle, None)
            raise refusal
        return envelope

    def take(self, wanted: tuple[str, ...], deadline: float) -> Envelope | None:
        """The next delivery of the kinds `wanted`, waiting until `deadline` (monotonic
        clock) at most; on an open connection."""
        self._consume(wanted)
        looked = False
        while True:
            if self._buffer:
                return self._hand_out()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if looked:
                    return None
                # Deliveries reach the buffer only while pika processes events: take
                # what has arrived already, even when not waiting at all.
                remaining = 0.0
            looked = True
            self.connection.process_events(min(remaining, 1.0))

    def take_buffered(self, first: Envelope, kinds: Iterable[str], limit: int) -> list[Envelope]:
        """`first` and what the prefetch buffer holds of `kinds` next, up to `limit`."""
        taken = [first]
        wanted = {first.kind} | set(kinds)
        while len(taken) < limit and self._buffer and self._buffer[0].kind in wanted:
            # raising, it leaves those taken unsettled: the broker requeues them
            taken.append(self._hand_out())
        return taken

    def _release_hold(self, envelope: Envelope) -> bool:
        """Stop holding `envelope`; False when it is from a connection that is gone."""
        if self._held.pop(envelope.handle, None) is None or envelope.handle[0] != self.connection.generation:
            # From a connection that is gone: the broker has requeued it already.
            log.info("not settling message %s: its connection was lost", envelope.message_id)
            return False
        return True

    def settle(self, envelope: Envelope, settle: Callable[[BlockingChannel, int], None]) -> None:
        if not self._release_hold(envelope):
            return
        try:
            settle(self.connection.channel("consume"), envelope.handle[1])
        except OPERATION_ERRORS as exc:
            # Unsettled means redelivered, and the dispatcher skips what it logged.
            log.warning(
                "RabbitMQ connection lost (%s) before message %s was settled; it will be redelivered",
                describe(exc),
                envelope.message_id,
            )
            self.connection.drop()

    def ack_many(self, envelopes: Sequence[Envelope]) -> None:
        """Acknowledge a batch with as few frames as the channel allows: one ``multiple``
        ack up to the highest tag below which nothing else is unacknowledged, then one
        ack per remaining tag."""
        tags = [e.handle[1] for e in envelopes if self._release_hold(e)]
        if not tags:
            return
        unsettled = [tag for generation, tag in self._held if generation == self.connection.generation]
        unsettled += [e.handle[1] for e in self._buffer]
        upto, rest = multiple_ack_split(tags, unsettled)
        try:
            channel = self.connection.channel("consume")
            if upto is not None:
                channel.basic_ack(upto, multiple=True)
            for tag in rest:
                channel.basic_ack(tag)
        except OPERATION_ERRORS as exc:
            # Unsettled means redelivered, and the dispatcher skips what it logged.
            log.warning(
                "RabbitMQ connection lost (%s) before %d message(s) were settled; they will be redelivered",
                describe(exc),
                len(tags),
            )
            self.connection.drop()

    def keep_alive(self) -> None:
        """Answer heartbeats, so a slow subscriber does not cost the connection."""
        if self.connection.is_open:
            try:
                self.connection.process_events(0)
            except CONNECTION_ERRORS as exc:
                log.warning("RabbitMQ connection lost (%s)", describe(exc))
                self.connection.drop()

    def in_flight(self, kinds: Iterable[str] = KINDS) -> int:
        """Delivered to this process and not settled: buffered or handed out."""
        kinds = set(kinds)
        return sum(1 for e in self._buffer if e.kind in kinds) + sum(1 for k in self._held.values() if k in kinds)


__all__ = ["Consumption", "multiple_ack_split"]
