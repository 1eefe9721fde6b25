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
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..config import Config
from ..envelopes import CLOUDEVENTS, is_cloudevent
from ..errors import AeError, DatabaseUnavailable, QueueUnavailable
from ..messages import RetryMessage, TriggerMessage
from ..notifiers import Notifiers, NotifyResult
from ..notifiers.base import clip
from ..queues.base import RETRY, TRIGGER, Envelope, Queue
from ..secretbox import SecretKeyError
from ..store import Store, Subscription
from .decisions import (
    Outcome,
    Settlement,
    delivery_uuid,
    encode_payload,
    follow_up,
    is_superseded,
    message_generation,
    ownership_problem,
    retry_problem,
    serialize_body,
)
from .io import IoThread
from .services import ServiceRunner
from .shaping import EventBodies, split_wanted
from .subscriptions import SubscriptionCache

log = logging.getLogger("asyncevents_cli")

#: Failures that are not one message's fault: they stop the consumer, and what it
#: holds comes back (lease expiry, broker requeue).
#: SecretKeyError too: a wrong key is the operator's to fix, not a reason to park every message.
INFRASTRUCTURE = (QueueUnavailable, DatabaseUnavailable, sqlite3.OperationalError, SecretKeyError)
#: A notifier that never answers is given up on after this long (HTTP ends at its own total timeout).
ATTEMPT_DEADLINE = 120.0
#: On a broker, a retry may arrive a moment before the store write that placed it
#: is visible to this process: look again once after this long before parking it.
OWNERSHIP_RECHECK_SECONDS = 1.0


def describe(exc: BaseException) -> str:
    """An exception as one line: its class and its message, cut short."""
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text[:300]}"


class NotStarted(Exception):
    """The consumer is stopping and this message's work had not begun: give it back."""


class Work:
    """One received message and whether any of its attempts has started."""

    __slots__ = ("envelope", "started")

    def __init__(self, envelope: Envelope) -> None:
        self.envelope = envelope
        self.started = False


class Handler:
    """Store reads go through the consumer's I/O thread (`io`), which owns the store's connection."""

    def __init__(
        self,
        config: Config,
        store: Store,
        queue: Queue,
        notifiers: Notifiers,
        concurrency: int,
        per_subscription: int,
        now: Callable[[], datetime],
        io: IoThread,
    ) -> None:
        self.config = config
        self.store = store
        self.queue = queue
        self.notifiers = notifiers
        self.policy = config.retry_policy
        self.now = now
        self.io = io
        self.subscriptions = SubscriptionCache(store, io)
        self.services = ServiceRunner(config)
        self.window = asyncio.Semaphore(concurrency)
        self.per_subscription = per_subscription
        self._caps: dict[int, asyncio.Semaphore] = {}
        #: set when the consumer stops taking messages: work not yet begun is given back
        self.stopping = False

    async def handle(self, work: Work) -> Settlement:
        envelope = work.envelope
        try:
            if envelope.kind == TRIGGER:
                return await self._trigger(work)
            if envelope.kind == RETRY:
                return await self._retry(work)
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

    def _park(self, envelope: Envelope, reason: str) -> Settlement:
        log.warning("dead-lettering %s message %s: %s", envelope.kind, envelope.message_id, reason)
        return Settlement(envelope, park=reason)

    # -- trigger ---------------------------------------------------------

    async def _trigger(self, work: Work) -> Settlement:
        envelope = work.envelope
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
        uuids = [delivery_uuid(envelope.message_id, s.subscription_id) for s in subscriptions]
        attempts = [
            self._attempt(work, s, uuid, 0, bodies.for_subscription(s, uuid), content, 0)
            for s, uuid in zip(subscriptions, uuids, strict=True)
        ]
        outcomes: list[Outcome] = []
        if len(attempts) == 1:  # the common case: no task of its own, no gather
            outcomes.append(await attempts[0])
        else:
            for result in await asyncio.gather(*attempts, return_exceptions=True):
                if isinstance(result, BaseException):
                    raise result
                outcomes.append(result)
        now = self.now()
        return Settlement(envelope, attempts=[(o, follow_up(self.policy, o, now)) for o in outcomes], filtered=filtered)

    def _not_attempted(self, message_id: str, subscriptions: list[Subscription]) -> list[Subscription]:
        return [s for s in subscriptions if not self.store.already_attempted(message_id, s.subscription_id)]

    # -- retry -----------------------------------------------------------

    async def _retry(self, work: Work) -> Settlement:
        envelope = work.envelope
        try:
            message = RetryMessage.decode(envelope.body)
        except AeError as exc:
            return self._park(envelope, exc.message)
        problem = retry_problem(message)
        if problem:
            return self._park(envelope, problem)
        chain = await self.io.call(self.store.delivery, message.uuid)
        if ownership_problem(message, chain) and not self.queue.shares_store_transaction:
            await asyncio.sleep(OWNERSHIP_RECHECK_SECONDS)
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
        body = await self._retry_body(subscription, message, payload, chain["event_name"])
        outcome = await self._attempt(
            work, subscription, message.uuid, message.death_count, body, message.content, generation
        )
        return Settlement(envelope, attempts=[(outcome, follow_up(self.policy, outcome, self.now()))])

    async def _retry_body(self, subscription: Subscription, message: RetryMessage, payload: Any, event: str) -> bytes:
        """The body a retry resends: a CloudEvent as its chain's first attempt sent it
        (same `time`, same bytes signed), else built from the retry's content."""
        if subscription.body_format == CLOUDEVENTS:
            first = await self.io.call(self.store.first_body, message.uuid)
            if is_cloudevent(first):
                return str(first).encode()
            bodies = EventBodies(message.content, event, self.config.settings.cloudevents_source, self.now())
            return bodies.for_subscription(subscription, message.uuid)
        return serialize_body(payload)

    # -- attempts --------------------------------------------------------

    def _cap(self, subscription_id: int) -> asyncio.Semaphore:
        cap = self._caps.get(subscription_id)
        if cap is None:
            cap = self._caps[subscription_id] = asyncio.Semaphore(self.per_subscription)
        return cap

    async def _attempt(
        self,
        work: Work,
        subscription: Subscription,
        uuid: str,
        death_count: int,
        body: bytes,
        content: str,
        generation: int,
    ) -> Outcome:
        async with self._cap(subscription.subscription_id), self.window:
            if not work.started:
                if self.stopping:
                    raise NotStarted
                work.started = True
            result = await self._deliver(subscription, body, uuid)
        return Outcome(subscription, uuid, death_count, body, content, result, work.envelope.message_id, generation)

    async def _deliver(self, subscription: Subscription, body: bytes, uuid: str) -> NotifyResult:
        """One attempt through the subscription's notifier; whatever it does is a result."""
        started = time.perf_counter()
        try:
            notifier = self.notifiers.for_subscription(subscription)
            if getattr(notifier, "bounds_its_attempts", False):
                # It ends every attempt within its own, shorter deadline: a second timer
                # per attempt would cost about 3% of the consumer's CPU and never fire.
                return await notifier.deliver(subscription, body, uuid)
            async with asyncio.timeout(ATTEMPT_DEADLINE):
                return await notifier.deliver(subscription, body, uuid)
        except TimeoutError:
            why = f"Timeout: notifier {subscription.notifier!r} gave no result within {ATTEMPT_DEADLINE:g} s"
            return NotifyResult(False, None, why, time.perf_counter() - started)
        except Exception as exc:  # a plugin's bug or its client's error: a failed attempt, retried as any
            log.warning(
                "notifier %r raised for subscription %s: %s",
                subscription.notifier,
                subscription.subscription_id,
                describe(exc),
            )
            return NotifyResult(
                False,
                None,
                clip(f"notifier {subscription.notifier!r} raised {describe(exc)}"),
                time.perf_counter() - started,
            )
