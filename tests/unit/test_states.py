"""Delivery states and subscription statuses are enums whose members are the very
strings the store keeps and `--json` prints, unchanged from before the enums."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from asyncevents_cli.states import DeliveryState, SubscriptionStatus
from asyncevents_cli.store import open_store


def test_the_stored_and_printed_strings_are_unchanged() -> None:
    assert [s.value for s in DeliveryState] == ["delivered", "retrying", "dead_lettered", "stopped", "pending", "held"]
    assert [s.value for s in SubscriptionStatus] == ["enabled", "disabled", "deleted"]
    assert [f"{s}" for s in DeliveryState] == ["delivered", "retrying", "dead_lettered", "stopped", "pending", "held"]
    assert json.dumps({"state": DeliveryState.DEAD_LETTERED}) == '{"state": "dead_lettered"}'
    assert SubscriptionStatus.of(True) is SubscriptionStatus.ENABLED
    assert SubscriptionStatus.of(False) is SubscriptionStatus.DISABLED


def test_a_state_is_stored_as_its_text_and_read_back_as_equal(tmp_path: Path) -> None:
    path = tmp_path / "ae.db"
    uuid = "00000000-0000-4000-8000-000000000001"
    with open_store(path, environ={}) as store:
        with store.transaction():
            store.log.set_delivery_state(uuid, 1, "sales.order.created", DeliveryState.RETRYING, 0)
        assert store.log.delivery(uuid)["state"] == DeliveryState.RETRYING
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT state, typeof(state) FROM deliveries").fetchall() == [("retrying", "text")]
    finally:
        conn.close()
    assert DeliveryState("retrying") is DeliveryState.RETRYING  # a row written before the enums
