"""`ae notifiers list`: the notifiers subscriptions can use, and where each comes from."""

from __future__ import annotations

from typing import Any

import typer

from .. import notifiers
from .context import JSON_OPTION
from .output import Col, emit, note, table

notifiers_app = typer.Typer(help="Notifiers: how deliveries reach subscribers.", no_args_is_help=True)

COLUMNS = ["name", "aliases", "source", "target", "recipient"]
#: The listing's columns: the target (an import path) is left out first in a narrow terminal, never split.
LISTING = [
    Col("name", whole=True),
    Col("aliases"),
    Col("source"),
    Col("target", whole=True, drop=1),
    Col("recipient", comfort=40),
]


@notifiers_app.command("list")
def list_notifiers(as_json: bool = JSON_OPTION) -> None:
    """List installed notifiers (entry-point group asyncevents_cli.notifiers) and their sources."""
    rows = [plugin.describe() for plugin in notifiers.plugins()]
    for name, reason in sorted(notifiers.load_errors().items()):
        note(f"ae: warning: notifier {name!r} failed to load: {reason}")

    def render(data: list[dict[str, Any]]) -> None:
        table(
            LISTING,
            [[", ".join(r[c]) if c == "aliases" else r[c] for c in COLUMNS] for r in data],
            empty="No notifiers are installed.",
        )

    emit(rows, as_json, render)
