"""Subscriptions as the consumer sees them: read once, then reused for a moment.

Looking subscriptions up for every message costs more than the rest of its
bookkeeping; a change (subscribe, disable, delete) reaches a running consumer
within `ttl` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..store import Store, Subscription

DEFAULT_TTL_SECONDS = 1.0


class SubscriptionCache:
    def __init__(self, store: Store, ttl: float = DEFAULT_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self._by_event: dict[tuple[str, int], tuple[float, list[Subscription]]] = {}
        self._by_id: dict[int, tuple[float, Subscription | None]] = {}

    def for_event(self, event_name: str, store_id: int) -> list[Subscription]:
        """Enabled subscribers of an event in a store (that store's and store 0's)."""
        now = self.clock()
        key = (event_name, store_id)
        hit = self._by_event.get(key)
        if hit is None or now - hit[0] > self.ttl:
            hit = self._by_event[key] = (now, self.store.subscriptions_for(event_name, store_id))
        return hit[1]

    def by_id(self, subscription_id: int) -> Subscription | None:
        now = self.clock()
        hit = self._by_id.get(subscription_id)
        if hit is None or now - hit[0] > self.ttl:
            hit = self._by_id[subscription_id] = (now, self.store.find_subscription(subscription_id))
        return hit[1]
