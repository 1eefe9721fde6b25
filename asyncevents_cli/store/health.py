"""Reading how each subscription is doing, from `delivery_log` and `deliveries`.

What `ae subscriptions health`, the admin pages and the metrics scrape read:
success counts over a window, latency percentiles, chains by state, the oldest
pending delivery and the last error. Read-only, and written in the SQL both
backends speak.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..states import DeliveryState
from .backend import Backend
from .records import timestamp

#: A reply kept with the last error is cut to this many characters.
LAST_ERROR_CHARS = 200


class HealthQueries:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def ping(self) -> None:
        """One round trip: raises when the store cannot be reached."""
        self.backend.execute("SELECT 1")

    def attempt_counts_since(self, since: datetime) -> dict[int, tuple[int, int]]:
        """subscription id -> (attempts, successes) logged at or after `since`."""
        rows = self.backend.execute(
            "SELECT subscription_id, COUNT(*), SUM(success) FROM delivery_log WHERE created >= ?"
            " GROUP BY subscription_id",
            (timestamp(since),),
        ).rows
        return {int(sid): (int(total), int(ok or 0)) for sid, total, ok in rows}

    def duration_percentile(self, subscription_id: int, since: datetime, fraction: float) -> float | None:
        """The attempt duration (seconds) at `fraction` (0.95: p95) since `since`, by the
        nearest-rank method; None when nothing was attempted."""
        moment = timestamp(since)
        count = self.backend.execute(
            "SELECT COUNT(*) FROM delivery_log WHERE subscription_id = ? AND created >= ?",
            (subscription_id, moment),
        ).scalar()
        if not count:
            return None
        rank = max(1, -(-int(count) * fraction // 1))  # ceil(count * fraction), at least 1
        value = self.backend.execute(
            "SELECT duration FROM delivery_log WHERE subscription_id = ? AND created >= ?"
            " ORDER BY duration LIMIT 1 OFFSET ?",
            (subscription_id, moment, int(rank) - 1),
        ).scalar()
        return None if value is None else float(value)

    def chain_counts(self) -> dict[int, dict[str, int]]:
        """subscription id -> {state: chains in it} (table `deliveries`)."""
        counts: dict[int, dict[str, int]] = {}
        for sid, state, total in self.backend.execute(
            "SELECT subscription_id, state, COUNT(*) FROM deliveries GROUP BY subscription_id, state"
        ).rows:
            counts.setdefault(int(sid), {})[str(state)] = int(total)
        return counts

    def oldest_pending(self) -> dict[int, str]:
        """subscription id -> when the first attempt of its oldest still-retrying delivery
        was logged (a store timestamp)."""
        rows = self.backend.execute(
            "SELECT d.subscription_id, MIN(l.created) FROM deliveries d JOIN delivery_log l ON l.uuid = d.uuid"
            " WHERE d.state = ? GROUP BY d.subscription_id",
            (DeliveryState.RETRYING,),
        ).rows
        return {int(sid): str(created) for sid, created in rows if created is not None}

    def last_errors(self) -> dict[int, dict[str, Any]]:
        """subscription id -> its latest failed attempt: created, status_code, response (cut short)."""
        rows = self.backend.rows(
            "SELECT l.subscription_id, l.created, l.status_code, l.response_data FROM delivery_log l"
            " JOIN (SELECT subscription_id, MAX(log_id) AS log_id FROM delivery_log WHERE success = 0"
            " GROUP BY subscription_id) latest ON latest.log_id = l.log_id"
        )
        return {
            int(row["subscription_id"]): {
                "created": row["created"],
                "status_code": row["status_code"],
                "response": (row["response_data"] or "")[:LAST_ERROR_CHARS],
            }
            for row in rows
        }

    def consecutive_failures(self, subscription_id: int) -> int:
        """Failed attempts to the subscription since its last success (all of them if none)."""
        return int(
            self.backend.execute(
                "SELECT COUNT(*) FROM delivery_log WHERE subscription_id = ? AND log_id > COALESCE("
                "(SELECT MAX(log_id) FROM delivery_log WHERE subscription_id = ? AND success = 1), 0)",
                (subscription_id, subscription_id),
            ).scalar()
            or 0
        )
