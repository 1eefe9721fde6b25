"""Subscription filters (issue 22): the search language, evaluated by the consumer on each payload.

The shared table: every query in QUERIES becomes the filter of one subscription,
beside one subscription without a filter; the same payloads are published once
and delivered by the real consumer to a real receiver. Then each query runs as
`ae search` over the logged deliveries, and the payloads it finds must be
exactly those its filtered subscription received. Search's answers are
themselves checked against an independent Lucene oracle in test_search.py, so
agreeing with search is agreeing with Lucene.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Receiver, ae, assert_error, backend_environ, ok, ok_json, serving_receiver, write_config

from asyncevents_cli.publishing import publish
from asyncevents_cli.runtime import Runtime
from asyncevents_cli.search import matching_log_ids
from asyncevents_cli.status import status
from asyncevents_cli.subscribe import subscribe

EVENT = "sales.order.created"

PAYLOADS: list[dict[str, Any]] = [
    {
        "increment_id": "CK00000101",
        "customer_email": "roni_cost@example.com",
        "grand_total": 45.5,
        "status": "pending",
        "items": [{"sku": "WS12-M-Orange", "qty": 1}],
        "note": "leave at the back door",
        "placed_on": "2026-04-09",
        "store": "Default Store View",
    },
    {
        "increment_id": "CK00000102",
        "customer_email": "veronica_costello@example.com",
        "grand_total": 192.0,
        "status": "Canceled",
        "items": [
            {"sku": "MJ01-L-Red", "name": "Beaumont Summit Kit", "qty": 2},
            {"sku": "24-MB01", "name": "Electra Bra Top", "qty": 1},
        ],
        "placed_on": "2026-05-01T10:30:00Z",
        "gift": True,
    },
    {
        "increment_id": "SO00000103",
        "customer_email": "Roni_Cost@Example.com",
        "grand_total": 17.25,
        "status": "processing",
        "items": [{"sku": "24-MB01", "qty": 1}],
        "note": "door at the back is locked",
        "city": "Zürich",
    },
    {
        "increment_id": "CK00000104",
        "customer_email": "bike@shop.example.org",
        "grand_total": 350,
        "status": "pending",
        "items": [{"sku": "BIKE-1", "name": "Road bike", "qty": 1}],
        "tags": ["vip", "wholesale"],
        "store": "Berlin Store",
        "gift": False,
    },
    {
        "increment_id": "CK00000105",
        "customer_email": "anna@example.com",
        "grand_total": 100,
        "status": "CANCELED",
        "items": [],
        "note": None,
        "placed_on": "2026-04-30",
    },
    {
        "increment_id": "ck00000106",
        "customer_email": "anna@example.com",
        "grand_total": "99.99",
        "status": "complete",
        "items": [{"sku": "ws12-m-orange", "qty": 3}],
        "tags": ["VIP"],
    },
]

#: Tokenising, case, ranges (open, exclusive, on numbers, dates and words), wildcards,
#: phrases, bare words, compound-word parts, boolean operators and negation.
QUERIES = [
    "data.data.grand_total:[100 TO *] AND NOT data.data.status:canceled",
    "data.data.status:Canceled",
    "data.data.status:CANCELED OR data.data.status:pending",
    "data.data.status:(pending OR processing)",
    "data.data.grand_total:[10 TO 50]",
    "data.data.grand_total:{17.25 TO 192}",
    "data.data.grand_total:[* TO 20]",
    "data.data.grand_total:45.5",
    "data.data.grand_total:100",
    "data.data.grand_total:[99 TO 100]",
    "data.data.increment_id:CK*",
    "data.data.increment_id:ck0000010?",
    "data.data.increment_id:*0103",
    "data.data.items.sku:24-MB01",
    "data.data.items.sku:orange",
    "data.data.items.sku:MJ01*",
    "data.data.items.sku:*range",
    "data.data.items.qty:[2 TO 3]",
    "data.data.customer_email:roni_cost@example.com",
    "data.data.customer_email:example.com",
    '"back door"',
    '"door back"',
    'data.data.note:"the back"',
    'data.data.items.name:"Summit Kit"',
    'data.data.store:"Default Store View"',
    "roni_cost@example.com",
    "orange",
    "bike AND data.data.grand_total:[100 TO 500]",
    "data.data.placed_on:2026-04",
    "data.data.placed_on:[2026-04-01 TO 2026-04-30]",
    "data.data.gift:true",
    "data.data.note:null",
    "data.data.tags:vip",
    "data.data.city:zürich",
    "data.data.note:*",
    "NOT data.data.note:*",
    "-data.data.status:canceled",
    "+data.data.status:pending -data.data.grand_total:[0 TO 100]",
    "data.data.status:[a TO p}",
    "data.data.missing.path:anything",
    "store OR data.data.tags:wholesale",
]


def payload_number(payload: Any) -> int:
    return int(payload["n"])


@pytest.fixture(scope="module")
def delivered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every payload through the real consumer to a receiver: one subscription per query, one without."""
    folder = tmp_path_factory.mktemp("filters")
    config = write_config(folder)
    with serving_receiver() as receiver, Runtime(config, environ={}) as rt:
        subscribe(rt.config, rt.store, EVENT, receiver.endpoint("/all"))
        ids = []
        for k, text in enumerate(QUERIES):
            subscription, _ = subscribe(
                rt.config, rt.store, EVENT, receiver.endpoint(f"/q{k}"), payload_filter=text, refuse_duplicate=False
            )
            ids.append(subscription.subscription_id)
        for n, payload in enumerate(PAYLOADS):
            publish(rt.config, rt.queue, EVENT, {"n": n, **payload})
        rt.consumer(poll_timeout=0.02).run(until_empty=True)
        received = {k: {payload_number(r.json["data"]) for r in receiver.to(f"/q{k}")} for k in range(len(QUERIES))}
        rows = status(rt.config, rt.store, rt.queue)["subscriptions"]
        filtered = {row["subscription_id"]: row["filtered"] for row in rows}
        logged = {row["log_id"]: json.loads(row["serialized_data"]) for row in rt.store.log.recent_logs(limit=10_000)}
        searched = {
            k: {payload_number(logged[log_id]["data"]) for log_id in matching_log_ids(rt.config, rt.store, text)}
            for k, text in enumerate(QUERIES)
        }
        all_received = len(receiver.to("/all"))
    return {
        "received": received,
        "searched": searched,
        "filtered": filtered,
        "ids": ids,
        "all": all_received,
    }


@pytest.mark.parametrize("k", range(len(QUERIES)), ids=QUERIES)
def test_a_filter_passes_exactly_what_search_finds(delivered: dict[str, Any], k: int) -> None:
    assert delivered["all"] == len(PAYLOADS)
    assert delivered["received"][k] == delivered["searched"][k], QUERIES[k]
    # what the filter held back is counted, so an operator sees why a receiver is quiet
    assert delivered["filtered"][delivered["ids"][k]] == len(PAYLOADS) - len(delivered["received"][k])


def test_the_table_tells_payloads_apart(delivered: dict[str, Any]) -> None:
    """The table means something only if its queries give different answers, most neither none nor all."""
    answers = [frozenset(found) for found in delivered["searched"].values()]
    partial = [a for a in answers if 0 < len(a) < len(PAYLOADS)]
    assert len(set(answers)) >= len(QUERIES) // 2
    assert len(partial) >= len(QUERIES) - 4


# -- through the real consumer, on every queue backend --------------------------------


def test_a_filtered_subscription_gets_only_matching_events(
    tmp_path: Path, backend: dict[str, Any], receiver: Receiver
) -> None:
    config = write_config(tmp_path, **backend)
    with Runtime(config, environ=backend_environ()) as rt:
        every, _ = subscribe(rt.config, rt.store, EVENT, receiver.endpoint("/every"))
        big, _ = subscribe(
            rt.config,
            rt.store,
            EVENT,
            receiver.endpoint("/big"),
            payload_filter="data.data.grand_total:[100 TO *] AND NOT data.data.status:canceled",
        )
        for n, payload in enumerate(PAYLOADS):
            publish(rt.config, rt.queue, EVENT, {"n": n, **payload})
        rt.consumer(poll_timeout=0.02).run(until_empty=True)
        assert len(receiver.to("/every")) == len(PAYLOADS)
        # 192 is canceled, 350 pending, 100 CANCELED, "99.99" below: only order 3
        assert [payload_number(r.json["data"]) for r in receiver.to("/big")] == [3]
        logged = [r for r in rt.store.log.recent_logs(limit=100) if r["subscription_id"] == big.subscription_id]
        assert len(logged) == 1  # held-back events are not logged as attempts
        counts = {row["subscription_id"]: row for row in status(rt.config, rt.store, rt.queue)["subscriptions"]}
        assert counts[big.subscription_id]["filtered"] == len(PAYLOADS) - 1
        assert counts[big.subscription_id]["attempts"] == 1
        assert counts[every.subscription_id]["filtered"] == 0


# -- the commands ----------------------------------------------------------------------


def test_subscribe_checks_the_filter_and_shows_it(config_path: Path) -> None:
    url = "https://erp.example.com/hooks"
    line = assert_error(ae(config_path, "subscribe", EVENT, url, "--filter", "data.data.status:(pending"), 2)
    assert "unclosed '('" in line and "position 18" in line
    assert_error(ae(config_path, "subscribe", EVENT, url, "--filter", "success:true"), 2, "delivery body only")
    assert_error(ae(config_path, "subscribe", EVENT, url, "--filter", "grand_total:1"), 2, "unknown field")
    assert_error(ae(config_path, "subscribe", EVENT, url, "--filter", "  "), 2, "filter is empty")
    assert ok_json(config_path, "subscriptions", "list") == []  # nothing written

    sid = ok(config_path, "subscribe", EVENT, url, "--filter", " data.data.grand_total:[100 TO *] ").stdout.strip()
    [row] = ok_json(config_path, "subscriptions", "list")
    assert (row["filter"], row["format"]) == ("data.data.grand_total:[100 TO *]", "data")
    shown = ok(config_path, "subscriptions", "show", sid).stdout
    assert "data.data.grand_total:[100 TO *]" in shown

    assert_error(ae(config_path, "subscriptions", "update", sid, "--filter", "a AND"), 2, "AND needs a term after")
    assert ok_json(config_path, "subscriptions", "show", sid)["filter"] == "data.data.grand_total:[100 TO *]"
    assert_error(ae(config_path, "subscriptions", "update", sid, "--filter", "x", "--no-filter"), 2, "not both")
    ok(config_path, "subscriptions", "update", sid, "--filter", "data.data.status:pending")
    assert ok_json(config_path, "subscriptions", "show", sid)["filter"] == "data.data.status:pending"
    ok(config_path, "subscriptions", "update", sid, "--no-filter")
    assert ok_json(config_path, "subscriptions", "show", sid)["filter"] is None


def test_status_shows_the_filtered_count(config_path: Path, receiver: Receiver) -> None:
    with Runtime(config_path, environ={}) as rt:
        subscribe(rt.config, rt.store, EVENT, receiver.endpoint("/x"), payload_filter="data.data.status:pending")
        for payload in PAYLOADS:
            publish(rt.config, rt.queue, EVENT, payload)
        rt.consumer(poll_timeout=0.02).run(until_empty=True)
    [row] = ok_json(config_path, "status")["subscriptions"]
    assert (row["attempts"], row["filtered"]) == (2, len(PAYLOADS) - 2)
    assert "filtered" in ok(config_path, "status", env={"COLUMNS": "200"}).stdout


def test_a_stored_filter_that_no_longer_parses_hides_nothing(
    config_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Written by another version of ae, say: every event is delivered, and a warning says why."""
    with Runtime(config_path, environ={}) as rt:
        subscription, _ = subscribe(rt.config, rt.store, EVENT, receiver.endpoint("/x"))
        rt.store.subscriptions.set_delivery_shape(subscription.subscription_id, "data.data.status:(pending", "data")
        for payload in PAYLOADS[:3]:
            publish(rt.config, rt.queue, EVENT, payload)
        with caplog.at_level("WARNING", logger="asyncevents_cli"):
            rt.consumer(poll_timeout=0.02).run(until_empty=True)
    assert len(receiver.to("/x")) == 3
    warnings = [r.getMessage() for r in caplog.records if "its filter cannot be read" in r.getMessage()]
    assert len(warnings) == 1 and "unclosed '('" in warnings[0]
