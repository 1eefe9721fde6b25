"""`ae listen`: a local webhook receiver for people writing an integration (as `stripe listen` is).

It answers every POST, on any path, and reports each request as a plain dict: time,
path, event (`x-ae-event`), Idempotency-Key, which attempt of that delivery it is,
whether the signature verifies (checked with the same code that signs, in
notifiers/signing.py), the status it answered and the body. Answers:

- 401 when a secret is given and the signature does not verify;
- 500 to the first `fail_first` attempts of each delivery (counted by
  Idempotency-Key), to watch the retries happen;
- 200 otherwise.

aiohttp serves it (already `ae`'s HTTP client, so nothing new to install); the
loop runs until `stop` is set, which the CLI does on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .errors import AeError
from .notifiers.signing import MAGENTO, verify

EVENT_HEADER = "x-ae-event"
IDEMPOTENCY_HEADER = "Idempotency-Key"

#: What `signature` says: verified, did not verify, or not checked (no secret given).
VERIFIED, BAD_SIGNATURE, NOT_CHECKED = "verified", "bad", "not checked"


@dataclass
class Listener:
    """The receiver's rules and memory: a secret and scheme to check, how many attempts to fail."""

    secret: str | None = None
    scheme: str = MAGENTO
    fail_first: int = 0
    attempts: dict[str, int] = field(default_factory=dict)  # delivery key -> attempts seen

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        """The report of one request, with the status to answer in it."""
        key = headers.get(IDEMPOTENCY_HEADER.lower()) or ""
        delivery = key or hashlib.sha256(body).hexdigest()  # unsigned senders: the same body, the same delivery
        attempt = self.attempts[delivery] = self.attempts.get(delivery, 0) + 1
        if self.secret is None:
            signature = NOT_CHECKED
        else:
            signature = VERIFIED if verify(self.scheme, body, headers, self.secret) else BAD_SIGNATURE
        status = 401 if signature == BAD_SIGNATURE else 500 if attempt <= self.fail_first else 200
        return {
            "time": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "path": path,
            "event": headers.get(EVENT_HEADER, ""),
            "idempotency_key": key,
            "attempt": attempt,
            "signature": signature,
            "status": status,
            "body": body.decode("utf-8", errors="replace"),
        }


async def serve(
    listener: Listener,
    host: str,
    port: int,
    on_request: Callable[[dict[str, Any]], None],
    on_ready: Callable[[str], None],
    stop: asyncio.Event,
) -> None:
    """Answer requests on host:port until `stop` is set, reporting each to `on_request`."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {name.lower(): value for name, value in request.headers.items()}
        report = listener.answer(request.path, headers, body)
        on_request(report)
        return web.json_response({"ok": report["status"] == 200}, status=report["status"])

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            raise AeError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}", hint="choose another --port"
            ) from exc
        bound = runner.addresses[0][1] if runner.addresses else port  # port 0: the one the system chose
        on_ready(f"http://{host}:{bound}")
        await stop.wait()
    finally:
        await runner.cleanup()
