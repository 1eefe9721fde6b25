"""`ae index follow`: keep the search index current from a process of its own.

Consumers never write the index (it is not on the delivery path); without a
follower, each `ae search` first indexes whatever was logged since the last
one, which after a busy hour can take a while. A follower catches up every
`interval` seconds instead, so a search finds at most the rows logged since
the follower's last pass (about `interval` plus one pass behind) and the
search itself has little or nothing left to add.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .index import SearchIndex


def follow(
    ix: SearchIndex,
    interval: float,
    should_stop: Callable[[], bool],
    on_indexed: Callable[[int, int], None],
    once: bool = False,
) -> int:
    """Catch up every `interval` seconds until `should_stop()`; return how many rows were indexed.

    `on_indexed(count, up_to_log_id)` is called after each pass that added rows."""
    total = 0
    while not should_stop():
        added = ix.catch_up()
        if added:
            total += added
            on_indexed(added, ix.indexed_up_to())
        if once:
            break
        deadline = time.monotonic() + interval
        while not should_stop() and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
    return total
