"""The durability promises on a PostgreSQL store, with the table queue on the same
database (`pgdb`) and with RabbitMQ as the queue (`pgamqp`), through real `ae consume`
processes: SIGKILL loses nothing, several consumers deliver each event once, SIGTERM
finishes the work in hand, a lost database connection is ridden out, and an
unreachable database is one line and exit 3.

Runs on the real local PostgreSQL (a database per module, tests/postgres_db.py)
and RabbitMQ (a vhost per module, conftest). Waits are generous and nothing
depends on which consumer took what.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Receiver
from postgres_db import postgres_admin_url
from shared_hosts import (
    EVENT,
    WAIT_SECONDS,
    Host,
    delivery_uuids,
    finish,
    handled,
    kill,
    received_numbers,
    shared_settings,
    successes_by_uuid,
    wait_until,
)

from asyncevents_cli.engine.retrying import Retrying, delays
from asyncevents_cli.errors import DatabaseUnavailable
from asyncevents_cli.publishing import publish_batch
from asyncevents_cli.subscribe import subscribe

pytestmark = pytest.mark.postgres
TOKEN = "t0ken"


@pytest.fixture(params=["pgdb", pytest.param("pgamqp", marks=pytest.mark.amqp)])
def shared(request: pytest.FixtureRequest, postgres_url: str) -> dict[str, Any]:
    """Settings naming the shared store (and broker) every host uses."""
    amqp_url = request.getfixturevalue("amqp_url") if request.param == "pgamqp" else None
    return shared_settings(request.param, postgres_url, amqp_url)


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def set_up(host: Host, receiver: Receiver, events: int, *paths: tuple[str, Any]) -> None:
    with host.runtime() as rt:
        for path, *script in paths:
            subscribe(rt.config, rt.store, EVENT, receiver.script(path, *script), secret=TOKEN)
        publish_batch(rt.config, rt.queue, EVENT, [{"n": n} for n in range(events)])


def assert_each_delivery_logged_once(host: Host, receiver: Receiver, path: str, events: int) -> None:
    """Every event reached `path` (correctly signed), and each delivery has exactly one logged success."""
    assert set(received_numbers(receiver, path, TOKEN)) == set(range(events))
    with host.runtime() as rt:
        logged = successes_by_uuid(rt)
        assert rt.queue.is_empty(["trigger", "retry"])
    seen = delivery_uuids(receiver, path)
    assert set(logged) == set(seen)  # whatever arrived is logged...
    assert set(logged.values()) == {1}, [u for u, n in logged.items() if n != 1]  # ...as one success


def test_a_sigkilled_consumer_loses_nothing(tmp_path: Path, receiver: Receiver, shared: dict[str, Any]) -> None:
    host = Host.make(tmp_path / "host", **shared)
    events = 60
    set_up(host, receiver, events, ("/hook", ("sleep", 0.05)))

    doomed = host.consumer("--concurrency", "4")
    try:
        wait_until(lambda: len(receiver.requests) >= 8, what="the first deliveries")
    finally:
        kill(doomed)  # mid-stream: attempts in flight, some settled, some not
    # The survivor waits for the dead one's leases to run out (table queue) or
    # takes its requeued messages (broker), and finishes the lot.
    finish(host.consumer("--until-empty", "--concurrency", "4"))
    assert_each_delivery_logged_once(host, receiver, "/hook", events)


def test_several_consumers_deliver_each_event_once(tmp_path: Path, receiver: Receiver, shared: dict[str, Any]) -> None:
    host = Host.make(tmp_path / "host", **shared)
    events = 90
    set_up(host, receiver, events, ("/hook", ("sleep", 0.01)), ("/flaky", 500, 200))

    consumers = [host.consumer("--until-empty", "--concurrency", "4") for _ in range(3)]
    outputs = [finish(c) for c in consumers]
    assert sum(handled(out) for out in outputs) == events + 1  # the triggers, and the one retry, once each

    assert received_numbers(receiver, "/hook", TOKEN) == dict.fromkeys(range(events), 1)  # none twice
    flaky = received_numbers(receiver, "/flaky", TOKEN)
    assert set(flaky) == set(range(events)) and sum(flaky.values()) == events + 1  # one retry, made once
    with host.runtime() as rt:
        logged = successes_by_uuid(rt)
        assert len(logged) == 2 * events and set(logged.values()) == {1}
        assert rt.store.log.max_log_id() == 2 * events + 1


def test_sigterm_finishes_the_work_in_hand(tmp_path: Path, receiver: Receiver, shared: dict[str, Any]) -> None:
    host = Host.make(tmp_path / "host", **shared)
    set_up(host, receiver, 6, ("/slow", ("sleep", 1.0)))

    consumer = host.consumer("--concurrency", "2")
    try:
        wait_until(lambda: len(receiver.requests) >= 2, what="two deliveries in flight")
        consumer.send_signal(signal.SIGTERM)  # while both are in flight
        stderr = finish(consumer)
    finally:
        if consumer.poll() is None:
            kill(consumer)
    assert "handled 2 message(s)" in stderr
    assert len(receiver.requests) == 2
    with host.runtime() as rt:
        logs = successes_by_uuid(rt)
        assert len(logs) == 2 and set(logs.values()) == {1}  # the two were finished and logged
        depths = rt.queue.depths()
        assert (depths.trigger, depths.in_flight) == (4, 0)  # the rest wait, none held

    finish(host.consumer("--until-empty"))
    assert_each_delivery_logged_once(host, receiver, "/slow", 6)


def terminate_backends(database: str) -> int:
    """Kill every connection to `database` but this one; how many there were."""
    import psycopg

    with psycopg.connect(postgres_admin_url(), autocommit=True) as conn:
        return len(
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchall()
        )


def test_killed_database_connections_are_ridden_out(tmp_path: Path, receiver: Receiver, shared: dict[str, Any]) -> None:
    host = Host.make(tmp_path / "host", **shared)
    events = 80
    set_up(host, receiver, events, ("/hook", ("sleep", 0.02)))

    consumer = host.consumer("--until-empty", "--concurrency", "4")
    killed: list[int] = []

    def killer() -> None:
        # Cut every connection four times, each once the consumer has made progress
        # since the last cut (so it is working, not still reconnecting, each time).
        for progress in (5, 20, 35, 50):
            while len(receiver.requests) < progress and consumer.poll() is None:
                time.sleep(0.02)
            if consumer.poll() is not None:
                return
            killed.append(terminate_backends(database_name(shared["database"])))

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        finish(consumer)
    finally:
        thread.join(timeout=WAIT_SECONDS)
    assert len(killed) == 4 and sum(killed) > 0  # connections really were cut while it worked
    assert_each_delivery_logged_once(host, receiver, "/hook", events)


def set_connections_allowed(database: str, allowed: bool) -> None:
    import psycopg

    with psycopg.connect(postgres_admin_url(), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')


def cut_off(database: str, seconds: float) -> None:
    """An outage as a restart looks from outside: the database refuses new connections,
    its sessions are ended, and after `seconds` it takes connections again."""
    set_connections_allowed(database, False)
    try:
        terminate_backends(database)
        time.sleep(seconds)
    finally:
        set_connections_allowed(database, True)


def test_a_database_outage_is_waited_out(tmp_path: Path, receiver: Receiver, shared: dict[str, Any]) -> None:
    """The database refuses every connection for a while (as in a restart): the
    consumer says so, keeps trying with back-off (in place for a few seconds, then by
    starting again, see engine/retrying.py and engine/reconnect.py), and carries on
    once it is back."""
    host = Host.make(tmp_path / "host", **shared)
    events = 40
    set_up(host, receiver, events, ("/hook", ("sleep", 0.05)))
    database = database_name(shared["database"])

    consumer = host.consumer("--until-empty", "--concurrency", "2")
    try:
        wait_until(lambda: len(receiver.requests) >= 4, what="the first deliveries")
        cut_off(database, 15)  # longer than the pool waits for a connection (10 s): calls fail meanwhile
        stderr = finish(consumer)
    finally:
        if consumer.poll() is None:
            kill(consumer)
    assert "database connection lost" in stderr or "reconnecting in" in stderr, stderr
    assert_each_delivery_logged_once(host, receiver, "/hook", events)


# (`ae consume` is the exception: it waits up to a minute for the database; see engine/reconnect.py)
@pytest.mark.parametrize(
    "command",
    [
        ["publish", EVENT, "--data", "{}"],
        ["search", "status:200"],
        ["deadletters"],
        ["logs"],
        ["replay", "--query", "success:false", "--yes"],
    ],
)
def test_commands_exit_3_with_one_line_when_the_database_cannot_be_reached(tmp_path: Path, command: list[str]) -> None:
    host = Host.make(tmp_path / "host", database="postgresql://ae:pw@127.0.0.1:1/ae", queue="db")
    done = host.ae(*command, timeout=WAIT_SECONDS)
    assert done.returncode == 3, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ae: error: cannot reach the database"), done.stderr
    assert "pw@" not in done.stderr


# -- the back-off itself (pure) ---------------------------------------------


def test_the_back_off_doubles_to_a_ceiling() -> None:
    waits = delays(0.1, 5.0)
    assert [round(next(waits), 3) for _ in range(9)] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]


def test_retrying_tries_again_then_gives_up_after_its_time() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    failures = [DatabaseUnavailable("gone")] * 3

    def flaky() -> str:
        if failures:
            raise failures.pop()
        return "done"

    retrying = Retrying(give_up_after=60, sleep=sleep, clock=lambda: now[0])
    assert retrying.call(flaky) == "done" and slept == [0.1, 0.2, 0.4]

    def down() -> None:
        raise DatabaseUnavailable("still gone")

    slept.clear()
    with pytest.raises(DatabaseUnavailable):
        retrying.call(down)
    assert 55 <= sum(slept) <= 60  # it kept trying for about its minute, then let the error through


@pytest.mark.amqp
def test_a_long_outage_restarts_the_consumer_and_rabbitmq_gets_its_messages_back(
    tmp_path: Path, receiver: Receiver, postgres_url: str, amqp_url: str
) -> None:
    """Longer than the in-place retry: the consumer is stopped and started again
    (engine/reconnect.py). The messages it held on its RabbitMQ channel must go back
    to the broker then, not wait unacknowledged on a connection that stays open."""
    host = Host.make(tmp_path / "host", **shared_settings("pgamqp", postgres_url, amqp_url))
    events = 40
    set_up(host, receiver, events, ("/hook", ("sleep", 0.05)))
    database = database_name(postgres_url)

    consumer = host.consumer("--until-empty", "--concurrency", "2")
    try:
        wait_until(lambda: len(receiver.requests) >= 4, what="the first deliveries")
        cut_off(database, 30)  # past the in-place retry's 10 s (each try waits up to 10 s for the pool)
        stderr = finish(consumer)
    finally:
        if consumer.poll() is None:
            kill(consumer)
    assert "reconnecting in" in stderr, stderr
    assert_each_delivery_logged_once(host, receiver, "/hook", events)
