"""The queue interface every backend implements (SQLite table, AMQP).

Three logical queues, named as the module names them on RabbitMQ:

- ``event.trigger``               published events waiting to be fanned out
- ``event.failover.retry``        failed deliveries waiting for their next attempt
- ``event.failover.deadletter``   retry chains that ran out of attempts

A consumer `receive`s an `Envelope`, does its work, and only then `ack`s it.
A consumer that dies before `ack` leaves the message to be taken again
(SQLite: after its lease expires; AMQP: when the channel closes).

Settling is each backend's own protocol (`Queue.settle`, `Queue.settle_and_take`):
the engine and `ae replay` hand over the steps, the queue runs them in the order
that keeps its crash-safety promise. The table queue lives in the store's
database and commits the lot in one transaction; a broker publishes first, then
lets the store commit, then acknowledges.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from ..messages import RetryMessage, TriggerMessage

TRIGGER = "trigger"
RETRY = "retry"
KINDS = (TRIGGER, RETRY)

TRIGGER_QUEUE = "event.trigger"
RETRY_QUEUE = "event.failover.retry"
DEADLETTER_QUEUE = "event.failover.deadletter"

QUEUE_FOR_KIND = {TRIGGER: TRIGGER_QUEUE, RETRY: RETRY_QUEUE}

T = TypeVar("T")


class Runner(Protocol):
    """Runs one step of a settle, trying it again after a lost database connection
    (the consumer's `Retrying.call`): a step given to it must be safe to run again."""

    def __call__(self, step: Callable[[], T], /) -> T: ...


@dataclass
class Envelope:
    """One received message and what the backend needs to settle it."""

    kind: str  # TRIGGER or RETRY
    body: bytes
    message_id: str | None
    headers: dict[str, Any] = field(default_factory=dict)
    handle: Any = None  # backend-private: row id + lease token, delivery tag, ...
    #: True when the backend knows this is the message's first delivery, so no
    #: attempt of it can have been logged yet (the consumer skips that lookup).
    first_delivery: bool = False


@dataclass(frozen=True)
class QueueDepths:
    trigger: int  # waiting (ready or in flight) on event.trigger
    retry_due: int  # retries whose wait is over
    retry_delayed: int  # retries still waiting out their back-off
    dead_letters: int
    in_flight: int = 0  # received but not yet acknowledged (where the backend can tell)

    def as_dict(self) -> dict[str, int]:
        return {
            "trigger": self.trigger,
            "retry_due": self.retry_due,
            "retry_delayed": self.retry_delayed,
            "dead_letters": self.dead_letters,
            "in_flight": self.in_flight,
        }


@dataclass(frozen=True)
class DeadLetter:
    """A parked message, as read back for inspection (it stays parked)."""

    message_id: str | None
    origin: str  # TRIGGER or RETRY: which queue it was parked from
    reason: str
    body: bytes
    parked_at: float | None = None  # epoch seconds, where the backend knows it


class StoreLedger(Protocol):
    """What a queue outside the store's database keeps in that store (RabbitMQ: its
    identity, stamped on its messages, and the delay queues its retries have used).
    Whoever builds such a queue hands it one; the queue never opens a store itself."""

    def identity(self, create: bool = True) -> str | None:
        """The store's identity; made on first need when `create`, else None until then."""
        ...

    def record_delay_queue(self, name: str) -> None: ...

    def delay_queue_names(self) -> list[str]: ...


class FollowUps(Protocol):
    """What settling one or more messages puts on the queue: retries, dead letters,
    messages given back. `placed` is set by the queue once they are on it for good,
    so a settle tried again after a failure does not place them twice."""

    placed: bool

    def place(self) -> None: ...


@dataclass
class Placement:
    """`FollowUps` made of one function."""

    action: Callable[[], object]
    placed: bool = False

    def place(self) -> None:
        self.action()


def run_once(step: Callable[[], T]) -> T:
    """A `Runner` that runs the step once."""
    return step()


class Queue(ABC):
    """A durable queue backend. Implementations translate their own errors
    into `QueueUnavailable` at this boundary."""

    #: The waits after which a consumer looks again for the store write that placed a
    #: message it was handed: a broker's message can overtake it (its follow-ups are
    #: published before the store commits). Empty: it cannot.
    overtaken_store_waits: tuple[float, ...] = ()

    # -- settling: each backend's commit order ----------------------------------

    @abstractmethod
    def settle(
        self, follow_ups: Sequence[FollowUps], record: Callable[[], None], envelopes: Sequence[Envelope]
    ) -> None:
        """Place `follow_ups`, `record` the batch in the store (it commits by itself),
        and acknowledge `envelopes`, in this backend's crash-safe order: no message is
        acknowledged before its follow-ups are placed and its attempts recorded, and a
        follow-up on the queue for good is marked `placed`."""

    @abstractmethod
    def settle_and_take(
        self, settle: Callable[[], None], take: Callable[[], list[Envelope]], run: Runner = run_once
    ) -> list[Envelope]:
        """`settle` a batch, then `take` the next (a lease of more messages). `run` runs
        what this backend commits as one unit, and may run it again: a unit must not
        settle twice."""

    def release_without_store(self, envelopes: Sequence[Envelope]) -> None:
        """Give back what a consumer holds once its store is lost (the consumer stops, and
        `reconnect` may start another on this same queue object)."""
        self.release_many(envelopes)

    @abstractmethod
    def publish_triggers(
        self, messages: Sequence[TriggerMessage], progress: Callable[[int], None] | None = None
    ) -> list[str]:
        """Enqueue trigger messages all-or-nothing; return their message ids.

        `progress(n)` is told how many more are written, as the backend goes."""

    def publish_trigger(self, message: TriggerMessage) -> str:
        return self.publish_triggers([message])[0]

    @abstractmethod
    def forward_triggers(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Enqueue encoded triggers under the message ids they already have (the outbox
        relay's step: `items` are (message_id, body) pairs, in order, all or none)."""

    @abstractmethod
    def publish_retry(self, message: RetryMessage, delay_seconds: float, generation: int = 0) -> str:
        """Place a retry to become due after `delay_seconds`; return its id.

        `generation` (header ``x-ae-generation``) is its chain's replay generation."""

    @abstractmethod
    def dead_letter(self, body: bytes, reason: str, kind: str = RETRY) -> str:
        """Park a message that will not be attempted again, with the reason."""

    @abstractmethod
    def receive(self, kinds: Iterable[str], timeout: float) -> Envelope | None:
        """Take the next due message of the given kinds, waiting up to `timeout` s."""

    def receive_many(self, kinds: Iterable[str], limit: int, timeout: float) -> list[Envelope]:
        """Take up to `limit` due messages, waiting up to `timeout` s for the first."""
        first = self.receive(kinds, timeout)
        if first is None:
            return []
        taken = [first]
        while len(taken) < limit:
            envelope = self.receive(kinds, 0)
            if envelope is None:
                break
            taken.append(envelope)
        return taken

    def reserve(self, count: int) -> None:
        """Hint how many messages the consumer will hold unsettled at once (a broker's prefetch)."""

    @abstractmethod
    def ack(self, envelope: Envelope) -> None:
        """Settle a message for good: it has been handled."""

    def ack_many(self, envelopes: Sequence[Envelope]) -> None:
        for envelope in envelopes:
            self.ack(envelope)

    def release_many(self, envelopes: Sequence[Envelope]) -> None:
        for envelope in envelopes:
            self.release(envelope)

    def extend_many(self, envelopes: Sequence[Envelope]) -> None:
        for envelope in envelopes:
            self.extend(envelope)

    @abstractmethod
    def release(self, envelope: Envelope) -> None:
        """Give a message back unhandled, to be taken again at once."""

    def extend(self, envelope: Envelope) -> None:
        """Tell the backend the message is still being worked on (renew a lease)."""

    @abstractmethod
    def depths(self) -> QueueDepths: ...

    @abstractmethod
    def peek_dead_letters(self, limit: int) -> list[DeadLetter]:
        """Up to `limit` parked messages, oldest first, without removing them."""

    @abstractmethod
    def purge_dead_letters(self, before: float | None = None) -> int:
        """Delete parked messages (only those parked before `before`, epoch seconds,
        if given; a message of unknown age is kept then). Return how many."""

    @abstractmethod
    def requeue_dead_triggers(self) -> list[str]:
        """Put every parked trigger back on the trigger queue, as it was published;
        return the new message ids. Parked retries stay (`ae replay` restarts them)."""

    @abstractmethod
    def is_empty(self, kinds: Iterable[str]) -> bool:
        """True when nothing of these kinds is queued, due, delayed or in flight."""

    def close(self) -> None:
        """Release connections. Safe to call twice."""

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
