"""The CLI's `Runtime`, shared by the server's request threads one at a time, and
a search lane of its own.

Request handlers run on a thread pool; the store's SQLite connection and a
RabbitMQ channel are each meant for one thread at a time, so every handler
borrows the runtime under one lock. An admin API and a handful of pages need no
more concurrency than that, and the consumers run in their own processes.

A search is the one request whose time depends on its input, so it never runs
under that lock: it runs on a thread of its own with a runtime of its own (its
own store connection), and whoever asked waits at most `serve_search_seconds`
before answering 503. Searches queue behind one another there, never in front
of anything else.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager

from ..errors import AeError
from ..runtime import Runtime
from ..search import Hits, search_logs


class SearchTimedOut(AeError):
    """A search that did not finish within its budget: answered 503, nothing changed."""


class Backend:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._lock = threading.Lock()
        self._search_lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ae-search")
        self._search_runtime: Runtime | None = None  # opened and used on the search thread only

    @contextmanager
    def use(self) -> Iterator[Runtime]:
        with self._lock:
            yield self._runtime

    def search(self, text: str, limit: int, offset: int) -> Hits:
        """`search_logs` on the search thread; SearchTimedOut after the budget."""
        budget = self._runtime.config.settings.serve_search_seconds
        future = self._search_lane.submit(self._search, text, limit, offset)
        try:
            return future.result(timeout=budget)
        except FutureTimeout as exc:
            future.cancel()  # if it is still queued behind another search, it never starts
            raise SearchTimedOut(
                f"the search did not finish within {budget:g} s (serve_search_seconds)",
                hint="narrow the query, or try again in a moment",
            ) from exc

    def _search(self, text: str, limit: int, offset: int) -> Hits:
        if self._search_runtime is None:
            self._search_runtime = Runtime(config=self._runtime.config, environ=self._runtime.environ)
        runtime = self._search_runtime
        return search_logs(runtime.config, runtime.store, text, limit, offset)

    def close(self) -> None:
        if self._search_runtime is not None:
            self._search_lane.submit(self._search_runtime.close)
        self._search_lane.shutdown(wait=False, cancel_futures=False)
        with self._lock:
            self._runtime.close()
