"""`ae subscriptions ping ID`: one signed test delivery, as Svix's "send example" does.

The delivery is made now, in the foreground, with the subscription's notifier,
secret, signature scheme and headers, so a receiver is checked exactly as real
deliveries will reach it. It is logged like any attempt (event `ae.ping`, a
new uuid), so `ae logs` and `ae trace` show it; it is not retried.
"""

from __future__ import annotations

import uuid as uuids
from typing import Any

from .engine.decisions import serialize_body
from .notifiers import Notifiers
from .store import Attempt, Store, timestamp

PING_EVENT = "ae.ping"


def ping(store: Store, notifiers: Notifiers, subscription_id: int) -> dict[str, Any]:
    """Deliver one `ae.ping` to the subscription (enabled or not); log and return the attempt."""
    subscription = store.subscriptions.subscription(subscription_id)  # with its secret: the ping is signed
    delivery = str(uuids.uuid4())
    body = serialize_body({"event": PING_EVENT, "subscription_id": subscription_id, "sent_at": timestamp()})
    result = notifiers.for_subscription(subscription).notify(subscription, body, delivery)
    with store.transaction():
        log_id = store.log.log_attempt(
            Attempt(
                uuid=delivery,
                subscription_id=subscription_id,
                event_name=PING_EVENT,
                success=result.success,
                status_code=result.status_code,
                response_data=result.response_data,
                serialized_data=body.decode(),
                death_count=0,
                duration=result.duration,
                recipient_url=subscription.recipient_url,
            )
        )
    return {
        "log_id": log_id,
        "uuid": delivery,
        "subscription_id": subscription_id,
        "event_name": PING_EVENT,
        "recipient_url": subscription.public()["recipient_url"],
        "success": result.success,
        "status_code": result.status_code,
        "duration": result.duration,
        "response": result.response_data,
    }
