"""`ae demo`: the whole pipeline on the embedded default, in a temporary folder.

Defines an event, subscribes two endpoints of a local receiver (one fails its
first attempt), publishes the README's example orders, consumes until empty,
and returns the trace of the retried delivery. Nothing is left behind.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .publishing import publish
from .receiver import WebhookReceiver
from .runtime import Runtime
from .subscribe import subscribe
from .trace import trace

EXAMPLE_ORDERS: list[dict[str, Any]] = [
    {
        "increment_id": "CK00000101",
        "customer_email": "roni_cost@example.com",
        "grand_total": 45.5,
        "items": [{"sku": "WS12-M-Orange", "qty": 1}],
    },
    {
        "increment_id": "CK00000102",
        "customer_email": "veronica_costello@example.com",
        "grand_total": 92.0,
        "items": [{"sku": "MJ01-L-Red", "qty": 2}],
    },
    {
        "increment_id": "SO00000103",
        "customer_email": "roni_cost@example.com",
        "grand_total": 17.25,
        "items": [{"sku": "24-MB01", "qty": 1}],
    },
]

DEMO_CONFIG = """\
[events."sales.order.created"]
description = "An order was placed"

[settings]
max_deaths = 3
backoff_unit_seconds = 0.2   # one back-off unit is 0.2 s here, so the retry comes quickly
"""


def run_demo(say: Callable[[str], None]) -> dict[str, Any]:
    """Run the demo, narrating with `say`; return the retried delivery's trace."""
    with tempfile.TemporaryDirectory(prefix="ae-demo-") as folder, WebhookReceiver() as receiver:
        config_path = Path(folder) / "events.toml"
        config_path.write_text(DEMO_CONFIG)
        say(f"Defined event sales.order.created in {config_path}")
        # An empty environment: the demo shows the embedded default whatever AE_* the shell has.
        with Runtime(config_path, environ={}) as rt:
            for path, fail_first in (("/warehouse", 0), ("/crm", 1)):
                url = receiver.add(path, secret=f"demo-secret{path.replace('/', '-')}", fail_first=fail_first)
                sub, _ = subscribe(
                    rt.config, rt.store, "sales.order.created", url, secret=receiver.endpoints[path].secret
                )
                note = " (fails its first attempt)" if fail_first else ""
                say(f"Subscribed #{sub.subscription_id} -> {url}{note}")
            for order in EXAMPLE_ORDERS:
                message_id = publish(rt.config, rt.queue, "sales.order.created", order)
                say(f"Published sales.order.created {order['increment_id']} as message {message_id}")
            handled = rt.consumer().run(until_empty=True)
            delivered = sum(len(e.received) for e in receiver.endpoints.values())
            rejected = sum(e.rejected for e in receiver.endpoints.values())
            say(
                f"Consumed {handled} messages: {delivered} deliveries accepted with valid signatures, "
                f"{rejected} rejected"
            )
            retried = rt.store.log.recent_logs(failed_only=True, limit=1)
            if not retried:
                raise RuntimeError("demo expected one failed first attempt, found none")
            return trace(rt.store, retried[0]["uuid"])
