"""Hosts that share nothing but the database and broker URLs, for the scale-out tests.

A `Host` is a folder of its own: its events.toml (same events, same shared
store, its own `index_path`), and `ae` processes started there with an
environment of their own (only AE_SECRET_KEY, the same on every host, as a
PostgreSQL store requires). Helpers count what a real receiver got and what the
shared log holds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import Receiver, write_config
from postgres_db import TEST_SECRET_KEY

from asyncevents_cli.runtime import Runtime

EVENT = "sales.order.created"
# Generous: several suites share two cores.
WAIT_SECONDS = 180.0


def shared_settings(kind: str, postgres_url: str, amqp_url: str | None = None) -> dict[str, Any]:
    """`pgdb`: PostgreSQL store and table queue; `pgamqp`: PostgreSQL store, RabbitMQ queue."""
    if kind == "pgamqp":
        assert amqp_url is not None
        return {"database": postgres_url, "queue": "amqp", "amqp_url": amqp_url}
    return {"database": postgres_url, "queue": "db"}


@dataclass
class Host:
    folder: Path
    config: Path

    @classmethod
    def make(cls, folder: Path, **settings: Any) -> Host:
        folder.mkdir(parents=True, exist_ok=True)
        settings.setdefault("index_path", str(folder / "index"))
        return cls(folder, write_config(folder, **settings))

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AE_")}
        env["AE_SECRET_KEY"] = TEST_SECRET_KEY
        return env

    def runtime(self) -> Runtime:
        return Runtime(self.config, environ={"AE_SECRET_KEY": TEST_SECRET_KEY})

    def ae(self, *args: str, timeout: float = WAIT_SECONDS) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "asyncevents_cli", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.folder,
            timeout=timeout,
        )

    def consumer(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "asyncevents_cli", "--config", str(self.config), "consume", "all", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            text=True,
            cwd=self.folder,
        )


def wait_until(condition: Callable[[], bool], timeout: float = WAIT_SECONDS, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)


def finish(process: subprocess.Popen, timeout: float = WAIT_SECONDS) -> str:
    """Wait for a consumer; its stderr. It must have exited 0 without a traceback."""
    try:
        _, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    return stderr


def handled(stderr: str) -> int:
    return int(stderr.split("handled ")[1].split()[0])


def received_numbers(receiver: Receiver, path: str, token: str) -> Counter:
    """How often each event number arrived at `path`, counting only correctly signed requests."""
    requests = receiver.to(path)
    assert all(r.signed_with(token) for r in requests), "a request with a wrong signature"
    return Counter(r.json["data"]["n"] for r in requests)


def successes_by_uuid(runtime: Runtime) -> Counter:
    """Logged successes per delivery uuid, from the whole shared log."""
    counts: Counter = Counter()
    last = 0
    while rows := runtime.store.log.logs_after(last, limit=1000):
        counts.update(r["uuid"] for r in rows if r["success"])
        last = rows[-1]["log_id"]
    return counts


def delivery_uuids(receiver: Receiver, path: str) -> Counter:
    """How often each delivery uuid (the idempotency header) reached `path`."""
    return Counter(r.headers["idempotency-key"] for r in receiver.to(path))
