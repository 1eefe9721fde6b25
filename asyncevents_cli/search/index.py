"""The whoosh index of the delivery log, kept beside the store, and searching it.

The index lives in `<database>.index/` and follows `delivery_log` by `log_id`:
it is never written on the delivery path. A search first catches up (every row
past the last indexed log_id, in one commit), or `ae index follow` keeps it
current in the background. A missing, damaged or outdated index is rebuilt
from the log, never fatal; the rebuild is logged with its cause. Only the
errors a damaged folder raises count as damage (`DAMAGE`): anything else,
such as a whoosh release that changed its internals, is an error, not a
silent rebuild. The schema and the documents are in `documents`; the folder's
ownership and permissions in `folder`.

`.ae-index.json` records the schema version and the last indexed log_id; it
is written after each commit, and rows past it are deleted before they are
added again, so a crash between the two cannot duplicate documents.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from whoosh import index, query
from whoosh.index import LockError
from whoosh.writing import NO_MERGE

from ..errors import AeError
from ..store import Store
from .documents import LeanCodec, build_schema, log_document, parser_schema
from .folder import META_FILE, check_ours, discard, make_private, new_folder, swap_in
from .matching import SegmentMatcher
from .merging import MERGE_AT, merge_small_segments
from .parallel import WORKER_ROWS, build_segments, worker_count
from .query import parse_for_index
from .results import Hits, page_rows
from .segment import BulkWriter, log_id_column, read_toc

log = logging.getLogger("asyncevents_cli")

SCHEMA_VERSION = 6  # 4: only the first documents.MAX_INDEXED_CHARS of a body are indexed;
# 5: payload numbers in 2 tiers, compressed posting blocks (see documents);
# 6: `paths` keyed word first, no `data` field, `uuid` a column only (see documents)
# What reading a damaged or truncated index folder raises (whoosh's own errors,
# and those of the files, structs and pickles it reads): a reason to rebuild.
# Anything else propagates, so a whoosh that changed shows as an error.
DAMAGE: tuple[type[BaseException], ...] = (
    index.IndexError,
    OSError,
    EOFError,
    ValueError,
    KeyError,
    IndexError,
    struct.error,
    pickle.UnpicklingError,
    zlib.error,
)
BATCH = 2000  # rows read from the store at a time
# Rows per commit: a segment's postings stay in memory until it is written, about
# 11 MB per 1,000 rows of bench_search's orders, so this keeps a build under 200 MB.
COMMIT_EVERY = 5_000
POOL_MB = 256  # whoosh spills postings to temporary files past this estimate; COMMIT_EVERY stays below it
Progress = Callable[[int], None]  # called with how many rows were just indexed


def index_path_for(database: Path) -> Path:
    return database.with_name(database.name + ".index")


class SearchIndex:
    """The index folder of one store; opened (or rebuilt) on first use."""

    def __init__(self, path: Path, store: Store) -> None:
        self.path = path
        self.store = store
        self._ix: index.Index | None = None

    # -- the meta file ---------------------------------------------------

    def _read_meta(self, folder: Path | None = None) -> dict[str, Any] | None:
        try:
            meta = json.loads(((folder or self.path) / META_FILE).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("schema") != SCHEMA_VERSION:
            return None
        if not isinstance(meta.get("last_log_id"), int):
            return None
        # Built for another log (new or migrated store), or log ids went backwards:
        # treat it as outdated, so it is rebuilt rather than silently missing rows.
        if (
            meta.get("log_generation") != self.store.info.log_generation()
            or meta["last_log_id"] > self.store.log.log_id_high_water()
        ):
            return None
        return meta

    def _write_meta(self, last_log_id: int, folder: Path | None = None) -> None:
        target = (folder or self.path) / META_FILE
        temporary = target.with_suffix(".tmp")
        temporary.write_text(
            json.dumps(
                {
                    "schema": SCHEMA_VERSION,
                    "last_log_id": last_log_id,
                    "log_generation": self.store.info.log_generation(),
                }
            )
        )
        os.replace(temporary, target)
        make_private(folder or self.path)  # after each commit: whoosh writes files under the umask

    # -- opening, building -----------------------------------------------

    def _open(self) -> index.Index:
        """The index, rebuilt when missing, unreadable or of another schema version."""
        if self._ix is None:
            if self._read_meta() is None:
                if not self.path.exists():
                    cause = "missing"
                elif not (self.path / META_FILE).exists():
                    cause = "without its meta file"
                else:
                    cause = "outdated or of another log"
                self._rebuild_because(cause)
            else:
                try:
                    ix = index.open_dir(str(self.path))
                    read_toc(ix)  # reads the segment list: garbage fails here (damaged segments fail in search)
                    self._ix = ix
                except LockError:
                    raise
                except DAMAGE as exc:
                    self._rebuild_because(f"unreadable ({type(exc).__name__}: {exc})")
        assert self._ix is not None
        return self._ix

    def _rebuild_because(self, cause: str) -> None:
        check_ours(self.path)  # before saying anything: a foreign folder is refused, not rebuilt
        if cause != "missing":
            log.warning("search index %s is %s: rebuilding it from the log", self.path, cause)
        self.rebuild()

    def check_folder(self) -> None:
        """Raise InputError (exit 2) if `path` is not a folder this index may replace (see `folder`)."""
        check_ours(self.path)

    def rebuild(self, progress: Progress | None = None) -> int:
        """Index the whole log into a fresh folder, then swap it in; return the document count."""
        self.close()
        check_ours(self.path)  # refuse before doing any work
        fresh = None
        try:
            fresh = new_folder(self.path)
            ix = index.create_in(str(fresh), build_schema())
            workers = worker_count()
            if workers > 1 and self.store.log.count_logs_after(0) >= 2 * WORKER_ROWS:
                count = self._add_in_workers(ix, 0, workers, progress, folder=fresh)
            else:
                count, _ = self._add_rows(ix, 0, progress, folder=fresh)
            self._merge_all(ix)
            ix.close()
        except OSError as exc:  # a full disk: leave no half-built folder to fill it further
            if fresh is not None:
                discard(fresh)
            raise self._cannot_write(exc) from exc
        except BaseException:
            if fresh is not None:
                discard(fresh)
            raise
        swap_in(fresh, self.path)
        self._ix = index.open_dir(str(self.path))
        return count

    def _add_in_workers(
        self, ix: index.Index, after: int, workers: int, progress: Progress | None, folder: Path | None = None
    ) -> int:
        """Add every row past `after`, one segment per WORKER_ROWS rows, in worker
        processes (see `parallel`), in one commit; return how many."""
        writer = self._writer(ix)  # holds the lock while the workers write segments
        try:
            if folder is None:
                # Rows past `after` may be in the index if a crash hit between commit and meta.
                writer.delete_by_query(query.NumericRange("log_id", after + 1, None))
            segments, last = build_segments(
                str(folder or self.path), self._chunks(WORKER_ROWS, after), workers, progress
            )
        except BaseException:
            writer.cancel()
            raise
        writer.commit_segments(segments)
        self._write_meta(last or after, folder)
        return sum(segment.doc_count_all() for segment in segments)

    def _merge_all(self, ix: index.Index) -> None:
        """Merge a fresh build of MERGE_AT segments or more into one segment.

        Each segment has a term table of its own, so a word shared by 40 segments
        (an email domain, a city, a price) is written 40 times, at about 100 bytes
        an entry: merged, a 100,000-row bench build shrank from 218 to 117 MB. The merge
        reads every segment once more, a term at a time (`BulkWriter.merge_all`:
        about half as many documents per CPU-second for the whole build);
        a build of a few segments is left as it is (a little duplication, no
        second pass)."""
        with ix.reader() as reader:
            if len(list(reader.leaf_readers())) < MERGE_AT:
                return
        self._writer(ix).merge_all()

    def _chunks(self, size: int, after: int) -> Iterator[list[dict[str, Any]]]:
        last = after
        while rows := self.store.log.logs_after(last, size):
            yield rows
            last = int(rows[-1]["log_id"])

    def _writer(self, ix: index.Index) -> Any:
        try:
            # Separate files per segment, not whoosh's compound file: opening a file
            # inside a compound file copies it into memory, on every search.
            return BulkWriter(
                ix, merge_below=WORKER_ROWS, timeout=30.0, codec=LeanCodec(), limitmb=POOL_MB, compound=False
            )
        except LockError as exc:
            raise AeError(f"search index {self.path} is locked by another process; try again") from exc

    def _add_rows(
        self, ix: index.Index, after: int, progress: Progress | None, folder: Path | None = None
    ) -> tuple[int, int]:
        """Add every log row past `after`, committing every COMMIT_EVERY rows and
        recording each commit in the meta file; return (added, last log_id)."""
        count, last = 0, after
        while True:
            writer = self._writer(ix)
            added = 0
            try:
                if folder is None and count == 0:
                    # Rows past `after` may be in the index if a crash hit between commit and meta.
                    writer.delete_by_query(query.NumericRange("log_id", after + 1, None))
                while added < COMMIT_EVERY and (rows := self.store.log.logs_after(last, BATCH)):
                    for row in rows:
                        writer.add_terms(**log_document(row))
                    added += len(rows)
                    last = int(rows[-1]["log_id"])
                    if progress:
                        progress(len(rows))
            except BaseException:
                writer.cancel()
                raise
            # Merging segments while building rewrites postings already written: leave it
            # to the small commits of later catch-ups, whose merge policy joins small segments.
            catching_up = folder is None and added < COMMIT_EVERY
            writer.commit(mergetype=merge_small_segments if catching_up else NO_MERGE)
            count += added
            self._write_meta(last, folder)
            if added < COMMIT_EVERY:
                return count, last

    def catch_up(self, progress: Progress | None = None) -> int:
        """Index rows logged since the last catch-up; return how many."""
        ix = self._open()
        meta = self._read_meta() or {"last_log_id": 0}
        if self.store.log.max_log_id() <= meta["last_log_id"]:
            return 0
        try:
            # A long backlog (a busy hour without a follower) is indexed in worker processes.
            workers = worker_count()
            if workers > 1 and self.store.log.count_logs_after(meta["last_log_id"]) >= 2 * WORKER_ROWS:
                count = self._add_in_workers(ix, meta["last_log_id"], workers, progress)
            else:
                count, _ = self._add_rows(ix, meta["last_log_id"], progress)
        except OSError as exc:
            raise self._cannot_write(exc) from exc
        return count

    def _cannot_write(self, exc: OSError) -> AeError:
        return AeError(
            f"cannot write the search index {self.path}: {exc.strerror or exc}",
            hint="free some disk space, then run `ae index rebuild`",
        )

    def indexed_up_to(self) -> int:
        meta = self._read_meta()
        return meta["last_log_id"] if meta else 0

    def behind(self) -> int:
        return self.store.log.count_logs_after(self.indexed_up_to())

    def status(self) -> dict[str, Any]:
        """How far the index is behind the log, without changing anything."""
        meta = self._read_meta()
        documents = None
        if meta is not None:
            try:
                documents = index.open_dir(str(self.path)).doc_count()
            except DAMAGE:
                meta = None  # unreadable: the next search rebuilds it
        return {
            "index_path": str(self.path),
            "exists": meta is not None,
            "indexed_up_to": meta["last_log_id"] if meta else 0,
            "log_at": self.store.log.max_log_id(),
            "behind": self.behind(),
            "documents": documents,
        }

    def remove(self, log_ids: list[int]) -> int:
        """Delete these log ids from the index, if it exists; return how many were there."""
        if not log_ids or self._read_meta() is None:
            return 0  # no index yet: it will be built from what the log still holds
        writer = self._writer(self._open())
        removed = 0
        for log_id in log_ids:
            removed += writer.delete_by_term("log_id", log_id)
        writer.commit(mergetype=merge_small_segments)
        make_private(self.path)
        return removed

    # -- searching -------------------------------------------------------

    def _matching(self, text: str) -> tuple[list[int], list[str]]:
        """Every matching log id, newest first, and the words to centre excerpts on."""
        ix = self._open()
        q, wanted = parse_for_index(text, parser_schema())
        log_ids: list[int] = []
        with ix.searcher() as searcher:
            # Without scoring or whoosh's sorting collector: the matching documents
            # of each segment (see `matching`), mapped to log ids through the column.
            for sub, _ in searcher.leaf_searchers():
                if not sub.reader().doc_count_all():
                    continue  # an empty index has no log_id column at all
                log_id = log_id_column(sub.reader())
                log_ids.extend(map(log_id, SegmentMatcher(sub).docs(q)))
        log_ids.sort(reverse=True)
        return log_ids, wanted

    def matching_log_ids(self, text: str) -> list[int]:
        """Every log id matching the query (no limit), newest first."""
        self.catch_up()
        return self._matching(text)[0]

    def search(self, text: str, limit: int = 100, offset: int = 0) -> Hits:
        self.catch_up()
        try:
            log_ids, wanted = self._matching(text)
        except DAMAGE as exc:
            # Damage that only shows when reading postings: rebuild once, then search again.
            self.close()
            self._rebuild_because(f"damaged ({type(exc).__name__}: {exc})")
            log_ids, wanted = self._matching(text)
        return Hits(len(log_ids), page_rows(self.store, log_ids[offset : offset + limit], wanted), "index")

    def close(self) -> None:
        if self._ix is not None:
            self._ix.close()
            self._ix = None
