"""The delivery engine: many attempts in flight, caps, poison messages, replay generations, timeouts.

Concurrency is asserted as the receiver observes it (requests answered at
once), never as elapsed time.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pika
import pytest
from conftest import Receiver, write_config

from asyncevents_cli.notifiers import HttpNotifier, Notifier, Notifiers, NotifyResult
from asyncevents_cli.publishing import publish
from asyncevents_cli.queues.base import RETRY, TRIGGER
from asyncevents_cli.replay import replay
from asyncevents_cli.runtime import Runtime
from asyncevents_cli.store import Subscription
from asyncevents_cli.subscribe import subscribe
from asyncevents_cli.trace import trace

EVENT = "sales.order.created"


def sub(rt: Runtime, url: str, **options: Any) -> Subscription:
    return subscribe(rt.config, rt.store, EVENT, url, secret="tok", **options)[0]


# -- the window ----------------------------------------------------------


def test_a_slow_receiver_gets_the_whole_window_at_once(tmp_path: Path, receiver: Receiver) -> None:
    with Runtime(write_config(tmp_path, subscription_concurrency=64), environ={}) as rt:
        sub(rt, receiver.script("/slow", ("sleep", 0.5)))
        for n in range(20):
            publish(rt.config, rt.queue, EVENT, {"n": n})
        assert rt.consumer().run(until_empty=True) == 20
    assert receiver.peak == 20  # all twenty waited on the receiver together, not one after another
    assert sorted(r.json["data"]["n"] for r in receiver.requests) == list(range(20))


def test_the_window_bounds_the_attempts_in_flight(tmp_path: Path, receiver: Receiver) -> None:
    with Runtime(write_config(tmp_path), environ={}) as rt:
        sub(rt, receiver.script("/a", ("sleep", 0.2)))
        sub(rt, receiver.script("/b", ("sleep", 0.2)))
        for n in range(8):
            publish(rt.config, rt.queue, EVENT, {"n": n})
        assert rt.consumer(concurrency=5).run(until_empty=True) == 8
    assert receiver.peak == 5  # across messages and subscriptions, never more than the window
    assert len(receiver.requests) == 16


def test_one_subscription_never_takes_more_than_its_cap(tmp_path: Path, receiver: Receiver) -> None:
    with Runtime(write_config(tmp_path, subscription_concurrency=3), environ={}) as rt:
        sub(rt, receiver.script("/hanging", ("sleep", 0.3)))
        sub(rt, receiver.endpoint("/healthy"))
        for n in range(12):
            publish(rt.config, rt.queue, EVENT, {"n": n})
        assert rt.consumer().run(until_empty=True) == 12
    assert receiver.peak_by_path["/hanging"] == 3
    assert len(receiver.to("/hanging")) == len(receiver.to("/healthy")) == 12


def test_retries_that_come_due_share_the_window(tmp_path: Path, receiver: Receiver) -> None:
    with Runtime(write_config(tmp_path, backoff_unit_seconds=0.05, subscription_concurrency=64), environ={}) as rt:
        sub(rt, receiver.script("/flaky", 500, 500, 500, 500, 500, 500, ("sleep", 0.4)))
        for n in range(12):
            publish(rt.config, rt.queue, EVENT, {"n": n})
        rt.consumer().run(until_empty=True)
        logs = rt.store.log.recent_logs(limit=100)
    assert len(logs) == 18 and sum(r["success"] for r in logs) == 12
    assert receiver.peak >= 7  # the six retries came due together and ran beside the triggers


# -- a notifier that raises or blocks --------------------------------------


class RaisingNotifier(Notifier):
    def notify(self, subscription: Subscription, body: bytes, uuid: str) -> NotifyResult:
        raise RuntimeError("plugin bug")


class BlockingNotifier(Notifier):
    """A plugin with a blocking client: it must not hold up other deliveries."""

    calls: list[float] = []

    def notify(self, subscription: Subscription, body: bytes, uuid: str) -> NotifyResult:
        time.sleep(0.5)
        self.calls.append(time.monotonic())
        return NotifyResult(True, None, "sent", 0.5)


def plugin_sub(rt: Runtime, notifier: Notifier, name: str) -> Subscription:
    """A subscription served by `notifier`, known to this runtime only (the registry stays as it is)."""
    rt._notifiers = Notifiers(rt.config, overrides={**(rt.notifiers._instances), name: notifier})
    return rt.store.subscriptions.add_subscription(EVENT, "http://127.0.0.1:9/unused", "tok", notifier=name)


def test_a_notifier_that_raises_is_a_failed_attempt_and_the_consumer_goes_on(
    tmp_path: Path, receiver: Receiver
) -> None:
    with Runtime(write_config(tmp_path, max_deaths=1), environ={}) as rt:
        broken = plugin_sub(rt, RaisingNotifier(), "test-raising")
        sub(rt, receiver.endpoint("/fine"))
        for n in range(3):
            publish(rt.config, rt.queue, EVENT, {"n": n})
        assert rt.consumer().run(until_empty=True) == 3 + 3  # three triggers, three retries
        failed = [r for r in rt.store.log.recent_logs(limit=100) if r["subscription_id"] == broken.subscription_id]
        assert len(failed) == 6 and not any(r["success"] for r in failed)
        assert "raised RuntimeError: plugin bug" in failed[0]["response_data"]
        assert rt.queue.depths().dead_letters == 3
    assert len(receiver.to("/fine")) == 3


def test_a_blocking_notifier_runs_off_the_loop(tmp_path: Path, receiver: Receiver) -> None:
    BlockingNotifier.calls.clear()
    with Runtime(write_config(tmp_path), environ={}) as rt:
        plugin_sub(rt, BlockingNotifier(), "test-blocking")
        sub(rt, receiver.endpoint("/fast"))
        for n in range(4):
            publish(rt.config, rt.queue, EVENT, {"n": n})
        assert rt.consumer().run(until_empty=True) == 4
    assert len(BlockingNotifier.calls) == 4
    # Every HTTP delivery was answered before the first blocking call returned.
    assert max(r.at for r in receiver.to("/fast")) < min(BlockingNotifier.calls)


# -- poison messages -------------------------------------------------------

POISON_TRIGGERS = {
    "store-id-beyond-sqlite": b'["sales.order.created", "{\\"n\\": 1}", 1180591620717411303424]',
    "deeply-nested": b"[" * 100_000,
    "nan-argument": b'["sales.order.created", "{\\"a\\": NaN}", 0]',
    "not-utf8": b"\xff\xfe\xfd",
}
POISON_RETRIES = {
    "huge-subscription-id": b'{"subscription_id": 1e400, "death_count": 1, "content": "{}", "uuid": "u"}',
    "negative-death-count": b'{"subscription_id": 1, "death_count": -5, "content": "{}", "uuid": "u"}',
    "null-uuid": b'{"subscription_id": 1, "death_count": 1, "content": "{}", "uuid": null}',
}


def put_raw(rt: Runtime, kind: str, body: bytes) -> None:
    """Place a message as a foreign client could: at the head of its queue."""
    if rt.config.settings.queue == "db":
        rt.queue  # noqa: B018 - creates the queue table
        name = "event.trigger" if kind == TRIGGER else "event.failover.retry"
        with rt.store.transaction():
            rt.store.backend.execute(
                "INSERT INTO queue_messages (queue, message_id, body, headers, available_at, deliveries, created)"
                " VALUES (?, 'poison', ?, '{}', 0, 0, 0)",
                (name, body),
            )
        return
    rt.queue.depths()  # the topology exists, as a running consumer would have declared it
    connection = pika.BlockingConnection(pika.URLParameters(rt.config.settings.amqp_url))
    try:
        exchange, key = ("event", "event.trigger") if kind == TRIGGER else ("event.failover", "event.retry")
        connection.channel().basic_publish(exchange, key, body, pika.BasicProperties(delivery_mode=2))
    finally:
        connection.close()


@pytest.mark.parametrize(
    "kind, body",
    [(TRIGGER, b) for b in POISON_TRIGGERS.values()] + [(RETRY, b) for b in POISON_RETRIES.values()],
    ids=list(POISON_TRIGGERS) + list(POISON_RETRIES),
)
def test_a_poison_message_at_the_head_is_parked_and_the_five_behind_are_delivered(
    make_runtime, receiver: Receiver, kind: str, body: bytes
) -> None:
    rt = make_runtime()
    sub(rt, receiver.endpoint("/hook"))
    put_raw(rt, kind, body)
    for n in range(5):
        publish(rt.config, rt.queue, EVENT, {"n": n})

    assert rt.consumer().run(until_empty=True) == 6
    assert sorted(r.json["data"]["n"] for r in receiver.requests) == list(range(5))
    [parked] = rt.queue.peek_dead_letters(10)
    assert (parked.origin, parked.body) == (kind, body) and parked.reason
    assert rt.queue.is_empty([TRIGGER, RETRY])


def test_a_retry_for_a_uuid_of_another_subscription_is_parked(make_runtime, receiver: Receiver) -> None:
    rt = make_runtime()
    first = sub(rt, receiver.script("/a", 500))
    second = sub(rt, receiver.endpoint("/b"))
    publish(rt.config, rt.queue, EVENT, {"n": 1})
    rt.consumer((TRIGGER,)).run(until_empty=True)
    uuid_of_a = next(r["uuid"] for r in rt.store.log.recent_logs() if r["subscription_id"] == first.subscription_id)
    forged = json.dumps(
        {"subscription_id": second.subscription_id, "death_count": 1, "content": '{"n": 1}', "uuid": uuid_of_a}
    ).encode()
    put_raw(rt, RETRY, forged)
    receiver.script("/a", 200)
    rt.consumer().run(until_empty=True)
    assert len(receiver.to("/b")) == 1  # only its own trigger delivery: the forged retry was not sent
    reasons = [letter.reason for letter in rt.queue.peek_dead_letters(10)]
    assert any(
        f"belongs to subscription {first.subscription_id}, not {second.subscription_id}" in r for r in reasons
    ), reasons


# -- replay supersedes the pending retry ---------------------------------------


def test_a_replay_supersedes_the_chains_pending_retry(make_runtime, receiver: Receiver) -> None:
    rt = make_runtime(backoff_unit_seconds=0.3)
    subscription = sub(rt, receiver.script("/hook", 500, 200))
    publish(rt.config, rt.queue, EVENT, {"n": 1})
    rt.consumer((TRIGGER,)).run(until_empty=True)
    [first] = rt.store.log.recent_logs()
    assert trace(rt.store, first["uuid"])["status"].startswith("Retrying")

    replay(rt.store, rt.queue, rt.config.retry_policy, first["uuid"])  # while the old retry is pending
    rt.consumer().run(until_empty=True)

    assert len(receiver.requests) == 2  # the failure, then exactly one delivery
    data = trace(rt.store, first["uuid"])
    assert data["status"] == "Delivered with 1 retry"
    assert rt.store.log.delivery(first["uuid"])["generation"] == 1
    assert rt.queue.is_empty([TRIGGER, RETRY]) and rt.queue.depths().dead_letters == 0
    assert subscription.subscription_id == first["subscription_id"]


def test_a_bulk_replay_supersedes_pending_retries_too(tmp_path: Path, receiver: Receiver) -> None:
    from asyncevents_cli.search_replay import replay_all, select

    with Runtime(write_config(tmp_path, backoff_unit_seconds=0.3), environ={}) as rt:
        sub(rt, receiver.script("/hook", 500, 500, 500, 200))
        for n in range(3):
            publish(rt.config, rt.queue, EVENT, {"n": n})
        rt.consumer((TRIGGER,)).run(until_empty=True)
        candidates = select(rt.config, rt.store, "success:false")
        assert len(candidates) == 3
        result = replay_all(rt.store, rt.queue, rt.config.retry_policy, candidates)
        assert len(result.replayed) == 3
        rt.consumer().run(until_empty=True)
        assert len(receiver.requests) == 6  # three failures, then one delivery each
        assert sorted(r.json["data"]["n"] for r in receiver.requests[3:]) == [0, 1, 2]


# -- every attempt ends within the total timeout ---------------------------------


class TricklingServer:
    """Accepts, reads the request, then sends its status line one byte at a time, forever."""

    def __init__(self, interval: float = 0.1) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.interval = interval
        self.stopped = threading.Event()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/trickle"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            line = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000
            for byte in line:
                if self.stopped.is_set():
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return  # the client gave up, as it should
                time.sleep(self.interval)

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()


def test_a_receiver_trickling_its_headers_cannot_hold_an_attempt_past_the_total_timeout() -> None:
    server = TricklingServer()
    notifier = HttpNotifier(connect_timeout=1.0, total_timeout=1.0)
    subscription = Subscription(1, EVENT, server.url, 1, "", "", "http", 0, "tok")
    try:
        result = notifier.notify(subscription, b'{"data":{}}', "u")
    finally:
        server.close()
    assert result.success is False and result.status_code is None
    assert result.response_data.startswith("Timeout: no complete response within 1 s")
    assert result.duration < 2.0  # the total timeout, not the receiver, ended it


def test_ae_help_loads_no_delivery_or_storage_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.argv = ['ae', '--help']\n"
        "from asyncevents_cli.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('httpx', 'aiohttp', 'whoosh', 'pika') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
