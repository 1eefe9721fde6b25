"""`ae serve` against hostile clients (issue 18), over real sockets to a real server:
authentication before the body, bounded and timed bodies and heads, memory under
unauthenticated load, strict ids, security headers, server-side sign-out, and the
search lane's time budget (on PostgreSQL, where a table lock makes a search wait)."""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ok, write_config
from serving import Server, start_server

EVENT = "sales.order.created"
API = "/rest/V1"
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("limits")
    config = write_config(folder, serve_read_timeout_seconds=1.0, serve_max_body_bytes=64 * 1024)
    admin = ok(config, "tokens", "create", "admin").stdout.splitlines()[-1]
    ok(config, "subscribe", EVENT, "http://127.0.0.1:9/hook", "--secret", "s")
    server = start_server(config, folder / "serve.log")
    yield {"config": config, "server": server, "admin": admin, "folder": folder}
    assert server.stop() == 0, server.log()


def address(server: Server) -> tuple[str, int]:
    return "127.0.0.1", int(server.url.rsplit(":", 1)[1])


def raw(server: Server, data: bytes, wait: float = 10.0) -> tuple[bytes, float]:
    """Send `data` on a fresh connection; everything the server answers until it
    closes (or `wait` passes), and how long that took."""
    with socket.create_connection(address(server), timeout=wait) as sock:
        started = time.monotonic()
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return received, time.monotonic() - started


def read_answer(sock: socket.socket) -> bytes:
    """One whole answer (head and Content-Length body) from a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def status_and_json(answer: bytes) -> tuple[int, dict[str, Any], str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), head
    return status, json.loads(body), head.decode("latin-1").lower()


def publish_head(length: int | None, token: str | None = None) -> bytes:
    lines = [f"POST {API}/async_event/publish HTTP/1.1", "Host: ae", "Content-Type: application/json"]
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_an_unauthenticated_request_is_refused_before_its_body_is_read(site: dict[str, Any], token: str | None) -> None:
    """The head alone, announcing 50 MB that never come: the 401 arrives at once, with
    Connection: close, where the server used to wait for (and parse) the body."""
    for length in (50 * 1024 * 1024, None):
        answer, took = raw(site["server"], publish_head(length, token), wait=5)
        status, body, head = status_and_json(answer)
        assert status == 401 and "isn't authorized" in body["message"]
        assert "connection: close" in head and took < 3


def test_a_page_post_without_a_session_is_redirected_before_its_body_is_read(site: dict[str, Any]) -> None:
    head = b"POST /subscriptions HTTP/1.1\r\nHost: ae\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    answer, took = raw(site["server"], head + b"Content-Length: 10000000\r\n\r\n", wait=5)
    assert answer.startswith(b"HTTP/1.1 303 ") and b"location: /login?next=%2Fsubscriptions" in answer
    assert took < 3


def test_bodies_are_limited_while_streaming(site: dict[str, Any]) -> None:
    """serve_max_body_bytes (64 KiB here): a larger declared length is refused before
    reading; a chunked body is refused when it passes the limit; one that fits is taken."""
    admin = site["admin"]
    answer, _ = raw(site["server"], publish_head(10**9, admin), wait=5)
    status, body, _ = status_and_json(answer)
    assert status == 413 and "serve_max_body_bytes" in body["message"]
    chunk = b"x" * 16384
    # five chunks pass the limit at the fifth; sending no more than that leaves nothing
    # unread, so closing the connection cannot reset it before the answer is read
    stream = publish_head(None, admin) + b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5))
    answer, _ = raw(site["server"], stream, wait=5)
    assert status_and_json(answer)[0] == 413
    fits = {"event_name": EVENT, "arguments": {"text": "y" * 60000}}
    published = httpx.post(
        site["server"].url + API + "/async_event/publish",
        json=fits,
        headers={"Authorization": f"Bearer {admin}"},
        timeout=30,
    )
    assert published.status_code == 200, published.text


def test_a_slow_body_times_out(site: dict[str, Any]) -> None:
    with socket.create_connection(address(site["server"]), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(publish_head(1000, site["admin"]) + b'{"event_name": ')
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        took = time.monotonic() - started
    status, body, _ = status_and_json(answer)
    assert status == 408 and "did not arrive within 1 s" in body["message"] and took < 5


@pytest.mark.parametrize("sent", [b"", b"GET /rest/V1/async_events HTTP/1.1\r\nHost: ae\r\n"])
def test_a_slow_or_missing_request_head_times_out(site: dict[str, Any], sent: bytes) -> None:
    """uvicorn kept such connections open forever (a slowloris holds every slot)."""
    answer, took = raw(site["server"], sent, wait=10)
    status, body, _ = status_and_json(answer)
    assert status == 408 and "request head" in body["message"] and took < 5


def test_the_head_timer_starts_again_for_each_request_on_a_kept_alive_connection(site: dict[str, Any]) -> None:
    request = f"GET {API}/async_events HTTP/1.1\r\nHost: ae\r\nAuthorization: Bearer {site['admin']}\r\n\r\n"
    with socket.create_connection(address(site["server"]), timeout=10) as sock:
        sock.sendall(request.encode("ascii"))
        assert read_answer(sock).startswith(b"HTTP/1.1 200 ")
        time.sleep(1.5)  # longer than the head timeout, shorter than keep-alive: still open
        sock.sendall(b"GET /rest/V1/async_events HTTP/1.1\r\n")
        started = time.monotonic()
        assert read_answer(sock).startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < 5


def test_garbage_at_the_protocol_level_is_answered_in_json(site: dict[str, Any]) -> None:
    """The schemathesis flake: a malformed content-length got uvicorn's text/plain 400."""
    for garbage in (
        f"GET {API}/async_events HTTP/1.1\r\nHost: ae\r\ncontent-length: 1, 2\r\n\r\n",
        f"GET {API}/async_events HTTP/1.1\r\nHost: ae\r\ncontent-length: -1\r\n\r\n",
        "NOT HTTP AT ALL\r\n\r\n",
    ):
        status, body, _ = status_and_json(raw(site["server"], garbage.encode("latin-1"))[0])
        assert status == 400 and body == {"message": "Invalid HTTP request received."}


@pytest.mark.parametrize("sid", ["1.0", "1e0", "+1", "%EF%BC%91", "0x1", "1%20", "0"])
def test_path_ids_are_strict_integers(site: dict[str, Any], sid: str) -> None:
    headers = {"Authorization": f"Bearer {site['admin']}"}
    assert httpx.get(f"{site['server'].url}{API}/async_event/1", headers=headers, timeout=30).status_code == 200
    for method, body in (("GET", None), ("PUT", {"asyncEvent": {"status": False}})):
        answer = httpx.request(method, f"{site['server'].url}{API}/async_event/{sid}", headers=headers, json=body)
        assert answer.status_code == 400, answer.text
        assert set(answer.json()) == {"message"}
    status = httpx.get(f"{site['server'].url}{API}/async_event/1", headers=headers, timeout=30).json()["status"]
    assert status is True  # nothing changed


def signed_in(site: dict[str, Any]) -> httpx.Client:
    client = httpx.Client(base_url=site["server"].url, timeout=30)
    assert client.post("/login", data={"token": site["admin"], "next": "/subscriptions"}).status_code == 303
    return client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_pages_form_ids_are_strict_too(site: dict[str, Any]) -> None:
    client = signed_in(site)
    csrf = csrf_of(client.get("/subscriptions").text)
    answer = client.post("/subscriptions", data={"action": "disable", "ids": "1.0", "csrf": csrf})
    assert answer.status_code == 400
    assert "enabled" in client.get("/subscriptions").text


SECURITY = {
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def test_every_answer_sends_the_security_headers(site: dict[str, Any]) -> None:
    client = signed_in(site)
    answers = [
        client.get("/subscriptions"),
        client.get("/logs"),
        client.get("/login"),
        client.get("/ae.css"),
        client.get("/no-such-page"),
        httpx.get(site["server"].url + API + "/async_events", timeout=30),
    ]
    for answer in answers:
        for name, value in SECURITY.items():
            assert answer.headers.get(name) == value, (answer.url, name)
    assert answers[3].headers["content-type"].startswith("text/css") and "--accent" in answers[3].text
    assert "<style" not in answers[0].text and "style=" not in answers[0].text and "<script" not in answers[0].text


def test_sign_out_invalidates_the_session_on_the_server(site: dict[str, Any]) -> None:
    """A copy of the cookie taken before signing out no longer works afterwards, for
    reading a page or for changing anything."""
    client = signed_in(site)
    page = client.get("/subscriptions")
    assert page.status_code == 200
    captured = dict(client.cookies)
    csrf = csrf_of(page.text)
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303
    thief = httpx.Client(base_url=site["server"].url, timeout=30, cookies=captured)
    again = thief.get("/subscriptions")
    assert again.status_code == 303 and again.headers["location"].startswith("/login")
    change = thief.post("/subscriptions", data={"action": "disable", "ids": "1", "csrf": csrf})
    assert change.status_code == 303 and change.headers["location"].startswith("/login")
    assert "enabled" in signed_in(site).get("/subscriptions").text
    # the record is private, beside the session key
    record = site["folder"] / ".ae" / "ae.db.session-key.signed-out"
    assert record.stat().st_mode & 0o777 == 0o600


def test_unauthenticated_load_keeps_memory_bounded_and_the_server_responsive(tmp_path: Path) -> None:
    """Issue 18's target: 8 parallel unauthenticated 50 MB POSTs grow RSS by at most
    50 MB, and an authorised request meanwhile answers within 1 s (bench/serve_load.py)."""
    from serve_load import unauthenticated_load

    from asyncevents_cli.publishing import MAX_DATA_BYTES

    config = write_config(tmp_path)
    token = ok(config, "tokens", "create", "admin").stdout.splitlines()[-1]
    server = start_server(config, tmp_path / "serve.log")
    try:
        # the default serve_max_body_bytes takes the largest payload `ae publish` takes
        largest = {"event_name": EVENT, "arguments": {"a": "y" * (MAX_DATA_BYTES - 10)}}
        headers = {"Authorization": f"Bearer {token}"}
        published = httpx.post(server.url + API + "/async_event/publish", json=largest, headers=headers, timeout=30)
        assert published.status_code == 200, published.text
        for chunked in (False, True):
            figures = unauthenticated_load(server.url, token, server.process.pid, 8, 50, chunked)
            assert figures["rss_growth_mb"] <= 50, figures
            assert figures["authorised_slowest_s"] < 1.0, figures
            assert all(" 401 " in outcome for outcome in figures["uploads"]), figures
    finally:
        assert server.stop() == 0, server.log()


def test_the_protocol_internals_this_server_relies_on_are_still_there() -> None:
    """serve/protocol.py subclasses uvicorn's h11 protocol: fail loudly if it moves."""
    import inspect

    import uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol

    for name in ("connection_made", "data_received", "connection_lost", "send_400_response", "handle_events"):
        assert callable(getattr(H11Protocol, name, None)), name
    source = inspect.getsource(H11Protocol)
    for attribute in ("self.conn", "self.transport", "self.loop", "self.logger", "self.send_400_response("):
        assert attribute in source, attribute
    assert "http" in inspect.signature(uvicorn.Config).parameters


@pytest.mark.postgres
def test_a_search_never_holds_up_other_requests_and_has_a_time_budget(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search that cannot finish (the delivery log locked by another session) answers
    503 after serve_search_seconds, and REST requests meanwhile answer at once: the
    search runs on its own lane, not under the lock every request waits on."""
    import psycopg
    from postgres_db import TEST_SECRET_KEY

    monkeypatch.setenv("AE_SECRET_KEY", TEST_SECRET_KEY)
    config = write_config(tmp_path, database=postgres_url, serve_search_seconds=1.0)
    admin = ok(config, "tokens", "create", "admin").stdout.splitlines()[-1]
    ok(config, "subscribe", EVENT, "http://127.0.0.1:9/hook", "--secret", "s")
    ok(config, "publish", EVENT, "--data", '{"increment_id": "1"}')
    ok(config, "consume", "trigger", "--max-messages", "1")
    server = start_server(config, tmp_path / "serve.log")
    try:
        pages = httpx.Client(base_url=server.url, timeout=30)
        assert pages.post("/login", data={"token": admin, "next": "/logs"}).status_code == 303
        assert pages.get("/logs", params={"q": "increment_id"}).status_code == 200
        api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin}"}, timeout=30)
        with psycopg.connect(postgres_url) as locker:
            locker.execute("LOCK TABLE delivery_log IN ACCESS EXCLUSIVE MODE")
            answers: list[httpx.Response] = []
            searching = threading.Thread(target=lambda: answers.append(pages.get("/logs", params={"q": "x"})))
            started = time.monotonic()
            searching.start()
            time.sleep(0.2)
            for _ in range(5):
                asked = time.monotonic()
                assert api.get(API + "/async_events").status_code == 200
                assert time.monotonic() - asked < 1.0
            searching.join(timeout=30)
            assert answers and answers[0].status_code == 503, answers
            assert "did not finish within 1 s" in answers[0].text
            assert time.monotonic() - started < 5
            locker.rollback()
        deadline = time.monotonic() + 30  # the stuck search ends once the lock goes
        while pages.get("/logs", params={"q": "increment_id"}).status_code != 200:
            assert time.monotonic() < deadline
    finally:
        assert server.stop() == 0, server.log()
