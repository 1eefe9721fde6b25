"""Applying settlements to the queue and the store, many messages per transaction.

The durability rule: a message is acknowledged only after its attempts are
logged and its follow-up retries placed. On SQLite the three commit in one
transaction. On a broker, follow-ups are published before the log commits and
outside the SQLite write lock: a crash in between repeats an attempt (same
uuid) rather than losing a retry, and a slow broker never holds up other
writers; acknowledgements go out once the batch has committed.

A batch that fails for one message's sake (a value SQLite cannot store, say)
is settled again message by message, and the message that still fails is
parked with the reason. Failures of the store or the broker themselves
propagate and stop the consumer.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence

from ..errors import AeError
from ..metrics import instruments as metrics
from ..operator_events import DEAD_LETTERED, dead_lettered_payload, operator_trigger, raises_about
from ..queues.base import RETRY, Envelope, Queue
from ..states import DeliveryState
from ..store import Attempt, ChainState, PendingDelivery, Store, utcnow
from .attempts import describe
from .decisions import Outcome, Settlement
from .endpoints import Endpoints
from .handling import INFRASTRUCTURE

log = logging.getLogger("asyncevents_cli")
#: One INFO record per logged attempt, carrying it as a dict in `record.attempt`: what `ae consume -v` prints.
attempt_log = logging.getLogger("asyncevents_cli.attempts")


def settle(store: Store, queue: Queue, settlements: Sequence[Settlement], endpoints: Endpoints | None = None) -> None:
    """Release, log, place follow-ups and acknowledge; one transaction for the lot where possible."""
    released = [s.envelope for s in settlements if s.release and s.envelope is not None]
    if released:
        queue.release_many(released)
    done = [s for s in settlements if not s.release]
    if not done:
        return
    try:
        _apply(store, queue, done, endpoints)
    except (*INFRASTRUCTURE, AeError):
        raise
    except Exception:
        if len(done) == 1:
            _settle_alone(store, queue, done[0], endpoints)
            return
        for settlement in done:
            _settle_alone(store, queue, settlement, endpoints)


def settle_and_take(
    store: Store,
    queue: Queue,
    settlements: Sequence[Settlement],
    take: Callable[[], list[Envelope]],
    endpoints: Endpoints | None = None,
) -> list[Envelope]:
    """`settle`, then `take()` (a lease of more messages). Where the queue shares the
    store's transaction both commit together: one fsync for the batch and the next.
    A batch that fails there is rolled back whole and settled by `settle` instead."""
    if queue.shares_store_transaction and settlements:
        try:
            with store.transaction():
                released = [s.envelope for s in settlements if s.release and s.envelope is not None]
                if released:
                    queue.release_many(released)
                done = [s for s in settlements if not s.release]
                if done:
                    _apply(store, queue, done, endpoints)
                return take()
        except (*INFRASTRUCTURE, AeError):
            raise
        except Exception:  # one message's doing, most likely: nothing of it was committed
            pass
    settle(store, queue, settlements, endpoints)
    return take()


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


def _place(store: Store, queue: Queue, settlements: Sequence[Settlement]) -> None:
    """Publish each message's follow-ups (retries, dead letters) or park it."""
    dead = any(f.state == DeliveryState.DEAD_LETTERED for s in settlements for _, f in s.attempts if not s.queued)
    operator_listens = dead and store.subscriptions.has_subscribers(DEAD_LETTERED)
    for settlement in settlements:
        if settlement.queued:
            continue
        envelope = settlement.envelope
        if settlement.park is not None and envelope is not None:
            queue.dead_letter(envelope.body, settlement.park, envelope.kind)
        for outcome, follow in settlement.attempts:
            if follow.retry is None:
                continue  # delivered
            if follow.state == DeliveryState.RETRYING:
                queue.publish_retry(follow.retry, follow.delay, generation=outcome.generation)
            else:
                queue.dead_letter(follow.retry.encode(), follow.reason, RETRY)
                if operator_listens:
                    _raise_dead_lettered(queue, outcome, follow.reason)
        if not queue.shares_store_transaction:
            settlement.queued = True  # on the broker now, whatever happens to the store write


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
            store.lanes.add_pending(settlement.running, settlement.lease_until)
        waiting += [follow.keep for _, follow in settlement.attempts if follow.keep is not None]
    if waiting:
        store.lanes.add_pending(waiting)
    if finished:
        store.lanes.finish_pending(finished)


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
        store.subscriptions.count_filtered(filtered)
    if attempts:
        store.log.log_attempts(attempts)
    if states:
        store.log.set_delivery_states(states)


def _apply(store: Store, queue: Queue, settlements: Sequence[Settlement], endpoints: Endpoints | None) -> None:
    envelopes = [s.envelope for s in settlements if s.envelope is not None]
    if queue.shares_store_transaction:
        with store.transaction():
            _place(store, queue, settlements)
            _record(store, settlements, endpoints)
            queue.ack_many(envelopes)
    else:
        _place(store, queue, settlements)
        with store.transaction():
            _record(store, settlements, endpoints)
        if envelopes:
            queue.ack_many(envelopes)
    _report(settlements)
