"""`ae tokens create|list|revoke`: API tokens for `ae serve`.

A token is printed once, by `create`, on the last line of stdout; only its hash is kept.
"""

from __future__ import annotations

from typing import Any

import typer

from .. import tokens as api_tokens
from .context import JSON_OPTION, runtime
from .output import Col, emit, note, say, table, time_utc

tokens_app = typer.Typer(help="API tokens for `ae serve` (REST API and admin pages).", no_args_is_help=True)


@tokens_app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A name for the token, e.g. the system that will use it."),
    events: list[str] = typer.Option(
        [],
        "--events",
        help="Limit the token to events matching this pattern (e.g. 'customer.*'); repeatable. "
        "Without it the token may manage every event and sign in to the admin pages.",
        show_default=False,
    ),
) -> None:
    """Create a token and print it once, on the last line of stdout."""
    secret = api_tokens.create_token(runtime(ctx).store, name, events)
    note(
        f"token {name!r} created for {', '.join(events) if events else 'every event'}; "
        "it is shown once and cannot be retrieved again."
    )
    say(secret)


@tokens_app.command("list")
def list_tokens(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List tokens: names, scopes, created and last used (never the tokens)."""
    rows = api_tokens.list_tokens(runtime(ctx).store)

    def render(data: list[dict[str, Any]]) -> None:
        table(
            [
                Col("name"),
                Col("events"),
                Col("created (UTC)", whole=True, drop=2),
                Col("last used (UTC)", whole=True, drop=1),
            ],
            [
                (
                    r["name"],
                    ", ".join(r["events"]) or "all",
                    time_utc(r["created"]),
                    time_utc(r["last_used"]) or "never",
                )
                for r in data
            ],
            empty="No API tokens. `ae tokens create NAME` makes one.",
        )

    emit(rows, as_json, render)


@tokens_app.command("revoke")
def revoke(ctx: typer.Context, name: str = typer.Argument(..., help="The token's name.")) -> None:
    """Revoke a token: API calls and admin sessions using it stop working at once."""
    api_tokens.revoke_token(runtime(ctx).store, name)
    say(f"revoked {name}")
