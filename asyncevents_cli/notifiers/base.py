"""What a notifier is: delivers one event body to one subscriber, and checks its recipients.

The delivery contract the consumer relies on:

- ``notify(subscription, body, uuid) -> NotifyResult`` (sync) is all a simple
  plugin writes. It never raises for delivery failures: it reports them.
- ``async deliver(...)`` is what the consumer calls. By default it runs
  `notify` on a small shared thread pool, so a blocking plugin (boto3, say)
  never holds up other deliveries. `HttpNotifier` implements it natively.
- ``close()`` / ``async aclose()`` release pooled connections.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ..config import Config
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
    #: the receiver's `Retry-After` header, as sent (HTTP notifiers; None elsewhere), so a
    #: 429 or 503 can defer the subscription's next attempt as long as it asks
    retry_after: str | None = None


def clip(text: str, limit: int = RESPONSE_LIMIT) -> str:
    data = text.encode("utf-8", "replace")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def blocking_pool() -> ThreadPoolExecutor:
    """The bounded pool blocking `notify` calls run on, made on first need."""
    from concurrent.futures import ThreadPoolExecutor

    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=BLOCKING_THREADS, thread_name_prefix="ae-notify")
        return _pool


class Notifier(ABC):
    """Delivers one serialized event body to one subscriber.

    A notifier is found by name through the entry-point group
    ``asyncevents_cli.notifiers`` (see `registry`); the class itself is the
    factory, so its classmethods are what `ae subscribe` asks before any
    instance exists.
    """

    #: other names subscriptions may give, e.g. the Magento module's ``event_bridge``
    aliases: ClassVar[tuple[str, ...]] = ()
    #: what a recipient is, for `ae notifiers list`
    recipient_help: ClassVar[str] = "any non-empty string"
    #: deliveries are HTTP requests signed with the subscription's secret, so
    #: signature schemes, custom headers and secret rotation apply to them
    signs_requests: ClassVar[bool] = False

    @classmethod
    def from_config(cls, config: Config | None) -> Notifier:
        """The instance a consumer uses; settings come from `config` when given."""
        return cls()

    @classmethod
    def check_recipient(cls, recipient: str, config: Config | None = None) -> str:
        """Refuse (InputError) a recipient this notifier cannot deliver to; return it as stored.
        `config` carries the settings a check may depend on."""
        if not recipient or not recipient.strip():
            raise InputError("the recipient must not be empty")
        return recipient

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
