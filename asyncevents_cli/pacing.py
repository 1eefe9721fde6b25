"""How fast to go to one receiver: rate limits, Retry-After, adaptive concurrency.

Pure, like `backoff.py`: no I/O and no clock of its own (callers pass `now`
and latencies), so every rule is tested from a table or a simulation. The
engine keeps one `AdaptiveLimit` per subscription and consults it; the store
keeps the shared token bucket a `RateLimit` describes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

#: "50/s", "300/m": ASCII digits only (`str.isdigit` would take "５" too), then the unit.
_RATE = re.compile(r"([0-9]{1,7})/([sm])")
_UNIT_SECONDS = {"s": 1, "m": 60}
#: The highest count accepted: far beyond what one receiver takes, small enough for every backend.
MAX_RATE_COUNT = 1_000_000
_DELTA_SECONDS = re.compile(r"[0-9]{1,10}")


@dataclass(frozen=True)
class RateLimit:
    """At most `count` requests per `unit` ("s" or "m") to one subscription."""

    count: int
    unit: str

    @classmethod
    def parse(cls, text: str) -> RateLimit | None:
        """ "50/s" or "300/m"; "none" means no limit (None). Anything else is a ValueError
        whose message is one line a command can print as it is."""
        cleaned = text.strip().lower()
        if cleaned == "none":
            return None
        match = _RATE.fullmatch(cleaned)
        if match is None:
            raise ValueError(f"rate limit must look like 50/s or 300/m, or be none, not {text[:40]!r}")
        count = int(match.group(1))
        if not 1 <= count <= MAX_RATE_COUNT:
            raise ValueError(f"rate limit count must be between 1 and {MAX_RATE_COUNT}, not {count}")
        return cls(count, match.group(2))

    @property
    def per_second(self) -> float:
        return self.count / _UNIT_SECONDS[self.unit]

    @property
    def burst(self) -> int:
        """Tokens a bucket holds at most: a tenth of a second's worth, at least one. Any
        one-second window then sees at most the rate plus this (20/s: 22), even just
        after the subscription was idle."""
        return max(1, math.ceil(self.per_second / 10))

    def __str__(self) -> str:
        return f"{self.count}/{self.unit}"


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds ("120") or an
    HTTP-date ("Wed, 21 Oct 2026 07:28:00 GMT"). A date in the past is 0; a
    missing or unreadable value is None (the caller's own back-off applies).
    Capping a far-off answer (`retry_after_max_seconds`) is the caller's."""
    if value is None:
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" parses naive: HTTP-dates are always GMT
        when = when.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class Signal(StrEnum):
    """What one finished attempt says about the receiver's load."""

    OK = "ok"  # answered in time, success or an ordinary failure that is not about load
    OVERLOAD = "overload"  # 429 or 503: the receiver says it has too much
    TIMEOUT = "timeout"  # no answer in time: as good a sign of overload as a 503
    FAILURE = "failure"  # refused, reset, 5xx: says nothing about load, so neither grow nor shrink


#: On overload the limit is multiplied by this. Halving (TCP's choice) leaves a
#: receiver that serves 8 at a time at 4-5 for several rounds after each probe
#: past its capacity (about 80% of it on average); 0.75 keeps it near 90%.
DECREASE_FACTOR = 0.75
#: Smoothed latency this many times the baseline counts as overload...
LATENCY_RATIO = 2.0
#: ...provided it is also this much slower in seconds: a 1 ms receiver's jitter is no signal.
LATENCY_SLACK = 0.010
#: Weight of a new latency in the smoothed latency (an exponential moving average).
LATENCY_WEIGHT = 0.1
#: The baseline follows a lasting slowdown by this share of the gap per answer.
BASELINE_DRIFT = 0.01


class AdaptiveLimit:
    """How many attempts may be in flight to one receiver: additive increase,
    multiplicative decrease (AIMD), as TCP paces a connection.

    - Grows by one after a round of healthy answers (one per request the limit
      allows), up to `ceiling`.
    - Shrinks by `DECREASE_FACTOR` on an overload, a timeout, or latency well
      above the baseline, and then ignores further overload signals until the
      round in flight when it shrank has answered: one burst of 503s is one
      signal, not a collapse to `floor`.
    - The baseline is the fastest recent healthy latency: it drops at once to a
      faster answer and rises slowly (`BASELINE_DRIFT`), so a receiver that is
      lastingly slower becomes the new normal rather than a permanent alarm.
    """

    def __init__(self, ceiling: int, floor: int = 1) -> None:
        if floor < 1 or ceiling < floor:
            raise ValueError(f"need 1 <= floor <= ceiling, not floor={floor} ceiling={ceiling}")
        self.ceiling = ceiling
        self.floor = floor
        self.limit = ceiling
        self._growth = 0.0  # healthy answers counted toward the next +1, in limits
        self._ignore = 0  # answers still to come from the round in flight at the last decrease
        self.baseline: float | None = None
        self.smoothed: float | None = None

    def record(self, signal: Signal, latency: float | None = None) -> None:
        """One finished attempt: what it signalled and, if it was answered, how long it took."""
        if self._ignore:
            self._ignore -= 1
        if signal in (Signal.OVERLOAD, Signal.TIMEOUT):
            self._decrease()
            return
        if signal is Signal.FAILURE:
            return
        if latency is not None and self._latency_rose(latency):
            self._decrease()
            return
        self._growth += 1 / self.limit
        if self._growth >= 1:
            self._growth = 0.0
            self.limit = min(self.ceiling, self.limit + 1)

    def _latency_rose(self, latency: float) -> bool:
        if self.baseline is None or self.smoothed is None:
            self.baseline = self.smoothed = latency
            return False
        self.smoothed += (latency - self.smoothed) * LATENCY_WEIGHT
        self.baseline = min(latency, self.baseline + (latency - self.baseline) * BASELINE_DRIFT)
        return self.smoothed > self.baseline * LATENCY_RATIO and self.smoothed - self.baseline > LATENCY_SLACK

    def _decrease(self) -> None:
        self._growth = 0.0
        if self._ignore:
            return
        # Every attempt in flight now was sent under the old limit: their answers
        # describe the load before this decrease, so they may not shrink it again.
        self._ignore = self.limit
        self.limit = max(self.floor, int(self.limit * DECREASE_FACTOR))


#: A share of a token below which rounding errors are forgiven (see `take_tokens`).
TOKEN_EPSILON = 1e-6


def take_tokens(rate: RateLimit, tokens: float, elapsed: float, want: int) -> tuple[int, float, float]:
    """A token bucket's take: refill `tokens` for `elapsed` seconds (a negative
    interval, a clock behind the bucket's, refills nothing) up to `rate.burst`,
    then take up to `want` whole tokens. Returns (granted, tokens left, seconds
    until the next whole token; 0 if one is there already)."""
    available = min(float(rate.burst), tokens + max(0.0, elapsed) * rate.per_second)
    # Times are seconds since the epoch, precise to about 0.2 microseconds: a refill
    # that should be exactly 2 tokens may come out as 1.9999998. That counts as 2.
    granted = max(0, min(want, int(available + TOKEN_EPSILON)))
    left = max(0.0, available - granted)
    wait = 0.0 if left + TOKEN_EPSILON >= 1 else (1 - left) / rate.per_second
    return granted, left, wait
