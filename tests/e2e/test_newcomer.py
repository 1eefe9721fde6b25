"""A newcomer's first commands (issue 20): a missing command, a misspelt event, no config yet.

Each runs the installed `ae` console script in a child process, as a person types it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Receiver, ok, write_config
from cryptography.fernet import Fernet

EVENT = "sales.order.created"

AE = str(Path(sys.executable).with_name("ae"))


def run_ae(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AE_")} | {"COLUMNS": "100"}
    return subprocess.run([AE, *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=env)


@pytest.mark.parametrize("group", ["", "consume", "subscriptions", "events", "config", "tokens", "notifiers"])
def test_a_missing_command_prints_help_and_a_real_sentence(group: str, tmp_path: Path) -> None:
    result = run_ae(*([group] if group else []), cwd=tmp_path)
    assert result.returncode == 2
    assert "Usage: ae" in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ae: error:")]
    assert errors == [
        "ae: error: a command is missing: give one of the commands listed above "
        f"(see `{' '.join(['ae', group]).strip()} --help`)"
    ]
    assert "error:  " not in result.stderr


def test_a_misspelt_event_gets_a_did_you_mean_and_nothing_is_queued(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = run_ae("--config", str(config), "publish", "sales.order.creatd", "--data", "{}")
    assert result.returncode == 2
    assert result.stderr.strip().endswith("(did you mean 'sales.order.created'?)"), result.stderr
    status = run_ae("--config", str(config), "status", "--json")
    assert json.loads(status.stdout)["queues"]["trigger"] == 0


def test_a_missing_config_suggests_ae_init(tmp_path: Path) -> None:
    result = run_ae("events", "list", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        f"ae: error: config file {tmp_path / 'events.toml'} not found "
        "(run `ae init` to write one here, or point --config / AE_CONFIG at one)\n"
    )
    assert run_ae("init", cwd=tmp_path).returncode == 0
    assert run_ae("events", "list", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_each_attempt_records_where_it_went_and_trace_shows_it_where_it_differs(
    backend: str, tmp_path: Path, receiver: Receiver, request: pytest.FixtureRequest
) -> None:
    env = {"AE_SECRET_KEY": Fernet.generate_key().decode()}
    database = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    config = write_config(tmp_path, **({"database": database} if database else {}))
    old = receiver.script("/old", 500).replace("http://", "http://shop:hunter2@")
    ok(config, "subscribe", EVENT, old, "--secret", "s", env=env)
    ok(config, "publish", EVENT, "--data", '{"increment_id": "CK1"}', env=env)
    ok(config, "consume", "trigger", "--until-empty", env=env)
    ok(config, "subscriptions", "update", "1", "--url", receiver.endpoint("/new"), env=env)
    ok(config, "consume", "retry", "--until-empty", env=env)
    [uuid] = {r["uuid"] for r in json.loads(ok(config, "logs", "--json", env=env).stdout)}
    traced = json.loads(ok(config, "trace", uuid, "--json", env=env).stdout)
    redacted_old = old.replace("shop:hunter2@", "***@")
    assert [(a["recipient_url"], a["sent_elsewhere"]) for a in traced["attempts"]] == [
        (redacted_old, True),
        (receiver.endpoint("/new"), False),
    ]
    assert traced["recipient_url"] == receiver.endpoint("/new")
    shown = ok(config, "trace", uuid, env={**env, "COLUMNS": "200"}).stdout
    assert "hunter2" not in shown and "hunter2" not in json.dumps(traced)
    header, _rule, first, second = shown.split("Attempts\n")[1].split("\n\n")[0].splitlines()
    assert "sent to" in header
    assert redacted_old in first and receiver.endpoint("/new") not in second


def test_a_trace_whose_attempts_all_went_to_the_current_url_has_no_sent_to_column(
    tmp_path: Path, receiver: Receiver
) -> None:
    config = write_config(tmp_path)
    ok(config, "subscribe", EVENT, receiver.endpoint("/hook"), "--secret", "s")
    ok(config, "publish", EVENT, "--data", "{}")
    ok(config, "consume", "all", "--until-empty")
    [row] = json.loads(ok(config, "logs", "--json").stdout)
    [attempt] = json.loads(ok(config, "trace", row["uuid"], "--json").stdout)["attempts"]
    assert (attempt["recipient_url"], attempt["sent_elsewhere"]) == (receiver.endpoint("/hook"), False)
    assert "sent to" not in ok(config, "trace", row["uuid"], env={"COLUMNS": "200"}).stdout
