"""One contract for the `Queue` interface, run against every backend.

SQLite runs on a real database file in tmp_path (with a short lease, so a
consumer that "dies" hands its message back quickly); AMQP runs on the real
broker in a vhost of this module, emptied before each test (see conftest).
Delays come from a policy with 50 ms units so the suite stays fast.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from postgres_db import TEST_SECRET_KEY

from asyncevents_cli.backoff import RetryPolicy
from asyncevents_cli.messages import RetryMessage, TriggerMessage
from asyncevents_cli.queues.base import RETRY, TRIGGER, Envelope, Placement, Queue
from asyncevents_cli.queues.sqlite import SqliteQueue
from asyncevents_cli.store import Store, open_store

POLICY = RetryPolicy(max_deaths=3, unit_seconds=0.05)  # death count 2 waits 4 units = 200 ms
LEASE_SECONDS = 0.5
BOTH = (TRIGGER, RETRY)
T = TypeVar("T")


@pytest.fixture(
    params=["db", pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("amqp", marks=pytest.mark.amqp)]
)
def make_queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Queue]]:
    """A factory of queue objects on one shared backend (a second one plays another consumer:
    on PostgreSQL, with a store of its own, as another host would have)."""
    opened: list[Queue] = []
    stores: list[Store] = []
    if request.param == "db":
        stores.append(open_store(tmp_path / "ae.db"))

        def make() -> Queue:
            opened.append(SqliteQueue(stores[0], lease_seconds=LEASE_SECONDS, poll_interval=0.01))
            return opened[-1]
    elif request.param == "postgres":
        from asyncevents_cli.queues.postgres import PostgresQueue

        url = request.getfixturevalue("postgres_url")

        def make() -> Queue:
            stores.append(open_store(url, {"AE_SECRET_KEY": TEST_SECRET_KEY}))
            opened.append(PostgresQueue(stores[-1], lease_seconds=LEASE_SECONDS, poll_interval=0.01))
            return opened[-1]
    else:
        from asyncevents_cli.queues.amqp import AmqpQueue

        url = request.getfixturevalue("amqp_url")

        def make() -> Queue:
            opened.append(AmqpQueue(url, POLICY))
            return opened[-1]

    yield make
    for queue in opened:
        queue.close()
    for store in stores:
        store.close()


@pytest.fixture
def queue(make_queue: Callable[[], Queue]) -> Queue:
    return make_queue()


def retry(death_count: int = 2, uuid: str = "00000000-0000-4000-8000-000000000001") -> RetryMessage:
    return RetryMessage(subscription_id=7, death_count=death_count, content='{"id":1}', uuid=uuid)


def drain(queue: Queue, kinds: tuple[str, ...] = BOTH, timeout: float = 0.3) -> list:
    """Receive and ack until nothing comes within `timeout`."""
    taken = []
    while (envelope := queue.receive(kinds, timeout)) is not None:
        queue.ack(envelope)
        taken.append(envelope)
    return taken


def test_publish_receive_ack_round_trip(queue: Queue) -> None:
    messages = [TriggerMessage("sales.order.created", {"id": n}, store_id=1) for n in range(3)]
    ids = queue.publish_triggers(messages)
    assert len(ids) == 3

    received = []
    for _ in messages:
        envelope = queue.receive([TRIGGER], timeout=2)
        assert envelope is not None and envelope.kind == TRIGGER
        received.append(envelope)
        queue.ack(envelope)

    assert [e.message_id for e in received] == ids  # FIFO, ids read back from the message
    assert [TriggerMessage.decode(e.body) for e in received] == messages
    assert received[0].body == messages[0].encode()  # the module's wire format, byte for byte
    assert queue.receive([TRIGGER], timeout=0.2) is None
    assert queue.depths().trigger == 0
    assert queue.is_empty([TRIGGER])


def test_receive_takes_only_the_kinds_asked_for(queue: Queue) -> None:
    queue.publish_trigger(TriggerMessage("customer.created", {}))
    assert queue.receive([RETRY], timeout=0.2) is None
    envelope = queue.receive([TRIGGER], timeout=2)
    assert envelope is not None and envelope.kind == TRIGGER
    queue.ack(envelope)


def test_batch_is_all_or_nothing(queue: Queue) -> None:
    batch = [TriggerMessage("a", {"ok": 1}), TriggerMessage("b", {"bad": {1, 2}})]  # a set is not JSON
    with pytest.raises(TypeError):
        queue.publish_triggers(batch)
    assert queue.depths().trigger == 0
    assert queue.receive(BOTH, timeout=0.2) is None
    assert queue.publish_triggers([]) == []


def test_delayed_retry_is_not_received_before_it_is_due(queue: Queue) -> None:
    message = retry(death_count=2)
    delay = POLICY.delay_seconds(2)
    started = time.monotonic()
    message_id = queue.publish_retry(message, delay)

    depths = queue.depths()
    assert (depths.retry_delayed, depths.retry_due) == (1, 0)
    assert not queue.is_empty([RETRY])  # waiting out a back-off is not empty
    assert queue.is_empty([TRIGGER])
    assert queue.receive([RETRY], timeout=delay / 4) is None

    envelope = queue.receive([RETRY], timeout=delay + 3)
    assert envelope is not None
    assert time.monotonic() - started >= delay * 0.9
    assert envelope.kind == RETRY and envelope.message_id == message_id
    assert RetryMessage.decode(envelope.body) == message
    assert envelope.headers["x-retry-count"] == 2
    queue.ack(envelope)
    assert queue.is_empty([RETRY])


def test_retry_without_delay_is_due_at_once(queue: Queue) -> None:
    message_id = queue.publish_retry(retry(death_count=3), 0)
    envelope = queue.receive([RETRY], timeout=1)
    assert envelope is not None and envelope.message_id == message_id
    queue.ack(envelope)


def test_release_makes_a_message_receivable_again(queue: Queue) -> None:
    message_id = queue.publish_trigger(TriggerMessage("a", {"n": 1}))
    first = queue.receive([TRIGGER], timeout=2)
    assert first is not None
    queue.release(first)
    again = queue.receive([TRIGGER], timeout=2)
    assert again is not None and again.message_id == message_id and again.body == first.body
    queue.ack(again)
    assert queue.is_empty([TRIGGER])


def test_unacknowledged_message_returns_after_its_consumer_goes(make_queue: Callable[[], Queue]) -> None:
    dying = make_queue()
    message_id = dying.publish_trigger(TriggerMessage("a", {"n": 1}))
    taken = dying.receive([TRIGGER], timeout=2)
    assert taken is not None
    dying.close()  # never acked: AMQP requeues on close, SQLite once the lease runs out

    survivor = make_queue()
    envelope = survivor.receive([TRIGGER], timeout=LEASE_SECONDS + 3)
    assert envelope is not None and envelope.message_id == message_id
    survivor.ack(envelope)
    assert survivor.receive([TRIGGER], timeout=0.2) is None


def test_a_batch_ack_settles_exactly_the_messages_given(make_queue: Callable[[], Queue]) -> None:
    """`ack_many` of some held messages, out of order and with gaps (AMQP folds what it can
    into one `multiple` ack): those are gone, the ones still held come back after their
    consumer goes, and the ones not yet handed out are untouched."""
    dying = make_queue()
    ids = dying.publish_triggers([TriggerMessage("a", {"n": n}) for n in range(8)])
    held = []
    while len(held) < 6:
        taken = dying.receive_many([TRIGGER], 6 - len(held), timeout=2)
        assert taken, "the published messages arrive"
        held.extend(taken)
    acked = [held[4], held[0], held[1], held[3]]  # not held[2] nor held[5]
    dying.ack_many(acked)
    dying.close()

    survivor = make_queue()
    again = []
    while (envelope := survivor.receive([TRIGGER], timeout=LEASE_SECONDS + 3)) is not None:
        survivor.ack(envelope)
        again.append(envelope.message_id)
        if len(again) == 4:
            break
    assert sorted(again) == sorted([held[2].message_id, held[5].message_id, *ids[6:]])
    assert survivor.receive([TRIGGER], timeout=0.3) is None


def test_dead_letters_are_counted_but_never_received(queue: Queue) -> None:
    queue.dead_letter(retry(death_count=3).encode(), "failed 4 attempt(s)")
    queue.dead_letter(b'["broken"', "trigger message is not JSON", TRIGGER)
    assert queue.depths().dead_letters == 2
    assert queue.receive(BOTH, timeout=0.2) is None
    assert queue.is_empty(BOTH)


def test_is_empty_counts_queued_and_in_flight_messages(queue: Queue) -> None:
    assert queue.is_empty(BOTH)
    queue.publish_trigger(TriggerMessage("a", {}))
    assert not queue.is_empty([TRIGGER])
    assert queue.is_empty([RETRY])

    envelope = queue.receive([TRIGGER], timeout=2)
    assert envelope is not None
    assert not queue.is_empty([TRIGGER])  # taken but not acknowledged
    assert queue.depths().in_flight == 1
    queue.ack(envelope)
    assert queue.is_empty(BOTH)
    assert queue.depths().as_dict() == {
        "trigger": 0,
        "retry_due": 0,
        "retry_delayed": 0,
        "dead_letters": 0,
        "in_flight": 0,
    }


def test_every_message_gets_a_unique_id(queue: Queue) -> None:
    ids = queue.publish_triggers([TriggerMessage("a", {"n": n}) for n in range(5)])
    ids += [
        queue.publish_retry(retry(death_count=3, uuid=f"00000000-0000-4000-8000-00000000000{n}"), 0) for n in range(3)
    ]
    ids.append(queue.dead_letter(b"{}", "test"))
    assert len(set(ids)) == len(ids) == 9
    assert all(isinstance(i, str) and i for i in ids)
    received = {e.message_id for e in drain(queue)}
    assert received == set(ids[:8])


# -- the settle protocol: each backend commits in its own order, with the same promises --


class StoreWriteFailed(Exception):
    pass


def fail_store_write() -> None:
    raise StoreWriteFailed("the store write failed")


def taken_trigger(queue: Queue) -> Envelope:
    queue.publish_trigger(TriggerMessage("sales.order.created", {"id": 1}))
    envelope = queue.receive([TRIGGER], timeout=2)
    assert envelope is not None
    return envelope


def test_settle_places_records_and_acknowledges(queue: Queue) -> None:
    envelope = taken_trigger(queue)
    recorded: list[str] = []
    follow_up = Placement(lambda: queue.publish_retry(retry(), 0))

    queue.settle([follow_up], lambda: recorded.append("logged"), [envelope])

    assert recorded == ["logged"]
    assert [e.kind for e in drain(queue)] == [RETRY]  # the retry placed; the trigger acknowledged


def test_a_settle_whose_store_write_fails_acknowledges_nothing_and_places_nothing_twice(queue: Queue) -> None:
    """The table queue rolls the retry back with the store write; a broker has published it
    already and says so (`placed`), so the settle tried again does not publish it twice."""
    envelope = taken_trigger(queue)
    follow_up = Placement(lambda: queue.publish_retry(retry(), 0))

    with pytest.raises(StoreWriteFailed):
        queue.settle([follow_up], fail_store_write, [envelope])
    assert queue.depths().retry_due == (1 if follow_up.placed else 0)
    assert queue.depths().in_flight == 1  # the trigger is still held: not acknowledged

    queue.settle([f for f in [follow_up] if not f.placed], lambda: None, [envelope])
    assert [e.kind for e in drain(queue)] == [RETRY]
    assert queue.is_empty(BOTH)


def test_settle_and_take_runs_each_step_so_that_running_it_again_is_safe(queue: Queue) -> None:
    """`run` tries a step again after a lost connection (here: the take fails once). What it
    runs again must not settle twice: one retry placed, the settled trigger gone."""
    envelope = taken_trigger(queue)
    queue.publish_trigger(TriggerMessage("customer.created", {"id": 2}))
    follow_up = Placement(lambda: queue.publish_retry(retry(), 0))
    takes: list[int] = []

    def settle() -> None:
        queue.settle([f for f in [follow_up] if not f.placed], lambda: None, [envelope])

    def take() -> list[Envelope]:
        takes.append(1)
        if len(takes) == 1:
            raise StoreWriteFailed("connection lost")
        return queue.receive_many([TRIGGER], 5, 2)

    def run(step: Callable[[], T]) -> T:
        try:
            return step()
        except StoreWriteFailed:
            return step()

    taken = queue.settle_and_take(settle, take, run)

    assert [TriggerMessage.decode(e.body).event_name for e in taken] == ["customer.created"]
    queue.ack_many(taken)
    assert [e.kind for e in drain(queue)] == [RETRY]
    assert queue.is_empty(BOTH)


def test_what_a_consumer_holds_comes_back_after_its_store_is_lost(queue: Queue) -> None:
    """At once on a broker; on the table queue, whose leases are rows in the lost
    database, when the lease runs out."""
    envelope = taken_trigger(queue)
    queue.release_without_store([envelope])
    again = queue.receive([TRIGGER], timeout=LEASE_SECONDS + 3)
    assert again is not None and again.message_id == envelope.message_id
    queue.ack(again)
