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

Each turn of the loop (`_turn`) starts what may start, then either waits
(`_wait`) or plans a cycle (`_plan`), runs it on the I/O thread (`_cycle`),
and applies what came back (`_apply`, `_after_take`). What one `run` has under
way lives in one object (`_Run`), not in the loop's locals.

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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ..config import Config
from ..errors import DatabaseUnavailable
from ..notifiers import Notifiers
from ..queues.base import Envelope, Queue
from ..store import PendingDelivery, Store
from .attempts import LEASE_SECONDS
from .circuit import CircuitRules
from .cycle import CycleResult, Pace, Plan
from .decisions import Settlement
from .endpoints import Endpoints
from .flight import Flight
from .handling import Handler
from .io import IoThread
from .lanes import Lanes
from .options import Backends, ConsumerOptions
from .pump import PUMP_EVERY, Pump
from .retrying import Retrying
from .settle import settle_and_take

log = logging.getLogger("asyncevents_cli")

QUICK_LOOK = 0.02  # seconds: right after work, the queue is often empty; do not wait a full poll
BUSY_WAIT = 0.05  # seconds between looks at an empty queue and the stop flag while attempts run
EXTEND_EVERY = 5.0  # seconds between lease renewals of the messages held


class Aborted(Exception):
    """The consumer was aborted; in-flight attempts were cancelled and nothing they held was settled."""


class Consumer:
    """The delivery engine over one store, queue and notifiers, run with `options`
    (by default the settings' own)."""

    def __init__(
        self,
        config: Config,
        store: Store,
        queue: Queue,
        notifiers: Notifiers,
        options: ConsumerOptions | None = None,
    ) -> None:
        #: checked when built: the window is exactly what was asked for
        self.options = options or ConsumerOptions.from_settings(config.settings)
        self.backends = Backends(config, store, queue, notifiers)
        self.config = config
        self.store = store
        self.queue = queue
        self.notifiers = notifiers
        self.processed = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task | None = None
        self._aborted = False
        #: queue and store calls ride out a short loss of the database in place (see `retrying`)
        self.retrying = Retrying()
        settings = config.settings
        #: per-endpoint state: the lanes on the loop, their store edge on the I/O thread
        self.lanes = Lanes(self.options.per_subscription)
        self.endpoints = Endpoints(
            CircuitRules(
                settings.circuit_failure_threshold,
                settings.circuit_probe_seconds,
                settings.disable_after_hours * 3600,
            ),
            raise_event=queue.publish_trigger,
        )
        self.pump = Pump(store, self.lanes, self.endpoints, self.options.concurrency, self.retrying.call, LEASE_SECONDS)

    @property
    def in_flight(self) -> int:
        """Attempts under way now, across every lane; read by the metrics thread."""
        return self.lanes.in_flight()

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
        asyncio.run(self._run(_Ask(max_messages, until_empty, should_stop, on_message)))
        if self._aborted:
            raise Aborted("aborted: attempts in flight were cancelled; their messages come back on the next start")
        return self.processed

    def abort(self) -> None:
        """Cancel everything in flight now. Safe to call from a signal handler."""
        self._aborted = True
        if self._loop is not None and self._main is not None:
            self._loop.call_soon_threadsafe(self._main.cancel)

    async def _run(self, ask: _Ask) -> None:
        self._loop = asyncio.get_running_loop()
        self._main = asyncio.current_task()
        run = _Run(self, ask, IoThread())
        try:
            if self._aborted:
                return
            await run.io.call(self.retrying.call, self.queue.reserve, self.options.held_limit)
            while await self._turn(run):
                pass
        except asyncio.CancelledError:
            if not self._aborted:
                raise
            await self._give_back(run, [])
        except BaseException as exc:
            if isinstance(exc, DatabaseUnavailable):
                # `reconnect` starts a consumer again on this same queue object: what this one
                # holds (the settle that failed too) goes back now where the queue can do that
                # without the store (a broker: else it waits unacknowledged until the process ends)
                await self._give_back(run, run.settling, self.queue.release_without_store)
            else:
                await run.flight.cancel()
                await self._finish(run.cycle)
            raise
        finally:
            try:
                await self.notifiers.aclose()
            finally:
                run.io.close()

    async def _turn(self, run: _Run) -> bool:
        """One turn of the loop: start what may start, then wait, or run a cycle; False once done."""
        stopping = run.ask.should_stop()
        run.handler.stopping = stopping
        taking = not stopping and (run.ask.max_messages is None or run.pace.taken < run.ask.max_messages)
        flight = run.flight
        flight.start_deferred()
        self.lanes.shed_stalled()
        if not taking and not flight.tasks and not flight.finished and not flight.deferred:
            return False
        plan = self._plan(run, taking)
        if plan is None:
            await self._wait(flight)
            return True
        result = await self._cycle_on_io(run, plan)
        self._apply(run, plan, result)
        return not self._after_take(run, plan, result)

    @staticmethod
    async def _wait(flight: Flight) -> None:
        """Until some work finishes, the settle is due, or it is time to look again."""
        wait = min(BUSY_WAIT, flight.settle_by - time.monotonic()) if flight.finished else BUSY_WAIT
        await flight.doorbell.wait(max(wait, 0.001))

    def _plan(self, run: _Run, taking: bool) -> Plan | None:
        """What the next cycle does, or None when nothing is due yet."""
        flight, pace = run.flight, run.pace
        now = time.monotonic()
        room = self._room(run, taking, now)
        finished = flight.finished
        settle_now = bool(finished) and (
            room > 0
            or not flight.tasks
            or not taking
            or len(finished) * 2 >= self.options.concurrency
            or now >= flight.settle_by
        )
        extend = bool(flight.tasks) and now - pace.last_extend > EXTEND_EVERY
        pump = taking and now - pace.last_pump >= PUMP_EVERY
        if not (settle_now or room > 0 or extend or pump):
            return None
        if extend:
            pace.last_extend = now
        if pump:
            pace.last_pump = now
        busy = bool(flight.tasks or finished)
        if self.lanes.waiting and not busy:
            pace.just_worked = True  # kept deliveries may be due: look again soon, not after a full poll
        return Plan(
            settlements=flight.take_finished() if settle_now else [],
            held=flight.held_envelopes() if extend else [],
            kept=list(flight.kept.values()) if extend else [],
            room=room,
            timeout=0.0 if busy else (QUICK_LOOK if pace.just_worked else self.options.poll_timeout),
            probe_empty=run.ask.until_empty and not busy,
            pump=self.pump.request() if pump else None,
        )

    def _room(self, run: _Run, taking: bool, now: float) -> int:
        """How many more messages the next cycle leases: none while messages still wait for
        a slot of the window (what finished is settled first, in the same cycle)."""
        flight, pace = run.flight, run.pace
        if not taking or flight.messages > self.options.concurrency:
            return 0
        room = self.options.held_limit - flight.messages - len(flight.deferred)
        if run.ask.max_messages is not None:
            room = min(room, run.ask.max_messages - pace.taken)
        if flight.tasks and pace.looked_empty_at is not None and now - pace.looked_empty_at < BUSY_WAIT:
            return 0  # the queue was empty a moment ago: do not look again yet
        return room

    async def _cycle_on_io(self, run: _Run, plan: Plan) -> CycleResult:
        """Run `plan` on the I/O thread; the loop keeps delivering meanwhile."""
        run.settling = [s.envelope for s in plan.settlements if s.envelope is not None]
        run.cycle = run.io.submit(self._cycle, plan)
        result = await asyncio.wrap_future(run.cycle)
        run.cycle, run.settling = None, []
        return result

    def _apply(self, run: _Run, plan: Plan, result: CycleResult) -> None:
        """Back on the loop: count what was settled, and start the kept deliveries taken."""
        self._count(plan.settlements, run.ask.on_message)
        run.flight.settled(plan.settlements)
        self.pump.note_kept(plan.settlements)
        self.pump.apply(plan.pump, result.taken)
        for row, probe in result.taken.kept:
            run.flight.start_kept(run.handler.handle_pending(row, probe), row)

    def _after_take(self, run: _Run, plan: Plan, result: CycleResult) -> bool:
        """Start the messages taken; whether the loop is done (`until_empty` and nothing left)."""
        flight, pace = run.flight, run.pace
        if result.envelopes:
            pace.just_worked = True
            pace.looked_empty_at = None
            pace.taken += len(result.envelopes)
            for envelope in result.envelopes:
                flight.start(envelope)
            return False
        if plan.room > 0:
            pace.looked_empty_at = time.monotonic()
            if not flight.tasks and not flight.finished:
                if result.empty:
                    return True
                pace.just_worked = False
        return False

    def _cycle(self, plan: Plan) -> CycleResult:
        """On the I/O thread: settle, renew leases, lease up to `room` more (waiting up to
        `timeout` for one), take kept deliveries for lanes with room; with `probe_empty`,
        also say whether nothing is left at all."""
        retry = self.retrying.call  # each step again after a lost database connection
        if plan.held:
            retry(self.queue.extend_many, plan.held)
        if plan.kept:
            retry(self.store.extend_pending, plan.kept, time.time() + LEASE_SECONDS)

        def take() -> list[Envelope]:
            return self.queue.receive_many(self.options.kinds, plan.room, plan.timeout) if plan.room > 0 else []

        # the queue decides what commits together, and so what `retry` may run again
        envelopes = settle_and_take(self.store, self.queue, plan.settlements, take, self.endpoints, retry)
        taken = self.pump.take(plan.pump)
        empty = (
            plan.probe_empty
            and plan.room > 0
            and not envelopes
            and not taken.kept
            and retry(self.queue.is_empty, self.options.kinds)
            and retry(self.store.pending_to_attempt) == 0
        )
        return CycleResult(envelopes, bool(empty), taken)

    def _count(self, settlements: Sequence[Settlement], on_message: Callable[[int], None] | None) -> None:
        for settlement in settlements:
            if not settlement.release and settlement.envelope is not None:
                self.processed += 1
                if on_message:
                    on_message(self.processed)

    @staticmethod
    async def _finish(cycle: concurrent.futures.Future[CycleResult] | None) -> list[Envelope]:
        """Wait for a cycle under way on the I/O thread (it cannot be interrupted); what it leased."""
        if cycle is None:
            return []
        while not cycle.done():
            await asyncio.sleep(0.01)
        if cycle.cancelled() or cycle.exception() is not None:
            return []  # it never ran, or failed: what it held comes back by lease expiry or requeue
        return cycle.result().envelopes

    async def _give_back(
        self,
        run: _Run,
        settling: list[Envelope],
        release: Callable[[Sequence[Envelope]], None] | None = None,
    ) -> None:
        """After an abort: cancel the attempts, and give every held message back unsettled
        (those whose attempts finished but were not settled yet too, those waiting for their
        first copy, and `settling`: those of a settle that failed). Kept deliveries under way
        stay leased in the store; they are taken again once their lease lapses."""
        flight = run.flight
        held = flight.held_envelopes() + settling
        for task in flight.finished:
            envelope = None if task.cancelled() or task.exception() else task.result().envelope
            if envelope is not None:
                held.append(envelope)
        await flight.cancel()
        held += await self._finish(run.cycle)
        try:
            await run.io.call(release or self.queue.release_many, held)
        except Exception as exc:  # the broker or lease gives them back anyway, a little later
            log.warning("could not give back %d message(s) at once: %s", len(held), exc)


@dataclass(frozen=True)
class _Ask:
    """What one `Consumer.run` was asked to do."""

    max_messages: int | None
    until_empty: bool
    should_stop: Callable[[], bool]
    on_message: Callable[[int], None] | None


class _Run:
    """One `Consumer.run`: what it was asked, and what it has under way."""

    def __init__(self, consumer: Consumer, ask: _Ask, io: IoThread) -> None:
        self.ask = ask
        self.io = io
        self.handler = Handler(consumer.backends, consumer.options, consumer.lanes, io, self._detach)
        self.flight = Flight(asyncio.get_running_loop(), self.handler.handle)
        self.pace = Pace()
        #: the cycle under way on the I/O thread, and the messages it is settling
        self.cycle: concurrent.futures.Future[CycleResult] | None = None
        self.settling: list[Envelope] = []

    def _detach(self, attempt: Awaitable[Settlement], row: PendingDelivery) -> None:
        """A trigger's attempt still under way when the trigger is settled runs on as a kept delivery."""
        self.flight.start_kept(attempt, row)
