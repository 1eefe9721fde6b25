"""An event's service runs off the loop, within service_timeout_seconds; whatever it does
parks only its own message (engine/services.py). Once per queue backend."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import payload_services
import pytest
from conftest import Receiver, backend_environ, environ_without_ae, write_config

from asyncevents_cli.config import load_config
from asyncevents_cli.engine.services import PayloadError, ServiceRunner
from asyncevents_cli.messages import TriggerMessage
from asyncevents_cli.publishing import publish
from asyncevents_cli.runtime import Runtime
from asyncevents_cli.status import dead_letters
from asyncevents_cli.subscribe import subscribe

EVENT = "sales.order.created"
SERVICED = "catalog.product.saved"


@pytest.fixture
def released() -> Iterator[None]:
    payload_services.RELEASE.clear()
    yield
    payload_services.RELEASE.set()  # a hung service's thread ends with the test


def runtime(folder: Path, backend: dict[str, Any], service: str, **settings: Any) -> Runtime:
    events = {EVENT: {}, SERVICED: {"service": f"payload_services:{service}"}}
    return Runtime(write_config(folder, events, **{**backend, **settings}), environ=backend_environ())


def parked_reasons(rt: Runtime) -> list[str]:
    return [row["reason"] for row in dead_letters(rt.queue)]


def test_a_hanging_service_delays_no_other_event(
    tmp_path: Path, backend: dict[str, Any], receiver: Receiver, released: None
) -> None:
    with runtime(tmp_path, backend, "hang", service_timeout_seconds=3) as rt:
        subscribe(rt.config, rt.store, SERVICED, receiver.endpoint("/serviced"), secret="s")
        subscribe(rt.config, rt.store, EVENT, receiver.endpoint("/plain"), secret="s")
        publish(rt.config, rt.queue, SERVICED, {"sku": "MB01"})
        for n in range(20):
            publish(rt.config, rt.queue, EVENT, {"n": n})
        started = time.monotonic()
        assert rt.consumer().run(until_empty=True) == 21
        finished = time.monotonic()
        plain = receiver.to("/plain")
        assert sorted(r.json["data"]["n"] for r in plain) == list(range(20))
        # all 20 were delivered well before the service's 3 s ran out (they take a tenth
        # of a second on a quiet machine; the margin is for a loaded one)
        assert max(r.at for r in plain) - started < 2.0
        assert finished - started >= 3.0
        assert receiver.to("/serviced") == []
        [reason] = parked_reasons(rt)
        assert reason == "service payload_services:hang gave no result within 3 s (service_timeout_seconds)"


@pytest.mark.parametrize(
    ("service", "reason"),
    [
        ("exit_now", "service payload_services:exit_now failed: SystemExit: 3"),
        ("interrupt", "service payload_services:interrupt failed: KeyboardInterrupt: pressed in the service"),
        ("five_megabytes", "service payload_services:five_megabytes returned 5242891 bytes of JSON, more than the"),
        ("not_json", "service payload_services:not_json returned a result that is not JSON: cannot be serialised"),
        ("not_finite", "service payload_services:not_finite returned a result that is not JSON: cannot be serialised"),
    ],
)
def test_whatever_a_service_does_parks_only_its_message(
    tmp_path: Path, backend: dict[str, Any], receiver: Receiver, service: str, reason: str
) -> None:
    with runtime(tmp_path, backend, service) as rt:
        subscribe(rt.config, rt.store, SERVICED, receiver.endpoint("/serviced"), secret="s")
        subscribe(rt.config, rt.store, EVENT, receiver.endpoint("/plain"), secret="s")
        publish(rt.config, rt.queue, SERVICED, {"sku": "MB01"})
        publish(rt.config, rt.queue, EVENT, {"n": 1})
        assert rt.consumer().run(until_empty=True) == 2
        assert [r.json for r in receiver.to("/plain")] == [{"data": {"n": 1}}]
        assert receiver.to("/serviced") == []
        [parked] = parked_reasons(rt)
        assert parked.startswith(reason), parked
        assert "\n" not in parked


def test_a_service_result_is_delivered(tmp_path: Path, backend: dict[str, Any], receiver: Receiver) -> None:
    with runtime(tmp_path, backend, "echo") as rt:
        subscribe(rt.config, rt.store, SERVICED, receiver.endpoint("/serviced"), secret="s")
        publish(rt.config, rt.queue, SERVICED, {"sku": "MB01"})
        assert rt.consumer().run(until_empty=True) == 1
        assert [r.json for r in receiver.to("/serviced")] == [{"data": {"echo": {"sku": "MB01"}}}]
        assert parked_reasons(rt) == []


def ae_consume(config: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    environment = {**environ_without_ae(), **backend_environ()}
    command = [sys.executable, "-m", "asyncevents_cli", "--config", str(config), "consume", "all", "--until-empty"]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment, cwd=config.parent)


@pytest.mark.parametrize("body", ["raise SystemExit(0)", "raise KeyboardInterrupt", "time.sleep(3600)"])
def test_the_consumer_process_outlives_its_services(
    tmp_path: Path, backend: dict[str, Any], receiver: Receiver, body: str
) -> None:
    """Exit, interrupt, or a thread that never returns: `ae consume` parks that message,
    delivers the rest and exits 0 in its own time, without a traceback."""
    module = f"stuck_{os.getpid()}_{abs(hash(body))}"
    (tmp_path / f"{module}.py").write_text(f"import time\n\ndef build(**arguments):\n    {body}\n")
    events = {EVENT: {}, SERVICED: {"service": f"{module}:build"}}
    config = write_config(tmp_path, events, service_timeout_seconds=1, **backend)
    with Runtime(config, environ=backend_environ()) as rt:
        subscribe(rt.config, rt.store, SERVICED, receiver.endpoint("/serviced"), secret="s")
        subscribe(rt.config, rt.store, EVENT, receiver.endpoint("/plain"), secret="s")
        publish(rt.config, rt.queue, SERVICED, {"sku": "MB01"})
        publish(rt.config, rt.queue, EVENT, {"n": 1})
    started = time.monotonic()
    done = ae_consume(config, timeout=60)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 30
    assert "Traceback" not in done.stderr
    assert len(receiver.to("/plain")) == 1
    with Runtime(config, environ=backend_environ()) as rt:
        [parked] = parked_reasons(rt)
    assert parked.startswith(f"service {module}:build "), parked


def test_a_timed_out_thread_is_counted_as_abandoned_until_it_returns(tmp_path: Path, released: None) -> None:
    events = {SERVICED: {"service": "payload_services:hang"}}
    runner = ServiceRunner(load_config(write_config(tmp_path, events, service_timeout_seconds=0.2), environ={}))

    async def build() -> str:
        try:
            await runner.payload(TriggerMessage(SERVICED, {"sku": "MB01"}, 0))
        except PayloadError as exc:
            return exc.message
        return "built"

    assert asyncio.run(build()).endswith("gave no result within 0.2 s (service_timeout_seconds)")
    assert runner.abandoned == 1
    payload_services.RELEASE.set()
    deadline = time.monotonic() + 5
    while runner.abandoned and time.monotonic() < deadline:
        time.sleep(0.01)
    assert runner.abandoned == 0
