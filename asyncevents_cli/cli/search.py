"""`ae search QUERY` and `ae index status|rebuild`: Lucene-syntax search over the delivery log."""

from __future__ import annotations

import signal
from typing import Any

import typer

from ..errors import InputError
from ..search import Hits, check_syntax, index_path, open_index, search_logs
from .context import JSON_OPTION, runtime
from .output import Col, emit, note, progress_bar, say, table, time_utc, yes_no

index_app = typer.Typer(
    help="The local search index (`index_path`; by default `<database>.index/` beside a SQLite file)."
)

# Catching up this many rows takes a few seconds: worth a progress bar.
PROGRESS_THRESHOLD = 2000


def _index(ctx: typer.Context) -> Any:
    rt = runtime(ctx)
    ix = open_index(rt.config, rt.store)
    if ix is None:
        raise InputError(
            "search indexing is off (settings.indexing = false)",
            hint="set indexing = true in [settings] to keep an index",
        )
    return ix


def search(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="Lucene syntax, e.g. 'data.data.customer_email: roni_cost@example.com'."),
    limit: int = typer.Option(100, "--limit", min=1, help="How many results, newest first."),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many results (to page past --limit)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Search delivery logs and payloads with Lucene syntax; newest first.

    \b
    Fields:
      log_id       the attempt's id: log_id:42, log_id:[10 TO 20]
      uuid         the delivery uuid, any case
      event_name   the event: event_name:sales.*
      success      true or false: success:false
      created      when logged, UTC: created:[2026-03-01T22:00 TO *]
      data         every value of the logged body (a bare term searches it)
      data.<path>  a JSON path: data.data.customer_email:roni@example.com

    AND, OR, NOT, "phrases", wildcards (* ?) and ranges work as in Lucene; docs/search.md has the details.

    Examples:

      ae search 'data.data.increment_id: CK* AND success: true'

      ae search 'event_name:sales.* AND success:false' --limit 20 --json
    """
    hits = _hits(ctx, query, limit, offset)
    data = {
        "query": query,
        "mode": hits.mode,
        "total": hits.total,
        "offset": offset,
        "limit": limit,
        "results": hits.rows,
    }
    emit(data, as_json, _render_results)


def _hits(ctx: typer.Context, query: str, limit: int, offset: int) -> Hits:
    """One page of results: from the index (brought up to date first), or, with indexing off
    or a read-only store, by substring over the log."""
    rt = runtime(ctx)
    if not rt.config.settings.indexing or rt.store.read_only:
        return search_logs(rt.config, rt.store, query, limit, offset)
    check_syntax(query)  # a malformed query exits 2 before the index is touched
    ix = _index(ctx)
    try:
        ix.check_folder()  # a folder ae did not create is refused before any progress shows
        behind = ix.behind()
        with progress_bar("indexing the delivery log", behind, behind >= PROGRESS_THRESHOLD) as advance:
            ix.catch_up(advance)
        return ix.search(query, limit, offset)
    finally:
        ix.close()


def _render_results(data: dict[str, Any]) -> None:
    rows, offset = data["results"], data["offset"]
    table(
        [
            Col("uuid", whole=True),
            Col("event"),
            Col("ok", whole=True),
            Col("time (UTC)", whole=True, drop=1),
            Col("payload", drop=2),
            Col("log id", whole=True, drop=3, justify="right"),
        ],
        [
            (r["uuid"], r["event_name"], yes_no(r["success"]), time_utc(r["created"]), r["excerpt"], r["log_id"])
            for r in rows
        ],
        empty="No delivery attempts match.",
    )
    shown = f"{offset + 1}-{offset + len(rows)}" if rows else "none"
    more = f"; --offset {offset + len(rows)} for more" if offset + len(rows) < data["total"] else ""
    via = "" if data["mode"] == "index" else " (substring match: indexing is off)"
    note(f"{data['total']} match{'es' if data['total'] != 1 else ''}, showing {shown}{more}{via}")


@index_app.command("status")
def status(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """How far the search index is behind the delivery log."""
    rt = runtime(ctx)
    if not rt.config.settings.indexing:
        data: dict[str, Any] = {"indexing": False, "index_path": str(index_path(rt.config))}
    else:
        data = {"indexing": True, **_index(ctx).status()}

    def render(d: dict[str, Any]) -> None:
        if not d["indexing"]:
            say("indexing is off (settings.indexing = false): `ae search` matches substrings of the log")
            return
        built = (
            f"{d['documents']} documents in {d['index_path']}"
            if d["exists"]
            else f"no usable index at {d['index_path']} (the next search builds it)"
        )
        say(f"indexed up to log_id {d['indexed_up_to']}, log at {d['log_at']}, {d['behind']} behind; {built}")

    emit(data, as_json, render)


@index_app.command("rebuild")
def rebuild(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Rebuild the search index from the whole delivery log."""
    ix = _index(ctx)
    try:
        ix.check_folder()  # a folder ae did not create is refused before any progress shows
        total = runtime(ctx).store.count_logs_after(0)
        with progress_bar("rebuilding the search index", total, not as_json) as advance:
            count = ix.rebuild(advance)
    finally:
        ix.close()
    emit(
        {"documents": count, "index_path": str(ix.path)},
        as_json,
        lambda d: say(f"indexed {d['documents']} log entries into {d['index_path']}"),
    )


@index_app.command("follow")
def follow(
    ctx: typer.Context,
    interval: float = typer.Option(1.0, "--interval", min=0.05, help="Seconds between catch-ups."),
    once: bool = typer.Option(False, "--once", help="Catch up once and exit (for cron and scripts)."),
) -> None:
    """Keep the search index current in the background (run one beside your consumers).

    Never on the delivery path: it reads the delivery log and indexes what is new
    every --interval seconds. Ctrl-C or SIGTERM finish the pass in hand, then exit 0."""
    from ..search.follow import follow as follow_log

    ix = _index(ctx)
    stopping: list[bool] = []

    def stop(signum: int, frame: object) -> None:
        if stopping and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stopping.append(True)

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, stop)
    try:
        behind = ix.behind()
        with progress_bar("indexing the delivery log", behind, behind >= PROGRESS_THRESHOLD) as advance:
            total = ix.catch_up(advance)
        total += follow_log(
            ix,
            interval,
            lambda: bool(stopping),
            once=once,
            on_indexed=lambda n, up_to: note(f"indexed {n} log entries, up to log_id {up_to}"),
        )
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        ix.close()
    note(f"index follow: stopped, up to log_id {ix.indexed_up_to()} ({total} indexed)")
