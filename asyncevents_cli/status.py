"""`ae status` and `ae deadletters`: queue depths, delivery counts and parked messages, as plain data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .config import Config
from .errors import InputError
from .messages import MalformedMessage, RetryMessage, TriggerMessage
from .queues.base import TRIGGER, Queue
from .redaction import redact_url
from .store import Store

#: Up to this many parked messages are read to tell resolved ones apart; above it,
#: `ae status` shows the queue's own count (reading them all would be too slow).
RESOLVE_SCAN_LIMIT = 10_000


def status(config: Config, store: Store, queue: Queue) -> dict[str, Any]:
    depths = queue.depths().as_dict()
    if 0 < depths["dead_letters"] <= RESOLVE_SCAN_LIMIT:
        resolved = sum(1 for row in dead_letters(queue, store, RESOLVE_SCAN_LIMIT, True) if row["resolved"])
        depths["dead_letters"] -= resolved
    held = store.held_counts()
    waiting = store.pending_counts()
    return {
        "backend": config.settings.queue,
        "database": config.database_display,
        "queues": depths,
        "subscriptions": [
            {
                **row,
                "recipient_url": redact_url(row["recipient_url"]),
                # held: kept while its circuit is open (or it is disabled); waiting: every
                # delivery kept in the store for its lane, the held ones included
                "held": held.get(row["subscription_id"], 0),
                "waiting": waiting.get(row["subscription_id"], 0),
            }
            for row in store.delivery_counts()
        ],
    }


def dead_letters(
    queue: Queue, store: Store | None = None, limit: int = 50, include_resolved: bool = False
) -> list[dict[str, Any]]:
    """Parked messages, oldest first, decoded so an operator can act on them:
    a dead-lettered retry names its uuid (for `ae replay`), a parked trigger its
    event and arguments (to publish again once the cause is fixed).

    A dead-lettered retry whose delivery has succeeded since (a replay) is
    resolved: left out unless `include_resolved`, and never counted."""
    scan = limit if include_resolved or store is None else max(limit, RESOLVE_SCAN_LIMIT)
    rows = []
    for letter in queue.peek_dead_letters(scan):
        row: dict[str, Any] = {
            "message_id": letter.message_id,
            "origin": letter.origin,
            "reason": letter.reason,
            "parked_at": letter.parked_at,
            "resolved": False,
        }
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
    if store is not None:
        delivered = store.delivered_uuids([row["uuid"] for row in rows if "uuid" in row])
        for row in rows:
            row["resolved"] = row.get("uuid") in delivered
    return [row for row in rows if include_resolved or not row["resolved"]][:limit]


def parse_moment(text: str) -> float:
    """`--before`: an ISO date or date-time (UTC unless it says otherwise), as epoch seconds."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(
            f"--before: {text!r} is not a date or date-time such as 2026-01-31 or 2026-01-31T10:00"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
