"""A read-only store (issue 7, item 12) and a full disk under the search index (item 8).

Both need a file system that really refuses writes, which root cannot get from
file modes: each test runs `ae` inside a private mount namespace (`unshare -m`)
with a read-only bind mount or a tiny tmpfs. Where that is not allowed the tests
skip and say why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EVENT, Receiver, ok, ok_json, write_config


def _namespaces_work() -> str | None:
    if shutil.which("unshare") is None:
        return "unshare is not installed"
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k none /mnt"], capture_output=True, text=True
    )
    return None if probe.returncode == 0 else f"cannot mount in a private namespace: {probe.stderr.strip()}"


PROBLEM = _namespaces_work()
pytestmark = pytest.mark.skipif(PROBLEM is not None, reason=str(PROBLEM))


RUNNER = """
import json, sys
from typer.testing import CliRunner
from asyncevents_cli.cli import app
config, commands = sys.argv[1], json.loads(sys.argv[2])
results = []
for command in commands:
    result = CliRunner().invoke(app, ["--config", config, *command])
    results.append([result.exit_code, result.stdout, result.stderr])
print(json.dumps(results))
"""


def in_namespace(setup: str, folder: Path, *commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """Run `setup` (mounts), then each `ae` command, in one private mount namespace and
    one Python process; each command's exit code, stdout and stderr come back."""
    script = f'{setup} && exec {sys.executable} -c "$0" "$1" "$2"'
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, RUNNER, str(folder / "events.toml"), json.dumps(commands)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return [
        subprocess.CompletedProcess(command, code, out, err)
        for command, (code, out, err) in zip(commands, json.loads(done.stdout))
    ]


def test_read_commands_work_on_a_read_only_store_and_writes_fail_clearly(tmp_path: Path, receiver: Receiver) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    config = write_config(folder, max_deaths=1)
    ok(config, "subscribe", EVENT, receiver.script("/hook", 500), "--secret", "s")
    ok(config, "publish", EVENT, "--data", '{"increment_id": "RO1"}')
    ok(config, "consume", "all", "--until-empty")
    uuid = ok_json(config, "logs")[0]["uuid"]
    before = (folder / ".ae" / "ae.db").read_bytes()

    reads = [
        ["subscriptions", "list"],
        ["status"],
        ["logs"],
        ["trace", uuid],
        ["deadletters"],
        ["search", "RO1", "--json"],
        ["logs", "--json"],
    ]
    writes = [
        ["publish", EVENT, "--data", "{}"],
        ["subscribe", EVENT, "http://127.0.0.1:9/x", "--secret", "s"],
        ["subscriptions", "disable", "1"],
        ["logs", "prune", "--older-than", "0", "--yes"],
        ["replay", uuid],
        ["consume", "all", "--until-empty"],
        ["deadletters", "purge", "--yes"],
    ]
    results = in_namespace(f"mount --bind -o ro {folder} {folder}", folder, *reads, *writes)
    for result in results[: len(reads)]:
        assert result.returncode == 0 and result.stdout, (result.args, result.stderr)
    assert json.loads(results[5].stdout)["total"] == 2  # the attempt and its retry
    assert len(json.loads(results[6].stdout)) == 2
    for result in results[len(reads) :]:
        assert result.returncode == 1, (result.args, result.stdout, result.stderr)
        assert result.stderr.splitlines() == [result.stderr.strip()] and "is read-only" in result.stderr
    assert (folder / ".ae" / "ae.db").read_bytes() == before


def test_a_full_disk_under_the_search_index_is_one_clear_line(tmp_path: Path, receiver: Receiver) -> None:
    source = tmp_path / "source"
    source.mkdir()
    config = write_config(source, indexing=False)
    ok(config, "subscribe", EVENT, receiver.endpoint("/hook"), "--secret", "s")
    batch = tmp_path / "batch.jsonl"
    batch.write_text(
        "".join(json.dumps({"n": n, "text": " ".join(f"w{n}x{i}" for i in range(400))}) + "\n" for n in range(60))
    )
    ok(config, "publish", EVENT, "--batch", str(batch))
    ok(config, "consume", "all", "--until-empty")
    small = tmp_path / "small"
    small.mkdir()
    # The store fits, with room for SQLite's own files; the index does not.
    setup = (
        f"mount -t tmpfs -o size=4m none {small} && cp -a {source}/. {small}/ &&"
        f" sed -i 's/indexing = false/indexing = true/' {small}/events.toml &&"
        f" free=$(df -k --output=avail {small} | tail -1) &&"
        f" dd if=/dev/zero of={small}/filler bs=1k count=$((free - 160)) 2>/dev/null"
    )
    rebuild, search = in_namespace(setup, small, ["index", "rebuild"], ["search", "w7x3"])
    for result in (rebuild, search):
        assert result.returncode == 1, (result.args, result.stdout, result.stderr)
        errors = [line for line in result.stderr.splitlines() if line.startswith("ae:")]
        assert len(errors) == 1 and "No space left on device" in errors[0], result.stderr
        assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
