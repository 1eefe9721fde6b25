"""`ae publish`: one event from --data / --data-file / stdin, or many from --batch."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .. import publish as publishing
from ..errors import InputError
from .context import runtime
from .output import note, progress_bar, say


def _read_data(data: str | None, data_file: Path | None, stdin: str | None) -> dict:
    given = [x for x in (data, data_file, stdin) if x is not None]
    if len(given) > 1:
        raise InputError("give the data once: --data, --data-file or - (stdin)")
    if stdin is not None:
        if stdin != "-":
            raise InputError(f"unexpected argument {stdin!r}; use - to read the data from stdin")
        return publishing.parse_data(sys.stdin.read(), "stdin")
    if data_file is not None:
        try:
            text = data_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read --data-file {data_file}: {exc}") from None
        return publishing.parse_data(text, str(data_file))
    return publishing.parse_data(data or "{}", "--data")


def publish(
    ctx: typer.Context,
    event: str = typer.Argument(..., help="A defined event name."),
    stdin: str | None = typer.Argument(None, metavar="[-]", help="Read the JSON data from stdin."),
    data: str | None = typer.Option(None, "--data", "-d", help="The event's arguments as a JSON object."),
    data_file: Path | None = typer.Option(None, "--data-file", help="Read the JSON object from a file."),
    store_id: int = typer.Option(0, "--store", help="Store the event belongs to (0 = default/all)."),
    batch: Path | None = typer.Option(
        None, "--batch", help="A JSON Lines file: one event's data per line, all enqueued in one transaction."
    ),
) -> None:
    """Validate an event and put it on the trigger queue; prints the message id."""
    rt = runtime(ctx)
    if batch is not None:
        if any(x is not None for x in (data, data_file, stdin)):
            raise InputError("--batch cannot be combined with --data, --data-file or -")
        rt.config.event(event)
        items = publishing.read_batch(batch)
        with progress_bar("publishing", len(items), transient=True) as advance:
            ids = publishing.publish_batch(rt.config, rt.queue, event, items, store_id, progress=advance)
        note(f"published {len(ids)} {event} event(s)")
        for message_id in ids:
            say(message_id)
        return
    rt.config.event(event)
    arguments = _read_data(data, data_file, stdin)
    say(publishing.publish(rt.config, rt.queue, event, arguments, store_id))
