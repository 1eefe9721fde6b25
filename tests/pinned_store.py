"""A store whose every row and time is fixed, so the human tables are known to the character.

Two subscriptions, a delivered delivery, one retrying and one dead-lettered, filled through
the store's own API; then the times are set by SQL. test_cli_output.py pins the tables at 80
columns; test_terminal_fit.py widens the same store and runs it in real terminals.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from conftest import EVENT, ORDER, write_config

from asyncevents_cli.messages import RetryMessage
from asyncevents_cli.queues.base import RETRY
from asyncevents_cli.runtime import Runtime
from asyncevents_cli.states import DeliveryState
from asyncevents_cli.store import Attempt, parse_timestamp

UUID_DELIVERED = "0f6d7c1e-5b1a-5d3e-9c1e-0a1b2c3d4e5f"
UUID_RETRYING = "7a3e9f00-1c2d-5e4f-8a9b-c0d1e2f3a4b5"
UUID_DEAD = "c4f94511-b972-52f1-a571-5985d268d703"


def build(folder: Path) -> Path:
    """Two subscriptions, a delivered delivery, one retrying, one dead-lettered, at fixed times."""
    config = write_config(folder, max_deaths=2)
    body = json.dumps({"data": ORDER}, separators=(",", ":"))
    with Runtime(config) as rt:
        store = rt.store
        orders = store.subscriptions.add_subscription(EVENT, "https://erp.example.com/hooks/orders", "s")
        crm = store.subscriptions.add_subscription(EVENT, "https://crm.example.com/hooks/orders", "s")
        with store.transaction():
            for uuid, sub, success, code, response, deaths in [
                (UUID_DELIVERED, orders, True, 200, '{"ok": true}', 0),
                (UUID_RETRYING, crm, False, 503, "warming up", 0),
                (UUID_DEAD, crm, False, 500, "boom", 0),
                (UUID_DEAD, crm, False, 500, "boom", 1),
                (UUID_DEAD, crm, False, None, "ClientConnectorError: Cannot connect to host", 2),
            ]:
                store.log.log_attempt(
                    Attempt(uuid, sub.subscription_id, EVENT, success, code, response, body, deaths, 0.012)
                )
            store.log.set_delivery_state(UUID_DELIVERED, orders.subscription_id, EVENT, DeliveryState.DELIVERED, 0)
            store.log.set_delivery_state(
                UUID_RETRYING,
                crm.subscription_id,
                EVENT,
                DeliveryState.RETRYING,
                1,
                next_attempt_at=parse_timestamp("2999-01-01 00:00:00.000000"),
            )
            store.log.set_delivery_state(UUID_DEAD, crm.subscription_id, EVENT, DeliveryState.DEAD_LETTERED, 2)
        rt.queue.dead_letter(
            RetryMessage(crm.subscription_id, 2, json.dumps(ORDER), UUID_DEAD).encode(), "failed 3 attempt(s)", RETRY
        )
    with sqlite3.connect(folder / ".ae" / "ae.db") as db:  # fixed times, so the tables are known exactly
        db.execute("UPDATE delivery_log SET created = '2026-03-01 10:00:0' || log_id || '.250000'")
        db.execute(
            "UPDATE subscriptions SET subscribed_at = '2026-02-27 09:00:00.000000',"
            " modified = '2026-02-28 09:00:00.000000'"
        )
    return config
