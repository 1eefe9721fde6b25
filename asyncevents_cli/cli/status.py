"""`ae status` (queue depths and delivery counts by subscription) and `ae deadletters`."""

from __future__ import annotations

import json
from typing import Any

import typer

from .. import status as statuses
from .context import JSON_OPTION, runtime
from .output import emit, note, show, table


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


def deadletters(
    ctx: typer.Context,
    limit: int = typer.Option(50, "--limit", min=1, help="How many parked messages, oldest first."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List parked messages and why: dead-lettered retries and triggers that could not be handled."""
    rows = statuses.dead_letters(runtime(ctx).queue, limit)

    def render(data: list[dict[str, Any]]) -> None:
        show(table(["message id", "origin", "what", "reason"], [
            (r["message_id"], r["origin"], _what(r), r["reason"]) for r in data
        ], title="Dead letters"))
        if data:
            note("A retry: `ae replay UUID` starts it again. A trigger: publish it again once its cause is fixed.")

    emit(rows, as_json, render)


def _what(row: dict[str, Any]) -> str:
    if "uuid" in row:
        return f"uuid {row['uuid']} (subscription {row['subscription_id']}, death count {row['death_count']})"
    if "event_name" in row:
        return f"{row['event_name']} {json.dumps(row['arguments'], ensure_ascii=False)[:80]}"
    return row.get("body", "")[:80]
