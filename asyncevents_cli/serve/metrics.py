"""`GET /metrics` of `ae serve`: its own requests, by route template and status.

Labels stay bounded: the route's template (`/rest/V1/async_event/{subscription_id}`),
never the path a client sent, and `unmatched` for anything no route serves.
The endpoint needs an admin session or an API token, unless `metrics_public = true`.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..tokens import authenticate
from .backend import Backend
from .errors import unauthorized
from .sessions import current_user

UNMATCHED = "unmatched"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpInstruments:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "ae_http_requests",
            "Requests `ae serve` answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.duration = Histogram(
            "ae_http_request_duration_seconds",
            "Time `ae serve` took to answer, by method and route template.",
            ("method", "route"),
            buckets=BUCKETS,
            registry=self.registry,
        )


class MeasureRequests:
    """ASGI middleware: one count and one duration per HTTP request."""

    def __init__(self, app: ASGIApp, instruments: HttpInstruments) -> None:
        self.app = app
        self.instruments = instruments

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # unless the app starts a response
        started = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = _route_template(scope)
            method = str(scope.get("method", ""))
            self.instruments.requests.labels(method, route, str(status)).inc()
            self.instruments.duration.labels(method, route).observe(time.perf_counter() - started)


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


router = APIRouter(include_in_schema=False)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    backend: Backend = request.app.state.backend
    with backend.use() as rt:
        public = rt.config.settings.metrics_public
    if not public and not _signed_in(request, backend):
        raise unauthorized(
            "/metrics needs 'Authorization: Bearer TOKEN' or an admin session (or metrics_public = true)."
        )
    instruments: HttpInstruments = request.app.state.http_instruments
    return Response(generate_latest(instruments.registry), media_type=CONTENT_TYPE_LATEST)


def _signed_in(request: Request, backend: Backend) -> bool:
    if "session" in request.scope and current_user(request, backend) is not None:
        return True
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return False
    with backend.use() as rt:
        return authenticate(rt.store, credentials.strip()) is not None
