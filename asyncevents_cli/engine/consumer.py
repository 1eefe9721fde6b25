"""The consumer loop: lease messages in batches, keep a bounded window of
attempts in flight, settle what finished in batches, stop gracefully.

One asyncio loop per consumer process for the deliveries, and one I/O thread
(`io.IoThread`) for every queue and store call. The loop hands the thread one
*cycle* at a time: settle what finished, renew leases, lease more. While a
cycle waits on fsync or the broker the loop keeps delivering, and what finishes
meanwhile is settled by the next cycle, so a slow disk makes batches larger
rather than the consumer slower. When nothing is in flight the cycle blocks in
the queue's own poll.

Batching: finished work is settled once half the window has finished, or the
oldest of it has waited `SETTLE_EVERY`, or nothing else is in flight, or the
consumer is stopping, or a cycle runs anyway. More is leased once the messages
waiting for a slot of the window have run out. An empty queue is looked at
again every `BUSY_WAIT` while attempts run, never in a tight loop.

Stopping: `should_stop()` (SIGTERM, Ctrl-C) ends the taking; attempts under way
finish and are settled; messages taken but not yet begun are given back.
`abort()` (a second Ctrl-C) cancels the attempts in flight at once and gives
every held message back unsettled: they come back on the next start.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime

from ..config import Config
from ..errors import DatabaseUnavailable
from ..notifiers import Notifiers
from ..queues.base import KINDS, Envelope, Queue
from ..store import Store, utcnow
from .decisions import Settlement
from .handling import Handler, Work
from .io import IoThread
from .retrying import Retrying
from .settle import settle, settle_and_take

log = logging.getLogger("asyncevents_cli")

QUICK_LOOK = 0.02  # seconds: right after work, the queue is often empty; do not wait a full poll
BUSY_WAIT = 0.05  # seconds between looks at an empty queue and the stop flag while attempts run
SETTLE_EVERY = 0.02  # seconds: finished work waits at most about this long for its settle
EXTEND_EVERY = 5.0  # seconds between lease renewals of the messages held


class Doorbell:
    """Wakes the loop when work finishes, without asking every task (as `asyncio.wait` does)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiter: asyncio.Future[None] | None = None

    def ring(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self, timeout: float) -> None:
        """Until `ring` or `timeout` seconds, whichever comes first."""
        self._waiter = self._loop.create_future()
        timer = self._loop.call_later(timeout, self.ring)
        try:
            await self._waiter
        finally:
            timer.cancel()
            self._waiter = None


class Aborted(Exception):
    """The consumer was aborted; in-flight attempts were cancelled and nothing they held was settled."""


class Consumer:
    def __init__(
        self,
        config: Config,
        store: Store,
        queue: Queue,
        notifiers: Notifiers,
        kinds: Sequence[str] = KINDS,
        concurrency: int | None = None,
        per_subscription: int | None = None,
        poll_timeout: float = 0.25,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown queue kind(s): {sorted(unknown)}")
        self.config = config
        self.store = store
        self.queue = queue
        self.notifiers = notifiers
        self.kinds = tuple(kinds)
        self.concurrency = max(1, concurrency or config.settings.concurrency)
        self.per_subscription = max(1, per_subscription or config.settings.subscription_concurrency)
        #: messages held unsettled at once: twice the window, so finished attempts
        #: waiting for the next settle batch do not leave the window idle
        self.held_limit = 2 * self.concurrency
        self.poll_timeout = poll_timeout
        self.now = now
        self.processed = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task | None = None
        self._aborted = False
        #: queue and store calls ride out a short loss of the database in place (see `retrying`)
        self.retrying = Retrying()
        self._under_way: dict[asyncio.Task[Settlement], Work] = {}

    @property
    def in_flight(self) -> int:
        """Attempts under way (or waiting for a slot) now; read by the metrics thread."""
        return len(self._under_way)

    def run(
        self,
        max_messages: int | None = None,
        until_empty: bool = False,
        should_stop: Callable[[], bool] = lambda: False,
        on_message: Callable[[int], None] | None = None,
    ) -> int:
        """Process messages until told to stop; return how many were settled.

        With `until_empty`, return once nothing of these kinds is queued, due,
        delayed or in flight: delayed retries are waited for. Raises `Aborted`
        after `abort()`.
        """
        asyncio.run(self._run(max_messages, until_empty, should_stop, on_message))
        if self._aborted:
            raise Aborted("aborted: attempts in flight were cancelled; their messages come back on the next start")
        return self.processed

    def abort(self) -> None:
        """Cancel everything in flight now. Safe to call from a signal handler."""
        self._aborted = True
        if self._loop is not None and self._main is not None:
            self._loop.call_soon_threadsafe(self._main.cancel)

    async def _run(
        self,
        max_messages: int | None,
        until_empty: bool,
        should_stop: Callable[[], bool],
        on_message: Callable[[int], None] | None,
    ) -> None:
        self._loop = loop = asyncio.get_running_loop()
        self._main = asyncio.current_task()
        io = IoThread()
        handler = Handler(
            self.config, self.store, self.queue, self.notifiers, self.concurrency, self.per_subscription, self.now, io
        )
        tasks: dict[asyncio.Task[Settlement], Work] = {}  # under way (or waiting for a slot)
        self._under_way = tasks
        finished: list[asyncio.Task[Settlement]] = []  # done, not settled yet
        settle_by = 0.0  # when the oldest finished work is due to be settled
        doorbell = Doorbell(loop)

        def on_done(task: asyncio.Task[Settlement]) -> None:
            nonlocal settle_by
            if tasks.pop(task, None) is None or task.cancelled():
                return
            if not finished:
                settle_by = time.monotonic() + SETTLE_EVERY
            finished.append(task)
            doorbell.ring()

        # A message comes back while its first copy is still under way here when the
        # broker redelivers after a lost connection: the copy waits until the first is
        # settled, so that its logged attempts are seen and not made again.
        holding: Counter[str] = Counter()  # message ids of the work under way or unsettled
        deferred: list[Envelope] = []

        def start(envelope: Envelope) -> None:
            if envelope.message_id:
                holding[envelope.message_id] += 1
            work = Work(envelope)
            task = asyncio.ensure_future(handler.handle(work))
            tasks[task] = work
            task.add_done_callback(on_done)

        cycle: concurrent.futures.Future[tuple[list[Envelope], bool]] | None = None
        taken = 0
        settling: list[Envelope] = []  # the messages the cycle under way is settling
        just_worked = False
        looked_empty_at: float | None = None  # the last lease that found nothing
        last_extend = time.monotonic()
        try:
            if self._aborted:
                return
            await io.call(self.retrying.call, self.queue.reserve, self.held_limit)
            while True:
                now = time.monotonic()
                stopping = should_stop()
                handler.stopping = stopping
                taking = not stopping and (max_messages is None or taken < max_messages)
                if deferred:
                    ready = [e for e in deferred if not holding[e.message_id or ""]]
                    if ready:
                        deferred = [e for e in deferred if holding[e.message_id or ""]]
                        for envelope in ready:
                            start(envelope)  # when stopping, its handler gives it back
                if not taking and not tasks and not finished and not deferred:
                    break
                room = 0
                if taking and len(tasks) <= self.concurrency:  # the messages waiting for a slot ran out
                    # what finished is settled first, in the same cycle
                    room = self.held_limit - len(tasks) - len(deferred)
                    if max_messages is not None:
                        room = min(room, max_messages - taken)
                    if tasks and looked_empty_at is not None and now - looked_empty_at < BUSY_WAIT:
                        room = 0  # the queue was empty a moment ago: do not look again yet
                settle_now = bool(finished) and (
                    room > 0 or not tasks or not taking or len(finished) * 2 >= self.concurrency or now >= settle_by
                )
                extend = bool(tasks) and now - last_extend > EXTEND_EVERY
                if not (settle_now or room > 0 or extend):
                    # until some work finishes, the settle is due, or it is time to look again
                    wait = min(BUSY_WAIT, settle_by - now) if finished else BUSY_WAIT
                    await doorbell.wait(max(wait, 0.001))
                    continue
                settlements = []
                if settle_now:
                    # only infrastructure failures raise here: they stop the loop
                    settlements = [task.result() for task in finished]
                    finished.clear()
                held = [work.envelope for work in tasks.values()] + deferred if extend else []
                if extend:
                    last_extend = now
                timeout = 0.0 if tasks or finished else (QUICK_LOOK if just_worked else self.poll_timeout)
                probe_empty = until_empty and not tasks and not finished
                settling = [settlement.envelope for settlement in settlements]
                cycle = io.submit(self._cycle, settlements, held, room, timeout, probe_empty)
                envelopes, empty = await asyncio.wrap_future(cycle)
                cycle, settling = None, []
                self._count(settlements, on_message)
                for settlement in settlements:
                    if settlement.envelope.message_id:
                        holding[settlement.envelope.message_id] -= 1
                        if not holding[settlement.envelope.message_id]:
                            del holding[settlement.envelope.message_id]  # keep it as small as the window
                if envelopes:
                    just_worked = True
                    looked_empty_at = None
                    taken += len(envelopes)
                    for envelope in envelopes:
                        if envelope.message_id and holding[envelope.message_id]:
                            deferred.append(envelope)
                        else:
                            start(envelope)
                    await asyncio.sleep(0)  # let them start before the next look
                elif room > 0:
                    looked_empty_at = time.monotonic()
                    if not tasks and not finished:
                        if empty:
                            break
                        just_worked = False
        except asyncio.CancelledError:
            if not self._aborted:
                raise
            await self._give_back(io, tasks, finished, cycle, deferred)
        except BaseException as exc:
            if isinstance(exc, DatabaseUnavailable) and not self.queue.shares_store_transaction:
                # `reconnect` starts a consumer again on this same broker connection: what this
                # one holds (the settle that failed too) must go back now, or it waits
                # unacknowledged until the process ends
                await self._give_back(io, tasks, finished, cycle, [*deferred, *settling])
            else:
                await self._cancel(tasks)
                await self._finish(cycle)
            raise
        finally:
            try:
                await self.notifiers.aclose()
            finally:
                io.close()

    def _cycle(
        self, settlements: list[Settlement], held: list[Envelope], room: int, timeout: float, probe_empty: bool
    ) -> tuple[list[Envelope], bool]:
        """On the I/O thread: settle, renew leases, lease up to `room` more (waiting up to
        `timeout` for one); with `probe_empty`, also say whether nothing is left at all."""
        retry = self.retrying.call  # each step again after a lost database connection
        if held:
            retry(self.queue.extend_many, held)

        def take() -> list[Envelope]:
            return self.queue.receive_many(self.kinds, room, timeout) if room > 0 else []

        if self.queue.shares_store_transaction:
            # one transaction: a failure rolls back the lot, so the lot is tried again
            envelopes = retry(settle_and_take, self.store, self.queue, settlements, take)
        else:
            # the log may have committed when the lease fails: never settle twice
            retry(settle, self.store, self.queue, settlements)
            envelopes = retry(take)
        return envelopes, probe_empty and room > 0 and not envelopes and retry(self.queue.is_empty, self.kinds)

    def _count(self, settlements: Sequence[Settlement], on_message: Callable[[int], None] | None) -> None:
        for settlement in settlements:
            if not settlement.release:
                self.processed += 1
                if on_message:
                    on_message(self.processed)

    async def _cancel(self, tasks: dict[asyncio.Task[Settlement], Work]) -> None:
        pending = list(tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    @staticmethod
    async def _finish(cycle: concurrent.futures.Future[tuple[list[Envelope], bool]] | None) -> list[Envelope]:
        """Wait for a cycle under way on the I/O thread (it cannot be interrupted); what it leased."""
        if cycle is None:
            return []
        while not cycle.done():
            await asyncio.sleep(0.01)
        if cycle.cancelled() or cycle.exception() is not None:
            return []  # it never ran, or failed: what it held comes back by lease expiry or requeue
        return cycle.result()[0]

    async def _give_back(
        self,
        io: IoThread,
        tasks: dict[asyncio.Task[Settlement], Work],
        finished: list[asyncio.Task[Settlement]],
        cycle: concurrent.futures.Future[tuple[list[Envelope], bool]] | None,
        deferred: list[Envelope],
    ) -> None:
        """After an abort: cancel the attempts, and give every held message back unsettled
        (those whose attempts finished but were not settled yet too, and `deferred`: copies
        waiting for their first, or those of a settle that failed)."""
        held = [work.envelope for work in tasks.values()] + deferred
        held += [task.result().envelope for task in finished if not task.cancelled() and not task.exception()]
        await self._cancel(tasks)
        held += await self._finish(cycle)
        try:
            await io.call(self.queue.release_many, held)
        except Exception as exc:  # the broker or lease gives them back anyway, a little later
            log.warning("could not give back %d message(s) at once: %s", len(held), exc)
