"""The delivery-engine benchmark's Markdown report, and the issue's targets as ratios."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from results import Drain, Report, Sizes


@dataclass(frozen=True)
class Target:
    name: str
    measured: float | None
    goal: float
    at_least: bool  # True: measured >= goal; False: measured <= goal
    unit: str = "x"

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        return self.measured >= self.goal if self.at_least else self.measured <= self.goal

    def verdict(self) -> str:
        if self.met is None:
            return "not measured"
        if self.met:
            return "met"
        if self.at_least:
            return f"missed: {self.measured / self.goal:.2f} of the goal"
        return f"missed: {self.measured / self.goal:.2f}x the limit"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def fmt(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{unit}"


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


NAMES = {"ae db": "ae, SQLite queue", "ae amqp": "ae, RabbitMQ", "celery": "Celery worker"}


def name(who: str) -> str:
    return NAMES.get(who, who)


def shape(d: Drain) -> str:
    return f"{d.events:,} x {d.subscriptions}"


def targets(report: Report) -> list[Target]:
    def steady(who: str) -> float | None:
        d = report.drain(who, 1)
        return d.steady if d else None

    library = report.ceiling(report.delivering_library)
    small = report.drain("ae db", 1)
    large = report.rss[0] if report.rss else None
    startup = report.startup
    python = startup.get("python -c pass")
    return [
        Target(
            "SQLite queue, steady state, x 1 subscription: ae / Celery",
            ratio(steady("ae db"), steady("celery")),
            3.0,
            True,
        ),
        Target(
            f"SQLite queue, steady state: ae / raw {report.delivering_library} ceiling",
            ratio(steady("ae db"), library.rate if library else None),
            0.5,
            True,
        ),
        Target(
            "RabbitMQ, steady state, x 1 subscription: ae / Celery",
            ratio(steady("ae amqp"), steady("celery")),
            2.0,
            True,
        ),
        Target("50 ms receiver, 1 consumer: deliveries/s", report.slow.get("rate"), 400.0, True, " /s"),
        Target("`ae --help` / `python -c pass`", ratio(startup.get("ae --help"), python), 7.0, False),
        Target(
            "`ae trace UUID` (100k logs) / `python -c pass`", ratio(startup.get("ae trace UUID"), python), 10.0, False
        ),
        Target("consumer peak RSS, large backlog", large.peak_rss_mb if large else None, 150.0, False, " MB"),
        Target(
            "peak RSS large backlog / small backlog (flat)",
            ratio(large.peak_rss_mb if large else None, small.peak_rss_mb if small else None),
            1.2,
            False,
        ),
    ]


def render(report: Report, sizes: Sizes) -> str:
    out: list[str] = [
        "# Delivery engine benchmark"
        + (" (--quick: sizes too small for the figures to mean anything)" if report.quick else ""),
        "",
        f"Command: `{report.command}`  ",
        f"Date: {report.started}; the whole run took {report.seconds:.0f} s"
        + (f"; throughput runs repeated {report.repeat} times, medians shown" if report.repeat > 1 else "")
        + ".",
        "",
        "## Machine",
        "",
        *table(["", ""], [[k, v] for k, v in report.machine.items()]),
        "",
    ]
    out += sink_section(report)
    out += throughput_section(report, sizes)
    out += ceiling_section(report)
    out += celery_section(report)
    out += [
        "## 4. A receiver that takes 50 ms per request",
        "",
        f"One `ae consume all` at its default settings, 1 subscription, a backlog of {sizes.slow_events:,} events; "
        f"stopped (SIGTERM) after {sizes.slow_seconds:g} s if not done.",
        "",
        *table(
            ["deliveries", "deliveries/s (first to last)", "drained the backlog"],
            [
                [
                    fmt(report.slow.get("deliveries")),
                    fmt(report.slow.get("rate"), 1),
                    "yes" if report.slow.get("finished") else "no",
                ]
            ]
            if report.slow
            else [],
        ),
        "",
    ]
    out += startup_section(report, sizes)
    out += rss_section(report, sizes)
    out += metrics_section(report, sizes)
    out += profile_section(report)
    out += [
        "## Targets (issue 13)",
        "",
        *table(
            ["target", "measured", "goal", "verdict"],
            [
                [
                    t.name,
                    fmt(t.measured, 2, t.unit),
                    ("≥ " if t.at_least else "≤ ") + fmt(t.goal, 1, t.unit),
                    t.verdict(),
                ]
                for t in targets(report)
            ],
        ),
        "",
    ]
    if report.failures:
        out += ["## Failed parts", "", *[f"- {f}" for f in report.failures], ""]
    return "\n".join(out)


def sink_section(report: Report) -> list[str]:
    busiest = max(
        [d.sink_busy for d in report.drains + report.rss] + [c.sink_busy for c in report.ceilings], default=0.0
    )
    per_request = [c for c in report.ceilings if c.rate]
    lines = [
        "## The sink",
        "",
        f"`bench/sink.py`: a raw asyncio HTTP/1.1 protocol on {report.sink_loop}, in its own process, "
        "answering `200 ok` (after a delay on `/slow/<ms>/` paths) and noting arrival times.",
    ]
    if per_request:
        c = max(per_request, key=lambda c: c.rate)
        lines.append(
            f"At the fastest client ({c.client}, {c.rate:,.0f} requests/s) it used {c.sink_busy:.0%} of one "
            f"core, about {c.sink_busy / c.rate * 1e6:.0f} µs of CPU per request, so it can take about "
            f"{c.rate / c.sink_busy:,.0f} requests/s on one core."
        )
    lines += [f"Busiest in any run: {busiest:.0%} of one core. Below 100% it was not the limit.", ""]
    return lines


def throughput_section(report: Report, sizes: Sizes) -> list[str]:
    rows = [
        [
            name(d.who),
            shape(d),
            fmt(d.deliveries),
            fmt(d.steady),
            fmt(d.with_startup),
            fmt(d.startup_seconds, 2),
            fmt(d.cpu_us),
            fmt(d.peak_rss_mb, 0),
            fmt(d.publish_rate),
        ]
        for d in report.drains
    ]
    lat = [
        [
            name(x.who),
            f"x {x.subscriptions}",
            fmt(x.offered),
            fmt(x.deliveries),
            fmt(x.p50_ms, 1),
            fmt(x.p99_ms, 1),
            fmt(x.max_ms, 1),
            "yes" if x.signatures_ok else "NO",
        ]
        for x in report.latencies
    ]
    return [
        "## 1. End-to-end throughput and latency",
        "",
        "A backlog is published first, then one consumer process is started to drain it to the sink: "
        "`ae consume all` (SQLite queue, or RabbitMQ with the SQLite store), or the Celery worker "
        "(`bench/celery_peer.py`: RabbitMQ, `-c 2` prefork, httpx sync, HMAC, acks late, prefetch 50, "
        "one task per delivery, no log). *Steady* is timed at the sink from the first delivery to the last; "
        "*with start-up* from spawning the process to the last delivery. CPU is the consumer's user + system "
        "time (with its pool processes) from its start to the backlog's last delivery, per delivery; peak RSS "
        "is the kernel's high-water mark.",
        "",
        *table(
            [
                "consumer",
                "events x subs",
                "deliveries",
                "steady /s",
                "with start-up /s",
                "start-up s",
                "CPU µs/delivery",
                "peak RSS MB",
                "publish events/s",
            ],
            rows,
        ),
        "",
        f"Latency: then, to the same consumer, still running, events are published at a steady rate for "
        f"{sizes.paced_seconds:g} s (in batches every 10 ms): {sizes.paced_rate} deliveries/s, or half the "
        "consumer's steady rate above if that is less, so that the figure is the consumer's own latency and "
        "not time spent behind a growing queue. Publish time is taken by the publisher just before each "
        "publish call, delivery time by the sink. Every recorded request's HMAC signature is checked.",
        "",
        *table(["consumer", "subs", "offered /s", "deliveries", "p50 ms", "p99 ms", "max ms", "signatures ok"], lat),
        "",
    ]


def ceiling_section(report: Report) -> list[str]:
    rows = [
        [
            c.client + (" (32 in flight)" if c.client == "aiohttp" else " (sync, one at a time)"),
            fmt(c.rate),
            fmt(c.cpu_us),
            fmt(c.sink_busy * 100, 0, "%"),
        ]
        for c in report.ceilings
    ]
    lines = [
        "## 2. Raw client ceilings (no queue, no log)",
        "",
        "The same signed body POSTed straight at the same sink, by one process.",
        "",
        *table(["client", "requests/s", "CPU µs/request", "sink busy"], rows),
        "",
    ]
    ae = report.drain("ae db", 1)
    if ae:
        for c in report.ceilings:
            mark = " (the library `ae` delivers with)" if c.client == report.delivering_library else ""
            lines.append(f"- ae, SQLite queue, x 1, steady / {c.client} ceiling{mark}: **{ae.steady / c.rate:.2f}x**")
        lines.append("")
    return lines


def celery_section(report: Report) -> list[str]:
    rows = []
    for who in ("ae db", "ae amqp"):
        for subs in sorted({d.subscriptions for d in report.drains}):
            a, c = report.drain(who, subs), report.drain("celery", subs)
            if a and c:
                rows.append(
                    [name(who), shape(a), f"{a.steady / c.steady:.2f}x", f"{a.with_startup / c.with_startup:.2f}x"]
                )
    return [
        "## 3. ae against the Celery worker",
        "",
        *table(["ae", "events x subs", "steady ratio", "with start-up ratio"], rows),
        "",
    ]


def startup_section(report: Report, sizes: Sizes) -> list[str]:
    python = report.startup.get("python -c pass")
    rows = [[k, fmt(v * 1000, 0), f"{v / python:.1f}x" if python else "–"] for k, v in report.startup.items()]
    return [
        "## 5. Start-up",
        "",
        f"Wall time, median of {sizes.startup_runs} runs after one warm-up; `ae trace` on a store of "
        f"{sizes.trace_logs:,} logs (built with the store API in a temporary folder).",
        "",
        *table(["command", "ms", "/ python -c pass"], rows),
        "",
    ]


def metrics_section(report: Report, sizes: Sizes) -> list[str]:
    cost = report.metrics_cost
    if not cost:
        return []
    return [
        "## Metrics cost (`ae consume all --metrics-port`)",
        "",
        f"SQLite x 1 drains of {sizes.single:,} events, without and with the metrics endpoint, interleaved "
        f"{cost['runs']} times each; /metrics scraped every second while draining ({cost['scrapes']} scrapes). "
        "Target (issue 19): with at least 0.95x without.",
        "",
        *table(
            ["without (deliveries/s)", "with (deliveries/s)", "with / without", "runs without", "runs with"],
            [
                [
                    fmt(cost["without"]),
                    fmt(cost["with"]),
                    fmt(cost["ratio"], 3),
                    ", ".join(fmt(x) for x in cost["without_runs"]),
                    ", ".join(fmt(x) for x in cost["with_runs"]),
                ]
            ],
        ),
        "",
    ]


def rss_section(report: Report, sizes: Sizes) -> list[str]:
    rows = [
        [f"{d.events:,}", fmt(d.deliveries), fmt(d.peak_rss_mb, 1), fmt(d.steady), fmt(d.cpu_us)]
        for d in [report.drain("ae db", 1), *report.rss]
        if d is not None
    ]
    return [
        "## 6. Consumer memory",
        "",
        "Peak RSS (the kernel's VmHWM) of one `ae consume all` draining a backlog on the SQLite queue, "
        f"1 subscription; the small backlog is the run in part 1. The large one stops after "
        f"{sizes.backlog_seconds:g} s if not drained by then.",
        "",
        *table(["backlog (events)", "delivered", "peak RSS MB", "steady /s", "CPU µs/delivery"], rows),
        "",
    ]


def profile_section(report: Report) -> list[str]:
    profile = getattr(report, "profile", None) or {}
    lines: list[str] = []
    if "samples" in profile:
        share = [[f"`{name}`", f"{fraction:.1%}"] for name, fraction in profile["self_time"]]
        inclusive = [[f"`{name}`", f"{fraction:.1%}"] for name, fraction in profile["inclusive"]]
        lines += [
            "## Where the time goes: `ae consume all`, SQLite queue, x 1 (py-spy)",
            "",
            f"The {profile['events']:,}-event drain of part 1 once more, with `py-spy record --rate 250 "
            f"--nonblocking --format raw` attached from the first delivery to the exit "
            f"({profile['steady']:,.0f} deliveries/s under the profiler). {profile['samples']:,} samples "
            "of busy time: py-spy leaves out threads that wait (select, sleep), so the shares are of the "
            "time the process was working.",
            "",
            *table(["function, self time", "share"], share),
            "",
            *table(["function, with what it calls", "share"], inclusive),
            "",
        ]
    for n, (command, kinds) in enumerate(profile.get("imports", {}).items()):
        if n == 0:
            lines += [
                "## Where start-up goes: slowest imports (`python -X importtime`)",
                "",
                "Modules a bare `python -c pass` does not import, one run each (noisy: read the order, "
                "not the figures).",
                "",
            ]
        rows = [[f"`{name}`", fmt(ms, 1)] for name, ms in kinds["with what they import"]]
        own = [[f"`{name}`", fmt(ms, 1)] for name, ms in kinds["own time"]]
        lines += [
            f"`{command}`:",
            "",
            *table(["top-level import, with what it imports", "ms"], rows),
            "",
            *table(["any import, own time", "ms"], own),
            "",
        ]
    return lines
