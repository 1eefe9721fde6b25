"""The PostgreSQL store going away under commands and consumers, on a real
server: the module's own database stops accepting connections (and its
sessions are ended), as if the server were down, then comes back."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Receiver, ae, assert_error, ok, write_config
from postgres_db import TEST_SECRET_KEY, postgres_admin_url

EVENT = "sales.order.created"
pytestmark = pytest.mark.postgres


def set_reachable(url: str, reachable: bool) -> None:
    """Let the database accept connections again, or refuse them and end its sessions."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_admin_url(), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if reachable else "false"}')
        if not reachable:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


@pytest.fixture
def outage(postgres_url: str) -> Iterator[str]:
    yield postgres_url
    set_reachable(postgres_url, True)


def test_commands_exit_3_while_the_database_refuses_connections(
    tmp_path: Path, outage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AE_SECRET_KEY", TEST_SECRET_KEY)
    config = write_config(tmp_path, database=outage)
    ok(config, "db", "migrate")
    set_reachable(outage, False)
    for command in (["status"], ["subscriptions", "list"], ["publish", EVENT, "--data", "{}"]):
        assert_error(ae(config, *command), 3, "cannot reach the database", "not currently accepting connections")
    set_reachable(outage, True)
    ok(config, "status")


def test_a_consumer_waits_for_the_database_and_then_delivers_everything(
    tmp_path: Path, outage: str, receiver: Receiver
) -> None:
    env = {**os.environ, "AE_SECRET_KEY": TEST_SECRET_KEY}
    config = write_config(tmp_path, database=outage)
    ok(config, "subscribe", EVENT, receiver.endpoint("/hook"), "--secret", "pw", env=env)
    for n in range(20):
        ok(config, "publish", EVENT, "--data", f'{{"n": {n}}}', env=env)
    set_reachable(outage, False)
    consumer = subprocess.Popen(
        [sys.executable, "-m", "asyncevents_cli", "--config", str(config), "consume", "all", "--until-empty"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(consumer.stderr or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any("reconnecting in" in line for line in lines) and time.monotonic() < deadline:
            assert consumer.poll() is None, "".join(lines)
            time.sleep(0.1)
        assert any("reconnecting in" in line for line in lines), "".join(lines)
        set_reachable(outage, True)
        assert consumer.wait(120) == 0, "".join(lines)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait()
    reader.join(10)
    assert sorted(r.json["data"]["n"] for r in receiver.to("/hook")) == list(range(20))
    assert "cannot reach the database" in "".join(lines) and "Traceback" not in "".join(lines)
