"""What one benchmark run measured, as plain data (the report renders it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sizes:
    single: int = 10_000  # events x 1 subscription
    fanout: int = 2_000  # events x FANOUT_SUBS subscriptions
    fanout_subs: int = 5
    paced_rate: int = 500  # deliveries/s offered in the latency runs, at most
    paced_seconds: float = 4.0
    ceiling_requests: int = 20_000
    slow_events: int = 3_000
    slow_seconds: float = 12.0  # the 50 ms run stops after this long, finished or not
    backlog: int = 100_000  # the RSS run; the small backlog is the `single` run
    backlog_seconds: float = 300.0  # the RSS run stops after this long, drained or not
    trace_logs: int = 100_000
    startup_runs: int = 7
    timeout: float = 600.0  # one drain may take this long before it counts as failed


QUICK = Sizes(
    single=200,
    fanout=40,
    paced_rate=200,
    paced_seconds=0.5,
    ceiling_requests=300,
    slow_events=60,
    slow_seconds=1.5,
    backlog=600,
    backlog_seconds=60.0,
    trace_logs=1_000,
    startup_runs=1,
    timeout=120.0,
)


@dataclass
class Drain:
    """One consumer draining a backlog to the fast sink."""

    who: str  # "ae sqlite", "ae amqp", "celery"
    events: int
    subscriptions: int
    deliveries: int
    steady: float  # deliveries/s, first delivery to last
    with_startup: float  # deliveries/s, process spawn to last delivery
    startup_seconds: float  # spawn to first delivery
    cpu_us: float  # consumer CPU per delivery, whole process life
    peak_rss_mb: float
    publish_rate: float  # events/s the publisher enqueued the backlog at
    sink_busy: float  # the sink's CPU / (first to last delivery): 1.0 is one core


@dataclass
class Latency:
    who: str
    subscriptions: int
    offered: float  # deliveries/s
    deliveries: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    signatures_ok: bool


@dataclass
class Ceiling:
    client: str
    rate: float
    cpu_us: float
    sink_busy: float


@dataclass
class Report:
    command: str
    started: str
    quick: bool
    repeat: int
    machine: dict[str, str] = field(default_factory=dict)
    delivering_library: str = ""
    sink_loop: str = ""
    drains: list[Drain] = field(default_factory=list)
    latencies: list[Latency] = field(default_factory=list)
    ceilings: list[Ceiling] = field(default_factory=list)
    slow: dict[str, float] = field(default_factory=dict)
    startup: dict[str, float] = field(default_factory=dict)
    rss: list[Drain] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)  # py-spy's summary, with --profile
    metrics_cost: dict[str, Any] = field(default_factory=dict)  # steady rates without and with --metrics-port
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def drain(self, who: str, subscriptions: int) -> Drain | None:
        return next((d for d in self.drains if d.who == who and d.subscriptions == subscriptions), None)

    def ceiling(self, client: str) -> Ceiling | None:
        return next((c for c in self.ceilings if c.client == client), None)


def report_from_json(data: dict[str, Any]) -> Report:
    """A saved run (`--json`) back as a Report, to render it again."""
    data = dict(data)
    data["drains"] = [Drain(**d) for d in data.get("drains", [])]
    data["rss"] = [Drain(**d) for d in data.get("rss", [])]
    data["latencies"] = [Latency(**x) for x in data.get("latencies", [])]
    data["ceilings"] = [Ceiling(**c) for c in data.get("ceilings", [])]
    return Report(**data)
