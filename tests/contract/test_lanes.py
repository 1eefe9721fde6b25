"""Per-subscription lanes, receiver signals and the circuit, on every queue backend.

Each test runs a real consumer against a real local receiver; what it asserts
is what the receiver saw and what the store recorded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from conftest import Receiver

from asyncevents_cli.publishing import publish
from asyncevents_cli.runtime import Runtime
from asyncevents_cli.states import DeliveryState
from asyncevents_cli.status import status
from asyncevents_cli.store import PendingDelivery, Subscription
from asyncevents_cli.subscribe import subscribe
from asyncevents_cli.trace import trace

EVENT = "sales.order.created"


def sub(rt: Runtime, url: str) -> Subscription:
    return subscribe(rt.config, rt.store, EVENT, url, secret="tok")[0]


@contextmanager
def consuming(rt: Runtime) -> Iterator[None]:
    """A consumer running in the background until the block ends (then it stops gracefully)."""
    stop = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            rt.consumer().run(should_stop=stop.is_set)
        except BaseException as exc:  # surfaced in the test below
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive(), "the consumer did not stop"
    assert not failure, failure


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def attempts_per_uuid(rt: Runtime, subscription_id: int) -> dict[str, int]:
    rows = rt.store.backend.execute(
        "SELECT uuid, COUNT(*) FROM delivery_log WHERE subscription_id = ? GROUP BY uuid", (subscription_id,)
    ).rows
    return dict(rows)


# -- a lane per subscription ---------------------------------------------------


def test_a_hanging_neighbour_does_not_hold_up_a_healthy_subscriber(
    make_runtime: Callable[..., Runtime], receiver: Receiver
) -> None:
    released = threading.Event()
    rt = make_runtime(subscription_concurrency=4)
    healthy = sub(rt, receiver.endpoint("/ok"))
    hanging = sub(rt, receiver.script("/hang", ("wait", released)))
    for n in range(300):
        publish(rt.config, rt.queue, EVENT, {"n": n})
    started = time.monotonic()
    with consuming(rt):
        wait_until(lambda: len(receiver.to("/ok")) >= 300, 20, "the healthy subscriber's 300 deliveries")
        took = time.monotonic() - started
        # the hanging one holds its own lane only: 4 attempts, the rest wait in the store
        assert receiver.peak_by_path["/hang"] <= 4
        released.set()
        wait_until(lambda: len(receiver.to("/hang")) >= 300, 60, "the hanging subscriber's backlog to drain")
    assert took < 15  # with a shared fate it took minutes (issue 17: 704 of 3,000 in 5 minutes)
    with make_runtime() as reader:
        # every delivery was logged exactly once per uuid, for both subscribers
        for subscription in (healthy, hanging):
            counts = attempts_per_uuid(reader, subscription.subscription_id)
            assert len(counts) == 300 and set(counts.values()) == {1}
        assert reader.store.lanes.pending_counts() == {}
        assert reader.queue.depths().dead_letters == 0


# -- receiver signals ----------------------------------------------------------


def test_retry_after_defers_the_next_attempt_and_counts_no_death(
    make_runtime: Callable[..., Runtime], receiver: Receiver
) -> None:
    rt = make_runtime(max_deaths=0)  # with no retries at all, a counted death would dead-letter it
    subscription = sub(rt, receiver.script("/busy", ("reply", 429, {"Retry-After": "1"}), 200))
    publish(rt.config, rt.queue, EVENT, {"n": 1})
    assert rt.consumer().run(until_empty=True) >= 1
    first, second = receiver.to("/busy")
    assert second.at - first.at >= 0.9  # the back-off unit is 0.01 s: only Retry-After spaced them
    [uuid] = attempts_per_uuid(rt, subscription.subscription_id)
    traced = trace(rt.store, uuid)
    assert traced["status"] == "Delivered with 1 retry"
    assert [a["death_count"] for a in traced["attempts"]] == [0, 0]
    assert [a["status_code"] for a in traced["attempts"]] == [429, 200]
    assert rt.queue.depths().dead_letters == 0


def test_retry_after_is_capped_by_retry_after_max_seconds(
    make_runtime: Callable[..., Runtime], receiver: Receiver
) -> None:
    rt = make_runtime(retry_after_max_seconds=0.5)
    sub(rt, receiver.script("/busy", ("reply", 503, {"Retry-After": "3600"}), 200))
    publish(rt.config, rt.queue, EVENT, {"n": 1})
    started = time.monotonic()
    rt.consumer().run(until_empty=True)
    assert len(receiver.to("/busy")) == 2 and time.monotonic() - started < 10


# -- the circuit -----------------------------------------------------------------


def test_an_endpoint_that_is_down_has_its_deliveries_held_then_drained(
    make_runtime: Callable[..., Runtime], receiver: Receiver
) -> None:
    up = threading.Event()
    receiver.respond = lambda request, earlier: 200 if up.is_set() else 503
    rt = make_runtime(circuit_failure_threshold=3, circuit_probe_seconds=0.5, max_deaths=2)
    down = sub(rt, receiver.endpoint("/down"))
    for n in range(20):
        publish(rt.config, rt.queue, EVENT, {"n": n})
    with consuming(rt), make_runtime() as reader:
        wait_until(
            lambda: reader.store.lanes.held_counts().get(down.subscription_id, 0) == 20, 20, "20 held deliveries"
        )
        failing = len(receiver.requests)
        time.sleep(1.2)  # two probe intervals: at most a couple of probes while it is down
        assert len(receiver.requests) <= failing + 3
        uuid = next(iter(attempts_per_uuid(reader, down.subscription_id)))
        assert trace(reader.store, uuid)["status"].startswith("Held: endpoint failing since ")
        assert "next probe at" in trace(reader.store, uuid)["status"]
        [row] = list(status(reader.config, reader.store, reader.queue)["subscriptions"])
        assert row["held"] == 20
        up.set()
        wait_until(
            lambda: reader.store.log.delivery_counts()[0]["delivered"] == 20, 30, "every held delivery to be delivered"
        )
        assert reader.store.lanes.held_counts() == {} and reader.store.lanes.pending_counts() == {}
    assert rt.queue.depths().dead_letters == 0  # held, not dead-lettered
    states = {u: rt.store.log.delivery(u)["state"] for u in attempts_per_uuid(rt, down.subscription_id)}
    assert len(states) == 20 and set(states.values()) == {DeliveryState.DELIVERED}


def test_a_payload_that_keeps_failing_at_a_healthy_endpoint_is_still_dead_lettered(
    make_runtime: Callable[..., Runtime], receiver: Receiver
) -> None:
    # the endpoint answers everything but the poison payload: its circuit never opens
    receiver.respond = lambda request, earlier: 500 if request.json["data"]["n"] == 0 else 200
    # one payload alone cannot open it: the threshold is above its max_deaths + 1 attempts
    rt = make_runtime(circuit_failure_threshold=5, max_deaths=3)
    sub(rt, receiver.endpoint("/x"))
    for n in range(60):
        publish(rt.config, rt.queue, EVENT, {"n": n})
    rt.consumer().run(until_empty=True)
    assert len([r for r in receiver.requests if r.json["data"]["n"] == 0]) == 4
    assert rt.queue.depths().dead_letters == 1


def test_a_circuit_open_too_long_disables_the_subscription_and_keeps_its_deliveries(
    make_runtime: Callable[..., Runtime], receiver: Receiver
) -> None:
    receiver.respond = lambda request, earlier: 503
    rt = make_runtime(circuit_failure_threshold=2, circuit_probe_seconds=0.2, disable_after_hours=0.0003)
    down = sub(rt, receiver.endpoint("/down"))
    for n in range(5):
        publish(rt.config, rt.queue, EVENT, {"n": n})
    with consuming(rt), make_runtime() as reader:
        wait_until(
            lambda: not reader.store.subscriptions.subscription(down.subscription_id).enabled, 20, "auto-disable"
        )
        disabled = reader.store.subscriptions.subscription(down.subscription_id, reveal=False)
        assert disabled.disabled_reason and disabled.disabled_reason.startswith("circuit open since ")
        assert disabled.disabled_at
        wait_until(lambda: reader.store.lanes.held_counts().get(down.subscription_id) == 5, 10, "5 held deliveries")
        asked = len(receiver.requests)
        time.sleep(0.6)
        assert len(receiver.requests) == asked  # disabled: no more probes
        receiver.respond = lambda request, earlier: 200
        reader.store.subscriptions.set_status([down.subscription_id], enabled=True)  # `ae subscriptions enable`
        assert reader.store.subscriptions.subscription(down.subscription_id, reveal=False).disabled_reason is None
        wait_until(lambda: reader.store.log.delivery_counts()[0]["delivered"] == 5, 20, "the kept deliveries to resume")
    assert rt.queue.depths().dead_letters == 0


def test_auto_disable_raises_disabled_and_an_operator_subscription_raises_nothing_about_itself(
    make_runtime: Callable[..., Runtime], receiver: Receiver
) -> None:
    """A partner's endpoint stays down until its subscription is disabled: the operator
    receives `ae.subscription.disabled`, signed, with the reason and a redacted URL. The
    operator's own `failing` receiver is down too: its circuit opens and is disabled in
    turn, and raises nothing about itself (no loops): neither `failing` nor `disabled`."""
    from asyncevents_cli.operator_events import DISABLED, FAILING

    receiver.respond = lambda request, earlier: 200 if request.path == "/ops" else 503
    rt = make_runtime(circuit_failure_threshold=2, circuit_probe_seconds=0.2, disable_after_hours=0.0003)
    down = subscribe(rt.config, rt.store, EVENT, "http://u:pa55@" + receiver.endpoint("/down")[7:], secret="tok")[0]
    ops_down = subscribe(rt.config, rt.store, FAILING, receiver.endpoint("/ops-down"), secret="0ps")[0]
    subscribe(rt.config, rt.store, DISABLED, receiver.endpoint("/ops"), secret="0ps")
    for n in range(5):
        publish(rt.config, rt.queue, EVENT, {"n": n})
    with consuming(rt):
        wait_until(lambda: len(receiver.to("/ops")) == 1, 30, "ae.subscription.disabled")
        wait_until(
            lambda: not rt.store.subscriptions.subscription(ops_down.subscription_id).enabled,
            30,
            "the operator's disable",
        )
        time.sleep(1.0)  # nothing more follows
    (disabled,) = receiver.to("/ops")  # about the partner only: the operator's own disable raised nothing
    assert disabled.signed_with("0ps")
    partner = disabled.json["data"]
    assert partner["subscription_id"] == down.subscription_id
    assert partner["event_name"] == EVENT and partner["reason"].startswith("circuit open since ")
    assert partner["recipient_url"].startswith("http://***@127.0.0.1") and "pa55" not in str(partner)
    # the operator's failing receiver heard of the partner only, never of its own circuit
    heard = {r.json["data"]["subscription_id"] for r in receiver.to("/ops-down")}
    assert heard == {down.subscription_id}


# -- the rate limit --------------------------------------------------------------


def test_a_rate_limited_lane_takes_tokens_from_the_shared_bucket(
    make_runtime: Callable[..., Runtime], receiver: Receiver
) -> None:
    rt = make_runtime()
    subscribe(rt.config, rt.store, EVENT, receiver.endpoint("/limited"), secret="tok", rate_limit="20/s")
    for n in range(50):
        publish(rt.config, rt.queue, EVENT, {"n": n})
    rt.consumer().run(until_empty=True)
    moments = sorted(r.at for r in receiver.to("/limited"))
    assert len(moments) == 50 and len({r.body for r in receiver.requests}) == 50
    # 20 to start with (a second's burst), then 20 a second: never more than 22 in any second
    most = max(sum(1 for m in moments if start <= m < start + 1.0) for start in moments)
    assert most <= 22
    assert moments[-1] - moments[0] >= 1.2  # 50 at 20/s after a burst of 20 take 1.5 s
    assert rt.queue.depths().dead_letters == 0 and rt.store.lanes.pending_counts() == {}


def test_a_kept_delivery_that_was_delivered_already_is_not_attempted_again(
    make_runtime: Callable[..., Runtime], receiver: Receiver
) -> None:
    """A detached delivery's row may be written by its message's settle after the attempt's
    own settle finished it (settles in the other order, a settle retried after a lost
    connection): the row is kept again, and once its lease lapses it is taken. The chain
    says it was delivered, so it is dropped, not sent and logged a second time."""
    rt = make_runtime()
    subscription = sub(rt, receiver.endpoint("/hook"))
    publish(rt.config, rt.queue, EVENT, {"n": 1})
    assert rt.consumer().run(until_empty=True) == 1
    [uuid] = attempts_per_uuid(rt, subscription.subscription_id)
    [sent] = receiver.to("/hook")
    content = sent.body.decode()
    rt.store.lanes.add_pending([PendingDelivery(uuid, subscription.subscription_id, EVENT, content, 0, 0, None, 0.0)])
    rt.consumer().run(until_empty=True)
    assert len(receiver.to("/hook")) == 1
    assert attempts_per_uuid(rt, subscription.subscription_id) == {uuid: 1}
    assert rt.store.lanes.pending_delivery(uuid) is None  # finished: nothing waits for it
    assert trace(rt.store, uuid)["status"] == "Delivered"
