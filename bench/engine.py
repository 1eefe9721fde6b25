"""Delivery-engine benchmark (issue 13): `ae` against a fast sink, a slow one, raw
HTTP clients and a Celery worker, in one run, on one machine.

    python bench/engine.py [--quick] [--repeat N] [--profile] [--out REPORT.md] [--json RESULTS.json]

Needs the `bench` extra (`pip install -e '.[bench]'`), RabbitMQ on 127.0.0.1:5672
and `rabbitmqctl` (the run makes a vhost of its own and deletes it after).
Prints a Markdown report: the machine, then

1. end-to-end deliveries/s (SQLite queue, RabbitMQ, Celery) and publish-to-delivered latency;
2. raw client ceilings against the same sink, and `ae`'s ratio to them;
3. `ae`'s ratio to the Celery worker;
4. deliveries/s to a receiver that takes 50 ms per request;
5. start-up: `ae --help` and `ae trace UUID` (100,000 logs) against `python -c pass`;
6. the consumer's peak RSS draining a large backlog and a small one;

and the issue's targets, met or missed. `--quick` runs every part at a tiny
size (for CI: it checks the harness works, its figures mean nothing).
`--repeat N` repeats the throughput runs and reports medians. `--profile` drains
the SQLite backlog once more under py-spy and summarises where the time goes.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid as uuidlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent))

# imported after the path set-up, so bench/ runs as a folder of scripts
from harness import (
    HERE,
    BenchError,
    Child,
    Sink,
    Vhost,
    delivering_library,
    describe_machine,
    load_average,
    timed_command,
)
from results import QUICK, Ceiling, Drain, Latency, Report, Sizes

EVENT = "bench.order.created"
SECRET = "bench-secret"
AE_QUEUES = ["event.trigger", "event.failover.retry", "event.failover.deadletter", "event.retry.init"]
CELERY_QUEUE = "bench.celery"


def ae_command() -> list[str]:
    script = Path(sys.executable).parent / "ae"
    return [str(script)] if script.exists() else [sys.executable, "-m", "asyncevents_cli"]


def order(n: int) -> dict[str, Any]:
    return {
        "n": n,
        "increment_id": f"CK{n:08d}",
        "customer_email": f"user{n}@example.com",
        "grand_total": n % 500 + 0.5,
    }


def ae_env(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AE_")}
    env["AE_CONFIG"] = str(config)
    return env


def percentile(values: list[float], p: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


# -- one consumer run -----------------------------------------------------------------


@contextmanager
def ae_workspace(
    sink: Sink, queue: str, amqp_url: str, subscriptions: int, path: str = "hook", payload_filter: str | None = None
) -> Iterator[Path]:
    """A config, a fresh SQLite store and `subscriptions` subscribers (each with `payload_filter`),
    in a temporary folder."""
    from asyncevents_cli.runtime import Runtime
    from asyncevents_cli.subscribe import subscribe

    with tempfile.TemporaryDirectory(prefix="ae-bench-") as folder:
        config = Path(folder) / "events.toml"
        config.write_text(f'[events."{EVENT}"]\n\n[settings]\nqueue = "{queue}"\namqp_url = "{amqp_url}"\n')
        with Runtime(config, environ={}) as rt:
            for n in range(subscriptions):
                subscribe(
                    rt.config, rt.store, EVENT, f"{sink.url}/{path}/{n}", secret=SECRET, payload_filter=payload_filter
                )
        yield config


def drain_result(
    who: str,
    events: int,
    subscriptions: int,
    stats: dict[str, Any],
    child: Child,
    usage: tuple[float, float],
    publish_rate: float,
) -> Drain:
    count, first, last = stats["count"], stats["first"], stats["last"]
    span = max(last - first, 1e-9)
    cpu_seconds, peak_rss_mb = usage
    return Drain(
        who,
        events,
        subscriptions,
        count,
        (count - 1) / span,
        count / (last - child.started_wall),
        first - child.started_wall,
        cpu_seconds / count * 1e6,
        peak_rss_mb,
        publish_rate,
        stats["cpu_seconds"] / span,
    )


def paced(publish: Callable[[list[int]], None], events: int, rate: float, first: int) -> dict[int, float]:
    """Publish events `first`, `first + 1`, ... at `rate` events/s in small batches;
    return each one's publish time (taken just before its publish call)."""
    published: dict[int, float] = {}
    started = time.time()
    sent = 0
    while sent < events:
        due = min(events, int((time.time() - started) * rate) + 1)
        if due > sent:
            batch = list(range(first + sent, first + due))
            at = time.time()
            publish(batch)
            published.update((n, at) for n in batch)
            sent = due
        time.sleep(0.01)
    return published


def latency_result(who: str, subscriptions: int, rate: float, sink: Sink, published: dict[int, float]) -> Latency:
    delays, signed = [], True
    for arrived, head, body in sink.records():
        n = json.loads(body)["data"]["n"]
        delays.append((arrived - published[n]) * 1000)
        signature = next(
            (
                line.split(":", 1)[1].strip()
                for line in head.split("\r\n")
                if line.lower().startswith("x-magento-signature:")
            ),
            "",
        )
        expected = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
        signed = signed and hmac.compare_digest(signature, expected)
    if len(delays) != len(published) * subscriptions:
        raise BenchError(f"{who}: {len(delays)} of {len(published) * subscriptions} paced deliveries arrived")
    return Latency(
        who, subscriptions, rate, len(delays), percentile(delays, 50), percentile(delays, 99), max(delays), signed
    )


class Publisher(Protocol):
    def publish(self, ns: list[int]) -> None:
        """Enqueue events `order(n)` for each n, for every subscription."""


def measure(
    who: str,
    sink: Sink,
    publisher: Publisher,
    start_consumer: Callable[[], Child],
    events: int,
    subscriptions: int,
    sizes: Sizes,
    pace: bool,
    cap: float | None = None,
    attach: Callable[[Child], None] | None = None,
) -> tuple[Drain, Latency | None]:
    """Publish a backlog, start one consumer process and time it draining the backlog;
    then, with `pace`, publish at a steady rate to the same running consumer and
    measure publish-to-delivered latency. The consumer is stopped with SIGTERM.
    With a `cap` (seconds), a backlog not drained by then is measured as far as it got.
    `attach` is called with the consumer once its first delivery arrived (a profiler)."""
    started = time.perf_counter()
    publisher.publish(list(range(events)))
    publish_rate = events / (time.perf_counter() - started)
    sink.reset()
    expected = events * subscriptions
    child = start_consumer()
    try:
        if attach is not None:
            sink.wait_for(1, sizes.timeout, while_alive=child)
            attach(child)
        stats = sink.wait_for(expected, cap or sizes.timeout, while_alive=child)
        usage = child.usage()
        if stats["count"] != expected and not (cap and child.poll() is None and stats["count"] > 1):
            raise BenchError(f"{who}: {stats['count']} of {expected} deliveries; stderr: {child.stop().stderr[-400:]}")
        drain = drain_result(who, events, subscriptions, stats, child, usage, publish_rate)
        if not pace:
            return drain, None
        sink.reset(record=True)
        # Offered below what this consumer just showed it can do, so the latency is
        # the consumer's own and not the time spent behind a growing queue.
        offered = min(sizes.paced_rate, drain.steady / 2)
        rate = offered / subscriptions
        published = paced(publisher.publish, max(2, int(rate * sizes.paced_seconds)), rate, first=events)
        sink.wait_for(len(published) * subscriptions, 60 + sizes.paced_seconds, while_alive=child)
        return drain, latency_result(who, subscriptions, offered, sink, published)
    finally:
        exit = child.stop()
        if exit.returncode != 0:
            raise BenchError(f"{who}: the consumer exited {exit.returncode}: {exit.stderr[-400:]}")


def median_run(runs: list[tuple[Drain, Latency | None]]) -> tuple[Drain, Latency | None]:
    """The run with the median steady rate, so each row's figures come from one run."""
    ranked = sorted(runs, key=lambda run: run[0].steady)
    return ranked[(len(ranked) - 1) // 2]


# -- ae ----------------------------------------------------------------------------


class AePublisher:
    def __init__(self, config: Path) -> None:
        from asyncevents_cli.runtime import Runtime

        self.runtime = Runtime(config, environ={})

    def publish(self, ns: list[int]) -> None:
        from asyncevents_cli.publishing import publish_batch

        publish_batch(self.runtime.config, self.runtime.queue, EVENT, [order(n) for n in ns])

    def close(self) -> None:
        self.runtime.close()


def ae_run(
    sink: Sink,
    vhost: Vhost,
    queue: str,
    events: int,
    subscriptions: int,
    sizes: Sizes,
    pace: bool = True,
    cap: float | None = None,
    attach: Callable[[Child], None] | None = None,
    consumer_args: Sequence[str] = (),
) -> tuple[Drain, Latency | None]:
    """`ae consume all [consumer_args]` on a fresh store (and a fresh set of queues on RabbitMQ)."""
    from asyncevents_cli.runtime import Runtime

    if queue == "amqp":
        vhost.delete_queues(AE_QUEUES)
    with ae_workspace(sink, queue, vhost.url, subscriptions) as config:
        publisher = AePublisher(config)
        try:
            drain, latency = measure(
                f"ae {queue}",
                sink,
                publisher,
                lambda: Child(ae_command() + ["consume", "all", *consumer_args], env=ae_env(config)),
                events,
                subscriptions,
                sizes,
                pace,
                cap,
                attach,
            )
        finally:
            publisher.close()
        expected = drain.deliveries + (latency.deliveries if latency else 0)
        with Runtime(config, environ={}) as rt:
            logged = rt.store.log.max_log_id()
        partial = drain.deliveries < events * subscriptions  # capped: work in flight at the stop is logged too
        if logged < expected if partial else logged != expected:
            raise BenchError(f"ae {queue}: {logged} attempts logged for {expected} deliveries")
        return drain, latency


def ae_slow(sink: Sink, vhost: Vhost, sizes: Sizes) -> dict[str, float]:
    """One consumer at its default settings, 1 subscription whose receiver takes 50 ms."""
    with ae_workspace(sink, "db", vhost.url, 1, path="slow/50") as config:
        publisher = AePublisher(config)
        try:
            publisher.publish(list(range(sizes.slow_events)))
        finally:
            publisher.close()
        sink.reset()
        child = Child(ae_command() + ["consume", "all", "--until-empty"], env=ae_env(config))
        sink.wait_for(1, sizes.timeout, while_alive=child)
        started = time.time()  # the cap counts from the first delivery: start-up is part 5's business
        while child.poll() is None and time.time() - started < sizes.slow_seconds:
            time.sleep(0.05)
        exit = child.stop()
        stats = sink.stats()
        if stats["count"] < 2:
            raise BenchError(f"50 ms receiver: only {stats['count']} deliveries; stderr: {exit.stderr[-400:]}")
        return {
            "deliveries": stats["count"],
            "rate": (stats["count"] - 1) / (stats["last"] - stats["first"]),
            "finished": float(stats["count"] >= sizes.slow_events),
        }


# -- Celery ------------------------------------------------------------------------


class CeleryPublisher:
    """Publishes one `deliver` task per (event, subscription), on one connection."""

    def __init__(self, vhost: Vhost, sink: Sink, subscriptions: int) -> None:
        os.environ["BENCH_CELERY_BROKER"] = vhost.url
        import celery_peer

        celery_peer.app.conf.broker_url = vhost.url
        self.peer, self.sink, self.subscriptions = celery_peer, sink, subscriptions
        self._producer = celery_peer.app.producer_or_acquire()
        self.producer = self._producer.__enter__()

    def publish(self, ns: list[int]) -> None:
        for n in ns:
            payload = order(n)
            for s in range(self.subscriptions):
                self.peer.deliver.apply_async(
                    (f"{self.sink.url}/hook/{s}", SECRET, payload, f"{n}:{s}"), producer=self.producer
                )

    def close(self) -> None:
        self._producer.__exit__(None, None, None)


def celery_worker(vhost: Vhost) -> Child:
    env = dict(os.environ, BENCH_CELERY_BROKER=vhost.url, PYTHONPATH=str(HERE))
    return Child(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "celery_peer",
            "worker",
            "-c",
            "2",
            "-P",
            "prefork",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-Q",
            CELERY_QUEUE,
            "--loglevel",
            "WARNING",
        ],
        env=env,
        cwd=HERE,
    )


def celery_run(sink: Sink, vhost: Vhost, events: int, subscriptions: int, sizes: Sizes) -> tuple[Drain, Latency | None]:
    vhost.purge_queues([CELERY_QUEUE])  # the publisher declared it once: purge, do not delete
    publisher = CeleryPublisher(vhost, sink, subscriptions)
    try:
        return measure("celery", sink, publisher, lambda: celery_worker(vhost), events, subscriptions, sizes, True)
    finally:
        publisher.close()


def ae_profile(sink: Sink, vhost: Vhost, sizes: Sizes, keep: Path | None = None) -> dict[str, Any]:
    """The SQLite x 1 drain again, with py-spy attached from the first delivery to the exit;
    `keep` receives py-spy's raw collapsed stacks."""
    import spy

    recorders: list[spy.Recorder] = []
    with tempfile.TemporaryDirectory(prefix="ae-bench-spy-") as folder:
        output = Path(folder) / "stacks.txt"
        try:
            drain, _ = ae_run(
                sink,
                vhost,
                "db",
                sizes.single,
                1,
                sizes,
                pace=False,
                attach=lambda child: recorders.append(spy.Recorder(child.pid, output)),
            )
        except FileNotFoundError as exc:
            raise BenchError(str(exc)) from None
        errors = recorders[0].finish() if recorders else "py-spy did not start"
        if not output.exists():
            raise BenchError(f"py-spy wrote no profile: {errors[-400:]}")
        summary = spy.summarise(output.read_text())
        if keep is not None:
            keep.write_text(output.read_text())
    return {
        "who": "ae db",
        "events": sizes.single,
        "steady": drain.steady,
        "samples": summary.samples,
        "self_time": summary.self_time,
        "inclusive": summary.inclusive,
    }


# -- raw clients ---------------------------------------------------------------------


def ceiling(sink: Sink, client: str, requests: int) -> Ceiling:
    command = [sys.executable, str(HERE / "ceilings.py"), client, f"{sink.url}/hook/0", str(requests), "32"]
    sink.reset()
    child = Child(command)
    exit = child.wait(600)
    if exit.returncode != 0:
        raise BenchError(f"{client} ceiling failed: {exit.stderr[-400:]}")
    stats = sink.stats()
    span = max(stats["last"] - stats["first"], 1e-9)
    return Ceiling(client, (stats["count"] - 1) / span, exit.cpu_seconds / requests * 1e6, stats["cpu_seconds"] / span)


# -- start-up and trace -------------------------------------------------------------


def build_trace_store(config: Path, logs: int) -> str:
    """`logs` attempts in chains of three (fail, fail, success); return a uuid in the middle."""
    from asyncevents_cli.runtime import Runtime
    from asyncevents_cli.states import DeliveryState
    from asyncevents_cli.store import Attempt
    from asyncevents_cli.subscribe import subscribe

    body = json.dumps({"data": order(0)})
    with Runtime(config, environ={}) as rt:
        sub, _ = subscribe(rt.config, rt.store, EVENT, "http://127.0.0.1:9/hook", secret=SECRET)
        with rt.store.transaction():
            for n in range(logs):
                chain, step = divmod(n, 3)
                uuid = str(uuidlib.UUID(int=chain + 1))
                ok = step == 2
                rt.store.log.log_attempt(
                    Attempt(
                        uuid,
                        sub.subscription_id,
                        EVENT,
                        ok,
                        200 if ok else 500,
                        "ok" if ok else "error",
                        body,
                        step,
                        0.001,
                        f"m{chain}",
                    )
                )
                if ok:
                    rt.store.log.set_delivery_state(uuid, sub.subscription_id, EVENT, DeliveryState.DELIVERED, step)
        return str(uuidlib.UUID(int=logs // 6 + 1))


def startup(sizes: Sizes, imports: dict[str, Any] | None = None) -> dict[str, float]:
    """Wall times; with `imports`, also fill it with each `ae` command's slowest imports."""
    import spy

    def median_of(command: list[str], env: dict[str, str] | None = None) -> float:
        timed_command(command, env)  # warm the file cache and bytecode
        return statistics.median(timed_command(command, env) for _ in range(sizes.startup_runs))

    def slowest_imports(name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        if imports is not None:
            script = command[1:] if command[0] == sys.executable else command
            imports[name] = {
                "with what they import": spy.import_times(script, env),
                "own time": spy.import_times(script, env, top_level=False),
            }

    results = {
        "python -c pass": median_of([sys.executable, "-c", "pass"]),
        "ae --help": median_of(ae_command() + ["--help"]),
    }
    slowest_imports("ae --help", ae_command() + ["--help"])
    with tempfile.TemporaryDirectory(prefix="ae-bench-") as folder:
        config = Path(folder) / "events.toml"
        config.write_text(f'[events."{EVENT}"]\n')
        uuid = build_trace_store(config, sizes.trace_logs)
        results["ae trace UUID"] = median_of(ae_command() + ["trace", uuid], ae_env(config))
        slowest_imports("ae trace UUID", ae_command() + ["trace", uuid], ae_env(config))
    return results


# -- the run ---------------------------------------------------------------------

PARTS = ("ceilings", "db", "amqp", "celery", "slow", "startup", "backlog", "metrics")


def run(
    sizes: Sizes,
    repeat: int,
    report: Report,
    log: Callable[[str], None],
    profile: bool = False,
    parts: frozenset[str] = frozenset(PARTS),
    keep_profile: Path | None = None,
) -> None:
    vhost = Vhost()
    sink = Sink()
    try:
        from sink import event_loop_name

        report.sink_loop = event_loop_name()
        report.machine = describe_machine(vhost.server_version())
        report.delivering_library = delivering_library()

        def attempt(what: str, step: Callable[[], None]) -> None:
            started = time.perf_counter()
            try:
                step()
            except BenchError as exc:
                report.failures.append(f"{what}: {exc}")
                log(f"{what}: FAILED: {exc}")
            else:
                log(f"{what}: {time.perf_counter() - started:.1f} s")

        for client in ("aiohttp", "httpx") if "ceilings" in parts else ():
            attempt(f"ceiling: {client}", lambda: report.ceilings.append(median_ceiling(sink, client, sizes, repeat)))
        shapes = [(sizes.single, 1)] + ([(sizes.fanout, sizes.fanout_subs)] if sizes.fanout else [])

        def keep(runs: list[tuple[Drain, Latency | None]]) -> None:
            drain, latency = median_run(runs)
            report.drains.append(drain)
            if latency:
                report.latencies.append(latency)

        for queue in [q for q in ("db", "amqp") if q in parts]:
            for events, subs in shapes:
                attempt(
                    f"ae {queue}: {events} events x {subs}",
                    lambda: keep([ae_run(sink, vhost, queue, events, subs, sizes) for _ in range(repeat)]),
                )
        for events, subs in shapes if "celery" in parts else ():
            attempt(
                f"celery: {events} events x {subs}",
                lambda: keep([celery_run(sink, vhost, events, subs, sizes) for _ in range(repeat)]),
            )
        if "slow" in parts:
            attempt("50 ms receiver", lambda: report.slow.update(ae_slow(sink, vhost, sizes)))
        imports: dict[str, Any] = {}
        if "startup" in parts:
            attempt("start-up and trace", lambda: report.startup.update(startup(sizes, imports if profile else None)))
        if imports:
            report.profile["imports"] = imports
        if "backlog" in parts:
            attempt(
                f"backlog of {sizes.backlog}",
                lambda: report.rss.append(
                    ae_run(sink, vhost, "db", sizes.backlog, 1, sizes, pace=False, cap=sizes.backlog_seconds)[0]
                ),
            )
        if "metrics" in parts:
            from metrics_cost import metrics_cost

            def drain_steady(consumer_args: Sequence[str]) -> float:
                drain, _ = ae_run(sink, vhost, "db", sizes.single, 1, sizes, pace=False, consumer_args=consumer_args)
                return drain.steady

            attempt("metrics cost", lambda: report.metrics_cost.update(metrics_cost(drain_steady, max(2, repeat))))
        if profile:
            attempt("profile (py-spy)", lambda: report.profile.update(ae_profile(sink, vhost, sizes, keep_profile)))
    finally:
        sink.close()
        vhost.close()


def median_ceiling(sink: Sink, client: str, sizes: Sizes, repeat: int) -> Ceiling:
    requests = sizes.ceiling_requests if client == "aiohttp" else sizes.ceiling_requests // 2
    runs = sorted((ceiling(sink, client, requests) for _ in range(repeat)), key=lambda c: c.rate)
    return runs[(len(runs) - 1) // 2]


def interrupted(signum: int, frame: object) -> None:
    """SIGTERM stops the run like Ctrl-C: consumers stopped, vhost deleted, a partial report."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every part at a tiny size (for CI)")
    parser.add_argument("--repeat", type=int, default=1, help="repeat throughput runs, report medians")
    parser.add_argument("--backlog", type=int, help="events in the memory run (default 100,000)")
    parser.add_argument(
        "--backlog-seconds", type=float, help="stop the memory run after this long, drained or not (default 300)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="drain the SQLite x 1 backlog once more under py-spy and show where the time goes",
    )
    parser.add_argument(
        "--only",
        metavar="PART,...",
        help=f"run only these parts (of {','.join(PARTS)}); default all. For A/B runs: --only ceilings,db,amqp,celery",
    )
    parser.add_argument("--single", type=int, help="events in the x 1 subscription drains (default 10,000)")
    parser.add_argument("--no-fanout", action="store_true", help="skip the x 5 subscription drains")
    parser.add_argument(
        "--profile-stacks", type=Path, metavar="FILE", help="with --profile: keep py-spy's raw collapsed stacks here"
    )
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="run nothing: print the report of a run saved with --json"
    )
    parser.add_argument(
        "--filter-cost",
        action="store_true",
        help="run only the filter comparison (issue 22): consumer CPU per event without a filter and with a"
        " three-clause filter matching half or all of the events, interleaved --repeat times (bench/filter_cost.py)",
    )
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    if args.backlog:
        sizes = replace(sizes, backlog=args.backlog)
    if args.backlog_seconds:
        sizes = replace(sizes, backlog_seconds=args.backlog_seconds)
    if args.single:
        sizes = replace(sizes, single=args.single)
    if args.no_fanout:
        sizes = replace(sizes, fanout=0)
    parts = frozenset(PARTS)
    if args.only:
        parts = frozenset(p.strip() for p in args.only.split(",") if p.strip())
        if parts - set(PARTS):
            parser.error(f"unknown part(s) {sorted(parts - set(PARTS))}: choose from {', '.join(PARTS)}")
    if args.render:
        from report import render
        from results import report_from_json

        print(render(report_from_json(json.loads(args.render.read_text())), sizes))
        return 0
    signal.signal(signal.SIGTERM, interrupted)
    if args.filter_cost:
        from filter_cost import main as filter_cost

        return filter_cost(sizes, max(1, args.repeat), args.out, args.json)
    command = "python bench/engine.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = Report(command.strip(), datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), args.quick, args.repeat)
    started = time.perf_counter()
    try:
        run(
            sizes,
            max(1, args.repeat),
            report,
            lambda line: print(f"bench: {line}", file=sys.stderr, flush=True),
            profile=args.profile,
            parts=parts,
            keep_profile=args.profile_stacks,
        )
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        report.failures.append("interrupted (SIGINT or SIGTERM): the parts after the last one shown did not run")
    report.seconds = time.perf_counter() - started
    report.machine["load average at the end"] = load_average()
    from report import render

    text = render(report, sizes)
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2))
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
