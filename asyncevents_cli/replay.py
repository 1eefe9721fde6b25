"""Starting a delivery over (`ae replay UUID`): a new retry chain, same uuid."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from .backoff import RetryPolicy
from .engine.decisions import encode_payload
from .errors import AeError, NotFound
from .messages import RetryMessage
from .queues.base import Placement, Queue
from .states import DeliveryState
from .store import Store, utcnow
from .trace import find_attempts


def replay(store: Store, queue: Queue, policy: RetryPolicy, uuid: str) -> dict[str, Any]:
    """Start a new retry chain for `uuid`, whatever its status: same uuid, death count
    back to 1, same retry limit. Returns when the first replayed attempt is due."""
    uuid, attempts = find_attempts(store, uuid)
    if not attempts:
        raise NotFound(f"no delivery with uuid {uuid}", hint="run `ae logs` to see recent uuids")
    last = attempts[-1]
    subscription = store.find_subscription(last["subscription_id"], reveal=False)
    if subscription is None:
        raise AeError(f"subscription {last['subscription_id']} of {uuid} was deleted; nothing to replay to")
    if not subscription.enabled:
        raise AeError(
            f"subscription {subscription.subscription_id} is disabled; replayed attempts would be dropped",
            hint=f"run `ae subscriptions enable {subscription.subscription_id}` first",
        )
    try:
        payload = json.loads(last["serialized_data"])["data"]
    except (ValueError, KeyError, TypeError) as exc:
        raise AeError(f"logged data of {uuid} is not an event body; cannot replay") from exc
    delay = policy.delay_seconds(1)
    message = RetryMessage(subscription.subscription_id, 1, encode_payload(payload), uuid)
    due = utcnow() + timedelta(seconds=delay)
    # A new generation supersedes the chain's pending retry: the consumer drops
    # a retry whose generation is older than the chain's, so one delivery follows.
    chain = store.delivery(uuid)
    generation = int(chain["generation"]) + 1 if chain else 1

    def record() -> None:
        with store.transaction():
            store.set_delivery_state(
                uuid,
                subscription.subscription_id,
                subscription.event_name,
                DeliveryState.RETRYING,
                1,
                next_attempt_at=due,
                attempted=False,
                generation=generation,
            )

    # The queue's settle protocol, as the consumer's: one transaction with a queue in
    # the store; on a broker, publish first and outside the store's write lock.
    queue.settle([Placement(lambda: queue.publish_retry(message, delay, generation=generation))], record, [])
    return {"uuid": uuid, "subscription_id": subscription.subscription_id, "next_attempt_at": str(due)}
