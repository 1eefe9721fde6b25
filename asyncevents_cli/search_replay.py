"""Bulk replay: every delivery whose latest attempt matches a search query.

`ae replay --query 'event_name:sales.* AND success:false' --since 2026-03-01`
replays, for example, all sales events that failed during a receiver outage.
A uuid is chosen when its LATEST attempt matches the query and was made within
[since, until): an earlier failure that has since been delivered is not replayed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .backoff import RetryPolicy
from .config import Config
from .errors import AeError, InputError
from .moments import parse_moment
from .ping import PING_EVENT
from .queues.base import Queue
from .replay import replay
from .search import check_syntax, matching_log_ids
from .states import SubscriptionStatus
from .store import Store


@dataclass
class Candidate:
    uuid: str
    log_id: int
    event_name: str
    subscription_id: int
    created: str
    success: bool
    subscription_status: SubscriptionStatus


@dataclass
class BulkResult:
    replayed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (uuid, why)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (uuid, error)


def select(
    config: Config, store: Store, query: str, since: str | None = None, until: str | None = None
) -> list[Candidate]:
    """Deliveries whose latest attempt matches `query` and lies in [since, until), oldest first."""
    check_syntax(query)  # bad input exits 2 before the index is touched
    start = parse_moment(since, "--since") if since else None
    stop = parse_moment(until, "--until", end=True) if until else None
    if start and stop and start >= stop:
        raise InputError("--since must be before --until")
    matched = set(matching_log_ids(config, store, query))
    if not matched:
        return []
    chosen: list[Candidate] = []
    statuses: dict[int, SubscriptionStatus] = {}
    latest = store.log.latest_attempts(sorted(store.log.uuids_of(sorted(matched))))
    with_pings = names_pings(query)
    for row in latest:
        if row["log_id"] not in matched:
            continue  # an older attempt matched, but the chain has moved on
        if row["event_name"] == PING_EVENT and not with_pings:
            continue  # a test delivery: replaying it would start a retry chain for a ping
        if (start and row["created"] < start) or (stop and row["created"] >= stop):
            continue
        sub_id = row["subscription_id"]
        if sub_id not in statuses:
            sub = store.subscriptions.find_subscription(sub_id, reveal=False)
            statuses[sub_id] = SubscriptionStatus.DELETED if sub is None else SubscriptionStatus.of(sub.enabled)
        chosen.append(
            Candidate(
                row["uuid"],
                row["log_id"],
                row["event_name"],
                sub_id,
                row["created"],
                bool(row["success"]),
                statuses[sub_id],
            )
        )
    return sorted(chosen, key=lambda c: c.log_id)


PINGS_NAMED = re.compile(r"(?<![\w.])ae\.(ping\b|\*)", re.I)


def names_pings(query: str) -> bool:
    """Whether a query asks for `ae.ping` test deliveries by name (`event_name:ae.ping`, `ae.*`):
    only then does a bulk replay include them."""
    return PINGS_NAMED.search(query) is not None


def replay_all(
    store: Store,
    queue: Queue,
    policy: RetryPolicy,
    candidates: list[Candidate],
    progress: Callable[[int], None] | None = None,
) -> BulkResult:
    """Replay each candidate; skip (and count) those whose subscription is disabled or deleted."""
    result = BulkResult()
    for candidate in candidates:
        if candidate.subscription_status != SubscriptionStatus.ENABLED:
            result.skipped.append(
                (candidate.uuid, f"subscription {candidate.subscription_id} is {candidate.subscription_status}")
            )
        else:
            try:
                replay(store, queue, policy, candidate.uuid)
                result.replayed.append(candidate.uuid)
            except AeError as exc:  # e.g. disabled since selection, or a body that is not an event
                result.failed.append((candidate.uuid, exc.message))
        if progress:
            progress(1)
    return result


def candidate_row(c: Candidate) -> dict[str, Any]:
    return {
        "uuid": c.uuid,
        "log_id": c.log_id,
        "event_name": c.event_name,
        "subscription_id": c.subscription_id,
        "last_attempt": c.created,
        "success": c.success,
        "subscription_status": c.subscription_status,
    }
