"""Running consumers through an outage of the PostgreSQL store.

A consumer stops when the store cannot be reached (`DatabaseUnavailable`):
its attempts in flight are cancelled, and what it held comes back (a table
queue's lease runs out; a broker requeues). `run_reconnecting` then waits,
with a growing back-off, and starts a new consumer on the same runtime; the
store's connection pool replaces the broken connections. Nothing is lost: a
message is acknowledged only after its attempts are logged. The outage may
last up to `give_up_after` seconds in a row before the error is raised
(exit 3), as a lost broker's reconnects do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..errors import DatabaseUnavailable
from .consumer import Consumer

log = logging.getLogger("asyncevents_cli")

GIVE_UP_AFTER_SECONDS = 60.0
FIRST_DELAY_SECONDS = 0.5
LONGEST_DELAY_SECONDS = 8.0


def run_reconnecting(
    make_consumer: Callable[[], Consumer],
    max_messages: int | None = None,
    until_empty: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    on_consumer: Callable[[Consumer], None] = lambda consumer: None,
    give_up_after: float = GIVE_UP_AFTER_SECONDS,
    on_message: Callable[[int], None] | None = None,
) -> int:
    """Run consumers from `make_consumer` until one finishes; return the messages settled.
    `on_message` is told the running total after each message (across reconnects)."""
    handled = 0
    down_since: float | None = None
    delay = FIRST_DELAY_SECONDS
    while True:
        consumer: Consumer | None = None
        try:
            consumer = make_consumer()
            on_consumer(consumer)
            remaining = None if max_messages is None else max_messages - handled
            counted = None if on_message is None else _offset(on_message, handled)
            return handled + consumer.run(
                max_messages=remaining, until_empty=until_empty, should_stop=should_stop, on_message=counted
            )
        except DatabaseUnavailable as exc:
            if consumer is not None and consumer.processed:
                handled += consumer.processed
                down_since, delay = None, FIRST_DELAY_SECONDS  # it worked for a while: a new outage
            now = time.monotonic()
            down_since = now if down_since is None else down_since
            if should_stop() or now - down_since >= give_up_after:
                raise
            log.warning("%s; reconnecting in %.1f s", exc.message, delay)
            _sleep(delay, should_stop)
            delay = min(delay * 2, LONGEST_DELAY_SECONDS)


def _offset(on_message: Callable[[int], None], before: int) -> Callable[[int], None]:
    """`on_message` told totals across consumers: what earlier ones settled, plus this one's count."""
    return lambda n: on_message(before + n)


def _sleep(seconds: float, should_stop: Callable[[], bool]) -> None:
    """Sleep, but wake early when told to stop."""
    deadline = time.monotonic() + seconds
    while not should_stop() and time.monotonic() < deadline:
        time.sleep(min(0.1, deadline - time.monotonic()))
