"""The one place that decides how results look: Rich for people, JSON for scripts.

Commands build plain data (dicts and lists) and hand it here. Data goes to
stdout; diagnostics and progress go to stderr.

Tables fit the terminal, one line per row, with no trailing spaces: columns
marked `whole` (uuids, ids, times) are never shortened; when the table is wider
than the terminal the least important columns (highest `drop` rank) are left
out, with a note on stderr naming them, then the others are shortened with an
ellipsis. An empty
result is a sentence, not an empty table. `--json` times are ISO 8601 in UTC
with an explicit offset.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from ..errors import AeError

#: Width when the output is not a terminal and COLUMNS is unset: wide enough that
#: tables stay whole in a file or a pipe.
PIPED_WIDTH = 200


def _console(stream: TextIO, stderr: bool = False) -> Console:
    """A console for `stream`, sized now: COLUMNS wins, then the terminal, then PIPED_WIDTH."""
    columns = os.environ.get("COLUMNS", "")
    width = int(columns) if columns.isdigit() and int(columns) > 0 else None
    if width is None and not stream.isatty():
        width = PIPED_WIDTH
    return Console(file=stream, width=width, highlight=False, stderr=stderr)


def stdout_console() -> Console:
    return _console(sys.stdout)


def stderr_console() -> Console:
    return _console(sys.stderr, stderr=True)


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def progress_bar(label: str, total: int, enabled: bool = True, transient: bool = False) -> Iterator[Any]:
    """A Rich progress bar on stderr; yields a callback taking how many items were just done.
    A `transient` bar is cleared when done."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr_console(),
        transient=transient,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


@contextmanager
def backlog_display(backlog: int, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """`ae consume --until-empty` on a terminal: messages handled against the backlog found at the start
    (which grows when retries are scheduled). Yields the consumer's `on_message(handled)` callback."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("consuming"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[left]}"),
        console=stderr_console(),
        transient=True,
    ) as bar:
        task = bar.add_task("consuming", total=max(backlog, 1), left=f"{backlog} left")

        def handled(count: int) -> None:
            total = max(backlog, count)
            bar.update(task, completed=count, total=total, left=f"{total - count} left")

        yield handled


def attempt_line(attempt: dict[str, Any], at: Any = None) -> str:
    """One delivery attempt on one line (`ae consume -v`, `ae logs --follow`):
    time (UTC), event, subscription, result, duration, uuid."""
    when = at.strftime("%Y-%m-%d %H:%M:%S.%f")[:23] if at is not None else str(attempt["created"])[:23]
    code = attempt["status_code"]
    result = ("ok" if attempt["success"] else "failed") + (f" {code}" if code else "")
    return (
        f"{when}  {attempt['event_name']}  sub {attempt['subscription_id']}  {result}  "
        f"{ms(attempt['duration'])}  {attempt['uuid']}"
    )


# ---------------------------------------------------------------- JSON

#: Keys whose values are times stored as "YYYY-MM-DD HH:MM:SS[.ffffff]" in UTC.
TIME_KEYS = frozenset(
    {
        "created",
        "modified",
        "subscribed_at",
        "updated",
        "next_attempt_at",
        "first_attempt",
        "last_attempt",
        "last_used",
        "previous_token_expires",
        "previous_secret_until",
        "parked_at",
        "due_at",
        "time",
    }
)
#: Keys holding user data, which is printed exactly as it was given.
OPAQUE_KEYS = frozenset({"payload", "arguments", "data", "response_data", "serialized_data", "body", "response"})
STORED_TIME = re.compile(r"^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d(?:\.\d+)?)(?:Z|[+-]00:?00)?$")


def iso_utc(value: Any) -> Any:
    """A stored UTC time (text, an aware datetime, or epoch seconds) as ISO 8601 with its offset,
    e.g. 2026-11-26T09:29:00.123456+00:00."""
    if isinstance(value, str):
        match = STORED_TIME.match(value)
        if match:
            return f"{match.group(1)}T{match.group(2)}+00:00"
    elif hasattr(value, "isoformat") and getattr(value, "tzinfo", None) is not None:
        return value.isoformat()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):  # epoch seconds (a queue's parked_at)
        from datetime import UTC, datetime

        return datetime.fromtimestamp(value, UTC).isoformat()
    return value


def _json_ready(data: Any) -> Any:
    if isinstance(data, dict):
        return {
            k: (v if k in OPAQUE_KEYS else iso_utc(v) if k in TIME_KEYS else _json_ready(v)) for k, v in data.items()
        }
    if isinstance(data, (list, tuple)):
        return [_json_ready(v) for v in data]
    return data


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(_json_ready(data), indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def json_line(data: Any) -> str:
    """One JSON object on one line (JSON Lines), times as in print_json."""
    return json.dumps(_json_ready(data), ensure_ascii=False, default=str)


def emit(data: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    """Show `data` as JSON when asked, else through its human renderer."""
    if as_json:
        print_json(data)
    else:
        render(data)


# ---------------------------------------------------------------- tables


@dataclass(frozen=True)
class Col:
    """A table column. `whole`: never wrapped (uuids, ids, codes). `drop`: 0 is always
    shown; higher ranks are left out first when the terminal is too narrow."""

    header: str
    whole: bool = False
    drop: int = 0
    justify: str = "left"
    comfort: int = 24  # a wrapping column is kept at least this wide (or as wide as its content) if it fits


def _grid(
    columns: Sequence[Col], rows: list[list[str]], title: str | None, header: bool, widths: Sequence[int]
) -> Table:
    grid = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        show_header=header,
    )
    for column, width in zip(columns, widths):
        # One line per row: a value longer than its column is shortened with an ellipsis, never wrapped
        # (a wrapped row breaks a time into date and clock, or a name mid-word, and `grep` misses it).
        grid.add_column(
            column.header,
            no_wrap=True,
            overflow="ellipsis",
            justify=column.justify,  # type: ignore[arg-type]
            width=width,
        )
    for row in rows:
        grid.add_row(*row)
    return grid


def _longest(column: Col, values: list[str]) -> int:
    """The widest line of a column, header included."""
    return max((cell_len(line) for v in [column.header, *values] for line in v.splitlines() or [""]), default=0)


def _cells(row: Sequence[Any]) -> list[str]:
    return ["" if v is None else str(v) for v in row]


#: A shortened column keeps at least this many cells (or its header's width, if wider).
NARROWEST = 8


def fit_columns(cols: Sequence[Col], longest: Sequence[int], width: int) -> tuple[list[int], dict[int, int]]:
    """Which columns to show and how wide, for a terminal `width` cells wide: the shown column
    indexes and their widths. Whole columns are as wide as their longest value; the others start
    at their comfortable width. Too wide: the least important columns (highest `drop`) go first,
    then the shortenable columns shrink, widest first (to NARROWEST at least). Room left: shortenable
    columns grow towards their longest value, left to right."""
    widths = {i: n if col.whole else min(n, col.comfort) for i, (col, n) in enumerate(zip(cols, longest))}
    shown = list(range(len(cols)))

    def spare() -> int:
        return width - sum(widths[i] for i in shown) - 2 * (len(shown) - 1)

    while spare() < 0 and max(cols[i].drop for i in shown) > 0:
        rank = max(cols[i].drop for i in shown)
        shown = [i for i in shown if cols[i].drop != rank]
    floors = {i: max(NARROWEST, cell_len(cols[i].header)) for i in shown if not cols[i].whole}
    while spare() < 0:
        shrinkable = [i for i in floors if widths[i] > floors[i]]
        if not shrinkable:
            break  # whole columns alone are too wide: Rich shortens what it must
        widths[max(shrinkable, key=lambda i: widths[i])] -= 1  # the widest, a cell at a time: they even out
    for i in shown:
        if not cols[i].whole and spare() > 0:
            widths[i] += min(longest[i] - widths[i], spare())
    return shown, {i: widths[i] for i in shown}


def table(
    columns: Sequence[str | Col],
    rows: Iterable[Sequence[Any]],
    title: str | None = None,
    empty: str | None = None,
    header: bool = True,
) -> None:
    """Print a table on stdout, one line per row, fitted to the width; `empty` is printed instead
    when there are no rows."""
    cols = [c if isinstance(c, Col) else Col(c) for c in columns]
    body = [_cells(r) for r in rows]
    console = stdout_console()
    if not body and empty is not None:
        say(empty)
        return
    longest = [_longest(col, [r[i] for r in body]) for i, col in enumerate(cols)]
    shown, widths = fit_columns(cols, longest, console.width)
    grid = _grid([cols[i] for i in shown], [[r[i] for i in shown] for r in body], title, header, list(widths.values()))
    print_trimmed(console, grid)
    left_out = sorted((i for i in range(len(cols)) if i not in widths), key=lambda i: (-cols[i].drop, i))
    hidden = [cols[i].header for i in left_out]  # in the order they were left out
    if hidden:
        note(f"(not shown at this width: {', '.join(hidden)}; widen the terminal or use --json)")


#: Spaces at the end of a line, before any closing style codes: Rich pads every cell to its
#: column's width, the last one included.
TRAILING_SPACES = re.compile(r" +((?:\x1b\[[0-9;]*m)*)$")


def print_trimmed(console: Console, renderable: Any) -> None:
    """Print through `console` (its width and colours) with no trailing spaces on any line."""
    with console.capture() as captured:
        console.print(renderable)
    lines = captured.get().split("\n")
    console.file.write("\n".join(TRAILING_SPACES.sub(r"\1", line) for line in lines))
    console.file.flush()


def fields(rows: Iterable[tuple[str, Any]], title: str | None = None) -> None:
    """Print name/value pairs (one record) as two aligned columns."""
    table([Col("field", whole=True), Col("value")], rows, title, header=False)


def show(renderable: Any) -> None:
    print_trimmed(stdout_console(), renderable)


def say(message: str) -> None:
    """A line of data (stdout), written as is: no markup, and tabs stay tabs for `cut -f`."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def note(message: str) -> None:
    """A diagnostic for people (stderr)."""
    stderr_console().print(message, markup=False, highlight=False, soft_wrap=True)


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


def time_utc(value: Any, precision: int = 19) -> str:
    """A stored UTC time for a table: 'YYYY-MM-DD HH:MM:SS' (the header says UTC)."""
    return "" if value is None else str(value)[:precision]


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"
