"""Table `rate_buckets`: one token bucket per rate-limited subscription, shared by
every consumer of the store (several processes on SQLite, several hosts on
PostgreSQL).

The arithmetic is `pacing.take_tokens` (pure); here it is applied atomically.
Each take reads the row and writes it back only if its `version` is still the
one read (compare and set), so two consumers taking at once cannot both spend
the same token: the loser reads again. The statements are the SQL both engines
speak, with no row lock: on SQLite the transaction (BEGIN IMMEDIATE) already
keeps other writers out, on PostgreSQL the version check does.
`updated` is the time of the last refill in microseconds since the epoch (an
integer: as float seconds, two times a tenth of a second apart differ by
0.09999990 and a 20/s bucket would lose a token to rounding). On
PostgreSQL hosts share it, so their clocks should agree (NTP); a clock behind
the row's time refills nothing rather than going negative.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ..pacing import RateLimit, take_tokens
from .backend import Backend

#: Compare-and-set rounds before giving up for now: each lost round means another
#: consumer took tokens, so after this many the caller simply waits and asks again.
MAX_ROUNDS = 20
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


class RateBucketTable:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def take_rate_tokens(self, subscription_id: int, rate: RateLimit, want: int, now: datetime) -> tuple[int, float]:
        """Take up to `want` tokens of the subscription's bucket: (granted, seconds until
        the next token). A new bucket starts full (`rate.burst` tokens)."""
        moment = (now - EPOCH) // MICROSECOND
        for _ in range(MAX_ROUNDS):
            with self.backend.transaction():
                self.backend.execute(
                    "INSERT INTO rate_buckets (subscription_id, tokens, updated, version) VALUES (?, ?, ?, 0)"
                    " ON CONFLICT (subscription_id) DO NOTHING",
                    (subscription_id, float(rate.burst), moment),
                )
                tokens, updated, version = self.backend.execute(
                    "SELECT tokens, updated, version FROM rate_buckets WHERE subscription_id = ?", (subscription_id,)
                ).rows[0]
                elapsed = (moment - int(updated)) / 1_000_000
                granted, left, wait = take_tokens(rate, float(tokens), elapsed, want)
                written = self.backend.execute(
                    "UPDATE rate_buckets SET tokens = ?, updated = ?, version = ?"
                    " WHERE subscription_id = ? AND version = ?",
                    (left, max(moment, int(updated)), int(version) + 1, subscription_id, version),
                ).rowcount
            if written == 1:
                return granted, wait
        return 0, 1 / rate.per_second

    def forget(self, subscription_id: int) -> None:
        """Inside a transaction: the bucket of a subscription that no longer has a limit,
        or is gone. `ae` deletes only what it created: it made this row."""
        self.backend.execute("DELETE FROM rate_buckets WHERE subscription_id = ?", (subscription_id,))
