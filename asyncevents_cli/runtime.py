"""One place that opens what a command needs: config, store, queue, notifiers.

Everything is opened lazily, so `ae events list` never touches the database
and `ae subscribe` never connects to RabbitMQ.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Config, load_config

if TYPE_CHECKING:  # imported where used, so a command loads only what it opens (`ae trace`: the store)
    from .engine import Consumer, ConsumerOptions
    from .notifiers import Notifiers
    from .queues import Queue
    from .store import Store


class Runtime:
    def __init__(
        self,
        config_path: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
        config: Config | None = None,
    ) -> None:
        self._config_path = config_path
        self._environ = environ
        self._config = config
        self._store: Store | None = None
        self._queue: Queue | None = None
        self._notifiers: Notifiers | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self._config_path, self._environ)
        return self._config

    @property
    def environ(self) -> dict[str, str] | None:
        """The environment given to this runtime (None: the process's own)."""
        return None if self._environ is None else dict(self._environ)

    @property
    def store(self) -> Store:
        if self._store is None:
            from .store import Store

            self._store = Store(self.config.database, self.environ)
        return self._store

    @property
    def queue(self) -> Queue:
        if self._queue is None:
            from .queues import open_queue

            self._queue = open_queue(self.config, lambda: self.store, self._existing_store)
        return self._queue

    def _existing_store(self) -> Store | None:
        """The store, unless this host has none: one that only publishes to a broker
        does not need a database, and publishes like any AMQP client."""
        if self._store is None and not self.config.uses_postgres and not self.config.database_path.exists():
            return None
        return self.store

    @property
    def notifiers(self) -> Notifiers:
        if self._notifiers is None:
            from .notifiers import Notifiers

            self._notifiers = Notifiers(self.config)
        return self._notifiers

    def consumer_options(
        self,
        kinds: Sequence[str] | None = None,
        *,
        concurrency: int | None = None,
        per_subscription: int | None = None,
        poll_timeout: float | None = None,
    ) -> ConsumerOptions:
        """A consumer's options: the settings, each overridden by a flag given (None: not given).
        `kinds` defaults to every queue (trigger and retry). Out of range: `InputError`."""
        from .engine import ConsumerOptions

        return ConsumerOptions.from_settings(
            self.config.settings,
            kinds,
            concurrency=concurrency,
            per_subscription=per_subscription,
            poll_timeout=poll_timeout,
        )

    def consumer(
        self,
        kinds: Sequence[str] | None = None,
        *,
        concurrency: int | None = None,
        per_subscription: int | None = None,
        poll_timeout: float | None = None,
    ) -> Consumer:
        """A delivery engine over this runtime's store, queue and notifiers (see `consumer_options`)."""
        options = self.consumer_options(
            kinds, concurrency=concurrency, per_subscription=per_subscription, poll_timeout=poll_timeout
        )
        return self.consumer_for(options)

    def consumer_for(self, options: ConsumerOptions) -> Consumer:
        """A delivery engine with options built before (once per command, not once per reconnect)."""
        from .engine import Consumer

        self.store.check_secret_key()  # a wrong key stops here, before a message is taken
        return Consumer(self.config, self.store, self.queue, self.notifiers, options)

    def close(self) -> None:
        for resource in (self._notifiers, self._queue, self._store):
            if resource is not None:
                resource.close()
        self._notifiers = self._queue = self._store = None

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def debug_enabled() -> bool:
    return os.environ.get("AE_DEBUG", "") not in ("", "0", "false")
