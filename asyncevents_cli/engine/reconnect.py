"""Riding out a lost database connection: the consumer's queue and store calls
are tried again with back-off instead of stopping the consumer.

A PostgreSQL server that restarts, or kills a backend, fails the statement or
transaction under way with `DatabaseUnavailable`; the transaction is rolled
back by the server, so running the same call again is safe (a settle places
its broker follow-ups once, see `settle._place`). The pool replaces broken
connections on the next checkout. Only when the database stays away for
`give_up_after` seconds does the error stop the consumer (exit 3).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from ..errors import DatabaseUnavailable

log = logging.getLogger("asyncevents_cli")
T = TypeVar("T")

GIVE_UP_AFTER = 60.0  # seconds of a database that stays away before the consumer stops
FIRST_DELAY = 0.1
MAX_DELAY = 5.0


def delays(first: float = FIRST_DELAY, most: float = MAX_DELAY) -> Iterator[float]:
    """The waits between tries: doubling from `first`, never more than `most`."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, most)


class Reconnecting:
    def __init__(self, give_up_after: float = GIVE_UP_AFTER, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.give_up_after = give_up_after
        self.sleep = sleep
        self.clock = clock
        #: how many times a call was tried again (for tests and the curious)
        self.retries = 0

    def call(self, operation: Callable[..., T], *args: object) -> T:
        """`operation(*args)`, tried again after `DatabaseUnavailable` until `give_up_after` runs out."""
        deadline: float | None = None
        waits = delays()
        while True:
            try:
                return operation(*args)
            except DatabaseUnavailable as exc:
                now = self.clock()
                deadline = deadline if deadline is not None else now + self.give_up_after
                delay = next(waits)
                if now + delay > deadline:
                    raise
                log.warning("database connection lost (%s); trying again in %.1fs", exc.message, delay)
                self.retries += 1
                self.sleep(delay)
