"""`ae status` and `ae deadletters`: queue depths, delivery counts and parked messages, as plain data."""

from __future__ import annotations

from typing import Any

from .config import Config
from .messages import MalformedMessage, RetryMessage, TriggerMessage
from .netguard import redact_credentials
from .queues.base import TRIGGER, Queue
from .store import Store


def status(config: Config, store: Store, queue: Queue) -> dict[str, Any]:
    return {
        "backend": config.settings["queue"],
        "database": str(config.database_path),
        "queues": queue.depths().as_dict(),
        "subscriptions": [{**row, "recipient_url": redact_credentials(row["recipient_url"])}
                          for row in store.delivery_counts()],
    }


def dead_letters(queue: Queue, limit: int = 50) -> list[dict[str, Any]]:
    """Parked messages, oldest first, decoded so an operator can act on them:
    a dead-lettered retry names its uuid (for `ae replay`), a parked trigger its
    event and arguments (to publish again once the cause is fixed)."""
    rows = []
    for letter in queue.peek_dead_letters(limit):
        row: dict[str, Any] = {"message_id": letter.message_id, "origin": letter.origin, "reason": letter.reason}
        try:
            if letter.origin == TRIGGER:
                trigger = TriggerMessage.decode(letter.body)
                row.update(event_name=trigger.event_name, store_id=trigger.store_id, arguments=trigger.arguments)
            else:
                retry = RetryMessage.decode(letter.body)
                row.update(uuid=retry.uuid, subscription_id=retry.subscription_id, death_count=retry.death_count)
        except MalformedMessage:
            row["body"] = letter.body.decode("utf-8", "replace")[:1000]
        rows.append(row)
    return rows
