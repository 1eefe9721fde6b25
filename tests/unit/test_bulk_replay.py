"""`ae replay --query`: replaying every delivery whose latest attempt matches a search.

The scenario is the issue's: a receiver is down, a night of sales events is
dead-lettered, the receiver recovers, and one command replays them all.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ae, serving_receiver, write_config

from asyncevents_cli.publishing import publish
from asyncevents_cli.runtime import Runtime
from asyncevents_cli.states import DeliveryState
from asyncevents_cli.subscribe import subscribe

QUERY = "event_name:sales.* AND success:false"
ORDERS = 12  # above the confirmation threshold of 10


def consume(config: Path) -> None:
    with Runtime(config) as rt:
        rt.consumer(poll_timeout=0.02).run(until_empty=True)


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """12 orders dead-lettered at a down /orders; a customer that failed once then got through.

    Built once per module (a few hundred fsyncs); each test works on a copy of the
    folder, and the receiver stays up so replays can be delivered."""
    # The night's outage ends in dead letters, the subject here: the circuit that would hold
    # them instead (issue 17, docs/retries.md) is kept from opening.
    config = write_config(tmp_path_factory.mktemp("night"), max_deaths=1, circuit_failure_threshold=1000)
    with serving_receiver() as recv:
        with Runtime(config, environ={}) as rt:
            orders, _ = subscribe(rt.config, rt.store, "sales.order.created", recv.script("/orders", 500))
            subscribe(rt.config, rt.store, "customer.created", recv.script("/customers", 500, 200))
            for n in range(ORDERS):
                publish(rt.config, rt.queue, "sales.order.created", {"increment_id": f"CK{n:08d}"})
            publish(rt.config, rt.queue, "customer.created", {"customer_email": "roni_cost@example.com"})
            rt.consumer(poll_timeout=0.02).run(until_empty=True)
            uuids = sorted({r["uuid"] for r in rt.store.log.recent_logs(event_name="sales.order.created", limit=1000)})
        yield {"folder": config.parent, "orders": orders.subscription_id, "uuids": uuids, "receiver": recv}


@pytest.fixture
def outage(night: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    shutil.copytree(night["folder"], tmp_path / "copy")
    night["receiver"].script("/orders", 500)  # still down, whatever an earlier test did
    return {**night, "config": tmp_path / "copy" / "events.toml"}


def states(config: Path, uuids: list[str]) -> set[str]:
    with Runtime(config) as rt:
        return {rt.store.log.delivery(u)["state"] for u in uuids}


def test_dry_run_lists_the_dead_lettered_and_changes_nothing(outage: dict[str, Any]) -> None:
    config, receiver = outage["config"], outage["receiver"]
    assert states(config, outage["uuids"]) == {DeliveryState.DEAD_LETTERED}
    result = ae(config, "replay", "--query", QUERY, "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    listed = json.loads(result.stdout)
    # The customer's failed attempt matches `success:false` only under another event
    # name, and its chain ended in success anyway: only the 12 orders are chosen.
    assert sorted(r["uuid"] for r in listed) == outage["uuids"]
    assert all(r["subscription_status"] == "enabled" and r["success"] is False for r in listed)
    before = len(receiver.requests)
    consume(config)
    assert len(receiver.requests) == before, "a dry run must queue nothing"
    assert states(config, outage["uuids"]) == {DeliveryState.DEAD_LETTERED}


def test_replay_delivers_after_the_receiver_recovers(outage: dict[str, Any]) -> None:
    config, receiver = outage["config"], outage["receiver"]
    receiver.script("/orders", 200)
    result = ae(config, "replay", "--query", QUERY, "--since", "2000-01-01", "--yes")
    assert result.exit_code == 0, result.stderr
    assert f"replayed {ORDERS} deliveries, skipped 0" in result.stdout
    consume(config)
    delivered = {r.json["data"]["increment_id"] for r in receiver.to("/orders")[-ORDERS:]}
    assert delivered == {f"CK{n:08d}" for n in range(ORDERS)}
    assert states(config, outage["uuids"]) == {DeliveryState.DELIVERED}
    # Their latest attempt now succeeded: the same query selects nothing any more.
    again = ae(config, "replay", "--query", QUERY, "--dry-run", "--json")
    assert json.loads(again.stdout) == []


def test_above_the_threshold_it_needs_yes_without_a_terminal(outage: dict[str, Any]) -> None:
    config, receiver = outage["config"], outage["receiver"]
    result = ae(config, "replay", "--query", QUERY, input="y\n")  # no terminal to ask on: refused
    assert result.exit_code == 2
    assert f"Replay {ORDERS} deliveries: refusing without --yes" in result.stderr
    before = len(receiver.requests)
    consume(config)
    assert len(receiver.requests) == before
    # Ten or fewer replay without asking.
    few = ae(config, "replay", "--query", "event_name:sales.* AND success:false AND data.data.increment_id:CK0000000*")
    assert few.exit_code == 0 and "Replay" not in few.stderr and "replayed 10 deliveries" in few.stdout


def test_disabled_subscriptions_are_skipped_and_counted(outage: dict[str, Any]) -> None:
    config = outage["config"]
    assert ae(config, "subscriptions", "disable", str(outage["orders"])).exit_code == 0
    result = ae(config, "replay", "--query", QUERY, "--yes")
    assert result.exit_code == 0, result.stderr
    assert f"replayed 0 deliveries, skipped {ORDERS}" in result.stdout
    assert result.stderr.count(f"subscription {outage['orders']} is disabled") == ORDERS
    assert states(config, outage["uuids"]) == {DeliveryState.DEAD_LETTERED}


def test_time_window_selects_on_the_latest_attempt(outage: dict[str, Any]) -> None:
    config = outage["config"]
    none = ae(config, "replay", "--query", QUERY, "--until", "2000-01-01", "--dry-run", "--json")
    assert json.loads(none.stdout) == []
    with Runtime(config) as rt:
        today = rt.store.log.recent_logs(limit=1)[0]["created"][:10]
    day = ae(config, "replay", "--query", QUERY, "--since", today, "--until", today, "--dry-run", "--json")
    assert sorted(r["uuid"] for r in json.loads(day.stdout)) == outage["uuids"]


@pytest.mark.parametrize(
    "args",
    [
        ["replay"],
        ["replay", "some-uuid", "--query", "success:false"],
        ["replay", "--query", "success:false", "--since", "last night"],
        ["replay", "--query", "(success:false"],
    ],
)
def test_bad_combinations_exit_2(outage: dict[str, Any], args: list[str]) -> None:
    result = ae(outage["config"], *args)
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert states(outage["config"], outage["uuids"]) == {DeliveryState.DEAD_LETTERED}


def test_single_uuid_replay_still_works(outage: dict[str, Any]) -> None:
    config, receiver = outage["config"], outage["receiver"]
    receiver.script("/orders", 200)
    uuid = outage["uuids"][0]
    result = ae(config, "replay", uuid)
    assert result.exit_code == 0 and f"replaying {uuid}" in result.stdout
    consume(config)
    assert states(config, [uuid]) == {DeliveryState.DELIVERED}
    assert states(config, outage["uuids"][1:]) == {DeliveryState.DEAD_LETTERED}


def test_bulk_replay_leaves_out_test_pings_unless_the_query_names_them(outage: dict[str, Any]) -> None:
    config = outage["config"]
    pinged = ae(config, "subscriptions", "ping", str(outage["orders"]))
    assert pinged.exit_code == 1, (pinged.stdout, pinged.stderr)  # /orders answers 500: a failed ping
    chosen = ae(config, "replay", "--query", "success:false", "--dry-run", "--json")
    assert chosen.exit_code == 0, chosen.stderr
    assert {r["event_name"] for r in json.loads(chosen.stdout)} == {"sales.order.created"}
    assert sorted(r["uuid"] for r in json.loads(chosen.stdout)) == outage["uuids"]
    named = ae(config, "replay", "--query", "event_name:ae.ping AND success:false", "--dry-run", "--json")
    assert named.exit_code == 0, named.stderr
    assert [r["event_name"] for r in json.loads(named.stdout)] == ["ae.ping"]
