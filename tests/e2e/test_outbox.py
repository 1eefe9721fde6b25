"""Transactional publishing: an order and its event commit together or not at all.

A real application process (tests/outbox_app.py) writes an "orders" row and
publishes in the same transaction, on its own connection to ae's store; a real
receiver counts what arrives. Each case runs on the SQLite table queue, the
PostgreSQL table queue, and RabbitMQ through the outbox (from PostgreSQL and
from SQLite).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Receiver, ok, ok_json, write_config

import asyncevents_cli as ae

HELPERS = Path(__file__).resolve().parents[1]  # tests/: outbox_app.py
AE = str(Path(sys.executable).parent / "ae")  # this tree's console script
EVENT = "sales.order.created"
SETUPS = [
    "sqlite-db",
    pytest.param("sqlite-amqp", marks=pytest.mark.amqp),
    pytest.param("postgres-db", marks=pytest.mark.postgres),
    pytest.param("postgres-amqp", marks=[pytest.mark.postgres, pytest.mark.amqp]),
]


@dataclass
class Setup:
    name: str
    config: Path
    database: str  # a postgresql:// URL or ae's SQLite file
    env: dict[str, str]

    @property
    def on_postgres(self) -> bool:
        return self.database.startswith("postgresql://")

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """A statement on ae's database, committed (the test's own look at the tables)."""
        if self.on_postgres:
            import psycopg

            with psycopg.connect(self.database, autocommit=True) as conn:
                cursor = conn.execute(statement.replace("?", "%s"), params)
                return cursor.fetchall() if cursor.description else []
        with sqlite3.connect(self.database, timeout=30) as conn:
            return conn.execute(statement, params).fetchall()

    def orders(self) -> set[str]:
        return {row[0] for row in self.sql("SELECT increment_id FROM orders")}


def _make_setup(name: str, tmp_path: Path, request: pytest.FixtureRequest, receiver: Receiver) -> Setup:
    store, queue = name.split("-")
    settings: dict[str, Any] = {"queue": queue}
    env = {k: v for k, v in os.environ.items() if not k.startswith("AE_") or k.startswith(("AE_REQUIRE", "AE_TEST"))}
    if queue == "amqp":
        settings["amqp_url"] = request.getfixturevalue("amqp_url")
    if store == "postgres":
        from postgres_db import TEST_SECRET_KEY

        settings["database"] = request.getfixturevalue("postgres_url")
        request.getfixturevalue("monkeypatch").setenv("AE_SECRET_KEY", TEST_SECRET_KEY)
        env["AE_SECRET_KEY"] = TEST_SECRET_KEY
    config = write_config(tmp_path, **settings)
    with ae.Client(config) as client:
        client.subscribe(EVENT, receiver.endpoint("/orders"), secret="s3cret")
        database = str(settings.get("database") or client.config.database_path)
    setup = Setup(name, config, database, env)
    setup.sql("CREATE TABLE orders (increment_id TEXT PRIMARY KEY)")
    return setup


@pytest.fixture(params=SETUPS)
def setup(request: pytest.FixtureRequest, tmp_path: Path, receiver: Receiver) -> Setup:
    return _make_setup(request.param, tmp_path, request, receiver)


class App:
    """The test application, in a process of its own that a test may kill."""

    def __init__(self, setup: Setup, *extra: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HELPERS / "outbox_app.py"), str(setup.config), setup.database, *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=setup.env,
        )

    def send(self, verb: str, order_id: str) -> str:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(f"{verb} {order_id}\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        assert answer, f"the app died on {verb} {order_id}"
        return answer

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin
            self.process.stdin.close()
            self.process.wait(30)


def delivered(receiver: Receiver) -> Counter[str]:
    return Counter(r.json["data"]["increment_id"] for r in receiver.to("/orders"))


def deliver_all(setup: Setup) -> None:
    ok(setup.config, "consume", "all", "--until-empty")


def queued_anywhere(setup: Setup) -> int:
    """Triggers waiting in the table queue or unsent in the outbox."""
    outbox = setup.sql("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")[0][0]
    return int(outbox) + ok_json(setup.config, "status")["queues"]["trigger"]


def test_a_commit_is_delivered_once_and_a_rollback_never(setup: Setup, receiver: Receiver) -> None:
    app = App(setup)
    assert app.send("commit", "CK1") == "committed CK1"
    assert app.send("rollback", "CK2") == "rolled back CK2"
    app.close()
    assert setup.orders() == {"CK1"}
    deliver_all(setup)
    assert delivered(receiver) == Counter({"CK1": 1})
    [request] = receiver.to("/orders")
    assert request.signed_with("s3cret")
    assert queued_anywhere(setup) == 0


def test_a_kill_between_insert_and_commit_publishes_nothing(setup: Setup, receiver: Receiver) -> None:
    app = App(setup)
    assert app.send("hold", "CK3") == "holding CK3"
    app.kill()
    app = App(setup)  # the database has rolled the dead transaction back; the next one goes on
    assert app.send("commit", "CK4") == "committed CK4"
    app.close()
    assert setup.orders() == {"CK4"}
    deliver_all(setup)
    assert delivered(receiver) == Counter({"CK4": 1})


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("postgres-db", marks=pytest.mark.postgres),
        pytest.param("postgres-amqp", marks=[pytest.mark.postgres, pytest.mark.amqp]),
    ],
)
def test_through_a_sqlalchemy_session(
    name: str, tmp_path: Path, request: pytest.FixtureRequest, receiver: Receiver
) -> None:
    setup = _make_setup(name, tmp_path, request, receiver)
    app = App(setup, "sqlalchemy")
    assert app.send("commit", "SA1") == "committed SA1"
    assert app.send("rollback", "SA2") == "rolled back SA2"
    assert app.send("hold", "SA3") == "holding SA3"
    app.kill()
    assert setup.orders() == {"SA1"}
    deliver_all(setup)
    assert delivered(receiver) == Counter({"SA1": 1})


@pytest.fixture(
    params=[
        pytest.param("sqlite-amqp", marks=pytest.mark.amqp),
        pytest.param("postgres-amqp", marks=[pytest.mark.postgres, pytest.mark.amqp]),
    ]
)
def outbox_setup(request: pytest.FixtureRequest, tmp_path: Path, receiver: Receiver) -> Setup:
    return _make_setup(request.param, tmp_path, request, receiver)


def _publish_in_one_transaction(setup: Setup, ids: list[str]) -> None:
    with ae.Client(setup.config) as client:
        if setup.on_postgres:
            import psycopg

            with psycopg.connect(setup.database) as conn:
                client.publish_many(EVENT, [{"increment_id": i} for i in ids], connection=conn)
        else:
            with sqlite3.connect(setup.database, timeout=30) as lite:
                client.publish_many(EVENT, [{"increment_id": i} for i in ids], connection=lite)


def test_a_message_forwarded_again_is_not_delivered_again(outbox_setup: Setup, receiver: Receiver) -> None:
    """The relay died after the broker took its rows and before its commit: they go again,
    under the same message ids, and the consumer skips what it attempted already."""
    setup = outbox_setup
    _publish_in_one_transaction(setup, ["R1", "R2", "R3"])
    assert ok_json(setup.config, "relay", "--until-empty") == {"forwarded": 3, "unsent": 0}
    deliver_all(setup)
    assert delivered(receiver) == Counter({"R1": 1, "R2": 1, "R3": 1})
    setup.sql("UPDATE outbox SET sent_at = NULL")  # as if the relay's commit never happened
    assert ok_json(setup.config, "relay", "--until-empty") == {"forwarded": 3, "unsent": 0}
    deliver_all(setup)
    assert delivered(receiver) == Counter({"R1": 1, "R2": 1, "R3": 1})


def test_a_running_consumer_forwards_the_outbox_as_it_goes(outbox_setup: Setup, receiver: Receiver) -> None:
    """No `ae relay` needed: `ae consume all` runs one on a thread of its own."""
    consumer = _start_consumer(outbox_setup)
    try:
        app = App(outbox_setup)
        assert app.send("commit", "C1") == "committed C1"
        app.close()
        receiver.wait_for(1, timeout=30)
        assert delivered(receiver) == Counter({"C1": 1})
    finally:
        consumer.send_signal(signal.SIGTERM)
        assert consumer.wait(30) == 0


def test_a_relay_killed_mid_stream_loses_nothing_and_sends_nothing_twice(
    outbox_setup: Setup, receiver: Receiver
) -> None:
    setup = outbox_setup
    ids = [f"K{n:04d}" for n in range(600)]
    _publish_in_one_transaction(setup, ids)
    relay = subprocess.Popen(
        [AE, "--config", str(setup.config), "relay", "--batch", "10"],
        env=setup.env,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sent = setup.sql("SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL")[0][0]
        if sent >= 50:
            break
        time.sleep(0.005)
    relay.send_signal(signal.SIGKILL)
    relay.wait(10)
    sent = setup.sql("SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL")[0][0]
    assert 50 <= sent < len(ids), "the relay was not killed mid-stream"
    assert ok_json(setup.config, "relay", "--until-empty")["unsent"] == 0
    deliver_all(setup)
    counts = delivered(receiver)
    assert set(counts) == set(ids) and set(counts.values()) == {1}


@pytest.mark.postgres
@pytest.mark.parametrize("queue", ["db", pytest.param("amqp", marks=pytest.mark.amqp)])
def test_ae_publish_from_psql(queue: str, tmp_path: Path, request: pytest.FixtureRequest, receiver: Receiver) -> None:
    setup = _make_setup(f"postgres-{queue}", tmp_path, request, receiver)
    script = """
        BEGIN;
        INSERT INTO orders VALUES ('PG1');
        SELECT ae_publish('sales.order.created', '{"increment_id": "PG1"}');
        COMMIT;
        BEGIN;
        INSERT INTO orders VALUES ('PG2');
        SELECT ae_publish('sales.order.created', '{"increment_id": "PG2"}', 1);
        ROLLBACK;
        SELECT ae_publish('no.such.event', '{"increment_id": "PG3"}');
    """
    done = subprocess.run(
        ["psql", "-v", "ON_ERROR_STOP=1", "-qtA", setup.database, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    message_ids = done.stdout.split()  # one per call, the rolled-back one's too
    assert len(message_ids) == 3 and all(len(m) == 32 for m in message_ids)
    refused = subprocess.run(
        ["psql", "-qtA", setup.database, "-c", "SELECT ae_publish('sales.order.created', '[1, 2]')"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0 and "data must be a JSON object, got array" in refused.stderr
    deliver_all(setup)
    assert delivered(receiver) == Counter({"PG1": 1})
    [parked] = ok_json(setup.config, "deadletters")
    assert parked["event_name"] == "no.such.event" and "not defined" in parked["reason"]
    assert parked["arguments"] == {"increment_id": "PG3"}


@pytest.mark.postgres
@pytest.mark.parametrize("queue", ["db", pytest.param("amqp", marks=pytest.mark.amqp)])
def test_randomised_commits_rollbacks_and_kills_lose_and_invent_nothing(
    queue: str, tmp_path: Path, request: pytest.FixtureRequest, receiver: Receiver
) -> None:
    """200 transactions, each committed, rolled back or killed before its commit, while a
    consumer runs. On RabbitMQ that consumer, whose relay thread forwards the outbox, is
    itself killed now and then: a delivery it made but had not logged is made again under
    the same uuid (at least once, as documented), never as a second delivery. (The table
    queue's consumer is not killed here: its leases would hold the test up for a minute.)"""
    setup = _make_setup(f"postgres-{queue}", tmp_path, request, receiver)
    rng = random.Random(int(os.environ.get("AE_TEST_SEED", "21")))
    consumer = _start_consumer(setup)
    committed: set[str] = set()
    app = App(setup)
    try:
        for n in range(200):
            order_id = f"X{n:03d}"
            verb = rng.choices(["commit", "rollback", "hold"], weights=[70, 22, 8])[0]
            answer = app.send(verb, order_id)
            if verb == "hold":
                app.kill()
                app = App(setup)
            elif answer.startswith("committed"):
                committed.add(order_id)
            if queue == "amqp" and rng.random() < 0.04:
                consumer.send_signal(signal.SIGKILL)
                consumer.wait(10)
                consumer = _start_consumer(setup)
    finally:
        app.close()
        consumer.send_signal(signal.SIGTERM)  # finishes what it holds
        consumer.wait(30)
    assert setup.orders() == committed
    deliver_all(setup)
    counts = delivered(receiver)
    assert set(counts) == committed, (sorted(set(counts) - committed), sorted(committed - set(counts)))
    deliveries = {(r.json["data"]["increment_id"], r.headers["idempotency-key"]) for r in receiver.to("/orders")}
    assert len(deliveries) == len(committed)  # one delivery (one uuid) per committed order
    if queue == "db":
        assert set(counts.values()) == {1}


def _start_consumer(setup: Setup) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [AE, "--config", str(setup.config), "consume", "all"],
        env=setup.env,
        stderr=subprocess.DEVNULL,
    )


def test_a_transactional_publish_queues_what_ae_publish_queues(tmp_path: Path) -> None:
    """The row is the module's trigger message, byte for byte what `ae publish` writes."""
    config = write_config(tmp_path, queue="db")
    data = {"increment_id": "W1", "note": "é"}
    ok(config, "publish", EVENT, "--store", "2", "--data", json.dumps(data))
    with ae.Client(config) as client, sqlite3.connect(client.config.database_path) as conn:
        message_id = client.publish(EVENT, data, store_id=2, connection=conn)
    with sqlite3.connect(tmp_path / ".ae" / "ae.db") as conn:
        rows = conn.execute("SELECT message_id, body FROM queue_messages ORDER BY id").fetchall()
    [(_, by_cli), (mine, by_client)] = rows
    assert mine == message_id and by_client == by_cli
    assert json.loads(by_client) == [EVENT, '{"increment_id":"W1","note":"é"}', 2]
