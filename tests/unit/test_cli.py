"""The `ae` command, end to end through Click's test runner, sqlite-utils style.

Every test invokes the real command on real SQLite files in a temporary folder
and asserts the exit code, stdout and stderr separately. No mocks.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from conftest import (
    EVENT,
    ORDER,
    Receiver,
    ae,
    assert_error,
    db_path,
    environ_without_ae,
    ok,
    ok_json,
    runner,
    subscribe,
    write_config,
)

from asyncevents_cli.cli import app
from asyncevents_cli.errors import NotFound
from asyncevents_cli.operator_events import OPERATOR_EVENTS


@pytest.fixture(autouse=True)
def _restore_signal_handlers() -> Iterator[None]:
    """`ae consume` installs SIGINT/SIGTERM handlers; keep them out of the test process."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def row_counts(config: Path) -> dict[str, int] | None:
    """Rows per table in the config's database, or None when there is no database file."""
    path = db_path(config)
    if not path.exists():
        return None
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def populated(config: Path) -> Path:
    """A database with one subscription and one queued message, so every table exists."""
    subscribe(config, "http://127.0.0.1:9/hook", "--secret", "s")
    ok(config, "publish", EVENT, "--data", json.dumps(ORDER))
    counts = row_counts(config)
    assert counts is not None and counts["subscriptions"] == 1 and counts["queue_messages"] == 1
    return config


@pytest.fixture
def delivered(config: Path, receiver: Receiver) -> dict[str, Any]:
    """One event delivered to the receiver through the CLI: the round trip."""
    subscribe_result = ok(config, "subscribe", EVENT, receiver.endpoint("/hook"))
    secret = subscribe_result.stderr.splitlines()[0].removeprefix("secret: ")
    subscription_id = int(subscribe_result.stdout)
    message_id = ok(config, "publish", EVENT, "--data", json.dumps(ORDER)).stdout.strip()
    consumed = ok(config, "consume", "all", "--until-empty")
    assert "handled 1 message(s)" in consumed.stderr
    logs = ok_json(config, "logs")
    assert len(logs) == 1
    return {
        "config": config,
        "secret": secret,
        "subscription_id": subscription_id,
        "message_id": message_id,
        "uuid": logs[0]["uuid"],
        "log": logs[0],
    }


# -- exit codes and bad configuration -----------------------------------------------

BAD_CONFIGS = [
    pytest.param('[events."sales.order.created"\ndescription = "x"\n', ["invalid TOML"], id="malformed-toml"),
    pytest.param(
        '[events."sales.order.created"]\ndescripton = "x"\n',
        ["descripton", "sales.order.created"],
        id="unknown-event-key",
    ),
    pytest.param(
        '[events."sales.order.created"]\n[settings]\nmax_death = 3\n',
        ["[settings]", "max_death"],
        id="unknown-settings-key",
    ),
    pytest.param(
        '[events."sales.order.created"]\n[subscriptions]\nx = 1\n', ["subscriptions"], id="unknown-top-level-table"
    ),
    pytest.param(
        '[events."sales order!"]\ndescription = "x"\n', ["invalid event name", "sales order!"], id="invalid-event-name"
    ),
    pytest.param('[events."sales.order.created"]\n[settings]\nqueue = "kafka"\n', ["queue", "kafka"], id="queue-kafka"),
    pytest.param(
        '[events."sales.order.created"]\n[settings]\nmax_deaths = -1\n',
        ["max_deaths", "between 0 and 1000"],
        id="negative-max-deaths",
    ),
]


@pytest.mark.parametrize("text, fragments", BAD_CONFIGS)
@pytest.mark.parametrize(
    "command",
    [
        ["subscribe", EVENT, "http://127.0.0.1:9/hook"],
        ["publish", EVENT, "--data", "{}"],
        ["events", "list"],
    ],
)
def test_bad_config_exits_2_and_writes_nothing(
    tmp_path: Path, text: str, fragments: list[str], command: list[str]
) -> None:
    path = tmp_path / "events.toml"
    path.write_text(text)
    assert_error(ae(path, *command), 2, str(path), *fragments)
    assert not db_path(path).exists()
    assert not (tmp_path / ".ae").exists()


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    assert_error(ae(missing, "events", "list"), 2, str(missing), "not found")


@pytest.mark.parametrize(
    "variable, value, fragments",
    [
        ("AE_MAX_DEATHS", "abc", ["AE_MAX_DEATHS", "max_deaths", "int", "abc"]),
        ("AE_INDEXING", "maybe", ["AE_INDEXING", "bool"]),
        ("AE_BACKOFF_EXPONENT", "fast", ["AE_BACKOFF_EXPONENT", "float"]),
        ("AE_QUEUE", "kafka", ["AE_QUEUE", "kafka"]),
    ],
)
def test_bad_environment_value_exits_2(config: Path, variable: str, value: str, fragments: list[str]) -> None:
    result = ae(config, "subscribe", EVENT, "http://127.0.0.1:9/hook", env={variable: value})
    assert_error(result, 2, *fragments)
    assert row_counts(config) is None


def test_ae_debug_lets_the_exception_propagate(populated: Path) -> None:
    quiet = ae(populated, "trace", "no-such-uuid")
    assert_error(quiet, 1, "no-such-uuid")
    loud = ae(populated, "trace", "no-such-uuid", env={"AE_DEBUG": "1"})
    assert isinstance(loud.exception, NotFound)
    assert loud.exit_code != 0
    assert "ae: error:" not in loud.stderr


def test_unreachable_amqp_broker_exits_3_and_publishes_nothing(config: Path) -> None:
    if importlib.util.find_spec("asyncevents_cli.queues.amqp") is None:
        pytest.skip("the AMQP backend (asyncevents_cli/queues/amqp.py) has not landed yet")
    env = {"AE_QUEUE": "amqp", "AE_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F"}
    started = time.monotonic()
    result = ae(config, "publish", EVENT, "--data", json.dumps(ORDER), env=env)
    assert time.monotonic() - started < 10
    assert_error(result, 3, "127.0.0.1:1")
    # Nothing fell back to the embedded queue either.
    assert not (row_counts(config) or {}).get("queue_messages")
    assert ok_json(config, "status")["queues"]["trigger"] == 0
    # Reading commands on the same backend fail the same way, and no password is printed.
    env["AE_AMQP_URL"] = "amqp://guest:hunter2@127.0.0.1:1/%2F"
    assert "hunter2" not in assert_error(ae(config, "status", env=env), 3)
    assert "hunter2" not in assert_error(ae(config, "publish", EVENT, "-d", "{}", env=env), 3)


def test_corrupt_database_is_one_line_exit_1(config: Path) -> None:
    db_path(config).parent.mkdir()
    db_path(config).write_bytes(b"not a database " * 100)
    assert_error(ae(config, "status"), 1, "cannot open database", str(db_path(config)))
    assert db_path(config).read_bytes() == b"not a database " * 100


def test_database_path_that_is_a_folder_is_one_line_exit_1(config: Path) -> None:
    assert_error(ae(config, "status", env={"AE_DATABASE": str(config.parent)}), 1, "cannot open database")


def test_database_under_a_file_is_a_clear_error(config: Path) -> None:
    assert_error(ae(config, "status", env={"AE_DATABASE": str(config / "ae.db")}), 1, "cannot open database")


# -- bad input writes nothing -------------------------------------------------------


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--data", "not json"], ["--data", "not valid JSON"]),
        (["--data", "[1, 2]"], ["JSON object", "list"]),
        (["--data", '"a string"'], ["JSON object", "str"]),
        (["--data", "42"], ["JSON object", "int"]),
        (["--data", "{}", "--data-file", "data.json"], ["give the data once"]),
        (["--data", "{}", "-"], ["give the data once"]),
        (["--batch", "batch.jsonl", "--data", "{}"], ["cannot be combined"]),
        (["--data-file", "missing.json"], ["cannot read --data-file", "missing.json"]),
        (["--store", "-1"], ["store id", "-1"]),
    ],
)
def test_publish_bad_data_exits_2_and_enqueues_nothing(populated: Path, args: list[str], fragments: list[str]) -> None:
    folder = populated.parent
    (folder / "data.json").write_text("{}")
    (folder / "batch.jsonl").write_text("{}\n")
    args = [str(folder / a) if a.endswith((".json", ".jsonl")) else a for a in args]
    before = row_counts(populated)
    assert_error(ae(populated, "publish", EVENT, *args, input="{}"), 2, *fragments)
    assert row_counts(populated) == before


@pytest.mark.parametrize(
    "event, fragments",
    [
        ("customer.deleted", ["customer.deleted", "not defined", "did you mean 'customer.created'?"]),
        ("catalog.product.saved", ["not defined", "ae events list"]),
        ("sales order!", ["invalid event name", "sales order!"]),
    ],
)
def test_publish_unknown_or_invalid_event_exits_2(config: Path, event: str, fragments: list[str]) -> None:
    assert_error(ae(config, "publish", event, "--data", "{}"), 2, *fragments)
    assert not (row_counts(config) or {}).get("queue_messages")


def test_publish_data_over_one_mib_exits_2(populated: Path) -> None:
    big = populated.parent / "big.json"
    big.write_text(json.dumps({"blob": "x" * (1024 * 1024)}))
    before = row_counts(populated)
    assert_error(ae(populated, "publish", EVENT, "--data-file", str(big)), 2, "larger than", "1024 KiB")
    assert_error(ae(populated, "publish", EVENT, "-", input=big.read_text()), 2, "stdin", "larger than")
    assert row_counts(populated) == before


def test_publish_data_just_under_the_limit_is_accepted(config: Path) -> None:
    text = json.dumps({"blob": "x" * (1024 * 1024 - 20)})
    assert len(text.encode()) <= 1024 * 1024
    ok(config, "publish", EVENT, "-", input=text)
    assert ok_json(config, "status")["queues"]["trigger"] == 1


def test_batch_with_one_bad_line_enqueues_nothing(populated: Path) -> None:
    batch = populated.parent / "orders.jsonl"
    batch.write_text('{"increment_id": "1"}\n{"increment_id": "2"}\n[3]\n{"increment_id": "4"}\n')
    before = row_counts(populated)
    assert_error(ae(populated, "publish", EVENT, "--batch", str(batch)), 2, f"{batch}:3", "list")
    assert row_counts(populated) == before
    assert ok_json(populated, "status")["queues"]["trigger"] == 1


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "not a url", "http://", "http:///path", "mailto:a@b"])
def test_subscribe_non_http_url_exits_2(populated: Path, url: str) -> None:
    before = row_counts(populated)
    assert_error(ae(populated, "subscribe", EVENT, url), 2, "recipient URL", repr(url))
    assert row_counts(populated) == before


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["customer.deleted", "http://127.0.0.1:9/hook"], ["customer.deleted", "not defined"]),
        (["sales order!", "http://127.0.0.1:9/hook"], ["invalid event name"]),
        (
            [EVENT, "http://127.0.0.1:9/hook", "--notifier", "carrier-pigeon"],
            ["unknown notifier", "carrier-pigeon", "http"],
        ),
        ([EVENT, "http://127.0.0.1:9/hook", "--secret", "  "], ["--secret"]),
        ([EVENT, "http://127.0.0.1:9/hook", "--store", "-2"], ["store id"]),
    ],
)
def test_subscribe_bad_input_exits_2(populated: Path, args: list[str], fragments: list[str]) -> None:
    before = row_counts(populated)
    assert_error(ae(populated, "subscribe", *args), 2, *fragments)
    assert row_counts(populated) == before


@pytest.mark.parametrize(
    "command",
    [
        ["subscriptions", "show", "99"],
        ["subscriptions", "enable", "99"],
        ["subscriptions", "disable", "99"],
        ["subscriptions", "delete", "99"],
    ],
)
def test_unknown_subscription_id_exits_1(populated: Path, command: list[str]) -> None:
    before = row_counts(populated)
    assert_error(ae(populated, *command), 1, "no subscription with id 99", "ae subscriptions list")
    assert row_counts(populated) == before


@pytest.mark.parametrize("command", ["trace", "replay"])
def test_unknown_uuid_exits_1(populated: Path, command: str) -> None:
    before = row_counts(populated)
    assert_error(
        ae(populated, command, "0d7b0c8e-0000-0000-0000-000000000000"),
        1,
        "no delivery with uuid 0d7b0c8e-0000-0000-0000-000000000000",
    )
    assert row_counts(populated) == before


def test_enable_with_one_unknown_id_changes_nothing(config: Path) -> None:
    first = subscribe(config, "http://127.0.0.1:9/a", "--secret", "s")
    second = subscribe(config, "http://127.0.0.1:9/b", "--secret", "s")
    ok(config, "subscriptions", "disable", str(first), str(second))
    before = ok_json(config, "subscriptions", "list")
    assert_error(ae(config, "subscriptions", "enable", str(first), "99", str(second)), 1, "99")
    assert ok_json(config, "subscriptions", "list") == before
    assert {s["status"] for s in before} == {"disabled"}


# -- subscriptions ------------------------------------------------------------------


def test_subscriptions_enable_disable_several_and_delete(config: Path) -> None:
    ids = [subscribe(config, f"http://127.0.0.1:9/{n}", "--secret", "s") for n in range(3)]
    assert ids == [1, 2, 3]

    result = ok(config, "subscriptions", "disable", "1", "3")
    assert result.stdout == "1\tdisabled\n3\tdisabled\n"
    statuses = {s["subscription_id"]: s["status"] for s in ok_json(config, "subscriptions", "list")}
    assert statuses == {1: "disabled", 2: "enabled", 3: "disabled"}

    result = ok(config, "subscriptions", "enable", "1", "3")
    assert result.stdout == "1\tenabled\n3\tenabled\n"
    statuses = {s["subscription_id"]: s["status"] for s in ok_json(config, "subscriptions", "list")}
    assert statuses == {1: "enabled", 2: "enabled", 3: "enabled"}

    result = ok(config, "subscriptions", "delete", "2", "--yes")
    assert result.stdout == "2\tdeleted\n"
    assert [s["subscription_id"] for s in ok_json(config, "subscriptions", "list")] == [1, 3]
    assert_error(ae(config, "subscriptions", "show", "2"), 1, "no subscription with id 2")
    assert row_counts(config)["subscriptions"] == 2


def test_subscriptions_list_filters_by_event(config: Path) -> None:
    subscribe(config, "http://127.0.0.1:9/a", "--secret", "s")
    subscribe(config, "http://127.0.0.1:9/b", "--secret", "s", event="customer.created")
    rows = ok_json(config, "subscriptions", "list", "--event", "customer.created")
    assert [(r["subscription_id"], r["event_name"]) for r in rows] == [(2, "customer.created")]


def test_subscriptions_show(config: Path) -> None:
    subscribe(config, "http://127.0.0.1:9/hook", "--secret", "s", "--store", "2")
    row = ok_json(config, "subscriptions", "show", "1")
    assert row["subscription_id"] == 1
    assert row["event_name"] == EVENT
    assert row["recipient_url"] == "http://127.0.0.1:9/hook"
    assert row["status"] == "enabled"
    assert row["notifier"] == "http"
    assert row["store_id"] == 2
    human = ok(config, "subscriptions", "show", "1")
    assert "http://127.0.0.1:9/hook" in human.stdout and human.stderr == ""


def test_generated_token_is_printed_once_on_stderr_and_never_again(delivered: dict[str, Any]) -> None:
    config, secret = delivered["config"], delivered["secret"]
    assert len(secret) >= 32
    # It signed the delivery, so it is the real token.
    for command in (
        ["subscriptions", "list"],
        ["subscriptions", "list", "--json"],
        ["subscriptions", "show", "1"],
        ["subscriptions", "show", "1", "--json"],
        ["status"],
        ["status", "--json"],
        ["logs"],
        ["logs", "--json"],
        ["trace", delivered["uuid"]],
        ["trace", delivered["uuid"], "--json"],
    ):
        result = ok(config, *command)
        # A fragment too, in case a table folds the token over two lines.
        for text in (secret, secret[:12], secret[-12:]):
            assert text not in result.stdout, command
            assert text not in result.stderr, command
    assert "verification_token" not in ok(config, "subscriptions", "show", "1", "--json").stdout


def test_subscribe_prints_only_the_id_on_stdout_and_the_secret_on_stderr(config: Path) -> None:
    result = ok(config, "subscribe", EVENT, "http://127.0.0.1:9/hook")
    assert result.stdout == "1\n"
    lines = result.stderr.splitlines()
    assert lines[0].startswith("secret: ")
    assert "will not be shown again" in result.stderr


def test_given_secret_is_never_printed(config: Path) -> None:
    secret = "my-own-very-secret-token"
    result = ok(config, "subscribe", EVENT, "http://127.0.0.1:9/hook", "--secret", secret)
    assert result.stdout == "1\n"
    assert result.stderr == ""
    for command in (
        ["subscriptions", "list"],
        ["subscriptions", "list", "--json"],
        ["subscriptions", "show", "1"],
        ["subscriptions", "show", "1", "--json"],
        ["status", "--json"],
        ["status"],
    ):
        result = ok(config, *command)
        assert secret not in result.stdout + result.stderr


# -- publish ------------------------------------------------------------------------


def test_publish_prints_a_message_id(config: Path) -> None:
    result = ok(config, "publish", EVENT, "--data", json.dumps(ORDER))
    message_id = result.stdout.strip()
    assert result.stdout == message_id + "\n"
    assert len(message_id) >= 16 and " " not in message_id
    assert result.stderr == ""
    second = ok(config, "publish", EVENT, "-d", "{}").stdout.strip()
    assert second != message_id
    assert ok_json(config, "status")["queues"]["trigger"] == 2


def test_publish_without_data_refuses_unless_asked_for_an_empty_object(config: Path) -> None:
    # CliRunner's stdin is not a terminal and is empty here: nothing to publish.
    assert_error(ae(config, "publish", EVENT), 2, "no data to publish", "stdin was empty", "--data '{}'")
    assert ok_json(config, "status")["queues"]["trigger"] == 0
    ok(config, "publish", EVENT, "--data", "{}")
    assert ok_json(config, "status")["queues"]["trigger"] == 1


def test_publish_on_a_terminal_without_data_refuses(config: Path) -> None:
    """With a terminal on stdin there is nothing to read: one line, exit 2, nothing queued."""
    import os
    import pty

    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "asyncevents_cli", "--config", str(config), "publish", EVENT],
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("AE_")},
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 2, done
    assert done.stderr.splitlines() == [
        "ae: error: no data to publish: give --data JSON, --data-file PATH, or pipe it in "
        "(--data '{}' publishes an empty object)"
    ]
    assert ok_json(config, "status")["queues"]["trigger"] == 0


def test_publish_reads_piped_data_without_a_dash(config: Path, receiver: Receiver) -> None:
    subscribe(config, receiver.endpoint("/hook"), "--secret", "s")
    ok(config, "publish", EVENT, input=json.dumps({"increment_id": "X"}))
    ok(config, "consume", "all", "--until-empty")
    assert [r.json["data"] for r in receiver.to("/hook")] == [{"increment_id": "X"}]


def test_publish_reads_stdin_and_data_file(config: Path, receiver: Receiver) -> None:
    subscribe(config, receiver.endpoint("/hook"), "--secret", "s")
    ok(config, "publish", EVENT, "-", input=json.dumps({"from": "stdin"}))
    data_file = config.parent / "order.json"
    data_file.write_text(json.dumps({"from": "file"}))
    ok(config, "publish", EVENT, "--data-file", str(data_file))
    assert ok_json(config, "status")["queues"]["trigger"] == 2
    ok(config, "consume", "all", "--until-empty")
    assert sorted(r.json["data"]["from"] for r in receiver.to("/hook")) == ["file", "stdin"]


def test_publish_batch_enqueues_every_line(config: Path) -> None:
    batch = config.parent / "orders.jsonl"
    lines = [json.dumps({"increment_id": f"CK{n:08d}"}) for n in range(25)]
    batch.write_text("\n".join(lines[:10]) + "\n\n" + "\n".join(lines[10:]) + "\n")  # a blank line is skipped
    result = ok(config, "publish", EVENT, "--batch", str(batch))
    ids = result.stdout.split()
    assert len(ids) == 25 == len(set(ids))
    assert "published 25 sales.order.created event(s)" in result.stderr
    assert ok_json(config, "status")["queues"]["trigger"] == 25


# -- reading commands: --json -------------------------------------------------------


def test_events_list_json(config: Path) -> None:
    rows = ok_json(config, "events", "list")
    assert rows[:2] == [
        {"name": "customer.created", "description": "A customer signed up", "service": None, "built_in": False},
        {"name": EVENT, "description": "An order was placed", "service": None, "built_in": False},
    ]
    # then the operator events ae raises itself (see test_operator_events.py)
    assert [r["name"] for r in rows[2:]] == sorted(OPERATOR_EVENTS) and all(r["built_in"] for r in rows[2:])
    human = ok(config, "events", "list")
    assert EVENT in human.stdout and "An order was placed" in human.stdout
    assert human.stderr == ""
    # Reading definitions never creates the database.
    assert row_counts(config) is None


def test_config_show_json_reports_sources(tmp_path: Path) -> None:
    config = write_config(tmp_path, max_deaths=3, backoff_exponent=1.5)
    data = ok_json(config, "config", "show", env={"AE_MAX_DEATHS": "7", "AE_AMQP_URL": "amqp://u:pw@h:5672/v"})
    assert data["config_file"] == str(config)
    assert data["database_path"] == str(tmp_path / ".ae" / "ae.db")
    settings = {s["name"]: s for s in data["settings"]}
    assert settings["max_deaths"]["value"] == 7  # the environment wins over the file
    assert settings["max_deaths"]["source"] == "env AE_MAX_DEATHS"
    assert settings["backoff_exponent"] == {**settings["backoff_exponent"], "value": 1.5, "source": "file"}
    assert settings["indexing"]["value"] is True and settings["indexing"]["source"] == "default"
    assert settings["amqp_url"]["value"] == "amqp://u:***@h:5672/v"
    assert all(s["help"] for s in settings.values())
    human = ok(config, "config", "show", env={"AE_MAX_DEATHS": "7"})
    assert "env AE_MAX_DEATHS" in human.stdout and "pw" not in human.stdout
    assert row_counts(config) is None


def test_config_option_beats_ae_config(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    chosen = write_config(tmp_path / "a", events={"a.event": {}})
    other = write_config(tmp_path / "b", events={"b.event": {}})
    rows = ok_json(chosen, "events", "list", env={"AE_CONFIG": str(other)})
    assert [r["name"] for r in rows if not r["built_in"]] == ["a.event"]
    result = runner.invoke(app, ["events", "list", "--json"], env={"AE_CONFIG": str(other)})
    assert result.exit_code == 0, result.stderr
    assert [r["name"] for r in json.loads(result.stdout) if not r["built_in"]] == ["b.event"]


def test_status_json_on_an_empty_database(config: Path) -> None:
    data = ok_json(config, "status")
    assert data["backend"] == "db"
    assert data["database"] == str(db_path(config))
    assert data["queues"] == {"trigger": 0, "retry_due": 0, "retry_delayed": 0, "dead_letters": 0, "in_flight": 0}
    assert data["subscriptions"] == []
    assert "trigger" in ok(config, "status").stdout
    assert ok_json(config, "deadletters") == []


def test_reading_commands_json_after_a_delivery(delivered: dict[str, Any]) -> None:
    config, uuid = delivered["config"], delivered["uuid"]
    assert [r["subscription_id"] for r in ok_json(config, "subscriptions", "list")] == [1]
    assert ok_json(config, "subscriptions", "show", "1")["subscription_id"] == 1
    assert ok_json(config, "events", "list")[1]["name"] == EVENT
    assert ok_json(config, "config", "show")["config_file"] == str(config)

    logs = ok_json(config, "logs")
    assert logs[0]["uuid"] == uuid and logs[0]["success"] is True and logs[0]["status_code"] == 200
    assert ok_json(config, "logs", "--failed") == []
    assert ok_json(config, "logs", "--event", "customer.created") == []

    status = ok_json(config, "status")
    assert status["queues"]["trigger"] == 0
    [row] = status["subscriptions"]
    assert (row["attempts"], row["succeeded"], row["failed"], row["delivered"]) == (1, 1, 0, 1)

    trace = ok_json(config, "trace", uuid)
    assert trace["uuid"] == uuid
    assert trace["status"] == "Delivered"
    assert trace["subscription_status"] == "enabled"
    assert trace["payload"] == {"data": ORDER}
    assert len(trace["attempts"]) == 1 and trace["attempts"][0]["success"] is True
    assert ok_json(config, "deadletters") == []


# -- the round trip against a real receiver -----------------------------------------


def test_round_trip_subscribe_publish_consume_trace(delivered: dict[str, Any], receiver: Receiver) -> None:
    config, uuid = delivered["config"], delivered["uuid"]
    [request] = receiver.to("/hook")
    assert request.json == {"data": ORDER}
    assert request.signed_with(delivered["secret"])
    assert delivered["log"]["subscription_id"] == delivered["subscription_id"]

    trace = ok(config, "trace", uuid)
    assert trace.stderr == ""
    assert "Delivered" in trace.stdout
    assert "Delivered with" not in trace.stdout
    assert uuid in trace.stdout
    assert "CK00000101" in trace.stdout and "45.5" in trace.stdout

    # The queue is drained: consuming again handles nothing.
    again = ok(config, "consume", "all", "--until-empty")
    assert "handled 0 message(s)" in again.stderr
    assert len(receiver.requests) == 1


def test_round_trip_with_a_retry_then_replay(config: Path, receiver: Receiver) -> None:
    subscribe(config, receiver.script("/flaky", 500, 200), "--secret", "s")
    ok(config, "publish", EVENT, "--data", json.dumps(ORDER))
    ok(config, "consume", "all", "--until-empty")
    logs = ok_json(config, "logs")
    assert [r["success"] for r in logs] == [True, False]  # newest first
    uuid = logs[0]["uuid"]
    assert logs[1]["uuid"] == uuid
    assert ok_json(config, "trace", uuid)["status"] == "Delivered with 1 retry"
    assert [r["uuid"] for r in ok_json(config, "logs", "--failed")] == [uuid]

    replayed = ok(config, "replay", uuid)
    assert f"replaying {uuid} to subscription 1" in replayed.stdout
    queues = ok_json(config, "status")["queues"]
    assert queues["retry_due"] + queues["retry_delayed"] == 1
    ok(config, "consume", "retry", "--until-empty")
    assert len(receiver.to("/flaky")) == 3
    assert ok_json(config, "trace", uuid)["status"] == "Delivered with 2 retries"


def test_consume_trigger_max_messages_stops_after_one(config: Path, receiver: Receiver) -> None:
    subscribe(config, receiver.endpoint("/hook"), "--secret", "s")
    for n in range(3):
        ok(config, "publish", EVENT, "--data", json.dumps({"n": n}))
    started = time.monotonic()
    result = ok(config, "consume", "trigger", "--max-messages", "1")
    assert time.monotonic() - started < 5
    assert "handled 1 message(s)" in result.stderr
    assert result.stdout == ""
    assert len(receiver.to("/hook")) == 1
    assert ok_json(config, "status")["queues"]["trigger"] == 2


def test_replay_to_a_disabled_subscription_exits_1(delivered: dict[str, Any]) -> None:
    config = delivered["config"]
    ok(config, "subscriptions", "disable", "1")
    before = row_counts(config)
    assert_error(ae(config, "replay", delivered["uuid"]), 1, "disabled", "ae subscriptions enable 1")
    assert row_counts(config) == before


def test_logs_prune(delivered: dict[str, Any]) -> None:
    config = delivered["config"]
    assert ok(config, "logs", "prune", "--yes").stdout == "pruned 0 log entries older than 30 day(s)\n"
    assert ok(config, "logs", "prune", "--older-than", "0", "-y").stdout == "pruned 1 log entry older than 0 day(s)\n"
    assert ok_json(config, "logs") == []


# -- demo ---------------------------------------------------------------------------


def test_demo(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = environ_without_ae()
    env.update(TMPDIR=str(scratch), AE_MAX_DEATHS="0")  # the demo ignores the shell's AE_* settings
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "asyncevents_cli", "demo"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "Delivered with 1 retry" in result.stdout
    assert "Traceback" not in result.stderr
    assert took < 15, took
    assert list(scratch.glob("ae-demo-*")) == []
    assert list(tmp_path.glob("*.toml")) == [] and not (tmp_path / ".ae").exists()


# -- help ---------------------------------------------------------------------------


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command under `command`. Duck-typed: recent Typer ships its own copy of Click."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from walk(sub, (*path, name))


COMMANDS = list(walk(typer.main.get_command(app)))


def test_command_tree_is_complete() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {
        "events list",
        "config show",
        "subscribe",
        "subscriptions list",
        "subscriptions show",
        "subscriptions enable",
        "subscriptions disable",
        "subscriptions delete",
        "publish",
        "consume trigger",
        "consume retry",
        "consume all",
        "logs",
        "logs prune",
        "trace",
        "replay",
        "status",
        "demo",
    } <= names


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) or "ae" for p, _ in COMMANDS])
def test_every_command_has_help(path: tuple[str, ...], command: Any) -> None:
    assert (command.help or "").strip(), f"`ae {' '.join(path)}` has no help text"
    for param in command.params:
        assert (getattr(param, "help", None) or "").strip(), (
            f"`ae {' '.join(path)}` {param.param_type_name} {param.name} has no help"
        )
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout
    assert "<bool>" not in result.stdout, "a flag is shown as taking a value"
    assert command.help.strip().splitlines()[0][:40] in " ".join(result.stdout.split())


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["subscriptions", "show", "abc"], "valid integer"),
        (["publish"], "Missing argument"),
        (["status", "--bogus"], "No such option"),
        (["consume", "all", "--max-messages", "0"], "--max-messages"),
    ],
)
def test_usage_errors_are_one_line_exit_2(config: Path, args: list[str], fragment: str) -> None:
    result = ae(config, *args)
    assert_error(result, 2, fragment)
    assert "--help" in result.stderr


@pytest.mark.parametrize("command", [["logs"], ["subscriptions", "list"]])
def test_event_filters_reject_impossible_names_but_accept_undefined_ones(config: Path, command: list[str]) -> None:
    assert_error(ae(config, *command, "--event", "sales order!"), 2, "invalid event name")
    assert json.loads(ok(config, *command, "--event", "retired.event", "--json").stdout) == []


def test_deadletters_shows_a_parked_trigger_and_why(config: Path) -> None:
    ok(config, "subscribe", EVENT, "http://127.0.0.1:9/never", "--secret", "s")
    # A trigger published for an event that is later removed from events.toml is parked.
    ok(config, "publish", EVENT, "--data", '{"n": 1}')
    config.write_text(config.read_text().replace(f'[events."{EVENT}"]', '[events."other.event"]'))
    ok(config, "consume", "trigger", "--until-empty")
    [row] = ok_json(config, "deadletters")
    assert (row["origin"], row["event_name"], row["arguments"]) == ("trigger", EVENT, {"n": 1})
    assert "not defined" in row["reason"]
    human = ok(config, "deadletters")
    assert EVENT in human.stdout and "ae deadletters requeue" in human.stderr
