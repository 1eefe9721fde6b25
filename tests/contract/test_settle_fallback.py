"""Settling a batch that fails for one message's sake, on each queue's settle protocol.

The batch is refused as a whole (the table queue rolls it back; a broker keeps what
it published, marked placed), then settled message by message: the good message's
attempt is logged once, the bad message is parked with the reason, both are
acknowledged, and the next lease still happens.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncevents_cli.backoff import RetryPolicy
from asyncevents_cli.engine.decisions import FollowUp, Outcome, Settlement
from asyncevents_cli.engine.settle import settle_and_take
from asyncevents_cli.messages import TriggerMessage
from asyncevents_cli.notifiers import NotifyResult
from asyncevents_cli.queues.base import RETRY, TRIGGER, Envelope, Queue
from asyncevents_cli.queues.sqlite import SqliteQueue
from asyncevents_cli.states import DeliveryState
from asyncevents_cli.store import Store, Subscription, open_store

SUBSCRIPTION = Subscription(7, "sales.order.created", "http://127.0.0.1:9/hook", 1, "", "", "http", 0, None)


@pytest.fixture(params=["db", pytest.param("amqp", marks=pytest.mark.amqp)])
def backends(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Queue]]:
    store = open_store(tmp_path / "ae.db")
    queue: Queue
    if request.param == "db":
        queue = SqliteQueue(store)
    else:
        from asyncevents_cli.queues.amqp import AmqpQueue

        queue = AmqpQueue(request.getfixturevalue("amqp_url"), RetryPolicy(unit_seconds=0.01), store=lambda: store.info)
    try:
        yield store, queue
    finally:
        queue.close()
        store.close()


def delivered(envelope: Envelope, uuid: str, response: str) -> Settlement:
    result = NotifyResult(True, 200, response, 0.01)
    outcome = Outcome(SUBSCRIPTION, uuid, 0, b'{"data":{}}', "{}", result, envelope.message_id)
    return Settlement(envelope, attempts=[(outcome, FollowUp(DeliveryState.DELIVERED))])


def test_one_bad_message_is_parked_and_the_rest_of_the_batch_settled(backends: tuple[Store, Queue]) -> None:
    store, queue = backends
    queue.publish_triggers([TriggerMessage(SUBSCRIPTION.event_name, {"n": n}) for n in range(3)])
    good, bad = queue.receive_many([TRIGGER], 2, timeout=2)
    settlements = [
        delivered(good, "00000000-0000-4000-8000-000000000001", "ok"),
        delivered(bad, "00000000-0000-4000-8000-000000000002", "\ud800"),  # no database stores a lone surrogate
    ]

    taken = settle_and_take(store, queue, settlements, lambda: queue.receive_many([TRIGGER], 5, 2))

    assert [TriggerMessage.decode(e.body).arguments for e in taken] == [{"n": 2}]  # the next lease happened
    queue.ack_many(taken)
    assert [row["uuid"] for row in store.log.recent_logs(limit=10)] == ["00000000-0000-4000-8000-000000000001"]
    [parked] = queue.peek_dead_letters(10)
    assert (parked.origin, parked.body) == (TRIGGER, bad.body)
    assert parked.reason.startswith("unexpected error while settling: UnicodeEncodeError")
    assert queue.is_empty([TRIGGER, RETRY])
