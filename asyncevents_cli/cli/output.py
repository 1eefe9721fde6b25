"""The one place that decides how results look: Rich for people, JSON for scripts.

Commands build plain data (dicts and lists) and hand it here. Data goes to
stdout; diagnostics and progress go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table

from ..errors import AeError

# Wide enough when piped that tables stay readable in a file or a README.
stdout = Console(width=None if sys.stdout.isatty() else 200, highlight=False)
stderr = Console(stderr=True, width=None if sys.stderr.isatty() else 200, highlight=False)


@contextmanager
def progress_bar(label: str, total: int, enabled: bool = True, transient: bool = False) -> Iterator[Any]:
    """A Rich progress bar on stderr; yields a callback taking how many items were just done.
    A `transient` bar is cleared when done."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=stderr, transient=transient) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def emit(data: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    """Show `data` as JSON when asked, else through its human renderer."""
    if as_json:
        print_json(data)
    else:
        render(data)


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> Table:
    grid = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*("" if v is None else str(v) for v in row))
    return grid


def show(renderable: Any) -> None:
    stdout.print(renderable)


def say(message: str) -> None:
    """A line of data (stdout), written as is: no markup, and tabs stay tabs for `cut -f`."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def note(message: str) -> None:
    """A diagnostic for people (stderr)."""
    stderr.print(message, markup=False, highlight=False, soft_wrap=True)


def error_line(exc: AeError) -> str:
    """The one line a user sees for an expected failure, with the next step if known."""
    line = f"ae: error: {exc.message}"
    if exc.hint:
        line += f" ({exc.hint})"
    return line


def yes_no(value: Any) -> str:
    return "yes" if value else "no"


def ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1000:.0f} ms"
