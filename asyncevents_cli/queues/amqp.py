"""The RabbitMQ backend (``settings.queue = "amqp"``), speaking the module's formats.

`AmqpQueue` puts together one module per job:

- `amqp_connection`   the connection and its channels, reconnects with back-off
- `amqp_publish`      publishing: a batch of triggers in one AMQP transaction,
                      single messages with publisher confirms
- `amqp_consume`      consuming, the prefetch buffer, and multiple-ack arithmetic
- `amqp_dead_letters` reading, purging and requeueing parked messages
- `amqp_ownership`    which store a message belongs to (header ``x-ae-store``),
                      and what the broker keeps in that store
- `amqp_topology`     names and arguments of exchanges and queues

Triggers go to the topic exchange ``event`` (this project's choice of name),
retries and dead letters to ``event.failover``. The store is reached only through
the `StoreLedger` the queue is given (`store=`), never opened here.

Settling follows `Queue.settle`: follow-ups are published (and confirmed) first,
then the store commits, then the messages are acknowledged.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence

import pika.exceptions

from ..backoff import RetryPolicy
from ..messages import RetryMessage, TriggerMessage
from .amqp_connection import Connection
from .amqp_consume import Consumption
from .amqp_dead_letters import DeadLetters
from .amqp_ownership import Ownership
from .amqp_publish import Publisher
from .base import (
    DEADLETTER_QUEUE,
    KINDS,
    QUEUE_FOR_KIND,
    RETRY,
    RETRY_QUEUE,
    TRIGGER_QUEUE,
    DeadLetter,
    Envelope,
    FollowUps,
    Queue,
    QueueDepths,
    Runner,
    StoreLedger,
    run_once,
)
from .headers import RELAYED_HEADER

NOT_FOUND = 404


class AmqpQueue(Queue):
    #: A retry is published before the store write that placed it commits (see
    #: `Queue.settle`): a consumer may be handed it a moment before that write is
    #: visible, so it looks again once after a second before parking it.
    overtaken_store_waits = (1.0,)

    def __init__(
        self,
        url: str,
        policy: RetryPolicy | None = None,
        prefetch: int = 10,
        reconnect_seconds: float = 60.0,
        store: Callable[[], StoreLedger | None] | None = None,
    ) -> None:
        self.url = url
        self.policy = policy or RetryPolicy()
        self.connection = Connection(url, prefetch, reconnect_seconds)
        self.shown_url = self.connection.shown_url  # the URL as messages may print it
        #: the store this queue serves, when there is one (None: a host that only publishes)
        self.ownership = Ownership(store or (lambda: None), self.policy, self.shown_url)
        self.consumption = Consumption(self.connection, self.ownership.refusal)
        self.publisher = Publisher(self.connection, self.ownership, self.policy)
        self.dead_letters = DeadLetters(self.connection, self.publisher)

    @property
    def prefetch(self) -> int:
        return self.connection.prefetch

    def store_identity(self, create: bool) -> str | None:
        """The identity of this queue's store; made on first need when `create`."""
        return self.ownership.identity(create)

    # -- settling --------------------------------------------------------

    def settle(
        self, follow_ups: Sequence[FollowUps], record: Callable[[], None], envelopes: Sequence[Envelope]
    ) -> None:
        """Publish first (confirmed), then let the store commit, then acknowledge. A crash
        between the publish and the commit repeats an attempt (same uuid) rather than
        losing a retry, and a slow broker never holds the store's write lock."""
        for follow_up in follow_ups:
            follow_up.place()
            follow_up.placed = True  # on the broker now, whatever happens to the store write
        record()
        if envelopes:
            self.ack_many(envelopes)

    def settle_and_take(
        self, settle: Callable[[], None], take: Callable[[], list[Envelope]], run: Runner = run_once
    ) -> list[Envelope]:
        """Two units: once the settle has acknowledged, a take that fails must not settle again."""
        run(settle)
        return run(take)

    # -- publishing ------------------------------------------------------

    def publish_triggers(
        self, messages: Sequence[TriggerMessage], progress: Callable[[int], None] | None = None
    ) -> list[str]:
        # Encode everything first: a message that cannot be encoded publishes nothing.
        bodies = [m.encode() for m in messages]
        ids = self.publisher.triggers([uuid.uuid4().hex for _ in bodies], bodies)
        if progress:
            progress(len(ids))  # nothing is published until the broker has them all
        return ids

    def forward_triggers(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Publish outbox rows under their own message ids, marked as relayed: the relay may
        have sent one before and died before it could record that, so a consumer looks up
        what was already attempted for such a message even on its first delivery."""
        if items:
            ids, bodies = zip(*items, strict=True)
            self.publisher.triggers(list(ids), list(bodies), {RELAYED_HEADER: 1})

    def publish_retry(self, message: RetryMessage, delay_seconds: float, generation: int = 0) -> str:
        """Send a retry through the delay queue its death count calls for (see `Publisher.retry`)."""
        return self.publisher.retry(message, delay_seconds, generation)

    def dead_letter(self, body: bytes, reason: str, kind: str = RETRY) -> str:
        return self.publisher.dead_letter(body, reason, kind)

    # -- consuming -------------------------------------------------------

    def receive(self, kinds: Iterable[str], timeout: float) -> Envelope | None:
        wanted = tuple(k for k in KINDS if k in set(kinds))
        deadline = time.monotonic() + max(0.0, timeout)
        self.ownership.identity(create=True)  # a store that consumes has an identity for its triggers too
        return self.connection.run(lambda: self.consumption.take(wanted, deadline))

    def receive_many(self, kinds: Iterable[str], limit: int, timeout: float) -> list[Envelope]:
        """What the prefetch buffer holds, up to `limit` (waiting up to `timeout` s for one)."""
        first = self.receive(kinds, timeout)
        if first is None:
            return []
        return self.consumption.take_buffered(first, kinds, limit)

    def reserve(self, count: int) -> None:
        """Prefetch at least what the consumer holds, so its window never waits on the broker."""
        if count > self.connection.prefetch:
            self.connection.set_prefetch(count)

    def ack(self, envelope: Envelope) -> None:
        self.consumption.settle(envelope, lambda ch, tag: ch.basic_ack(tag))

    def ack_many(self, envelopes: Sequence[Envelope]) -> None:
        self.consumption.ack_many(envelopes)

    def release(self, envelope: Envelope) -> None:
        self.consumption.settle(envelope, lambda ch, tag: ch.basic_nack(tag, requeue=True))

    def extend(self, envelope: Envelope) -> None:
        """No lease to renew; answer heartbeats so a slow subscriber does not cost the connection."""
        self.consumption.keep_alive()

    # -- inspection ------------------------------------------------------

    def _count(self, queue: str) -> int:
        """Ready messages in `queue`; 0 when it does not exist (a delay queue not used yet)."""
        try:
            frame = self.connection.side().queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == NOT_FOUND:
                return 0
            raise
        return int(frame.method.message_count)

    def depths(self) -> QueueDepths:
        def count() -> QueueDepths:
            return QueueDepths(
                trigger=self._count(TRIGGER_QUEUE),
                retry_due=self._count(RETRY_QUEUE),
                retry_delayed=sum(self._count(name) for name in self.ownership.delay_queue_names()),
                dead_letters=self._count(DEADLETTER_QUEUE),
                in_flight=self.consumption.in_flight(),
            )

        return self.connection.run(count)

    def peek_dead_letters(self, limit: int) -> list[DeadLetter]:
        return self.dead_letters.peek(limit)

    def purge_dead_letters(self, before: float | None = None) -> int:
        return self.dead_letters.purge(before)

    def requeue_dead_triggers(self) -> list[str]:
        return self.dead_letters.requeue_triggers(self.ownership.identity(create=False))

    def is_empty(self, kinds: Iterable[str]) -> bool:
        wanted = set(kinds)

        def check() -> bool:
            self.connection.process_events(0)
            # Delay queues before the retry queue: a message moving from one to
            # the other is then seen in one of them.
            if RETRY in wanted and any(self._count(name) for name in self.ownership.delay_queue_names()):
                return False
            if any(self._count(QUEUE_FOR_KIND[k]) for k in wanted):
                return False
            self.connection.process_events(0)  # deliveries already on their way to us
            return self.consumption.in_flight(wanted) == 0

        return self.connection.run(check)

    def close(self) -> None:
        self.connection.drop()


__all__ = ["AmqpQueue"]
