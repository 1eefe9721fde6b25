"""`ae logs`, `ae logs prune` and `ae trace UUID`."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import typer
from rich.json import JSON

from .. import trace as tracing
from ..config import check_event_name
from ..errors import InputError
from .context import JSON_OPTION, YES_OPTION, confirm, runtime
from .output import Col, attempt_line, emit, fields, json_line, ms, say, show, table, time_utc, yes_no

logs_app = typer.Typer()  # its help is the callback's docstring, examples included


def outcome(success: Any, status_code: Any) -> str:
    """An attempt's result in one cell: ok or failed, with the receiver's status code if it answered."""
    word = "ok" if success else "failed"
    return f"{word} {status_code}" if status_code else word


LOG_COLUMNS = [
    "log_id",
    "uuid",
    "event_name",
    "subscription_id",
    "success",
    "status_code",
    "death_count",
    "created",
    "duration",
]

#: The attempts table of `ae logs` (and `ae logs --follow`): at 80 columns, uuid, event,
#: subscription, ok and time are shown; the rest goes first.
ATTEMPT_COLUMNS = [
    Col("uuid", whole=True),
    Col("event"),
    Col("sub", whole=True, justify="right"),
    Col("ok", whole=True),
    Col("time (UTC)", whole=True, drop=1),
    Col("code", whole=True, drop=1, justify="right"),
    Col("try", whole=True, drop=2, justify="right"),
    Col("took", whole=True, drop=2, justify="right"),
    Col("log id", whole=True, drop=3, justify="right"),
]


def attempt_cells(r: dict[str, Any]) -> tuple[Any, ...]:
    return (
        r["uuid"],
        r["event_name"],
        r["subscription_id"],
        yes_no(r["success"]),
        time_utc(r["created"]),
        r["status_code"] or "-",
        r["death_count"],
        ms(r["duration"]),
        r["log_id"],
    )


class Outcome(StrEnum):
    ok = "ok"
    failed = "failed"


SINCE_OPTION = typer.Option(
    None, "--since", help="Only attempts at or after this UTC date or time (e.g. 2026-03-01 or 2026-03-01T22:00)."
)
UNTIL_OPTION = typer.Option(
    None, "--until", help="Only attempts before this UTC date or time; a date alone includes that day."
)
WITH_RESPONSE_OPTION = typer.Option(
    False, "--with-response", help="With --json: include each attempt's response (or error)."
)
FOLLOW_OPTION = typer.Option(
    False,
    "--follow",
    "-f",
    help="Print the last --limit attempts, then each new one as "
    "it is logged, one line each, until Ctrl-C (like tail -f).",
)
INTERVAL_OPTION = typer.Option(
    1.0, "--interval", min=0.05, max=3600, help="With --follow: seconds between looks at the log."
)


@logs_app.callback(invoke_without_command=True)
def logs(
    ctx: typer.Context,
    event: str | None = typer.Option(None, "--event", help="Only this event."),
    subscription: int | None = typer.Option(None, "--subscription", help="Only this subscription id."),
    uuid: str | None = typer.Option(None, "--uuid", help="Only this delivery (any case)."),
    since: str | None = SINCE_OPTION,
    until: str | None = UNTIL_OPTION,
    status: Outcome | None = typer.Option(None, "--status", help="Only successful or only failed attempts."),
    failed: bool = typer.Option(False, "--failed", help="Only failed attempts (same as --status failed)."),
    limit: int = typer.Option(50, "--limit", min=1, help="How many attempts, newest first."),
    with_response: bool = WITH_RESPONSE_OPTION,
    follow: bool = FOLLOW_OPTION,
    interval: float = INTERVAL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The delivery log: recent attempts, and pruning old ones.

    Without a subcommand, lists recent delivery attempts, newest first; the filters combine.

    Examples:

      ae logs --status failed --since 2026-03-01

      ae logs --subscription 2 --json --with-response

      ae logs --follow
    """
    if ctx.invoked_subcommand is not None:
        return
    _check_options(event, status, failed, with_response, as_json)
    filters = _filters(event, subscription, uuid, status, failed, since, until)
    columns = [*LOG_COLUMNS, "response_data"] if with_response else LOG_COLUMNS
    store = runtime(ctx).store
    rows = [
        {k: bool(r[k]) if k == "success" else r[k] for k in columns} for r in store.find_logs(**filters, limit=limit)
    ]
    if follow:
        _follow(store, filters, list(reversed(rows)), interval, as_json)
        return
    emit(rows, as_json, _render_attempts)


def _check_options(event: str | None, status: Outcome | None, failed: bool, with_response: bool, as_json: bool) -> None:
    """Refuse options that cannot go together, before anything is read."""
    if event is not None:
        check_event_name(event)
    if failed and status == Outcome.ok:
        raise InputError("--failed and --status ok contradict each other")
    if with_response and not as_json:
        raise InputError("--with-response goes with --json (tables show no response bodies)")


def _filters(
    event: str | None,
    subscription: int | None,
    uuid: str | None,
    status: Outcome | None,
    failed: bool,
    since: str | None,
    until: str | None,
) -> dict[str, Any]:
    """The options as `Store.find_logs` filters; --since and --until parsed as UTC moments."""
    from ..moments import parse_moment

    filters: dict[str, Any] = {
        "event_name": event,
        "subscription_id": subscription,
        "uuid": uuid.strip().lower() if uuid else None,
        "success": False if failed else None if status is None else status == Outcome.ok,
        "since": parse_moment(since, "--since") if since else None,
        "until": parse_moment(until, "--until", end=True) if until else None,
    }
    if filters["since"] and filters["until"] and filters["since"] >= filters["until"]:
        raise InputError("--since must be before --until")
    return filters


def _render_attempts(data: list[dict[str, Any]]) -> None:
    table(ATTEMPT_COLUMNS, [attempt_cells(r) for r in data], empty="No delivery attempts match.")


def _follow(store: Any, filters: dict[str, Any], backlog: list[dict[str, Any]], interval: float, as_json: bool) -> None:
    """`ae logs --follow`: lines (or JSON Lines) as attempts are logged, oldest first, until Ctrl-C or
    SIGTERM, which end it with exit 0 (handlers of its own: an inherited "ignore SIGINT" would not)."""
    import signal
    import threading

    stop = threading.Event()

    def out(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            say(json_line(row) if as_json else attempt_line(row))

    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        out(backlog)
        last = backlog[-1]["log_id"] if backlog else store.max_log_id()
        while not stop.wait(interval):
            rows = [
                {**r, "success": bool(r["success"])} for r in store.find_logs(**filters, after_log_id=last, limit=1000)
            ]
            out(rows)
            if rows:
                last = rows[-1]["log_id"]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@logs_app.command("prune")
def prune(
    ctx: typer.Context,
    older_than: float | None = typer.Option(
        None, "--older-than", min=0, max=36500, help="Age in days (default: settings.log_retention_days)."
    ),
    yes: bool = YES_OPTION,
) -> None:
    """Delete attempts older than the retention period (the module's clean-up job), after asking.

    Without --yes it asks on a terminal, and refuses (exit 2) when stdin is not one: from cron, add --yes.

    Example: ae logs prune --older-than 7 --yes
    """
    rt = runtime(ctx)
    days = rt.config.settings.log_retention_days if older_than is None else older_than
    confirm(f"Delete delivery log entries older than {days:g} day(s)?", yes)
    from ..search import remove_pruned

    removed = rt.store.prune_logs(days)
    # The search index follows the log: pruned attempts must not be found any more.
    remove_pruned(rt.config, rt.store, removed)
    say(f"pruned {len(removed)} log entr{'y' if len(removed) == 1 else 'ies'} older than {days:g} day(s)")


def trace(
    ctx: typer.Context,
    uuid: str = typer.Argument(..., help="The delivery uuid (see `ae logs`), in any case."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show every attempt of one delivery, its status and its payload.

    Example: ae trace da7ea04e-e218-574b-9eb5-24c511cfff4c
    """
    data = tracing.trace(runtime(ctx).store, uuid)
    emit(data, as_json, render_trace)


def render_trace(data: dict[str, Any]) -> None:
    fields(
        [
            ("Event", data["event_name"]),
            ("UUID", data["uuid"]),
            ("Subscription", f"{data['subscription_id']}  {data['recipient_url'] or ''}"),
            ("Subscription status", data["subscription_status"]),
            ("Status", data["status"]),
            ("First attempt", f"{time_utc(data['first_attempt'])} UTC"),
            ("Last attempt", f"{time_utc(data['last_attempt'])} UTC"),
        ]
    )
    say("")
    # "sent to" only when some attempt went to another URL than the subscription's current one.
    elsewhere = any(a["sent_elsewhere"] for a in data["attempts"])
    columns = [
        Col("#", whole=True, justify="right"),
        Col("time (UTC)", whole=True),
        Col("result", whole=True),
        Col("took", whole=True, justify="right"),
        Col("response"),
        *([Col("sent to", drop=1)] if elsewhere else []),
        Col("log id", whole=True, drop=2, justify="right"),
    ]
    rows = [
        (
            n,
            time_utc(a["created"], 23),
            outcome(a["success"], a["status_code"]),
            ms(a["duration"]),
            (a["response_data"] or "")[:60],
            *([a["recipient_url"] if a["sent_elsewhere"] else ""] if elsewhere else []),
            a["log_id"],
        )
        for n, a in enumerate(data["attempts"], 1)
    ]
    table(columns, rows, title="Attempts")
    say("")
    say("Payload")
    show(JSON.from_data(data["payload"]))
