"""The EventBridge notifier over real HTTP against a local moto server.

An EventBridge rule on the bus routes to an SQS queue; the test reads each event
back from SQS to see what arrived. Region, credentials and endpoint come from
the standard AWS environment variables, as they would in production.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid as uuidlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import QuietServer, Receiver, ae, ok, ok_json, write_config
from moto.server import ThreadedMotoServer

from asyncevents_cli.notifiers.eventbridge import EventBridgeNotifier
from asyncevents_cli.publishing import publish
from asyncevents_cli.queues.base import TRIGGER
from asyncevents_cli.runtime import Runtime
from asyncevents_cli.store import Subscription
from asyncevents_cli.subscribe import subscribe

EVENT = "sales.order.created"
ORDER = {"increment_id": "CK00000101", "customer_email": "roni_cost@example.com", "grand_total": 45.5}
REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """The standard AWS configuration, pointed at moto; no profile files from the machine."""
    env = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return env


class Bus:
    """A bus whose rule sends every event with our source to an SQS queue."""

    def __init__(self, source: str) -> None:
        self.name = f"orders-{uuidlib.uuid4().hex[:8]}"
        self.events = boto3.client("events")
        self.sqs = boto3.client("sqs")
        self.arn = self.events.create_event_bus(Name=self.name)["EventBusArn"]
        self.queue_url = self.sqs.create_queue(QueueName=self.name)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        self.events.put_rule(Name="to-sqs", EventBusName=self.name, EventPattern=json.dumps({"source": [source]}))
        self.events.put_targets(
            Rule="to-sqs", EventBusName=self.name, Targets=[{"Id": "queue", "Arn": queue_arn["Attributes"]["QueueArn"]}]
        )

    def received(self, expected: int) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for _ in range(20):
            if len(events) >= expected:
                break
            reply = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            events += [json.loads(m["Body"]) for m in reply.get("Messages", [])]
        return events


def test_delivery_puts_one_event_that_a_rule_routes_to_sqs(tmp_path: Path, aws_env: dict[str, str]) -> None:
    bus = Bus(source="shop.example")
    config = write_config(tmp_path, eventbridge_source="shop.example")
    # The module's notifier name is accepted and stored under ae's.
    subscription_id = ok(config, "subscribe", EVENT, bus.name, "--notifier", "event_bridge").stdout.strip()
    arn_subscription = ok(config, "subscribe", EVENT, bus.arn, "--notifier", "eventbridge")
    assert arn_subscription.stderr == ""  # no secret to keep: EventBridge deliveries are not signed
    listed = ok_json(config, "subscriptions", "list")
    assert [(s["notifier"], s["recipient_url"], s["signature_scheme"]) for s in listed] == [
        ("eventbridge", bus.name, "none"),
        ("eventbridge", bus.arn, "none"),
    ]

    ok(config, "publish", EVENT, "--data", json.dumps(ORDER))
    ok(config, "consume", "all", "--until-empty")

    events = bus.received(2)
    assert len(events) == 2
    for event in events:
        assert event["source"] == "shop.example"
        assert event["detail-type"] == EVENT
        assert event["detail"] == {"data": ORDER}  # the document the HTTP notifier posts
    logs = ok_json(config, "logs")
    assert [(log["success"], log["status_code"]) for log in logs] == [(True, 200), (True, 200)]
    uuid = next(log["uuid"] for log in logs if str(log["subscription_id"]) == subscription_id)
    trace = ok_json(config, "trace", uuid)
    assert trace["status"] == "Delivered"
    assert "EventId" in json.loads(trace["attempts"][0]["response_data"])


def test_a_missing_bus_fails_every_attempt_then_dead_letters(tmp_path: Path, aws_env: dict[str, str]) -> None:
    config = write_config(tmp_path, max_deaths=2, backoff_unit_seconds=0.001)
    ok(config, "subscribe", EVENT, "no-such-bus", "--notifier", "eventbridge")
    ok(config, "publish", EVENT, "--data", json.dumps(ORDER))
    ok(config, "consume", "all", "--until-empty")

    [uuid] = {log["uuid"] for log in ok_json(config, "logs")}
    trace = ok_json(config, "trace", uuid)
    assert trace["status"] == "Dead Lettered with 2 retries"
    assert [a["death_count"] for a in trace["attempts"]] == [0, 1, 2]  # 1 + max_deaths attempts
    for attempt in trace["attempts"]:
        assert (attempt["success"], attempt["status_code"]) == (False, 400)
        assert attempt["response_data"] == "ResourceNotFoundException: Event bus no-such-bus does not exist."
    assert [d["uuid"] for d in ok_json(config, "deadletters")] == [uuid]
    found = ok_json(config, "search", "success:false AND data.data.increment_id:CK00000101")
    assert found["total"] == 3


def test_unreachable_endpoint_is_a_failed_attempt_with_the_error(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    notifier = EventBridgeNotifier(connect_timeout=1.0, read_timeout=1.0)
    try:
        result = notifier.notify(subscription("some-bus"), b'{"data":{}}', "u")
    finally:
        notifier.close()
    assert (result.success, result.status_code) == (False, None)
    assert result.response_data.startswith("EndpointConnectionError: ")


def test_one_notifier_serves_concurrent_deliveries(aws_env: dict[str, str]) -> None:
    """Consumers call one instance from several threads at once (one boto3 client, shared)."""
    bus = Bus(source="ae")
    notifier = EventBridgeNotifier()
    results = []

    def deliver(n: int) -> None:
        body = json.dumps({"data": {"n": n}}).encode()
        results.append(notifier.notify(subscription(bus.name), body, f"u{n}"))

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    notifier.close()
    assert len(results) == 12 and all(r.success for r in results), results
    assert sorted(e["detail"]["data"]["n"] for e in bus.received(12)) == list(range(12))


def subscription(bus: str) -> Subscription:
    return Subscription(
        subscription_id=1,
        event_name=EVENT,
        recipient_url=bus,
        status=1,
        subscribed_at="",
        modified="",
        notifier="eventbridge",
        store_id=0,
        verification_token="unused",
    )


@pytest.mark.parametrize(
    "recipient",
    [
        "http://example.com/hook",
        "orders bus",
        "",
        "arn:aws:events:us-east-1:123:event-bus/x",
        "a" * 257,
    ],
)
def test_subscribe_refuses_what_is_not_a_bus(tmp_path: Path, recipient: str) -> None:
    config = write_config(tmp_path)
    result = ae(config, "subscribe", EVENT, recipient, "--notifier", "eventbridge")
    assert result.exit_code == 2 and "event bus name or ARN" in result.stderr, result.stderr


@pytest.mark.parametrize("option", [["--signature", "standard-webhooks"], ["--header", "Authorization: Bearer x"]])
def test_http_only_options_are_refused_for_eventbridge(tmp_path: Path, option: list[str]) -> None:
    config = write_config(tmp_path)
    result = ae(config, "subscribe", EVENT, "orders", "--notifier", "eventbridge", *option)
    assert result.exit_code == 2 and "eventbridge notifier" in result.stderr, result.stderr


class StalledEndpoint:
    """An AWS endpoint that holds every request until released, then answers with an error."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                endpoint.arrived.set()
                endpoint.release.wait(30)
                reply = json.dumps({"__type": "ResourceNotFoundException", "message": "released"}).encode()
                self.send_response(400)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_stalled_put_events_does_not_hold_up_other_deliveries(
    tmp_path: Path, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    stalled = StalledEndpoint()
    monkeypatch.setenv("AWS_ENDPOINT_URL", stalled.url)
    try:
        with Runtime(write_config(tmp_path), environ={}) as rt:
            # EventBridge first: delivered one after the other, the webhook would wait behind it.
            subscribe(rt.config, rt.store, EVENT, "orders", notifier="eventbridge")
            subscribe(rt.config, rt.store, EVENT, receiver.endpoint("/hook"))
            publish(rt.config, rt.queue, EVENT, ORDER)
            consumer = threading.Thread(target=lambda: rt.consumer(kinds=(TRIGGER,)).run(until_empty=True))
            consumer.start()
            assert stalled.arrived.wait(30)
            # The webhook is delivered while PutEvents is still waiting for its answer.
            assert len(receiver.wait_for(1, timeout=30)) == 1 and not stalled.release.is_set()
            stalled.release.set()
            consumer.join(60)
            assert not consumer.is_alive()
            logs = {log["subscription_id"]: log for log in rt.store.log.recent_logs()}
        assert (logs[1]["success"], logs[1]["response_data"]) == (0, "ResourceNotFoundException: released")
        assert logs[2]["success"] == 1
    finally:
        stalled.close()
