"""Operator events: `ae.delivery.dead_lettered` reaches an operator's real receiver,
signed, and is logged, traceable and searchable like any event; an operator
subscription's own failures raise nothing (no loops). On every backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import Receiver, ae, assert_error, ok, ok_json, write_config

from asyncevents_cli.operator_events import DEAD_LETTERED, OPERATOR_EVENTS

EVENT = "sales.order.created"
OPERATOR_SECRET = "0perator-secret"


def subscribe(config: Path, event: str, url: str, secret: str) -> int:
    return int(ok(config, "subscribe", event, url, "--secret", secret).stdout)


def publish(config: Path, count: int) -> None:
    for n in range(count):
        ok(config, "publish", EVENT, "--data", json.dumps({"n": n}))


def test_dead_letters_reach_the_operator_signed_logged_and_traceable(
    tmp_path: Path, receiver: Receiver, backend: dict[str, Any]
) -> None:
    config = write_config(tmp_path, max_deaths=1, **backend)
    broken = subscribe(config, EVENT, "http://user:pa55@" + receiver.script("/broken", 500)[7:], "s")
    subscribe(config, EVENT, receiver.script("/fine", 200), "s")
    operator = subscribe(config, DEAD_LETTERED, receiver.script("/operator", 200), OPERATOR_SECRET)
    publish(config, 3)
    ok(config, "consume", "all", "--until-empty")

    received = receiver.to("/operator")
    assert len(received) == 3 and all(r.signed_with(OPERATOR_SECRET) for r in received)
    payloads = [r.json["data"] for r in received]
    assert {p["subscription_id"] for p in payloads} == {broken}
    assert all(p["event_name"] == EVENT and p["attempts"] == 2 and p["last_status_code"] == 500 for p in payloads)
    assert all(p["recipient_url"].startswith("http://***@127.0.0.1") for p in payloads)
    assert "pa55" not in json.dumps(payloads)
    broken_uuids = {row["uuid"] for row in ok_json(config, "logs", "--subscription", str(broken))}
    assert {p["uuid"] for p in payloads} == broken_uuids and len(broken_uuids) == 3
    assert len(receiver.to("/fine")) == 3

    logged = ok_json(config, "logs", "--event", DEAD_LETTERED)
    assert len(logged) == 3 and {row["subscription_id"] for row in logged} == {operator}
    trace = ok_json(config, "trace", logged[0]["uuid"])
    assert trace["state"] == "delivered" and trace["event_name"] == DEAD_LETTERED
    found = ok_json(config, "search", f"event_name:{DEAD_LETTERED}")
    assert found["total"] == 3 and found["query"] == f"event_name:{DEAD_LETTERED}"


def test_an_operator_subscription_never_raises_events_about_itself(
    tmp_path: Path, receiver: Receiver, backend: dict[str, Any]
) -> None:
    """The operator's own receiver fails too: its deliveries are retried and
    dead-lettered, and no operator event follows them (the run ends: no loop)."""
    config = write_config(tmp_path, max_deaths=1, **backend)
    subscribe(config, EVENT, receiver.script("/broken", 500), "s")
    operator = subscribe(config, DEAD_LETTERED, receiver.script("/operator", 503), OPERATOR_SECRET)
    publish(config, 2)
    ok(config, "consume", "all", "--until-empty")

    received = receiver.to("/operator")
    assert len(received) == 4  # 2 operator events, each tried twice, then dead-lettered
    assert {r.json["data"]["event_name"] for r in received} == {EVENT}
    operator_uuids = {row["uuid"] for row in ok_json(config, "logs", "--subscription", str(operator))}
    assert len(operator_uuids) == 2
    assert ok_json(config, "status")["queues"]["trigger"] == 0


def test_operator_events_are_listed_and_cannot_be_published(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    rows = {row["name"]: row for row in ok_json(config, "events", "list")}
    assert set(OPERATOR_EVENTS) <= set(rows) and all(rows[name]["built_in"] for name in OPERATOR_EVENTS)
    assert "ae.subscription.failing" in ok(config, "events", "list").stdout
    refused = ae(config, "publish", DEAD_LETTERED, "--data", "{}")
    assert_error(refused, 2, "operator event")
