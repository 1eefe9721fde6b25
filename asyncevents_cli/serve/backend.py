"""The CLI's `Runtime`, shared by the server's request threads one at a time.

Request handlers run on a thread pool; the store's SQLite connection, the search
index and a RabbitMQ channel are each meant for one thread at a time, so every
handler borrows the runtime under one lock. An admin API and a handful of pages
need no more concurrency than that, and the consumers run in their own processes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..runtime import Runtime


class Backend:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._lock = threading.Lock()

    @contextmanager
    def use(self) -> Iterator[Runtime]:
        with self._lock:
            yield self._runtime

    def close(self) -> None:
        with self._lock:
            self._runtime.close()
