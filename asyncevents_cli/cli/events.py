"""`ae events list` and `ae config show`."""

from __future__ import annotations

from typing import Any

import typer

from ..config import SETTINGS_BY_NAME
from ..redaction import redact_url
from .context import JSON_OPTION, runtime
from .output import Col, emit, table

events_app = typer.Typer(help="Event definitions (from events.toml).", no_args_is_help=True)
config_app = typer.Typer(help="Effective configuration.", no_args_is_help=True)


@events_app.command("list")
def list_events(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List the events defined in events.toml."""
    config = runtime(ctx).config
    data = [
        {"name": e.name, "description": e.description, "service": e.service}
        for e in sorted(config.events.values(), key=lambda e: e.name)
    ]

    def render(rows: list[dict[str, Any]]) -> None:
        table(
            [Col("event"), Col("description"), Col("service", drop=1)],
            [(r["name"], r["description"], r["service"] or "") for r in rows],
            title=f"Events in {config.path}",
            empty=f'No events defined in {config.path}: add an [events."NAME"] table.',
        )

    emit(data, as_json, render)


@config_app.command("show")
def show_config(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Print the effective settings and where each came from (default, file, env)."""
    config = runtime(ctx).config
    data = {
        "config_file": str(config.path),
        "database_path": config.database_display,
        "settings": [
            {
                "name": name,
                "value": redact_url(value, keep_user=True) if name in ("amqp_url", "database") else value,
                "source": config.sources[name],
                "help": SETTINGS_BY_NAME[name].help,
            }
            for name, value in config.settings.as_dict().items()
        ],
    }

    def render(d: dict[str, Any]) -> None:
        rows = [(s["name"], s["value"], s["source"]) for s in d["settings"]]
        table(
            [Col("setting", whole=True), Col("value"), Col("source", whole=True)],
            rows,
            title=f"Settings from {d['config_file']}",
        )

    emit(data, as_json, render)
