"""`ae logs`, `ae logs prune` and `ae trace UUID`."""

from __future__ import annotations

from typing import Any

import typer
from rich.json import JSON

from .. import trace as tracing
from ..config import check_event_name
from .context import JSON_OPTION, runtime
from .output import emit, ms, say, show, table, yes_no

logs_app = typer.Typer(help="The delivery log: recent attempts, and pruning old ones.")

LOG_COLUMNS = ["log_id", "uuid", "event_name", "subscription_id", "success", "status_code", "death_count",
               "created", "duration"]


@logs_app.callback(invoke_without_command=True)
def logs(
    ctx: typer.Context,
    event: str | None = typer.Option(None, "--event", help="Only this event."),
    failed: bool = typer.Option(False, "--failed", help="Only failed attempts."),
    limit: int = typer.Option(50, "--limit", min=1, help="How many attempts, newest first."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List recent delivery attempts, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    if event is not None:
        check_event_name(event)
    rows = runtime(ctx).store.recent_logs(event, failed, limit)
    for row in rows:
        row["success"] = bool(row["success"])

    def render(data: list[dict[str, Any]]) -> None:
        show(table(
            ["log_id", "uuid", "event", "sub", "ok", "code", "death", "created (UTC)", "duration"],
            [(r["log_id"], r["uuid"], r["event_name"], r["subscription_id"], yes_no(r["success"]),
              r["status_code"], r["death_count"], r["created"][:19], ms(r["duration"])) for r in data],
        ))

    emit([{k: r[k] for k in LOG_COLUMNS} for r in rows], as_json, render)


@logs_app.command("prune")
def prune(
    ctx: typer.Context,
    older_than: float | None = typer.Option(
        None, "--older-than", min=0, max=36500, help="Age in days (default: settings.log_retention_days)."
    ),
) -> None:
    """Delete attempts older than the retention period (the module's clean-up job)."""
    rt = runtime(ctx)
    days = rt.config.settings.log_retention_days if older_than is None else older_than
    from ..search import remove_pruned

    removed = rt.store.prune_logs(days)
    # The search index follows the log: pruned attempts must not be found any more.
    remove_pruned(rt.config, rt.store, removed)
    say(f"pruned {len(removed)} log entr{'y' if len(removed) == 1 else 'ies'} older than {days:g} day(s)")


def trace(ctx: typer.Context, uuid: str = typer.Argument(..., help="The delivery uuid (see `ae logs`)."),
          as_json: bool = JSON_OPTION) -> None:
    """Show every attempt of one delivery, its status and its payload."""
    data = tracing.trace(runtime(ctx).store, uuid)
    emit(data, as_json, render_trace)


def render_trace(data: dict[str, Any]) -> None:
    summary = table(["", ""], [
        ("Event", data["event_name"]),
        ("UUID", data["uuid"]),
        ("Subscription", f"{data['subscription_id']}  {data['recipient_url'] or ''}"),
        ("Subscription status", data["subscription_status"]),
        ("Status", data["status"]),
        ("First attempt", f"{data['first_attempt'][:19]} UTC"),
        ("Last attempt", f"{data['last_attempt'][:19]} UTC"),
    ])
    summary.show_header = False
    show(summary)
    show(table(
        ["#", "log_id", "time (UTC)", "death count", "success", "status", "duration", "response"],
        [(n, a["log_id"], a["created"][:23], a["death_count"], yes_no(a["success"]), a["status_code"] or "-",
          ms(a["duration"]), (a["response_data"] or "")[:60]) for n, a in enumerate(data["attempts"], 1)],
        title="Attempts",
    ))
    say("Payload")
    show(JSON.from_data(data["payload"]))
