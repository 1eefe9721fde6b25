"""What `ae consume --metrics-port` costs: the SQLite x 1 drain without and with the
metrics endpoint, interleaved in one run, with /metrics scraped every second while
it drains (Prometheus usually scrapes every 15 s: this is the harsher case)."""

from __future__ import annotations

import socket
import statistics
import threading
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

SCRAPE_EVERY = 1.0  # seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def scraping(port: int) -> Iterator[list[int]]:
    """GET /metrics every SCRAPE_EVERY seconds until the block ends; yields the count of answered scrapes."""
    answered = [0]
    stop = threading.Event()

    def scrape() -> None:
        while not stop.wait(SCRAPE_EVERY):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    response.read()
                answered[0] += 1
            except OSError:
                pass  # the consumer is not up yet, or already stopping

    thread = threading.Thread(target=scrape, daemon=True)
    thread.start()
    try:
        yield answered
    finally:
        stop.set()
        thread.join(timeout=10)


def metrics_cost(drain_steady: Callable[[Sequence[str]], float], runs: int) -> dict[str, Any]:
    """Median steady deliveries/s without and with --metrics-port, runs interleaved; their ratio."""
    without: list[float] = []
    with_metrics: list[float] = []
    scrapes = 0
    for _ in range(runs):
        without.append(drain_steady(()))
        port = free_port()
        with scraping(port) as answered:
            with_metrics.append(drain_steady(("--metrics-port", str(port))))
        scrapes += answered[0]
    plain, measured = statistics.median(without), statistics.median(with_metrics)
    return {
        "runs": runs,
        "without": plain,
        "with": measured,
        "ratio": measured / plain if plain else 0.0,
        "without_runs": without,
        "with_runs": with_metrics,
        "scrapes": scrapes,
    }
