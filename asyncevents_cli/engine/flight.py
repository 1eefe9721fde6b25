"""What one consumer has under way: messages' work, kept deliveries' attempts, and what finished.

The loop (`consumer.py`) starts work here and takes what finished for the next
settle; a `Doorbell` wakes it when something finishes.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from ..queues.base import Envelope
from ..store import PendingDelivery
from .attempts import Work
from .decisions import Settlement

SETTLE_EVERY = 0.02  # seconds: finished work waits at most about this long for its settle


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


class Flight:
    def __init__(self, loop: asyncio.AbstractEventLoop, handle: Callable[[Work], Awaitable[Settlement]]) -> None:
        self.handle = handle
        self.doorbell = Doorbell(loop)
        #: under way (or waiting for a slot): messages' work, and kept deliveries' (envelope None)
        self.tasks: dict[asyncio.Task[Settlement], Work] = {}
        #: the kept deliveries among them, leased in the store: task -> uuid
        self.kept: dict[asyncio.Task[Settlement], str] = {}
        self.finished: list[asyncio.Task[Settlement]] = []  # done, not settled yet
        self.settle_by = 0.0  # when the oldest finished work is due to be settled
        # A message comes back while its first copy is still under way here when the
        # broker redelivers after a lost connection: the copy waits until the first is
        # settled, so that its logged attempts are seen and not made again.
        self.holding: Counter[str] = Counter()  # message ids of the work under way or unsettled
        self.deferred: list[Envelope] = []

    @property
    def messages(self) -> int:
        """Messages under way (kept deliveries do not count: they hold no message)."""
        return len(self.tasks) - len(self.kept)

    def _on_done(self, task: asyncio.Task[Settlement]) -> None:
        self.kept.pop(task, None)
        if self.tasks.pop(task, None) is None or task.cancelled():
            return
        if not self.finished:
            self.settle_by = time.monotonic() + SETTLE_EVERY
        self.finished.append(task)
        self.doorbell.ring()

    def start(self, envelope: Envelope) -> None:
        """Work a message, or let it wait while an earlier copy of it is still unsettled."""
        if envelope.message_id and self.holding[envelope.message_id]:
            self.deferred.append(envelope)
            return
        if envelope.message_id:
            self.holding[envelope.message_id] += 1
        work = Work(envelope)
        task = asyncio.ensure_future(self.handle(work))
        self.tasks[task] = work
        task.add_done_callback(self._on_done)

    def start_kept(self, attempt: Awaitable[Settlement], row: PendingDelivery) -> None:
        """A kept delivery's attempt: settled on its own; its lease renewed while it runs."""
        task = asyncio.ensure_future(attempt)
        self.tasks[task] = Work(None)
        self.kept[task] = row.uuid
        task.add_done_callback(self._on_done)

    def start_deferred(self) -> None:
        """Copies whose first is settled now (when stopping, their handler gives them back)."""
        ready = [e for e in self.deferred if not self.holding[e.message_id or ""]]
        if ready:
            self.deferred = [e for e in self.deferred if self.holding[e.message_id or ""]]
            for envelope in ready:
                self.start(envelope)

    def take_finished(self) -> list[Settlement]:
        """What finished, for the settle (only infrastructure failures raise here: they stop the loop)."""
        settlements = [task.result() for task in self.finished]
        self.finished.clear()
        return settlements

    def settled(self, settlements: list[Settlement]) -> None:
        for settlement in settlements:
            message_id = settlement.envelope.message_id if settlement.envelope is not None else None
            if message_id:
                self.holding[message_id] -= 1
                if not self.holding[message_id]:
                    del self.holding[message_id]  # keep it as small as the window

    def held_envelopes(self) -> list[Envelope]:
        return [work.envelope for work in self.tasks.values() if work.envelope is not None] + self.deferred

    async def cancel(self) -> None:
        pending = list(self.tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
