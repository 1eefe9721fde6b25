"""The consumer loop: lease messages in batches, keep a bounded window of
attempts in flight, settle what finished in batches, stop gracefully.

One asyncio loop per consumer process. Queue and store calls are short and
synchronous on the loop's thread (SQLite and pika are blocking libraries);
deliveries are asynchronous, so while they wait on receivers the loop keeps
leasing, settling and renewing leases. When nothing is in flight the loop
blocks in the queue's own poll.

Stopping: `should_stop()` (SIGTERM, Ctrl-C) ends the taking; attempts under way
finish and are settled; messages taken but not yet begun are given back.
`abort()` (a second Ctrl-C) cancels the attempts in flight at once and gives
every held message back unsettled: they come back on the next start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from ..config import Config
from ..notifiers import Notifiers
from ..queues.base import KINDS, Queue
from ..store import Store, utcnow
from .decisions import Settlement
from .handling import Handler, Work
from .reconnect import Reconnecting
from .settle import settle

log = logging.getLogger("asyncevents_cli")

QUICK_LOOK = 0.02  # seconds: right after work, the queue is often empty; do not wait a full poll
BUSY_WAIT = 0.05  # seconds between looks at the queue and the stop flag while attempts run
EXTEND_EVERY = 5.0  # seconds between lease renewals of the messages held


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
        self.concurrency = max(1, concurrency or config.settings["concurrency"])
        self.per_subscription = max(1, per_subscription or config.settings["subscription_concurrency"])
        #: messages held unsettled at once: twice the window, so finished attempts
        #: waiting for the next settle batch do not leave the window idle
        self.held_limit = 2 * self.concurrency
        self.poll_timeout = poll_timeout
        self.now = now
        self.processed = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task | None = None
        self._aborted = False
        #: queue and store calls ride out a lost database connection (see `reconnect`)
        self.reconnecting = Reconnecting()

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

    async def _run(self, max_messages: int | None, until_empty: bool, should_stop: Callable[[], bool],
                   on_message: Callable[[int], None] | None) -> None:
        self._loop = asyncio.get_running_loop()
        self._main = asyncio.current_task()
        handler = Handler(self.config, self.store, self.queue, self.notifiers, self.concurrency,
                          self.per_subscription, self.now)
        self.reconnecting.call(self.queue.reserve, self.held_limit)
        tasks: dict[asyncio.Task[Settlement], Work] = {}
        taken = 0
        just_worked = False
        last_extend = time.monotonic()
        try:
            if self._aborted:
                return
            while True:
                finished = [task for task in tasks if task.done()]
                if finished:
                    self._settle(finished, tasks, on_message)
                stopping = should_stop()
                handler.stopping = stopping
                if stopping or (max_messages is not None and taken >= max_messages):
                    if not tasks:
                        break
                    await self._wait(tasks)
                    continue
                room = self.held_limit - len(tasks)
                if max_messages is not None:
                    room = min(room, max_messages - taken)
                envelopes = []
                if room > 0:
                    timeout = 0.0 if tasks else (QUICK_LOOK if just_worked else self.poll_timeout)
                    envelopes = self.reconnecting.call(self.queue.receive_many, self.kinds, room, timeout)
                if envelopes:
                    just_worked = True
                    taken += len(envelopes)
                    for envelope in envelopes:
                        work = Work(envelope)
                        tasks[asyncio.ensure_future(handler.handle(work))] = work
                    await asyncio.sleep(0)  # let them start before the next look
                elif tasks:
                    await self._wait(tasks)
                else:
                    if until_empty and self.reconnecting.call(self.queue.is_empty, self.kinds):
                        break
                    just_worked = False
                if tasks and time.monotonic() - last_extend > EXTEND_EVERY:
                    self.reconnecting.call(self.queue.extend_many, [w.envelope for w in tasks.values()])
                    last_extend = time.monotonic()
        except asyncio.CancelledError:
            if not self._aborted:
                raise
            await self._give_back(tasks)
        except BaseException:
            await self._cancel(tasks)
            raise
        finally:
            await self.notifiers.aclose()

    async def _wait(self, tasks: dict[asyncio.Task[Settlement], Work]) -> None:
        """Until some work finishes (or a short while, to look at the queue and the stop flag);
        then a moment more, so one settle takes whatever finished together."""
        done, _ = await asyncio.wait(tasks, timeout=BUSY_WAIT, return_when=asyncio.FIRST_COMPLETED)
        if done:
            await asyncio.sleep(0)

    def _settle(self, finished: list[asyncio.Task[Settlement]], tasks: dict[asyncio.Task[Settlement], Work],
                on_message: Callable[[int], None] | None) -> None:
        settlements = []
        for task in finished:
            del tasks[task]
            settlements.append(task.result())  # only infrastructure failures raise here: they stop the loop
        self.reconnecting.call(settle, self.store, self.queue, settlements)
        for settlement in settlements:
            if not settlement.release:
                self.processed += 1
                if on_message:
                    on_message(self.processed)

    async def _cancel(self, tasks: dict[asyncio.Task[Settlement], Work]) -> None:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _give_back(self, tasks: dict[asyncio.Task[Settlement], Work]) -> None:
        """After an abort: cancel the attempts, and give every held message back unsettled."""
        await self._cancel(tasks)
        try:
            self.queue.release_many([w.envelope for w in tasks.values()])
        except Exception as exc:  # the broker or lease gives them back anyway, a little later
            log.warning("could not give back %d message(s) at once: %s", len(tasks), exc)
