"""Scale-out benchmark (issue 8): deliveries/s for 1, 2 and 4 `ae consume` processes
on a PostgreSQL store, with RabbitMQ and with the PostgreSQL table queue, against
the fast sink and a receiver that takes 50 ms; and the SQLite default's fast-sink
rate in the same run, for the ratio.

    python bench/scale.py [--quick] [--events N] [--slow-events N] [--out REPORT.md] [--json FIGURES.json]

Needs PostgreSQL (AE_BENCH_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/postgres;
the run makes a database of its own and drops it after), RabbitMQ on 127.0.0.1:5672
and `rabbitmqctl` (a vhost of its own, deleted after). `--quick` runs every cell at a
tiny size: it checks that the harness works; its figures mean nothing.

Each cell: a fresh store (and fresh queues), one subscription; N consumer processes
started and connected first, then a backlog of events published; the rate is
(deliveries - 1) / (last arrival - first arrival) at the sink, so start-up is not
counted. Every delivery is checked against the log (one logged attempt each).
The 50 ms cells run each consumer with `--concurrency 8` (see SLOW_WINDOW).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import sys
import tempfile
import time
import uuid as uuidlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine import AE_QUEUES, EVENT, SECRET, ae_command, order
from harness import BenchError, Child, Sink, Vhost, describe_machine, load_average

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
#: a Fernet key for the run's store: a PostgreSQL store takes its key from AE_SECRET_KEY
SECRET_KEY = "x3kDcqKJvD1V5t6tq0p2bH0QbcXKfD0hF6Ol5mW0m2E="
#: each consumer's window against the 50 ms receiver: one consumer is then bound by
#: the receiver (8 / 0.05 s = 160/s), which is what scaling out is for. With the
#: default window (64, 32 per subscription) one consumer alone would reach 640/s and
#: four would be bound by this 2-core machine instead.
SLOW_WINDOW = 8
CONSUMERS = (1, 2, 4)
SETUPS = {"pg+amqp": ("postgresql", "amqp"), "pg+db": ("postgresql", "db")}


@dataclass(frozen=True)
class Sizes:
    events: int = 4000  # fast-sink backlog
    slow_events: int = 2500  # 50 ms receiver backlog
    cap_seconds: float = 60.0  # a cell not drained by then is measured as far as it got
    timeout: float = 180.0


QUICK = Sizes(events=40, slow_events=40, cap_seconds=60.0, timeout=120.0)


@dataclass
class Cell:
    setup: str
    receiver: str  # "fast" or "50 ms"
    consumers: int
    events: int
    deliveries: int
    rate: float
    load: str  # 1-minute load average when the cell ended
    drained: bool
    cpu_ms: float  # CPU time of all its consumer processes per delivery (start-up included)


@dataclass
class Results:
    started: str = ""
    machine: dict[str, str] = field(default_factory=dict)
    cells: list[Cell] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    profiles: dict[str, Any] = field(default_factory=dict)  # cell -> py-spy summary of its first consumer


# -- a database per run ------------------------------------------------------------


def admin_url() -> str:
    return os.environ.get("AE_BENCH_POSTGRES_URL") or DEFAULT_POSTGRES_URL


def with_database(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


@contextmanager
def postgres_database() -> Iterator[str]:
    import psycopg

    name = f"ae_bench_{uuidlib.uuid4().hex[:12]}"
    try:
        with psycopg.connect(admin_url(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise BenchError(f"cannot make a PostgreSQL database at {admin_url()}: {exc}") from None
    try:
        yield with_database(admin_url(), name)
    finally:
        with psycopg.connect(admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_database(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


# -- one cell ------------------------------------------------------------------------


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AE_")}
    env["AE_SECRET_KEY"] = SECRET_KEY
    return env


@contextmanager
def workspace(sink: Sink, database: str | None, queue: str, amqp_url: str, path: str) -> Iterator[Path]:
    """A config on a fresh store (PostgreSQL `database`, or a SQLite file when None) with one subscription."""
    from asyncevents_cli.runtime import Runtime
    from asyncevents_cli.subscribe import subscribe

    with tempfile.TemporaryDirectory(prefix="ae-scale-") as folder:
        config = Path(folder) / "events.toml"
        lines = [f'[events."{EVENT}"]', "", "[settings]", f'queue = "{queue}"', f'amqp_url = "{amqp_url}"']
        if database:
            lines.append(f'database = "{database}"')
        config.write_text("\n".join(lines) + "\n")
        with Runtime(config, environ={"AE_SECRET_KEY": SECRET_KEY}) as rt:
            subscribe(rt.config, rt.store, EVENT, f"{sink.url}/{path}", secret=SECRET)
        yield config


def publish_backlog(config: Path, events: int) -> None:
    from asyncevents_cli.publishing import publish_batch
    from asyncevents_cli.runtime import Runtime

    with Runtime(config, environ={"AE_SECRET_KEY": SECRET_KEY}) as rt:
        for first in range(0, events, 1000):
            publish_batch(rt.config, rt.queue, EVENT, [order(n) for n in range(first, min(events, first + 1000))])


def logged_attempts(config: Path) -> int:
    from asyncevents_cli.runtime import Runtime

    with Runtime(config, environ={"AE_SECRET_KEY": SECRET_KEY}) as rt:
        return rt.store.log.max_log_id()


def cell(
    sink: Sink,
    vhost: Vhost,
    database: str | None,
    setup: str,
    queue: str,
    slow: bool,
    consumers: int,
    sizes: Sizes,
    profile: dict[str, Any] | None = None,
) -> Cell:
    if database:
        empty_database(database)
    if queue == "amqp":
        vhost.delete_queues(AE_QUEUES)
    events = sizes.slow_events if slow else sizes.events
    options = ["--concurrency", str(SLOW_WINDOW)] if slow else []
    with workspace(sink, database, queue, vhost.url, "slow/50" if slow else "hook") as config:
        sink.reset()
        env = environment()
        env["AE_CONFIG"] = str(config)
        if database:
            # Consumers first, each named (PGAPPNAME) so the run can see it connected;
            # then the backlog: no consumer's start-up falls inside the measured span.
            names = [f"ae-scale-{uuidlib.uuid4().hex[:8]}" for _ in range(consumers)]
            children = [
                Child(ae_command() + ["consume", "all", *options], env={**env, "PGAPPNAME": name}) for name in names
            ]
            wait_connected(database, names, children, sizes.timeout)
            recorder = start_profile(children[0]) if profile is not None else None
            publish_backlog(config, events)
        else:
            publish_backlog(config, events)
            children = [Child(ae_command() + ["consume", "all", *options], env=env) for _ in range(consumers)]
            recorder = None
        try:
            first = sink.wait_for(1, sizes.timeout)
            if first["count"] < 1:
                raise BenchError("no delivery arrived")
            deadline = time.time() + sizes.cap_seconds
            while sink.stats()["count"] < events and time.time() < deadline:
                if any(child.poll() is not None for child in children):
                    raise BenchError("a consumer exited early")
                time.sleep(0.05)
            stats = sink.stats()
            cpu = sum(child.usage()[0] for child in children)
        finally:
            exits = [child.stop() for child in children]
        if recorder is not None and profile is not None:
            profile.update(finish_profile(recorder))
        bad = [e for e in exits if e.returncode != 0]
        if bad:
            raise BenchError(f"a consumer exited {bad[0].returncode}: {bad[0].stderr[-400:]}")
        count = stats["count"]
        logged = logged_attempts(config)
        if (count >= events and logged != count) or logged < count:
            raise BenchError(f"{logged} attempts logged for {count} deliveries")
        rate = (count - 1) / max(stats["last"] - stats["first"], 1e-9)
        return Cell(
            setup,
            "50 ms" if slow else "fast",
            consumers,
            events,
            count,
            rate,
            load_average().split()[0],
            count >= events,
            cpu / count * 1000,
        )


def start_profile(child: Child) -> Any:
    from spy import Recorder

    raw = Path(tempfile.mkdtemp(prefix="ae-scale-spy-")) / "stacks.txt"
    return Recorder(child.pid, raw)


def finish_profile(recorder: Any) -> dict[str, Any]:
    from spy import summarise

    recorder.finish()
    summary = summarise(recorder.output.read_text() if recorder.output.exists() else "")
    return {"samples": summary.samples, "self": summary.self_time, "inclusive": summary.inclusive}


def wait_connected(database: str, names: list[str], children: list[Child], timeout: float) -> None:
    """Until every consumer has a connection to `database` (and a moment more, to start polling)."""
    import psycopg

    deadline = time.time() + timeout
    with psycopg.connect(database, autocommit=True) as conn:
        while True:
            seen = {
                row[0]
                for row in conn.execute(
                    "SELECT application_name FROM pg_stat_activity WHERE datname = current_database()"
                )
            }
            if set(names) <= seen:
                break
            if any(child.poll() is not None for child in children) or time.time() > deadline:
                for child in children:
                    child.stop()
                raise BenchError("the consumers did not all connect")
            time.sleep(0.05)
    time.sleep(0.5)


# -- the run -------------------------------------------------------------------------


def run(sizes: Sizes, results: Results, log: Callable[[str], None], setups: list[str], profile: bool) -> None:
    vhost = Vhost()
    sink = Sink()
    try:
        results.machine = describe_machine(vhost.server_version())
        results.machine["PostgreSQL"] = server_version()

        def attempt(what: str, step: Callable[[], Cell]) -> None:
            started = time.perf_counter()
            try:
                results.cells.append(step())
            except BenchError as exc:
                results.failures.append(f"{what}: {exc}")
                log(f"{what}: FAILED: {exc}")
            else:
                c = results.cells[-1]
                log(f"{what}: {c.rate:.0f}/s ({c.deliveries} deliveries, {time.perf_counter() - started:.1f} s)")

        attempt("sqlite+db fast x1", lambda: cell(sink, vhost, None, "sqlite+db", "db", False, 1, sizes))
        with postgres_database() as database:
            for setup in setups:
                queue = SETUPS[setup][1]
                for slow in (False, True):
                    for n in CONSUMERS:
                        what = f"{setup} {'50 ms' if slow else 'fast'} x{n}"
                        spied = results.profiles.setdefault(what, {}) if profile and slow and n == 4 else None
                        attempt(
                            what, functools.partial(cell, sink, vhost, database, setup, queue, slow, n, sizes, spied)
                        )
        attempt("sqlite+db fast x1 (again)", lambda: cell(sink, vhost, None, "sqlite+db", "db", False, 1, sizes))
    finally:
        sink.close()
        vhost.close()


def server_version() -> str:
    import psycopg

    with psycopg.connect(admin_url(), connect_timeout=5) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0])


def rate_of(results: Results, setup: str, receiver: str, consumers: int) -> float | None:
    rates = [c.rate for c in results.cells if (c.setup, c.receiver, c.consumers) == (setup, receiver, consumers)]
    return sum(rates) / len(rates) if rates else None


def targets(results: Results) -> list[tuple[str, float | None, float, bool | None]]:
    """(what, measured ratio, target, met)."""
    rows = []
    sqlite = rate_of(results, "sqlite+db", "fast", 1)  # mean of the two SQLite runs, before and after
    for setup in SETUPS:
        one, four = rate_of(results, setup, "50 ms", 1), rate_of(results, setup, "50 ms", 4)
        ratio = four / one if one and four else None
        rows.append((f"{setup}, 50 ms receiver: 4 consumers / 1", ratio, 3.0, None if ratio is None else ratio >= 3))
        fast = rate_of(results, setup, "fast", 1)
        ratio = fast / sqlite if fast and sqlite else None
        rows.append(
            (f"{setup}, fast sink, 1 consumer / SQLite default", ratio, 0.5, None if ratio is None else ratio >= 0.5)
        )
        best = max((c.rate for c in results.cells if c.setup == setup and c.receiver == "fast"), default=None)
        ratio = best / sqlite if best and sqlite else None
        rows.append(
            (
                f"{setup}, fast sink, best of 1/2/4 consumers / SQLite default",
                ratio,
                0.5,
                None if ratio is None else ratio >= 0.5,
            )
        )
    return rows


def render(results: Results, sizes: Sizes, command: str) -> str:
    out = [f"# Scale-out benchmark ({results.started})", "", f"Command: `{command}`", "", "## Machine", ""]
    out += [f"- {k}: {v}" for k, v in results.machine.items()]
    out += [
        "",
        f"Backlogs: {sizes.events} events (fast sink), {sizes.slow_events} (50 ms receiver), one "
        f"subscription; 50 ms cells run each consumer with --concurrency {SLOW_WINDOW}; a cell is cut "
        f"at {sizes.cap_seconds:g} s after its first delivery (drained: no).",
        "",
        "## Deliveries/s",
        "",
        "| setup | receiver | consumers | deliveries | drained | per s | consumers' CPU ms per delivery"
        " | load (1 min) |",
        "|---|---|---:|---:|---|---:|---:|---:|",
    ]
    for c in results.cells:
        out.append(
            f"| {c.setup} | {c.receiver} | {c.consumers} | {c.deliveries} | {'yes' if c.drained else 'no'} "
            f"| {c.rate:.0f} | {c.cpu_ms:.2f} | {c.load} |"
        )
    out += ["", "## Targets (issue 8)", "", "| ratio | measured | target | met |", "|---|---:|---:|---|"]
    for what, ratio, target, met in targets(results):
        shown = "n/a" if ratio is None else f"{ratio:.2f}x"
        out.append(f"| {what} | {shown} | {target:g}x | {'n/a' if met is None else 'yes' if met else 'NO'} |")
    for what, summary in results.profiles.items():
        samples = summary.get("samples", 0)
        out += [
            "",
            f"## Where the time goes: {what}, first consumer (py-spy, {samples} busy samples)",
            "",
            "| function (self) | share |",
            "|---|---:|",
        ]
        out += [f"| {name} | {share:.0%} |" for name, share in summary.get("self", [])[:12]]
        out += ["", "| function (inclusive) | share |", "|---|---:|"]
        out += [f"| {name} | {share:.0%} |" for name, share in summary.get("inclusive", [])[:12]]
    if results.failures:
        out += ["", "## Failed cells", ""] + [f"- {f}" for f in results.failures]
    return "\n".join(out) + "\n"


def interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every cell at a tiny size (for tests)")
    parser.add_argument("--events", type=int, help=f"fast-sink backlog (default {Sizes.events})")
    parser.add_argument("--slow-events", type=int, help=f"50 ms receiver backlog (default {Sizes.slow_events})")
    parser.add_argument("--only", metavar="SETUP,...", help=f"only these of {','.join(SETUPS)} (default both)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy on the first consumer of each 4-consumer 50 ms cell: where its time goes",
    )
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    if args.events:
        sizes = Sizes(args.events, sizes.slow_events, sizes.cap_seconds, sizes.timeout)
    if args.slow_events:
        sizes = Sizes(sizes.events, args.slow_events, sizes.cap_seconds, sizes.timeout)
    signal.signal(signal.SIGTERM, interrupted)
    results = Results(started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    try:
        setups = [x.strip() for x in args.only.split(",")] if args.only else list(SETUPS)
        if set(setups) - set(SETUPS):
            parser.error(f"unknown setup(s): choose from {', '.join(SETUPS)}")
        run(sizes, results, lambda line: print(f"bench: {line}", file=sys.stderr, flush=True), setups, args.profile)
    except BenchError as exc:
        results.failures.append(str(exc))
    except KeyboardInterrupt:
        results.failures.append("interrupted")
    text = render(results, sizes, "python bench/scale.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(asdict(results), indent=2))
    return 1 if results.failures else 0


if __name__ == "__main__":
    sys.exit(main())
