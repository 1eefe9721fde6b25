"""What only the RabbitMQ backend has: the module's topology, plain AMQP
publishers, a broker that drops the connection, and an unreachable broker.

Runs on the real local broker, in a vhost made for this module (conftest).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pika
import pika.exceptions
import pytest
from conftest import (
    AmqpVhost,
    Receiver,
    Request,
    backend_environ,
    environ_without_ae,
    rabbitmqctl,
    rabbitmqctl_works,
    write_config,
)

from asyncevents_cli.backoff import RetryPolicy
from asyncevents_cli.errors import EXIT_QUEUE_UNAVAILABLE, QueueUnavailable
from asyncevents_cli.messages import RetryMessage, TriggerMessage
from asyncevents_cli.publishing import publish, publish_batch
from asyncevents_cli.queues.amqp import AmqpQueue
from asyncevents_cli.queues.amqp_topology import delay_queues
from asyncevents_cli.runtime import Runtime
from asyncevents_cli.subscribe import subscribe

pytestmark = pytest.mark.amqp
EVENT = "sales.order.created"
needs_rabbitmqctl = pytest.mark.skipif(not rabbitmqctl_works(), reason="needs rabbitmqctl on the broker's host")


def raw_channel(url: str) -> tuple[pika.BlockingConnection, pika.adapters.blocking_connection.BlockingChannel]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    return connection, connection.channel()


# -- topology ----------------------------------------------------------


def test_default_backoff_uses_the_modules_delay_queues() -> None:
    """Pure naming: the back-off values 1 (init), 4, 9, ... capped at 60 units."""
    names = [q.name for q in delay_queues(RetryPolicy(max_deaths=20))]
    assert names == ["event.retry.init"] + [f"event.delay.{n}" for n in (4, 9, 16, 25, 36, 49, 60)]
    assert [q.routing_key for q in delay_queues(RetryPolicy(max_deaths=3))] == [
        "event.retry.init",
        "event.retry.4",
        "event.retry.9",
    ]
    fractional = delay_queues(RetryPolicy(max_deaths=2, exponent=1.5, unit_seconds=0.01))
    assert [(q.name, q.ttl_ms) for q in fractional] == [("event.retry.init", 10), ("event.delay.2.82843", 28)]


@needs_rabbitmqctl
def test_declared_topology_matches_the_module(amqp_url: str, amqp_vhost: AmqpVhost) -> None:
    policy = RetryPolicy(max_deaths=3, unit_seconds=100)  # long TTLs: nothing expires while we look
    with AmqpQueue(amqp_url, policy) as queue:
        queue.publish_trigger(TriggerMessage(EVENT, {"id": 1}))
        for death_count in (1, 2, 3):
            queue.publish_retry(RetryMessage(1, death_count, "{}", f"u{death_count}"), 1)
        queue.dead_letter(b"{}", "test")

        exchanges = {
            tuple(line.split("\t"))
            for line in rabbitmqctl("list_exchanges", "-p", amqp_vhost.name, "name", "type", "durable").splitlines()
        }
        assert {("event", "topic", "true"), ("event.failover", "topic", "true")} <= exchanges

        bindings = {
            tuple(line.split("\t"))
            for line in rabbitmqctl(
                "list_bindings", "-p", amqp_vhost.name, "source_name", "destination_name", "routing_key"
            ).splitlines()
            if line.startswith("event")
        }
        assert bindings == {
            ("event", "event.trigger", "event.trigger"),
            ("event.failover", "event.failover.retry", "event.retry"),
            ("event.failover", "event.failover.deadletter", "event.retry.kill"),
            ("event.failover", "event.retry.init", "event.retry.init"),
            ("event.failover", "event.delay.4", "event.retry.4"),
            ("event.failover", "event.delay.9", "event.retry.9"),
        }

        listed = json.loads(
            rabbitmqctl(
                "list_queues", "-p", amqp_vhost.name, "--formatter", "json", "name", "durable", "arguments", "messages"
            )
        )
        queues = {q["name"]: q for q in listed}
        assert set(queues) == {
            "event.trigger",
            "event.failover.retry",
            "event.failover.deadletter",
            "event.retry.init",
            "event.delay.4",
            "event.delay.9",
        }
        assert all(q["durable"] for q in listed)
        for name in ("event.trigger", "event.failover.retry", "event.failover.deadletter"):
            assert not queues[name]["arguments"]
        for name, ttl in (("event.retry.init", 100_000), ("event.delay.4", 400_000), ("event.delay.9", 900_000)):
            arguments = {key: value for key, _type, value in queues[name]["arguments"]}
            assert arguments == {
                "x-message-ttl": ttl,
                "x-dead-letter-exchange": "event.failover",
                "x-dead-letter-routing-key": "event.retry",
            }  # and no x-expires: an expiring queue can vanish with retries in it
            assert queues[name]["messages"] == 1
        assert queues["event.failover.deadletter"]["messages"] == 1
        assert queue.depths().retry_delayed == 3
        assert not queue.is_empty(["retry"])

    # The same check as any other client would meet it: a declare with other
    # arguments is refused, one with the same arguments is accepted.
    connection, channel = raw_channel(amqp_url)
    try:
        same = {
            "x-message-ttl": 400_000,
            "x-dead-letter-exchange": "event.failover",
            "x-dead-letter-routing-key": "event.retry",
        }
        assert channel.queue_declare("event.delay.4", durable=True, arguments=same).method.message_count == 1
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.queue_declare("event.delay.4", durable=True, arguments={**same, "x-message-ttl": 1})
        assert refused.value.reply_code == 406
    finally:
        connection.close()


def test_a_delay_queue_left_from_another_backoff_unit_is_replaced_when_empty(amqp_url: str) -> None:
    """Also the upgrade from versions that declared delay queues with x-expires."""
    connection, channel = raw_channel(amqp_url)
    try:
        old = {
            "x-message-ttl": 4000,
            "x-dead-letter-exchange": "event.failover",
            "x-dead-letter-routing-key": "event.retry",
            "x-expires": 8000,
        }
        channel.queue_declare("event.delay.4", durable=True, arguments=old)
        with AmqpQueue(amqp_url, RetryPolicy(unit_seconds=0.01)) as queue:
            message_id = queue.publish_retry(RetryMessage(1, 2, "{}", "u"), 0.04)
            envelope = queue.receive(["retry"], timeout=3)  # due after 40 ms, not 4 s
            assert envelope is not None and envelope.message_id == message_id
            queue.ack(envelope)
    finally:
        connection.close()


# -- plain AMQP publishers -----------------------------------------------


def test_trigger_from_a_plain_amqp_client_is_delivered(tmp_path: Path, amqp_url: str, receiver: Receiver) -> None:
    config = write_config(tmp_path, queue="amqp", amqp_url=amqp_url)
    with Runtime(config, environ={}) as rt:
        subscription, _ = subscribe(rt.config, rt.store, EVENT, receiver.endpoint("/hook"), secret="tok")
        rt.queue.depths()  # declares the topology, as a running consumer would have

        # Exactly what Magento's publisher sends: no message id, no headers, arguments as a JSON string.
        connection, channel = raw_channel(amqp_url)
        try:
            body = json.dumps([EVENT, json.dumps({"increment_id": "000000042"}), 1])
            channel.basic_publish("event", "event.trigger", body.encode(), pika.BasicProperties(delivery_mode=2))
        finally:
            connection.close()

        assert rt.consumer().run(until_empty=True) == 1
        [request] = receiver.wait_for(1)
        assert request.path == "/hook"
        assert request.json == {"data": {"increment_id": "000000042"}}
        assert request.signed_with("tok")
        [log] = rt.store.log.recent_logs()
        assert log["subscription_id"] == subscription.subscription_id and log["success"] == 1
        assert log["message_id"] is None  # nothing to de-duplicate by; still delivered once
        assert rt.queue.is_empty(["trigger", "retry"])


# -- connection loss -----------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_settings(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The store behind the broker: a SQLite file, or PostgreSQL (whose shared log is what
    de-duplicates a redelivered message, whichever consumer logged it)."""
    if request.param == "sqlite":
        return {}
    from postgres_db import TEST_SECRET_KEY

    monkeypatch.setenv("AE_SECRET_KEY", TEST_SECRET_KEY)
    return {"database": request.getfixturevalue("postgres_url")}


@needs_rabbitmqctl
def test_connection_cut_mid_stream_loses_and_duplicates_nothing(
    tmp_path: Path,
    amqp_url: str,
    amqp_vhost: AmqpVhost,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
    store_settings: dict[str, str],
) -> None:
    count = 50
    config = write_config(tmp_path, queue="amqp", amqp_url=amqp_url, **store_settings)
    environ = backend_environ()
    cut = threading.Event()

    def hold_the_tenth_until_the_cut(request: Request, earlier: list[Request]) -> int:
        """The cut lands mid-stream however slow rabbitmqctl is: a message is in hand."""
        if request.path == "/a" and sum(r.path == "/a" for r in earlier) == 9:
            cut.wait(timeout=60)
        return 200

    receiver.respond = hold_the_tenth_until_the_cut
    with Runtime(config, environ=environ) as publisher:
        subs = [
            subscribe(publisher.config, publisher.store, EVENT, receiver.endpoint(path), secret="tok")[0]
            for path in ("/a", "/b")
        ]
        ids = publish_batch(publisher.config, publisher.queue, EVENT, [{"n": n} for n in range(count)])

    caplog.set_level(logging.WARNING, logger="asyncevents_cli")
    with Runtime(config, environ=environ) as consumer:
        worker = consumer.consumer(concurrency=4)
        errors: list[BaseException] = []

        def consume() -> None:
            try:
                worker.run(until_empty=True)
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        thread = threading.Thread(target=consume)
        thread.start()
        receiver.wait_for(19)
        rabbitmqctl("close_all_connections", "--vhost", amqp_vhost.name, "test: cut the consumer off")
        cut.set()
        thread.join(timeout=60)
        assert not thread.is_alive() and not errors

        assert any("connection lost" in r.getMessage() for r in caplog.records), "the cut did not happen mid-stream"
        for sub, path in zip(subs, ("/a", "/b")):
            delivered = Counter(r.json["data"]["n"] for r in receiver.to(path))
            assert delivered == Counter(range(count)), f"{path}: each event exactly once"
            logged = [
                r for r in consumer.store.log.recent_logs(limit=1000) if r["subscription_id"] == sub.subscription_id
            ]
            assert sorted(r["message_id"] for r in logged) == sorted(ids)
            assert all(r["success"] == 1 for r in logged)
        assert consumer.queue.is_empty(["trigger", "retry"])


def test_reconnects_after_the_broker_closes_the_connection(amqp_url: str) -> None:
    """A publisher whose connection was closed under it reconnects instead of failing."""
    with AmqpQueue(amqp_url) as queue:
        queue.publish_trigger(TriggerMessage(EVENT, {"n": 1}))
        assert queue.connection.conn is not None
        queue.connection.conn.close()  # as if the broker had gone away between two calls
        queue.publish_trigger(TriggerMessage(EVENT, {"n": 2}))
        assert queue.depths().trigger == 2


# -- unreachable broker --------------------------------------------------


def test_publishing_to_an_unreachable_broker_fails_fast_and_publishes_nothing(tmp_path: Path) -> None:
    url = "amqp://guest:s3cret@127.0.0.1:1/%2F"
    config = write_config(tmp_path, queue="amqp", amqp_url=url)
    with Runtime(config, environ={}) as rt:
        started = time.monotonic()
        with pytest.raises(QueueUnavailable) as failure:
            publish(rt.config, rt.queue, EVENT, {"id": 1})
        assert time.monotonic() - started < 2
        assert str(failure.value).startswith("cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1/%2F: ")
        assert "s3cret" not in str(failure.value)
        with pytest.raises(QueueUnavailable):
            publish_batch(rt.config, rt.queue, EVENT, [{"id": 1}, {"id": 2}])
        assert rt.store.log.recent_logs() == []

    env = environ_without_ae()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("ae")), "--config", str(config), "publish", EVENT, "--data", "{}"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert done.returncode == EXIT_QUEUE_UNAVAILABLE
    assert done.stdout.strip() == ""  # no message id: nothing was published
    assert "cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1/%2F" in done.stderr
    assert "s3cret" not in done.stderr
