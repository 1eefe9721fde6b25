"""Benchmark: `ae serve` under concurrent unauthenticated uploads (issue 18).

    .venv/bin/python bench/serve_load.py [--senders 8] [--megabytes 50] [--chunked]

Starts `ae serve` on a fresh store in a temporary folder, then at once:

- `--senders` clients each POST a `--megabytes` body to the REST API without a
  token (declaring its Content-Length, or with --chunked streaming it without
  one), sending as fast as the server takes it, until the server answers or
  closes the connection;
- one authorised client asks for the subscriptions list every 100 ms;
- the server's RSS is sampled every 20 ms.

Reported (JSON): the server's RSS before and at its peak, the growth, the
slowest and median authorised answer, and what the uploads got. Issue 18's
targets: growth at most 50 MB, every authorised answer within 1 s.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parent.parent
CHUNK = b"x" * (1024 * 1024)


def _upload(host: str, port: int, size: int, chunked: bool, outcomes: list[str]) -> None:
    """One unauthenticated upload; records the status line it got, or how it ended."""
    with socket.create_connection((host, port), timeout=60) as sock:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
        head = f"POST /rest/V1/async_event/publish HTTP/1.1\r\nHost: {host}\r\n"
        head += f"Content-Type: application/json\r\n{framing}\r\n\r\n"
        sent = 0
        try:
            sock.sendall(head.encode("ascii"))
            while sent < size:
                piece = CHUNK[: min(len(CHUNK), size - sent)]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed without reading: what it should do
        try:
            status = sock.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
        except OSError as exc:
            status = f"closed ({exc.__class__.__name__})"
        outcomes.append(f"{status or 'closed'} after {sent // (1024 * 1024)} MiB sent")


def unauthenticated_load(
    url: str, token: str, pid: int, senders: int = 8, megabytes: int = 50, chunked: bool = False
) -> dict[str, Any]:
    """Run the load against a running server; its figures."""
    parsed = httpx.URL(url)
    host, port = parsed.host, parsed.port or 80
    process = psutil.Process(pid)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        client.get("/rest/V1/async_events").raise_for_status()  # warm: imports and first queries done
        before = process.memory_info().rss
        peak = before
        outcomes: list[str] = []
        uploads = [
            threading.Thread(target=_upload, args=(host, port, megabytes * 1024 * 1024, chunked, outcomes))
            for _ in range(senders)
        ]
        for upload in uploads:
            upload.start()
        answers: list[float] = []
        while any(upload.is_alive() for upload in uploads) or len(answers) < 10:
            started = time.perf_counter()
            client.get("/rest/V1/async_events").raise_for_status()
            answers.append(time.perf_counter() - started)
            until = time.monotonic() + 0.1
            while time.monotonic() < until:
                peak = max(peak, process.memory_info().rss)
                time.sleep(0.02)
        for upload in uploads:
            upload.join()
    return {
        "senders": senders,
        "megabytes_each": megabytes,
        "framing": "chunked" if chunked else "content-length",
        "rss_before_mb": round(before / 1e6, 1),
        "rss_peak_mb": round(peak / 1e6, 1),
        "rss_growth_mb": round((peak - before) / 1e6, 1),
        "authorised_answers": len(answers),
        "authorised_slowest_s": round(max(answers), 3),
        "authorised_median_s": round(statistics.median(answers), 3),
        "uploads": sorted(outcomes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--chunked", action="store_true")
    options = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import ok, write_config  # the suite's helpers: one way to set up a store
    from serving import start_server

    with tempfile.TemporaryDirectory() as folder:
        config = write_config(Path(folder))
        token = ok(config, "tokens", "create", "bench").stdout.splitlines()[-1]
        server = start_server(config, Path(folder) / "serve.log")
        try:
            figures = unauthenticated_load(
                server.url, token, server.process.pid, options.senders, options.megabytes, options.chunked
            )
        finally:
            server.stop()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
