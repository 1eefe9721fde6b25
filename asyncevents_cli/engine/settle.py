"""Applying settlements to the queue and the store, many messages per transaction.

The durability rule: a message is acknowledged only after its attempts are
logged and its follow-up retries placed. How that is committed is the queue's
own protocol (`Queue.settle`): on a table queue the three commit in one
transaction; on a broker, follow-ups are published before the log commits and
outside the store's write lock (a crash in between repeats an attempt, same
uuid, rather than losing a retry), and acknowledgements go out once the batch
has committed. This module only says what the steps are.

A batch that fails for one message's sake (a value SQLite cannot store, say)
is settled again message by message, and the message that still fails is
parked with the reason. Failures of the store or the broker themselves
propagate and stop the consumer.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable, Sequence

from ..errors import AeError
from ..metrics import instruments as metrics
from ..operator_events import DEAD_LETTERED, dead_lettered_payload, operator_trigger, raises_about
from ..queues.base import RETRY, Envelope, FollowUps, Queue, Runner, run_once
from ..states import DeliveryState
from ..store import Attempt, ChainState, PendingDelivery, Store, utcnow
from .attempts import describe
from .decisions import Outcome, Settlement
from .endpoints import Endpoints
from .faults import INFRASTRUCTURE

log = logging.getLogger("asyncevents_cli")
#: One INFO record per logged attempt, carrying it as a dict in `record.attempt`: what `ae consume -v` prints.
attempt_log = logging.getLogger("asyncevents_cli.attempts")


class BatchRefused(Exception):
    """A batch failed for one of its messages' sake (not the store's or the queue's):
    it is settled again message by message. Whatever the queue could roll back, it did."""


def settle_and_take(
    store: Store,
    queue: Queue,
    settlements: Sequence[Settlement],
    take: Callable[[], list[Envelope]],
    endpoints: Endpoints | None = None,
    run: Runner = run_once,
) -> list[Envelope]:
    """Release, log, place follow-ups and acknowledge; then `take()` (a lease of more
    messages). Each step goes through `run`, and the queue decides what commits
    together (`Queue.settle_and_take`): on a table queue the lot, one fsync for the
    batch and the next. A batch refused for one message's sake is settled message by
    message instead, then the take runs on its own."""
    if not settlements:
        return run(take)
    try:
        return queue.settle_and_take(lambda: _settle_batch(store, queue, settlements, endpoints), take, run)
    except BatchRefused:
        run(lambda: _settle_each(store, queue, settlements, endpoints))
        return run(take)


def _settle_batch(store: Store, queue: Queue, settlements: Sequence[Settlement], endpoints: Endpoints | None) -> None:
    try:
        _apply(store, queue, settlements, endpoints)
    except (*INFRASTRUCTURE, AeError):
        raise
    except Exception as exc:
        raise BatchRefused(describe(exc)) from exc


def _settle_each(store: Store, queue: Queue, settlements: Sequence[Settlement], endpoints: Endpoints | None) -> None:
    for settlement in settlements:
        _settle_alone(store, queue, settlement, endpoints)


def _settle_alone(store: Store, queue: Queue, settlement: Settlement, endpoints: Endpoints | None) -> None:
    try:
        _apply(store, queue, [settlement], endpoints)
    except (*INFRASTRUCTURE, AeError):
        raise
    except Exception as exc:
        envelope = settlement.envelope
        reason = f"unexpected error while settling: {describe(exc)}"
        if envelope is None:  # a kept delivery: it stays kept, and its lease lapses
            log.warning("could not settle a kept delivery: %s", reason)
            return
        log.warning("dead-lettering %s message %s: %s", envelope.kind, envelope.message_id, reason)
        # If even parking fails, the store or broker is broken: that stops the consumer.
        _apply(store, queue, [Settlement(envelope, park=reason)], None)


class _Released:
    """The messages given back untouched: placed back on their queue."""

    def __init__(self, queue: Queue, settlements: Sequence[Settlement]) -> None:
        self.queue = queue
        self.settlements = settlements

    @property
    def placed(self) -> bool:
        return all(s.placed for s in self.settlements)

    @placed.setter
    def placed(self, value: bool) -> None:
        for settlement in self.settlements:
            settlement.placed = value

    def place(self) -> None:
        self.queue.release_many([s.envelope for s in self.settlements if s.envelope is not None])


class _MessageFollowUps:
    """One message's retries and dead letters (the message itself, when parked)."""

    def __init__(self, queue: Queue, settlement: Settlement, operator_listens: Callable[[], bool]) -> None:
        self.queue = queue
        self.settlement = settlement
        self.operator_listens = operator_listens

    @property
    def placed(self) -> bool:
        return self.settlement.placed

    @placed.setter
    def placed(self, value: bool) -> None:
        self.settlement.placed = value

    def place(self) -> None:
        queue, envelope = self.queue, self.settlement.envelope
        if self.settlement.park is not None and envelope is not None:
            queue.dead_letter(envelope.body, self.settlement.park, envelope.kind)
        for outcome, follow in self.settlement.attempts:
            if follow.retry is None:
                continue  # delivered
            if follow.state == DeliveryState.RETRYING:
                queue.publish_retry(follow.retry, follow.delay, generation=outcome.generation)
            else:
                queue.dead_letter(follow.retry.encode(), follow.reason, RETRY)
                if self.operator_listens():
                    _raise_dead_lettered(queue, outcome, follow.reason)


def _follow_ups(store: Store, queue: Queue, settlements: Sequence[Settlement]) -> list[FollowUps]:
    """What the settlements not yet placed put on the queue: releases first, then each
    message's retries and dead letters (asking the store once whether anyone listens to
    dead letters, and only when there is one)."""
    waiting = [s for s in settlements if not s.placed]
    released = [s for s in waiting if s.release]
    follow_ups: list[FollowUps] = [_Released(queue, released)] if released else []
    listens = functools.cache(lambda: store.has_subscribers(DEAD_LETTERED))
    follow_ups += [_MessageFollowUps(queue, s, listens) for s in waiting if not s.release]
    return follow_ups


def _raise_dead_lettered(queue: Queue, outcome: Outcome, reason: str | None) -> None:
    """`ae.delivery.dead_lettered`, placed with the dead letter itself (same transaction on
    a table queue; before the store commits on a broker, as retries are)."""
    sub = outcome.subscription
    if not raises_about(sub.event_name):
        return  # a dead-lettered operator event raises nothing: no loops
    payload = dead_lettered_payload(
        uuid=outcome.uuid,
        event_name=sub.event_name,
        subscription_id=sub.subscription_id,
        recipient_url=sub.recipient_url,
        attempts=outcome.death_count + 1,
        reason=reason,
        status_code=outcome.result.status_code,
        response=outcome.result.response_data or "",
        at=utcnow(),
    )
    queue.publish_trigger(operator_trigger(DEAD_LETTERED, payload))


def _report(settlements: Sequence[Settlement]) -> None:
    """Once committed, each attempt counted in the metrics (when served) and logged as
    one INFO record (for `ae consume -v`): the one place that sees every attempt."""
    counting = metrics.active()
    if counting is not None:
        for settlement in settlements:
            for outcome, follow in settlement.attempts:
                sub, result = outcome.subscription, outcome.result
                dead = follow.state == DeliveryState.DEAD_LETTERED
                counting.attempt(sub.event_name, sub.subscription_id, result.success, result.duration, dead)
    if attempt_log.isEnabledFor(logging.INFO):
        for settlement in settlements:
            for outcome, _ in settlement.attempts:
                sub, result = outcome.subscription, outcome.result
                attempt_log.info(
                    "attempt %s",
                    outcome.uuid,
                    extra={
                        "attempt": {
                            "uuid": outcome.uuid,
                            "event_name": sub.event_name,
                            "subscription_id": sub.subscription_id,
                            "success": result.success,
                            "status_code": result.status_code,
                            "duration": result.duration,
                            "death_count": outcome.death_count,
                        }
                    },
                )


def _keep(store: Store, settlements: Sequence[Settlement]) -> None:
    """Deliveries kept in the store, and those done with. A kept delivery's row in
    `pending_deliveries` is what says it waits (trace, status): no chain state is written
    for it, so keeping one costs one row."""
    waiting: list[PendingDelivery] = []
    finished: list[str] = []
    for settlement in settlements:
        finished += settlement.finished
        waiting += [row for row, _ in settlement.waiting]
        if settlement.running:
            store.add_pending(settlement.running, settlement.lease_until)
        waiting += [follow.keep for _, follow in settlement.attempts if follow.keep is not None]
    if waiting:
        store.add_pending(waiting)
    if finished:
        store.finish_pending(finished)


def _record(store: Store, settlements: Sequence[Settlement], endpoints: Endpoints | None) -> None:
    attempts: list[Attempt] = []
    states: list[ChainState] = []
    _keep(store, settlements)
    if endpoints is not None:
        endpoints.record(store, settlements)
    for settlement in settlements:
        for outcome, follow in settlement.attempts:
            sub, result = outcome.subscription, outcome.result
            attempts.append(
                Attempt(
                    uuid=outcome.uuid,
                    subscription_id=sub.subscription_id,
                    event_name=sub.event_name,
                    success=result.success,
                    status_code=result.status_code,
                    response_data=result.response_data,
                    serialized_data=outcome.body.decode(),
                    death_count=outcome.death_count,
                    duration=result.duration,
                    message_id=outcome.message_id,
                    recipient_url=sub.recipient_url,
                )
            )
            states.append(
                ChainState(
                    outcome.uuid,
                    sub.subscription_id,
                    sub.event_name,
                    follow.state,
                    outcome.death_count,
                    follow.next_attempt_at,
                    True,
                    outcome.generation,
                )
            )
        if settlement.stopped is not None:
            uuid, subscription_id, event_name, death_count, generation = settlement.stopped
            states.append(
                ChainState(
                    uuid, subscription_id, event_name, DeliveryState.STOPPED, death_count, None, False, generation
                )
            )
    filtered = Counter(sid for settlement in settlements for sid in settlement.filtered)
    if filtered:
        store.count_filtered(filtered)
    if attempts:
        store.log_attempts(attempts)
    if states:
        store.set_delivery_states(states)


def _apply(store: Store, queue: Queue, settlements: Sequence[Settlement], endpoints: Endpoints | None) -> None:
    done = [s for s in settlements if not s.release]
    envelopes = [s.envelope for s in done if s.envelope is not None]

    def record() -> None:
        if done:
            with store.transaction():
                _record(store, done, endpoints)

    queue.settle(_follow_ups(store, queue, settlements), record, envelopes)
    _report(done)
