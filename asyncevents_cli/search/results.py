"""What a search returns: the matching attempts, each with its full payload.

Like the module's Elasticsearch hits, each result carries the logged body
(`payload`, parsed from `serialized_data`), so a script can act on a hit
without calling `ae trace`; `excerpt` is the part a table shows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..store import Store


@dataclass
class Hits:
    total: int
    rows: list[dict[str, Any]]
    mode: str  # "index" or "substring"


def page_rows(store: Store, log_ids: list[int], wanted: list[str]) -> list[dict[str, Any]]:
    """The log rows of these ids, in the given order, shaped as results."""
    by_id = {row["log_id"]: row for row in store.log.logs_by_id(log_ids)}
    return [result(by_id[i], wanted) for i in log_ids if i in by_id]


def result(row: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
    serialized = row["serialized_data"] or ""
    try:
        payload: Any = json.loads(serialized)
    except ValueError:
        payload = serialized  # logged as it came: not JSON
    return {
        "log_id": row["log_id"],
        "uuid": row["uuid"],
        "event_name": row["event_name"],
        "subscription_id": row["subscription_id"],
        "success": bool(row["success"]),
        "status_code": row["status_code"],
        "created": row["created"],
        "excerpt": excerpt(serialized, wanted),
        "payload": payload,
    }


def excerpt(serialized: str, wanted: Iterable[str], width: int = 80) -> str:
    """About `width` characters of the logged body around the first match."""
    lowered = serialized.lower()
    hits = [p for p in (lowered.find(w.lower()) for w in wanted) if p >= 0]
    start = max(0, min(hits) - width // 3) if hits else 0
    piece = serialized[start : start + width]
    return ("…" if start else "") + piece + ("…" if start + width < len(serialized) else "")
