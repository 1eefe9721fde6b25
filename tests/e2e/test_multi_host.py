"""Two hosts that share nothing but the database and broker URLs behave as one system.

Each host is a folder of its own (tests/shared_hosts.py): its own events.toml,
its own search index folder (`index_path`), its own `ae` processes. They share
one PostgreSQL store and one RabbitMQ vhost. A real local receiver checks every
signature with its own HMAC code and counts what arrived.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import Receiver
from shared_hosts import (
    EVENT,
    Host,
    delivery_uuids,
    finish,
    handled,
    kill,
    received_numbers,
    successes_by_uuid,
    wait_until,
)

from asyncevents_cli.engine import Consumer
from asyncevents_cli.publishing import publish
from asyncevents_cli.queues.amqp import AmqpQueue
from asyncevents_cli.queues.base import Envelope

pytestmark = [pytest.mark.postgres, pytest.mark.amqp]
TOKEN = "t0ken"


@pytest.fixture
def hosts(tmp_path: Path, postgres_url: str, amqp_url: str) -> tuple[Host, Host]:
    shared = {"database": postgres_url, "queue": "amqp", "amqp_url": amqp_url}
    return Host.make(tmp_path / "host-a", **shared), Host.make(tmp_path / "host-b", **shared)


def ok(host: Host, *args: str) -> str:
    done = host.ae(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def finish_late_starter(consumer: subprocess.Popen) -> None:
    """A's second consumer may still be starting (Python and its imports take a second on
    a loaded machine) when the work is done and SIGTERM comes. Before `ae consume` takes
    SIGTERM over, the signal ends the process as it ends any process, having taken
    nothing; after, it stops cleanly. Either way it says nothing on stderr."""
    _, stderr = consumer.communicate(timeout=60)
    assert consumer.returncode in (0, -signal.SIGTERM), stderr
    assert "error" not in stderr and "Traceback" not in stderr, stderr


def test_two_hosts_are_one_system(tmp_path: Path, receiver: Receiver, hosts: tuple[Host, Host]) -> None:
    a, b = hosts

    # A subscription made on A is listed on B.
    url = receiver.script("/hook", ("sleep", 0.05))
    subscription_id = ok(a, "subscribe", EVENT, url, "--secret", TOKEN).strip()
    listed = json.loads(ok(b, "subscriptions", "list", "--json"))
    assert [(str(s["subscription_id"]), s["recipient_url"]) for s in listed] == [(subscription_id, url)]

    # What A's consumer logs, B's search finds (B's index is its own folder).
    ok(a, "publish", EVENT, "--data", json.dumps({"n": -1, "note": "zanzibar"}))
    assert handled(finish(a.consumer("--until-empty"))) == 1
    found = json.loads(ok(b, "search", "zanzibar", "--json"))
    by_a = {r.headers["idempotency-key"] for r in receiver.to("/hook")}
    assert {hit["uuid"] for hit in found["results"]} == by_a
    assert (b.folder / "index").is_dir() and not (a.folder / "index").exists()

    # Events published on A, consumed on both hosts; one A consumer SIGKILLed mid-stream.
    events = 120
    batch = tmp_path / "events.jsonl"
    batch.write_text("".join(json.dumps({"n": n}) + "\n" for n in range(events)))
    ok(a, "publish", EVENT, "--batch", str(batch))
    doomed = a.consumer("--concurrency", "4")  # alone at first, so it surely holds work when killed
    consumers = []
    try:
        wait_until(lambda: len(receiver.requests) >= 12, what="A's consumer under way")
        kill(doomed)
        consumers = [b.consumer("--concurrency", "4"), b.consumer("--concurrency", "4")]
        before = len(receiver.requests)
        wait_until(lambda: len(receiver.requests) >= before + 10, what="B's consumers under way")
        consumers.append(a.consumer("--concurrency", "4"))
        wait_until(
            lambda: set(range(events)) <= set(received_numbers(receiver, "/hook", TOKEN)),
            what="every event at the receiver",
        )
        with b.runtime() as rt:  # and logged: the consumers are idle once the log has them all
            wait_until(lambda: len(successes_by_uuid(rt)) == events + 1, what="every delivery logged")
        for consumer in consumers:
            consumer.send_signal(signal.SIGTERM)
        outputs = [finish(consumer) for consumer in consumers[:2]]
        finish_late_starter(consumers[2])
    finally:
        for consumer in [*consumers, doomed]:
            if consumer.poll() is None:
                kill(consumer)
    assert handled(outputs[0]) + handled(outputs[1]) > 0  # B's consumers did their share

    # B's log (the shared one) holds exactly one success per delivery the receiver saw.
    with b.runtime() as rt:
        logged = successes_by_uuid(rt)
        assert rt.queue.is_empty(["trigger", "retry"])
    assert set(logged) == set(delivery_uuids(receiver, "/hook")) and set(logged.values()) == {1}

    # A traces a chain that B's consumers handled: only B consumes this one.
    ok(a, "publish", EVENT, "--data", json.dumps({"n": -2}))
    assert handled(finish(b.consumer("--until-empty"))) == 1
    [request] = [r for r in receiver.to("/hook") if r.json["data"]["n"] == -2]
    uuid = request.headers["idempotency-key"]
    trace = json.loads(ok(a, "trace", uuid, "--json"))
    assert trace["uuid"] == uuid
    assert [(attempt["success"], attempt["status_code"]) for attempt in trace["attempts"]] == [(True, 200)]


class AckLostQueue(AmqpQueue):
    """RabbitMQ whose acknowledgements never arrive (a host that dies right after its log commits)."""

    def ack(self, envelope: Envelope) -> None:
        pass

    def ack_many(self, envelopes: object) -> None:
        pass


def test_a_redelivery_logged_by_another_host_is_not_delivered_again(
    receiver: Receiver, hosts: tuple[Host, Host]
) -> None:
    a, b = hosts
    ok(a, "subscribe", EVENT, receiver.endpoint("/once"), "--secret", TOKEN)
    with a.runtime() as rt:
        publish(rt.config, rt.queue, EVENT, {"n": 1})
        queue = AckLostQueue(rt.config.settings.amqp_url, rt.config.retry_policy, store=lambda: rt.store.info)
        try:
            assert Consumer(rt.config, rt.store, queue, rt.notifiers).run(max_messages=1) == 1
        finally:
            queue.close()  # the broker puts the unacknowledged message back, marked redelivered
    assert len(receiver.to("/once")) == 1

    stderr = finish(b.consumer("--until-empty"))
    assert handled(stderr) == 1  # B took the redelivery...
    assert len(receiver.to("/once")) == 1  # ...saw A's logged attempt in the shared store, and did not deliver it
    with b.runtime() as rt:
        assert list(successes_by_uuid(rt).values()) == [1]
        assert rt.queue.is_empty(["trigger", "retry"])
