"""Per-endpoint isolation benchmark (issue 17): one bad receiver against the others.

    python bench/lanes.py [--quick] [--only NAME ...] [--json RESULTS.json]

Real `ae consume all` processes on a SQLite store in a temporary folder, and a
receiver of this file's own (`--receiver`, a raw asyncio server in a child
process) whose paths behave as the scenarios need:

    /ok/TAG            200 at once
    /hang/TAG          accepts the request and never answers
    /slow/MS/TAG       200 after MS milliseconds
    /down/TAG          503 until the outage set by /_ctl/down?seconds=S ends, then 200
    /busy/N/MS/TAG     serves N at a time (MS each), 503 at once beyond that

Each scenario is measured as a ratio or a count in one run, and printed as one
Markdown table with the issue's targets:

- neighbours: a healthy subscriber's deliveries/s alone, beside a hanging
  neighbour and beside a 1 s neighbour (3,000 events, two subscribers);
- slow service: publish-to-delivery delays of other events while one event's
  service sleeps 30 s;
- outage: a receiver answering 503 for 60 s while events arrive at 5/s:
  dead letters, time to deliver everything after recovery, attempts during it;
- overload: a receiver serving 8 at a time (20 ms each), 503 beyond:
  503 share after the first 5 s, throughput against its capacity (400/s);
- rate limit: 20/s on the subscription, two consumers on one store: the most
  requests in any 1 s window after the first.

Every phase is bounded in time. Settings and options the `ae` under test does
not know (an older tree: `service_timeout_seconds`, `--rate-limit`, the
circuit's settings) are left out rather than refused, so the same command
measures the tree before and after. `--quick` runs every scenario at a tiny
size in well under a minute (tests/benchmark/test_bench.py): it checks the harness, its
figures mean nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from urllib.request import urlopen

EVENT = "bench.order.created"
SERVICED = "bench.order.enriched"
SECRET = "bench-secret"
PROBE_TARGET = "threshold + 60 s / probe + a few"


@dataclass(frozen=True)
class Sizes:
    neighbour_events: int = 3000
    neighbour_seconds: float = 60.0  # a run that has not finished by then is measured as it stands
    service_seconds: float = 30.0
    timed_rate: float = 20.0  # other events published per second around the slow service
    outage_seconds: float = 60.0
    outage_rate: float = 5.0
    outage_grace: float = 90.0  # how long after recovery deliveries are waited for
    overload_events: int = 6000
    overload_seconds: float = 40.0
    overload_settle: float = 5.0  # the first seconds of the overload run are not judged
    rate_events: int = 400
    rate_seconds: float = 40.0
    quick_backoff: bool = False
    stop_grace: float = 5.0  # seconds a stopping consumer may finish what is in flight


#: The sizes of this run (main() sets it): how long a stopping consumer is given.
STOP_GRACE = [Sizes.stop_grace]


QUICK = Sizes(200, 2, 1, 20, 2, 5, 10, 200, 3, 1, 40, 5, True, 1.0)


# -- the receiver (a child process) ---------------------------------------------------

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
UNAVAILABLE = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"


def _response(status: int, value: object) -> bytes:
    body = json.dumps(value).encode()
    return b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        status,
        len(body),
        body,
    )


def _header(head: bytes, name: bytes) -> str:
    lowered = head.lower()
    at = lowered.find(b"\r\n" + name + b":")
    if at < 0:
        return ""
    end = lowered.find(b"\r\n", at + 2)
    return head[at + len(name) + 3 : end if end >= 0 else None].decode("latin-1").strip()


class ReceiverState:
    def __init__(self) -> None:
        self.records: dict[str, list[tuple[float, int, str, str]]] = {}  # tag -> (arrival, status, key, body)
        self.down_until = 0.0
        self.busy: dict[str, int] = {}

    def note(self, tag: str, status: int, head: bytes, body: bytes) -> None:
        key = _header(head, b"idempotency-key")
        self.records.setdefault(tag, []).append((time.time(), status, key, body.decode("utf-8", "replace")))


class ReceiverProtocol(asyncio.Protocol):
    def __init__(self, state: ReceiverState) -> None:
        self.state = state
        self.buffer = b""
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end]
            length = int(_header(head, b"content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            body, self.buffer = self.buffer[end + 4 : end + 4 + length], self.buffer[end + 4 + length :]
            path = head.split(b" ", 2)[1].decode("latin-1")
            self.route(path, head, body)

    def reply(self, response: bytes, after: float = 0.0, done: Callable[[], None] | None = None) -> None:
        def send() -> None:
            if done is not None:
                done()
            if not self.transport.is_closing():
                self.transport.write(response)

        if after:
            asyncio.get_running_loop().call_later(after, send)
        else:
            send()

    def route(self, path: str, head: bytes, body: bytes) -> None:
        parts = path.strip("/").split("/")
        state = self.state
        if parts[0] == "_ctl":
            self.reply(self.control(path))
        elif parts[0] == "ok":
            state.note(parts[-1], 200, head, body)
            self.reply(OK)
        elif parts[0] == "hang":
            state.note(parts[-1], 0, head, body)
        elif parts[0] == "slow":
            state.note(parts[-1], 200, head, body)
            self.reply(OK, float(parts[1]) / 1000)
        elif parts[0] == "down":
            status = 503 if time.time() < state.down_until else 200
            state.note(parts[-1], status, head, body)
            self.reply(UNAVAILABLE if status == 503 else OK)
        elif parts[0] == "busy":
            self.busy(parts[-1], int(parts[1]), float(parts[2]) / 1000, head, body)
        else:
            self.reply(_response(404, {}))

    def busy(self, tag: str, capacity: int, seconds: float, head: bytes, body: bytes) -> None:
        active = self.state.busy.get(tag, 0)
        if active >= capacity:
            self.state.note(tag, 503, head, body)
            self.reply(UNAVAILABLE)
            return
        self.state.busy[tag] = active + 1
        self.state.note(tag, 200, head, body)

        def finished() -> None:
            self.state.busy[tag] -= 1

        self.reply(OK, seconds, finished)

    def control(self, path: str) -> bytes:
        url = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/_ctl/reset":
            self.state.records.clear()
            self.state.down_until = 0.0
        elif url.path == "/_ctl/down":
            self.state.down_until = time.time() + float(query["seconds"])
        elif url.path == "/_ctl/records":
            rows = self.state.records.get(query["tag"], [])
            return _response(200, [r if query.get("body") else r[:3] for r in rows])
        return _response(200, {})


async def serve_receiver() -> None:
    state = ReceiverState()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ReceiverProtocol(state), "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


class Receiver:
    """The receiver's child process, and the calls the scenarios make to it."""

    def __init__(self) -> None:
        command = [sys.executable, __file__, "--receiver"]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.proc.stdout.readline())}"

    def control(self, what: str) -> Any:
        with urlopen(f"{self.url}/_ctl/{what}", timeout=30) as answer:
            return json.loads(answer.read())

    def records(self, tag: str, body: bool = False) -> list[list[Any]]:
        return list(self.control(f"records?tag={tag}" + ("&body=1" if body else "")))

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# -- ae, as the tree under test knows it ----------------------------------------------


def known_settings() -> set[str]:
    from asyncevents_cli.config import SETTINGS_BY_NAME

    return set(SETTINGS_BY_NAME)


def supports_rate_limits() -> bool:
    from asyncevents_cli.subscribe import subscribe

    return "rate_limit" in inspect.signature(subscribe).parameters


@contextmanager
def workspace(
    receiver: Receiver, paths: list[str], settings: dict[str, Any], service_seconds: float = 0.0
) -> Iterator[Path]:
    """events.toml (with only the settings this `ae` knows), a fresh store, and one
    subscription per path (a path may end in `@RATE` for a rate limit)."""
    from asyncevents_cli.runtime import Runtime
    from asyncevents_cli.subscribe import subscribe

    with tempfile.TemporaryDirectory(prefix="ae-lanes-") as folder:
        config = Path(folder) / "events.toml"
        (Path(folder) / "slow_service.py").write_text(
            f"import time\n\ndef build(**arguments):\n    time.sleep({service_seconds})\n    return arguments\n"
        )
        known = known_settings()
        lines = [f'[events."{EVENT}"]', f'[events."{SERVICED}"]', 'service = "slow_service:build"', "[settings]"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in settings.items() if k in known]
        config.write_text("\n".join(lines) + "\n")
        with Runtime(config, environ={}) as rt:
            for path in paths:
                path, _, rate = path.partition("@")
                event = SERVICED if path.startswith("ok/service") else EVENT
                extra = {"rate_limit": rate} if rate and supports_rate_limits() else {}
                subscribe(rt.config, rt.store, event, f"{receiver.url}/{path}", secret=SECRET, **extra)
        yield config


@contextmanager
def publisher(config: Path) -> Iterator[Callable[..., None]]:
    """`send(count, event=EVENT, data=lambda n: {...})`: publish through one open runtime
    (opening one per event would cost more than the pace some scenarios keep)."""
    try:
        from asyncevents_cli.publishing import publish_batch
    except ImportError:  # a tree from before publish.py became publishing.py
        from asyncevents_cli.publish import publish_batch  # type: ignore[no-redef]
    from asyncevents_cli.runtime import Runtime

    with Runtime(config, environ={}) as rt:

        def send(count: int, event: str = EVENT, data: Callable[[int], dict[str, Any]] | None = None) -> None:
            make = data or (lambda n: {"n": n})
            publish_batch(rt.config, rt.queue, event, [make(n) for n in range(count)])

        yield send


def publish(config: Path, count: int) -> None:
    with publisher(config) as send:
        send(count)


def dead_letters(config: Path) -> int:
    from asyncevents_cli.runtime import Runtime

    with Runtime(config, environ={}) as rt:
        return int(rt.queue.depths().dead_letters)


@contextmanager
def consumers(config: Path, count: int = 1) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`ae consume all` processes (each logging to a file in the workspace), stopped at the end."""
    script = Path(sys.executable).parent / "ae"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "asyncevents_cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AE_")} | {"AE_CONFIG": str(config)}
    logs = [(config.parent / f"consumer-{n}.log").open("wb") for n in range(count)]  # closed with the folder
    procs = [
        subprocess.Popen([*command, "consume", "all"], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        for log in logs
    ]
    try:
        yield procs
    finally:
        stop(procs)
        for log in logs:
            log.close()


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM (finish what is in flight), a second one after the grace (abort it: a hanging
    receiver holds its attempts for the whole HTTP timeout), SIGKILL after 10 more."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for signum, seconds in ((signal.SIGTERM, STOP_GRACE[0]), (signal.SIGKILL, 10.0)):
        deadline = time.time() + seconds
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.send_signal(signum)
    for proc in procs:
        proc.wait()


def wait_until(done: Callable[[], bool], seconds: float, every: float = 0.2) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if done():
            return True
        time.sleep(every)
    return done()


def percentile(values: list[float], p: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


@dataclass
class Row:
    scenario: str
    measure: str
    figure: float | None
    shown: str
    target: str
    met: bool | None


# -- the scenarios --------------------------------------------------------------------


def neighbours(receiver: Receiver, sizes: Sizes) -> list[Row]:
    rates: dict[str, float] = {}
    for name, neighbour in [("alone", None), ("hanging", "hang/n"), ("1 s", "slow/1000/n")]:
        receiver.control("reset")
        paths = ["ok/healthy", *([neighbour] if neighbour else [])]
        with workspace(receiver, paths, {}) as config:
            publish(config, sizes.neighbour_events)
            with consumers(config):
                started = time.time()
                finished = wait_until(
                    lambda: len(receiver.records("healthy")) >= sizes.neighbour_events, sizes.neighbour_seconds
                )
                ended = time.time()
        arrivals = [r[0] for r in receiver.records("healthy")]
        if finished and len(arrivals) > 1:
            rates[name] = (len(arrivals) - 1) / max(arrivals[-1] - arrivals[0], 1e-9)
        else:  # unfinished: what it managed over the time it had
            rates[name] = len(arrivals) / max(ended - (arrivals[0] if arrivals else started), 1e-9)
    rows = [Row("neighbours", "healthy deliveries/s alone", rates["alone"], f"{rates['alone']:,.0f}/s", "", None)]
    for name in ("hanging", "1 s"):
        ratio = rates[name] / rates["alone"] if rates["alone"] else 0.0
        shown = f"{rates[name]:,.1f}/s = {ratio:.3f}x"
        rows.append(Row("neighbours", f"with a {name} neighbour", ratio, shown, ">= 0.9x", ratio >= 0.9))
    return rows


def slow_service(receiver: Receiver, sizes: Sizes) -> list[Row]:
    receiver.control("reset")
    settings = {"service_timeout_seconds": sizes.service_seconds + 30}
    paths = ["ok/timed", "ok/service"]
    with (
        workspace(receiver, paths, settings, sizes.service_seconds) as config,
        consumers(config),
        publisher(config) as send,
    ):
        send(1, data=lambda n: {"warm-up": True})
        wait_until(lambda: len(receiver.records("timed")) >= 1, 30)
        before = int(2 * sizes.timed_rate)
        during = int(sizes.service_seconds * sizes.timed_rate)
        next_at = time.time()
        for n in range(before + during):
            if n == before:
                send(1, SERVICED)
            send(1, data=lambda _, n=n: {"n": n, "sent": time.time()})
            next_at += 1 / sizes.timed_rate
            time.sleep(max(0.0, next_at - time.time()))
        wait_until(lambda: len(receiver.records("timed")) >= 1 + before + during, sizes.service_seconds + 30)
    delays: dict[bool, list[float]] = {False: [], True: []}
    for arrival, _status, _key, body in receiver.records("timed", body=True):
        data = json.loads(body)["data"]
        if "n" in data:
            delays[data["n"] >= before].append(arrival - data["sent"])
    p99_before, p99_during = percentile(delays[False], 99), percentile(delays[True], 99)
    served = len(receiver.records("service"))
    shown = f"{p99_during * 1000:,.0f} ms (without it: {p99_before * 1000:,.0f} ms; service delivered: {served})"
    return [
        Row(
            "slow service",
            f"p99 delay of other events during a {sizes.service_seconds:g} s service",
            p99_during,
            shown,
            "<= 100 ms",
            p99_during <= 0.100,
        )
    ]


def outage(receiver: Receiver, sizes: Sizes) -> list[Row]:
    receiver.control("reset")
    settings: dict[str, Any] = {}
    if sizes.quick_backoff:
        settings = {"backoff_unit_seconds": 0.1, "circuit_probe_seconds": 1}
    count = int(sizes.outage_seconds * sizes.outage_rate)
    with workspace(receiver, ["down/o"], settings) as config:
        with consumers(config), publisher(config) as send:
            receiver.control(f"down?seconds={sizes.outage_seconds}")
            recovery = time.time() + sizes.outage_seconds
            next_at = time.time()
            for _ in range(count):
                send(1)
                next_at += 1 / sizes.outage_rate
                time.sleep(max(0.0, next_at - time.time()))

            def delivered() -> set[str]:
                return {key for _, status, key in receiver.records("o") if status == 200}

            wait_until(lambda: len(delivered()) >= count, max(0.0, recovery - time.time()) + sizes.outage_grace, 1.0)
        dead = dead_letters(config)
    records = receiver.records("o")
    first_success: dict[str, float] = {}
    for arrival, status, key in records:
        if status == 200:
            first_success.setdefault(key, arrival)
    attempts_down = sum(1 for _, status, _ in records if status == 503)
    all_delivered = len(first_success) >= count
    catch_up = max(first_success.values()) - recovery if all_delivered else None
    rows = [
        Row(
            "outage", f"dead letters ({count} events, {sizes.outage_seconds:g} s down)", dead, str(dead), "0", dead == 0
        ),
        Row(
            "outage",
            "time to deliver every event after recovery",
            catch_up,
            f"{catch_up:.1f} s" if catch_up is not None else f"never ({count - len(first_success)} not delivered)",
            "<= 10 s",
            catch_up is not None and catch_up <= 10,
        ),
        Row(
            "outage",
            "attempts while the receiver was down",
            attempts_down,
            str(attempts_down),
            "threshold + 60 s / probe + a few",
            None,
        ),
    ]
    return rows


def overload(receiver: Receiver, sizes: Sizes) -> list[Row]:
    receiver.control("reset")
    settings = {"backoff_unit_seconds": 0.05}
    with workspace(receiver, ["busy/8/20/b"], settings) as config:
        publish(config, sizes.overload_events)
        with consumers(config):
            wait_until(
                lambda: sum(1 for r in receiver.records("b") if r[1] == 200) >= sizes.overload_events,
                sizes.overload_seconds,
                0.5,
            )
        dead = dead_letters(config)
    records = receiver.records("b")
    start = records[0][0] + sizes.overload_settle if records else 0.0
    judged = [r for r in records if r[0] >= start]
    served = [r[0] for r in judged if r[1] == 200]
    refused_share = (len(judged) - len(served)) / len(judged) if judged else 0.0
    throughput = (len(served) - 1) / max(served[-1] - served[0], 1e-9) if len(served) > 1 else 0.0
    capacity = 8 / 0.020
    return [
        Row(
            "overload",
            "503s among attempts after the first seconds",
            refused_share,
            f"{refused_share:.1%}",
            "<= 10%",
            refused_share <= 0.10,
        ),
        Row(
            "overload",
            "throughput against capacity (400/s)",
            throughput / capacity,
            f"{throughput:,.0f}/s = {throughput / capacity:.2f}x (dead letters: {dead})",
            ">= 0.8x",
            throughput / capacity >= 0.8,
        ),
    ]


def most_in_one_second(moments: list[float]) -> int:
    moments = sorted(moments)
    most, low = 0, 0  # a sliding window over the sorted times
    for high, moment in enumerate(moments):
        while moment - moments[low] >= 1.0:
            low += 1
        most = max(most, high - low + 1)
    return most


def rate_limit(receiver: Receiver, sizes: Sizes) -> list[Row]:
    receiver.control("reset")
    with workspace(receiver, ["ok/rl@20/s"], {}) as config:
        publish(config, sizes.rate_events)
        with consumers(config, 2):
            wait_until(lambda: len(receiver.records("rl")) >= sizes.rate_events, sizes.rate_seconds, 0.5)
    arrivals = sorted(r[0] for r in receiver.records("rl"))
    after_first = [m for m in arrivals if m >= arrivals[0] + 1.0] if arrivals else []
    # Everything in the first second (no limit at all): that second is the figure.
    most = most_in_one_second(after_first or arrivals)
    note = "" if supports_rate_limits() else " (this ae has no --rate-limit)"
    return [
        Row(
            "rate limit",
            "most requests in any 1 s window after the first (20/s, two consumers)",
            most,
            f"{most}{note}",
            "<= 22",
            most <= 22,
        )
    ]


SCENARIOS: dict[str, Callable[[Receiver, Sizes], list[Row]]] = {
    "neighbours": neighbours,
    "slow-service": slow_service,
    "outage": outage,
    "overload": overload,
    "rate-limit": rate_limit,
}


def table(rows: list[Row]) -> str:
    lines = ["| scenario | measure | figure | target | met |", "|---|---|---|---|---|"]
    for r in rows:
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.scenario} | {r.measure} | {r.shown} | {r.target} | {met} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness, figures mean nothing")
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), help="run only these scenarios")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--receiver", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        asyncio.run(serve_receiver())
        return 0
    sizes = QUICK if args.quick else Sizes()
    STOP_GRACE[0] = sizes.stop_grace
    receiver = Receiver()
    rows: list[Row] = []
    try:
        for name in args.only or list(SCENARIOS):
            began = time.time()
            rows += SCENARIOS[name](receiver, sizes)
            print(f"{name}: {time.time() - began:.0f} s", file=sys.stderr, flush=True)
    finally:
        receiver.close()
    print(f"Per-endpoint isolation, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}{' (--quick)' * args.quick}\n")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
