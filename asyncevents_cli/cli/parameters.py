"""What `ae` adjusts in typer's parameters once a command is built: the root's
parameters when it starts, each command's (and its subcommands') when it loads.

- A flag shows no type in help. typer 0.29 labels flags `<bool>` in its rich
  help, as if they took a value; the documented `metavar` replaces that label,
  and an empty one shows none.
- Plain values skip typer's pydantic conversion (`typer_hooks.take_plain_values`).
"""

from __future__ import annotations

from typing import Any

import typer

from .typer_hooks import take_plain_values


def prepare(command: Any, with_subcommands: bool = True) -> None:
    """Adjust `command`'s parameters (with its --help, which click makes on first use and
    then keeps), and its subcommands'. Doing it twice changes nothing."""
    help_option = command.get_help_option(typer.Context(command))
    for param in [*getattr(command, "params", ()), *([help_option] if help_option else [])]:
        hide_flag_type(param)
        take_plain_values(param)
    if with_subcommands:
        for sub in getattr(command, "commands", {}).values():
            prepare(sub)


def hide_flag_type(param: Any) -> None:
    if getattr(param, "is_flag", False) and param.metavar is None:
        param.metavar = ""
