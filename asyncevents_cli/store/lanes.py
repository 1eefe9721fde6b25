"""Tables `pending_deliveries` and `endpoint_states`: the store's half of the lanes.

- ``pending_deliveries``  deliveries detached from their message, waiting for room
                          in their subscription's lane, a Retry-After, or a closed
                          circuit. Leased while attempted (``lease_until``), so the
                          work of a consumer that died is taken again.
- ``endpoint_states``     per subscription: the run of failures, the circuit, the
                          next probe, a Retry-After deferral. Shared by every
                          consumer of the store, on every host.

The SQL is the subset both engines speak; on PostgreSQL, taking rows skips
those another consumer has locked (FOR UPDATE SKIP LOCKED).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..states import DeliveryState
from .backend import Backend
from .records import EndpointState, PendingDelivery, timestamp

#: Migration 3, on both backends: additive, and tolerant of a store brought level again
#: (its version table lost), like migration 2. Each backend adds `LANE_COLUMNS` its own way.
LANES_DESCRIPTION = "pending_deliveries, endpoint_states; subscriptions.disabled_reason, disabled_at"
LANE_TABLES = (
    "CREATE TABLE IF NOT EXISTS pending_deliveries (uuid TEXT PRIMARY KEY, subscription_id BIGINT NOT NULL,"
    " event_name TEXT NOT NULL, content TEXT NOT NULL, death_count INTEGER NOT NULL,"
    " generation INTEGER NOT NULL DEFAULT 0, message_id TEXT, due DOUBLE PRECISION NOT NULL,"
    " lease_until DOUBLE PRECISION NOT NULL DEFAULT 0, created TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS idx_pending_deliveries_due ON pending_deliveries (due)",
    "CREATE INDEX IF NOT EXISTS idx_pending_deliveries_subscription_id ON pending_deliveries (subscription_id, due)",
    "CREATE TABLE IF NOT EXISTS endpoint_states (subscription_id BIGINT PRIMARY KEY,"
    " consecutive_failures INTEGER NOT NULL DEFAULT 0, failing_since DOUBLE PRECISION,"
    " circuit_open INTEGER NOT NULL DEFAULT 0, opened_at DOUBLE PRECISION, next_probe DOUBLE PRECISION,"
    " deferred_until DOUBLE PRECISION NOT NULL DEFAULT 0)",
)
#: (table, column, definition)
LANE_COLUMNS = (("subscriptions", "disabled_reason", "TEXT"), ("subscriptions", "disabled_at", "TEXT"))
PENDING_COLUMNS = "uuid, subscription_id, event_name, content, death_count, generation, message_id, due"
ENDPOINT_COLUMNS = (
    "subscription_id, consecutive_failures, failing_since, circuit_open, opened_at, next_probe, deferred_until"
)


def _endpoint(row: Sequence[Any]) -> EndpointState:
    sub, failures, since, is_open, opened, probe, deferred = row
    return EndpointState(int(sub), int(failures), since, bool(is_open), opened, probe, float(deferred or 0.0))


class LaneTable:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    # -- pending deliveries ----------------------------------------------------

    def add_pending(self, rows: Sequence[PendingDelivery], lease_until: float = 0.0) -> None:
        """Keep deliveries for later; `lease_until` > now when this consumer attempts them
        already (a lease that lapses hands them to another). A uuid kept already is updated:
        due again, and no longer leased."""
        created = timestamp()
        with self.backend.transaction():
            self.backend.execute_many(
                f"INSERT INTO pending_deliveries ({PENDING_COLUMNS}, lease_until, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(uuid) DO UPDATE SET due = excluded.due,"
                " lease_until = excluded.lease_until, death_count = excluded.death_count,"
                " generation = excluded.generation, content = excluded.content",
                [
                    (
                        p.uuid,
                        p.subscription_id,
                        p.event_name,
                        p.content,
                        p.death_count,
                        p.generation,
                        p.message_id,
                        p.due,
                        lease_until,
                        created,
                    )
                    for p in sorted(rows, key=lambda p: p.uuid)
                ],
            )

    def take_pending(self, subscription_id: int, limit: int, now: float, lease_until: float) -> list[PendingDelivery]:
        """Lease up to `limit` of a subscription's due deliveries, oldest first."""
        if limit <= 0:
            return []
        skip = " FOR UPDATE SKIP LOCKED" if self.backend.name == "postgresql" else ""
        with self.backend.transaction():
            rows = self.backend.execute(
                f"SELECT {PENDING_COLUMNS} FROM pending_deliveries WHERE subscription_id = ? AND due <= ?"
                f" AND lease_until <= ? ORDER BY due, uuid LIMIT ?{skip}",
                (subscription_id, now, now, limit),
            ).rows
            self.backend.execute_many(
                "UPDATE pending_deliveries SET lease_until = ? WHERE uuid = ?", [(lease_until, r[0]) for r in rows]
            )
        return [PendingDelivery(*row) for row in rows]

    def due_pending(self, now: float) -> dict[int, int]:
        """subscription id -> how many of its deliveries are due and not leased."""
        rows = self.backend.execute(
            "SELECT subscription_id, COUNT(*) FROM pending_deliveries WHERE due <= ? AND lease_until <= ?"
            " GROUP BY subscription_id",
            (now, now),
        ).rows
        return {int(sub): int(count) for sub, count in rows}

    def extend_pending(self, uuids: Sequence[str], lease_until: float) -> None:
        with self.backend.transaction():
            self.backend.execute_many(
                "UPDATE pending_deliveries SET lease_until = ? WHERE uuid = ?", [(lease_until, u) for u in uuids]
            )

    def release_pending(self, uuids: Sequence[str], due: float) -> None:
        """Give leased deliveries back, due again at `due`."""
        with self.backend.transaction():
            self.backend.execute_many(
                "UPDATE pending_deliveries SET lease_until = 0, due = ? WHERE uuid = ?", [(due, u) for u in uuids]
            )

    def finish_pending(self, uuids: Sequence[str]) -> None:
        with self.backend.transaction():
            self.backend.execute_many("DELETE FROM pending_deliveries WHERE uuid = ?", [(u,) for u in sorted(uuids)])

    def pending_uuids(self, uuids: Sequence[str]) -> set[str]:
        """Those of `uuids` waiting in the store (a redelivered trigger must not keep them twice)."""
        found: set[str] = set()
        for result in self.backend.in_chunks("SELECT uuid FROM pending_deliveries WHERE uuid IN ({marks})", uuids):
            found.update(row[0] for row in result.rows)
        return found

    def pending_delivery(self, uuid: str) -> PendingDelivery | None:
        """A kept delivery, or None: what `ae trace` shows of one that waits."""
        row = self.backend.execute(f"SELECT {PENDING_COLUMNS} FROM pending_deliveries WHERE uuid = ?", (uuid,)).first()
        return None if row is None else PendingDelivery(*row)

    def pending_to_attempt(self) -> int:
        """Kept deliveries that will be attempted without anyone's help: not held by an open
        circuit or a disabled subscription (`ae consume --until-empty` waits for these)."""
        return int(
            self.backend.execute(
                "SELECT COUNT(*) FROM pending_deliveries p"
                " JOIN subscriptions s ON s.subscription_id = p.subscription_id"
                " LEFT JOIN endpoint_states e ON e.subscription_id = p.subscription_id"
                " WHERE s.status = 1 AND COALESCE(e.circuit_open, 0) = 0"
            ).scalar()
            or 0
        )

    def pending_counts(self) -> dict[int, int]:
        """subscription id -> deliveries waiting in the store (held ones included)."""
        rows = self.backend.execute(
            "SELECT subscription_id, COUNT(*) FROM pending_deliveries GROUP BY subscription_id"
        ).rows
        return {int(sub): int(count) for sub, count in rows}

    def held_counts(self) -> dict[int, int]:
        """subscription id -> deliveries held by an open circuit (or a disabled subscription)."""
        rows = self.backend.execute(
            "SELECT p.subscription_id, COUNT(*) FROM pending_deliveries p"
            " JOIN subscriptions s ON s.subscription_id = p.subscription_id"
            " LEFT JOIN endpoint_states e ON e.subscription_id = p.subscription_id"
            " WHERE s.status = 0 OR e.circuit_open = 1 GROUP BY p.subscription_id"
        ).rows
        return {int(sub): int(count) for sub, count in rows}

    def mark_pending(self, subscription_id: int, state: DeliveryState) -> None:
        """The chains of a subscription's waiting deliveries are now `state` (HELD when its
        circuit opens, PENDING when it closes)."""
        self.backend.execute(
            "UPDATE deliveries SET state = ?, updated = ? WHERE uuid IN"
            " (SELECT uuid FROM pending_deliveries WHERE subscription_id = ?)",
            (state, timestamp(), subscription_id),
        )

    # -- endpoint states -------------------------------------------------------

    def endpoint_states(self, subscription_ids: Iterable[int] | None = None) -> dict[int, EndpointState]:
        """Every subscription's endpoint state that differs from a healthy one's (or those asked for).
        Inside a transaction on PostgreSQL the rows are locked until it ends."""
        if subscription_ids is None:
            rows = self.backend.execute(f"SELECT {ENDPOINT_COLUMNS} FROM endpoint_states").rows
        else:
            ids = sorted(set(subscription_ids))
            lock = " FOR UPDATE" if self.backend.name == "postgresql" and self.backend.in_transaction else ""
            rows = [
                row
                for result in self.backend.in_chunks(
                    f"SELECT {ENDPOINT_COLUMNS} FROM endpoint_states WHERE subscription_id IN ({{marks}})"
                    f" ORDER BY subscription_id{lock}",
                    ids,
                )
                for row in result.rows
            ]
        return {state.subscription_id: state for state in map(_endpoint, rows)}

    def save_endpoint_states(self, states: Iterable[EndpointState]) -> None:
        with self.backend.transaction():
            self.backend.execute_many(
                f"INSERT INTO endpoint_states ({ENDPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(subscription_id) DO UPDATE SET consecutive_failures = excluded.consecutive_failures,"
                " failing_since = excluded.failing_since, circuit_open = excluded.circuit_open,"
                " opened_at = excluded.opened_at, next_probe = excluded.next_probe,"
                " deferred_until = excluded.deferred_until",
                [
                    (
                        s.subscription_id,
                        s.consecutive_failures,
                        s.failing_since,
                        1 if s.circuit_open else 0,
                        s.opened_at,
                        s.next_probe,
                        s.deferred_until,
                    )
                    for s in sorted(states, key=lambda s: s.subscription_id)
                ],
            )

    def claim_probe(self, subscription_id: int, now: float, next_probe: float) -> bool:
        """Whether this consumer may probe an open circuit now: only one consumer wins each
        probe time, whichever process or host it runs on."""
        with self.backend.transaction():
            claimed = self.backend.execute(
                "UPDATE endpoint_states SET next_probe = ? WHERE subscription_id = ? AND circuit_open = 1"
                " AND next_probe <= ?",
                (next_probe, subscription_id, now),
            ).rowcount
        return claimed == 1

    def reset_endpoint(self, subscription_id: int) -> None:
        """A fresh start for a subscription enabled again: its circuit closed, its held deliveries due."""
        with self.backend.transaction():
            self.backend.execute("DELETE FROM endpoint_states WHERE subscription_id = ?", (subscription_id,))
            self.mark_pending(subscription_id, DeliveryState.PENDING)

    def resume_endpoints(self, subscription_ids: Sequence[int]) -> None:
        """Inside a transaction, for subscriptions enabled again: a closed circuit, and the
        deliveries it held due at once."""
        self.backend.execute_many(
            "DELETE FROM endpoint_states WHERE subscription_id = ?", [(i,) for i in subscription_ids]
        )
        self.backend.execute_many(
            "UPDATE deliveries SET state = ? WHERE state = ? AND subscription_id = ?",
            [(DeliveryState.PENDING, DeliveryState.HELD, i) for i in subscription_ids],
        )

    def auto_disable(self, subscription_id: int, reason: str) -> None:
        """Disabled by `ae` itself, with the reason and time `ae subscriptions show` prints;
        no more probes (enabling it again starts afresh)."""
        now = timestamp()
        with self.backend.transaction():
            self.backend.execute(
                "UPDATE subscriptions SET status = 0, disabled_reason = ?, disabled_at = ?, modified = ?"
                " WHERE subscription_id = ?",
                (reason, now, now, subscription_id),
            )
            self.backend.execute(
                "UPDATE endpoint_states SET next_probe = NULL WHERE subscription_id = ?", (subscription_id,)
            )
