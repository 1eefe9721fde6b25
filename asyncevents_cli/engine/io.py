"""The consumer's one I/O thread: every queue and store call it makes runs there, in order.

SQLite commits wait for fsync (`synchronous=FULL`) and pika waits on the broker;
on the event loop's thread either would stop every delivery in flight for that
long. On a thread of their own the loop keeps sending and reading while a batch
commits, and the next batch grows by whatever finished meanwhile (a group
commit that follows the disk's speed).

One thread, not a pool: the queue backends are not thread-safe (pika's blocking
connection, one SQLite connection shared with the store), and one thread keeps
their calls in the order the loop made them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class IoThread:
    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ae-io")

    def submit(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        return self._pool.submit(fn, *args)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on the I/O thread. Cancelling the caller does not stop a call
        already under way: `close` waits for it."""
        return await asyncio.wrap_future(self._pool.submit(fn, *args))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
