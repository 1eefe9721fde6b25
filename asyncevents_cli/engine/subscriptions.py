"""Subscriptions as the consumer sees them: read once, then reused for a moment.

Looking subscriptions up for every message costs more than the rest of its
bookkeeping; a change (subscribe, disable, delete) reaches a running consumer
within `ttl` seconds. A lookup runs on the consumer's I/O thread, which owns
the store's connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from ..store import Store, Subscription
from .io import IoThread

DEFAULT_TTL_SECONDS = 1.0


class SubscriptionCache:
    def __init__(
        self, store: Store, io: IoThread, ttl: float = DEFAULT_TTL_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.io = io
        self.ttl = ttl
        self.clock = clock
        self._by_event: dict[tuple[str, int], tuple[float, list[Subscription]]] = {}
        self._by_id: dict[int, tuple[float, Subscription | None]] = {}
        self._pending: dict[tuple[int, Any], asyncio.Future[Any]] = {}

    async def for_event(self, event_name: str, store_id: int) -> list[Subscription]:
        """Enabled subscribers of an event in a store (that store's and store 0's)."""
        key = (event_name, store_id)
        hit = self._by_event.get(key)
        if hit is not None and self.clock() - hit[0] <= self.ttl:
            return hit[1]
        return await self._look_up(
            self._by_event, key, self.store.subscriptions.subscriptions_for, event_name, store_id
        )

    async def by_id(self, subscription_id: int) -> Subscription | None:
        hit = self._by_id.get(subscription_id)
        if hit is not None and self.clock() - hit[0] <= self.ttl:
            return hit[1]
        return await self._look_up(
            self._by_id, subscription_id, self.store.subscriptions.find_subscription, subscription_id
        )

    async def _look_up(
        self, cache: dict[Any, tuple[float, Any]], key: Any, read: Callable[..., Any], *args: Any
    ) -> Any:
        """One store read per key at a time: messages that miss together share it."""
        pending = self._pending.get((id(cache), key))
        if pending is None:
            now = self.clock()
            pending = self._pending[(id(cache), key)] = asyncio.ensure_future(self.io.call(read, *args))
            try:
                cache[key] = (now, await asyncio.shield(pending))
            finally:
                del self._pending[(id(cache), key)]
            return cache[key][1]
        return await asyncio.shield(pending)
