"""The RabbitMQ backend (``settings.queue = "amqp"``), speaking the module's formats.

Names and arguments of exchanges and queues are in `amqp_topology`; triggers
go to the topic exchange ``event`` (this project's choice of name), retries and
dead letters to ``event.failover``.

Publishing. Every message is persistent and carries a fresh ``message_id``
(the dispatcher de-duplicates redeliveries by it). A batch of triggers is
published in one AMQP transaction, so it is all-or-nothing; ``tx.commit-ok``
comes only once the broker has stored the messages. A channel cannot be in
transaction and confirm mode at once, so single messages (one trigger,
retries, dead letters) go through a second channel with publisher confirms. Both publish
with ``mandatory``: a queue deleted since its declare returns the message,
which is re-declared and published again.

Stores. Messages carry the identity of the store they belong to (header
``x-ae-store``): retries and dead letters always, triggers once the store has
an identity (made when its first consumer starts), so a host that only
publishes stays an anonymous client like Magento. A consumer that receives another store's
message puts it back and stops: two stores on one vhost would deliver each
other's retries to the wrong subscriptions and split each other's triggers.
Messages without the header are served as before.

Consuming. One channel with a prefetch limit consumes ``event.trigger``
and/or ``event.failover.retry``; deliveries land in a local buffer that
`receive` hands out, and they are acknowledged only in `ack`. A lost
connection is re-opened with back-off on the next call; what was unacknowledged
is requeued by the broker, and envelopes from the old connection are stale:
their `ack` is a no-op, the copy that comes back is recognised by the
dispatcher through its ``message_id``.

Connecting is lazy but fails fast: one attempt, a few seconds of timeout, and
every pika or socket error leaves this module as `QueueUnavailable`.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from ..backoff import RetryPolicy
from ..errors import AeError, ConfigError, QueueUnavailable
from ..messages import RetryMessage, TriggerMessage
from ..redaction import redact_url
from ..store import Store
from .amqp_topology import (
    FAILOVER_EXCHANGE,
    KILL_ROUTING_KEY,
    RETRY_ROUTING_KEY,
    STORE_HEADER,
    TRIGGER_EXCHANGE,
    TRIGGER_ROUTING_KEY,
    declare_delay_queue,
    declare_static,
    delay_queue,
    delay_queues,
)
from .base import (
    DEADLETTER_QUEUE,
    KINDS,
    QUEUE_FOR_KIND,
    RETRY,
    RETRY_QUEUE,
    TRIGGER,
    TRIGGER_QUEUE,
    DeadLetter,
    Envelope,
    Queue,
    QueueDepths,
)

log = logging.getLogger("asyncevents_cli")
T = TypeVar("T")
#: Set on triggers the outbox relay forwards (see `forward_triggers`).
RELAYED_HEADER = "x-ae-relayed"


class _MissingDelayQueueFilter(logging.Filter):
    """Counting does passive declares, and a delay queue not declared yet answers 404.
    That is expected, so pika's warning for it ("NOT_FOUND - no queue 'event.delay.4'")
    is dropped rather than shown on every `ae status` or `--until-empty` check."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "NOT_FOUND - no queue 'event." not in record.getMessage()


logging.getLogger("pika.channel").addFilter(_MissingDelayQueueFilter())

#: What `Store.identity` makes; any other header value is not a store's and is ignored.
STORE_IDENTITY = re.compile(r"[0-9a-f]{32}")

#: Errors that mean the connection is gone (or was never there).
CONNECTION_ERRORS = (pika.exceptions.AMQPConnectionError, OSError)
NOT_FOUND = 404
PUBLISH_ATTEMPTS = 3

# Defaults applied unless the URL's query string sets them: fail fast.
URL_DEFAULTS = {
    "connection_attempts": 1,
    "socket_timeout": 3.0,
    "stack_timeout": 5.0,
    "blocked_connection_timeout": 10.0,
}


def describe(exc: BaseException) -> str:
    """A one-line reason for a pika/socket error (pika often wraps the real one)."""
    inner = exc
    while True:
        nested = getattr(inner, "exception", None)  # pika's connector errors keep it here
        if not isinstance(nested, BaseException) and inner.args and isinstance(inner.args[0], BaseException):
            nested = inner.args[0]
        if not isinstance(nested, BaseException):
            break
        inner = nested
    text = str(inner).strip() or repr(inner)
    return f"{inner.__class__.__name__}: {text}"


def connection_parameters(url: str) -> pika.URLParameters:
    try:
        params = pika.URLParameters(url)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"amqp_url {redact_url(url, keep_user=True)!r} is not a valid AMQP URL: {exc}") from None
    given = parse_qs(urlsplit(url).query)
    for name, value in URL_DEFAULTS.items():
        if name not in given:
            setattr(params, name, value)
    return params


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
        store: Callable[[], Store | None] | None = None,
    ) -> None:
        self.url = url
        self.shown_url = redact_url(url, keep_user=True)  # the URL as messages may print it
        self.policy = policy or RetryPolicy()
        self.prefetch = prefetch
        #: how long to keep re-connecting after an established connection is lost
        self.reconnect_seconds = reconnect_seconds
        self._params = connection_parameters(url)
        self._conn: BlockingConnection | None = None
        self._consume_ch: BlockingChannel | None = None
        self._confirm_ch: BlockingChannel | None = None
        self._tx_ch: BlockingChannel | None = None
        self._side_ch: BlockingChannel | None = None  # declares that may fail: 404/406 close it
        self._generation = 0  # bumped per connection; envelope handles carry it
        self._connected_once = False
        self._consumers: dict[str, str] = {}  # kind -> consumer tag
        self._buffer: deque[Envelope] = deque()  # delivered, not yet handed out
        self._held: dict[tuple[int, int], str] = {}  # handed out, not settled -> kind
        self._returned: list[Any] = []  # basic.return on the transaction channel
        self._declared: set[str] = set()  # delay queues declared on this connection
        #: the store this queue serves, when there is one (None: a host that only publishes)
        self._store = store or (lambda: None)
        self._identity: str | None = None
        self._recorded: set[str] = set()  # delay queues the store knows about

    # -- connection ------------------------------------------------------

    def _unavailable(self, exc: BaseException) -> QueueUnavailable:
        return QueueUnavailable(
            f"cannot reach RabbitMQ at {self.shown_url}: {describe(exc)}",
            hint="check that the broker runs and amqp_url / AE_AMQP_URL point at it",
        )

    def _open(self) -> None:
        """Connect once, open the channels and declare the fixed topology."""
        conn = BlockingConnection(self._params)
        try:
            self._conn = conn
            self._generation += 1
            self._consume_ch = conn.channel()
            self._consume_ch.basic_qos(prefetch_count=self.prefetch)
            self._confirm_ch = conn.channel()
            self._confirm_ch.confirm_delivery()
            self._tx_ch = conn.channel()
            self._tx_ch.tx_select()
            self._tx_ch.add_on_return_callback(lambda _ch, _m, props, body: self._returned.append((props, body)))
            self._declare_topology()
        except BaseException:
            self._drop()
            raise
        self._connected_once = True

    def _declare_topology(self) -> None:
        try:
            declare_static(self._channel("_confirm_ch"))
        except pika.exceptions.ChannelClosedByBroker as exc:
            self._drop()
            raise AeError(
                f"RabbitMQ at {self.shown_url} refused the event exchanges/queues: {exc.reply_text}",
                hint="an exchange or queue of the same name exists with other settings",
            ) from None

    def _drop(self) -> None:
        """Forget the connection; the broker requeues whatever was unacknowledged."""
        conn, self._conn = self._conn, None
        self._consume_ch = self._confirm_ch = self._tx_ch = self._side_ch = None
        self._declared.clear()
        self._consumers.clear()
        self._buffer.clear()
        self._held.clear()
        if conn is not None and conn.is_open:
            with contextlib.suppress(Exception):  # already broken: nothing more to release
                conn.close()

    def _channel(self, attr: str) -> BlockingChannel:
        ch = getattr(self, attr)
        if ch is None or not ch.is_open:
            raise pika.exceptions.ConnectionWrongStateError(f"channel {attr} is closed")
        return ch

    def _side(self) -> BlockingChannel:
        """A channel for declares that may be refused (404, 406) without harm elsewhere."""
        if self._side_ch is None or not self._side_ch.is_open:
            assert self._conn is not None
            self._side_ch = self._conn.channel()
        return self._side_ch

    def _run(self, operation: Callable[[], T]) -> T:
        """Run `operation` on an open connection, re-connecting with back-off after a loss.

        The first connection of this object is tried once (fail fast); once one
        has worked, a lost connection is retried for `reconnect_seconds`.
        """
        deadline: float | None = None
        delay = 0.1
        while True:
            try:
                if self._conn is None or not self._conn.is_open:
                    self._drop()
                    self._open()
                return operation()
            except (*CONNECTION_ERRORS, pika.exceptions.AMQPChannelError) as exc:
                lost = isinstance(exc, CONNECTION_ERRORS) or self._conn is None or not self._conn.is_open
                self._drop()
                if not lost:  # the broker refused this operation; retrying would not help
                    raise AeError(f"RabbitMQ at {self.shown_url} refused an operation: {describe(exc)}") from None
                if not self._connected_once:
                    raise self._unavailable(exc) from None
                now = time.monotonic()
                deadline = deadline or now + self.reconnect_seconds
                if now + delay > deadline:
                    raise self._unavailable(exc) from None
                log.warning("RabbitMQ connection lost (%s); reconnecting in %.1fs", describe(exc), delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- the store behind this queue ------------------------------------

    def store_identity(self, create: bool) -> str | None:
        """The identity of this queue's store; made on first need when `create`."""
        if self._identity is None:
            store = self._store()
            self._identity = store.identity(create=create) if store is not None else None
        return self._identity

    def _record_delay_queue(self, name: str) -> None:
        """Write a delay queue into the store before a retry waits there, so status finds it later."""
        if name not in self._recorded:
            store = self._store()
            if store is not None:
                store.record_delay_queue(name)
            self._recorded.add(name)

    def _delay_queue_names(self) -> list[str]:
        """Where a retry may be waiting: the policy's delay queues, and any used under earlier settings."""
        names = dict.fromkeys(q.name for q in delay_queues(self.policy))
        store = self._store()
        names.update(dict.fromkeys([*self._recorded, *(store.delay_queue_names() if store else [])]))
        return list(names)

    def check_owner(self, envelope: Envelope) -> None:
        """Refuse another store's message: back to its queue untouched, and stop.

        Call where a delivery is handed out, before anything acts on it."""
        owner = envelope.headers.get(STORE_HEADER)
        if isinstance(owner, bytes):
            owner = owner.decode("utf-8", "replace")
        if not isinstance(owner, str) or not STORE_IDENTITY.fullmatch(owner):
            return  # no identity (Magento, a plain client), or not one a store made: served as ever
        mine = self.store_identity(create=True)
        if mine is None or owner == mine:
            return
        try:
            self._channel("_consume_ch").basic_nack(envelope.handle[1], requeue=True)
        except (*CONNECTION_ERRORS, pika.exceptions.AMQPChannelError):
            pass  # the connection is gone, and with it the broker requeued the message
        self._held.pop(envelope.handle, None)
        raise AeError(
            f"message {envelope.message_id} on {QUEUE_FOR_KIND[envelope.kind]} belongs to another ae store"
            f" ({owner}), not to this one ({mine}): two stores share the queues of {self.shown_url};"
            " the message was put back for its own store",
            hint="give each store a vhost of its own in amqp_url, or run every consumer on one shared store"
            " (settings.database = postgresql://..., which consumers on every host can share)",
        )

    # -- publishing ------------------------------------------------------

    def _properties(
        self, message_id: str, headers: dict[str, Any] | None = None, owner: str | None = None
    ) -> pika.BasicProperties:
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

    def publish_triggers(
        self, messages: Sequence[TriggerMessage], progress: Callable[[int], None] | None = None
    ) -> list[str]:
        ids = self._publish_triggers(messages)
        if progress:
            progress(len(ids))  # nothing is published until the broker has them all
        return ids

    def _publish_triggers(self, messages: Sequence[TriggerMessage]) -> list[str]:
        # Encode everything first: a message that cannot be encoded publishes nothing.
        bodies = [m.encode() for m in messages]
        return self._publish_trigger_bodies([uuid.uuid4().hex for _ in bodies], bodies)

    def forward_triggers(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Publish outbox rows under their own message ids, marked as relayed: the relay may
        have sent one before and died before it could record that, so a consumer looks up
        what was already attempted for such a message even on its first delivery."""
        if items:
            ids, bodies = zip(*items, strict=True)
            self._publish_trigger_bodies(list(ids), list(bodies), {RELAYED_HEADER: 1})

    def _publish_trigger_bodies(
        self, ids: list[str], bodies: list[bytes], headers: dict[str, Any] | None = None
    ) -> list[str]:
        if not bodies:
            return []
        owner = self.store_identity(create=False)
        if len(bodies) == 1:
            # One message is all-or-nothing by itself: publisher confirms, as the module.
            tries: list[None] = []

            def redeclare_on_retry() -> None:  # the topology was declared on connect
                if tries:
                    self._declare_topology()
                tries.append(None)

            return [
                self._publish_confirmed(
                    TRIGGER_ROUTING_KEY,
                    bodies[0],
                    headers,
                    redeclare_on_retry,
                    exchange=TRIGGER_EXCHANGE,
                    message_id=ids[0],
                    owner=owner,
                )
            ]

        def publish() -> list[str]:
            pending = list(zip(ids, bodies))
            for _ in range(PUBLISH_ATTEMPTS):
                ch = self._channel("_tx_ch")
                self._returned.clear()
                for message_id, body in pending:
                    ch.basic_publish(
                        TRIGGER_EXCHANGE,
                        TRIGGER_ROUTING_KEY,
                        body,
                        self._properties(message_id, headers, owner=owner),
                        mandatory=True,
                    )
                ch.tx_commit()
                # Returns precede commit-ok on the wire; this dispatches them.
                assert self._conn is not None
                self._conn.process_data_events(0)
                returned = {props.message_id for props, _ in self._returned}
                if not returned:
                    return ids
                log.warning("%d trigger(s) unroutable; re-declaring %s", len(returned), TRIGGER_QUEUE)
                self._declare_topology()
                pending = [(i, b) for i, b in pending if i in returned]
            raise AeError(f"RabbitMQ kept returning triggers as unroutable to {TRIGGER_QUEUE}")

        return self._run(publish)

    def _publish_confirmed(
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
            owner = self.store_identity(create=True)

        def publish() -> str:
            for _ in range(PUBLISH_ATTEMPTS):
                prepare()
                try:
                    self._channel("_confirm_ch").basic_publish(
                        exchange, routing_key, body, self._properties(message_id, headers, owner), mandatory=True
                    )
                    return message_id
                except pika.exceptions.UnroutableError:
                    log.info("message for %s was unroutable (queue deleted?); re-declaring", routing_key)
                    self._declared.clear()
                except pika.exceptions.NackError:
                    log.warning("broker refused a message for %s; publishing again", routing_key)
            raise AeError(f"RabbitMQ could not route a message with key {routing_key!r}")

        return self._run(publish)

    def publish_retry(self, message: RetryMessage, delay_seconds: float, generation: int = 0) -> str:
        """Send a retry through the delay queue its death count calls for.

        The delay comes from the policy (the module's queue per back-off value);
        `delay_seconds` only decides between "after the back-off" and "now" (<= 0).
        """
        target = delay_queue(self.policy, message.death_count) if delay_seconds > 0 else None
        headers = {"x-retry-count": message.death_count, "x-ae-generation": generation}
        if target is None:
            return self._publish_confirmed(RETRY_ROUTING_KEY, message.encode(), headers, lambda: None)
        self._record_delay_queue(target.name)

        def declare() -> None:  # once per connection: delay queues do not expire
            if target.name not in self._declared:
                declare_delay_queue(self._side, target)
                self._declared.add(target.name)

        return self._publish_confirmed(target.routing_key, message.encode(), headers, declare)

    def dead_letter(self, body: bytes, reason: str, kind: str = RETRY) -> str:
        headers = {"x-death-reason": reason, "x-origin": kind}
        return self._publish_confirmed(KILL_ROUTING_KEY, body, headers, lambda: None)

    # -- consuming -------------------------------------------------------

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
        ch = self._channel("_consume_ch")
        for kind in [k for k in self._consumers if k not in kinds]:
            ch.basic_cancel(self._consumers.pop(kind))
            for envelope in [e for e in self._buffer if e.kind == kind]:
                self._buffer.remove(envelope)
                ch.basic_nack(envelope.handle[1], requeue=True)
        for kind in kinds:
            if kind not in self._consumers:
                self._consumers[kind] = ch.basic_consume(
                    QUEUE_FOR_KIND[kind], self._on_delivery(kind, self._generation)
                )

    def receive(self, kinds: Iterable[str], timeout: float) -> Envelope | None:
        wanted = tuple(k for k in KINDS if k in set(kinds))
        deadline = time.monotonic() + max(0.0, timeout)
        self.store_identity(create=True)  # a store that consumes has an identity for its triggers too

        def take() -> Envelope | None:
            self._consume(wanted)
            assert self._conn is not None
            looked = False
            while True:
                if self._buffer:
                    envelope = self._buffer.popleft()
                    self._held[envelope.handle] = envelope.kind
                    self.check_owner(envelope)
                    return envelope
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if looked:
                        return None
                    # Deliveries reach the buffer only while pika processes events: take
                    # what has arrived already, even when not waiting at all.
                    remaining = 0.0
                looked = True
                self._conn.process_data_events(time_limit=min(remaining, 1.0))

        return self._run(take)

    def receive_many(self, kinds: Iterable[str], limit: int, timeout: float) -> list[Envelope]:
        """What the prefetch buffer holds, up to `limit` (waiting up to `timeout` s for one)."""
        first = self.receive(kinds, timeout)
        if first is None:
            return []
        taken = [first]
        wanted = {first.kind} | set(kinds)
        while len(taken) < limit and self._buffer and self._buffer[0].kind in wanted:
            envelope = self._buffer.popleft()
            self._held[envelope.handle] = envelope.kind
            self.check_owner(envelope)  # raising, it leaves those taken unsettled: the broker requeues them
            taken.append(envelope)
        return taken

    def reserve(self, count: int) -> None:
        """Prefetch at least what the consumer holds, so its window never waits on the broker."""
        if count <= self.prefetch:
            return
        self.prefetch = count
        if self._consume_ch is not None and self._consume_ch.is_open:
            self._run(lambda: self._channel("_consume_ch").basic_qos(prefetch_count=count))

    def _settle(self, envelope: Envelope, settle: Callable[[BlockingChannel, int], None]) -> None:
        generation, tag = envelope.handle
        if self._held.pop(envelope.handle, None) is None or generation != self._generation:
            # From a connection that is gone: the broker has requeued it already.
            log.info("not settling message %s: its connection was lost", envelope.message_id)
            return
        try:
            settle(self._channel("_consume_ch"), tag)
        except (*CONNECTION_ERRORS, pika.exceptions.AMQPChannelError) as exc:
            # Unsettled means redelivered, and the dispatcher skips what it logged.
            log.warning(
                "RabbitMQ connection lost (%s) before message %s was settled; it will be redelivered",
                describe(exc),
                envelope.message_id,
            )
            self._drop()

    def ack(self, envelope: Envelope) -> None:
        self._settle(envelope, lambda ch, tag: ch.basic_ack(tag))

    def ack_many(self, envelopes: Sequence[Envelope]) -> None:
        """Acknowledge a batch with as few frames as the channel allows: one ``multiple``
        ack up to the highest tag below which nothing else is unacknowledged, then one
        ack per remaining tag."""
        tags: list[int] = []
        for envelope in envelopes:
            if self._held.pop(envelope.handle, None) is None or envelope.handle[0] != self._generation:
                log.info("not settling message %s: its connection was lost", envelope.message_id)
            else:
                tags.append(envelope.handle[1])
        if not tags:
            return
        tags.sort()
        unsettled = [tag for generation, tag in self._held if generation == self._generation]
        unsettled += [e.handle[1] for e in self._buffer]
        below = min(unsettled, default=tags[-1] + 1)  # nothing unsettled below this tag but ours
        upto = [tag for tag in tags if tag < below]
        rest = tags[len(upto) :]
        try:
            channel = self._channel("_consume_ch")
            if upto:
                channel.basic_ack(upto[-1], multiple=True)
            for tag in rest:
                channel.basic_ack(tag)
        except (*CONNECTION_ERRORS, pika.exceptions.AMQPChannelError) as exc:
            # Unsettled means redelivered, and the dispatcher skips what it logged.
            log.warning(
                "RabbitMQ connection lost (%s) before %d message(s) were settled; they will be redelivered",
                describe(exc),
                len(tags),
            )
            self._drop()

    def release(self, envelope: Envelope) -> None:
        self._settle(envelope, lambda ch, tag: ch.basic_nack(tag, requeue=True))

    def extend(self, envelope: Envelope) -> None:
        """No lease to renew; answer heartbeats so a slow subscriber does not cost the connection."""
        if self._conn is not None and self._conn.is_open:
            try:
                self._conn.process_data_events(0)
            except CONNECTION_ERRORS as exc:
                log.warning("RabbitMQ connection lost (%s)", describe(exc))
                self._drop()

    # -- inspection ------------------------------------------------------

    def _count(self, queue: str) -> int:
        """Ready messages in `queue`; 0 when it does not exist (a delay queue not used yet)."""
        try:
            frame = self._side().queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == NOT_FOUND:
                return 0
            raise
        return int(frame.method.message_count)

    def _in_flight(self, kinds: Iterable[str] = KINDS) -> int:
        kinds = set(kinds)
        return sum(1 for e in self._buffer if e.kind in kinds) + sum(1 for k in self._held.values() if k in kinds)

    def depths(self) -> QueueDepths:
        def count() -> QueueDepths:
            return QueueDepths(
                trigger=self._count(TRIGGER_QUEUE),
                retry_due=self._count(RETRY_QUEUE),
                retry_delayed=sum(self._count(name) for name in self._delay_queue_names()),
                dead_letters=self._count(DEADLETTER_QUEUE),
                in_flight=self._in_flight(),
            )

        return self._run(count)

    def peek_dead_letters(self, limit: int) -> list[DeadLetter]:
        """Read parked messages on a channel of their own, acknowledging none: closing
        the channel puts every one back where it was."""

        def peek() -> list[DeadLetter]:
            assert self._conn is not None
            channel = self._conn.channel()
            letters: list[DeadLetter] = []
            try:
                while len(letters) < limit:
                    method, props, body = channel.basic_get(DEADLETTER_QUEUE, auto_ack=False)
                    if method is None:
                        break
                    headers = dict(props.headers or {})
                    letters.append(
                        DeadLetter(
                            props.message_id or None,
                            str(headers.get("x-origin", RETRY)),
                            str(headers.get("x-death-reason", "")),
                            body,
                            float(props.timestamp) if props.timestamp else None,
                        )
                    )
            finally:
                if channel.is_open:
                    channel.close()
            return letters

        return self._run(peek)

    def _sweep_dead_letters(self, take: Callable[[Any, bytes], bool]) -> int:
        """Read every parked message on a channel of its own; acknowledge (remove) those
        `take(props, body)` accepts. Closing the channel puts the others back."""

        def sweep() -> int:
            assert self._conn is not None
            channel = self._conn.channel()
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

        return self._run(sweep)

    def purge_dead_letters(self, before: float | None = None) -> int:
        if before is None:
            return self._run(lambda: int(self._side().queue_purge(DEADLETTER_QUEUE).method.message_count))
        return self._sweep_dead_letters(lambda props, _body: bool(props.timestamp) and props.timestamp < before)

    def requeue_dead_triggers(self) -> list[str]:
        """Each parked trigger is published again (confirmed) before its parked copy is
        removed: a crash in between leaves both, never neither."""
        ids: list[str] = []
        owner = self.store_identity(create=False)

        def requeue(props: Any, body: bytes) -> bool:
            if str(dict(props.headers or {}).get("x-origin", RETRY)) != TRIGGER:
                return False
            ids.append(
                self._publish_confirmed(
                    TRIGGER_ROUTING_KEY, body, None, lambda: None, exchange=TRIGGER_EXCHANGE, owner=owner
                )
            )
            return True

        self._sweep_dead_letters(requeue)
        return ids

    def is_empty(self, kinds: Iterable[str]) -> bool:
        wanted = set(kinds)

        def check() -> bool:
            assert self._conn is not None
            self._conn.process_data_events(0)
            # Delay queues before the retry queue: a message moving from one to
            # the other is then seen in one of them.
            if RETRY in wanted and any(self._count(name) for name in self._delay_queue_names()):
                return False
            if any(self._count(QUEUE_FOR_KIND[k]) for k in wanted):
                return False
            self._conn.process_data_events(0)  # deliveries already on their way to us
            return self._in_flight(wanted) == 0

        return self._run(check)

    def close(self) -> None:
        self._drop()


__all__ = ["AmqpQueue", "DEADLETTER_QUEUE"]
