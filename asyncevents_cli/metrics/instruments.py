"""The consumer's counters and histogram.

They are fed at one place: `engine/settle.py` reports every committed attempt
here, so a counter never counts an attempt the store does not hold. Nothing is
counted unless a process asked for metrics (`enable`), so a consumer without
`--metrics-port` pays one attribute read per settled batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

#: seconds: webhook answers from a few ms up to the 15 s timeout (and slow plugins)
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)


class DeliveryInstruments:
    """The counters of one process, in a registry of its own (not the library's global one)."""

    def __init__(self) -> None:
        # Imported here: prometheus_client takes ~75 ms to import, which a consumer
        # without --metrics-port (and every command that loads the engine) need not pay.
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry: CollectorRegistry = CollectorRegistry(auto_describe=True)
        self.attempts = Counter(
            "ae_delivery_attempts",
            "Delivery attempts committed to the delivery log, by event, subscription and outcome.",
            ("event", "subscription", "outcome"),
            registry=self.registry,
        )
        self.duration = Histogram(
            "ae_delivery_duration_seconds",
            "How long a delivery attempt took, from sending to the receiver's answer or the timeout.",
            ("subscription",),
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "ae_deliveries_dead_lettered",
            "Deliveries dead-lettered after their last retry.",
            ("subscription",),
            registry=self.registry,
        )

        #: label children by (event, subscription id, success): `labels()` is most of a count's cost
        self._children: dict[tuple[str, int, bool], tuple[Any, Any]] = {}

    def attempt(self, event: str, subscription_id: int, success: bool, duration: float, dead: bool) -> None:
        """One committed attempt; `dead` when it ended its chain in the dead letters."""
        key = (event, subscription_id, success)
        children = self._children.get(key)
        if children is None:
            subscription = str(subscription_id)
            outcome = "success" if success else "failure"
            children = self._children[key] = (
                self.attempts.labels(event, subscription, outcome),
                self.duration.labels(subscription),
            )
        counter, histogram = children
        counter.inc()
        histogram.observe(duration)
        if dead:
            self.dead_lettered.labels(str(subscription_id)).inc()


_active: DeliveryInstruments | None = None


def enable() -> DeliveryInstruments:
    """Start counting in this process (idempotent); the instruments to serve."""
    global _active
    if _active is None:
        from prometheus_client import disable_created_metrics

        disable_created_metrics()  # the `_created` series double every counter and no dashboard reads them
        _active = DeliveryInstruments()
    return _active


def active() -> DeliveryInstruments | None:
    """The instruments counting in this process, or None when no one asked for metrics."""
    return _active
