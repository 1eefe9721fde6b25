"""`Client`: ae from Python, the calls the CLI makes, with the same checks and exceptions.

A client is cheap to keep for the life of a process and safe to share between
threads: it opens the store and the queue on first use and keeps them, and one
lock keeps its threads from using a broker channel at once. Publishing on the
application's own connection (``connection=``) takes no lock: the row is
written on that connection, in the application's transaction (see
`queues/outbox.py`), and commits or rolls back with it.
"""

from __future__ import annotations

import json
import os
import threading
import uuid as uuids
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Config
from .errors import InputError
from .messages import TriggerMessage, check_store_id
from .publishing import parse_data
from .runtime import Runtime

if TYPE_CHECKING:
    from .queues.outbox import StoreTarget


def _checked_data(data: Any) -> dict[str, Any]:
    """An event's data as `ae publish --data` would accept its JSON: an object within the limits."""
    if not isinstance(data, Mapping):
        raise InputError(f"data must be a JSON object (a dict), got {type(data).__name__}")
    try:
        text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"data: not JSON: {exc}") from exc
    return parse_data(text, "data")


class Client:
    """ae for one config: `Client()` finds it as the CLI does (AE_CONFIG, else ./events.toml).

    `config` may be a path or a loaded `Config`; `environ` stands in for the
    process's environment (AE_* settings), as in tests."""

    def __init__(
        self, config: str | os.PathLike[str] | Config | None = None, *, environ: Mapping[str, str] | None = None
    ) -> None:
        if isinstance(config, Config):
            self._runtime = Runtime(None, environ, config)
        else:
            self._runtime = Runtime(None if config is None else Path(config), environ)
        self._lock = threading.RLock()
        self._target: StoreTarget | None = None

    @property
    def config(self) -> Config:
        with self._lock:
            return self._runtime.config

    # -- publishing -------------------------------------------------------------------

    def publish(self, event: str, data: Mapping[str, Any], *, store_id: int = 0, connection: Any = None) -> str:
        """Validate and enqueue one event; return its message id.

        With `connection` (the application's open psycopg 3 or sqlite3 connection to
        ae's store, or a SQLAlchemy Session or Connection over one), the event commits
        exactly when that connection's transaction does."""
        return self.publish_many(event, [data], store_id=store_id, connection=connection)[0]

    def publish_many(
        self, event: str, rows: Iterable[Mapping[str, Any]], *, store_id: int = 0, connection: Any = None
    ) -> list[str]:
        """Many events of one kind, all or none; return their message ids in order."""
        config = self.config
        config.event(event)
        messages = [TriggerMessage(event, _checked_data(data), check_store_id(store_id)) for data in rows]
        if connection is None:
            with self._lock:
                return self._runtime.queue.publish_triggers(messages)
        return self._publish_in_transaction(messages, connection)

    def _publish_in_transaction(self, messages: list[TriggerMessage], connection: Any) -> list[str]:
        from .queues import outbox

        target = self._target or self._prepare_store()
        rows = [(uuids.uuid4().hex, message.encode()) for message in messages]
        outbox.write_events(outbox.driver_connection(connection), target, rows)
        return [message_id for message_id, _ in rows]

    def _prepare_store(self) -> StoreTarget:
        """Once: the store migrated (the outbox exists) and, for the table queue on PostgreSQL,
        its table made. (On SQLite the application's open transaction holds the write lock;
        `queues/outbox.py` makes the table on its connection if need be.)"""
        from .queues.outbox import StoreTarget

        with self._lock:
            config = self._runtime.config
            if config.settings.queue == "db" and config.uses_postgres:
                self._runtime.queue  # noqa: B018 - the table queue makes its table
            else:
                self._runtime.store  # noqa: B018 - opening it migrates it
            self._target = StoreTarget.of(config)
            return self._target

    # -- the rest of the CLI's core calls ----------------------------------------------

    def subscribe(
        self,
        event: str,
        url: str,
        *,
        secret: str | None = None,
        notifier: str = "http",
        store_id: int = 0,
        signature: str | None = None,
        headers: Mapping[str, str] | Iterable[str] = (),
    ) -> dict[str, Any]:
        """Subscribe a recipient, as `ae subscribe`; return the subscription as plain data,
        with `secret` set when one was generated (shown this once)."""
        from .subscribe import subscribe

        with self._lock:
            rt = self._runtime
            subscription, generated = subscribe(
                rt.config, rt.store, event, url, secret, notifier, store_id, signature, headers
            )
        return {**subscription.public(), "secret": generated}

    def trace(self, uuid: str) -> dict[str, Any]:
        """What happened to one delivery, as `ae trace --json`; `NotFound` if no attempt has that uuid."""
        from .trace import trace

        with self._lock:
            return trace(self._runtime.store, uuid)

    def search(self, query: str, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Logged attempts matching a Lucene-syntax query, newest first, as `ae search --json`'s rows."""
        from .search import check_syntax, search_logs

        check_syntax(query)
        with self._lock:
            return search_logs(self._runtime.config, self._runtime.store, query, limit, offset).rows

    # -- life cycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the store and queue connections; the client opens them again if used."""
        with self._lock:
            self._runtime.close()
            self._target = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
