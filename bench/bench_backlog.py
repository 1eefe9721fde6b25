"""Does the SQLite queue slow down with a large backlog?

    python bench/bench_backlog.py [N]

Publishes N triggers for an event with no subscribers (so only queue work is
measured), then times 500 receive-handle-ack cycles for `consume trigger` and
for `consume all` (both queues). Compare N = 2,000 with N = 100,000.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from asyncevents_cli.publishing import publish_batch
from asyncevents_cli.runtime import Runtime

SAMPLE = 500


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "events.toml"
        config.write_text('[events."bench.event"]\n')
        with Runtime(config, environ={}) as rt:
            publish_batch(rt.config, rt.queue, "bench.event", [{"n": i} for i in range(n)])
            for kinds in (("trigger",), ("trigger", "retry")):
                started = time.perf_counter()
                handled = rt.consumer(kinds).run(max_messages=SAMPLE)
                elapsed = time.perf_counter() - started
                print(f"backlog {n:>7}, consume {'+'.join(kinds):<13}: {handled / elapsed:6.0f} messages/s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
