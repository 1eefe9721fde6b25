"""RabbitMQ names and arguments for the AMQP backend, as the Magento module uses them.

Exchanges (both durable topic exchanges):

- ``event``            triggers; ``event.trigger`` routes to queue ``event.trigger``.
  The module leaves the trigger exchange to Magento's framework, so the name
  ``event`` is this project's choice. A plain client may also publish to the
  default exchange with routing key ``event.trigger``: it lands in the same queue.
- ``event.failover``   retries, delays and dead letters:
  ``event.retry`` -> ``event.failover.retry`` (retries that are due),
  ``event.retry.kill`` -> ``event.failover.deadletter`` (chains that gave up),
  ``event.retry.init`` -> ``event.retry.init`` (the first back-off),
  ``event.retry.<units>`` -> ``event.delay.<units>`` (later back-offs).

Delay queues have no consumers. Each holds messages for its ``x-message-ttl``
and then dead-letters them to ``event.failover`` / ``event.retry``, where they
become due. They are declared on first use and never expire: RabbitMQ's
``x-expires`` counts only declares, consumers and gets as use, not messages
waiting in the queue, so an expiring delay queue can vanish with retries still
in it (the module's own 2 x TTL expiry loses them when the publish comes late
after the declare). Without it nothing deletes a queue that holds messages;
the only deletion here is `declare_delay_queue` replacing a queue whose
arguments changed, and that one runs with ``if-empty``. The set stays small:
one queue per distinct back-off value, and back-offs are capped at
``backoff_max_seconds`` units, so a policy names at most ``max_deaths`` of them.

Every message ``ae`` publishes carries the header ``x-ae-store``, the identity
of the store whose subscriptions and log it belongs to; RabbitMQ keeps headers
when it dead-letters a message out of a delay queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from ..backoff import RetryPolicy
from ..errors import AeError
from .base import DEADLETTER_QUEUE, RETRY_QUEUE, TRIGGER_QUEUE

TRIGGER_EXCHANGE = "event"
TRIGGER_ROUTING_KEY = "event.trigger"
FAILOVER_EXCHANGE = "event.failover"
RETRY_ROUTING_KEY = "event.retry"
KILL_ROUTING_KEY = "event.retry.kill"
INIT_QUEUE = "event.retry.init"
INIT_ROUTING_KEY = "event.retry.init"

#: (queue, exchange, routing key) for the queues that always exist.
STATIC_QUEUES: tuple[tuple[str, str, str], ...] = (
    (TRIGGER_QUEUE, TRIGGER_EXCHANGE, TRIGGER_ROUTING_KEY),
    (RETRY_QUEUE, FAILOVER_EXCHANGE, RETRY_ROUTING_KEY),
    (DEADLETTER_QUEUE, FAILOVER_EXCHANGE, KILL_ROUTING_KEY),
)

PRECONDITION_FAILED = 406

# A policy with a tiny exponent and a huge max_deaths could name thousands of
# delay queues; nobody configures that on purpose, so counting stops here.
MAX_DELAY_QUEUES = 500


def format_units(units: float) -> str:
    """``4.0`` -> ``"4"``; fractional back-offs keep their digits (``"2.83"``)."""
    if float(units).is_integer():
        return str(int(units))
    return format(units, ".6g")


@dataclass(frozen=True)
class DelayQueue:
    """One back-off queue: where a retry waits out its delay."""

    name: str
    routing_key: str
    ttl_ms: int

    @property
    def arguments(self) -> dict[str, Any]:
        return {
            "x-message-ttl": self.ttl_ms,
            "x-dead-letter-exchange": FAILOVER_EXCHANGE,
            "x-dead-letter-routing-key": RETRY_ROUTING_KEY,
        }


def ttl_ms(units: float, unit_seconds: float) -> int:
    """The TTL RabbitMQ wants: whole milliseconds, at least 1 (0 would mean 'now')."""
    return max(1, int(round(units * unit_seconds * 1000)))


def delay_queue(policy: RetryPolicy, death_count: int) -> DelayQueue | None:
    """The queue a retry with this death count waits in; None when it is due at once."""
    if death_count < 1:
        return None
    units = policy.delay_units(death_count)
    if units <= 0 or policy.unit_seconds <= 0:
        return None
    ttl = ttl_ms(units, policy.unit_seconds)
    if death_count == 1:
        # The module sends every first retry through event.retry.init.
        return DelayQueue(INIT_QUEUE, INIT_ROUTING_KEY, ttl)
    label = format_units(units)
    return DelayQueue(f"event.delay.{label}", f"event.retry.{label}", ttl)


def delay_queues(policy: RetryPolicy) -> list[DelayQueue]:
    """Every delay queue this policy can publish to, without duplicates."""
    found: dict[str, DelayQueue] = {}
    last = max(1, policy.max_deaths)
    for death_count in range(1, min(last, MAX_DELAY_QUEUES) + 1):
        queue = delay_queue(policy, death_count)
        if queue is not None:
            found.setdefault(queue.name, queue)
    return list(found.values())


def declare_static(channel: BlockingChannel) -> None:
    """Declare both exchanges and the three fixed queues with their bindings (idempotent)."""
    channel.exchange_declare(TRIGGER_EXCHANGE, exchange_type="topic", durable=True)
    channel.exchange_declare(FAILOVER_EXCHANGE, exchange_type="topic", durable=True)
    for queue, exchange, routing_key in STATIC_QUEUES:
        channel.queue_declare(queue, durable=True)
        channel.queue_bind(queue, exchange, routing_key=routing_key)


def declare_delay_queue(channel: Callable[[], BlockingChannel], queue: DelayQueue) -> None:
    """Declare and bind a delay queue; `channel` gives an open channel (a refusal closes one).

    A queue of the same name with another TTL means the back-off unit changed:
    an empty one is replaced, one still holding retries is left to drain.
    """
    try:
        channel().queue_declare(queue.name, durable=True, arguments=queue.arguments)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != PRECONDITION_FAILED:
            raise
        try:
            channel().queue_delete(queue.name, if_empty=True)
        except pika.exceptions.ChannelClosedByBroker as error:
            raise AeError(
                f"delay queue {queue.name} exists with other arguments and still holds retries",
                hint="backoff settings changed; the old retries drain within its TTL, then retry",
            ) from error
        channel().queue_declare(queue.name, durable=True, arguments=queue.arguments)
    channel().queue_bind(queue.name, FAILOVER_EXCHANGE, routing_key=queue.routing_key)
