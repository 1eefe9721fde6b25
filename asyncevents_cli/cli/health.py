"""`ae subscriptions health [ID...] [--json]`: each subscription's state, rates, latency and backlog."""

from __future__ import annotations

from typing import Any

import typer

from .context import JSON_OPTION, runtime
from .output import Col, emit, fields, ms, table, time_utc

HEALTH_IDS_ARGUMENT = typer.Argument(None, help="Subscription ids (default: every subscription).", show_default=False)

COLUMNS = [
    Col("id", whole=True, justify="right"),
    Col("event"),
    Col("state", whole=True),
    Col("ok 15m", whole=True, justify="right"),
    Col("ok 24h", whole=True, justify="right", drop=1),
    Col("p50", whole=True, justify="right", drop=2),
    Col("p95", whole=True, justify="right"),
    Col("retrying", whole=True, justify="right"),
    Col("dead", whole=True, justify="right", drop=1),
    Col("oldest pending", whole=True, justify="right"),
    Col("last error (UTC)", drop=3),
]


def percent(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.1f}%"


def age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def last_error(error: dict[str, Any] | None) -> str:
    if error is None:
        return ""
    status = error["status_code"] if error["status_code"] is not None else "no answer"
    return f"{time_utc(error['created'])} {status} {error['response']}".strip()


def _row(r: dict[str, Any]) -> list[Any]:
    return [
        r["subscription_id"],
        r["event_name"],
        r["state"],
        percent(r["success_rate_15m"]),
        percent(r["success_rate_24h"]),
        ms(r["p50_seconds_15m"]),
        ms(r["p95_seconds_15m"]),
        r["retrying"],
        r["dead_lettered"],
        age(r["oldest_pending_age_seconds"]),
        last_error(r["last_error"]),
    ]


def render_one(r: dict[str, Any]) -> None:
    fields(
        [
            ("subscription", r["subscription_id"]),
            ("event", r["event_name"]),
            ("recipient", r["recipient_url"]),
            ("state", r["state"] + (f" ({r['disabled_reason']})" if r["disabled_reason"] else "")),
            ("success rate 15 min", f"{percent(r['success_rate_15m']) or '-'} of {r['attempts_15m']} attempt(s)"),
            ("success rate 24 h", f"{percent(r['success_rate_24h']) or '-'} of {r['attempts_24h']} attempt(s)"),
            ("latency 15 min", f"p50 {ms(r['p50_seconds_15m']) or '-'}, p95 {ms(r['p95_seconds_15m']) or '-'}"),
            ("failed in a row", r["consecutive_failures"]),
            ("held / retrying / dead", f"{r['held']} / {r['retrying']} / {r['dead_lettered']}"),
            ("oldest pending", age(r["oldest_pending_age_seconds"]) or "-"),
            ("concurrency", r["concurrency"]),
            ("rate limit", r["rate_limit"] or "none"),
            ("last error", last_error(r["last_error"]) or "-"),
        ]
    )


def render(rows: list[dict[str, Any]]) -> None:
    if len(rows) == 1:
        render_one(rows[0])
        return
    table(COLUMNS, [_row(r) for r in rows], empty="No subscriptions. `ae subscribe EVENT URL` adds one.")


def health(
    ctx: typer.Context, subscription_ids: list[int] | None = HEALTH_IDS_ARGUMENT, as_json: bool = JSON_OPTION
) -> None:
    """How each subscription is doing: healthy, degraded, failing or disabled.

    Success rates over 15 minutes and 24 hours, p50/p95 latency over 15 minutes, deliveries
    retrying and dead-lettered, the oldest pending delivery and the last error, read from the store.

    Examples:

      ae subscriptions health

      ae subscriptions health 3 --json
    """
    from ..health import subscription_health

    rt = runtime(ctx)
    emit(subscription_health(rt.config, rt.store, subscription_ids or ()), as_json, render)
