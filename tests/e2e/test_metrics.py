"""Prometheus metrics, health checks and JSON logs of `ae consume`, with real parts:
a real Prometheus server scraping a real consumer process, real receivers, and the
real PostgreSQL store taken away under a running consumer."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Receiver, ae, assert_error, backend_environ, environ_without_ae, write_config
from prometheus_server import prometheus, require
from serving import free_port
from shared_hosts import wait_until

from asyncevents_cli.operator_events import FAILING, RECOVERED
from asyncevents_cli.publishing import publish_batch
from asyncevents_cli.runtime import Runtime
from asyncevents_cli.subscribe import subscribe

EVENT = "sales.order.created"
TOKEN = "m3trics-t0ken"
ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def consumer(config: Path, port: int, *extra: str) -> Iterator[subprocess.Popen[str]]:
    """`ae consume all --metrics-port PORT` as a process of its own, stopped by SIGTERM after."""
    env = {**environ_without_ae(), **backend_environ(), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "asyncevents_cli", "--config", str(config), "consume", "all"]
        + ["--metrics-port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait_answering(f"http://127.0.0.1:{port}/healthz", process)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def wait_answering(url: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"ae consume exited with {process.returncode}: {process.communicate()[1]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in {timeout:g} s")


def set_up(config: Path, receiver: Receiver, events: int) -> tuple[int, int]:
    """A healthy and a failing subscriber to EVENT, and `events` events published; their ids."""
    with Runtime(config, environ=backend_environ()) as rt:
        healthy, _ = subscribe(rt.config, rt.store, EVENT, receiver.script("/healthy", 200), secret=TOKEN)
        failing, _ = subscribe(rt.config, rt.store, EVENT, receiver.script("/failing", 500), secret=TOKEN)
        publish_batch(rt.config, rt.queue, EVENT, [{"n": n} for n in range(events)])
    return healthy.subscription_id, failing.subscription_id


@pytest.mark.prometheus
def test_prometheus_counts_every_attempt_exactly(tmp_path: Path, receiver: Receiver, backend: dict[str, Any]) -> None:
    """After N events to a healthy and a failing subscriber, the counters Prometheus
    scraped from two consumer processes (each on its own port) read N successes, and
    every failed attempt (max_deaths + 1 per event) under `failure`, with each failing
    delivery dead-lettered once."""
    events, max_deaths = 12, 2
    # every failing delivery must run its whole chain to a dead letter: a circuit that
    # opened after 10 failures in a row would hold the rest instead (tests/contract/test_lanes.py)
    config = write_config(tmp_path, max_deaths=max_deaths, circuit_failure_threshold=1000, **backend)
    healthy, failing = set_up(config, receiver, events)
    ports = [free_port(), free_port()]
    targets = [f"127.0.0.1:{port}" for port in ports]
    with (
        consumer(config, ports[0]),
        consumer(config, ports[1]),
        prometheus(tmp_path / "prometheus", targets) as server,
    ):
        receiver.wait_for(events * (max_deaths + 2), timeout=120)
        successes = server.wait_for('sum(ae_delivery_attempts_total{outcome="success"})', events)
        failures = server.wait_for('sum(ae_delivery_attempts_total{outcome="failure"})', events * (max_deaths + 1))
        dead = server.wait_for(f'sum(ae_deliveries_dead_lettered_total{{subscription="{failing}"}})', events)
        by_subscription = server.value(f'sum(ae_delivery_attempts_total{{subscription="{healthy}"}})')
        durations = server.value(f'sum(ae_delivery_duration_seconds_count{{subscription="{healthy}"}})')
        up = server.wait_for("min(ae_store_up)", 1)
        scraped = server.wait_for('count(up{job="ae"} == 1)', 2)
    assert scraped == 2
    assert successes == events
    assert failures == events * (max_deaths + 1)
    assert dead == events
    assert by_subscription == events and durations == events
    assert up == 1
    assert len(receiver.to("/healthy")) == events
    assert all(r.signed_with(TOKEN) for r in receiver.requests)


def test_the_endpoint_serves_queue_gauges_and_says_ready(
    tmp_path: Path, receiver: Receiver, backend: dict[str, Any]
) -> None:
    """Scrape-time gauges: a delivery retrying far in the future shows as retry_delayed
    and as the subscription's oldest pending delivery; /healthz and /readyz answer 200."""
    config = write_config(tmp_path, backoff_unit_seconds=600, **backend)
    with Runtime(config, environ=backend_environ()) as rt:
        failing = subscribe(rt.config, rt.store, EVENT, receiver.script("/down", 503), secret=TOKEN)[0]
        publish_batch(rt.config, rt.queue, EVENT, [{"n": 1}])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with consumer(config, port):
        receiver.wait_for(1)
        deadline = time.monotonic() + 60
        text = ""
        while 'ae_queue_messages{queue="retry_delayed"} 1.0' not in text and time.monotonic() < deadline:
            time.sleep(0.2)
            text = httpx.get(f"{base}/metrics", timeout=5).text
        ready = httpx.get(f"{base}/readyz", timeout=5)
        alive = httpx.get(f"{base}/healthz", timeout=5)
        missing = httpx.get(f"{base}/nothing", timeout=5)
    assert 'ae_queue_messages{queue="retry_delayed"} 1.0' in text, text
    ages = [line for line in text.splitlines() if line.startswith("ae_oldest_pending_delivery_age_seconds{")]
    labelled = f'ae_oldest_pending_delivery_age_seconds{{subscription="{failing.subscription_id}"}}'
    assert ages and ages[0].startswith(labelled)
    assert 0 <= float(ages[0].split()[-1]) < 120
    assert "ae_consumer_in_flight" in text
    assert "recipient" not in text and "127.0.0.1" not in text  # label values: ids, never URLs
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    assert alive.status_code == 200
    assert missing.status_code == 404 and "message" in missing.json()


@pytest.mark.postgres
def test_readyz_answers_503_within_2_s_of_losing_postgresql(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PostgreSQL store refuses connections and its sessions end: /readyz says 503
    within 2 s, /healthz still 200; once the database is back, /readyz says 200 again."""
    from postgres_db import TEST_SECRET_KEY
    from test_scale_durability import set_connections_allowed, terminate_backends

    monkeypatch.setenv("AE_SECRET_KEY", TEST_SECRET_KEY)
    config = write_config(tmp_path, database=postgres_url)
    database = postgres_url.rsplit("/", 1)[1]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with consumer(config, port):
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
        set_connections_allowed(database, False)
        try:
            terminate_backends(database)
            lost_at = time.monotonic()
            status = 200
            while status == 200 and time.monotonic() - lost_at < 10:
                status = httpx.get(f"{base}/readyz", timeout=5).status_code
            noticed_after = time.monotonic() - lost_at
            refused = httpx.get(f"{base}/readyz", timeout=5)
            alive = httpx.get(f"{base}/healthz", timeout=5).status_code
        finally:
            set_connections_allowed(database, True)
        back_at = time.monotonic()
        while httpx.get(f"{base}/readyz", timeout=5).status_code != 200 and time.monotonic() - back_at < 60:
            time.sleep(0.2)
        ready_again = httpx.get(f"{base}/readyz", timeout=5).status_code
    assert status == 503 and noticed_after < 2.0, noticed_after
    assert refused.status_code == 503 and refused.json()["status"] == "not ready" and refused.json()["message"]
    assert alive == 200
    assert ready_again == 200


def test_json_logs_one_object_per_line(tmp_path: Path, receiver: Receiver) -> None:
    """--log-format json -v: every stderr line is a JSON object with time, level and
    message; each attempt's line has event, subscription, uuid, outcome and duration_ms."""
    config = write_config(tmp_path, max_deaths=0)
    set_up(config, receiver, 3)
    env = {**environ_without_ae(), "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "asyncevents_cli", "--config", str(config), "consume", "all"]
        + ["--until-empty", "-v", "--log-format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # -v's attempts go to the JSON log instead of stdout lines
    entries = [json.loads(line) for line in done.stderr.splitlines()]
    assert all({"time", "level", "message"} <= set(e) for e in entries)
    attempts = [e for e in entries if "uuid" in e]
    assert len(attempts) == 6
    assert {e["outcome"] for e in attempts} == {"success", "failure"}
    for entry in attempts:
        assert entry["event"] == EVENT and isinstance(entry["subscription"], int)
        assert isinstance(entry["duration_ms"], float) and entry["level"] == "info"
    assert entries[-1]["message"] == "handled 3 message(s)"


def test_json_log_format_from_the_setting(tmp_path: Path) -> None:
    config = write_config(tmp_path, log_format="json")
    result = ae(config, "consume", "all", "--until-empty")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stderr.splitlines()[-1])["message"] == "handled 0 message(s)"


def test_bad_observing_options_are_one_line_errors(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert_error(ae(config, "consume", "all", "--log-format", "xml"), 2, "--log-format must be one of text, json")
    assert_error(ae(write_config(tmp_path, log_format="yaml"), "events", "list"), 2, "log_format")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        result = ae(write_config(tmp_path), "consume", "all", "--until-empty", "--metrics-port", str(port))
    assert_error(result, 2, f"cannot serve metrics on 127.0.0.1:{port}")


@pytest.mark.prometheus
def test_alert_rules_pass_promtool() -> None:
    """docs/alerts.yml is valid Prometheus alerting rules."""
    promtool = require("promtool")
    checked = subprocess.run(
        [promtool, "check", "rules", str(ROOT / "docs" / "alerts.yml")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout and "rules found" in checked.stdout


def test_a_consumer_without_metrics_does_not_import_prometheus_client() -> None:
    """prometheus_client costs ~75 ms to import: only a process that serves metrics pays it."""
    code = (
        "import sys, asyncevents_cli.engine.settle, asyncevents_cli.cli.consume, asyncevents_cli.metrics;"
        " print('prometheus_client' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.prometheus
def test_a_circuit_raises_failing_and_recovered_and_its_gauge_reads_one(
    tmp_path: Path, receiver: Receiver, backend: dict[str, Any]
) -> None:
    """An endpoint goes down: its circuit opens, `ae.subscription.failing` reaches the
    operator's receiver (signed) within `circuit_probe_seconds`, and Prometheus reads
    `ae_subscription_circuit_open` 1 and the held deliveries; it comes back: the probe
    closes the circuit and `ae.subscription.recovered` follows within the same time."""
    threshold, probe, events = 3, 2.0, 5
    config = write_config(tmp_path, circuit_failure_threshold=threshold, circuit_probe_seconds=probe, **backend)
    endpoint_up = threading.Event()
    receiver.respond = lambda request, earlier: 200 if request.path != "/down" or endpoint_up.is_set() else 503
    with Runtime(config, environ=backend_environ()) as rt:
        down = subscribe(rt.config, rt.store, EVENT, receiver.endpoint("/down"), secret=TOKEN)[0].subscription_id
        for event in (FAILING, RECOVERED):
            subscribe(rt.config, rt.store, event, receiver.endpoint("/operator"), secret="0ps")
        publish_batch(rt.config, rt.queue, EVENT, [{"n": n} for n in range(events)])
    port = free_port()
    with consumer(config, port), prometheus(tmp_path / "prometheus", [f"127.0.0.1:{port}"]) as server:
        wait_until(lambda: len(receiver.to("/operator")) == 1, 60, "ae.subscription.failing")
        open_gauge = server.wait_for(f'ae_subscription_circuit_open{{subscription="{down}"}}', 1)
        held = server.wait_for('ae_queue_messages{queue="held"}', events)
        up_at = time.monotonic()
        endpoint_up.set()
        wait_until(lambda: len(receiver.to("/operator")) == 2, 60, "ae.subscription.recovered")
        closed_gauge = server.wait_for(f'ae_subscription_circuit_open{{subscription="{down}"}}', 0)
    failing, recovered = receiver.to("/operator")
    # attempts settle in batches: the circuit opens with the batch that reaches the threshold
    in_a_row = int(failing.json["data"]["reason"].removesuffix(" failed attempts in a row"))
    opened_by = receiver.to("/down")[in_a_row - 1]  # the last failed attempt of that batch
    closed_by = next(r for r in receiver.to("/down") if r.at >= up_at)  # the probe that succeeded
    assert open_gauge == 1 and held == events and closed_gauge == 0
    assert failing.signed_with("0ps") and recovered.signed_with("0ps")
    assert failing.json["data"]["subscription_id"] == down == recovered.json["data"]["subscription_id"]
    assert threshold <= in_a_row <= events
    assert recovered.json["data"]["reason"] == "an attempt succeeded"
    assert failing.json["data"]["recipient_url"] == receiver.endpoint("/down")
    assert 0 <= failing.at - opened_by.at <= probe
    assert 0 <= recovered.at - closed_by.at <= probe
