"""`ae replay UUID` and `ae replay --query QUERY`: start retry chains again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from .. import replay as replaying
from ..errors import EXIT_FAILURE, InputError
from ..states import SubscriptionStatus
from .context import JSON_OPTION, confirm, runtime
from .output import Col, emit, note, progress_bar, say, table, time_utc, yes_no

if TYPE_CHECKING:  # imported when --query runs: it loads whoosh
    from ..search_replay import BulkResult

# Replaying more than this many deliveries asks first (unless --yes).
CONFIRM_ABOVE = 10


def replay(
    ctx: typer.Context,
    uuid: str | None = typer.Argument(None, help="The delivery uuid to start again (any case).", show_default=False),
    query: str | None = typer.Option(
        None, "--query", "-q", help="Replay every delivery whose latest attempt matches this search query."
    ),
    since: str | None = typer.Option(None, "--since", help="With --query: latest attempt at or after (UTC)."),
    until: str | None = typer.Option(
        None, "--until", help="With --query: latest attempt before (UTC); a date alone includes that day."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="With --query: list what would be replayed, change nothing."),
    yes: bool = typer.Option(
        False,
        "--yes",
        "-y",
        help=f"With --query: do not ask above {CONFIRM_ABOVE} deliveries (needed when stdin is not a terminal).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Start a delivery again (same uuid and retry limit), or every delivery a search query selects.

    A replay starts a new retry chain whatever the delivery's status; deliveries to disabled or deleted
    subscriptions are skipped.

    Examples:

      ae replay da7ea04e-e218-574b-9eb5-24c511cfff4c

      ae replay --query 'event_name:sales.* AND success:false' --since 2026-03-01 --dry-run
    """
    if (uuid is None) == (query is None):
        raise InputError(
            "give either a UUID or --query, not both" if uuid else "give a UUID or --query",
            hint="`ae replay UUID` or `ae replay --query 'success:false'`",
        )
    rt = runtime(ctx)
    if uuid is not None:
        if since or until or dry_run:
            raise InputError("--since, --until and --dry-run go with --query")
        result = replaying.replay(rt.store, rt.queue, rt.config.retry_policy, uuid)
        emit(
            result,
            as_json,
            lambda r: say(
                f"replaying {r['uuid']} to subscription {r['subscription_id']}; "
                f"first attempt due at {r['next_attempt_at'][:19]} UTC"
            ),
        )
        return
    bulk_replay(ctx, query or "", since, until, dry_run, yes, as_json)


def bulk_replay(
    ctx: typer.Context, query: str, since: str | None, until: str | None, dry_run: bool, yes: bool, as_json: bool
) -> None:
    from ..search_replay import candidate_row, replay_all, select  # whoosh loads only for --query

    rt = runtime(ctx)
    candidates = select(rt.config, rt.store, query, since, until)
    if dry_run:
        emit([candidate_row(c) for c in candidates], as_json, _render_dry_run)
        return
    if not candidates:
        note("no delivery's latest attempt matches; nothing to replay")
        emit({"replayed": [], "skipped": [], "failed": []}, as_json, lambda d: None)
        return
    if len(candidates) > CONFIRM_ABOVE:
        confirm(f"Replay {len(candidates)} deliveries?", yes)
    with progress_bar("replaying", len(candidates), not as_json) as advance:
        result = replay_all(rt.store, rt.queue, rt.config.retry_policy, candidates, advance)
    _report(result, as_json)
    if result.failed:
        raise typer.Exit(EXIT_FAILURE)


def _render_dry_run(data: list[dict[str, Any]]) -> None:
    table(
        [
            Col("uuid", whole=True),
            Col("event"),
            Col("sub", whole=True, justify="right"),
            Col("status", whole=True),
            Col("ok", whole=True),
            Col("last attempt (UTC)", whole=True, drop=1),
        ],
        [
            (
                r["uuid"],
                r["event_name"],
                r["subscription_id"],
                r["subscription_status"],
                yes_no(r["success"]),
                time_utc(r["last_attempt"]),
            )
            for r in data
        ],
        title="Would replay (dry run)",
        empty="No delivery's latest attempt matches.",
    )
    skip = sum(1 for r in data if r["subscription_status"] != SubscriptionStatus.ENABLED)
    note(
        f"{len(data) - skip} would be replayed, {skip} skipped (subscription disabled or deleted); nothing was changed"
    )


def _report(result: BulkResult, as_json: bool) -> None:
    """What a bulk replay did: a line on stderr per skipped or failed delivery, then the counts (or JSON)."""
    for uuid, why in result.skipped:
        note(f"skipped {uuid}: {why}")
    for uuid, error in result.failed:
        note(f"failed {uuid}: {error}")
    data = {
        "replayed": result.replayed,
        "skipped": [{"uuid": u, "reason": w} for u, w in result.skipped],
        "failed": [{"uuid": u, "error": e} for u, e in result.failed],
    }
    emit(
        data,
        as_json,
        lambda d: say(
            f"replayed {len(d['replayed'])} deliver{'y' if len(d['replayed']) == 1 else 'ies'}, "
            f"skipped {len(d['skipped'])} (subscription disabled or deleted), failed {len(d['failed'])}"
        ),
    )
