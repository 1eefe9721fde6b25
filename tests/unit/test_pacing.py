"""pacing.py: rate limits, Retry-After and the adaptive limit, from tables and a simulation."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest

from asyncevents_cli.pacing import AdaptiveLimit, RateLimit, Signal, parse_retry_after, take_tokens

NOW = datetime(2026, 12, 5, 2, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "count", "unit", "per_second", "shown"),
    [
        ("50/s", 50, "s", 50.0, "50/s"),
        ("300/m", 300, "m", 5.0, "300/m"),
        (" 1/M ", 1, "m", 1 / 60, "1/m"),
        ("1000000/s", 1_000_000, "s", 1_000_000.0, "1000000/s"),
    ],
)
def test_rate_limit_parses(text: str, count: int, unit: str, per_second: float, shown: str) -> None:
    rate = RateLimit.parse(text)
    assert rate == RateLimit(count, unit)
    assert rate.per_second == pytest.approx(per_second)
    assert str(rate) == shown
    assert RateLimit.parse(str(rate)) == rate


@pytest.mark.parametrize("text", ["none", "None", " NONE "])
def test_rate_limit_none_means_no_limit(text: str) -> None:
    assert RateLimit.parse(text) is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "must look like 50/s"),
        ("50", "must look like 50/s"),
        ("50/h", "must look like 50/s"),
        ("-5/s", "must look like 50/s"),
        ("5.5/s", "must look like 50/s"),
        ("５/s", "must look like 50/s"),  # a full-width digit
        ("5_0/s", "must look like 50/s"),
        ("50 / s", "must look like 50/s"),
        ("0/s", "between 1 and 1000000"),
        ("1000001/s", "between 1 and 1000000"),
        ("99999999/s", "must look like 50/s"),
    ],
)
def test_rate_limit_refuses_in_one_line(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as caught:
        RateLimit.parse(text)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("rate", "burst"), [("50/s", 5), ("20/s", 2), ("21/s", 3), ("300/m", 1), ("1/m", 1)])
def test_rate_limit_burst_is_a_tenth_of_a_second(rate: str, burst: int) -> None:
    parsed = RateLimit.parse(rate)
    assert parsed is not None and parsed.burst == burst


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("Sat, 05 Dec 2026 02:00:30 GMT", 30.0),
        ("Sat, 05 Dec 2026 03:00:00 GMT", 3600.0),
        ("Sat, 05 Dec 2026 01:59:00 GMT", 0.0),  # in the past
        ("Saturday, 05-Dec-26 02:00:10 GMT", 10.0),  # RFC 850, obsolete but allowed
        ("Sat Dec  5 02:00:20 2026", 20.0),  # asctime, obsolete but allowed
        ("Sat, 05 Dec 2026 02:00:10 -0000", 10.0),
        ("Sat, 99 Dec 2026 02:00:10 GMT", None),
    ],
)
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_retry_after_takes_a_naive_or_offset_now() -> None:
    assert parse_retry_after("Sat, 05 Dec 2026 02:00:30 GMT", NOW.replace(tzinfo=None)) == 30.0
    plus_one = NOW.astimezone(timezone(timedelta(hours=1)))
    assert parse_retry_after("Sat, 05 Dec 2026 02:00:30 GMT", plus_one) == 30.0


# -- the adaptive limit, from tables ------------------------------------------


def test_limit_starts_at_the_ceiling_and_refuses_nonsense() -> None:
    assert AdaptiveLimit(32).limit == 32
    for ceiling, floor in [(0, 1), (4, 5), (4, 0)]:
        with pytest.raises(ValueError):
            AdaptiveLimit(ceiling, floor)


@pytest.mark.parametrize("signal", [Signal.OVERLOAD, Signal.TIMEOUT])
def test_one_burst_of_overload_shrinks_once(signal: Signal) -> None:
    limit = AdaptiveLimit(32)
    for _ in range(32):  # every attempt of the round in flight answers 503
        limit.record(signal)
    assert limit.limit == 24
    limit.record(signal)  # the next round's first answer: a new signal
    assert limit.limit == 18


def test_shrinks_no_lower_than_the_floor() -> None:
    limit = AdaptiveLimit(8, floor=3)
    for _ in range(100):
        limit.record(Signal.OVERLOAD)
    assert limit.limit == 3


def test_grows_by_one_per_healthy_round_up_to_the_ceiling() -> None:
    limit = AdaptiveLimit(10)
    limit.record(Signal.OVERLOAD)
    assert limit.limit == 7
    for _ in range(10):  # the answers of the round that was in flight
        limit.record(Signal.OK, 0.02)
    assert limit.limit == 8
    for _ in range(1000):
        limit.record(Signal.OK, 0.02)
    assert limit.limit == 10


def test_failures_neither_grow_nor_shrink() -> None:
    limit = AdaptiveLimit(10)
    limit.record(Signal.OVERLOAD)
    for _ in range(100):
        limit.record(Signal.FAILURE)
    assert limit.limit == 7


def test_rising_latency_shrinks_and_a_lasting_one_becomes_normal() -> None:
    limit = AdaptiveLimit(16)
    for _ in range(50):
        limit.record(Signal.OK, 0.020)
    assert limit.limit == 16
    for _ in range(10):
        limit.record(Signal.OK, 0.200)
    assert limit.limit < 16
    for _ in range(3000):  # the receiver is slower for good: it grows back
        limit.record(Signal.OK, 0.200)
    assert limit.limit == 16


def test_jitter_of_a_fast_receiver_is_no_signal() -> None:
    limit = AdaptiveLimit(16)
    jitter = random.Random(7)
    for _ in range(2000):
        limit.record(Signal.OK, 0.001 + jitter.random() * 0.004)
    assert limit.limit == 16


# -- the adaptive limit against a simulated receiver --------------------------


@dataclass
class Tally:
    served: int = 0
    refused: int = 0


def simulate(seconds: float, capacity: int, service: float, ceiling: int, after: float, floor: int = 1) -> Tally:
    """A sender keeping `limit.limit` requests in flight to a receiver that serves
    `capacity` at a time (`service` seconds each, with a little jitter) and answers
    503 at once beyond that. Counts what happened after `after` seconds."""
    jitter = random.Random(17)
    limit = AdaptiveLimit(ceiling, floor)
    busy = in_flight = 0
    tally = Tally()
    finishing: list[tuple[float, int, bool]] = []  # (time, sequence, served)
    sequence = 0
    now = 0.0
    while now < seconds:
        while in_flight < limit.limit:
            served = busy < capacity
            busy += served
            in_flight += 1
            took = service * (0.9 + 0.2 * jitter.random()) if served else 0.0005
            heapq.heappush(finishing, (now + took + 0.0005, sequence, served))
            sequence += 1
        now, _, served = heapq.heappop(finishing)
        in_flight -= 1
        busy -= served
        if now >= after:
            tally.served += served
            tally.refused += not served
        if served:
            limit.record(Signal.OK, service)
        else:
            limit.record(Signal.OVERLOAD, 0.0005)
    return tally


@pytest.mark.parametrize("ceiling", [8, 9, 16, 32, 200])
def test_overload_target_of_issue_17(ceiling: int) -> None:
    """8 at a time, 20 ms each, 503 beyond: after 5 s at most 10% of attempts get a
    503, and at least 80% of the receiver's capacity (400/s) is used."""
    tally = simulate(seconds=15, capacity=8, service=0.020, ceiling=ceiling, after=5)
    attempts = tally.served + tally.refused
    assert tally.refused <= 0.10 * attempts
    capacity_per_second = 8 / 0.020
    assert tally.served / 10 >= 0.80 * capacity_per_second


def test_a_fixed_limit_would_miss_it() -> None:
    """The same receiver with no adaptation (the limit pinned at 32): most attempts
    get a 503, which is what the target guards against."""
    tally = simulate(seconds=3, capacity=8, service=0.020, ceiling=32, after=1, floor=32)
    assert tally.refused > 0.9 * (tally.served + tally.refused)


# -- the token bucket's arithmetic --------------------------------------------


@pytest.mark.parametrize(
    ("rate", "tokens", "elapsed", "want", "granted", "left", "wait"),
    [
        ("20/s", 2.0, 0.0, 5, 2, 0.0, 0.05),  # a full bucket: the burst, then one token per 50 ms
        ("20/s", 0.0, 0.0, 1, 0, 0.0, 0.05),
        ("20/s", 0.0, 0.025, 1, 0, 0.5, 0.025),  # half a token: half the wait
        ("20/s", 0.0, 0.1, 1, 1, 1.0, 0.0),  # two tokens refilled, one left
        ("20/s", 0.0, 3600.0, 100, 2, 0.0, 0.05),  # idle for an hour: still only the burst
        ("20/s", 1.0, -5.0, 1, 1, 0.0, 0.05),  # a clock behind the bucket's refills nothing
        ("300/m", 0.0, 0.1, 1, 0, 0.5, 0.1),
        ("1/m", 1.0, 0.0, 3, 1, 0.0, 60.0),
        ("20/s", 2.0, 0.0, 0, 0, 2.0, 0.0),
    ],
)
def test_take_tokens(
    rate: str, tokens: float, elapsed: float, want: int, granted: int, left: float, wait: float
) -> None:
    parsed = RateLimit.parse(rate)
    assert parsed is not None
    got = take_tokens(parsed, tokens, elapsed, want)
    assert got[0] == granted
    assert got[1] == pytest.approx(left)
    assert got[2] == pytest.approx(wait)
