"""Times given on the command line (`--since`, `--until`), as the store writes them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from .errors import InputError
from .store import timestamp


def parse_moment(text: str, option: str, end: bool = False) -> str:
    """An ISO date or datetime (UTC unless it names an offset) as a log timestamp.

    A date alone given as an end (`--until 2026-03-01`) means the end of that day.
    """
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InputError(
            f"{option}: expected an ISO date or datetime like 2026-03-01 or 2026-03-01T22:00:00, got {text!r}"
        ) from exc
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    if end and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        moment += timedelta(days=1)
    return timestamp(moment)
