"""Which store a RabbitMQ message belongs to, and what the broker keeps in that store.

Messages carry the identity of the store they belong to (header ``x-ae-store``):
retries and dead letters always, triggers once the store has an identity (made
when its first consumer starts), so a host that only publishes stays an
anonymous client like Magento. A consumer that receives another store's message
puts it back and stops: two stores on one vhost would deliver each other's
retries to the wrong subscriptions and split each other's triggers. Messages
without the header are served as before.

The store is reached only through the `StoreLedger` the queue is given; the
queue never opens one itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..backoff import RetryPolicy
from ..errors import AeError
from .amqp_topology import delay_queues
from .base import QUEUE_FOR_KIND, Envelope, StoreLedger
from .headers import STORE_HEADER

#: What `Store.identity` makes; any other header value is not a store's and is ignored.
STORE_IDENTITY = re.compile(r"[0-9a-f]{32}")


def owner_of(envelope: Envelope) -> str | None:
    """The store identity a message carries, or None (no header, or not one a store made)."""
    owner = envelope.headers.get(STORE_HEADER)
    if isinstance(owner, bytes):
        owner = owner.decode("utf-8", "replace")
    return owner if isinstance(owner, str) and STORE_IDENTITY.fullmatch(owner) else None


class Ownership:
    """The identity of the store behind a queue, and the delay queues it has used."""

    def __init__(self, ledger: Callable[[], StoreLedger | None], policy: RetryPolicy, shown_url: str) -> None:
        #: the store this queue serves, when there is one (None: a host that only publishes)
        self._ledger = ledger
        self.policy = policy
        self.shown_url = shown_url
        self._identity: str | None = None
        self._recorded: set[str] = set()  # delay queues the store knows about

    def identity(self, create: bool) -> str | None:
        """The identity of this queue's store; made on first need when `create`."""
        if self._identity is None:
            ledger = self._ledger()
            self._identity = ledger.identity(create=create) if ledger is not None else None
        return self._identity

    def record_delay_queue(self, name: str) -> None:
        """Write a delay queue into the store before a retry waits there, so status finds it later."""
        if name not in self._recorded:
            ledger = self._ledger()
            if ledger is not None:
                ledger.record_delay_queue(name)
            self._recorded.add(name)

    def delay_queue_names(self) -> list[str]:
        """Where a retry may be waiting: the policy's delay queues, and any used under earlier settings."""
        names = dict.fromkeys(q.name for q in delay_queues(self.policy))
        ledger = self._ledger()
        names.update(dict.fromkeys([*self._recorded, *(ledger.delay_queue_names() if ledger else [])]))
        return list(names)

    def refusal(self, envelope: Envelope) -> AeError | None:
        """The error to stop with when `envelope` belongs to another store, else None.

        Asked where a delivery is handed out, before anything acts on it."""
        owner = owner_of(envelope)
        if owner is None:
            return None  # no identity (Magento, a plain client), or not one a store made: served as ever
        mine = self.identity(create=True)
        if mine is None or owner == mine:
            return None
        return AeError(
            f"message {envelope.message_id} on {QUEUE_FOR_KIND[envelope.kind]} belongs to another ae store"
            f" ({owner}), not to this one ({mine}): two stores share the queues of {self.shown_url};"
            " the message was put back for its own store",
            hint="give each store a vhost of its own in amqp_url, or run every consumer on one shared store"
            " (settings.database = postgresql://..., which consumers on every host can share)",
        )


__all__ = ["Ownership", "STORE_IDENTITY", "owner_of"]
