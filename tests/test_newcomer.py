"""A newcomer's first commands (issue 20): a missing command, a misspelt event, no config yet.

Each runs the installed `ae` console script in a child process, as a person types it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_config

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
