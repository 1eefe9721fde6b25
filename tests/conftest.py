"""Shared fixtures: real SQLite files in temporary folders and a real HTTP receiver.

The receiver is written here, independently of `asyncevents_cli`, so that the
tests check signatures with their own HMAC code rather than the code under test.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import inspect
import json
import os
import shutil
import subprocess
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pytest
from typer.testing import CliRunner

from asyncevents_cli.cli import app
from asyncevents_cli.runtime import Runtime
from asyncevents_cli.store import Store
from asyncevents_cli.store import open_store as open_store_at


def expected_signature(body: bytes, token: str) -> str:
    """HMAC-SHA256 hex, computed the way a receiver written for the module does."""
    return hmac.new(token.encode("utf-8"), body, hashlib.sha256).hexdigest()


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def signed_with(self, token: str) -> bool:
        given = self.headers.get("x-magento-signature", "")
        return hmac.compare_digest(given, expected_signature(self.body, token))


@dataclass
class Receiver:
    """Records every POST; answers each path from a script of status codes.

    A script entry is a status code, ("sleep", seconds) to stall before a 200,
    ("wait", threading.Event) to answer 200 only once the test sets the event, or
    ("reply", status, {header: value}) for a status with headers (Retry-After, say).
    When a path's script runs out, its last entry repeats; unscripted paths get 200.
    `respond`, when set, answers every request instead: it sees the request and
    every earlier one (for rules like "fail each event's first attempt").
    """

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    scripts: dict[str, list[Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    respond: Callable[[Request, list[Request]], Any] | None = None
    active: int = 0  # requests being answered right now
    peak: int = 0  # the most ever answered at once
    peak_by_path: dict[str, int] = field(default_factory=dict)
    active_by_path: dict[str, int] = field(default_factory=dict)

    def script(self, path: str, *responses: Any) -> str:
        self.scripts[path] = list(responses)
        return self.url + path

    def endpoint(self, path: str) -> str:
        return self.url + path

    def to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def next_response(self, path: str, request: Request | None = None) -> Any:
        if self.respond is not None and request is not None:
            with self.lock:
                earlier = self.requests[: self.requests.index(request)]
            return self.respond(request, earlier)  # unlocked: it may wait for the test
        with self.lock:
            script = self.scripts.get(path)
            if not script:
                return 200
            return script.pop(0) if len(script) > 1 else script[0]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Request]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.requests)


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as separate writes

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            request = Request(self.path, headers, body)
            with receiver.lock:
                receiver.requests.append(request)
                receiver.active += 1
                receiver.peak = max(receiver.peak, receiver.active)
                now = receiver.active_by_path[self.path] = receiver.active_by_path.get(self.path, 0) + 1
                receiver.peak_by_path[self.path] = max(receiver.peak_by_path.get(self.path, 0), now)
            self.counted = True
            try:
                self._answer(body, request)
            finally:
                self._stop_counting()

        def _stop_counting(self) -> None:
            # Called before the answer goes out: once the client has it, it may send its
            # next request, which must not overlap this one in the peak counts.
            if getattr(self, "counted", False):
                self.counted = False
                with receiver.lock:
                    receiver.active -= 1
                    receiver.active_by_path[self.path] -= 1

        def _answer(self, body: bytes, request: Request) -> None:
            response = receiver.next_response(self.path, request)
            if isinstance(response, tuple) and response[0] == "sleep":
                time.sleep(response[1])
                response = 200
            if isinstance(response, tuple) and response[0] == "wait":  # ("wait", threading.Event)
                response[1].wait(timeout=30)
                response = 200
            self._stop_counting()
            extra: dict[str, str] = {}
            if isinstance(response, tuple) and response[0] == "reply":  # ("reply", status, {header: value})
                _, response, extra = response
            if isinstance(response, tuple) and response[0] == "redirect":
                self.send_response(302)
                self.send_header("Location", response[1])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            # A 204 has no content (RFC 9110); a body after it would corrupt the connection.
            reply = b"" if response == 204 else json.dumps({"received": len(body), "status": response}).encode()
            try:
                self.send_response(int(response))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


class QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-exchange (timeouts, cut responses) is expected here."""

    daemon_threads = True
    request_queue_size = 256  # a consumer opens many connections at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@contextmanager
def serving_receiver() -> Iterator[Receiver]:
    """A `Receiver` listening on a free local port until the block ends (for fixtures
    wider than one test; a test takes the `receiver` fixture)."""
    recv = Receiver()
    server = QuietServer(("127.0.0.1", 0), _handler_for(recv))
    recv.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield recv
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving_receiver() as recv:
        yield recv


# -- the CLI, through Click's test runner ----------------------------------

# Click >= 8.2 always keeps stderr apart (result.stdout / result.stderr);
# older Click needs mix_stderr=False for the same.
if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
    runner = CliRunner(mix_stderr=False)  # pragma: no cover - old Click
else:
    runner = CliRunner()


def ae(config: Path, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Any:
    """`ae --config CONFIG ARGS...` in this process; the result has exit_code, stdout, stderr."""
    return runner.invoke(app, ["--config", str(config), *args], input=input, env=env)


def ok(config: Path, *args: str, **kwargs: Any) -> Any:
    """`ae`, which must exit 0."""
    result = ae(config, *args, **kwargs)
    assert result.exit_code == 0, (args, result.stdout, result.stderr, result.exception)
    return result


def ok_json(config: Path, *args: str, **kwargs: Any) -> Any:
    """`ae ... --json`, which must exit 0 with nothing on stderr; the parsed output."""
    result = ok(config, *args, "--json", **kwargs)
    assert result.stderr == ""
    return json.loads(result.stdout)


def assert_error(result: Any, exit_code: int, *fragments: str) -> str:
    """Exactly one line on stderr starting `ae: error:`, nothing on stdout, no traceback."""
    assert result.exit_code == exit_code, (result.stdout, result.stderr, result.exception)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ae: error: "), lines[0]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


EVENT = "sales.order.created"
ORDER = {"increment_id": "CK00000101", "grand_total": 45.5}


def db_path(config: Path) -> Path:
    """The SQLite store of a config that names no `database` (the default place)."""
    return config.parent / ".ae" / "ae.db"


def subscribe(config: Path, url: str, *extra: str, event: str = EVENT) -> int:
    """`ae subscribe EVENT URL ...`, which must exit 0; the new subscription's id."""
    result = ok(config, "subscribe", event, url, *extra)
    return int(result.stdout.strip())


def environ_without_ae() -> dict[str, str]:
    """This process's environment minus every AE_* variable: for an `ae` subprocess
    that must see only the settings its test gives it."""
    return {key: value for key, value in os.environ.items() if not key.startswith("AE_")}


DEFAULT_EVENTS = {
    "sales.order.created": {"description": "An order was placed"},
    "customer.created": {"description": "A customer signed up"},
}


def write_config(folder: Path, events: dict[str, dict] | None = None, **settings: Any) -> Path:
    """Write an events.toml; settings default to a fast retry chain for tests."""
    settings.setdefault("backoff_unit_seconds", 0.01)
    settings.setdefault("max_deaths", 3)
    lines = []
    for name, body in (DEFAULT_EVENTS if events is None else events).items():
        lines.append(f'[events."{name}"]')
        lines.extend(f"{k} = {json.dumps(v)}" for k, v in body.items())
        lines.append("")
    lines.append("[settings]")
    for key, value in settings.items():
        lines.append(f"{key} = {json.dumps(value)}")
    path = folder / "events.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """No AE_* variables from the developer's shell leak into a test (those that say
    which services the suite needs and where they are stay), and no COLUMNS or LINES:
    pytest-xdist's workers set COLUMNS=80, which would narrow every table a test reads
    (a test that wants a width gives it)."""
    for key in set(os.environ) - set(environ_without_ae()):
        if not key.startswith(("AE_REQUIRE_", "AE_TEST_")):  # AE_REQUIRE_PROMETHEUS is read mid-test
            monkeypatch.delenv(key)
    for key in ("COLUMNS", "LINES"):
        monkeypatch.delenv(key, raising=False)
    return lambda: None


@pytest.fixture(autouse=True)
def _isolate_env(clean_env: Callable[[], None]) -> None:
    pass


# -- backends ------------------------------------------------------------
# Every behavioural test that takes `backend` runs once per queue backend.
# "db" is the embedded SQLite queue; "amqp" is RabbitMQ, on a vhost of its own.
#
# AMQP isolation: creating a vhost with rabbitmqctl costs about 1.5 s (add,
# permissions, delete), so each test module gets one vhost and every test
# starts and ends by deleting the event queues and exchanges in it (~30 ms).
# Without rabbitmqctl (a remote broker named by AE_TEST_AMQP_URL) the URL's
# own vhost is used, cleaned the same way.
# Tests that need a broker skip when none answers, and fail instead when
# AE_REQUIRE_AMQP=1 (CI), so a missing broker cannot pass silently.

DEFAULT_TEST_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
# Queues and exchanges the AMQP backend may create. Delay queues never expire;
# fractional back-offs (event.delay.2.82843) are only named in tests, never declared.
AMQP_QUEUES = ["event.trigger", "event.failover.retry", "event.failover.deadletter", "event.retry.init"] + [
    f"event.delay.{n}" for n in range(1, 121)
]
AMQP_EXCHANGES = ("event", "event.failover")

# "postgres" is the table queue too, on a PostgreSQL store (settings.database is
# the module's PostgreSQL database, and AE_SECRET_KEY is set, as it must be there).
BACKENDS = ["db", pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("amqp", marks=pytest.mark.amqp)]


# -- which tests need a service -------------------------------------------
# A test that needs a service carries its marker: by hand (a `backend` parameter, a module's
# `pytestmark`, a test that calls the service itself), or from the fixture it takes, below.
# Each such test skips when its service is missing, and fails instead under AE_REQUIRE_<NAME>=1.
SERVICE_MARKERS = {
    "amqp": "needs a RabbitMQ broker (AE_TEST_AMQP_URL)",
    "postgres": "needs a PostgreSQL server (AE_TEST_POSTGRES_URL)",
    "browser": "needs Debian's chromium and chromium-driver",
    "prometheus": "needs Debian's prometheus and promtool",
}
MARKER_OF_FIXTURE = {"amqp_vhost": "amqp", "postgres_database": "postgres", "chrome": "browser"}
# The README's fast command selects this: every test that needs no service (docs/test_readme_commands.py).
FAST_SELECTION = "not (" + " or ".join(SERVICE_MARKERS) + ")"


def pytest_configure(config: pytest.Config) -> None:
    for name, needs in SERVICE_MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {needs} (skipped when missing)")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by the services its fixtures reach (amqp_url, postgres_url and the
    fixtures built on them), so `-m` sees what the test needs without a hand-written mark."""
    for item in items:
        for fixture in set(getattr(item, "fixturenames", ())) & MARKER_OF_FIXTURE.keys():
            item.add_marker(MARKER_OF_FIXTURE[fixture])


def amqp_base_url() -> str:
    return os.environ.get("AE_TEST_AMQP_URL") or DEFAULT_TEST_AMQP_URL


def with_vhost(url: str, vhost: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), parts.query, ""))


@functools.cache
def amqp_problem() -> str | None:
    """Why no AMQP test can run here, or None when a broker answers."""
    import pika

    params = pika.URLParameters(amqp_base_url())
    params.connection_attempts = 1
    params.socket_timeout = 2
    try:
        pika.BlockingConnection(params).close()
    except Exception as exc:  # any failure means: no usable broker
        return f"no RabbitMQ answers at {urlsplit(amqp_base_url()).hostname}:{params.port} ({exc.__class__.__name__})"
    return None


def require_amqp() -> None:
    problem = amqp_problem()
    if problem is None:
        return
    if os.environ.get("AE_REQUIRE_AMQP") == "1":
        pytest.fail(f"AE_REQUIRE_AMQP=1 but {problem}")
    pytest.skip(problem)


def rabbitmqctl(*args: str, check: bool = True) -> str:
    """Run rabbitmqctl (needs root or the broker's cookie); return its stdout."""
    done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


@functools.cache
def rabbitmqctl_works() -> bool:
    if shutil.which("rabbitmqctl") is None:
        return False
    try:
        return subprocess.run(["rabbitmqctl", "-q", "list_vhosts"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass
class AmqpVhost:
    name: str
    base_url: str
    created: bool  # True: made for this module with rabbitmqctl, deleted afterwards

    @property
    def url(self) -> str:
        return with_vhost(self.base_url, self.name)

    def clean(self) -> None:
        """Delete every queue and exchange the AMQP backend creates in this vhost."""
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            channel = connection.channel()
            for queue in AMQP_QUEUES:
                channel.queue_delete(queue)  # deleting a missing queue is fine
            for exchange in AMQP_EXCHANGES:
                channel.exchange_delete(exchange)
        finally:
            connection.close()


@pytest.fixture(scope="module")
def amqp_vhost() -> Iterator[AmqpVhost]:
    """A vhost for this test module: fresh when rabbitmqctl works, else the URL's own."""
    require_amqp()
    base = amqp_base_url()
    if not rabbitmqctl_works():
        vhost = AmqpVhost(unquote(urlsplit(base).path[1:]) or "/", base, created=False)
        yield vhost
        vhost.clean()
        return
    name = f"ae-test-{uuidlib.uuid4().hex[:10]}"
    user = unquote(urlsplit(base).username or "guest")
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
        yield AmqpVhost(name, base, created=True)
    finally:
        rabbitmqctl("delete_vhost", name, check=False)


@pytest.fixture
def amqp_url(amqp_vhost: AmqpVhost) -> Iterator[str]:
    """The URL of an empty vhost: no event queues or exchanges, before and after."""
    amqp_vhost.clean()
    yield amqp_vhost.url
    amqp_vhost.clean()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings that select a queue backend, to pass to `write_config`."""
    if request.param == "amqp":
        return {"queue": "amqp", "amqp_url": request.getfixturevalue("amqp_url")}
    if request.param == "postgres":
        from postgres_db import TEST_SECRET_KEY

        request.getfixturevalue("monkeypatch").setenv("AE_SECRET_KEY", TEST_SECRET_KEY)
        return {"queue": "db", "database": request.getfixturevalue("postgres_url")}
    return {"queue": request.param}


def backend_environ() -> dict[str, str]:
    """The environment a Runtime of the `backend` needs (AE_SECRET_KEY on PostgreSQL)."""
    return {key: os.environ[key] for key in ("AE_SECRET_KEY",) if key in os.environ}


@pytest.fixture
def make_runtime(tmp_path: Path, backend: dict[str, Any]) -> Iterator[Callable[..., Runtime]]:
    """Opens Runtimes on the `backend` (settings and `events=` go to `write_config`); closes them after."""
    opened: list[Runtime] = []

    def make(**settings: Any) -> Runtime:
        events = settings.pop("events", None)
        path = write_config(tmp_path, events, **{**backend, **settings})
        rt = Runtime(path, environ=backend_environ())
        opened.append(rt)
        return rt

    yield make
    for rt in opened:
        rt.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Store]]:
    """Opens stores on one shared database (a second one plays another process or host):
    SQLite on a file in tmp_path, or this module's PostgreSQL database."""
    from postgres_db import TEST_SECRET_KEY

    database: str | Path = tmp_path / "ae.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    opened: list[Store] = []

    def open_(**options: Any) -> Store:
        opened.append(open_store_at(database, {"AE_SECRET_KEY": TEST_SECRET_KEY}, **options))
        return opened[-1]

    yield open_
    for store in opened:
        store.close()


# -- fixtures from the helper modules: headless chromium (chromium.py), PostgreSQL (postgres_db.py)
from chromium import chrome  # noqa: E402,F401
from postgres_db import postgres_database, postgres_url  # noqa: E402,F401
