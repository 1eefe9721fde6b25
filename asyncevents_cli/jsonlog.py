"""`--log-format json`: one JSON object per log record, one per line.

Every object has `time` (ISO 8601 UTC), `level` and `message`; a record about
one delivery attempt (the engine's `asyncevents_cli.attempts` records) adds
`event`, `subscription`, `uuid`, `outcome` (success or failure), `status_code`
and `duration_ms`; a record of `ae serve`'s access log adds `method`, `path`
and `status_code`. Written here rather than taken from a library: the fields
are ours, and the whole of it is one `json.dumps` per record.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        attempt = getattr(record, "attempt", None)
        if isinstance(attempt, dict):
            entry.update(_attempt_fields(attempt))
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            _client, method, path, _version, status = record.args
            entry.update(method=method, path=path, status_code=status)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _attempt_fields(attempt: dict[str, Any]) -> dict[str, Any]:
    return {
        "event": attempt["event_name"],
        "subscription": attempt["subscription_id"],
        "uuid": attempt["uuid"],
        "outcome": "success" if attempt["success"] else "failure",
        "status_code": attempt["status_code"],
        "duration_ms": round(attempt["duration"] * 1000, 3),
    }


def json_handler(stream: Any = None) -> logging.Handler:
    """A stream handler (stderr by default) that writes `JsonFormatter` lines."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    return handler
