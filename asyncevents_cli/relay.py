"""The outbox relay: events published in an application's transaction, forwarded to the queue.

Where it runs. `ae consume trigger|all` runs a relay on a thread of its own
whenever the outbox can fill (``queue = "amqp"``, or a PostgreSQL store, where
`ae_publish()` writes it), so a deployment needs nothing new; `ae relay` runs
one alone, for a host that forwards without delivering or to drain the outbox
in a script. Relays take turns (see `queues/outbox.py`), so any number of them
can run: a dead consumer's share is simply taken by the next relay's turn.

A relay never dies of an outage: an unreachable broker or database is
reported once per outage and tried again every second; rows stay unsent
meanwhile, and nothing is lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from .config import Config
from .errors import DatabaseUnavailable, QueueUnavailable
from .queues import Queue, outbox
from .store import Store

log = logging.getLogger("asyncevents_cli")
BATCH = 500  # rows per turn: one broker transaction
IDLE_WAIT_SECONDS = 0.01  # between looks at an outbox that just had work: the bulk of the latency it adds
#: An outbox that stays empty is looked at less and less often, up to this: every consumer on
#: PostgreSQL runs a relay, and 100 idle looks a second from each would load a shared server.
IDLE_WAIT_MAX_SECONDS = 0.2
OUTAGE_WAIT_SECONDS = 1.0
KEEP_SENT_SECONDS = 24 * 3600  # sent rows are kept a day, to answer "was it forwarded?"
PRUNE_EVERY_SECONDS = 600.0


def outbox_in_use(config: Config) -> bool:
    """Whether anything can write the outbox: a broker queue, or ae_publish() on PostgreSQL."""
    return config.settings.queue == "amqp" or config.uses_postgres


class Relay:
    def __init__(self, store: Store, queue: Queue, batch: int = BATCH, idle_wait: float = IDLE_WAIT_SECONDS) -> None:
        self.store = store
        self.queue = queue
        self.batch = batch
        self.idle_wait = idle_wait
        self.forwarded = 0
        self._pruned_at = 0.0

    def forward_once(self) -> int:
        """One turn: the oldest unsent rows to the queue, marked sent in the same commit."""
        if not outbox.has_unsent(self.store):
            return 0
        with self.store.transaction():
            rows = outbox.take_unsent(self.store, self.batch)
            if rows:
                self.queue.forward_triggers([(message_id, body) for _, message_id, body in rows])
                outbox.mark_sent(self.store, [row_id for row_id, _, _ in rows], time.time())
        self.forwarded += len(rows)
        return len(rows)

    def drain(self) -> int:
        """Forward until the outbox is empty; return how many were forwarded."""
        total = 0
        while count := self.forward_once():
            total += count
        return total

    def run(self, stop: Callable[[], bool]) -> int:
        """Forward until `stop()`; ride through outages. Return how many were forwarded."""
        outage = False
        idle_wait = self.idle_wait
        while not stop():
            try:
                forwarded = self.forward_once()
                self._prune()
            except (QueueUnavailable, DatabaseUnavailable) as exc:
                if not outage:
                    log.warning("outbox relay: %s; trying again every %.0fs", exc.message, OUTAGE_WAIT_SECONDS)
                outage = True
                time.sleep(OUTAGE_WAIT_SECONDS)
                continue
            if outage:
                log.warning("outbox relay: forwarding again")
                outage = False
            # an empty look doubles the wait (up to the most); a look that found work resets it
            idle_wait = min(idle_wait * 2, IDLE_WAIT_MAX_SECONDS) if not forwarded else self.idle_wait
            if forwarded < self.batch:
                time.sleep(idle_wait)
        return self.forwarded

    def _prune(self) -> None:
        now = time.time()
        if now - self._pruned_at >= PRUNE_EVERY_SECONDS:
            self._pruned_at = now
            outbox.prune_sent(self.store, now - KEEP_SENT_SECONDS)


class RelayThread:
    """A relay beside a consumer, on its own thread with its own store and queue
    connections (a broker channel is not shared across threads)."""

    def __init__(self, open_relay: Callable[[], tuple[Relay, Callable[[], None]]]) -> None:
        self._open = open_relay
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._main, name="ae-outbox-relay", daemon=True)

    def start(self) -> RelayThread:
        self._thread.start()
        return self

    def _main(self) -> None:
        while True:  # through an outage at start, as the consumer beside it does
            try:
                relay, close = self._open()
                break
            except (QueueUnavailable, DatabaseUnavailable):
                if self._stopping.wait(OUTAGE_WAIT_SECONDS):
                    return
            except Exception:  # the consumer goes on delivering; the next start relays again
                log.exception("outbox relay did not start")
                return
        try:
            relay.run(self._stopping.is_set)
        except Exception:
            log.exception("outbox relay stopped")
        finally:
            close()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._thread.join(timeout)


def beside_consumer(config: Config, environ: Mapping[str, str] | None) -> RelayThread:
    """A started relay thread for a consumer of `config`, on connections of its own."""

    def open_relay() -> tuple[Relay, Callable[[], None]]:
        from .runtime import Runtime

        own = Runtime(config=config, environ=environ)
        return Relay(own.store, own.queue), own.close

    return RelayThread(open_relay).start()
