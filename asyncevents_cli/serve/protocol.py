"""uvicorn's h11 protocol with two changes, kept in this one module because they
use uvicorn's internals (tests/e2e/test_serve_limits.py names each one and fails
loudly when it moves):

- A request head must arrive within `serve_read_timeout_seconds` of the
  connection opening, or of the first byte of the next request on a kept-alive
  connection; else the connection is answered 408 and closed. uvicorn has no
  such timer, so a client sending one header byte a second held a connection
  (and a slot) forever.
- A request h11 cannot parse (a malformed Content-Length, say) is answered with
  the API's JSON `{"message"}` instead of uvicorn's text/plain line, so every
  answer keeps to the OpenAPI document.

Internals relied on: `H11Protocol.connection_made`, `.data_received`,
`.send_400_response`, `.conn` (the h11.Connection), `.transport`, `.loop`,
`.logger`, and uvicorn.Config(http=<protocol class>).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


def _json_response(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"message": message}).encode("utf-8")
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def guarded_protocol(head_timeout: float) -> type[H11Protocol]:
    """The protocol class for uvicorn.Config(http=...), with `head_timeout` seconds
    for each request head."""

    class GuardedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_head_timer()

        def data_received(self, data: bytes) -> None:
            if self.conn.their_state is h11.IDLE:
                self._arm_head_timer()  # the first bytes of a request: its head is due
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._disarm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_head_timer()
            super().connection_lost(exc)

        def _arm_head_timer(self) -> None:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(head_timeout, self._head_too_slow)

        def _disarm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_too_slow(self) -> None:
            self._head_timer = None
            if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
                return
            self.logger.warning("closing a connection whose request head did not arrive in %g s", head_timeout)
            message = f"the request head did not arrive within {head_timeout:g} s"
            self.transport.write(_json_response(408, "Request Timeout", message))
            self.transport.close()

        def send_400_response(self, msg: str) -> None:
            self.transport.write(_json_response(400, "Bad Request", msg))
            self.transport.close()

    return GuardedH11Protocol
