"""Building a fresh index in worker processes, one segment per chunk of rows.

Indexing is plain Python and CPU-bound, so one process uses one core. For a
full build, the parent reads the log in chunks of `WORKER_ROWS` rows and
hands each to a worker process, which turns the rows into terms and writes
them as one whoosh segment (`BulkWriter`, not committed); the parent then
commits all the segments in one table of contents, as whoosh's own
multi-process writer does with `multisegment=True` (which cannot be used as
is: its workers call `add_document`).

Workers are `python -m asyncevents_cli.search.parallel` subprocesses that
read pickled chunks on stdin and answer with pickled segments on stdout:
not `multiprocessing`, whose fork inherits the caller's threads' locks and
whose spawn runs the caller's main module again.

Each worker holds one chunk's postings at a time (about 12 MB per 1,000 rows
of bench_search's orders), hence the small chunks; the parent holds at most
one chunk per worker.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

from ..errors import AeError

WORKER_ROWS = 2_500
COLUMNS = ("log_id", "uuid", "event_name", "success", "created", "serialized_data")


def worker_count() -> int:
    """Two workers where there are two cores or more (the machine this was measured on has two)."""
    return min(2, os.cpu_count() or 1)


def write_segment(folder: str, rows: list[tuple[Any, ...]]) -> Any:
    """In a worker: index these rows as one uncommitted segment of the index in `folder`."""
    from whoosh import index

    from .documents import LeanCodec, log_document
    from .segment import BulkWriter

    ix = index.open_dir(folder)
    writer = BulkWriter(ix, _lk=False, codec=LeanCodec(), compound=False)  # the parent holds the lock
    for values in rows:
        writer.add_terms(**log_document(dict(zip(COLUMNS, values))))
    return writer.finish_segment()


class Worker:
    """One worker process and its pipes."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.busy = 0  # rows of the chunk it is working on

    def send(self, folder: str, rows: list[dict[str, Any]]) -> None:
        assert self.process.stdin is not None
        pickle.dump((folder, [tuple(row[c] for c in COLUMNS) for row in rows]), self.process.stdin, 5)
        self.process.stdin.flush()
        self.busy = len(rows)

    def receive(self) -> Any:
        assert self.process.stdout is not None
        try:
            ok, value = pickle.load(self.process.stdout)
        except EOFError as exc:
            raise AeError(
                f"a search index worker exited with code {self.process.wait()}",
                hint="run `ae index rebuild` again; AE_DEBUG=1 shows why",
            ) from exc
        self.busy = 0
        if not ok:
            if isinstance(value, (OSError, AeError)):
                raise value  # a full disk is reported as such by the index
            raise AeError(
                f"a search index worker failed: {value}", hint="run `ae index rebuild` again; AE_DEBUG=1 shows why"
            ) from value
        return value

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def build_segments(
    folder: str, chunks: Iterator[list[dict[str, Any]]], workers: int, progress: Callable[[int], None] | None = None
) -> tuple[list[Any], int]:
    """Index every chunk in worker processes; return (the segments, and the last log_id).

    Chunks go to the workers in turn and come back in the same turn, so every
    worker has one chunk while the parent reads the next."""
    pool = [Worker() for _ in range(workers)]
    segments: list[Any] = []
    last = 0
    try:
        turn = 0
        for rows in chunks:
            worker = pool[turn % workers]
            if worker.busy:
                done = worker.busy
                segments.append(worker.receive())
                if progress:
                    progress(done)
            worker.send(folder, rows)
            last = int(rows[-1]["log_id"])
            turn += 1
        for k in range(workers):
            worker = pool[(turn + k) % workers]
            if worker.busy:
                done = worker.busy
                segments.append(worker.receive())
                if progress:
                    progress(done)
    finally:
        for worker in pool:
            worker.close()
    return segments, last


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """A worker's loop: a pickled (folder, rows) in, a pickled (ok, segment or exception) out."""
    while True:
        try:
            folder, rows = pickle.load(stdin)
        except EOFError:
            return
        try:
            answer: tuple[bool, Any] = (True, write_segment(folder, rows))
        except Exception as exc:  # handed to the parent, which raises it
            answer = (False, exc)
        pickle.dump(answer, stdout, 5)
        stdout.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
