"""`ae db status` and `ae db migrate`: the store's schema version."""

from __future__ import annotations

from typing import Any

import typer

from ..store.admin import schema_status
from .context import JSON_OPTION, runtime
from .output import emit, say

db_app = typer.Typer(help="The store's schema: its version, and migrating it.")


def _render(data: dict[str, Any]) -> None:
    say(
        f"{data['backend']} {data['database']}: schema version {data['schema_version']}"
        f" (this ae writes {data['code_schema_version']})"
    )
    for migration in data["applied"]:
        say(f"applied {migration['version']}: {migration['description']}")
    for migration in data["pending"]:
        say(f"pending {migration['version']}: {migration['description']} (run `ae db migrate`)")


@db_app.command("status")
def status(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Show the store's schema version and any migrations still to apply (changes nothing)."""
    rt = runtime(ctx)
    emit(schema_status(rt.config.database, rt.environ), as_json, _render)


@db_app.command("migrate")
def migrate(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Apply pending migrations (opening a store applies them too); print the version reached."""
    rt = runtime(ctx)
    emit(schema_status(rt.config.database, rt.environ, migrate=True), as_json, _render)
