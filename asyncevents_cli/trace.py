"""What happened to one delivery: its attempts, status and payload (`ae trace`).

Only reads, so `ae trace` loads the store and nothing of the engine; starting a
delivery over is `replay.py`."""

from __future__ import annotations

import json
from typing import Any

from .errors import NotFound
from .netguard import redact_credentials
from .states import DeliveryState, SubscriptionStatus
from .store import Store


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
