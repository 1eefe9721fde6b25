"""The CLI reference (docs/cli.md), generated from the same command tree as `--help`.

    python -m asyncevents_cli.cli.reference > docs/cli.md

A test regenerates it and compares, so the reference cannot fall behind the code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer

from .app import app


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command under `command`, depth first, in name order."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from walk(sub, (*path, name))


def _param_line(param: Any) -> str:
    if param.param_type_name == "argument":
        name = (param.metavar or param.name).upper()
        return f"- `{name}` (argument{'' if param.required else ', optional'}): {param.help or ''}"
    names = ", ".join(f"`{opt}`" for opt in [*param.opts, *param.secondary_opts])
    default = param.default
    shown = "" if default in (None, False, ()) or param.is_flag else f" (default: `{default}`)"
    return f"- {names}: {param.help or ''}{shown}"


def render() -> str:
    root = typer.main.get_command(app)
    lines = [
        "# `ae` command reference",
        "",
        "Generated from the command tree by "
        "`python -m asyncevents_cli.cli.reference`; `ae COMMAND --help` shows the same.",
        "",
    ]
    for path, command in walk(root):
        title = " ".join(("ae", *path))
        lines += [f"## `{title}`", "", (command.help or "").strip(), ""]
        params = [p for p in command.params if p.name not in ("help",)]
        if params:
            lines += [_param_line(p) for p in params] + [""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
