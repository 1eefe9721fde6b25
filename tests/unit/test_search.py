"""`ae search` and `ae index`: Lucene-syntax search over the delivery log and payloads.

Known data comes from the real pipeline (publish, consume, deliver to a local
HTTP receiver) into a real SQLite file; each query's expected result is worked
out from the logged rows in plain Python, independently of whoosh.
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ae, serving_receiver, write_config

from asyncevents_cli.publishing import publish
from asyncevents_cli.runtime import Runtime
from asyncevents_cli.search import index_path, matching_log_ids
from asyncevents_cli.subscribe import subscribe

ORDERS: list[dict[str, Any]] = [
    {
        "increment_id": "CK00000101",
        "customer_email": "roni_cost@example.com",
        "grand_total": 45.5,
        "items": [{"sku": "WS12-M-Orange", "qty": 1}],
        "note": "leave at the back door",
        "placed_on": "2026-04-09",
    },
    {
        "increment_id": "CK00000102",
        "customer_email": "veronica_costello@example.com",
        "grand_total": 92.0,
        "items": [
            {"sku": "MJ01-L-Red", "name": "Beaumont Summit Kit", "qty": 2},
            {"sku": "24-MB01", "name": "Electra Bra Top", "qty": 1},
        ],
        "placed_on": "2026-05-01T10:30:00Z",
    },
    {
        "increment_id": "SO00000103",
        "customer_email": "roni_cost@example.com",
        "grand_total": 17.25,
        "items": [{"sku": "24-MB01", "qty": 1}],
        "note": "back door is locked",
    },
]
CUSTOMER = {"customer_email": "Roni_Cost@Example.com", "firstname": "Roni", "group_id": 1}


def build(tmp_path: Path, receiver: Any, **settings: Any) -> Path:
    """Three orders (the first fails once, then is retried) and a customer, delivered for real."""
    config = write_config(tmp_path, **settings)
    with Runtime(config, environ={}) as rt:
        subscribe(rt.config, rt.store, "sales.order.created", receiver.script("/orders", 500, 200))
        subscribe(rt.config, rt.store, "customer.created", receiver.endpoint("/customers"))
        for order in ORDERS:
            publish(rt.config, rt.queue, "sales.order.created", order)
        publish(rt.config, rt.queue, "customer.created", CUSTOMER)
        rt.consumer(poll_timeout=0.02).run(until_empty=True)
    return config


@pytest.fixture(scope="module")
def delivered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The pipeline runs once per module (its fsyncs take a few tenths of a second);
    each test gets a copy of the folder, so no index or change leaks between tests."""
    with serving_receiver() as recv:
        yield build(tmp_path_factory.mktemp("delivered"), recv).parent


@pytest.fixture
def data(delivered: Path, tmp_path: Path) -> Path:
    shutil.copytree(delivered, tmp_path / "copy")
    return tmp_path / "copy" / "events.toml"


def rows_of(config: Path) -> list[dict[str, Any]]:
    with Runtime(config) as rt:
        rows = rt.store.backend.rows("SELECT * FROM delivery_log ORDER BY log_id")
    for row in rows:
        row["body"] = json.loads(row["serialized_data"])["data"]
    return rows


def search_ids(config: Path, query: str, *extra: str) -> list[int]:
    result = ae(config, "search", query, "--json", *extra)
    assert result.exit_code == 0, result.stderr
    return [r["log_id"] for r in json.loads(result.stdout)["results"]]


def expected(config: Path, keep: Callable[[dict[str, Any]], bool]) -> list[int]:
    """Log ids whose row satisfies `keep`, newest first (the order search returns)."""
    return sorted((r["log_id"] for r in rows_of(config) if keep(r)), reverse=True)


def email(r: dict[str, Any]) -> str:
    return str(r["body"].get("customer_email", "")).lower()


def skus(r: dict[str, Any]) -> list[str]:
    return [i["sku"] for i in r["body"].get("items", [])]


def test_the_pipeline_logged_what_the_tests_expect(data: Path) -> None:
    rows = rows_of(data)
    assert len(rows) == 5  # 3 orders + 1 retry + 1 customer
    assert [r["success"] for r in rows if r["event_name"] == "sales.order.created"].count(0) == 1


def test_readme_examples_return_exactly_the_matching_events(data: Path) -> None:
    by_email = search_ids(data, "data.data.customer_email: roni_cost@example.com")
    # Case-insensitive: the customer's Roni_Cost@Example.com is found too.
    assert by_email == expected(data, lambda r: email(r) == "roni_cost@example.com")
    # Orders 101 and 103 and the customer, and one of the orders twice if it is the
    # one the receiver failed first (the engine has several in flight).
    assert len(by_email) == 3 + any(not r["success"] and email(r) == "roni_cost@example.com" for r in rows_of(data))

    by_increment = search_ids(data, "data.data.increment_id: CK* AND success: true")
    assert by_increment == expected(
        data, lambda r: str(r["body"].get("increment_id", "")).startswith("CK") and r["success"] == 1
    )
    assert len(by_increment) == 2  # 101's successful retry and 102


SYNTAX = [
    (
        "field:value without a space",
        "data.data.customer_email:veronica_costello@example.com",
        lambda r: email(r) == "veronica_costello@example.com",
    ),
    ("bare term searches all data", "roni", lambda r: r["body"].get("firstname") == "Roni"),
    ("bare compound part", "orange", lambda r: "WS12-M-Orange" in skus(r)),
    (
        "AND",
        "success:true AND event_name:sales.order.created",
        lambda r: r["success"] == 1 and r["event_name"] == "sales.order.created",
    ),
    (
        "OR",
        "data.data.increment_id:CK00000102 OR event_name:customer.created",
        lambda r: r["body"].get("increment_id") == "CK00000102" or r["event_name"] == "customer.created",
    ),
    (
        "NOT",
        "event_name:sales.order.created NOT success:true",
        lambda r: r["event_name"] == "sales.order.created" and r["success"] == 0,
    ),
    (
        "+ and -",
        "+event_name:sales.order.created -data.data.increment_id:SO*",
        lambda r: r["event_name"] == "sales.order.created" and not r["body"]["increment_id"].startswith("SO"),
    ),
    (
        "parentheses",
        "(data.data.increment_id:SO00000103 OR data.data.increment_id:CK00000102) AND success:true",
        # success too: the receiver fails whichever order reaches it first, and the engine
        # has several in flight, so that is not always order 101.
        lambda r: r["body"].get("increment_id") in ("SO00000103", "CK00000102") and r["success"] == 1,
    ),
    ("quoted phrase", '"back door"', lambda r: "back door" in r["body"].get("note", "")),
    ("phrase in order only", '"door back"', lambda r: False),
    ("* wildcard", "event_name:sales.*", lambda r: r["event_name"].startswith("sales.")),
    ("? wildcard", "data.data.increment_id:CK0000010?", lambda r: r["body"].get("increment_id", "")[:2] == "CK"),
    ("success false", "success: false", lambda r: r["success"] == 0),
    ("a lone NOT", "NOT success:true", lambda r: r["success"] == 0),
    (
        "OR with NOT",
        "data.data.grand_total:[90 TO *] OR NOT event_name:sales.order.created",
        lambda r: r["body"].get("grand_total", 0) >= 90 or r["event_name"] != "sales.order.created",
    ),
    ("uuid is case-insensitive", "", None),  # filled in by the test from the data
]


@pytest.mark.parametrize("name,query,keep", SYNTAX, ids=[s[0] for s in SYNTAX])
def test_each_syntax_element(data: Path, name: str, query: str, keep: Callable[[dict[str, Any]], bool] | None) -> None:
    if keep is None:
        target = rows_of(data)[-1]
        query, keep = f"uuid:{target['uuid'].upper()}", lambda r: r["uuid"] == target["uuid"]
    want = expected(data, keep)
    assert search_ids(data, query) == want
    assert want or name == "phrase in order only", "a syntax case must select something"


def test_dotted_list_and_numeric_fields(data: Path) -> None:
    assert search_ids(data, "data.data.items.sku:24-MB01") == expected(data, lambda r: "24-MB01" in skus(r))
    assert search_ids(data, "data.data.items.qty:2") == expected(
        data, lambda r: 2 in [i["qty"] for i in r["body"].get("items", [])]
    )
    total = lambda r: r["body"].get("grand_total", -1)  # noqa: E731
    assert search_ids(data, "data.data.grand_total:[10 TO 50]") == expected(data, lambda r: 10 <= total(r) <= 50)
    assert search_ids(data, "data.data.grand_total:{* TO 45.5}") == expected(data, lambda r: 0 <= total(r) < 45.5)
    assert search_ids(data, "data.data.grand_total:[50 TO *]") == expected(data, lambda r: total(r) >= 50)
    # 92.0 was logged; 92 is the same number.
    assert search_ids(data, "data.data.grand_total:92") == expected(data, lambda r: total(r) == 92)
    assert search_ids(data, "data.data.group_id:1") == expected(data, lambda r: r["body"].get("group_id") == 1)


def test_ranges_on_log_id_and_created(data: Path) -> None:
    ids = [r["log_id"] for r in rows_of(data)]
    low, high = ids[1], ids[3]
    assert search_ids(data, f"log_id:[{low} TO {high}]") == sorted((i for i in ids if low <= i <= high), reverse=True)
    assert search_ids(data, f"log_id:{{{low} TO {high}}}") == sorted((i for i in ids if low < i < high), reverse=True)
    assert search_ids(data, f"log_id:[{high} TO *]") == sorted((i for i in ids if i >= high), reverse=True)
    assert search_ids(data, f"log_id:{{* TO {low}}}") == sorted((i for i in ids if i < low), reverse=True)
    day = rows_of(data)[0]["created"][:10]
    assert search_ids(data, f"created:[{day} TO *]") == sorted(ids, reverse=True)
    assert search_ids(data, f"created:{day}") == sorted(ids, reverse=True)
    assert search_ids(data, "created:[2000-01-01 TO 2000-12-31T23:59:59]") == []


def test_limit_offset_and_table(data: Path) -> None:
    everything = expected(data, lambda r: True)
    assert search_ids(data, "created:[2000-01-01 TO *]", "--limit", "2") == everything[:2]
    assert search_ids(data, "created:[2000-01-01 TO *]", "--limit", "2", "--offset", "2") == everything[2:4]
    result = ae(data, "search", "data.data.customer_email: roni_cost@example.com")
    assert result.exit_code == 0
    roni = expected(data, lambda r: email(r) == "roni_cost@example.com")
    first = next(r for r in rows_of(data) if r["log_id"] == roni[-1])
    assert "roni_cost@example.com" in result.stdout and first["uuid"] in result.stdout
    assert f"{len(roni)} matches" in result.stderr


@pytest.mark.parametrize(
    "query,position",
    [
        ("(success:true", 1),
        ("success:true)", 13),
        ('"back door', 1),
        ("log_id:[1 TO 5", 8),
        ("log_id:[1 5]", 8),
        ("evnt_name:sales.order.created", 1),
        ("success:true AND", 14),
        ("OR success:true", 1),
        ("log_id:abc", 8),
        ("success:maybe", 9),
        ("data.data.customer_email:", 1),
    ],
)
def test_malformed_query_exits_2_with_position(data: Path, query: str, position: int) -> None:
    shutil.rmtree(index_path_of(data), ignore_errors=True)
    result = ae(data, "search", query)
    assert result.exit_code == 2, result.stdout
    assert f"at position {position}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not index_path_of(data).exists(), "bad input must change nothing"


def index_path_of(config: Path) -> Path:
    with Runtime(config) as rt:
        return index_path(rt.config)


def test_fallback_without_index_is_a_substring_match(tmp_path: Path, receiver: Any) -> None:
    config = build(tmp_path, receiver, indexing=False)
    assert search_ids(config, "veronica_costello") == expected(
        config, lambda r: "veronica_costello" in r["serialized_data"].lower()
    )
    # field:value pairs: data paths reduce to substrings, columns compare.
    assert search_ids(config, "data.data.customer_email: ROni_cost@example.com AND success:true") == expected(
        config, lambda r: "roni_cost@example.com" in r["serialized_data"].lower() and r["success"] == 1
    )
    assert search_ids(config, "event_name:sales.* SO*103") == expected(
        config, lambda r: r["event_name"].startswith("sales.") and "SO00000103" in r["serialized_data"]
    )
    assert search_ids(config, '"back door"') == expected(config, lambda r: "back door" in r["serialized_data"])
    result = ae(config, "search", "roni OR veronica")
    assert result.exit_code == 2 and "indexing = false" in result.stderr
    assert not index_path_of(config).exists()
    status = json.loads(ae(config, "index", "status", "--json").stdout)
    assert status["indexing"] is False


def test_index_status_follows_the_log(data: Path) -> None:
    before = json.loads(ae(data, "index", "status", "--json").stdout)
    assert before["exists"] is False and before["behind"] == 5 and before["log_at"] == max(search_ids_all(data))
    after = json.loads(ae(data, "index", "status", "--json").stdout)
    assert after["exists"] is True and after["behind"] == 0 and after["documents"] == 5
    assert after["indexed_up_to"] == after["log_at"]
    text = ae(data, "index", "status").stdout
    assert f"indexed up to log_id {after['log_at']}, log at {after['log_at']}, 0 behind" in text


def search_ids_all(config: Path) -> list[int]:
    return search_ids(config, "log_id:[0 TO *]")


def test_new_log_rows_are_indexed_before_searching(data: Path, receiver: Any) -> None:
    assert search_ids(data, "SO00000104") == []
    with Runtime(data) as rt:
        publish(rt.config, rt.queue, "sales.order.created", {"increment_id": "SO00000104"})
        rt.consumer(poll_timeout=0.02).run(until_empty=True)
    assert search_ids(data, "SO00000104") == expected(data, lambda r: r["body"].get("increment_id") == "SO00000104")
    assert json.loads(ae(data, "index", "status", "--json").stdout)["behind"] == 0


def test_prune_removes_entries_from_the_index(data: Path) -> None:
    assert len(search_ids_all(data)) == 5
    old = [r["log_id"] for r in rows_of(data) if r["body"].get("increment_id") == "CK00000101"]
    db = index_path_of(data).with_suffix("")
    with sqlite3.connect(db) as conn:  # age two entries, as if logged 40 days ago
        conn.execute(
            f"UPDATE delivery_log SET created = '2000-01-01 00:00:00.000000' WHERE log_id IN "
            f"({','.join(map(str, old))})"
        )
    result = ae(data, "logs", "prune", "--older-than", "30", "--yes")
    # Two attempts if order 101 was the one the receiver failed first, else one.
    assert result.exit_code == 0 and f"pruned {len(old)} log entr" in result.stdout
    assert search_ids(data, "CK00000101") == []
    assert search_ids(data, "data.data.increment_id:CK*") == expected(
        data, lambda r: str(r["body"].get("increment_id", "")).startswith("CK")
    )
    assert search_ids(data, "NOT success:false") == expected(data, lambda r: r["success"] == 1)
    assert sorted(search_ids_all(data)) == sorted(r["log_id"] for r in rows_of(data))
    assert json.loads(ae(data, "index", "status", "--json").stdout)["documents"] == 5 - len(old)


def test_rebuild_after_the_index_folder_is_deleted(data: Path) -> None:
    want = search_ids(data, "data.data.customer_email: roni_cost@example.com")
    shutil.rmtree(index_path_of(data))
    assert search_ids(data, "data.data.customer_email: roni_cost@example.com") == want
    result = ae(data, "index", "rebuild")
    assert result.exit_code == 0 and "indexed 5 log entries" in result.stdout
    assert search_ids(data, "data.data.customer_email: roni_cost@example.com") == want


def test_corrupt_index_is_rebuilt(data: Path, caplog: pytest.LogCaptureFixture) -> None:
    want = search_ids(data, "data.data.items.sku:24-MB01")
    folder = index_path_of(data)
    files = [p for p in folder.iterdir() if p.is_file()]
    assert files
    for path in files:
        path.write_bytes(b"\x00garbage\xff" * 50)
    assert search_ids(data, "data.data.items.sku:24-MB01") == want
    # Only garbage and no meta file at all, in a folder ae marked as its own: rebuilt too.
    shutil.rmtree(folder)
    folder.mkdir()
    (folder / ".ae-index").write_text("an ae search index\n")
    (folder / "_MAIN_1.toc").write_bytes(b"not an index")
    result = ae(data, "search", "data.data.items.sku:24-MB01", "--json")
    assert result.exit_code == 0 and [r["log_id"] for r in json.loads(result.stdout)["results"]] == want
    # The rebuild is logged with its cause (a warning: `ae search` shows it on stderr).
    causes = [r.getMessage() for r in caplog.records if "rebuilding it from the log" in r.getMessage()]
    assert causes and all(str(folder) in cause for cause in causes), causes


# -- regression tests for defects found against a Lucene oracle -------------------------


def test_a_minus_b_excludes_every_document_matching_b(data: Path) -> None:
    """whoosh's AndNotMatcher checked only the first positive match against the negative side:
    `log_id:[31 TO *] -success:true` returned log 31 although it succeeded."""
    rows = rows_of(data)
    for row in rows:
        first = row["log_id"]
        want = expected(data, lambda r, first=first: r["log_id"] >= first and r["success"] == 0)
        assert search_ids(data, f"log_id:[{first} TO *] -success:true") == want
        assert search_ids(data, f"+log_id:[{first} TO *] -success:true") == want
        assert search_ids(data, f"log_id:[{first} TO *] NOT success:true") == want
    # Bulk replay selects through the same matching.
    with Runtime(data) as rt:
        assert matching_log_ids(rt.config, rt.store, "event_name:sales.* -success:true") == expected(
            data, lambda r: r["event_name"].startswith("sales.") and r["success"] == 0
        )


@pytest.mark.parametrize(
    "query,keep",
    [
        ("data.data.placed_on:2026", lambda r: str(r["body"].get("placed_on", "")).startswith("2026")),
        ("data.data.placed_on:2026-04", lambda r: str(r["body"].get("placed_on", "")).startswith("2026-04")),
        ("data.data.placed_on:2026-04-09", lambda r: r["body"].get("placed_on") == "2026-04-09"),
        ("data.data.placed_on:2026-05-01", lambda r: str(r["body"].get("placed_on", "")).startswith("2026-05-01")),
        ("2026-05", lambda r: str(r["body"].get("placed_on", "")).startswith("2026-05")),
        ("data.data.placed_on:[2026-04-01 TO 2026-04-30]", lambda r: r["body"].get("placed_on") == "2026-04-09"),
    ],
)
def test_parts_of_dates_are_found(data: Path, query: str, keep: Callable[[dict[str, Any]], bool]) -> None:
    want = expected(data, keep)
    assert want
    assert search_ids(data, query) == want


def test_decimals_stay_whole(data: Path) -> None:
    assert search_ids(data, "data.data.grand_total:45") == []
    assert search_ids(data, "data.data.grand_total:45.5") == expected(
        data, lambda r: r["body"].get("grand_total") == 45.5
    )


def test_a_phrase_never_spans_two_values(data: Path) -> None:
    names = lambda r: [i.get("name", "") for i in r["body"].get("items", [])]  # noqa: E731
    assert search_ids(data, 'data.data.items.name:"Summit Kit"') == expected(
        data, lambda r: "Beaumont Summit Kit" in names(r)
    )
    # The last word of one item and the first of the next are not a phrase ...
    assert search_ids(data, 'data.data.items.name:"Kit Electra"') == []
    assert search_ids(data, 'data.data.items.sku:"red 24"') == []
    assert search_ids(data, '"Kit Electra"') == []
    # ... nor the last word of one field and the first of the next.
    assert search_ids(data, '"example.com ck00000101"') == []
    assert search_ids(data, '"Electra Bra Top"') == expected(data, lambda r: "Electra Bra Top" in names(r))


def test_json_hits_carry_the_full_payload(data: Path) -> None:
    result = ae(data, "search", "data.data.customer_email: roni_cost@example.com", "--json")
    assert result.exit_code == 0
    hits = json.loads(result.stdout)["results"]
    by_id = {r["log_id"]: r for r in rows_of(data)}
    assert [h["log_id"] for h in hits] == expected(data, lambda r: email(r) == "roni_cost@example.com")
    assert len(hits) >= 3
    for hit in hits:
        assert hit["payload"] == json.loads(by_id[hit["log_id"]]["serialized_data"])
        assert hit["payload"]["data"]["customer_email"].lower() == "roni_cost@example.com"


def test_json_hits_carry_the_payload_without_an_index(tmp_path: Path, receiver: Any) -> None:
    config = build(tmp_path, receiver, indexing=False)
    hits = json.loads(ae(config, "search", "veronica_costello", "--json").stdout)["results"]
    assert hits and all(h["payload"]["data"]["customer_email"] == "veronica_costello@example.com" for h in hits)


def test_prefix_queries_on_every_kind_of_word(data: Path) -> None:
    """`CK*` reads the identifier prefixes; other prefixes walk words and numbers."""
    increment = lambda r: str(r["body"].get("increment_id", ""))  # noqa: E731
    for prefix in ("C", "CK", "CK0000010", "CK00000101", "SO0"):
        assert search_ids(data, f"data.data.increment_id:{prefix}*") == expected(
            data, lambda r, prefix=prefix: increment(r).lower().startswith(prefix.lower())
        ), prefix
    assert search_ids(data, "data.data.items.sku:mb*") == expected(data, lambda r: "24-MB01" in skus(r))
    assert search_ids(data, "data.data.items.sku:24*") == expected(data, lambda r: "24-MB01" in skus(r))
    assert search_ids(data, "data.data.customer_email:veron*") == expected(data, lambda r: email(r).startswith("veron"))
    assert search_ids(data, "data.data.grand_total:9*") == expected(
        data, lambda r: str(r["body"].get("grand_total", "")).startswith("9")
    )
    assert search_ids(data, "data.data.increment_id:*") == expected(data, lambda r: "increment_id" in r["body"])
    assert search_ids(data, "data.data.increment_id:[CK00000102 TO *]") == expected(
        data, lambda r: increment(r).lower() >= "ck00000102"
    )


def test_index_follow_keeps_the_index_current_in_its_own_process(data: Path, receiver: Any) -> None:
    follower = subprocess.Popen(
        [sys.executable, "-m", "asyncevents_cli", "--config", str(data), "index", "follow", "--interval", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with Runtime(data) as rt:
            publish(rt.config, rt.queue, "sales.order.created", {"increment_id": "SO00000105"})
            rt.consumer(poll_timeout=0.02).run(until_empty=True)
            last = rt.store.log.max_log_id()
        deadline = time.monotonic() + 60
        while json.loads(ae(data, "index", "status", "--json").stdout)["indexed_up_to"] < last:
            assert follower.poll() is None, follower.stderr.read() if follower.stderr else ""
            assert time.monotonic() < deadline, "the follower did not catch up"
            time.sleep(0.1)
    finally:
        follower.send_signal(signal.SIGTERM)
        _, stderr = follower.communicate(timeout=30)
    assert follower.returncode == 0, stderr
    assert f"up to log_id {last}" in stderr
    assert search_ids(data, "SO00000105") == expected(data, lambda r: r["body"].get("increment_id") == "SO00000105")


def test_index_follow_once_and_without_indexing(tmp_path: Path, receiver: Any, data: Path) -> None:
    result = ae(data, "index", "follow", "--once")
    assert result.exit_code == 0 and "index follow: stopped, up to log_id" in result.stderr
    assert json.loads(ae(data, "index", "status", "--json").stdout)["behind"] == 0
    config = build(tmp_path, receiver, indexing=False)
    result = ae(config, "index", "follow", "--once")
    assert result.exit_code == 2 and "indexing is off" in result.stderr
