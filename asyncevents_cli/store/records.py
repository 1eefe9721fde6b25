"""What the store holds and hands out: states, timestamps and row types.

Plain data with no database in sight, so notifiers and the engine can import
them without loading a backend.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from ..messages import MAX_ID
from ..pacing import RateLimit
from ..redaction import redact_url
from ..states import DeliveryState, SubscriptionStatus

ENABLED, DISABLED = 1, 0  # the `subscriptions.status` column, as the module stores it
MAX_ROWID = MAX_ID  # the one id bound, written in messages.py, under the store's name for it


def utcnow() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime | None = None) -> str:
    """UTC, second precision plus microseconds, sortable as text."""
    return (moment or utcnow()).strftime("%Y-%m-%d %H:%M:%S.%f")


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


@dataclass(frozen=True)
class Subscription:
    subscription_id: int
    event_name: str
    recipient_url: str
    status: int
    subscribed_at: str
    modified: str
    notifier: str
    store_id: int
    verification_token: str | None  # plaintext when read with reveal=True, else None
    signature_scheme: str = "magento"
    custom_headers: tuple[tuple[str, str], ...] = ()  # (name, value) pairs
    previous_token: str | None = None  # the token before the last rotation ...
    previous_token_expires: str | None = None  # ... accepted until then (UTC timestamp)
    payload_filter: str | None = None  # an `ae search` query the body must match to be sent
    body_format: str = "data"  # what is POSTed: "data" ({"data": payload}) or "cloudevents"
    rate_limit: RateLimit | None = None  # at most this many requests per second or minute, across consumers
    disabled_reason: str | None = None  # why `ae` disabled it itself (auto-disable), else None
    disabled_at: str | None = None  # ... and when (UTC timestamp)

    @property
    def enabled(self) -> bool:
        return self.status == ENABLED

    @property
    def previous_token_until(self) -> datetime | None:
        return parse_timestamp(self.previous_token_expires) if self.previous_token_expires else None

    def public(self, now: datetime | None = None) -> dict[str, Any]:
        """The row as shown to users: no secret, and custom headers by name only."""
        row = asdict(self)
        for secret in ("verification_token", "previous_token", "previous_token_expires", "custom_headers"):
            del row[secret]
        row["status"] = SubscriptionStatus.of(self.enabled)
        row["rate_limit"] = str(self.rate_limit) if self.rate_limit else None
        row["recipient_url"] = redact_url(self.recipient_url)
        row["header_names"] = [name for name, _ in self.custom_headers]
        row["filter"] = row.pop("payload_filter")
        row["format"] = row.pop("body_format")
        until = self.previous_token_until
        in_grace = self.previous_token and until is not None and (now or utcnow()) < until
        expires = self.previous_token_expires
        row["previous_secret_until"] = expires[:19] if in_grace and expires else None
        return row


@dataclass(frozen=True)
class LogCondition:
    """One condition on delivery_log for `Store.logs_matching`: `column` `kind` `value`.

    kinds: `equals`; `like` (the whole value, `*` and `?` wildcards); `starts`
    (a prefix); `contains` (a substring, with wildcards; ASCII case is ignored)."""

    column: str
    kind: str
    value: Any


LOG_COLUMNS = (
    "log_id",
    "uuid",
    "subscription_id",
    "event_name",
    "success",
    "status_code",
    "response_data",
    "created",
    "serialized_data",
    "death_count",
    "duration",
    "message_id",
)


@dataclass(frozen=True)
class Attempt:
    """What one delivery attempt produced, ready to be logged."""

    uuid: str
    subscription_id: int
    event_name: str
    success: bool
    status_code: int | None
    response_data: str
    serialized_data: str
    death_count: int
    duration: float  # seconds
    message_id: str | None = None  # the queue message that caused it
    recipient_url: str | None = None  # where it was sent (stored with credentials redacted)


@dataclass(frozen=True)
class ChainState:
    """Where one delivery's retry chain stands after an attempt (a row of `deliveries`)."""

    uuid: str
    subscription_id: int
    event_name: str
    state: DeliveryState
    death_count: int
    next_attempt_at: datetime | None = None
    attempted: bool = True  # False: the state changed without an attempt (stopped, replayed)
    generation: int = 0  # bumped by each replay; a write from an older generation is ignored


@dataclass(frozen=True)
class EndpointState:
    """What the store remembers about one subscription's receiver (table `endpoint_states`),
    shared by every consumer of the store. Times are seconds since the epoch."""

    subscription_id: int
    consecutive_failures: int = 0
    failing_since: float | None = None  # the first failure of the current run
    circuit_open: bool = False
    opened_at: float | None = None
    next_probe: float | None = None  # while open: when one attempt may try the receiver again
    deferred_until: float = 0.0  # a Retry-After: no attempt before this


@dataclass(frozen=True)
class PendingDelivery:
    """A delivery waiting in the store for its lane (table `pending_deliveries`):
    detached from its message, attempted once its subscription has room."""

    uuid: str
    subscription_id: int
    event_name: str
    content: str  # the payload as a retry carries it (`encode_payload`)
    death_count: int
    generation: int = 0
    message_id: str | None = None
    due: float = 0.0  # seconds since the epoch
