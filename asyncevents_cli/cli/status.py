"""`ae status` (queue depths and delivery counts by subscription) and `ae deadletters`."""

from __future__ import annotations

import json
from typing import Any

import typer

from .. import status as statuses
from .context import JSON_OPTION, YES_OPTION, confirm, runtime
from .output import Col, emit, note, say, table


def status(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Show queue depths (trigger, retry due, retry delayed, dead letters) and deliveries."""
    rt = runtime(ctx)
    data = statuses.status(rt.config, rt.store, rt.queue)
    emit(data, as_json, render)


def render(data: dict[str, Any]) -> None:
    q = data["queues"]
    table(
        [Col("queue"), Col("messages", whole=True, justify="right")],
        [
            ("trigger", q["trigger"]),
            ("retry due", q["retry_due"]),
            ("retry delayed", q["retry_delayed"]),
            ("dead letters", q["dead_letters"]),
            ("in flight", q["in_flight"]),
        ],
        title=f"Queues ({data['backend']})",
    )
    say("")

    # events held back by filters: a column only once some subscription has any
    filtering = any(s["filtered"] for s in data["subscriptions"])

    def number(header: str, drop: int = 0) -> Col:
        return Col(header, whole=True, justify="right", drop=drop)

    table(
        [
            number("id"),
            Col("event"),
            Col("recipient", drop=1),
            Col("status", whole=True, drop=1),
            number("attempts", drop=2),
            number("ok"),
            number("failed"),
            number("delivered"),
            number("retrying"),
            number("held"),
            number("dead"),
            *([number("filtered", drop=3)] if filtering else []),
        ],
        [
            (
                s["subscription_id"],
                s["event_name"],
                s["recipient_url"],
                s["status"],
                s["attempts"],
                s["succeeded"],
                s["failed"],
                s["delivered"],
                s["retrying"],
                s["held"],
                s["dead_lettered"],
                *([s["filtered"]] if filtering else []),
            )
            for s in data["subscriptions"]
        ],
        title="Deliveries by subscription",
        empty="No subscriptions yet: `ae subscribe EVENT URL` adds one.",
    )


deadletters_app = typer.Typer(help="Parked messages: list, purge, requeue parked triggers.")


@deadletters_app.callback(invoke_without_command=True)
def deadletters(
    ctx: typer.Context,
    limit: int = typer.Option(50, "--limit", min=1, help="How many parked messages, oldest first."),
    include_resolved: bool = typer.Option(
        False, "--all", help="Also dead letters resolved since (their delivery later succeeded)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """List parked messages and why: dead-lettered retries and triggers that could not be handled."""
    if ctx.invoked_subcommand is not None:
        return
    rt = runtime(ctx)
    rows = statuses.dead_letters(rt.queue, rt.store, limit, include_resolved)

    def render(data: list[dict[str, Any]]) -> None:
        table(
            [
                Col("origin", whole=True),
                Col("uuid", whole=True),
                Col("what"),
                Col("reason"),
                Col("message id", whole=True, drop=1),
                Col("parked (UTC)", whole=True, drop=2),
            ],
            [
                (
                    r["origin"] + (" (resolved)" if r["resolved"] else ""),
                    r.get("uuid", ""),
                    _what(r),
                    r["reason"],
                    r["message_id"],
                    _parked(r),
                )
                for r in data
            ],
            title="Dead letters",
            empty="No dead letters." + ("" if include_resolved else " (--all also lists resolved ones)"),
        )
        if data:
            note(
                "A retry: `ae replay UUID` starts it again. A trigger: `ae deadletters requeue` once its cause"
                " is fixed."
            )

    emit(rows, as_json, render)


@deadletters_app.command("purge")
def purge(
    ctx: typer.Context,
    before: str | None = typer.Option(
        None,
        "--before",
        help="Only messages parked before this UTC date or date-time (e.g. 2026-01-31).",
        show_default=False,
    ),
    yes: bool = YES_OPTION,
) -> None:
    """Delete parked messages for good (all of them, or those parked before --before), after asking.

    Without --yes it asks on a terminal, and refuses (exit 2) when stdin is not one.

    Example: ae deadletters purge --before 2026-01-31 --yes
    """
    moment = statuses.parse_moment(before) if before is not None else None
    rt = runtime(ctx)
    what = f"messages parked before {before}" if before else "all parked messages"
    confirm(f"Delete {what} for good?", yes)
    say(f"purged {rt.queue.purge_dead_letters(moment)} dead letter(s)")


@deadletters_app.command("requeue")
def requeue(ctx: typer.Context) -> None:
    """Put parked triggers back on the trigger queue (once the cause is fixed); prints their new message ids."""
    ids = runtime(ctx).queue.requeue_dead_triggers()
    note(f"requeued {len(ids)} parked trigger(s)")
    for message_id in ids:
        say(message_id)


def _parked(row: dict[str, Any]) -> str:
    """When a message was parked (epoch seconds on the queue), as the other tables show times."""
    from datetime import UTC, datetime

    at = row.get("parked_at")
    return "" if at is None else datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _what(row: dict[str, Any]) -> str:
    if "uuid" in row:
        return f"subscription {row['subscription_id']}, death count {row['death_count']}"
    if "event_name" in row:
        return f"{row['event_name']} {json.dumps(row['arguments'], ensure_ascii=False)[:80]}"
    return row.get("body", "")[:80]
