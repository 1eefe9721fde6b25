"""Validating and enqueueing events."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .config import Config
from .errors import InputError
from .messages import TriggerMessage, check_store_id
from .operator_events import is_operator_event
from .queues.base import Queue
from .strict_json import MAX_PAYLOAD_BYTES, JsonRejected, loads

MAX_DATA_BYTES = MAX_PAYLOAD_BYTES  # one event's published arguments, as JSON


def parse_data(text: str, where: str = "--data") -> dict[str, Any]:
    """Published arguments must be one JSON object under the size limit."""
    if len(text.encode("utf-8", "replace")) > MAX_DATA_BYTES:
        raise InputError(f"{where}: data is larger than {MAX_DATA_BYTES // 1024} KiB")
    try:
        value = loads(text) if text.strip() else {}
    except JsonRejected as exc:
        raise InputError(f"{where}: {exc}") from exc
    if not isinstance(value, dict):
        raise InputError(f"{where}: data must be a JSON object, got {type(value).__name__}")
    return value


def publishable(config: Config, event_name: str) -> None:
    """An event defined in events.toml: operator events are raised by `ae` alone."""
    if is_operator_event(event_name):
        raise InputError(f"{event_name} is an operator event: ae raises it itself, and it cannot be published")
    config.event(event_name)


def publish(config: Config, queue: Queue, event_name: str, data: dict[str, Any], store_id: int = 0) -> str:
    """Enqueue one trigger message; return its message id."""
    publishable(config, event_name)
    return queue.publish_trigger(TriggerMessage(event_name, data, check_store_id(store_id)))


def read_batch(path: Path | str) -> list[dict[str, Any]]:
    """Every non-blank line of a JSON Lines file, each a JSON object; all or nothing."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read batch file {path}: {exc}") from exc
    return [parse_data(line, f"{path}:{n}") for n, line in enumerate(lines, 1) if line.strip()]


def publish_batch(
    config: Config,
    queue: Queue,
    event_name: str,
    items: Iterable[dict[str, Any]],
    store_id: int = 0,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Enqueue many events of one kind, all or none (one SQLite or AMQP transaction)."""
    publishable(config, event_name)
    messages = [TriggerMessage(event_name, data, check_store_id(store_id)) for data in items]
    return queue.publish_triggers(messages, progress)
