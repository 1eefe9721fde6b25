"""The store's half of the lanes (kept deliveries, endpoint states), on SQLite and PostgreSQL.

A second `Store` on the same database plays another consumer process or host.
"""

from __future__ import annotations

from collections.abc import Callable

from asyncevents_cli.store import EndpointState, PendingDelivery, Store

EVENT = "sales.order.created"


def kept(n: int, subscription_id: int = 1, due: float = 100.0) -> PendingDelivery:
    return PendingDelivery(f"uuid-{n:03}", subscription_id, EVENT, f'{{"n":{n}}}', 0, 0, f"m{n}", due)


def test_kept_deliveries_are_taken_oldest_first_and_leased(open_store: Callable[..., Store]) -> None:
    store = open_store()
    store.lanes.add_pending([kept(n, due=100.0 + n) for n in range(5)] + [kept(9, subscription_id=2)])
    assert store.lanes.due_pending(102.0) == {1: 3, 2: 1}
    taken = store.lanes.take_pending(1, 2, now=200.0, lease_until=260.0)
    assert [row.uuid for row in taken] == ["uuid-000", "uuid-001"] and taken[0].content == '{"n":0}'
    # leased: another consumer gets the next ones, not these
    other = open_store()
    assert [row.uuid for row in other.lanes.take_pending(1, 5, now=201.0, lease_until=261.0)] == [
        "uuid-002",
        "uuid-003",
        "uuid-004",
    ]
    assert other.lanes.take_pending(1, 5, now=202.0, lease_until=262.0) == []
    # a lease that lapses (its consumer died) hands them over
    assert [row.uuid for row in other.lanes.take_pending(1, 1, now=260.5, lease_until=320.0)] == ["uuid-000"]


def test_a_kept_delivery_is_updated_released_and_finished(open_store: Callable[..., Store]) -> None:
    store = open_store()
    store.lanes.add_pending([kept(1)], lease_until=500.0)  # under way in this consumer
    assert store.lanes.take_pending(1, 1, now=200.0, lease_until=260.0) == []
    store.lanes.add_pending([PendingDelivery("uuid-001", 1, EVENT, '{"n":1}', 2, 0, "m1", 300.0)])  # kept again
    assert store.lanes.take_pending(1, 1, now=299.0, lease_until=360.0) == []  # not due yet
    [row] = store.lanes.take_pending(1, 1, now=300.0, lease_until=360.0)
    assert row.death_count == 2
    store.lanes.release_pending([row.uuid], due=310.0)
    assert store.lanes.due_pending(310.0) == {1: 1} and store.lanes.pending_uuids(["uuid-001", "uuid-x"]) == {
        "uuid-001"
    }
    store.lanes.finish_pending([row.uuid])
    assert store.lanes.pending_counts() == {} and store.lanes.pending_delivery("uuid-001") is None


def test_endpoint_states_round_trip_and_one_consumer_wins_each_probe(open_store: Callable[..., Store]) -> None:
    store, other = open_store(), open_store()
    assert store.lanes.endpoint_states() == {}
    state = EndpointState(1, 10, 50.0, True, 60.0, 90.0, 0.0)
    store.lanes.save_endpoint_states([state, EndpointState(2, 3, 70.0)])
    assert other.lanes.endpoint_states([1]) == {1: state}
    assert not store.lanes.claim_probe(1, now=89.0, next_probe=119.0)  # not due yet
    assert store.lanes.claim_probe(1, now=90.0, next_probe=120.0)
    assert not other.lanes.claim_probe(1, now=90.5, next_probe=120.5)  # the first consumer won it
    assert not store.lanes.claim_probe(2, now=1000.0, next_probe=1030.0)  # closed: nothing to probe


def test_opening_holds_the_kept_deliveries_and_enabling_resumes_them(open_store: Callable[..., Store]) -> None:
    store = open_store()
    [sub] = [store.subscriptions.add_subscription(EVENT, "http://127.0.0.1:9/hook", "tok")]
    rows = [kept(n, sub.subscription_id) for n in range(3)]
    store.lanes.add_pending(rows)
    assert store.lanes.held_counts() == {} and store.lanes.pending_to_attempt() == 3  # waiting, not held
    store.lanes.save_endpoint_states([EndpointState(sub.subscription_id, 10, 1.0, True, 1.0, 31.0)])
    assert store.lanes.held_counts() == {sub.subscription_id: 3}
    assert store.lanes.pending_to_attempt() == 0  # held: `--until-empty` does not wait for them
    store.lanes.auto_disable(sub.subscription_id, "circuit open since 1970-01-01 00:00:01 UTC: endpoint failing")
    disabled = store.subscriptions.subscription(sub.subscription_id, reveal=False)
    assert not disabled.enabled and disabled.disabled_reason and disabled.disabled_at
    assert store.lanes.endpoint_states()[sub.subscription_id].next_probe is None  # no more probes
    store.subscriptions.set_status([sub.subscription_id], enabled=True)
    enabled = store.subscriptions.subscription(sub.subscription_id, reveal=False)
    assert enabled.enabled and enabled.disabled_reason is None and enabled.disabled_at is None
    assert store.lanes.endpoint_states() == {} and store.lanes.held_counts() == {}
    assert store.lanes.pending_to_attempt() == 3
