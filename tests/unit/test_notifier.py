"""The HTTP notifier against real local HTTP servers."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler

import pytest
from conftest import QuietServer, Receiver, expected_signature

from asyncevents_cli.notifiers import HttpNotifier
from asyncevents_cli.notifiers.base import RESPONSE_LIMIT
from asyncevents_cli.store import Subscription

TOKEN = "s3cret-token"


def subscription(url: str, token: str = TOKEN) -> Subscription:
    return Subscription(
        subscription_id=7,
        event_name="sales.order.created",
        recipient_url=url,
        status=1,
        subscribed_at="",
        modified="",
        notifier="http",
        store_id=0,
        verification_token=token,
    )


@pytest.fixture
def notifier():
    n = HttpNotifier(connect_timeout=1.0, total_timeout=1.0)
    yield n
    n.close()


def test_posts_the_exact_body_signed_with_the_token(receiver: Receiver, notifier: HttpNotifier) -> None:
    body = json.dumps({"data": {"increment_id": "CK1", "customer_email": "a@example.com"}}).encode()
    result = notifier.notify(subscription(receiver.endpoint("/hook")), body, "uuid-1")
    assert result.success and result.status_code == 200
    [request] = receiver.requests
    assert request.body == body
    assert request.headers["x-magento-signature"] == expected_signature(body, TOKEN)
    assert request.headers["idempotency-key"] == "uuid-1"
    assert request.headers["content-type"] == "application/json"
    assert not request.signed_with("another-token")
    assert json.loads(result.response_data) == {"received": len(body), "status": 200}


@pytest.mark.parametrize(
    "code, success",
    [
        (200, True),
        (201, True),
        (204, True),
        (299, True),
        (400, False),
        (404, False),
        (410, False),
        (500, False),
        (503, False),
    ],
)
def test_success_iff_2xx(receiver: Receiver, notifier: HttpNotifier, code: int, success: bool) -> None:
    url = receiver.script("/hook", code)
    result = notifier.notify(subscription(url), b'{"data":{}}', "u")
    assert result.status_code == code
    assert result.success is success


def test_redirects_are_not_followed(receiver: Receiver, notifier: HttpNotifier) -> None:
    url = receiver.script("/moved", ("redirect", receiver.endpoint("/target")))
    result = notifier.notify(subscription(url), b'{"data":{}}', "u")
    assert (result.success, result.status_code) == (False, 302)
    assert receiver.to("/target") == []


def test_connection_refused_is_a_failure_with_the_error_logged(notifier: HttpNotifier) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = notifier.notify(subscription(f"http://127.0.0.1:{port}/hook"), b"{}", "u")
    assert result.success is False and result.status_code is None
    assert "Cannot connect to host 127.0.0.1" in result.response_data


def test_unknown_host_is_a_failure(notifier: HttpNotifier) -> None:
    result = notifier.notify(subscription("http://no-such-host.invalid/hook"), b"{}", "u")
    assert result.success is False and result.status_code is None
    assert result.response_data


def test_timeout_is_a_failure(receiver: Receiver, notifier: HttpNotifier) -> None:
    url = receiver.script("/slow", ("sleep", 3))
    result = notifier.notify(subscription(url), b"{}", "u")
    assert result.success is False and result.status_code is None
    assert "Timeout" in result.response_data
    assert result.duration < 2.5


class _BigHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        payload = b"x" * (RESPONSE_LIMIT * 3)
        self.send_response(500)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


def test_response_body_is_cut_at_64_kib(notifier: HttpNotifier) -> None:
    server = QuietServer(("127.0.0.1", 0), _BigHandler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        result = notifier.notify(subscription(f"http://127.0.0.1:{server.server_address[1]}/"), b"{}", "u")
    finally:
        server.shutdown()
        server.server_close()
    assert result.status_code == 500
    assert len(result.response_data.encode()) == RESPONSE_LIMIT
