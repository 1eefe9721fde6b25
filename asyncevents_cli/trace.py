"""What happened to one delivery (trace), and starting it over (replay)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from .backoff import RetryPolicy
from .engine.decisions import encode_payload
from .errors import AeError, NotFound
from .messages import RetryMessage
from .netguard import redact_credentials
from .queues.base import Queue
from .states import DeliveryState, SubscriptionStatus
from .store import Store, utcnow


def _retries(n: int) -> str:
    return f"{n} retry" if n == 1 else f"{n} retries"


def overall_status(state: dict[str, Any] | None, attempts: list[dict[str, Any]]) -> str:
    """The module's wording: Delivered, Delivered with N retries, Dead Lettered with N retries,
    or Retrying, next attempt at ..."""
    retries = max(0, len(attempts) - 1)
    delivered = attempts and attempts[-1]["success"]
    current = state["state"] if state else (DeliveryState.DELIVERED if delivered else None)
    if current == DeliveryState.DELIVERED:
        return "Delivered" if retries == 0 else f"Delivered with {_retries(retries)}"
    if current == DeliveryState.DEAD_LETTERED:
        return f"Dead Lettered with {_retries(retries)}"
    if current == DeliveryState.RETRYING:
        when = (state or {}).get("next_attempt_at") or "?"
        return f"Retrying, next attempt at {when[:19]} UTC"
    if current == DeliveryState.STOPPED:
        return f"Stopped with {_retries(retries)}: subscription disabled or deleted"
    return "Failed"


def trace(store: Store, uuid: str) -> dict[str, Any]:
    """Everything the module's trace page shows, as plain data."""
    attempts = store.attempts(uuid)
    if not attempts:
        raise NotFound(f"no delivery with uuid {uuid}", hint="run `ae logs` to see recent uuids")
    state = store.delivery(uuid)
    first, last = attempts[0], attempts[-1]
    subscription = store.find_subscription(last["subscription_id"], reveal=False)
    try:
        payload = json.loads(last["serialized_data"])
    except ValueError:
        payload = last["serialized_data"]
    return {
        "uuid": uuid,
        "event_name": last["event_name"],
        "subscription_id": last["subscription_id"],
        "recipient_url": redact_credentials(subscription.recipient_url) if subscription else None,
        "subscription_status": (
            SubscriptionStatus.of(subscription.enabled) if subscription else SubscriptionStatus.DELETED
        ),
        "status": overall_status(state, attempts),
        "state": state["state"] if state else None,
        "next_attempt_at": state["next_attempt_at"] if state else None,
        "first_attempt": first["created"],
        "last_attempt": last["created"],
        "attempts": [
            {
                "log_id": a["log_id"],
                "created": a["created"],
                "success": bool(a["success"]),
                "status_code": a["status_code"],
                "death_count": a["death_count"],
                "duration": a["duration"],
                "response_data": a["response_data"],
            }
            for a in attempts
        ],
        "payload": payload,
    }


def replay(store: Store, queue: Queue, policy: RetryPolicy, uuid: str) -> dict[str, Any]:
    """Start a new retry chain for `uuid`, whatever its status: same uuid, death count
    back to 1, same retry limit. Returns when the first replayed attempt is due."""
    attempts = store.attempts(uuid)
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
    except (ValueError, KeyError, TypeError):
        raise AeError(f"logged data of {uuid} is not an event body; cannot replay") from None
    delay = policy.delay_seconds(1)
    message = RetryMessage(subscription.subscription_id, 1, encode_payload(payload), uuid)
    due = utcnow() + timedelta(seconds=delay)
    # A new generation supersedes the chain's pending retry: the consumer drops
    # a retry whose generation is older than the chain's, so one delivery follows.
    chain = store.delivery(uuid)
    generation = int(chain["generation"]) + 1 if chain else 1

    def place() -> None:
        queue.publish_retry(message, delay, generation=generation)

    def record() -> None:
        store.set_delivery_state(
            uuid, subscription.subscription_id, subscription.event_name, DeliveryState.RETRYING, 1,
            next_attempt_at=due, attempted=False, generation=generation,
        )

    # The consumer's commit rule: one transaction with a queue in the store;
    # on a broker, publish first and outside the SQLite write lock.
    if queue.shares_store_transaction:
        with store.transaction():
            place()
            record()
    else:
        place()
        with store.transaction():
            record()
    return {"uuid": uuid, "subscription_id": subscription.subscription_id, "next_attempt_at": str(due)}
