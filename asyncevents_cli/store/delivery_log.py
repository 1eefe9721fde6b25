"""Tables `delivery_log` and `deliveries`.

- ``delivery_log``  one row per attempt; a search index follows it by ``log_id``
- ``deliveries``    one row per uuid: where its retry chain stands now, so a
                    trace can say "Retrying, next attempt at ..." or "Dead Lettered"
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ..redaction import redact_url
from ..states import DeliveryState, SubscriptionStatus
from .backend import Backend
from .records import ENABLED, LOG_COLUMNS, Attempt, ChainState, LogCondition, timestamp, utcnow

INSERT_ATTEMPT = (
    "INSERT INTO delivery_log (uuid, subscription_id, event_name, success, status_code,"
    " response_data, created, serialized_data, death_count, duration, message_id, recipient_url)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: uuids whose whole chain may go: every attempt older than the cutoff, and not retrying
PRUNABLE_UUIDS = (
    "SELECT l.uuid FROM delivery_log l LEFT JOIN deliveries d ON d.uuid = l.uuid GROUP BY l.uuid"
    " HAVING MAX(l.created) < ? AND COALESCE(MAX(d.state), '') != ?"
)


def _like(value: str) -> str:
    """A LIKE pattern: `*` and `?` are wildcards; `%`, `_` and `\\` are literal."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _attempt_row(attempt: Attempt, created: str) -> tuple[Any, ...]:
    """A receiver's reply may hold NUL characters, which PostgreSQL's text cannot:
    both backends keep U+FFFD in their place, so a reply never fails a settle."""
    a = attempt
    return (
        a.uuid,
        a.subscription_id,
        a.event_name,
        1 if a.success else 0,
        a.status_code,
        a.response_data.replace("\x00", "\ufffd"),
        created,
        a.serialized_data.replace("\x00", "\ufffd"),
        a.death_count,
        round(a.duration, 6),
        a.message_id,
        redact_url(a.recipient_url) if a.recipient_url else None,  # the log keeps no password a URL carried
    )


class DeliveryLogTable:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    # -- writes --------------------------------------------------------------

    def log_attempt(self, attempt: Attempt) -> int:
        with self.backend.transaction():
            self.backend.order_log_ids()
            return int(
                self.backend.execute(INSERT_ATTEMPT + " RETURNING log_id", _attempt_row(attempt, timestamp())).scalar()
            )

    def log_attempts(self, attempts: Sequence[Attempt]) -> None:
        """Log many attempts at once (the consumer settles in batches)."""
        now = timestamp()
        with self.backend.transaction():
            self.backend.order_log_ids()
            self.backend.execute_many(INSERT_ATTEMPT, [_attempt_row(a, now) for a in attempts])

    def set_delivery_state(
        self,
        uuid: str,
        subscription_id: int,
        event_name: str,
        state: DeliveryState,
        death_count: int,
        next_attempt_at: datetime | None = None,
        attempted: bool = True,
        generation: int = 0,
    ) -> None:
        self.set_delivery_states(
            [ChainState(uuid, subscription_id, event_name, state, death_count, next_attempt_at, attempted, generation)]
        )

    def set_delivery_states(self, states: Sequence[ChainState]) -> None:
        """Record where chains stand. A state from a generation older than the chain's
        (an attempt that was under way when the chain was replayed) changes nothing.

        Rows are written in uuid order (stable, so a uuid's later state still wins):
        two writers that lock rows in the same order cannot deadlock."""
        now = timestamp()
        self.backend.execute_many(
            "INSERT INTO deliveries (uuid, subscription_id, event_name, state, attempts, death_count,"
            " next_attempt_at, updated, generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(uuid) DO UPDATE SET state = excluded.state,"
            " attempts = deliveries.attempts + excluded.attempts, death_count = excluded.death_count,"
            " next_attempt_at = excluded.next_attempt_at, updated = excluded.updated,"
            " generation = excluded.generation"
            " WHERE excluded.generation >= deliveries.generation",
            [
                (
                    c.uuid,
                    c.subscription_id,
                    c.event_name,
                    c.state,
                    1 if c.attempted else 0,
                    c.death_count,
                    timestamp(c.next_attempt_at) if c.next_attempt_at else None,
                    now,
                    c.generation,
                )
                for c in sorted(states, key=lambda c: c.uuid)
            ],
        )

    def prune_logs(self, older_than_days: float) -> list[int]:
        """Delete whole delivery chains that have finished (delivered, dead-lettered or
        stopped) and whose last attempt is older than the given age; return the removed
        log ids. A chain still retrying keeps every attempt, and a finished chain is
        kept whole until all of it is old, so no trace loses its earlier attempts.

        The chain states go first: removing a finished chain's state leaves it
        prunable, so both statements see the same uuids."""
        cutoff = timestamp(utcnow() - timedelta(days=older_than_days))
        with self.backend.transaction():
            self.backend.execute(
                f"DELETE FROM deliveries WHERE state != ? AND uuid IN ({PRUNABLE_UUIDS})",
                (DeliveryState.RETRYING, cutoff, DeliveryState.RETRYING),
            )
            removed = self.backend.execute(
                f"DELETE FROM delivery_log WHERE uuid IN ({PRUNABLE_UUIDS}) RETURNING log_id",
                (cutoff, DeliveryState.RETRYING),
            )
        return sorted(int(row[0]) for row in removed.rows)

    # -- reads ---------------------------------------------------------------

    def already_attempted(self, message_id: str, subscription_id: int) -> bool:
        """True if this queue message was already delivered to this subscription and
        logged: the message came back because its acknowledgement was lost."""
        return (
            self.backend.execute(
                "SELECT 1 FROM delivery_log WHERE message_id = ? AND subscription_id = ? LIMIT 1",
                (message_id, subscription_id),
            ).first()
            is not None
        )

    def delivery(self, uuid: str) -> dict[str, Any] | None:
        rows = self.backend.rows("SELECT * FROM deliveries WHERE uuid = ?", (uuid,))
        return rows[0] if rows else None

    def first_body(self, uuid: str) -> str | None:
        """The body the first logged attempt of a delivery sent (None: none is logged)."""
        return self.backend.execute(
            "SELECT serialized_data FROM delivery_log WHERE uuid = ? ORDER BY log_id LIMIT 1", (uuid,)
        ).scalar()

    def attempts(self, uuid: str) -> list[dict[str, Any]]:
        return self.backend.rows("SELECT * FROM delivery_log WHERE uuid = ? ORDER BY log_id", (uuid,))

    def recent_logs(
        self, event_name: str | None = None, failed_only: bool = False, limit: int = 50
    ) -> list[dict[str, Any]]:
        return self.find_logs(event_name=event_name, success=False if failed_only else None, limit=limit)

    def find_logs(
        self,
        *,
        event_name: str | None = None,
        subscription_id: int | None = None,
        uuid: str | None = None,
        success: bool | None = None,
        since: str | None = None,
        until: str | None = None,
        after_log_id: int | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Attempts meeting every filter given (`since` inclusive, `until` exclusive, as
        stored timestamps), newest first; with `after_log_id`, only those logged after
        it, oldest first (how `ae logs --follow` tails the log)."""
        clauses: list[str] = []
        params: list[Any] = []
        for sql, value in (
            ("event_name = ?", event_name),
            ("subscription_id = ?", subscription_id),
            ("uuid = ?", uuid),
            ("success = ?", None if success is None else int(success)),
            ("created >= ?", since),
            ("created < ?", until),
            ("log_id > ?", after_log_id),
        ):
            if value is not None:
                clauses.append(sql)
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "ASC" if after_log_id is not None else "DESC"
        return self.backend.rows(
            f"SELECT * FROM delivery_log {where} ORDER BY log_id {order} LIMIT ?", [*params, limit]
        )

    def logs_after(self, log_id: int, limit: int = 1000) -> list[dict[str, Any]]:
        """Log rows past `log_id`, oldest first: how a search index catches up."""
        return self.backend.rows("SELECT * FROM delivery_log WHERE log_id > ? ORDER BY log_id LIMIT ?", (log_id, limit))

    def logs_by_id(self, log_ids: Sequence[int]) -> list[dict[str, Any]]:
        """The log rows of these ids, in no particular order."""
        return [
            row
            for result in self.backend.in_chunks("SELECT * FROM delivery_log WHERE log_id IN ({marks})", log_ids)
            for row in result.dicts()
        ]

    def count_logs_after(self, log_id: int) -> int:
        return int(self.backend.execute("SELECT COUNT(*) FROM delivery_log WHERE log_id > ?", (log_id,)).scalar())

    def logs_matching(
        self, conditions: Sequence[LogCondition], limit: int | None = None, offset: int = 0
    ) -> tuple[int, list[dict[str, Any]]]:
        """(how many rows meet every condition, a page of them newest first)."""
        clauses: list[str] = []
        params: list[Any] = []
        for c in conditions:
            if c.column not in LOG_COLUMNS:
                raise ValueError(f"no delivery_log column {c.column!r}")
            if c.kind == "equals":
                clauses.append(f"{c.column} = ?")
                params.append(int(c.value) if isinstance(c.value, bool) else c.value)
            else:
                pattern = _like(str(c.value))
                pattern = {"like": pattern, "starts": pattern + "%", "contains": "%" + pattern + "%"}[c.kind]
                clauses.append(f"{c.column} {self.backend.like_operator} ? ESCAPE '\\'")
                params.append(pattern)
        where = " AND ".join(clauses) or "1 = 1"
        total = self.backend.execute(f"SELECT COUNT(*) FROM delivery_log WHERE {where}", params).scalar()
        page = "" if limit is None else f" LIMIT {int(limit)} OFFSET {int(offset)}"
        rows = self.backend.rows(f"SELECT * FROM delivery_log WHERE {where} ORDER BY log_id DESC{page}", params)
        return int(total), rows

    def uuids_of(self, log_ids: Sequence[int]) -> set[str]:
        """The delivery uuids these attempts belong to."""
        return {
            row[0]
            for result in self.backend.in_chunks(
                "SELECT DISTINCT uuid FROM delivery_log WHERE log_id IN ({marks})", log_ids
            )
            for row in result.rows
        }

    def latest_attempts(self, uuids: Sequence[str]) -> list[dict[str, Any]]:
        """The newest attempt of each of these deliveries."""
        return [
            row
            for result in self.backend.in_chunks(
                "SELECT * FROM delivery_log WHERE log_id IN (SELECT MAX(log_id) FROM delivery_log"
                " WHERE uuid IN ({marks}) GROUP BY uuid)",
                uuids,
            )
            for row in result.dicts()
        ]

    def log_id_high_water(self) -> int:
        """The largest log id ever handed out, even if pruned since."""
        return max(self.backend.log_id_sequence(), self.max_log_id())

    def max_log_id(self) -> int:
        return int(self.backend.execute("SELECT COALESCE(MAX(log_id), 0) FROM delivery_log").scalar())

    def delivered_uuids(self, uuids: Sequence[str]) -> set[str]:
        """Those of `uuids` whose latest chain ended delivered."""
        return {
            row[0]
            for result in self.backend.in_chunks(
                "SELECT uuid FROM deliveries WHERE state = ? AND uuid IN ({marks})",
                sorted(set(uuids)),
                before=(DeliveryState.DELIVERED,),
            )
            for row in result.rows
        }

    def last_uuid(self, subscription_id: int) -> str | None:
        """The uuid of a subscription's latest attempt: what "replay last" replays."""
        return self.backend.execute(
            "SELECT uuid FROM delivery_log WHERE subscription_id = ? ORDER BY log_id DESC LIMIT 1", (subscription_id,)
        ).scalar()

    def log_page(self, limit: int, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
        """The admin logs grid: how many attempts there are, and one page of them, newest first."""
        total = int(self.backend.execute("SELECT COUNT(*) FROM delivery_log").scalar())
        rows = self.backend.rows(
            "SELECT log_id, uuid, subscription_id, event_name, success, status_code, created, death_count, duration"
            " FROM delivery_log ORDER BY log_id DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return total, rows

    def delivery_counts(self) -> list[dict[str, Any]]:
        """Per subscription: attempts, successes, failures, chains by state, and events filtered out."""
        return self.backend.rows(
            """
            SELECT s.subscription_id, s.event_name, s.recipient_url,
                   CASE s.status WHEN ? THEN ? ELSE ? END AS status,
                   (SELECT COUNT(*) FROM delivery_log l WHERE l.subscription_id = s.subscription_id) AS attempts,
                   (SELECT COUNT(*) FROM delivery_log l
                     WHERE l.subscription_id = s.subscription_id AND l.success = 1) AS succeeded,
                   (SELECT COUNT(*) FROM delivery_log l
                     WHERE l.subscription_id = s.subscription_id AND l.success = 0) AS failed,
                   (SELECT COUNT(*) FROM deliveries d
                     WHERE d.subscription_id = s.subscription_id AND d.state = ?) AS delivered,
                   (SELECT COUNT(*) FROM deliveries d
                     WHERE d.subscription_id = s.subscription_id AND d.state = ?) AS retrying,
                   (SELECT COUNT(*) FROM deliveries d
                     WHERE d.subscription_id = s.subscription_id AND d.state = ?) AS dead_lettered,
                   COALESCE((SELECT f.filtered FROM filtered_events f
                     WHERE f.subscription_id = s.subscription_id), 0) AS filtered
            FROM subscriptions s ORDER BY s.subscription_id
            """,
            (
                ENABLED,
                SubscriptionStatus.ENABLED,
                SubscriptionStatus.DISABLED,
                DeliveryState.DELIVERED,
                DeliveryState.RETRYING,
                DeliveryState.DEAD_LETTERED,
            ),
        )
