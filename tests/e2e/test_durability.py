"""What happens when consumers die or are stopped: nothing is lost, nothing is done twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import Receiver, write_config

from asyncevents_cli.engine import Consumer
from asyncevents_cli.publishing import publish
from asyncevents_cli.queues.sqlite import SqliteQueue
from asyncevents_cli.runtime import Runtime
from asyncevents_cli.subscribe import subscribe

EVENT = "sales.order.created"


def test_a_consumer_that_dies_mid_message_leaves_it_to_another(tmp_path: Path, receiver: Receiver) -> None:
    with Runtime(write_config(tmp_path), environ={}) as rt:
        subscribe(rt.config, rt.store, EVENT, receiver.endpoint("/hook"), secret="t")
        # A lease long enough that a loaded machine cannot let it run out between the two
        # receives below, short enough to keep the test quick.
        queue = SqliteQueue(rt.store, lease_seconds=1.5)
        publish(rt.config, queue, EVENT, {"n": 1})

        taken = queue.receive(["trigger"], timeout=1)  # this consumer "dies" holding the lease
        assert taken is not None
        assert queue.receive(["trigger"], timeout=0.1) is None  # leased: invisible to others
        assert not queue.is_empty(["trigger"])

        started = time.monotonic()
        handled = Consumer(rt.config, rt.store, queue, rt.notifiers).run(until_empty=True)
        assert handled == 1
        assert time.monotonic() - started >= 0.75  # it waited for the lease to run out
        assert len(receiver.requests) == 1
        assert len(rt.store.log.recent_logs()) == 1


def test_a_message_whose_ack_was_lost_is_not_delivered_twice(tmp_path: Path, receiver: Receiver) -> None:
    with Runtime(write_config(tmp_path), environ={}) as rt:
        subscribe(rt.config, rt.store, EVENT, receiver.endpoint("/a"), secret="t")
        subscribe(rt.config, rt.store, EVENT, receiver.endpoint("/b"), secret="t")
        publish(rt.config, rt.queue, EVENT, {"n": 1})
        row = rt.store.backend.conn.execute("SELECT queue, message_id, body FROM queue_messages").fetchone()
        rt.consumer().run(until_empty=True)
        assert len(receiver.requests) == 2

        # The same message comes back, as it would after a broker redelivery.
        with rt.store.transaction():
            rt.store.backend.conn.execute(
                "INSERT INTO queue_messages (queue, message_id, body, headers, available_at, deliveries, created)"
                " VALUES (?, ?, ?, '{}', 0, 1, 0)",
                row,
            )
        assert rt.consumer().run(until_empty=True) == 1
        assert len(receiver.requests) == 2
        assert len(rt.store.log.recent_logs()) == 2


def consumer_process(config: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AE_")}
    return subprocess.Popen(
        [sys.executable, "-m", "asyncevents_cli", "--config", str(config), "consume", "all", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )


def test_sigterm_finishes_the_window_in_flight_then_exits_0(tmp_path: Path, receiver: Receiver) -> None:
    config = write_config(tmp_path)
    with Runtime(config, environ={}) as rt:
        subscribe(rt.config, rt.store, EVENT, receiver.script("/slow", ("sleep", 1.0)), secret="t")
        for n in range(6):
            publish(rt.config, rt.queue, EVENT, {"n": n})

    consumer = consumer_process(config, "--concurrency", "2")
    try:
        receiver.wait_for(2, timeout=10)
        assert len(receiver.requests) == 2  # the window is full: two in flight
        consumer.send_signal(signal.SIGTERM)  # while both are in flight
        _, stderr = consumer.communicate(timeout=10)
    finally:
        consumer.kill()
    assert consumer.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "handled 2 message(s)" in stderr

    with Runtime(config, environ={}) as rt:
        logs = rt.store.log.recent_logs()
        assert len(logs) == 2 and all(r["success"] == 1 for r in logs)  # the window was finished and logged
        depths = rt.queue.depths()
        assert (depths.trigger, depths.in_flight) == (4, 0)  # the rest (taken or not) wait, none leased
    assert len(receiver.requests) == 2


def test_a_second_ctrl_c_aborts_the_deliveries_in_flight_and_they_come_back(tmp_path: Path, receiver: Receiver) -> None:
    config = write_config(tmp_path)
    with Runtime(config, environ={}) as rt:
        subscribe(
            rt.config,
            rt.store,
            EVENT,
            receiver.script("/hang", ("sleep", 60), ("sleep", 60), ("sleep", 60), 200),
            secret="t",
        )
        for n in range(3):
            publish(rt.config, rt.queue, EVENT, {"n": n})

    consumer = consumer_process(config)
    try:
        receiver.wait_for(3, timeout=10)
        assert len(receiver.requests) == 3
        consumer.send_signal(signal.SIGINT)  # stop taking; the three would be finished...
        time.sleep(0.3)
        assert consumer.poll() is None  # ...so it waits for them
        consumer.send_signal(signal.SIGINT)  # ...unless told again
        _, stderr = consumer.communicate(timeout=10)  # far sooner than the receiver's 60 s
    finally:
        consumer.kill()
    assert consumer.returncode == 130, stderr
    assert "aborting the deliveries in flight" in stderr and "Traceback" not in stderr

    with Runtime(config, environ={}) as rt:
        assert rt.store.log.recent_logs() == []  # nothing was settled
        assert rt.queue.depths().in_flight == 0  # given back at once, not left to a lease
    again = consumer_process(config, "--until-empty")
    _, stderr = again.communicate(timeout=30)
    assert again.returncode == 0 and "handled 3 message(s)" in stderr, stderr
    assert sorted(r.json["data"]["n"] for r in receiver.requests[3:]) == [0, 1, 2]


def test_two_consumer_processes_share_one_database_and_deliver_each_event_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    config = write_config(tmp_path)
    events = 120
    with Runtime(config, environ={}) as rt:
        subscribe(rt.config, rt.store, EVENT, receiver.script("/hook", ("sleep", 0.01)), secret="t")
        subscribe(rt.config, rt.store, EVENT, receiver.script("/flaky", 500, 200), secret="t")
        for n in range(events):
            publish(rt.config, rt.queue, EVENT, {"n": n})

    # A small window each, so that neither can lease the whole backlog at once.
    consumers = [consumer_process(config, "--until-empty", "--concurrency", "4") for _ in range(2)]
    outputs = [c.communicate(timeout=120) for c in consumers]
    assert [c.returncode for c in consumers] == [0, 0], outputs
    handled = [int(err.split("handled ")[1].split()[0]) for _, err in outputs]
    assert all(h > 0 for h in handled), handled  # both took a share of the work

    hook = sorted(r.json["data"]["n"] for r in receiver.to("/hook"))
    assert hook == list(range(events))  # every event once, none twice
    flaky = [r.json["data"]["n"] for r in receiver.to("/flaky")]
    assert sorted(set(flaky)) == list(range(events)) and len(flaky) == events + 1  # one retry, once
    with Runtime(config, environ={}) as rt:
        assert rt.store.log.max_log_id() == 2 * events + 1
        assert rt.queue.is_empty(["trigger", "retry"])
