"""Retries on RabbitMQ are never lost in the delay queues, whatever the back-off unit.

Runs on the real local broker, in a vhost made for this module (conftest).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
import pytest

from asyncevents_cli.backoff import RetryPolicy
from asyncevents_cli.messages import RetryMessage
from asyncevents_cli.publish import publish_batch
from asyncevents_cli.queues.amqp import AmqpQueue
from asyncevents_cli.queues.amqp_topology import delay_queues
from asyncevents_cli.runtime import Runtime
from asyncevents_cli.store import DELIVERED, Store
from asyncevents_cli.subscribe import subscribe
from conftest import Receiver, Request, write_config

pytestmark = pytest.mark.amqp
EVENT = "sales.order.created"


def fail_odd_events_once(request: Request, earlier: list[Request]) -> int:
    """500 on the first attempt of every odd-numbered event, 200 otherwise."""
    key = request.headers.get("idempotency-key")
    if request.json["data"]["n"] % 2 and not any(r.headers.get("idempotency-key") == key for r in earlier):
        return 500
    return 200


def ae(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AE_")}
    return subprocess.run([sys.executable, "-m", "asyncevents_cli", "--config", str(config), *args],
                          capture_output=True, text=True, env=env, timeout=300)


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
        states = Counter((rt.store.delivery(uuid) or {}).get("state") for uuid in uuids)
        assert states == {DELIVERED: count}, "lost retries stay 'retrying' forever"
        assert rt.queue.depths().as_dict() == {"trigger": 0, "retry_due": 0, "retry_delayed": 0,
                                               "dead_letters": 0, "in_flight": 0}



def test_a_retry_waiting_under_earlier_settings_is_still_counted(tmp_path: Path, amqp_url: str) -> None:
    """Status and --until-empty look in every delay queue the store has used, not only
    those the current back-off names: a settings change must not hide a waiting retry."""
    store = Store(tmp_path / "ae.db")
    try:
        before = AmqpQueue(amqp_url, RetryPolicy(max_deaths=5, unit_seconds=10), store=lambda: store)
        with before:
            before.publish_retry(RetryMessage(1, 3, "{}", "u-3"), 90)  # waits in event.delay.9
        after = AmqpQueue(amqp_url, RetryPolicy(max_deaths=2, exponent=3, unit_seconds=10), store=lambda: store)
        with after:
            assert "event.delay.9" not in [q.name for q in delay_queues(after.policy)]
            assert after.depths().retry_delayed == 1
            assert not after.is_empty(["retry"])
    finally:
        store.close()
