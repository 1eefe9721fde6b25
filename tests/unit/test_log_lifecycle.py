"""The delivery log over time (issue 7, items 5 and 6): log ids are never reused, the
search index notices when they went backwards, and pruning removes only whole
chains that have finished."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from conftest import EVENT, Receiver, ok, ok_json, write_config


def database(config: Path) -> Path:
    return config.parent / ".ae" / "ae.db"


def deliver(config: Path, *increment_ids: str) -> None:
    for increment_id in increment_ids:
        ok(config, "publish", EVENT, "--data", json.dumps({"increment_id": increment_id}))
    ok(config, "consume", "trigger", "--until-empty")


def found(config: Path, query: str) -> list[int]:
    return sorted(hit["log_id"] for hit in ok_json(config, "search", query)["results"])


def test_log_ids_are_not_reused_after_the_log_was_pruned_empty(tmp_path: Path, receiver: Receiver) -> None:
    config = write_config(tmp_path)
    ok(config, "subscribe", EVENT, receiver.endpoint("/hook"), "--secret", "s")
    deliver(config, "A1", "A2")
    # the consumer has both in flight at once, so either may be logged first
    assert sorted(found(config, "A1") + found(config, "A2")) == [1, 2]
    assert ok(config, "logs", "prune", "--older-than", "0", "--yes").stdout.startswith("pruned 2 ")
    deliver(config, "B1")
    assert [row["log_id"] for row in ok_json(config, "logs")] == [3]
    assert found(config, "B1") == [3]
    assert ok_json(config, "index", "status")["behind"] == 0


def _downgrade_to_reusable_ids(path: Path) -> None:
    """Make the store look like one written before AUTOINCREMENT (and before the
    schema had versions)."""
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE old_log AS SELECT * FROM delivery_log;
        DROP TABLE delivery_log;
        CREATE TABLE delivery_log (log_id INTEGER PRIMARY KEY, uuid TEXT, subscription_id INTEGER,
            event_name TEXT, success INTEGER, status_code INTEGER, response_data TEXT, created TEXT,
            serialized_data TEXT, death_count INTEGER, duration FLOAT, message_id TEXT);
        INSERT INTO delivery_log SELECT log_id, uuid, subscription_id, event_name, success, status_code,
            response_data, created, serialized_data, death_count, duration, message_id FROM old_log;
        DROP TABLE old_log;
        DROP TABLE schema_migrations;
        """
    )
    conn.commit()
    conn.close()


def test_a_store_with_reused_ids_is_migrated_and_its_index_rebuilt(tmp_path: Path, receiver: Receiver) -> None:
    config = write_config(tmp_path)
    ok(config, "subscribe", EVENT, receiver.endpoint("/hook"), "--secret", "s")
    deliver(config, "A1", "A2")
    deliver(config, "A3")  # apart: one consume may log its triggers in either order
    assert found(config, "A3") == [3]  # the index is at log id 3
    ok(config, "logs", "prune", "--older-than", "0", "--yes")
    _downgrade_to_reusable_ids(database(config))
    # What the old schema did: the next attempt reused log id 1.
    conn = sqlite3.connect(database(config))
    conn.execute(
        "INSERT INTO delivery_log (uuid, subscription_id, event_name, success, status_code, response_data,"
        " created, serialized_data, death_count, duration) VALUES ('u', 1, ?, 1, 200, '',"
        ' \'2026-01-01 00:00:00.000000\', \'{"data":{"increment_id":"C1"}}\', 0, 0.01)',
        (EVENT,),
    )
    conn.commit()
    assert conn.execute("SELECT MAX(log_id) FROM delivery_log").fetchone()[0] == 1
    conn.close()
    # Opening migrates the log (ids never reused from now on) and the index is rebuilt.
    assert found(config, "C1") == [1]
    conn = sqlite3.connect(database(config))
    assert "AUTOINCREMENT" in conn.execute("SELECT sql FROM sqlite_master WHERE name = 'delivery_log'").fetchone()[0]
    conn.close()
    deliver(config, "D1")
    assert found(config, "D1") == [2]


def test_the_index_notices_a_database_restored_from_an_older_copy(tmp_path: Path, receiver: Receiver) -> None:
    config = write_config(tmp_path)
    ok(config, "subscribe", EVENT, receiver.endpoint("/hook"), "--secret", "s")
    deliver(config, "A1", "A2")
    backup = tmp_path / "backup.db"
    source, target = sqlite3.connect(database(config)), sqlite3.connect(backup)
    source.backup(target)
    source.close(), target.close()
    deliver(config, "A3")
    deliver(config, "A4")  # apart: one consume may log two triggers in either order
    assert found(config, "A4") == [4]  # the index is at log id 4
    backup.replace(database(config))
    for leftover in database(config).parent.glob("ae.db-*"):
        leftover.unlink()
    deliver(config, "R3")  # log id 3 again, with other content
    assert found(config, "R3") == [3]
    assert found(config, "A4") == []


def test_prune_keeps_chains_that_are_still_retrying(tmp_path: Path, receiver: Receiver) -> None:
    config = write_config(tmp_path, backoff_unit_seconds=600.0)
    ok(config, "subscribe", EVENT, receiver.script("/failing", 500), "--secret", "s")
    ok(config, "subscribe", EVENT, receiver.endpoint("/ok"), "--secret", "s")
    deliver(config, "A1")
    retrying = next(r["uuid"] for r in ok_json(config, "logs") if not r["success"])
    assert ok(config, "logs", "prune", "--older-than", "0", "--yes").stdout.startswith("pruned 1 ")
    assert [r["uuid"] for r in ok_json(config, "logs")] == [retrying]
    assert ok_json(config, "trace", retrying)["status"].startswith("Retrying")


def test_prune_keeps_a_finished_chain_whole_until_all_of_it_is_old(tmp_path: Path, receiver: Receiver) -> None:
    config = write_config(tmp_path, backoff_unit_seconds=0.01)
    ok(config, "subscribe", EVENT, receiver.script("/flaky", 500, 200), "--secret", "s")
    ok(config, "publish", EVENT, "--data", '{"increment_id": "A1"}')
    ok(config, "consume", "all", "--until-empty")
    uuid = ok_json(config, "logs")[0]["uuid"]
    assert ok_json(config, "trace", uuid)["status"] == "Delivered with 1 retry"
    conn = sqlite3.connect(database(config))  # the first attempt is 40 days old, the second new
    conn.execute("UPDATE delivery_log SET created = '2000-01-01 00:00:00.000000' WHERE death_count = 0")
    conn.commit()
    conn.close()
    assert ok(config, "logs", "prune", "--older-than", "30", "--yes").stdout.startswith("pruned 0 ")
    assert ok_json(config, "trace", uuid)["status"] == "Delivered with 1 retry"
    assert ok(config, "logs", "prune", "--older-than", "0", "--yes").stdout.startswith("pruned 2 ")
