"""The consumer's own HTTP endpoint (`ae consume ... --metrics-port PORT`).

- ``/metrics``  Prometheus text: the delivery counters and the scrape-time gauges
- ``/healthz``  200 while the process is alive (its HTTP thread answers)
- ``/readyz``   200 when the store and the queue answer, else 503 with the reason

A small standard-library server on a daemon thread: it needs three paths and no
framework, and the consumer's own loop never serves a request. Bound to
127.0.0.1 unless told otherwise; several consumers each take their own port.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ..config import Config
from ..errors import InputError
from .instruments import enable
from .scrape import Probe, QueueCollector


class MetricsEndpoint:
    """Serves the three paths until `close`; `port` is the one bound (0 picks a free one)."""

    def __init__(
        self,
        config: Config,
        host: str,
        port: int,
        in_flight: Callable[[], int],
        limits: Callable[[], dict[int, int]] = dict,
    ) -> None:
        instruments = enable()
        self.probe = Probe(config)
        self.registry: CollectorRegistry = instruments.registry
        self._collector = QueueCollector(self.probe, in_flight, limits)
        self.registry.register(self._collector)
        try:
            self._server = _Server((host, port), _handler_for(self))
        except OSError as exc:
            self.registry.unregister(self._collector)
            self.probe.close()
            raise InputError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
        bound = self._server.server_address
        self.host, self.port = str(bound[0]), int(bound[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="ae-metrics", daemon=True)
        self._thread.start()

    def readiness(self) -> tuple[int, dict[str, str]]:
        look = self.probe.look()
        if look.problem:
            return 503, {"status": "not ready", "message": look.problem}
        return 200, {"status": "ready"}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.registry.unregister(self._collector)
        self.probe.close()

    def __enter__(self) -> MetricsEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _handler_for(endpoint: MetricsEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(endpoint.registry))
            elif path == "/healthz":
                self._json(200, {"status": "alive"})
            elif path == "/readyz":
                self._json(*endpoint.readiness())
            else:
                self._json(404, {"message": f"no such path: {path}; try /metrics, /healthz or /readyz"})

        def _json(self, status: int, body: dict[str, str]) -> None:
            self._send(status, "application/json", json.dumps(body).encode() + b"\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a scrape every few seconds is not news

    return Handler
