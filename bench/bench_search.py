"""Benchmark: catch-up indexing speed and query latency of `ae search`.

Writes N synthetic delivery-log rows (orders shaped like the README's) into a
real SQLite store in a temporary folder, times one catch-up of the whoosh index
(all rows, one commit), then times a set of queries. Prints the figures.

    /tmp/venv/bin/python bench/bench_search.py [N]
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from asyncevents_cli.search import SearchIndex
from asyncevents_cli.store import Attempt, Store

QUERIES = [
    "data.data.customer_email: user7@example.com",
    "data.data.increment_id: CK* AND success: true",
    "data.data.grand_total:[10 TO 50]",
    "data.data.items.sku:WS12-M-Orange",
    "event_name:sales.* AND NOT success:true",
    '"back door"',
]


def main(n: int) -> None:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "ae.db")
        with store.transaction():
            for i in range(n):
                order = {"increment_id": f"{rng.choice(['CK', 'SO'])}{i:08d}",
                         "customer_email": f"user{rng.randrange(500)}@example.com",
                         "grand_total": round(rng.uniform(1, 200), 2),
                         "items": [{"sku": rng.choice(["WS12-M-Orange", "MJ01-L-Red", "24-MB01"]), "qty": 1}
                                   for _ in range(rng.randint(1, 3))],
                         "note": rng.choice(["leave at the back door", "ring twice", ""])}
                store.log_attempt(Attempt(f"uuid-{i}", 1, rng.choice(["sales.order.created", "customer.created"]),
                                          rng.random() > 0.1, 200, "", json.dumps({"data": order}), 0, 0.01))
        ix = SearchIndex(Path(folder) / "ae.db.index", store)
        started = time.perf_counter()
        added = ix.rebuild()
        elapsed = time.perf_counter() - started
        print(f"catch-up indexing: {added} docs in {elapsed:.1f} s = {added / elapsed:,.0f} docs/s (one commit)")
        for q in QUERIES:
            ix.search(q)  # warm the searcher and caches
            times = []
            for _ in range(5):
                t = time.perf_counter()
                hits = ix.search(q)
                times.append(time.perf_counter() - t)
            print(f"{statistics.median(times) * 1000:7.1f} ms median  {hits.total:6d} hits  {q}")
        ix.close()
        store.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
