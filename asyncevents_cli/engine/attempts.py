"""Deliveries through their lanes: route, attempt, detach, decide what follows.

A message's deliveries go each their own way (`Lanes.route`): attempted at
once where the lane has room, else kept in the store. The message waits
`DETACH_AFTER` at most for the attempts it started (none at all for a lane
already known to be slow); those still under way then run on detached, and
the message is settled without them: their deliveries are kept in the store,
leased by this consumer, and settled on their own when they finish. So a slow
or hanging receiver holds at most its lane, never its neighbours' messages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from ..notifiers import Notifiers, NotifyResult
from ..notifiers.base import clip
from ..pacing import RateLimit, Signal, parse_retry_after
from ..queues.base import Envelope
from ..states import DeliveryState
from ..store import PendingDelivery, Subscription
from .circuit import Route, defer_seconds
from .decisions import FollowUp, Outcome, Settlement, pending_of
from .lanes import DETACH_AFTER, Lanes

log = logging.getLogger("asyncevents_cli")

#: A notifier that never answers is given up on after this long (HTTP ends at its own total timeout).
ATTEMPT_DEADLINE = 120.0
#: A detached delivery's lease in the store; renewed while its attempt runs (see the consumer).
LEASE_SECONDS = 60.0
#: Rate-limit tokens a lane takes from the shared bucket at once (fewer store calls; never more than a burst).
TOKENS_AT_ONCE = 4
#: The shortest wait for a token: a bucket that says "now" lost a race with another consumer.
MIN_RATE_WAIT = 0.005


def describe(exc: BaseException) -> str:
    """An exception as one line: its class and its message, cut short."""
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text[:300]}"


class NotStarted(Exception):
    """The consumer is stopping and this message's work had not begun: give it back."""


class Shed(Exception):
    """Its lane stalled while the delivery waited for a slot: it waits in the store instead."""


class Work:
    """One received message (None: a delivery taken from the store) and whether any of its attempts has started."""

    __slots__ = ("envelope", "started")

    def __init__(self, envelope: Envelope | None) -> None:
        self.envelope = envelope
        self.started = False


@dataclass(frozen=True)
class Delivery:
    """One delivery to make: to whom, which chain, what."""

    subscription: Subscription
    uuid: str
    death_count: int
    content: str
    body: bytes
    generation: int
    message_id: str | None

    def pending(self, due: float) -> PendingDelivery:
        sub = self.subscription
        return PendingDelivery(
            self.uuid,
            sub.subscription_id,
            sub.event_name,
            self.content,
            self.death_count,
            self.generation,
            self.message_id,
            due,
        )


def signal_of(result: NotifyResult) -> Signal:
    """What an answer says about the receiver's load (for the lane's adaptive limit)."""
    if result.success:
        return Signal.OK
    if result.status_code in (429, 503):
        return Signal.OVERLOAD
    if result.status_code is None and result.response_data.startswith("Timeout"):
        return Signal.TIMEOUT
    return Signal.FAILURE


class Attempter:
    def __init__(
        self,
        notifiers: Notifiers,
        lanes: Lanes,
        window: asyncio.Semaphore,
        follow: Callable[[Outcome, datetime, float | None, bool], FollowUp],
        now: Callable[[], datetime],
        detach: Callable[[Awaitable[Settlement], PendingDelivery], None],
        stopping: Callable[[], bool],
        retry_after_cap: float,
        take_tokens: Callable[[int, RateLimit, int], Awaitable[tuple[int, float]]],
    ) -> None:
        self.notifiers = notifiers
        self.lanes = lanes
        self.window = window
        self._follow_up = follow
        self.now = now
        self.detach = detach
        self.stopping = stopping
        self.retry_after_cap = retry_after_cap
        self.take_tokens = take_tokens

    async def fan_out(self, work: Work, deliveries: list[Delivery]) -> Settlement:
        """Route each delivery, attempt those with room, detach the slow; the message's settlement."""
        now = self.lanes.clock()
        settlement = Settlement(work.envelope, lease_until=now + LEASE_SECONDS)
        fast: list[Delivery] = []
        slow: list[Delivery] = []  # to lanes already known to be stalled: not waited for
        moment = time.monotonic()
        for delivery in deliveries:
            lane = self.lanes.lane(delivery.subscription.subscription_id)
            where = self.lanes.route(lane.subscription_id, now)
            limited = where is Route.ATTEMPT and delivery.subscription.rate_limit is not None
            wait = await self._rate_wait(delivery.subscription) if limited else None
            if wait is not None:  # rate-limited: it waits in the store for its token
                settlement.waiting.append((delivery.pending(now + wait), DeliveryState.PENDING))
                self.lanes.waiting.add(lane.subscription_id)
            elif where is Route.ATTEMPT:
                (slow if lane.stalled(moment) else fast).append(delivery)
            else:
                state = DeliveryState.HELD if where is Route.HOLD else DeliveryState.PENDING
                due = max(now, self.lanes.deferred_until(lane.subscription_id))
                settlement.waiting.append((delivery.pending(due), state))
        starting, waited_for = fast + slow, len(fast)
        if len(starting) == 1 and waited_for == 1:  # the common case: no task of its own, no timer
            try:
                outcome = await self.attempt(work, starting[0])
            except Shed:
                settlement.waiting.append((starting[0].pending(now), DeliveryState.PENDING))
                return settlement
            settlement.attempts.append((outcome, self.follow(outcome)))
            return settlement
        if starting:
            await self._wait_or_detach(work, starting, waited_for, settlement)
        return settlement

    async def _wait_or_detach(
        self, work: Work, starting: list[Delivery], waited_for: int, settlement: Settlement
    ) -> None:
        tasks = [asyncio.ensure_future(self.attempt(work, d)) for d in starting]
        if waited_for:
            await asyncio.wait(tasks[:waited_for], timeout=DETACH_AFTER)
            await asyncio.sleep(0)  # those started with them may have finished too
        for task in tasks:  # a failure that is not a result stops the lot, as `gather` did
            failure = task.exception() if task.done() else None
            if failure is not None and not isinstance(failure, Shed):
                for other in tasks:
                    other.cancel()
                raise failure
        for delivery, task in zip(starting, tasks, strict=True):
            if task.done() and task.exception() is not None:  # shed: it waits in the store
                settlement.waiting.append((delivery.pending(self.lanes.clock()), DeliveryState.PENDING))
            elif task.done():
                outcome = task.result()
                settlement.attempts.append((outcome, self.follow(outcome)))
            else:
                row = delivery.pending(self.lanes.clock())
                settlement.running.append(row)
                self.detach(self._detached(task, row), row)

    async def _detached(self, task: asyncio.Task[Outcome], row: PendingDelivery) -> Settlement:
        """A detached attempt, settled on its own once it finishes."""
        try:
            outcome = await task
        except (NotStarted, Shed):  # the consumer stopped first, or the lane stalled: it waits in the store
            return Settlement(None, waiting=[(row, DeliveryState.PENDING)])
        return self._settled(outcome, probe=False)

    async def pending(
        self, work: Work, row: PendingDelivery, subscription: Subscription | None, probe: bool, body: bytes
    ) -> Settlement:
        """A delivery taken from the store: attempted if its lane has room (a probe always is)."""
        if subscription is None:  # deleted: its chain stops here
            stopped = (row.uuid, row.subscription_id, row.event_name, row.death_count, row.generation)
            return Settlement(None, stopped=stopped, finished=[row.uuid])
        if not subscription.enabled:  # kept until it is enabled again
            return Settlement(None, waiting=[(row, DeliveryState.HELD)])
        if not probe:
            now = self.lanes.clock()
            where = self.lanes.route(row.subscription_id, now)
            if where is not Route.ATTEMPT:
                state = DeliveryState.HELD if where is Route.HOLD else DeliveryState.PENDING
                return Settlement(None, waiting=[(row, state)])
            wait = await self._rate_wait(subscription)
            if wait is not None:
                return Settlement(None, waiting=[(dataclasses.replace(row, due=now + wait), DeliveryState.PENDING)])
        delivery = Delivery(subscription, row.uuid, row.death_count, row.content, body, row.generation, row.message_id)
        try:
            outcome = await self.attempt(work, delivery, probe)
        except (NotStarted, Shed):
            return Settlement(None, waiting=[(row, DeliveryState.PENDING)])
        return self._settled(outcome, probe)

    async def _rate_wait(self, subscription: Subscription) -> float | None:
        """None when a rate-limited subscription may have one more attempt now (its token is
        spent), else the seconds until its bucket has one. Tokens come from the store's bucket,
        shared by every consumer, a few at a time."""
        rate = subscription.rate_limit
        if rate is None:
            return None
        lane = self.lanes.lane(subscription.subscription_id)
        if lane.tokens <= 0:
            granted, wait = await self.take_tokens(subscription.subscription_id, rate, min(rate.burst, TOKENS_AT_ONCE))
            if granted <= 0:
                return max(wait, MIN_RATE_WAIT)
            lane.tokens += granted
        lane.tokens -= 1
        return None

    def _settled(self, outcome: Outcome, probe: bool) -> Settlement:
        follow = self.follow(outcome, probe)
        return Settlement(None, attempts=[(outcome, follow)], finished=[] if follow.keep else [outcome.uuid])

    def follow(self, outcome: Outcome, probe: bool = False) -> FollowUp:
        """What follows an attempt; a receiver's Retry-After and an open circuit count no death."""
        now = self.now()
        result = outcome.result
        if result.success:
            return self._follow_up(outcome, now, None, False)
        defer = defer_seconds(result.status_code, parse_retry_after(result.retry_after, now), self.retry_after_cap)
        held = probe or self.lanes.is_open(outcome.subscription.subscription_id)
        return self._follow_up(outcome, now, defer, held)

    async def attempt(self, work: Work, delivery: Delivery, probe: bool = False) -> Outcome:
        """One attempt, in a slot of its lane and of the consumer's window (a probe takes its slot
        regardless: it is one attempt, and an open circuit's lane is empty)."""
        lane = self.lanes.lane(delivery.subscription.subscription_id)
        if probe:
            lane.in_flight += 1
        elif not await lane.acquire():
            raise Shed
        signal, duration = Signal.FAILURE, 0.0
        try:
            async with self.window:
                if not work.started:
                    if self.stopping():
                        raise NotStarted
                    work.started = True
                result = await self._deliver(delivery.subscription, delivery.body, delivery.uuid)
            signal, duration = signal_of(result), result.duration
        finally:
            lane.finished(signal, duration)
        return Outcome(
            delivery.subscription,
            delivery.uuid,
            delivery.death_count,
            delivery.body,
            delivery.content,
            result,
            delivery.message_id,
            delivery.generation,
        )

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


__all__ = ["ATTEMPT_DEADLINE", "Attempter", "Delivery", "NotStarted", "Work", "describe", "pending_of"]
