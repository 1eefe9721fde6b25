"""`ae subscriptions health`: states, rates, latency and backlog read from the store,
after real deliveries to real receivers, on every backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import Receiver, ae, assert_error, backend_environ, ok, ok_json, write_config

from asyncevents_cli.health import (
    DEGRADED,
    DISABLED,
    FAILING,
    HEALTHY,
    Figures,
    health_state,
)
from asyncevents_cli.publishing import publish_batch
from asyncevents_cli.runtime import Runtime
from asyncevents_cli.subscribe import subscribe

EVENT = "sales.order.created"


@pytest.mark.parametrize(
    "figures, state",
    [
        (Figures(True, False, 0, 0, 0), HEALTHY),  # no traffic
        (Figures(True, False, 0, 100, 100), HEALTHY),
        (Figures(True, False, 0, 100, 95), HEALTHY),
        (Figures(True, False, 0, 100, 94), DEGRADED),  # below 95 % over 15 minutes
        (Figures(True, False, 1, 100, 99), DEGRADED),  # the latest attempt failed
        (Figures(True, False, 40, 20, 0), DEGRADED),  # many failures, circuit not (yet) open
        (Figures(True, True, 10, 20, 10), FAILING),  # the circuit is open
        (Figures(True, True, 0, 0, 0), FAILING),  # open, as another consumer found it
        (Figures(False, True, 10, 20, 0), DISABLED),  # auto-disabled with its circuit open
        (Figures(False, False, 0, 0, 0), DISABLED),
    ],
)
def test_the_state_from_the_figures(figures: Figures, state: str) -> None:
    assert health_state(figures) == state


def test_health_after_real_deliveries(tmp_path: Path, receiver: Receiver, backend: dict[str, Any]) -> None:
    """Four events to a healthy, an always-failing (500) and a disabled subscriber,
    max_deaths 2: the 12th failed attempt in a row opens the circuit (`failing`), 4 dead letters.
    (The threshold is the last attempt, so no retry is held, whatever the batching.)"""
    config = write_config(tmp_path, max_deaths=2, circuit_failure_threshold=12, **backend)
    with Runtime(config, environ=backend_environ()) as rt:
        healthy, _ = subscribe(rt.config, rt.store, EVENT, receiver.script("/ok", 200), secret="s")
        failing, _ = subscribe(rt.config, rt.store, EVENT, receiver.script("/down", 500), secret="s")
        disabled, _ = subscribe(rt.config, rt.store, EVENT, receiver.script("/off", 200), secret="s")
    ok(config, "subscriptions", "disable", str(disabled.subscription_id))
    with Runtime(config, environ=backend_environ()) as rt:
        publish_batch(rt.config, rt.queue, EVENT, [{"n": n} for n in range(4)])
    ok(config, "consume", "all", "--until-empty")

    rows = {r["subscription_id"]: r for r in ok_json(config, "subscriptions", "health")}
    good, bad, off = rows[healthy.subscription_id], rows[failing.subscription_id], rows[disabled.subscription_id]
    assert good["state"] == HEALTHY and good["success_rate_15m"] == 1.0 and good["success_rate_24h"] == 1.0
    assert good["attempts_15m"] == 4 and good["last_error"] is None and good["dead_lettered"] == 0
    assert 0 < good["p50_seconds_15m"] <= good["p95_seconds_15m"] < 15
    assert bad["state"] == FAILING and bad["circuit_open"] and bad["consecutive_failures"] == 12
    assert good["circuit_open"] is False and off["disabled_reason"] is None  # disabled by hand
    assert bad["success_rate_15m"] == 0.0 and bad["attempts_24h"] == 12
    assert bad["dead_lettered"] == 4 and bad["retrying"] == 0 and bad["oldest_pending_age_seconds"] is None
    assert bad["last_error"]["status_code"] == 500 and bad["last_error"]["created"].endswith("+00:00")
    assert off["state"] == DISABLED and off["attempts_24h"] == 0
    assert good["concurrency"] == 32 and good["rate_limit"] is None and good["held"] == 0

    one = ok_json(config, "subscriptions", "health", str(failing.subscription_id))
    assert [r["subscription_id"] for r in one] == [failing.subscription_id]
    shown = ok(config, "subscriptions", "health", str(failing.subscription_id)).stdout
    assert "failing" in shown and "0.0% of 12 attempt(s)" in shown and "500" in shown
    listing = ok(config, "subscriptions", "health").stdout
    assert all(state in listing for state in (HEALTHY, FAILING, DISABLED))


def test_a_retrying_delivery_shows_as_pending(tmp_path: Path, receiver: Receiver) -> None:
    """A delivery waiting out a long back-off: retrying 1, its age, `degraded`."""
    config = write_config(tmp_path, backoff_unit_seconds=600)
    with Runtime(config) as rt:
        sub, _ = subscribe(rt.config, rt.store, EVENT, receiver.script("/flaky", 503), secret="s")
        publish_batch(rt.config, rt.queue, EVENT, [{"n": 1}])
    ok(config, "consume", "trigger", "--until-empty")
    (row,) = ok_json(config, "subscriptions", "health", str(sub.subscription_id))
    assert row["state"] == DEGRADED and row["retrying"] == 1
    assert 0 <= row["oldest_pending_age_seconds"] < 120


def test_an_unknown_id_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert_error(ae(config, "subscriptions", "health", "42"), 1, "no subscription with id 42")
    assert ok(config, "subscriptions", "health").stdout.startswith("No subscriptions.")
