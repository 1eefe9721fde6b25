"""A small local webhook receiver that checks signatures: what `ae demo` delivers to.

Each path is an endpoint with its own secret. An endpoint can be told to fail
its first N requests, to show a retry chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Endpoint:
    secret: str
    fail_first: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0


class WebhookReceiver:
    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def add(self, path: str, secret: str, fail_first: int = 0) -> str:
        self.endpoints[path] = Endpoint(secret, fail_first)
        return self.url + path

    def _answer(self, path: str, body: bytes, signature: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            endpoint = self.endpoints.get(path)
            if endpoint is None:
                return 404, {"error": "no such endpoint"}
            expected = hmac.new(endpoint.secret.encode(), body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, signature):
                endpoint.rejected += 1
                return 401, {"error": "bad signature"}
            if endpoint.fail_first > 0:
                endpoint.fail_first -= 1
                return 503, {"error": "warming up, try again later"}
            endpoint.received.append(json.loads(body))
            return 200, {"ok": True}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                code, reply = receiver._answer(self.path, body, self.headers.get("x-magento-signature", ""))
                data = json.dumps(reply).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
