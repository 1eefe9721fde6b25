"""What the consumer's endpoint reads from the queue and the store when asked.

Gauges (queue depths, the oldest pending delivery per subscription) are read at
scrape time, not kept up to date on the hot path. Every read runs on one
thread of its own, over connections of its own (a `Runtime` opened here, not
the consumer's), with a deadline: a store that hangs makes `/readyz` answer 503
within `READY_TIMEOUT_SECONDS`, and never blocks a scrape or a delivery.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..config import Config
from ..errors import AeError
from ..runtime import Runtime
from ..store.records import parse_timestamp, utcnow

log = logging.getLogger("asyncevents_cli")

READY_TIMEOUT_SECONDS = 1.5  # /readyz answers within this, reachable or not
FRESH_FOR_SECONDS = 0.5  # a look this recent is reused: a busy scraper does not hammer the store
QUEUE_NAMES = ("trigger", "retry_due", "retry_delayed", "held", "dead_letters")


@dataclass(frozen=True)
class Look:
    """The queue and the store as one probe found them; `problem` is None when both answered."""

    problem: str | None
    depths: dict[str, int] = field(default_factory=dict)
    oldest_pending: dict[int, str] = field(default_factory=dict)
    circuits_open: dict[int, bool] = field(default_factory=dict)  # every enabled subscription's circuit
    at: datetime = field(default_factory=utcnow)


class Probe:
    """Looks at the store and the queue on a thread of its own, with a deadline."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._runtime: Runtime | None = None
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ae-metrics-probe")
        self._lock = threading.Lock()
        self._pending: concurrent.futures.Future[Look] | None = None
        self._last: tuple[float, Look] | None = None

    def look(self, timeout: float = READY_TIMEOUT_SECONDS) -> Look:
        """A fresh look, or one saying the store or queue did not answer in time."""
        with self._lock:
            if self._last is not None and time.monotonic() - self._last[0] < FRESH_FOR_SECONDS:
                return self._last[1]
            if self._pending is None or self._pending.done():
                self._pending = self._worker.submit(self._look)  # one at a time, never a pile-up
            pending = self._pending
        try:
            found = pending.result(timeout)
        except concurrent.futures.TimeoutError:
            return Look(problem=f"the store or queue did not answer within {timeout:g} s")
        with self._lock:
            self._last = (time.monotonic(), found)
        return found

    def _look(self) -> Look:
        try:
            runtime = self._runtime = self._runtime or Runtime(config=self._config)
            runtime.store.health.ping()
            depths = runtime.queue.depths().as_dict()
            oldest = runtime.store.health.oldest_pending()
            held = runtime.store.lanes.held_counts()
            circuits = _circuits(runtime)
        except Exception as exc:  # whatever went wrong, the answer is "not ready", and a new connection next time
            self._drop()
            return Look(problem=_problem(exc))
        # held deliveries wait in the store (pending_deliveries), not in the queue
        depths["held"] = sum(held.values())
        return Look(problem=None, depths=depths, oldest_pending=oldest, circuits_open=circuits)

    def _drop(self) -> None:
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            try:
                runtime.close()
            except Exception as exc:  # closing a broken connection may fail too; nothing else to do
                log.debug("closing the metrics probe's connections: %s", exc)

    def close(self) -> None:
        self._worker.submit(self._drop)
        self._worker.shutdown(wait=False, cancel_futures=False)


def _circuits(runtime: Runtime) -> dict[int, bool]:
    """subscription id -> whether its circuit is open, for every enabled subscription (0 for most)."""
    states = runtime.store.lanes.endpoint_states()
    enabled = [sub.subscription_id for sub in runtime.store.subscriptions.all(reveal=False) if sub.enabled]
    return {i: i in states and states[i].circuit_open for i in enabled}


def _problem(exc: Exception) -> str:
    """One line for /readyz: the project's own message, or the exception's class and text."""
    if isinstance(exc, AeError):
        return exc.message
    return f"{exc.__class__.__name__}: {' '.join(str(exc).split())[:300]}"


class QueueCollector(Collector):
    """The scrape-time gauges, from the probe's latest look."""

    def __init__(self, probe: Probe, in_flight: Callable[[], int], limits: Callable[[], dict[int, int]] = dict) -> None:
        self._probe = probe
        self._in_flight = in_flight
        self._limits = limits

    def collect(self) -> Iterator[GaugeMetricFamily]:
        in_flight = GaugeMetricFamily("ae_consumer_in_flight", "Delivery attempts under way in this consumer.")
        in_flight.add_metric([], self._in_flight())
        yield in_flight
        limit = GaugeMetricFamily(
            "ae_subscription_concurrency_limit",
            "This consumer's current in-flight limit for the subscription (its lane's adaptive limit).",
            labels=["subscription"],
        )
        for subscription_id, value in sorted(self._limits().items()):
            limit.add_metric([str(subscription_id)], value)
        yield limit
        look = self._probe.look()
        up = GaugeMetricFamily("ae_store_up", "1 when the store and queue answered this scrape's look, else 0.")
        up.add_metric([], 0 if look.problem else 1)
        yield up
        if look.problem:
            return
        queues = GaugeMetricFamily("ae_queue_messages", "Messages waiting, by queue.", labels=["queue"])
        for name in QUEUE_NAMES:
            queues.add_metric([name], look.depths.get(name, 0))
        yield queues
        oldest = GaugeMetricFamily(
            "ae_oldest_pending_delivery_age_seconds",
            "Age of the subscription's oldest delivery still retrying, since its first attempt.",
            labels=["subscription"],
        )
        for subscription_id, created in sorted(look.oldest_pending.items()):
            age = (look.at - parse_timestamp(created)).total_seconds()
            oldest.add_metric([str(subscription_id)], max(0.0, age))
        yield oldest
        circuit = GaugeMetricFamily(
            "ae_subscription_circuit_open",
            "1 while the subscription's circuit is open (its deliveries are held), else 0.",
            labels=["subscription"],
        )
        for subscription_id, is_open in sorted(look.circuits_open.items()):
            circuit.add_metric([str(subscription_id)], 1 if is_open else 0)
        yield circuit
