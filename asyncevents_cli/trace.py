"""What happened to one delivery: its attempts, status and payload (`ae trace`).

Only reads, so `ae trace` loads the store and nothing of the engine; starting a
delivery over is `replay.py`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .errors import NotFound
from .redaction import redact_url
from .states import DeliveryState, SubscriptionStatus
from .store import Store, parse_timestamp, utcnow


def _retries(n: int) -> str:
    return f"{n} retry" if n == 1 else f"{n} retries"


def overall_status(state: dict[str, Any] | None, attempts: list[dict[str, Any]], now: datetime | None = None) -> str:
    """The module's wording: Delivered, Delivered with N retries, Dead Lettered with N retries,
    or Retrying, next attempt at ... (or overdue since ..., once that time has passed)."""
    retries = max(0, len(attempts) - 1)
    delivered = attempts and attempts[-1]["success"]
    current = state["state"] if state else (DeliveryState.DELIVERED if delivered else None)
    if current == DeliveryState.DELIVERED:
        return "Delivered" if retries == 0 else f"Delivered with {_retries(retries)}"
    if current == DeliveryState.DEAD_LETTERED:
        return f"Dead Lettered with {_retries(retries)}"
    if current == DeliveryState.RETRYING:
        when = (state or {}).get("next_attempt_at")
        if not when:
            return "Retrying"
        if parse_timestamp(when) <= (now or utcnow()):
            # Due but not yet taken: no retry consumer is running, or it is behind.
            return f"Retrying, overdue since {when[:19]} UTC (waiting for `ae consume retry`)"
        return f"Retrying, next attempt at {when[:19]} UTC"
    if current == DeliveryState.STOPPED:
        return f"Stopped with {_retries(retries)}: subscription disabled or deleted"
    return "Failed"


def find_attempts(store: Store, uuid: str) -> tuple[str, list[dict[str, Any]]]:
    """A delivery's uuid as stored, and its attempts. uuids are written in lower case;
    one given in upper case (copied from a ticket, say) finds the same delivery."""
    given = uuid.strip()
    attempts = store.attempts(given)
    if not attempts and given.lower() != given:
        given = given.lower()
        attempts = store.attempts(given)
    return given, attempts


def trace(store: Store, uuid: str) -> dict[str, Any]:
    """Everything the module's trace page shows, as plain data."""
    uuid, attempts = find_attempts(store, uuid)
    if not attempts:
        raise NotFound(f"no delivery with uuid {uuid}", hint="run `ae logs` to see recent uuids")
    state = store.delivery(uuid)
    first, last = attempts[0], attempts[-1]
    subscription = store.find_subscription(last["subscription_id"], reveal=False)
    current_url = redact_url(subscription.recipient_url) if subscription else None
    try:
        payload = json.loads(last["serialized_data"])
    except ValueError:
        payload = last["serialized_data"]
    return {
        "uuid": uuid,
        "event_name": last["event_name"],
        "subscription_id": last["subscription_id"],
        "recipient_url": current_url,
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
                # Where it went (credentials redacted when logged): None for attempts logged before
                # migration 4; `sent_elsewhere` when the subscription's URL has changed since.
                "recipient_url": a.get("recipient_url"),
                "sent_elsewhere": bool(a.get("recipient_url")) and a.get("recipient_url") != current_url,
            }
            for a in attempts
        ],
        "payload": payload,
    }
