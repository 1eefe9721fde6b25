"""`ae subscriptions health`: how each subscription's deliveries are doing, as plain data.

Read from the store (`delivery_log` and `deliveries`), so any host sharing the
store sees the same answer, whichever consumer made the attempts. The state is
a pure function of those figures (`health_state`):

- ``disabled``  the subscription is disabled (by hand, or by `ae` itself: `disabled_reason` says why);
- ``failing``   its circuit is open (table `endpoint_states`, as the consumers found it);
- ``degraded``  its latest attempt failed, or fewer than `DEGRADED_BELOW` of the
                last 15 minutes' attempts succeeded;
- ``healthy``   otherwise (no traffic included).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .config import Config
from .redaction import redact_url
from .states import DeliveryState, SubscriptionStatus
from .store import Store, Subscription
from .store.records import parse_timestamp, utcnow

RECENT = timedelta(minutes=15)
DAY = timedelta(hours=24)
#: a 15-minute success rate below this is `degraded`
DEGRADED_BELOW = 0.95

HEALTHY, DEGRADED, FAILING, DISABLED = "healthy", "degraded", "failing", "disabled"


@dataclass(frozen=True)
class Figures:
    """What the state is decided from."""

    enabled: bool
    circuit_open: bool
    consecutive_failures: int
    attempts_recent: int
    successes_recent: int


def health_state(figures: Figures) -> str:
    if not figures.enabled:
        return DISABLED
    if figures.circuit_open:
        return FAILING
    recent_rate = _rate(figures.attempts_recent, figures.successes_recent)
    if figures.consecutive_failures > 0 or (recent_rate is not None and recent_rate < DEGRADED_BELOW):
        return DEGRADED
    return HEALTHY


def _rate(attempts: int, successes: int) -> float | None:
    return None if attempts == 0 else successes / attempts


def subscription_health(
    config: Config, store: Store, subscription_ids: Sequence[int] = (), now: datetime | None = None
) -> list[dict[str, Any]]:
    """One row per subscription (those named, or all): state, rates, latency, counts, last error."""
    moment = now or utcnow()
    chosen = [store.subscriptions.subscription(i, reveal=False) for i in subscription_ids] or store.subscriptions.all(
        reveal=False
    )
    recent = store.health.attempt_counts_since(moment - RECENT)
    day = store.health.attempt_counts_since(moment - DAY)
    chains = store.health.chain_counts()
    oldest = store.health.oldest_pending()
    errors = store.health.last_errors()
    circuits = store.lanes.endpoint_states()
    held = store.lanes.held_counts()
    rows = []
    for sub in chosen:
        sid = sub.subscription_id
        circuit_open = sid in circuits and circuits[sid].circuit_open
        row = _figures_row(store, sub, circuit_open, recent.get(sid, (0, 0)), day.get(sid, (0, 0)), moment)
        counts = chains.get(sid, {})
        first = oldest.get(sid)
        row.update(
            in_flight=None,  # known only inside each consumer: its ae_consumer_in_flight metric
            held=held.get(sid, 0),
            retrying=counts.get(DeliveryState.RETRYING, 0),
            dead_lettered=counts.get(DeliveryState.DEAD_LETTERED, 0),
            oldest_pending_age_seconds=None if first is None else _age(first, moment),
            # the ceiling each consumer's lane adapts under (a lane's current limit is known only
            # in its consumer: the ae_subscription_concurrency_limit metric)
            concurrency=config.settings.subscription_concurrency,
            rate_limit=str(sub.rate_limit) if sub.rate_limit else None,
            last_error=errors.get(sid),
        )
        rows.append(row)
    return rows


def _figures_row(
    store: Store, sub: Subscription, circuit_open: bool, recent: tuple[int, int], day: tuple[int, int], moment: datetime
) -> dict[str, Any]:
    failures = store.health.consecutive_failures(sub.subscription_id)
    figures = Figures(sub.enabled, circuit_open, failures, recent[0], recent[1])
    p50 = store.health.duration_percentile(sub.subscription_id, moment - RECENT, 0.50)
    p95 = store.health.duration_percentile(sub.subscription_id, moment - RECENT, 0.95)
    return {
        "subscription_id": sub.subscription_id,
        "event_name": sub.event_name,
        "recipient_url": redact_url(sub.recipient_url),
        "status": SubscriptionStatus.of(sub.enabled),
        "state": health_state(figures),
        "disabled_reason": sub.disabled_reason,
        "circuit_open": circuit_open,
        "consecutive_failures": failures,
        "attempts_15m": recent[0],
        "success_rate_15m": _rate(*recent),
        "attempts_24h": day[0],
        "success_rate_24h": _rate(*day),
        "p50_seconds_15m": p50,
        "p95_seconds_15m": p95,
    }


def _age(created: str, moment: datetime) -> float:
    return max(0.0, round((moment - parse_timestamp(created)).total_seconds(), 3))
