"""A real Prometheus server (Debian's `prometheus`) on a free port, for the metrics tests.

It scrapes the given targets every 0.5 s into a temporary folder. Tests skip
when `prometheus` or `promtool` is missing, and fail instead when
AE_REQUIRE_PROMETHEUS=1 (CI), as the broker and browser tests do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from serving import free_port

SCRAPE_INTERVAL = "500ms"


def require(tool: str) -> str:
    """The path of `tool`; skips (fails under AE_REQUIRE_PROMETHEUS=1) when it is missing."""
    found = shutil.which(tool)
    if found is None:
        problem = f"{tool} is not installed (Debian: apt-get install prometheus)"
        if os.environ.get("AE_REQUIRE_PROMETHEUS", "") not in ("", "0"):
            pytest.fail(f"AE_REQUIRE_PROMETHEUS is set but {problem}")
        pytest.skip(problem)
    return found


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> list[dict]:
        """The instant vector `promql` evaluates to now (Prometheus's HTTP API)."""
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10).json()
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def value(self, promql: str) -> float | None:
        """The single number `promql` gives, or None while it gives nothing."""
        result = self.query(promql)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, promql: str, expected: float, timeout: float = 90.0) -> float | None:
        """Until `promql` reads `expected` (new scrapes arrive every 0.5 s); the last reading."""
        deadline = time.monotonic() + timeout
        value = self.value(promql)
        while value != expected and time.monotonic() < deadline:
            time.sleep(0.25)
            value = self.value(promql)
        return value


@contextmanager
def prometheus(folder: Path, targets: list[str]) -> Iterator[Prometheus]:
    """Prometheus scraping `targets` (host:port) every 0.5 s, stopped and removed after."""
    binary = require("prometheus")
    folder.mkdir(parents=True, exist_ok=True)
    listed = ", ".join(f'"{t}"' for t in targets)
    (folder / "prometheus.yml").write_text(
        f"global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  scrape_timeout: 400ms\n"
        f"scrape_configs:\n  - job_name: ae\n    static_configs:\n      - targets: [{listed}]\n"
    )
    port = free_port()
    log = (folder / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Prometheus(f"http://127.0.0.1:{port}")
    try:
        _wait_ready(server, process, folder)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_ready(server: Prometheus, process: subprocess.Popen, folder: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError((folder / "prometheus.log").read_text(errors="replace"))
        try:
            if httpx.get(f"{server.url}/-/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("prometheus did not become ready in 60 s")
