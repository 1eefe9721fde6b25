"""`ae status`: queue depths and delivery counts by subscription."""

from __future__ import annotations

from typing import Any

import typer

from .. import status as statuses
from .context import JSON_OPTION, runtime
from .output import emit, show, table


def status(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Show queue depths (trigger, retry due, retry delayed, dead letters) and deliveries."""
    rt = runtime(ctx)
    data = statuses.status(rt.config, rt.store, rt.queue)
    emit(data, as_json, render)


def render(data: dict[str, Any]) -> None:
    q = data["queues"]
    show(table(["queue", "messages"], [
        ("trigger", q["trigger"]),
        ("retry due", q["retry_due"]),
        ("retry delayed", q["retry_delayed"]),
        ("dead letters", q["dead_letters"]),
        ("in flight", q["in_flight"]),
    ], title=f"Queues ({data['backend']})"))
    show(table(
        ["id", "event", "recipient", "status", "attempts", "ok", "failed", "delivered", "retrying", "dead"],
        [(s["subscription_id"], s["event_name"], s["recipient_url"], s["status"], s["attempts"], s["succeeded"],
          s["failed"], s["delivered"], s["retrying"], s["dead_lettered"]) for s in data["subscriptions"]],
        title="Deliveries by subscription",
    ))
