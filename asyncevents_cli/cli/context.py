"""Reaching the shared `Runtime` from a command, the options many commands share,
and the one confirmation rule for destructive commands."""

from __future__ import annotations

import sys

import typer

from ..errors import InputError
from ..runtime import Runtime
from .output import is_terminal

JSON_OPTION = typer.Option(False, "--json", help="Print plain JSON on stdout.")
YES_OPTION = typer.Option(
    False, "--yes", "-y", help="Do not ask for confirmation (needed when stdin is not a terminal)."
)


def runtime(ctx: typer.Context) -> Runtime:
    return ctx.find_root().obj


def confirm(question: str, yes: bool) -> None:
    """Ask before a destructive change. `--yes` skips the question; without a terminal to
    ask on, the command refuses (exit 2) rather than guess, and nothing changes."""
    if yes:
        return
    if not is_terminal(sys.stdin):
        raise InputError(
            f"{question[:-1] if question.endswith('?') else question}: refusing without --yes, "
            "since stdin is not a terminal to ask on",
            hint="add --yes",
        )
    # Asked on stderr, read from stdin (click's prompt writes a space to stdout).
    sys.stderr.write(f"{question} [y/N]: ")
    sys.stderr.flush()
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise typer.Abort()
