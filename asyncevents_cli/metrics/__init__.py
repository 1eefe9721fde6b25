"""Prometheus metrics for `ae consume` and `ae serve`, through `prometheus_client`.

- `instruments.py`  the consumer's counters and histogram, fed from one place
                    (engine/settle.py, once an attempt is committed)
- `scrape.py`       gauges read at scrape time from the queue and the store
                    (queue depths, oldest pending delivery), never on the hot path
- `endpoint.py`     the consumer's HTTP endpoint: /metrics, /healthz, /readyz

Names follow Prometheus: snake_case, `_total` on counters, `_seconds` on times;
label values stay bounded (a subscription id, never a URL or a uuid).
"""

from __future__ import annotations

from .instruments import DeliveryInstruments, active, enable

__all__ = ["DeliveryInstruments", "active", "enable"]
