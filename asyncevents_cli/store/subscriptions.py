"""Table `subscriptions`: the module's columns, plus the (never printed)
verification token, the signature scheme, custom headers (JSON), a
rotated-out token with the end of its grace period, a payload filter and a
body format; and table `filtered_events`, how many events each
subscription's filter held back.

Secrets are sealed at rest (see `secretbox`): tokens, previous tokens and
custom header values. `reveal=False` reads leave `verification_token` None
(listings, traces): they need no key, and a None token cannot sign anything
by mistake.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ..errors import NotFound
from ..pacing import RateLimit
from ..secretbox import PREFIX as SEALED_PREFIX
from ..secretbox import SecretBox, is_sealed
from .backend import Backend
from .lanes import LaneTable
from .rate_buckets import RateBucketTable
from .records import DISABLED, ENABLED, MAX_ROWID, Subscription, timestamp

SEALED_PATTERN = SEALED_PREFIX + "%"


class SubscriptionTable:
    """Given the tables a subscription's changes reach: its lane state (enabling one
    again closes its circuit) and its rate bucket (removing a limit removes it)."""

    def __init__(
        self,
        backend: Backend,
        lanes: LaneTable,
        rate_buckets: RateBucketTable,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.backend = backend
        self.lanes = lanes
        self.rate_buckets = rate_buckets
        self._environ = environ
        self._box: SecretBox | None = None

    # -- secrets -----------------------------------------------------------

    @property
    def secret_box(self) -> SecretBox:
        """The key for sealed values: made on first use, unless values sealed with
        some other key are already here (then the missing key is an error)."""
        if self._box is None:
            self._box = self.backend.open_secret_box(self._environ, create=not self._holds_sealed_values())
        return self._box

    def _holds_sealed_values(self) -> bool:
        return (
            self.backend.execute(
                "SELECT 1 FROM subscriptions WHERE verification_token LIKE ? LIMIT 1", (SEALED_PATTERN,)
            ).first()
            is not None
        )

    def check_secret_key(self) -> None:
        """Raise SecretKeyError now, rather than mid-message, if the key does not open
        this store's secrets (consumers call this before taking any message)."""
        token = self.backend.execute(
            "SELECT verification_token FROM subscriptions WHERE verification_token LIKE ? LIMIT 1", (SEALED_PATTERN,)
        ).scalar()
        if token is not None:
            self.secret_box.open(token)

    def seal_plaintext_tokens(self) -> None:
        """Encrypt secrets stored before encryption at rest (done once, on open): tokens,
        previous tokens and custom header values."""
        rows = self.backend.execute(
            "SELECT subscription_id, verification_token, previous_token, custom_headers FROM subscriptions"
            " WHERE verification_token NOT LIKE ? OR previous_token NOT LIKE ? OR custom_headers IS NOT NULL",
            (SEALED_PATTERN, SEALED_PATTERN),
        ).rows
        plain = [
            r
            for r in rows
            if not is_sealed(r[1])
            or (r[2] and not is_sealed(r[2]))
            or any(not is_sealed(value) for _name, value in json.loads(r[3] or "[]"))
        ]
        if plain:
            with self.backend.transaction():
                self._reseal(plain, self.secret_box)

    def reseal_secrets(self, box: SecretBox) -> int:
        """Re-encrypt every secret (tokens, previous tokens, header values) with `box`'s first key,
        in one transaction, and use `box` from now on (`ae key rotate`); the number of subscriptions."""
        with self.backend.transaction():
            rows = self.backend.execute(
                "SELECT subscription_id, verification_token, previous_token, custom_headers FROM subscriptions"
            ).rows
            self._reseal(rows, box)
        self._box = box
        return len(rows)

    def _reseal(self, rows: Sequence[Sequence[Any]], box: SecretBox) -> None:
        """Rows of (id, token, previous token, headers) opened with the store's box, sealed with `box`."""
        current = self.secret_box
        self.backend.execute_many(
            "UPDATE subscriptions SET verification_token = ?, previous_token = ?, custom_headers = ?"
            " WHERE subscription_id = ?",
            [
                (
                    box.seal(current.open(token)),
                    box.seal(current.open(previous)) if previous else None,
                    self._encode_headers([(n, current.open(v)) for n, v in json.loads(headers or "[]")], box),
                    sid,
                )
                for sid, token, previous, headers in rows
            ],
        )

    def _encode_headers(self, headers: Sequence[tuple[str, str]], box: SecretBox | None = None) -> str | None:
        """Custom headers as stored: names in the clear (listings show them), values sealed."""
        if not headers:
            return None
        sealer = box or self.secret_box
        return json.dumps([[name, sealer.seal(value)] for name, value in headers])

    def _subscription(self, row: dict[str, Any], reveal: bool) -> Subscription:
        """A row as a Subscription. Unrevealed, the token is None (it cannot sign by
        mistake), header values are empty and the previous token stays sealed."""
        box = self.secret_box if reveal else None
        stored = row.pop("custom_headers", None)
        pairs = json.loads(stored) if stored else []
        row["custom_headers"] = tuple((name, box.open(value) if box else "") for name, value in pairs)
        row["verification_token"] = box.open(row["verification_token"]) if box else None
        if box and row.get("previous_token"):
            row["previous_token"] = box.open(row["previous_token"])
        row["rate_limit"] = RateLimit.parse(row["rate_limit"]) if row.get("rate_limit") else None
        return Subscription(**row)

    # -- reads and writes ----------------------------------------------------

    def add_subscription(
        self,
        event_name: str,
        recipient_url: str,
        token: str,
        notifier: str = "http",
        store_id: int = 0,
        signature_scheme: str = "magento",
        custom_headers: Sequence[tuple[str, str]] = (),
        payload_filter: str | None = None,
        body_format: str = "data",
        rate_limit: RateLimit | None = None,
    ) -> Subscription:
        now = timestamp()
        with self.backend.transaction():
            new_id = self.backend.execute(
                "INSERT INTO subscriptions (event_name, recipient_url, verification_token, status,"
                " subscribed_at, modified, notifier, store_id, signature_scheme, custom_headers,"
                " payload_filter, body_format, rate_limit)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING subscription_id",
                (
                    event_name,
                    recipient_url,
                    self.secret_box.seal(token),
                    ENABLED,
                    now,
                    now,
                    notifier,
                    store_id,
                    signature_scheme,
                    self._encode_headers(custom_headers),
                    payload_filter,
                    body_format,
                    str(rate_limit) if rate_limit else None,
                ),
            ).scalar()
        return self.subscription(int(new_id))

    def subscription(self, subscription_id: int, reveal: bool = True) -> Subscription:
        if not 0 < subscription_id <= MAX_ROWID:
            raise NotFound(f"no subscription with id {subscription_id}")
        rows = self.backend.rows("SELECT * FROM subscriptions WHERE subscription_id = ?", (subscription_id,))
        if not rows:
            raise NotFound(f"no subscription with id {subscription_id}", hint="run `ae subscriptions list` to see them")
        return self._subscription(rows[0], reveal)

    def find_subscription(self, subscription_id: int, reveal: bool = True) -> Subscription | None:
        try:
            return self.subscription(subscription_id, reveal)
        except NotFound:
            return None

    def all(self, event_name: str | None = None, reveal: bool = True) -> list[Subscription]:
        where, params = ("WHERE event_name = ?", [event_name]) if event_name else ("", [])
        sql = f"SELECT * FROM subscriptions {where} ORDER BY subscription_id"
        return [self._subscription(row, reveal) for row in self.backend.rows(sql, params)]

    def subscriptions_for(self, event_name: str, store_id: int) -> list[Subscription]:
        """Enabled subscribers of an event in a store: that store's and store 0's (all stores)."""
        rows = self.backend.rows(
            "SELECT * FROM subscriptions WHERE event_name = ? AND status = ? AND store_id IN (?, 0)"
            " ORDER BY subscription_id",
            (event_name, ENABLED, store_id),
        )
        return [self._subscription(row, True) for row in rows]

    def has_subscribers(self, event_name: str) -> bool:
        """Whether any enabled subscription takes the event (an operator event is raised only then)."""
        return bool(
            self.backend.execute(
                "SELECT 1 FROM subscriptions WHERE event_name = ? AND status = ? LIMIT 1", (event_name, ENABLED)
            ).rows
        )

    def set_custom_headers(self, subscription_id: int, headers: Sequence[tuple[str, str]]) -> Subscription:
        """Replace a subscription's custom headers (an empty sequence removes them)."""
        with self.backend.transaction():
            self.subscription(subscription_id, reveal=False)
            self.backend.execute(
                "UPDATE subscriptions SET custom_headers = ?, modified = ? WHERE subscription_id = ?",
                (self._encode_headers(headers), timestamp(), subscription_id),
            )
        return self.subscription(subscription_id)

    def rotate_token(self, subscription_id: int, new_token: str, previous_until: datetime | None) -> Subscription:
        """Make `new_token` current; the old one stays accepted until `previous_until` (None: not at all)."""
        with self.backend.transaction():
            old = self.subscription(subscription_id)
            self.backend.execute(
                "UPDATE subscriptions SET verification_token = ?, previous_token = ?, previous_token_expires = ?,"
                " modified = ? WHERE subscription_id = ?",
                (
                    self.secret_box.seal(new_token),
                    self.secret_box.seal(old.verification_token or "") if previous_until else None,
                    timestamp(previous_until) if previous_until else None,
                    timestamp(),
                    subscription_id,
                ),
            )
        return self.subscription(subscription_id)

    def set_status(self, subscription_ids: Sequence[int], enabled: bool) -> list[Subscription]:
        """Enable or disable several subscriptions; all ids must exist or nothing changes."""
        with self.backend.transaction():
            for subscription_id in subscription_ids:
                self.subscription(subscription_id, reveal=False)
            self.backend.execute_many(
                "UPDATE subscriptions SET status = ?, modified = ?, disabled_reason = NULL, disabled_at = NULL"
                " WHERE subscription_id = ?",
                [(ENABLED if enabled else DISABLED, timestamp(), i) for i in subscription_ids],
            )
            if enabled:
                self.lanes.resume_endpoints(subscription_ids)
        return [self.subscription(i, reveal=False) for i in subscription_ids]

    def update_subscription(self, subscription_id: int, enabled: bool, notifier: str | None = None) -> Subscription:
        """The module's save of an existing subscription: a new status, and a new notifier if given."""
        with self.backend.transaction():
            current = self.subscription(subscription_id)
            self.backend.execute(
                "UPDATE subscriptions SET status = ?, notifier = ?, modified = ? WHERE subscription_id = ?",
                (ENABLED if enabled else DISABLED, notifier or current.notifier, timestamp(), subscription_id),
            )
            if enabled and not current.enabled:
                self.lanes.resume_endpoints([subscription_id])
        return self.subscription(subscription_id)

    def set_recipient(
        self, subscription_id: int, recipient_url: str | None = None, store_id: int | None = None
    ) -> Subscription:
        """A new recipient and/or store scope for a subscription (None keeps the current one)."""
        with self.backend.transaction():
            current = self.subscription(subscription_id, reveal=False)
            self.backend.execute(
                "UPDATE subscriptions SET recipient_url = ?, store_id = ?, modified = ? WHERE subscription_id = ?",
                (
                    current.recipient_url if recipient_url is None else recipient_url,
                    current.store_id if store_id is None else store_id,
                    timestamp(),
                    subscription_id,
                ),
            )
        return self.subscription(subscription_id, reveal=False)

    def set_delivery_shape(self, subscription_id: int, payload_filter: str | None, body_format: str) -> Subscription:
        """A subscription's filter (None: every event) and body format, both written at once."""
        with self.backend.transaction():
            self.subscription(subscription_id, reveal=False)
            self.backend.execute(
                "UPDATE subscriptions SET payload_filter = ?, body_format = ?, modified = ? WHERE subscription_id = ?",
                (payload_filter, body_format, timestamp(), subscription_id),
            )
        return self.subscription(subscription_id, reveal=False)

    def count_filtered(self, counts: Mapping[int, int]) -> None:
        """Add to each subscription's count of events its filter held back (subscription id -> how many)."""
        if counts:
            self.backend.execute_many(
                "INSERT INTO filtered_events (subscription_id, filtered) VALUES (?, ?)"
                " ON CONFLICT (subscription_id) DO UPDATE SET filtered = filtered_events.filtered + excluded.filtered",
                sorted(counts.items()),
            )

    def filtered_counts(self) -> dict[int, int]:
        """subscription id -> events its filter held back, for the subscriptions that have any."""
        return {
            int(sid): int(n)
            for sid, n in self.backend.execute("SELECT subscription_id, filtered FROM filtered_events").rows
        }

    def set_rate_limit(self, subscription_id: int, rate_limit: RateLimit | None) -> Subscription:
        """A new rate limit for a subscription; None removes it (and its bucket)."""
        with self.backend.transaction():
            self.subscription(subscription_id, reveal=False)
            self.backend.execute(
                "UPDATE subscriptions SET rate_limit = ?, modified = ? WHERE subscription_id = ?",
                (str(rate_limit) if rate_limit else None, timestamp(), subscription_id),
            )
            if rate_limit is None:
                self.rate_buckets.forget(subscription_id)
        return self.subscription(subscription_id, reveal=False)

    def delete_subscription(self, subscription_id: int) -> Subscription:
        with self.backend.transaction():
            subscription = self.subscription(subscription_id, reveal=False)
            self.backend.execute("DELETE FROM subscriptions WHERE subscription_id = ?", (subscription_id,))
            self.backend.execute("DELETE FROM filtered_events WHERE subscription_id = ?", (subscription_id,))
            self.rate_buckets.forget(subscription_id)
        return subscription
