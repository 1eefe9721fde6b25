"""`ae init`: start a project with a commented events.toml."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ..config import DEFAULT_CONFIG
from ..errors import InputError
from ..starter import render
from .output import note, say


def init(
    ctx: typer.Context,
    path: Path | None = typer.Argument(
        None,
        help="Where to write it (default: --config, $AE_CONFIG, or ./events.toml).",
        show_default=False,
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented events.toml: one example event, and every setting at its default.

    An existing file is left alone (exit 2) unless --force.

    Example: ae init && ae events list
    """
    root = ctx.find_root().params.get("config")
    target = Path(path or root or os.environ.get("AE_CONFIG") or DEFAULT_CONFIG).expanduser().absolute()
    if target.exists() and not force:
        raise InputError(f"{target} already exists; nothing written", hint="add --force to overwrite it")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    say(str(target))
    note("Next: `ae events list`, then `ae subscribe EVENT URL`; `ae config show` lists the settings.")
