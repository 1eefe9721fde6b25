"""What every request passes before the app reads it: who is calling, how big and
how slow its body is, and the security headers on every answer.

An ASGI middleware rather than FastAPI dependencies, because a dependency runs
after the body has been read and parsed: eight unauthenticated 50 MB POSTs then
cost a gigabyte of memory before each got its 401. Here:

1. a REST request (`/rest/...`) without a known API token gets its 401, and a
   page POST (other than the sign-in form) without a session its redirect to
   /login, before a byte of the body is read; the answer says `Connection: close`
   so the client stops sending;
2. a declared `Content-Length` over `serve_max_body_bytes` is a 413 at once, and
   a body streamed without one is counted as it arrives and refused (413) when it
   passes the limit, so at most that much is ever held per request;
3. the body must arrive within `serve_read_timeout_seconds` (else 408); a slow
   request head is the protocol's business (`protocol.py`);
4. every answer carries a strict Content-Security-Policy (the pages load nothing
   but their own stylesheet, and run no script), `X-Frame-Options: DENY`,
   `X-Content-Type-Options: nosniff` and `Referrer-Policy: same-origin`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request

from ..tokens import ApiToken, authenticate
from .backend import Backend
from .sessions import current_user, login_url

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode("ascii")),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
NO_BEARER = "The consumer isn't authorized to access the API: send 'Authorization: Bearer TOKEN'."
UNKNOWN_TOKEN = "The consumer isn't authorized to access the API: the token is unknown or revoked."
TOKEN_STATE = "api_token"  # where the guard leaves the caller's token for `auth.api_token`


class Refused(Exception):
    """The request is answered here, before the app: a status, a message, headers."""

    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or []


class ClientGone(Exception):
    """The client disconnected while sending its body: nobody to answer."""


def bearer_token(headers: Headers) -> str | None:
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip() or None


class RequestGuard:
    def __init__(self, app: App, backend: Backend, max_body: int, read_timeout: float) -> None:
        self.app, self.backend, self.max_body, self.read_timeout = app, backend, max_body, read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = with_security_headers(send)
        try:
            await self.check_caller(scope)
            body = await self.read_body(scope, receive)
        except Refused as refused:
            await answer(send, refused)
            return
        except ClientGone:
            return
        await self.app(scope, replaying(body, receive), send)

    async def check_caller(self, scope: Scope) -> None:
        """Refused unless a REST caller's token is known, or a page POST has a session."""
        headers = Headers(scope=scope)
        if scope["path"].startswith("/rest/"):
            secret = bearer_token(headers)
            if secret is None:
                raise Refused(401, NO_BEARER, [(b"www-authenticate", b"Bearer"), *closing(headers)])
            token = await run_in_threadpool(self._authenticate, secret)
            if token is None:
                raise Refused(401, UNKNOWN_TOKEN, [(b"www-authenticate", b"Bearer"), *closing(headers)])
            scope.setdefault("state", {})[TOKEN_STATE] = token
        elif scope["method"] == "POST" and scope["path"] != "/login" and "session" in scope:
            request = Request(scope)
            if await run_in_threadpool(current_user, request, self.backend) is None:
                raise Refused(303, "sign in first", [(b"location", login_url(request).encode()), *closing(headers)])

    def _authenticate(self, secret: str) -> ApiToken | None:
        with self.backend.use() as rt:
            return authenticate(rt.store, secret)

    async def read_body(self, scope: Scope, receive: Receive) -> bytes:
        """The whole body, at most `max_body` bytes, within `read_timeout` seconds."""
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise Refused(413, self._too_large(), closing(headers))
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.read_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise ClientGone()
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body:
                        raise Refused(413, self._too_large(), [(b"connection", b"close")])
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError as exc:
            why = f"the request body did not arrive within {self.read_timeout:g} s"
            raise Refused(408, why, [(b"connection", b"close")]) from exc

    def _too_large(self) -> str:
        return f"the request body is larger than {self.max_body} bytes (serve_max_body_bytes)"


def closing(headers: Headers) -> list[tuple[bytes, bytes]]:
    """`Connection: close` when a body may follow: refusing it means not reading it."""
    has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
    return [(b"connection", b"close")] if has_body else []


def with_security_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", [])}
            extra = [(name, value) for name, value in SECURITY_HEADERS if name not in present]
            message["headers"] = [*message.get("headers", []), *extra]
        await send(message)

    return sending


def replaying(body: bytes, receive: Receive) -> Receive:
    """The body read here, once; then the server's own messages (a disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receiving() -> Message:
        return pending.pop() if pending else await receive()

    return receiving


async def answer(send: Send, refused: Refused) -> None:
    body = json.dumps({"message": refused.message}).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        *refused.headers,
    ]
    await send({"type": "http.response.start", "status": refused.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
