"""Working one received message to its `Settlement`: decode, resolve, fan out, attempt.

Runs on the consumer's event loop. Attempts wait for a slot of the
per-subscription cap and then of the shared window, so one hanging receiver
holds at most its cap, never the whole window. Whatever a message contains, the
result is a settlement (delivered, parked with the reason, dropped): an
unexpected exception parks that message and never reaches the loop. Only
infrastructure failures (the store or the broker gone) propagate, and stop
the consumer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from ..envelopes import CLOUDEVENTS, is_cloudevent
from ..errors import AeError, DatabaseUnavailable
from ..messages import RetryMessage, TriggerMessage
from ..queues.base import RETRY, TRIGGER, Envelope
from ..states import DeliveryState
from ..store import PendingDelivery, Subscription
from .attempts import Attempter, Delivery, NotStarted, Work, describe
from .decisions import (
    Settlement,
    body_of,
    delivery_uuid,
    encode_payload,
    follow_up,
    is_superseded,
    message_generation,
    ownership_problem,
    retry_problem,
    serialize_body,
)
from .faults import INFRASTRUCTURE
from .io import IoThread
from .lanes import Lanes
from .options import Backends, ConsumerOptions
from .services import ServiceRunner
from .shaping import EventBodies, split_wanted
from .subscriptions import SubscriptionCache

log = logging.getLogger("asyncevents_cli")


class Handler:
    """Store reads go through the consumer's I/O thread (`io`), which owns the store's connection."""

    def __init__(
        self,
        backends: Backends,
        options: ConsumerOptions,
        lanes: Lanes,
        io: IoThread,
        detach: Callable[[Awaitable[Settlement], PendingDelivery], None],
    ) -> None:
        config, store = backends.config, backends.store
        self.config = config
        self.store = store
        self.queue = backends.queue
        self.notifiers = backends.notifiers
        self.policy = config.retry_policy
        self.now = options.now
        self.io = io
        self.subscriptions = SubscriptionCache(store, io)
        self.lanes = lanes
        self.services = ServiceRunner(config)
        #: set when the consumer stops taking messages: work not yet begun is given back
        self.stopping = False
        self.attempter = Attempter(
            backends.notifiers,
            lanes,
            asyncio.Semaphore(options.concurrency),
            lambda outcome, moment, defer, held: follow_up(self.policy, outcome, moment, defer, held),
            options.now,
            detach,
            lambda: self.stopping,
            config.settings.retry_after_max_seconds,
            lambda subscription_id, rate, want: io.call(
                store.take_rate_tokens, subscription_id, rate, want, datetime.now(UTC)
            ),
        )

    async def handle(self, work: Work) -> Settlement:
        envelope = work.envelope
        assert envelope is not None  # a message's work; the store's deliveries go to `handle_pending`
        try:
            if envelope.kind == TRIGGER:
                return await self._trigger(work, envelope)
            if envelope.kind == RETRY:
                return await self._retry(work, envelope)
            return Settlement(envelope, park=f"unknown message kind {envelope.kind!r}")
        except NotStarted:
            return Settlement(envelope, release=True)
        except DatabaseUnavailable as exc:
            if work.started:
                raise
            # Its store reads come before any attempt: give it back, to be taken again
            # once the connection is back (the consumer's queue calls wait for that).
            log.warning("giving back %s message %s: %s", envelope.kind, envelope.message_id, exc.message)
            return Settlement(envelope, release=True)
        except INFRASTRUCTURE:
            raise
        except Exception as exc:  # anything a message can provoke parks that message only
            reason = f"unexpected error: {describe(exc)}"
            log.warning("dead-lettering %s message %s: %s", envelope.kind, envelope.message_id, reason)
            return Settlement(envelope, park=reason)

    async def handle_pending(self, row: PendingDelivery, probe: bool) -> Settlement:
        """A delivery taken from the store (`pending_deliveries`); a probe tests an open circuit."""
        try:
            if await self.io.call(self._delivered_already, row):
                log.info("kept delivery %s was delivered already: not attempted again", row.uuid)
                return Settlement(None, finished=[row.uuid])
            subscription = await self.subscriptions.by_id(row.subscription_id)
            body = b""
            if subscription is not None:
                data = body_of(row.content)  # kept rows carry content as ae encoded it
                body = await self._later_body(subscription, row.uuid, row.content, row.event_name, data)
            return await self.attempter.pending(Work(None), row, subscription, probe, body)
        except INFRASTRUCTURE:
            raise
        except Exception as exc:  # it stays in the store; its lease lapses and it is tried again
            log.warning("could not attempt kept delivery %s: %s", row.uuid, describe(exc))
            return Settlement(None)

    def _delivered_already(self, row: PendingDelivery) -> bool:
        """Whether the kept delivery's chain has succeeded already (in its generation or a later
        one): a row kept again after its attempt was logged, e.g. a detached delivery's lease
        written by its message's settle after the attempt's own settle had finished it."""
        chain = self.store.delivery(row.uuid)
        return (
            chain is not None
            and chain["state"] == DeliveryState.DELIVERED
            and int(chain["generation"] or 0) >= row.generation
        )

    def _park(self, envelope: Envelope, reason: str) -> Settlement:
        log.warning("dead-lettering %s message %s: %s", envelope.kind, envelope.message_id, reason)
        return Settlement(envelope, park=reason)

    # -- trigger ---------------------------------------------------------

    async def _trigger(self, work: Work, envelope: Envelope) -> Settlement:
        try:
            message = TriggerMessage.decode(envelope.body)
            payload = await self.services.payload(message)
            content = encode_payload(payload)
        except AeError as exc:  # malformed, undefined event, or the service failed
            return self._park(envelope, exc.message)
        except ValueError as exc:  # NaN or Infinity: not JSON a receiver could read
            return self._park(envelope, f"payload is not valid JSON: {exc}")
        subscriptions = await self.subscriptions.for_event(message.event_name, message.store_id)
        subscriptions, filtered = split_wanted(subscriptions, payload)
        if not envelope.first_delivery and envelope.message_id:
            # Taken before: its attempts that were logged are not made again.
            subscriptions = await self.io.call(self._not_attempted, envelope.message_id, subscriptions)
        bodies = EventBodies(content, message.event_name, self.config.settings.cloudevents_source, self.now())
        deliveries = []
        for s in subscriptions:
            uuid = delivery_uuid(envelope.message_id, s.subscription_id)
            deliveries.append(Delivery(s, uuid, 0, content, bodies.for_subscription(s, uuid), 0, envelope.message_id))
        settlement = await self.attempter.fan_out(work, deliveries)
        settlement.filtered = filtered
        return settlement

    def _not_attempted(self, message_id: str, subscriptions: list[Subscription]) -> list[Subscription]:
        """Those not attempted yet, nor kept in the store (detached) by the copy taken before."""
        kept = self.store.pending_uuids([delivery_uuid(message_id, s.subscription_id) for s in subscriptions])
        return [
            s
            for s in subscriptions
            if delivery_uuid(message_id, s.subscription_id) not in kept
            and not self.store.already_attempted(message_id, s.subscription_id)
        ]

    # -- retry -----------------------------------------------------------

    async def _retry(self, work: Work, envelope: Envelope) -> Settlement:
        try:
            message = RetryMessage.decode(envelope.body)
        except AeError as exc:
            return self._park(envelope, exc.message)
        problem = retry_problem(message)
        if problem:
            return self._park(envelope, problem)
        chain = await self.io.call(self.store.delivery, message.uuid)
        for wait in self.queue.overtaken_store_waits:  # the retry may be ahead of the write that placed it
            if ownership_problem(message, chain) is None:
                break
            await asyncio.sleep(wait)
            chain = await self.io.call(self.store.delivery, message.uuid)
        problem = ownership_problem(message, chain)
        if problem or chain is None:
            return self._park(envelope, problem or "")
        generation = message_generation(envelope)
        if is_superseded(generation, chain):
            log.info("dropping retry of %s: a replay superseded it", message.uuid)
            return Settlement(envelope)
        try:
            payload = json.loads(message.content)
        except ValueError as exc:
            return self._park(envelope, f"retry content is not valid JSON: {exc}")
        subscription = await self.subscriptions.by_id(message.subscription_id)
        if subscription is None or not subscription.enabled:
            # Only still-enabled subscriptions are retried: the chain stops here.
            return Settlement(
                envelope,
                stopped=(message.uuid, message.subscription_id, chain["event_name"], message.death_count, generation),
            )
        if (
            not envelope.first_delivery
            and envelope.message_id
            and await self.io.call(self.store.already_attempted, envelope.message_id, subscription.subscription_id)
        ):
            return Settlement(envelope)  # its attempt is logged; only the ack was lost
        data = serialize_body(payload)
        body = await self._later_body(subscription, message.uuid, message.content, chain["event_name"], data)
        delivery = Delivery(
            subscription, message.uuid, message.death_count, message.content, body, generation, envelope.message_id
        )
        return await self.attempter.fan_out(work, [delivery])

    async def _later_body(self, subscription: Subscription, uuid: str, content: str, event: str, data: bytes) -> bytes:
        """The body a retry or a kept delivery sends: a CloudEvent as its chain's first attempt
        sent it (same `time`, same bytes signed), else `data` (the module's body)."""
        if subscription.body_format == CLOUDEVENTS:
            first = await self.io.call(self.store.first_body, uuid)
            if is_cloudevent(first):
                return str(first).encode()
            bodies = EventBodies(content, event, self.config.settings.cloudevents_source, self.now())
            return bodies.for_subscription(subscription, uuid)
        return data
