"""Reaching the shared `Runtime` from a command, and the options many commands share."""

from __future__ import annotations

import typer

from ..runtime import Runtime

JSON_OPTION = typer.Option(False, "--json", help="Print plain JSON on stdout.")


def runtime(ctx: typer.Context) -> Runtime:
    return ctx.find_root().obj
