"""`ae status`: queue depths and delivery counts, as plain data."""

from __future__ import annotations

from typing import Any

from .config import Config
from .queues.base import Queue
from .store import Store


def status(config: Config, store: Store, queue: Queue) -> dict[str, Any]:
    return {
        "backend": config.settings["queue"],
        "database": str(config.database_path),
        "queues": queue.depths().as_dict(),
        "subscriptions": store.delivery_counts(),
    }
