"""Commands whose modules are imported only when they run.

`ae --help` lists every command with its one-line summary, but importing every
command module to get those summaries would load the store, the engine, rich's
progress bars and more: most of `ae`'s start-up time. So the root group knows
each command by a `LazyCommand` row (module, attribute, summary) and imports the
module when the command is resolved to run, or when something walks the tree
(the CLI reference, the tests). Help shows the summary from the row; a test
checks that every row's summary is the real command's.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperCommand

from .parameters import prepare


@dataclass(frozen=True)
class LazyCommand:
    """One top-level command: `attribute` of `asyncevents_cli.cli.<module>`, either a
    command function or a `typer.Typer` group, and the summary `ae --help` shows for it
    (the first paragraph of its help)."""

    module: str
    attribute: str
    summary: str

    def target(self) -> Any:
        return getattr(importlib.import_module(f"{__package__}.{self.module}"), self.attribute)

    def load(self, name: str) -> Any:
        """The click command, built exactly as `app.command(name)` or `app.add_typer(.., name=name)` would."""
        target = self.target()
        holder = typer.Typer(add_completion=False)
        if isinstance(target, typer.Typer):
            holder.add_typer(target, name=name)
        else:
            holder.command(name)(target)
        command = typer.main.get_group(holder).commands[name]
        prepare(command)
        return command

    def placeholder(self, name: str) -> TyperCommand:
        """What help needs to list the command (name and summary), without importing it."""
        return TyperCommand(name, help=self.summary)


def summary_of(command: Any) -> str:
    """The part of a command's help that a group's help lists: its first paragraph."""
    return inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0].strip()


class LazyCommands(MutableMapping[str, Any]):
    """A group's `commands`: the names are all there at once, each command is built on first use."""

    def __init__(self, loaded: Mapping[str, Any], lazy: Mapping[str, LazyCommand]) -> None:
        self._loaded: dict[str, Any] = dict(loaded)
        self._lazy = dict(lazy)

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            self._loaded[name] = self._lazy[name].load(name)  # KeyError for an unknown name, as a dict
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self._loaded and name not in self._lazy:
            raise KeyError(name)
        self._loaded.pop(name, None)
        self._lazy.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        yield from self._lazy
        yield from (name for name in self._loaded if name not in self._lazy)

    def __len__(self) -> int:
        return len(self._lazy.keys() | self._loaded.keys())

    def __contains__(self, name: object) -> bool:
        return name in self._lazy or name in self._loaded

    def describe(self, name: str) -> Any:
        """The command if it is built already, else a placeholder carrying its summary."""
        if name in self._loaded:
            return self._loaded[name]
        return self._lazy[name].placeholder(name) if name in self._lazy else None
