"""Riding out a short loss of the database in place: the consumer's queue and
store calls are tried again with back-off, while its deliveries go on.

A PostgreSQL server that kills a backend, or refuses connections for a few
seconds (a restart, a failover), fails the statement or transaction under way
with `DatabaseUnavailable`; the server rolled that transaction back, so running
the same call again is safe (a settle places its broker follow-ups once, see
`Queue.settle`). A connection lost during COMMIT is the exception: the store
asks the server how that transaction ended (`PostgresStore._commit`), so a
committed one is never run twice; when it cannot learn that (`CommitUnknown`),
the call is not tried again here. The pool replaces broken connections on the next
checkout. Nothing in flight is dropped and no lease has to run out. When the
database stays away longer than `give_up_after`, the error goes up and
`reconnect.run_reconnecting` takes over: it stops the consumer (what it held
comes back) and starts a new one once the database answers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from ..errors import CommitUnknown, DatabaseUnavailable

log = logging.getLogger("asyncevents_cli")
T = TypeVar("T")

GIVE_UP_AFTER = 10.0  # seconds in place; longer outages are `reconnect`'s
FIRST_DELAY = 0.1
MAX_DELAY = 5.0


def delays(first: float = FIRST_DELAY, most: float = MAX_DELAY) -> Iterator[float]:
    """The waits between tries: doubling from `first`, never more than `most`."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, most)


class Retrying:
    def __init__(
        self,
        give_up_after: float = GIVE_UP_AFTER,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
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
            except CommitUnknown:
                raise  # it may have committed: running it again could do its work twice
            except DatabaseUnavailable as exc:
                now = self.clock()
                deadline = deadline if deadline is not None else now + self.give_up_after
                delay = next(waits)
                if now + delay > deadline:
                    raise
                log.warning("database connection lost (%s); trying again in %.1fs", exc.message, delay)
                self.retries += 1
                self.sleep(delay)
