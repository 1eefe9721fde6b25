"""`database` as a PostgreSQL URL, through the real `ae` command: the bad-input
and unreachable cases (no server needed), and the read and write commands on a
real PostgreSQL database (no SQLite file appears), and `ae db`."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Receiver, ae, assert_error, ok, ok_json, write_config
from postgres_db import TEST_SECRET_KEY

from asyncevents_cli.store.schema import SCHEMA_VERSION
from asyncevents_cli.store.sqlite_schema import MIGRATIONS as SQLITE_MIGRATIONS

EVENT = "sales.order.created"
UNREACHABLE = "postgresql://ae:s3cret-pw@127.0.0.1:1/ae"


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize(
    "command",
    [["subscriptions", "list"], ["status"], ["logs"], ["db", "status"], ["trace", "0123456789abcdef0123456789abcdef"]],
)
def test_an_unreachable_postgresql_store_exits_3_with_one_line(tmp_path: Path, command: list[str]) -> None:
    config = write_config(tmp_path, database=UNREACHABLE)
    line = assert_error(ae(config, *command), 3, "cannot reach the database postgresql://ae:***@127.0.0.1:1/ae")
    assert "s3cret-pw" not in line
    assert files_in(tmp_path) == ["events.toml"]  # the URL never became a SQLite file


def test_a_database_url_of_another_kind_is_bad_input(tmp_path: Path) -> None:
    config = write_config(tmp_path, database="mysql://root:hunter2@db/shop")
    line = assert_error(
        ae(config, "subscriptions", "list"), 2, "database", "is not a PostgreSQL URL", "mysql://root:***@db/shop"
    )
    assert "hunter2" not in line
    config = write_config(tmp_path, database="postgresql://ae@db:5432/")
    assert_error(ae(config, "status"), 2, "names no database")
    assert files_in(tmp_path) == ["events.toml"]


def test_config_show_redacts_the_database_password(tmp_path: Path) -> None:
    config = write_config(tmp_path, database=UNREACHABLE)
    shown = ok_json(config, "config", "show")
    assert shown["database_path"] == "postgresql://ae:***@127.0.0.1:1/ae"
    assert {s["name"]: s["value"] for s in shown["settings"]}["database"] == "postgresql://ae:***@127.0.0.1:1/ae"
    assert "s3cret-pw" not in ok(config, "config", "show").stdout


def test_db_status_and_migrate_on_sqlite(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    before = ok_json(config, "db", "status")
    assert (before["backend"], before["schema_version"]) == ("sqlite", 0)
    versions = [m.version for m in SQLITE_MIGRATIONS]  # numbered by branch, so not always 1, 2, 3, ...
    assert versions == sorted(versions) and versions[0] == 1 and versions[-1] == SCHEMA_VERSION
    assert [m["version"] for m in before["pending"]] == versions
    migrated = ok_json(config, "db", "migrate")
    assert migrated["schema_version"] == SCHEMA_VERSION and migrated["pending"] == []
    assert [m["version"] for m in migrated["applied"]] == versions
    again = ok(config, "db", "migrate").stdout
    assert again.startswith(f"sqlite {tmp_path / '.ae' / 'ae.db'}: schema version {SCHEMA_VERSION}")


@pytest.mark.postgres
def test_the_commands_on_a_postgresql_store(
    tmp_path: Path, postgres_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AE_SECRET_KEY", TEST_SECRET_KEY)
    config = write_config(tmp_path, database=postgres_url)
    assert ok_json(config, "db", "status")["schema_version"] == 0  # status changes nothing
    ok(config, "subscribe", EVENT, receiver.endpoint("/hook"), "--secret", "pw")
    ok(config, "publish", EVENT, "--data", '{"increment_id": "PG1"}')
    ok(config, "consume", "all", "--until-empty")
    assert receiver.to("/hook")[0].signed_with("pw")
    logs = ok_json(config, "logs")
    assert [(r["event_name"], r["success"]) for r in logs] == [(EVENT, True)]
    trace = ok_json(config, "trace", logs[0]["uuid"])
    assert trace["attempts"][0]["status_code"] == 200
    status = ok_json(config, "status")
    assert status["database"] == postgres_url and status["subscriptions"][0]["delivered"] == 1
    hits = ok_json(config, "search", "PG1")
    assert [h["uuid"] for h in hits["results"]] == [logs[0]["uuid"]]
    ok(config, "replay", logs[0]["uuid"])
    ok(config, "consume", "all", "--until-empty")
    assert len(receiver.to("/hook")) == 2
    ok(config, "tokens", "create", "ci", "--events", "sales.*")
    assert [t["name"] for t in ok_json(config, "tokens", "list")] == ["ci"]
    assert ok_json(config, "db", "status")["schema_version"] == SCHEMA_VERSION
    # The host keeps only its own files: the search index, beside the config file.
    assert not [name for name in files_in(tmp_path) if name.endswith((".db", ".key", "-wal", "-shm"))]
    assert (tmp_path / ".ae" / "ae.index").is_dir()


@pytest.mark.postgres
def test_a_postgresql_store_needs_the_secret_key_from_the_environment(
    tmp_path: Path, postgres_url: str, receiver: Receiver
) -> None:
    config = write_config(tmp_path, database=postgres_url)
    assert_error(
        ae(config, "subscribe", EVENT, receiver.endpoint("/hook"), "--secret", "pw"), 1, "AE_SECRET_KEY is not set"
    )
    assert ok_json(config, "subscriptions", "list") == []  # nothing was made
    assert files_in(tmp_path) == ["events.toml"]


@pytest.mark.postgres
def test_subscription_management_dead_letters_and_bulk_replay_on_postgresql(
    tmp_path: Path, postgres_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AE_SECRET_KEY", TEST_SECRET_KEY)
    config = write_config(tmp_path, database=postgres_url, max_deaths=0)
    sid = ok(config, "subscribe", EVENT, receiver.script("/orders", 503), "--secret", "first").stdout.strip()
    ok(config, "subscriptions", "set-headers", sid, "X-Shop: eu")
    new_secret = ok(config, "subscriptions", "rotate-secret", sid).stdout.strip()
    ok(config, "subscriptions", "disable", sid)
    assert ok_json(config, "subscriptions", "show", sid)["status"] == "disabled"
    ok(config, "subscriptions", "enable", sid)
    for n in range(3):
        ok(config, "publish", EVENT, "--data", f'{{"increment_id": "BR{n}"}}')
    ok(config, "consume", "all", "--until-empty")  # the receiver is down: max_deaths 0 parks each at once
    parked = ok_json(config, "deadletters")
    assert len(parked) == 3 and {row["origin"] for row in parked} == {"retry"}
    assert all(r.headers.get("x-shop") == "eu" for r in receiver.to("/orders"))
    receiver.script("/orders", 200)
    listed = ok_json(config, "replay", "--query", "success:false", "--dry-run")
    assert sorted(row["uuid"] for row in listed) == sorted(row["uuid"] for row in parked)
    assert "replayed 3 deliveries" in ok(config, "replay", "--query", "success:false", "--yes").stdout
    ok(config, "consume", "all", "--until-empty")
    delivered = receiver.to("/orders")[-3:]
    assert sorted(r.json["data"]["increment_id"] for r in delivered) == ["BR0", "BR1", "BR2"]
    assert all(r.signed_with(new_secret) for r in delivered)
    assert ok_json(config, "deadletters") == []  # resolved by the replay
    assert len(ok_json(config, "deadletters", "--all")) == 3
    ok(config, "deadletters", "purge", "--yes")
    assert ok_json(config, "deadletters", "--all") == []
    ok(config, "subscriptions", "delete", sid, "--yes")
    assert ok_json(config, "subscriptions", "list") == []


@pytest.mark.postgres
def test_the_password_is_never_printed(tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test server trusts every local connection, so a URL may carry any password."""
    monkeypatch.setenv("AE_SECRET_KEY", TEST_SECRET_KEY)
    with_password = postgres_url.replace("://postgres@", "://postgres:Pw-9f3e@", 1)
    assert with_password != postgres_url
    config = write_config(tmp_path, database=with_password)
    shown = postgres_url.replace("://postgres@", "://postgres:***@", 1)
    assert ok_json(config, "status")["database"] == shown
    assert ok_json(config, "db", "migrate")["database"] == shown
    for command in (["status"], ["db", "status"], ["config", "show"], ["config", "show", "--json"]):
        result = ok(config, *command)
        assert "Pw-9f3e" not in result.stdout + result.stderr
