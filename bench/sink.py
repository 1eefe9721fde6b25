"""The benchmark's webhook receiver: a minimal HTTP/1.1 server in a process of its own.

    python bench/sink.py            # prints the port it listens on, then serves until killed

It answers every POST with ``200 ok`` and counts it, noting the first and last
arrival times. A path ``/slow/<ms>/...`` answers after that many milliseconds
(without blocking other connections), standing in for a receiver that works
on each request. Control requests under ``/_sink/``:

- ``GET /_sink/reset`` (``?record=1`` to keep every request) starts a new count;
- ``GET /_sink/stats`` gives the count, first and last arrival (``time.time()``)
  and the CPU seconds this process used since the reset;
- ``GET /_sink/records`` gives the kept requests as ``[arrival, head, body]``.

It is a raw asyncio protocol (on uvloop when installed) rather than a web
framework so that the receiver is never what limits a run: its own CPU time
per request is reported with the results to show that.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


class Tally:
    """What the sink saw since the last reset."""

    def __init__(self) -> None:
        self.reset(record=False)

    def reset(self, record: bool) -> None:
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None
        self.record = record
        self.records: list[tuple[float, bytes, bytes]] = []
        self.cpu_at_reset = time.process_time()

    def arrived(self, head: bytes, body: bytes) -> None:
        now = time.time()
        self.count += 1
        if self.first is None:
            self.first = now
        self.last = now
        if self.record:
            self.records.append((now, head, body))

    def stats(self) -> dict[str, object]:
        return {
            "count": self.count,
            "first": self.first,
            "last": self.last,
            "cpu_seconds": time.process_time() - self.cpu_at_reset,
        }


def json_response(value: object) -> bytes:
    body = json.dumps(value).encode()
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def content_length(head: bytes) -> int:
    lowered = head.lower()
    at = lowered.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    end = lowered.find(b"\r\n", at + 2)
    return int(lowered[at + 17 : end if end >= 0 else None])


class SinkProtocol(asyncio.Protocol):
    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.buffer = b""
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:  # uvloop's transports are not asyncio.Transport
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            total = end + 4 + content_length(head)
            if len(self.buffer) < total:
                return
            body = self.buffer[end + 4 : total]
            self.buffer = self.buffer[total:]
            self.handle(head, body)

    def handle(self, head: bytes, body: bytes) -> None:
        request_line = head[: head.find(b"\r\n")] if b"\r\n" in head else head
        parts = request_line.split(b" ")
        path = parts[1].decode("latin-1") if len(parts) > 1 else "/"
        if path.startswith("/_sink/"):
            self.reply(self.control(path))
            return
        self.tally.arrived(head, body)
        if path.startswith("/slow/"):
            delay_ms = float(path.split("/")[2])
            asyncio.get_running_loop().call_later(delay_ms / 1000, self.reply, OK)
        else:
            self.reply(OK)

    def control(self, path: str) -> bytes:
        url = urlsplit(path)
        if url.path == "/_sink/reset":
            self.tally.reset(record=parse_qs(url.query).get("record") == ["1"])
            return json_response({})
        if url.path == "/_sink/stats":
            return json_response(self.tally.stats())
        if url.path == "/_sink/records":
            return json_response(
                [[t, h.decode("latin-1"), b.decode("utf-8", "replace")] for t, h, b in self.tally.records]
            )
        return NOT_FOUND

    def reply(self, response: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(response)


async def serve() -> None:
    tally = Tally()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SinkProtocol(tally), "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


def event_loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def main() -> None:
    if event_loop_name() == "uvloop":
        import uvloop

        uvloop.run(serve())
    else:
        asyncio.run(serve())


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
