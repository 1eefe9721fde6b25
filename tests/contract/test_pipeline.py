"""The event pipeline end to end, once per queue backend (the `backend` fixture).

Each test writes a real events.toml in a temporary folder, delivers to a real
local HTTP receiver, and checks signatures with the tests' own HMAC code.
"""

from __future__ import annotations

import json
import time

from conftest import Receiver

from asyncevents_cli.publishing import publish
from asyncevents_cli.queues.base import TRIGGER
from asyncevents_cli.replay import replay
from asyncevents_cli.runtime import Runtime
from asyncevents_cli.subscribe import subscribe
from asyncevents_cli.trace import trace

EVENT = "sales.order.created"
ORDER = {"increment_id": "CK00000001", "customer_email": "roni_cost@example.com", "grand_total": 45.5}


def sub(rt: Runtime, url: str, event: str = EVENT, store_id: int = 0, secret: str = "tok") -> int:
    subscription, _ = subscribe(rt.config, rt.store, event, url, secret=secret, store_id=store_id)
    return subscription.subscription_id


def drain(rt: Runtime, kinds: tuple[str, ...] = ("trigger", "retry")) -> int:
    return rt.consumer(kinds).run(until_empty=True)


def uuid_for(rt: Runtime, subscription_id: int) -> str:
    rows = [r for r in rt.store.log.recent_logs(limit=1000) if r["subscription_id"] == subscription_id]
    assert len({r["uuid"] for r in rows}) == 1
    return rows[0]["uuid"]


def test_publish_fans_out_signed_to_every_enabled_subscriber(make_runtime, receiver: Receiver) -> None:
    rt = make_runtime()
    a = sub(rt, receiver.endpoint("/a"), secret="secret-a")
    sub(rt, receiver.endpoint("/b"), secret="secret-b")
    off = sub(rt, receiver.endpoint("/off"))
    sub(rt, receiver.endpoint("/other"), event="customer.created")
    rt.store.subscriptions.set_status([off], enabled=False)

    publish(rt.config, rt.queue, EVENT, ORDER)
    assert drain(rt) == 1

    assert sorted(r.path for r in receiver.requests) == ["/a", "/b"]
    for path, secret in (("/a", "secret-a"), ("/b", "secret-b")):
        [request] = receiver.to(path)
        assert request.json == {"data": ORDER}
        assert request.signed_with(secret)
    logs = rt.store.log.recent_logs()
    assert len(logs) == 2 and all(r["success"] == 1 and r["death_count"] == 0 for r in logs)
    assert logs[0]["uuid"] != logs[1]["uuid"]
    assert receiver.to("/a")[0].headers["idempotency-key"] == uuid_for(rt, a)
    assert json.loads(logs[0]["serialized_data"]) == {"data": ORDER}
    assert trace(rt.store, uuid_for(rt, a))["status"] == "Delivered"


def test_permanent_failure_gets_one_plus_max_deaths_attempts_then_dead_letter(make_runtime, receiver: Receiver) -> None:
    unit = 0.05
    rt = make_runtime(max_deaths=3, backoff_unit_seconds=unit)
    sid = sub(rt, receiver.script("/down", 503))
    publish(rt.config, rt.queue, EVENT, ORDER)
    drain(rt)

    requests = receiver.to("/down")
    assert len(requests) == 4
    waits = [b.at - a.at for a, b in zip(requests, requests[1:])]
    for wait, units in zip(waits, (1, 4, 9)):
        assert wait >= units * unit * 0.9, waits
    assert waits[0] < waits[1] < waits[2]
    uuid = uuid_for(rt, sid)
    data = trace(rt.store, uuid)
    assert [a["death_count"] for a in data["attempts"]] == [0, 1, 2, 3]
    assert data["status"] == "Dead Lettered with 3 retries"
    assert {r.headers["idempotency-key"] for r in requests} == {uuid}
    assert rt.queue.depths().dead_letters == 1


def test_transient_failure_is_delivered_with_retries(make_runtime, receiver: Receiver) -> None:
    rt = make_runtime(max_deaths=5)
    sid = sub(rt, receiver.script("/flaky", 500, 502, 200))
    publish(rt.config, rt.queue, EVENT, ORDER)
    drain(rt)
    assert len(receiver.to("/flaky")) == 3
    data = trace(rt.store, uuid_for(rt, sid))
    assert data["status"] == "Delivered with 2 retries"
    assert [a["success"] for a in data["attempts"]] == [False, False, True]
    assert [a["status_code"] for a in data["attempts"]] == [500, 502, 200]
    assert rt.queue.depths().dead_letters == 0


def test_disabled_subscription_gets_nothing_and_its_retries_stop(make_runtime, receiver: Receiver) -> None:
    rt = make_runtime(max_deaths=3)
    sid = sub(rt, receiver.script("/hook", 500))
    publish(rt.config, rt.queue, EVENT, ORDER)
    drain(rt, (TRIGGER,))
    assert len(receiver.requests) == 1
    # due at once here, so "overdue since" soon after
    assert trace(rt.store, uuid_for(rt, sid))["status"].startswith("Retrying, ")

    rt.store.subscriptions.set_status([sid], enabled=False)
    drain(rt)
    assert len(receiver.requests) == 1  # the pending retry was dropped, not attempted
    assert trace(rt.store, uuid_for(rt, sid))["status"] == "Stopped with 0 retries: subscription disabled or deleted"

    publish(rt.config, rt.queue, EVENT, ORDER)
    drain(rt)
    assert len(receiver.requests) == 1


def test_store_scoping(make_runtime, receiver: Receiver) -> None:
    rt = make_runtime()
    sub(rt, receiver.endpoint("/all"), store_id=0)
    sub(rt, receiver.endpoint("/store1"), store_id=1)
    sub(rt, receiver.endpoint("/store2"), store_id=2)

    publish(rt.config, rt.queue, EVENT, {"n": 1}, store_id=1)
    drain(rt)
    assert sorted(r.path for r in receiver.requests) == ["/all", "/store1"]

    receiver.requests.clear()
    publish(rt.config, rt.queue, EVENT, {"n": 2}, store_id=0)
    drain(rt)
    assert [r.path for r in receiver.requests] == ["/all"]


def test_replay_after_dead_letter_then_success(make_runtime, receiver: Receiver) -> None:
    rt = make_runtime(max_deaths=1)
    sid = sub(rt, receiver.script("/hook", 500))
    publish(rt.config, rt.queue, EVENT, ORDER)
    drain(rt)
    uuid = uuid_for(rt, sid)
    assert trace(rt.store, uuid)["status"] == "Dead Lettered with 1 retry"

    receiver.script("/hook", 200)
    replay(rt.store, rt.queue, rt.config.retry_policy, uuid)
    assert trace(rt.store, uuid)["status"].startswith("Retrying")
    drain(rt)

    data = trace(rt.store, uuid)
    assert data["status"] == "Delivered with 2 retries"
    assert [(a["death_count"], a["success"]) for a in data["attempts"]] == [(0, False), (1, False), (1, True)]
    assert [r.json for r in receiver.to("/hook")] == [{"data": ORDER}] * 3
    assert receiver.to("/hook")[-1].headers["idempotency-key"] == uuid


def test_replay_of_a_delivered_event_delivers_again(make_runtime, receiver: Receiver) -> None:
    rt = make_runtime()
    sid = sub(rt, receiver.endpoint("/hook"))
    publish(rt.config, rt.queue, EVENT, ORDER)
    drain(rt)
    uuid = uuid_for(rt, sid)
    replay(rt.store, rt.queue, rt.config.retry_policy, uuid)
    drain(rt)
    assert len(receiver.to("/hook")) == 2
    assert trace(rt.store, uuid)["status"] == "Delivered with 1 retry"


def test_until_empty_waits_for_delayed_retries(make_runtime, receiver: Receiver) -> None:
    unit = 0.1
    rt = make_runtime(max_deaths=2, backoff_unit_seconds=unit)
    sub(rt, receiver.script("/hook", 500, 500, 200))
    publish(rt.config, rt.queue, EVENT, ORDER)
    started = time.monotonic()
    drain(rt)
    assert time.monotonic() - started >= (1 + 4) * unit * 0.9
    assert len(receiver.requests) == 3
    depths = rt.queue.depths()
    assert (depths.trigger, depths.retry_due, depths.retry_delayed, depths.dead_letters) == (0, 0, 0, 0)


def test_status_and_trace_while_a_retry_is_delayed(make_runtime, receiver: Receiver) -> None:
    rt = make_runtime(backoff_unit_seconds=30)
    sid = sub(rt, receiver.script("/hook", 500))
    publish(rt.config, rt.queue, EVENT, ORDER)
    drain(rt, (TRIGGER,))
    depths = rt.queue.depths()
    assert (depths.trigger, depths.retry_due, depths.retry_delayed) == (0, 0, 1)
    status = trace(rt.store, uuid_for(rt, sid))["status"]
    assert status.startswith("Retrying, next attempt at 20") and status.endswith(" UTC")
    assert not rt.queue.is_empty(("retry",))
    assert rt.queue.is_empty((TRIGGER,))


def test_service_resolves_the_payload_from_published_ids(make_runtime, receiver: Receiver) -> None:
    rt = make_runtime(events={EVENT: {"service": "order_service:load_order"}})
    sub(rt, receiver.endpoint("/hook"))
    publish(rt.config, rt.queue, EVENT, {"order_id": 7})
    drain(rt)
    [request] = receiver.requests
    assert request.json["data"]["customer_email"] == "roni_cost@example.com"
    assert request.json["data"]["order_id"] == 7


def test_a_failing_service_parks_the_message_and_the_consumer_goes_on(make_runtime, receiver: Receiver) -> None:
    rt = make_runtime(events={EVENT: {"service": "order_service:load_order"}})
    sub(rt, receiver.endpoint("/hook"))
    publish(rt.config, rt.queue, EVENT, {"order_id": 999})  # KeyError in the service
    publish(rt.config, rt.queue, EVENT, {"order_id": 7})
    assert drain(rt) == 2
    assert len(receiver.requests) == 1
    assert rt.queue.depths().dead_letters == 1


def test_no_subscribers_means_the_message_is_simply_consumed(make_runtime, receiver: Receiver) -> None:
    rt = make_runtime()
    publish(rt.config, rt.queue, EVENT, ORDER)
    assert drain(rt) == 1
    assert rt.queue.is_empty(("trigger", "retry"))
    assert rt.store.log.recent_logs() == []


def test_max_messages_stops_after_n(make_runtime, receiver: Receiver) -> None:
    rt = make_runtime()
    sub(rt, receiver.endpoint("/hook"))
    for n in range(3):
        publish(rt.config, rt.queue, EVENT, {"n": n})
    assert rt.consumer().run(max_messages=2) == 2
    assert len(receiver.requests) == 2
    assert drain(rt) == 1


def test_dead_letters_can_be_inspected_and_stay_parked(make_runtime, receiver: Receiver) -> None:
    from asyncevents_cli.status import dead_letters

    rt = make_runtime(max_deaths=1, events={EVENT: {"service": "order_service:load_order"}})
    sid = sub(rt, receiver.script("/hook", 500))
    publish(rt.config, rt.queue, EVENT, {"order_id": 404})  # the service raises: the trigger is parked
    publish(rt.config, rt.queue, EVENT, {"order_id": 7})  # delivered twice, fails twice: dead-lettered
    drain(rt)

    letters = dead_letters(rt.queue)
    assert len(letters) == 2
    parked = next(r for r in letters if r["origin"] == "trigger")
    assert parked["event_name"] == EVENT and parked["arguments"] == {"order_id": 404}
    assert "KeyError" in parked["reason"]
    dead = next(r for r in letters if r["origin"] == "retry")
    assert dead["uuid"] == uuid_for(rt, sid)
    assert (dead["subscription_id"], dead["death_count"]) == (sid, 1)
    # Looking is not taking.
    assert rt.queue.depths().dead_letters == 2
    assert len(dead_letters(rt.queue, limit=1)) == 1
