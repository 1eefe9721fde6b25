"""One lane per subscription: the one place the engine keeps per-endpoint state.

A lane bounds the attempts in flight to one subscription (`Lane.limit`); the
book (`Lanes.states`) is the store's `endpoint_states` as this consumer last
read them, kept current by what it settles itself. The handler asks
`Lanes.route` where each delivery goes; what does not fit waits in the store
(`pending_deliveries`) and the consumer takes it back when its lane has room.
The decisions themselves are pure functions in `circuit.py`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable

from ..pacing import AdaptiveLimit, Signal
from ..store import EndpointState
from .circuit import Route, Transition, is_healthy, route

#: A trigger waits this long for its attempts; those still under way then run on,
#: detached from the message, which is settled without them (their deliveries are
#: kept, leased, in the store until they finish).
DETACH_AFTER = 0.05
#: A full lane none of whose attempts has finished for this long, or whose attempts take
#: this long on average, is stalled: what waits for it goes to the store instead.
SLOW_LATENCY = 0.2
#: Weight of a new latency in a lane's average.
LATENCY_WEIGHT = 0.2


class Lane:
    """The attempts in flight to one subscription, how many may be, and who waits for a slot."""

    __slots__ = ("subscription_id", "in_flight", "adaptive", "latency", "last_finish", "waiters", "tokens")

    def __init__(self, subscription_id: int, ceiling: int) -> None:
        self.subscription_id = subscription_id
        self.in_flight = 0
        #: narrows on 429/503, timeouts and rising latency; grows back to `subscription_concurrency`
        self.adaptive = AdaptiveLimit(ceiling)
        self.latency = 0.0  # seconds, a moving average of finished attempts
        self.last_finish = time.monotonic()
        #: deliveries waiting in memory for a slot: True when they get one, False when shed
        self.waiters: deque[asyncio.Future[bool]] = deque()
        #: rate-limit tokens taken from the store's shared bucket and not spent yet
        self.tokens = 0

    @property
    def limit(self) -> int:
        return self.adaptive.limit

    @property
    def has_room(self) -> bool:
        return self.in_flight < self.adaptive.limit

    def stalled(self, now: float) -> bool:
        """Slow on average, or full with nothing finished for a while (`now`: monotonic):
        a trigger does not wait for it, and nothing more waits in memory for it."""
        if self.latency > SLOW_LATENCY:
            return True
        return self.in_flight > 0 and not self.has_room and now - self.last_finish > SLOW_LATENCY

    async def acquire(self) -> bool:
        """A slot of the lane: at once if there is room, else in turn; False if shed meanwhile."""
        if self.in_flight < self.adaptive.limit and not self.waiters:
            self.in_flight += 1
            return True
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        return await waiter

    def finished(self, signal: Signal, duration: float) -> None:
        """One attempt ended: its slot goes to the next waiter, and what it said adapts the limit."""
        self.in_flight -= 1
        self.last_finish = time.monotonic()
        self.latency += (duration - self.latency) * LATENCY_WEIGHT
        self.adaptive.record(signal, duration if signal is Signal.OK else None)
        self._wake()

    def _wake(self) -> None:
        while self.waiters and self.in_flight < self.adaptive.limit:
            waiter = self.waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(True)

    def shed(self) -> None:
        """Send every waiter to the store: the lane stalled."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(False)

    def ramp(self) -> None:
        """The circuit closed: start again from one attempt at a time; the limit grows back
        with each healthy round, so what was held drains without tipping the receiver over."""
        self.adaptive.limit = self.adaptive.floor


class Lanes:
    def __init__(self, ceiling: int, clock: Callable[[], float] = time.time) -> None:
        self.ceiling = ceiling
        self.clock = clock
        self.lanes: dict[int, Lane] = {}
        #: subscription id -> its endpoint state, where it is not healthy
        self.states: dict[int, EndpointState] = {}
        #: subscriptions known to have deliveries waiting in the store
        self.waiting: set[int] = set()

    def lane(self, subscription_id: int) -> Lane:
        lane = self.lanes.get(subscription_id)
        if lane is None:
            lane = self.lanes[subscription_id] = Lane(subscription_id, self.ceiling)
        return lane

    def route(self, subscription_id: int, now: float) -> Route:
        """Where a delivery to this subscription goes now (ATTEMPT: it then waits for a slot of its lane)."""
        lane = self.lane(subscription_id)
        usable = lane.has_room or not lane.stalled(time.monotonic())
        where = route(self.states.get(subscription_id), usable, now)
        if where is not Route.ATTEMPT:
            self.waiting.add(subscription_id)
        return where

    def shed_stalled(self) -> None:
        """Deliveries waiting in memory for a lane that stalled go to the store instead."""
        now = time.monotonic()
        for lane in self.lanes.values():
            if lane.waiters and lane.stalled(now):
                lane.shed()

    def deferred_until(self, subscription_id: int) -> float:
        state = self.states.get(subscription_id)
        return state.deferred_until if state is not None else 0.0

    def is_open(self, subscription_id: int) -> bool:
        state = self.states.get(subscription_id)
        return state is not None and state.circuit_open

    def update(self, states: Iterable[EndpointState], complete: bool = False) -> None:
        """What the store says now (`complete`: every endpoint with a row, so the rest are healthy)."""
        fresh = {s.subscription_id: s for s in states}
        if complete:
            for subscription_id in set(self.states) - set(fresh):
                self._closed(subscription_id)
        now = self.clock()
        for subscription_id, state in fresh.items():
            if not state.circuit_open and self.is_open(subscription_id):
                self._closed(subscription_id)
            if is_healthy(state, now):
                self.states.pop(subscription_id, None)
            else:
                self.states[subscription_id] = state

    def transitioned(self, subscription_id: int, transition: Transition) -> None:
        if transition is Transition.CLOSED:
            self._closed(subscription_id)

    def _closed(self, subscription_id: int) -> None:
        previous = self.states.pop(subscription_id, None)
        if previous is not None and previous.circuit_open:
            self.lane(subscription_id).ramp()
            self.waiting.add(subscription_id)  # what it held drains now

    # -- what the operator sees (metrics) ----------------------------------------

    def limits(self) -> dict[int, int]:
        """subscription id -> its lane's current in-flight limit."""
        # a copy first: the metrics thread reads this while the loop may add a lane
        return {i: lane.limit for i, lane in list(self.lanes.items())}

    def in_flight(self) -> int:
        """Attempts under way in this consumer, across every lane."""
        return sum(lane.in_flight for lane in list(self.lanes.values()))
