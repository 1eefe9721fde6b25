"""What a notifier is, and the registry that picks one by a subscription's `notifier`.

The contract other notifiers rely on:

- ``notify(subscription, body, uuid) -> NotifyResult`` (sync) is all a simple
  plugin writes. It never raises for delivery failures: it reports them.
- ``async deliver(...)`` is what the consumer calls. By default it runs
  `notify` on a small shared thread pool, so a blocking plugin never holds up
  other deliveries. `HttpNotifier` implements it natively on asyncio.
- ``close()`` / ``async aclose()`` release pooled connections.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import InputError
from ..store import Subscription

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

RESPONSE_LIMIT = 64 * 1024  # bytes of a response (or error) kept in the log
#: Threads shared by every notifier that only implements the blocking `notify`.
BLOCKING_THREADS = 16


@dataclass(frozen=True)
class NotifyResult:
    success: bool
    status_code: int | None
    response_data: str
    duration: float  # seconds


def clip(text: str, limit: int = RESPONSE_LIMIT) -> str:
    data = text.encode("utf-8", "replace")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


_pool: "ThreadPoolExecutor | None" = None
_pool_lock = threading.Lock()


def blocking_pool() -> "ThreadPoolExecutor":
    """The bounded pool blocking `notify` calls run on, made on first need."""
    from concurrent.futures import ThreadPoolExecutor

    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=BLOCKING_THREADS, thread_name_prefix="ae-notify")
        return _pool


class Notifier(ABC):
    """Delivers one serialized event body to one subscriber."""

    @abstractmethod
    def notify(self, subscription: Subscription, body: bytes, uuid: str) -> NotifyResult:
        """Attempt delivery once. Never raises for delivery failures: it reports them."""

    async def deliver(self, subscription: Subscription, body: bytes, uuid: str) -> NotifyResult:
        """Attempt delivery once without blocking the consumer's event loop."""
        import asyncio

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(blocking_pool(), self.notify, subscription, body, uuid)

    def close(self) -> None:
        """Release pooled connections."""

    async def aclose(self) -> None:
        """Release pooled connections from inside the event loop that used them."""
        self.close()


NotifierFactory = Callable[[], Notifier]
_registry: dict[str, NotifierFactory] = {}


def register(name: str, factory: NotifierFactory) -> None:
    """Make a notifier available to subscriptions as ``--notifier NAME``."""
    _registry[name] = factory


def names() -> list[str]:
    return sorted(_registry)


def check_name(name: str) -> str:
    if name not in _registry:
        raise InputError(f"unknown notifier {name!r}; available: {', '.join(names())}")
    return name


class Notifiers:
    """One instance of each notifier in use, created on first need."""

    def __init__(self, overrides: dict[str, Notifier] | None = None) -> None:
        self._instances: dict[str, Notifier] = dict(overrides or {})

    def for_subscription(self, subscription: Subscription) -> Notifier:
        name = subscription.notifier
        if name not in self._instances:
            self._instances[name] = _registry[check_name(name)]()
        return self._instances[name]

    def close(self) -> None:
        for notifier in self._instances.values():
            notifier.close()

    async def aclose(self) -> None:
        for notifier in self._instances.values():
            await notifier.aclose()
