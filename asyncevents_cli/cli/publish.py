"""`ae publish`: one event from --data / --data-file / stdin, or many from --batch.

Where the data comes from, when none of --data, --data-file or `-` is given:
piped stdin is read (as `-` would), since `echo '{...}' | ae publish EVENT` can
only mean that; on a terminal there is nothing to read, and publishing `{}`
unasked would hide a forgotten argument, so the command refuses (exit 2).
`--data '{}'` publishes an empty object on purpose.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from .. import publishing
from ..errors import InputError
from ..messages import check_store_id
from .context import runtime
from .output import emit, is_terminal, note, progress_bar, say

NO_DATA = "no data to publish: give --data JSON, --data-file PATH, or pipe it in"


def _read_data(data: str | None, data_file: Path | None, stdin: str | None) -> dict:
    given = [x for x in (data, data_file, stdin) if x is not None]
    if len(given) > 1:
        raise InputError("give the data once: --data, --data-file or - (stdin)")
    if stdin is not None and stdin != "-":
        raise InputError(f"unexpected argument {stdin!r}; use - to read the data from stdin")
    if data_file is not None:
        try:
            text = data_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read --data-file {data_file}: {exc}") from exc
        return publishing.parse_data(text, str(data_file))
    if data is not None:
        return publishing.parse_data(data, "--data")
    if stdin is None and is_terminal(sys.stdin):
        raise InputError(NO_DATA, hint="--data '{}' publishes an empty object")
    text = sys.stdin.read()
    if stdin is None and not text.strip():
        raise InputError(f"{NO_DATA} (stdin was empty)", hint="--data '{}' publishes an empty object")
    return publishing.parse_data(text, "stdin")


def publish(
    ctx: typer.Context,
    event: str = typer.Argument(..., help="A defined event name (see `ae events list`).", show_default=False),
    stdin: str | None = typer.Argument(
        None,
        metavar="[-]",
        help="Read the JSON data from stdin (the default when stdin is piped).",
        show_default=False,
    ),
    data: str | None = typer.Option(None, "--data", "-d", help="The event's arguments as a JSON object."),
    data_file: Path | None = typer.Option(None, "--data-file", help="Read the JSON object from a file."),
    store_id: int = typer.Option(0, "--store", help="Store the event belongs to (0 = default/all)."),
    batch: Path | None = typer.Option(
        None, "--batch", help="A JSON Lines file: one event's data per line, all enqueued in one transaction."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the message id(s) as JSON."),
) -> None:
    """Validate an event and put it on the trigger queue; prints the message id.

    The data is a JSON object from --data, --data-file, or stdin (piped, or `-`). With none of them on a
    terminal the command refuses (exit 2): --data '{}' publishes an empty object.

    Examples:

      ae publish sales.order.created --data '{"increment_id": "CK00000101"}'

      echo '{"increment_id": "CK00000102"}' | ae publish sales.order.created

      ae publish sales.order.created --batch orders.jsonl
    """
    rt = runtime(ctx)
    if batch is not None:
        if any(x is not None for x in (data, data_file, stdin)):
            raise InputError("--batch cannot be combined with --data, --data-file or -")
        publishing.publishable(rt.config, event)
        items = publishing.read_batch(batch)
        with progress_bar("publishing", len(items), transient=True) as advance:
            ids = publishing.publish_batch(rt.config, rt.queue, event, items, store_id, progress=advance)
        note(f"published {len(ids)} {event} event(s)")
        emit({"event_name": event, "store_id": store_id, "message_ids": ids}, as_json, _say_ids)
        return
    publishing.publishable(rt.config, event)
    check_store_id(store_id)  # before stdin is read
    arguments = _read_data(data, data_file, stdin)
    message_id = publishing.publish(rt.config, rt.queue, event, arguments, store_id)
    emit({"event_name": event, "store_id": store_id, "message_id": message_id}, as_json, lambda d: say(d["message_id"]))


def _say_ids(data: dict[str, Any]) -> None:
    for message_id in data["message_ids"]:
        say(message_id)
