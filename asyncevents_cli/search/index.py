"""The whoosh index of the delivery log, kept beside the store, and searching it.

The index lives in `<database>.index/` and follows `delivery_log` by `log_id`:
it is never written on the delivery path. A search first catches up (every row
past the last indexed log_id, in one commit), or `ae index follow` keeps it
current in the background. A missing, unreadable or outdated index is rebuilt
from the log, never fatal.

Schema (one document per delivery attempt), lean on purpose: whoosh's cost is
per field, per term and per posting, so payload paths share fields (see
`analysis` for the terms):
- `log_id` int (a sortable column: results come newest first), `uuid` and
  `event_name` (one lowercased token each), `success` boolean, `created`
  datetime (UTC);
- `data`: every word of the logged body, with positions, for bare terms;
- `paths`: `<path><mark><word>` for every word, with positions;
- `prefixes`: the first characters of identifiers, so `CK*` is one term;
- `numbers`: `<path>=` + whoosh's sortable numeric terms, for ranges;
- `data.*` is declared so the query parser knows payload field names; no
  document ever holds one.

`.ae-index.json` records the schema version and the last indexed log_id; it
is written after each commit, and rows past it are deleted before they are
added again, so a crash between the two cannot duplicate documents.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from whoosh import analysis as whoosh_analysis
from whoosh import fields, formats, index, query
from whoosh.codec.whoosh3 import W3Codec
from whoosh.index import LockError
from whoosh.system import emptybytes
from whoosh.writing import NO_MERGE

from ..errors import AeError, InputError
from ..store import Store
from .analysis import WORD_RE, BodyTerms, body_terms, plain_text_terms
from .matching import SegmentMatcher, log_id_column
from .parallel import WORKER_ROWS, build_segments, worker_count
from .query import parse_for_index
from .results import Hits, page_rows
from .segment import BulkWriter, merge_small_segments, numeric_terms

SCHEMA_VERSION = 3
META_FILE = ".ae-index.json"
BATCH = 2000  # rows read from the store at a time
# Rows per commit: a segment's postings stay in memory until it is written, about
# 11 MB per 1,000 rows of bench_search's orders, so this keeps a build under 200 MB.
COMMIT_EVERY = 5_000
POOL_MB = 256  # whoosh spills postings to temporary files past this estimate; COMMIT_EVERY stays below it
Progress = Callable[[int], None]  # called with how many rows were just indexed


def query_analyzer() -> whoosh_analysis.Analyzer:
    """How the query parser splits a value: the words of `analysis.words`."""
    return whoosh_analysis.RegexTokenizer(WORD_RE.pattern) | whoosh_analysis.LowercaseFilter()


class TermsField(fields.FieldType):
    """A field whose document value is already terms: {term: [positions]} or a set of terms.

    Skipping whoosh's analyzer pipeline at index time is part of the speed:
    `analysis` builds the terms once for all four fields, and `segment.BulkWriter`
    takes them as they are (`index()` serves whoosh's own writer, which tests
    compare it with)."""

    prebuilt_terms = True

    def __init__(self, positions: bool) -> None:
        # Not scorable: search never scores (results come newest first), so no
        # field keeps per-document lengths.
        super().__init__(formats.Positions() if positions else formats.Existence(), query_analyzer(), scorable=False)

    def index(self, value: Any, **kwargs: Any) -> Iterator[tuple[bytes, int, float, bytes]]:
        if isinstance(value, dict):
            encode = self.format.encode
            for term, positions in value.items():
                yield term.encode("utf-8"), len(positions), float(len(positions)), encode(positions)
        else:
            for term in value:
                yield (term if isinstance(term, bytes) else term.encode("utf-8")), 1, 1.0, emptybytes

    def to_bytes(self, value: Any) -> bytes:
        return value if isinstance(value, bytes) else str(value).encode("utf-8")


class CreatedField(fields.DATETIME):
    """DATETIME that also reads ISO forms people type (2026-01-31T10:00:00Z, 2026-01-31 10:00),
    with 4 numeric terms per value instead of 8."""

    def __init__(self) -> None:
        super().__init__()
        self.shift_step = 16

    def _parse_datestring(self, qstring: str) -> Any:
        import re

        return super()._parse_datestring(re.sub(r"[TtZz:]", "", qstring))


class LeanCodec(W3Codec):
    """whoosh's codec without per-posting length statistics (they serve scoring,
    which search never does: results are ordered by log_id) and without
    compressing posting blocks (more time than the disk it saves). (Keeping rare
    terms' postings inline, `inlinelimit`, would save more, but whoosh-reloaded
    2.7.5 fails on it: `W3TermInfo` has no `set_inline`.)"""

    length_stats = False

    def __init__(self) -> None:
        super().__init__(compression=0)


# The numeric encoding of payload numbers: whoosh's, 4 tiers of 16 bits.
NUMBER_CODEC = fields.NUMERIC(float, 64, shift_step=16)


def number_terms(terms: BodyTerms) -> set[bytes]:
    out: set[bytes] = set()
    for path, number in terms.numbers:
        prefix = (path + "=").encode()
        for term in numeric_terms(NUMBER_CODEC, number):
            out.add(prefix + term)
    return out


def build_schema() -> fields.Schema:
    keyword = whoosh_analysis.IDTokenizer() | whoosh_analysis.LowercaseFilter()
    schema = fields.Schema(
        log_id=fields.NUMERIC(int, 64, sortable=True, shift_step=16),
        uuid=fields.ID(analyzer=keyword),
        event_name=fields.ID(analyzer=keyword),
        success=fields.BOOLEAN(),
        created=CreatedField(),
        data=TermsField(positions=True),
        paths=TermsField(positions=True),
        prefixes=TermsField(positions=False),
        numbers=TermsField(positions=False),
    )
    schema.add("data.*", fields.TEXT(analyzer=query_analyzer()), glob=True)  # for the parser only
    return schema


@functools.lru_cache(maxsize=1)
def parser_schema() -> fields.Schema:
    """The schema queries are parsed with: the index's, built once per process
    (reading it from the index would read the table of contents again)."""
    return build_schema()


def log_document(row: dict[str, Any]) -> dict[str, Any]:
    """The index document of one delivery_log row."""
    serialized = row["serialized_data"] or ""
    try:
        terms = body_terms(json.loads(serialized))
    except ValueError:
        terms = plain_text_terms(serialized)  # not JSON: still searchable as words
    doc: dict[str, Any] = {
        "log_id": int(row["log_id"]),
        "uuid": row["uuid"] or "",
        "event_name": row["event_name"] or "",
        "success": bool(row["success"]),
        "created": datetime.fromisoformat(row["created"][:26]),  # "2026-01-31 10:00:00.123456"
    }
    if terms.data:
        doc["data"] = terms.data
    if terms.paths:
        doc["paths"] = terms.paths
    if terms.prefixes:
        doc["prefixes"] = terms.prefixes
    if terms.numbers:
        doc["numbers"] = number_terms(terms)
    return doc


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
            meta.get("log_generation") != self.store.log_generation()
            or meta["last_log_id"] > self.store.log_id_high_water()
        ):
            return None
        return meta

    def _write_meta(self, last_log_id: int, folder: Path | None = None) -> None:
        target = (folder or self.path) / META_FILE
        temporary = target.with_suffix(".tmp")
        temporary.write_text(
            json.dumps(
                {"schema": SCHEMA_VERSION, "last_log_id": last_log_id, "log_generation": self.store.log_generation()}
            )
        )
        os.replace(temporary, target)

    # -- opening, building -----------------------------------------------

    def _open(self) -> index.Index:
        """The index, rebuilt when missing, unreadable or of another schema version."""
        if self._ix is None:
            try:
                if self._read_meta() is None:
                    raise ValueError("no or outdated meta file")
                ix = index.open_dir(str(self.path))
                ix._read_toc()  # reads the segment list: garbage fails here (damaged segments fail in search)
                self._ix = ix
            except LockError:
                raise
            except Exception:  # whoosh raises many kinds on a damaged folder
                self.rebuild()
        assert self._ix is not None
        return self._ix

    def rebuild(self, progress: Progress | None = None) -> int:
        """Index the whole log into a fresh folder, then swap it in; return the document count."""
        self.close()
        fresh = self.path.with_name(f"{self.path.name}.new-{os.getpid()}")
        shutil.rmtree(fresh, ignore_errors=True)
        try:
            fresh.mkdir(parents=True)
            ix = index.create_in(str(fresh), build_schema())
            workers = worker_count()
            if workers > 1 and self.store.count_logs_after(0) >= 2 * WORKER_ROWS:
                count = self._add_in_workers(ix, 0, workers, progress, folder=fresh)
            else:
                count, _ = self._add_rows(ix, 0, progress, folder=fresh)
            ix.close()
        except OSError as exc:  # a full disk: leave no half-built folder to fill it further
            shutil.rmtree(fresh, ignore_errors=True)
            raise self._cannot_write(exc) from None
        old = self.path.with_name(f"{self.path.name}.old-{os.getpid()}")
        if self.path.exists() or self.path.is_symlink():
            os.replace(self.path, old) if self.path.is_dir() else self.path.unlink()
        os.replace(fresh, self.path)
        shutil.rmtree(old, ignore_errors=True)
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

    def _chunks(self, size: int, after: int) -> Iterator[list[dict[str, Any]]]:
        last = after
        while rows := self.store.logs_after(last, size):
            yield rows
            last = int(rows[-1]["log_id"])

    def _writer(self, ix: index.Index) -> Any:
        try:
            # Separate files per segment, not whoosh's compound file: opening a file
            # inside a compound file copies it into memory, on every search.
            return BulkWriter(
                ix, merge_below=WORKER_ROWS, timeout=30.0, codec=LeanCodec(), limitmb=POOL_MB, compound=False
            )
        except LockError:
            raise AeError(f"search index {self.path} is locked by another process; try again") from None

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
                while added < COMMIT_EVERY and (rows := self.store.logs_after(last, BATCH)):
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
        if self.store.max_log_id() <= meta["last_log_id"]:
            return 0
        try:
            # A long backlog (a busy hour without a follower) is indexed in worker processes.
            workers = worker_count()
            if workers > 1 and self.store.count_logs_after(meta["last_log_id"]) >= 2 * WORKER_ROWS:
                count = self._add_in_workers(ix, meta["last_log_id"], workers, progress)
            else:
                count, _ = self._add_rows(ix, meta["last_log_id"], progress)
        except OSError as exc:
            raise self._cannot_write(exc) from None
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
        return self.store.count_logs_after(self.indexed_up_to())

    def status(self) -> dict[str, Any]:
        """How far the index is behind the log, without changing anything."""
        meta = self._read_meta()
        documents = None
        if meta is not None:
            try:
                documents = index.open_dir(str(self.path)).doc_count()
            except Exception:
                meta = None  # unreadable: the next search rebuilds it
        return {
            "index_path": str(self.path),
            "exists": meta is not None,
            "indexed_up_to": meta["last_log_id"] if meta else 0,
            "log_at": self.store.max_log_id(),
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
        except (InputError, AeError):
            raise
        except Exception:
            # Damage that only shows when reading postings: rebuild once, then search again.
            self.rebuild()
            log_ids, wanted = self._matching(text)
        return Hits(len(log_ids), page_rows(self.store, log_ids[offset : offset + limit], wanted), "index")

    def close(self) -> None:
        if self._ix is not None:
            self._ix.close()
            self._ix = None
