"""Kept deliveries back into their lanes: what the loop asks for, and what the I/O thread takes.

Deliveries wait in the store (`pending_deliveries`) when their lane had no
room, a receiver asked for time, or a circuit is open. Every `PUMP_EVERY` the
loop asks (`request`) for as many as each waiting lane can start, and one per
open circuit whose probe is due; the I/O thread (`take`) refreshes the
endpoint states, finds lanes it did not know had work, and leases the
deliveries. Only the loop changes a lane (`apply`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..store import PendingDelivery, Store
from .decisions import Settlement
from .endpoints import DISCOVER_EVERY, REFRESH_EVERY, Endpoints
from .lanes import Lanes

PUMP_EVERY = 0.05  # seconds between takes of kept deliveries for lanes with room
MIN_TAKE = 16  # kept deliveries a lane with room may take at once, however narrow it is


@dataclass(frozen=True)
class PumpRequest:
    rooms: dict[int, int]  # subscription id -> kept deliveries its lane can take now
    probes: list[int]  # open circuits whose probe is due


@dataclass(frozen=True)
class Taken:
    kept: list[tuple[PendingDelivery, bool]]  # kept deliveries leased, and whether each is a probe
    discovered: set[int]  # subscriptions with kept deliveries due


class Pump:
    def __init__(
        self,
        store: Store,
        lanes: Lanes,
        endpoints: Endpoints,
        concurrency: int,
        retry: Callable[..., Any],
        lease_seconds: float,
    ) -> None:
        self.store = store
        self.lanes = lanes
        self.endpoints = endpoints
        self.concurrency = concurrency
        self.retry = retry  # a store step again after a lost connection (`Retrying.call`)
        self.lease_seconds = lease_seconds

    # -- on the loop ---------------------------------------------------------

    def request(self) -> PumpRequest:
        """Lanes with room for kept deliveries (within twice the window), and circuits due a probe."""
        wall, moment = time.time(), time.monotonic()
        free = 2 * self.concurrency - self.lanes.in_flight()
        rooms: dict[int, int] = {}
        probes: list[int] = []
        for subscription_id in sorted(self.lanes.waiting):
            state = self.lanes.states.get(subscription_id)
            if state is not None and state.circuit_open:
                if state.next_probe is not None and state.next_probe <= wall:
                    probes.append(subscription_id)
                continue
            if state is not None and state.deferred_until > wall:
                continue
            lane = self.lanes.lane(subscription_id)
            if lane.stalled(moment):  # only what it can start now: what waits for it would be shed
                room = min(lane.limit - lane.in_flight, free)
            else:  # more than its limit: the rest waits in memory, so the lane stays busy between takes
                room = min(max(4 * lane.limit, MIN_TAKE) - lane.in_flight - len(lane.waiters), free)
            if room > 0:
                rooms[subscription_id] = room
                free -= room
        return PumpRequest(rooms, probes)

    def note_kept(self, settlements: Sequence[Settlement]) -> None:
        """Lanes whose deliveries now wait in the store: the next requests look at them."""
        for settlement in settlements:
            self.lanes.waiting.update(row.subscription_id for row, _ in settlement.waiting)
            for _, follow in settlement.attempts:
                if follow.keep is not None:
                    self.lanes.waiting.add(follow.keep.subscription_id)

    def apply(self, request: PumpRequest | None, taken: Taken) -> None:
        """What the I/O thread learnt about endpoints, and which lanes ran dry (lanes change only here)."""
        updates, self.endpoints.updates = self.endpoints.updates, []
        for states, transitions, complete in updates:
            self.lanes.update(states, complete)
            for subscription_id, transition in transitions:
                self.lanes.transitioned(subscription_id, transition)
        if request is not None:
            got = Counter(row.subscription_id for row, probe in taken.kept if not probe)
            for subscription_id, room in request.rooms.items():
                if got[subscription_id] < room:
                    self.lanes.waiting.discard(subscription_id)  # drained, for now
        self.lanes.waiting |= taken.discovered
        self.endpoints.unhealthy = frozenset(self.lanes.states)

    # -- on the I/O thread ---------------------------------------------------

    def take(self, request: PumpRequest | None) -> Taken:
        """Refresh endpoint states, find and lease kept deliveries, when due."""
        if request is None:
            return Taken([], set())
        now = time.time()
        if now - self.endpoints.last_refresh >= REFRESH_EVERY:
            self.retry(self.endpoints.refresh, self.store)
        discovered: set[int] = set()
        if now - self.endpoints.last_discover >= DISCOVER_EVERY:
            discovered = self.retry(self.endpoints.discover, self.store)
        kept = self.retry(self.endpoints.take, self.store, request.rooms, request.probes, now + self.lease_seconds)
        return Taken(kept, discovered)
