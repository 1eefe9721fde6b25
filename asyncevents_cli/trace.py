"""What happened to one delivery: its attempts, status and payload (`ae trace`).

Only reads, so `ae trace` loads the store and nothing of the engine; starting a
delivery over is `replay.py`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from .errors import NotFound
from .redaction import redact_url
from .states import DeliveryState, SubscriptionStatus
from .store import EndpointState, PendingDelivery, Store, parse_timestamp, utcnow


def _retries(n: int) -> str:
    return f"{n} retry" if n == 1 else f"{n} retries"


def kept_state(endpoint: EndpointState | None, enabled: bool) -> DeliveryState:
    held = not enabled or (endpoint is not None and endpoint.circuit_open)
    return DeliveryState.HELD if held else DeliveryState.PENDING


def kept_status(endpoint: EndpointState | None, enabled: bool, retries: int) -> str:
    """A delivery kept in the store: held (an open circuit, a disabled subscription) or waiting."""
    if not enabled:
        return f"Held with {_retries(retries)}: subscription disabled; it resumes when enabled"
    if endpoint is None or not endpoint.circuit_open:
        return f"Waiting for its subscription's lane with {_retries(retries)}"
    since = _moment(endpoint.failing_since or endpoint.opened_at)
    probe = f"next probe at {_moment(endpoint.next_probe)}" if endpoint.next_probe else "no more probes"
    return f"Held: endpoint failing since {since}; {probe}"


def _moment(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch or 0, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def overall_status(
    state: dict[str, Any] | None,
    attempts: list[dict[str, Any]],
    now: datetime | None = None,
    endpoint: EndpointState | None = None,
) -> str:
    """The module's wording: Delivered, Delivered with N retries, Dead Lettered with N retries,
    or Retrying, next attempt at ... (or overdue since ..., once that time has passed);
    and for a delivery kept in the store: Held (its endpoint's circuit is open) or Waiting."""
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
    if current in (DeliveryState.HELD, DeliveryState.PENDING):
        return kept_status(endpoint, True, retries)
    if current == DeliveryState.STOPPED:
        return f"Stopped with {_retries(retries)}: subscription disabled or deleted"
    return "Failed"


def find_attempts(store: Store, uuid: str) -> tuple[str, list[dict[str, Any]]]:
    """A delivery's uuid as stored, and its attempts. uuids are written in lower case;
    one given in upper case (copied from a ticket, say) finds the same delivery."""
    given = uuid.strip()
    attempts = store.log.attempts(given)
    if not attempts and given.lower() != given:
        given = given.lower()
        attempts = store.log.attempts(given)
    return given, attempts


def trace(store: Store, uuid: str) -> dict[str, Any]:
    """Everything the module's trace page shows, as plain data."""
    uuid, attempts = find_attempts(store, uuid)
    kept = store.lanes.pending_delivery(uuid)
    if not attempts and kept is None:
        raise NotFound(f"no delivery with uuid {uuid}", hint="run `ae logs` to see recent uuids")
    if not attempts and kept is not None:  # kept in the store before its first attempt
        return _unattempted(store, kept)
    state = store.log.delivery(uuid)
    first, last = attempts[0], attempts[-1]
    subscription = store.subscriptions.find_subscription(last["subscription_id"], reveal=False)
    current_url = redact_url(subscription.recipient_url) if subscription else None
    endpoint = store.lanes.endpoint_states([last["subscription_id"]]).get(last["subscription_id"])
    status = overall_status(state, attempts, endpoint=endpoint)
    current = state["state"] if state else None
    if kept is not None:  # the store's row says it waits, whatever its chain said last
        enabled = subscription is not None and subscription.enabled
        status = kept_status(endpoint, enabled, len(attempts) - 1)
        current = kept_state(endpoint, enabled)
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
        "status": status,
        "state": current,
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


def _unattempted(store: Store, kept: PendingDelivery) -> dict[str, Any]:
    """A delivery kept (held or waiting) before any attempt: what is known of it."""
    subscription = store.subscriptions.find_subscription(kept.subscription_id, reveal=False)
    endpoint = store.lanes.endpoint_states([kept.subscription_id]).get(kept.subscription_id)
    enabled = subscription is not None and subscription.enabled
    return {
        "uuid": kept.uuid,
        "event_name": kept.event_name,
        "subscription_id": kept.subscription_id,
        "recipient_url": redact_url(subscription.recipient_url) if subscription else None,
        "subscription_status": (
            SubscriptionStatus.of(subscription.enabled) if subscription else SubscriptionStatus.DELETED
        ),
        "status": kept_status(endpoint, enabled, 0),
        "state": DeliveryState.HELD
        if enabled is False or (endpoint and endpoint.circuit_open)
        else DeliveryState.PENDING,
        "next_attempt_at": None,
        "first_attempt": None,
        "last_attempt": None,
        "attempts": [],
        "payload": {"data": json.loads(kept.content)},
    }
