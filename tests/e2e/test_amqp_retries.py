"""Retries on RabbitMQ are never lost in the delay queues, whatever the back-off unit.

Runs on the real local broker, in a vhost made for this module (conftest).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pika
import pytest
from conftest import Receiver, Request, environ_without_ae, write_config

from asyncevents_cli.backoff import RetryPolicy
from asyncevents_cli.errors import AeError
from asyncevents_cli.messages import RetryMessage, TriggerMessage
from asyncevents_cli.publishing import publish, publish_batch
from asyncevents_cli.queues.amqp import AmqpQueue
from asyncevents_cli.queues.amqp_topology import delay_queues
from asyncevents_cli.runtime import Runtime
from asyncevents_cli.states import DeliveryState
from asyncevents_cli.store import open_store
from asyncevents_cli.subscribe import subscribe

pytestmark = pytest.mark.amqp
EVENT = "sales.order.created"


def fail_odd_events_once(request: Request, earlier: list[Request]) -> int:
    """500 on the first attempt of every odd-numbered event, 200 otherwise."""
    key = request.headers.get("idempotency-key")
    if request.json["data"]["n"] % 2 and not any(r.headers.get("idempotency-key") == key for r in earlier):
        return 500
    return 200


def ae(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = environ_without_ae()
    return subprocess.run(
        [sys.executable, "-m", "asyncevents_cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_tiny_backoff_units_lose_no_retry(tmp_path: Path, amqp_url: str, receiver: Receiver) -> None:
    """The issue's stress case: 5 ms units, 300 events, every odd one failing once.

    Each retry waits in `event.retry.init` for 5 ms; none may vanish there, so
    every delivery ends delivered, none stays retrying, and `--until-empty`
    returns only once the last retry came back.
    """
    count = 300
    receiver.respond = fail_odd_events_once
    config = write_config(tmp_path, queue="amqp", amqp_url=amqp_url, backoff_unit_seconds=0.005, max_deaths=3)
    with Runtime(config, environ={}) as rt:
        subscribe(rt.config, rt.store, EVENT, receiver.endpoint("/hook"), secret="tok")
        publish_batch(rt.config, rt.queue, EVENT, [{"n": n} for n in range(count)])

    done = ae(config, "consume", "all", "--until-empty")
    assert done.returncode == 0, done.stderr

    attempts = Counter(r.json["data"]["n"] for r in receiver.requests)
    assert attempts == {n: 1 + n % 2 for n in range(count)}, "odd events: one failure, one success"
    with Runtime(config, environ={}) as rt:
        uuids = {r.headers["idempotency-key"] for r in receiver.requests}
        states = Counter((rt.store.log.delivery(uuid) or {}).get("state") for uuid in uuids)
        assert states == {DeliveryState.DELIVERED: count}, "lost retries stay 'retrying' forever"
        assert rt.queue.depths().as_dict() == {
            "trigger": 0,
            "retry_due": 0,
            "retry_delayed": 0,
            "dead_letters": 0,
            "in_flight": 0,
        }


def test_a_retry_waiting_under_earlier_settings_is_still_counted(tmp_path: Path, amqp_url: str) -> None:
    """Status and --until-empty look in every delay queue the store has used, not only
    those the current back-off names: a settings change must not hide a waiting retry."""
    store = open_store(tmp_path / "ae.db")
    try:
        before = AmqpQueue(amqp_url, RetryPolicy(max_deaths=5, unit_seconds=10), store=lambda: store.info)
        with before:
            before.publish_retry(RetryMessage(1, 3, "{}", "u-3"), 90)  # waits in event.delay.9
        after = AmqpQueue(amqp_url, RetryPolicy(max_deaths=2, exponent=3, unit_seconds=10), store=lambda: store.info)
        with after:
            assert "event.delay.9" not in [q.name for q in delay_queues(after.policy)]
            assert after.depths().retry_delayed == 1
            assert not after.is_empty(["retry"])
    finally:
        store.close()


# -- two stores on one broker ---------------------------------------------


def test_a_second_store_on_the_same_vhost_refuses_the_first_stores_messages(
    tmp_path: Path, amqp_url: str, receiver: Receiver
) -> None:
    """Stores A and B share a vhost, each with its own subscription 1. A's retry and A's
    trigger must never reach B's subscriber: B's consumer puts them back and stops with
    exit 1, and A's consumer then delivers them. A trigger without the header (Magento,
    any plain client) is still served by whichever store takes it."""
    receiver.script("/a", 500, 200)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    config_a = write_config(tmp_path / "a", queue="amqp", amqp_url=amqp_url)
    config_b = write_config(tmp_path / "b", queue="amqp", amqp_url=amqp_url)
    with Runtime(config_b, environ={}) as b:
        sub_b, _ = subscribe(b.config, b.store, EVENT, receiver.endpoint("/b"), secret="secret-b")
    with Runtime(config_a, environ={}) as a:
        sub_a, _ = subscribe(a.config, a.store, EVENT, receiver.endpoint("/a"), secret="secret-a")
        assert sub_a.subscription_id == sub_b.subscription_id == 1
        publish(a.config, a.queue, EVENT, {"order": 1})
        assert a.consumer(("trigger",)).run(max_messages=1) == 1  # /a fails: the retry carries A's identity

    refused = ae(config_b, "consume", "retry", "--max-messages", "1")
    assert refused.returncode == 1
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("ae: error: message ") and "belongs to another ae store" in line
    assert "vhost of its own" in line and "database = postgresql://" in line

    with Runtime(config_a, environ={}) as a:
        publish(a.config, a.queue, EVENT, {"order": 2})  # A has an identity now: so has its trigger
    with Runtime(config_b, environ={}) as b:
        with pytest.raises(AeError, match="belongs to another ae store"):
            b.consumer(("trigger",)).run(until_empty=True)
        assert b.store.log.recent_logs() == []
    assert receiver.to("/b") == []

    with Runtime(config_a, environ={}) as a:
        a.consumer().run(until_empty=True)
        logged = sorted((r["serialized_data"], r["death_count"], r["success"]) for r in a.store.log.recent_logs())
        assert logged == [
            ('{"data":{"order":1}}', 0, 0),
            ('{"data":{"order":1}}', 1, 1),
            ('{"data":{"order":2}}', 0, 1),
        ]
    assert sorted(r.json["data"]["order"] for r in receiver.to("/a")) == [1, 1, 2]
    assert all(r.signed_with("secret-a") for r in receiver.to("/a"))

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:  # what Magento's publisher sends: no headers at all; and a header no store made
        for order, headers in ((3, None), (4, {"x-ae-store": "not-a-store"})):
            body = json.dumps([EVENT, json.dumps({"order": order}), 1]).encode()
            connection.channel().basic_publish(
                "event", "event.trigger", body, pika.BasicProperties(delivery_mode=2, headers=headers)
            )
    finally:
        connection.close()
    with Runtime(config_b, environ={}) as b:
        assert b.consumer().run(until_empty=True) == 2
    # Both are in flight at once (the engine's window), so they may arrive in either order.
    assert sorted(r.json["data"]["order"] for r in receiver.to("/b")) == [3, 4]
    assert all(r.signed_with("secret-b") for r in receiver.to("/b"))


def test_a_refused_message_goes_back_untouched_with_those_taken_before_it(tmp_path: Path, amqp_url: str) -> None:
    """At the queue level: behind a header-less trigger sits another store's; the consumer
    refuses, and both are back in the queue, the refused one byte for byte as published."""
    theirs, mine = open_store(tmp_path / "theirs.db"), open_store(tmp_path / "mine.db")
    try:
        with AmqpQueue(amqp_url, store=lambda: theirs.info) as publisher:
            publisher.store_identity(create=True)
            publisher.depths()  # connects: declares the exchanges and queues
            connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
            try:
                connection.channel().basic_publish(
                    "event", "event.trigger", b'["sales.order.created","{}",0]', pika.BasicProperties(delivery_mode=2)
                )
            finally:
                connection.close()
            publisher.publish_trigger(TriggerMessage(EVENT, {"order": 1}))
        with (
            AmqpQueue(amqp_url, store=lambda: mine.info) as consumer,
            pytest.raises(AeError, match="belongs to another ae store"),
        ):
            for _ in range(50):  # the first call may see only the first message
                consumer.receive_many(["trigger"], 10, timeout=0.2)
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        try:
            channel = connection.channel()
            got = [channel.basic_get("event.trigger", auto_ack=True) for _ in range(3)]
        finally:
            connection.close()
        assert got[2] == (None, None, None), "nothing more, nothing lost"
        bodies = sorted(json.loads(body) for _method, _props, body in got[:2])
        assert bodies == [[EVENT, '{"order":1}', 0], [EVENT, "{}", 0]]
        stamped = next(props for _method, props, body in got[:2] if b"{}" not in body)
        assert stamped.headers == {"x-ae-store": theirs.info.identity()}
    finally:
        theirs.close()
        mine.close()
