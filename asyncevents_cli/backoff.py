"""The retry policy: pure functions, no I/O, tested from a table."""

from __future__ import annotations

from dataclasses import dataclass


def backoff_units(death_count: int, exponent: float = 2, max_units: float = 60) -> float:
    """Back-off, in units, before retry number `death_count` (1-based).

    The module's rule: min(max, n ** exponent), so 1, 4, 9, 16, ... capped at 60.
    """
    if death_count < 1:
        raise ValueError("death_count starts at 1")
    try:
        return min(float(max_units), float(death_count) ** exponent)
    except OverflowError:  # a huge death count: the cap applies
        return float(max_units)


@dataclass(frozen=True)
class RetryPolicy:
    """What to do after a failed attempt, from the settings that govern it."""

    max_deaths: int = 5
    exponent: float = 2
    max_seconds: float = 60
    unit_seconds: float = 1.0

    def delay_units(self, death_count: int) -> float:
        return backoff_units(death_count, self.exponent, self.max_seconds)

    def delay_seconds(self, death_count: int) -> float:
        """Wall-clock wait before the attempt that carries `death_count`."""
        return self.delay_units(death_count) * self.unit_seconds

    def next_death_count(self, failed_death_count: int) -> int | None:
        """The death count of the next retry after a failed attempt, or None to dead-letter.

        The trigger attempt has death count 0; a failure there always starts the
        chain at 1. A retry at death count n is placed again (n + 1) while
        n < max_deaths, so a permanently failing subscriber gets 1 + max_deaths
        attempts in all.
        """
        if failed_death_count == 0:
            return 1 if self.max_deaths > 0 else None
        if failed_death_count < self.max_deaths:
            return failed_death_count + 1
        return None
