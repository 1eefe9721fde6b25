"""The retry policy, from tables."""

import pytest

from asyncevents_cli.backoff import RetryPolicy, backoff_units


@pytest.mark.parametrize(
    "death_count, expected",
    [(1, 1), (2, 4), (3, 9), (4, 16), (5, 25), (6, 36), (7, 49), (8, 60), (9, 60)],
)
def test_default_backoff_table(death_count: int, expected: float) -> None:
    assert backoff_units(death_count) == expected


def test_backoff_respects_exponent_and_cap() -> None:
    assert [backoff_units(n, exponent=3, max_units=100) for n in (1, 2, 3, 4, 5)] == [1, 8, 27, 64, 100]


def test_backoff_rejects_death_count_zero() -> None:
    with pytest.raises(ValueError):
        backoff_units(0)


def test_delay_seconds_scales_by_unit() -> None:
    policy = RetryPolicy(unit_seconds=0.5)
    assert [policy.delay_seconds(n) for n in (1, 2, 3, 9)] == [0.5, 2.0, 4.5, 30.0]


@pytest.mark.parametrize(
    "max_deaths, failed_at, expected",
    [
        (3, 0, 1),  # the trigger attempt failed: the chain starts at death count 1
        (3, 1, 2),
        (3, 2, 3),
        (3, 3, None),  # death count reached the limit: dead-letter
        (5, 5, None),
        (0, 0, None),  # no retries at all
        (1, 0, 1),
        (1, 1, None),
    ],
)
def test_next_death_count(max_deaths: int, failed_at: int, expected: int | None) -> None:
    assert RetryPolicy(max_deaths=max_deaths).next_death_count(failed_at) == expected


def test_a_permanent_failure_gets_one_plus_max_deaths_attempts() -> None:
    policy = RetryPolicy(max_deaths=3)
    attempts, waits, death = 1, [], 0
    while (death := policy.next_death_count(death)) is not None:
        waits.append(policy.delay_units(death))
        attempts += 1
    assert attempts == 4
    assert waits == [1, 4, 9]
