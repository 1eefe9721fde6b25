"""Operator events: what `ae` itself raises about its deliveries, as ordinary events.

Any subscription can take them, with no `events.toml` entry; they are queued,
delivered, signed, retried, logged, traced and searched like any other event
(`ae events list` shows them). They are published for store 0.

| event | raised when | payload |
|---|---|---|
| `ae.delivery.dead_lettered` | a delivery is dead-lettered after its last retry | `dead_lettered_payload` |
| `ae.subscription.failing` | a subscription's circuit opens | `subscription_payload` |
| `ae.subscription.recovered` | it closes again | `subscription_payload` |
| `ae.subscription.disabled` | a subscription is disabled automatically | `subscription_payload` |

No loops: nothing that happens to a delivery *of* an operator event raises
another one, so a failing operator receiver cannot feed itself. Recipient URLs
in payloads go through `redaction.redact_url`, like every listing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .messages import TriggerMessage
from .redaction import redact_url

DEAD_LETTERED = "ae.delivery.dead_lettered"
FAILING = "ae.subscription.failing"
RECOVERED = "ae.subscription.recovered"
DISABLED = "ae.subscription.disabled"

OPERATOR_EVENTS: dict[str, str] = {
    DEAD_LETTERED: "ae: a delivery was dead-lettered after its last retry",
    FAILING: "ae: a subscription's circuit opened (its endpoint is failing)",
    RECOVERED: "ae: a subscription's circuit closed (its endpoint recovered)",
    DISABLED: "ae: a subscription was disabled automatically",
}
#: the store id operator events are published for
OPERATOR_STORE_ID = 0
#: a receiver's reply carried in a payload is cut to this many characters
RESPONSE_CHARS = 200


def is_operator_event(event_name: str) -> bool:
    return event_name in OPERATOR_EVENTS


def raises_about(event_name: str) -> bool:
    """Whether what happens to a delivery of `event_name` may raise an operator event (no loops)."""
    return not event_name.startswith("ae.")


def dead_lettered_payload(
    *,
    uuid: str,
    event_name: str,
    subscription_id: int,
    recipient_url: str,
    attempts: int,
    reason: str | None,
    status_code: int | None,
    response: str,
    at: datetime,
) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "event_name": event_name,
        "subscription_id": subscription_id,
        "recipient_url": redact_url(recipient_url),
        "attempts": attempts,
        "reason": reason,
        "last_status_code": status_code,
        "last_response": response[:RESPONSE_CHARS],
        "dead_lettered_at": at.isoformat(),
    }


def subscription_payload(
    *, subscription_id: int, event_name: str, recipient_url: str, since: datetime, reason: str | None
) -> dict[str, Any]:
    """For failing, recovered and disabled: which subscription, since when, and why."""
    return {
        "subscription_id": subscription_id,
        "event_name": event_name,
        "recipient_url": redact_url(recipient_url),
        "since": since.isoformat(),
        "reason": reason,
    }


def operator_trigger(event_name: str, payload: dict[str, Any]) -> TriggerMessage:
    assert is_operator_event(event_name), event_name
    return TriggerMessage(event_name, payload, OPERATOR_STORE_ID)
