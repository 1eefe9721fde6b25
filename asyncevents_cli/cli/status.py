"""`ae status` (queue depths and delivery counts by subscription) and `ae deadletters`."""

from __future__ import annotations

import json
from typing import Any

import typer

from .. import status as statuses
from .context import JSON_OPTION, runtime
from .output import emit, note, say, show, table


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
        show(table(["message id", "origin", "what", "reason"], [
            (r["message_id"], r["origin"] + (" (resolved)" if r["resolved"] else ""), _what(r), r["reason"])
            for r in data
        ], title="Dead letters"))
        if data:
            note("A retry: `ae replay UUID` starts it again. A trigger: `ae deadletters requeue` once its cause"
                 " is fixed.")

    emit(rows, as_json, render)


@deadletters_app.command("purge")
def purge(
    ctx: typer.Context,
    before: str | None = typer.Option(
        None, "--before", help="Only messages parked before this UTC date or date-time (e.g. 2026-01-31).",
        show_default=False,
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete parked messages for good (all of them, or those parked before --before)."""
    moment = statuses.parse_moment(before) if before is not None else None
    rt = runtime(ctx)
    if not yes:
        what = f"parked before {before}" if before else "all parked messages"
        typer.confirm(f"Delete {what} for good?", abort=True, err=True)
    say(f"purged {rt.queue.purge_dead_letters(moment)} dead letter(s)")


@deadletters_app.command("requeue")
def requeue(ctx: typer.Context) -> None:
    """Put parked triggers back on the trigger queue (once the cause is fixed); prints their new message ids."""
    ids = runtime(ctx).queue.requeue_dead_triggers()
    note(f"requeued {len(ids)} parked trigger(s)")
    for message_id in ids:
        say(message_id)


def _what(row: dict[str, Any]) -> str:
    if "uuid" in row:
        return f"uuid {row['uuid']} (subscription {row['subscription_id']}, death count {row['death_count']})"
    if "event_name" in row:
        return f"{row['event_name']} {json.dumps(row['arguments'], ensure_ascii=False)[:80]}"
    return row.get("body", "")[:80]
