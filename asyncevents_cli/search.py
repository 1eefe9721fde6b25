"""A whoosh index of the delivery log, kept beside the SQLite store, and searching it.

The index lives in `<database>.index/` and follows `delivery_log` by `log_id`:
it is never written on the delivery path. Before each search it catches up
(every row past the last indexed log_id, in one commit: batching is what makes
it affordable, ~600 documents/s with this schema per bench/bench_search.py,
against ~170 single-document commits/s). A
missing, unreadable or outdated index is rebuilt from the log, never fatal.

Schema (one document per delivery attempt):
- `log_id` int (stored, sortable: results come newest first), `uuid` and
  `event_name` (one lowercased token each, so `sales.*` and ids match whatever
  the case), `success` boolean, `created` datetime (UTC);
- `data`: every value of the logged JSON body, for bare terms;
- `data.<path>`: one field per JSON path of the body (`data.data.customer_email`;
  values inside lists share their list's path, `data.data.items.sku`); text is
  lowercased, and compound words (emails, SKUs) are kept whole and split too;
- `num.data.<path>`: the numbers of that path (JSON numbers and numeric
  strings), so ranges and equality compare numbers (see `search_query`).

`.ae-index.json` records the schema version and the last indexed log_id; it
is written after each commit, and rows past it are deleted before they are
added again, so a crash between the two cannot duplicate documents.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from whoosh import analysis, fields, index, query
from whoosh.index import LockError
from whoosh.util.times import adatetime

from .config import Config
from .errors import AeError, InputError
from .search_query import NUMBER_RE, NUMERIC_PREFIX, excerpt, fallback_where, needles, parse
from .store import Store

SCHEMA_VERSION = 1
META_FILE = ".ae-index.json"
BATCH = 1000
Progress = Callable[[int], None]  # called with how many rows were just indexed


class SubwordFilter(analysis.Filter):
    """At index time, also emit the parts of compound words at the same position:
    `WS12-M-Orange` is found by itself and by `orange`, `roni_cost@example.com` by `example.com`."""

    def __call__(self, tokens: Iterator[Any]) -> Iterator[Any]:
        for token in tokens:
            text = token.text
            yield token
            if token.mode == "index" and re.search(r"[a-z]", text) and re.search(r"[.@'+:/-]", text):
                for part in _subwords(text):
                    token.text = part
                    yield token
                # whoosh reuses one token object: leave it as the tokenizer made it
                token.text = text


def _subwords(text: str) -> set[str]:
    """The parts of a compound word, and its prefixes and suffixes at each separator."""
    cuts = [m.span() for m in re.finditer(r"[.@'+:/-]+", text)]
    found = {p for p in re.split(r"[.@'+:/-]+", text)}
    for start, end in cuts:
        found.add(text[:start])
        found.add(text[end:])
    return {p for p in found if p and p != text}


class CreatedField(fields.DATETIME):
    """DATETIME that also reads ISO forms people type: 2026-01-31T10:00:00Z, 2026-01-31 10:00."""

    def _parse_datestring(self, qstring: str) -> adatetime:
        return super()._parse_datestring(re.sub(r"[TtZz:]", "", qstring))


def _text_analyzer() -> analysis.Analyzer:
    # Words may join with . @ ' + : / - so emails, SKUs, decimals and dates stay one token.
    return analysis.RegexTokenizer(r"\w+(?:[.@'+:/-]\w+)*") | analysis.LowercaseFilter() | SubwordFilter()


def build_schema() -> fields.Schema:
    keyword = analysis.IDTokenizer() | analysis.LowercaseFilter()
    schema = fields.Schema(
        log_id=fields.NUMERIC(int, 64, stored=True, sortable=True, shift_step=8),
        uuid=fields.ID(analyzer=keyword),
        event_name=fields.ID(analyzer=keyword),
        success=fields.BOOLEAN(),
        created=CreatedField(),
        data=fields.TEXT(analyzer=_text_analyzer()),
    )
    schema.add("data.*", fields.TEXT(analyzer=_text_analyzer()), glob=True)
    schema.add(NUMERIC_PREFIX + "*", fields.NUMERIC(float, 64, shift_step=8), glob=True)
    # whoosh looks up a length column for every posting it writes, and for a field
    # without one (not scorable) that is a filesystem stat each time, uncached:
    # recording lengths for every field took 20,000 synthetic rows from 419 to 614 docs/s.
    for field in [*schema._fields.values(), *(f for _, f in schema._dyn_fields.values())]:
        field.scorable = True
    return schema


def _flatten(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(dotted path, scalar) for every scalar; list items share the list's path."""
    if isinstance(value, dict):
        for key, item in value.items():
            # Field names are letters, digits and `_`: anything else in a key becomes `_`.
            yield from _flatten(item, f"{path}.{re.sub(r'[^0-9A-Za-z_]', '_', str(key)) or '_'}")
    elif isinstance(value, list):
        for item in value:
            yield from _flatten(item, path)
    else:
        yield path, value


def log_document(row: dict[str, Any]) -> dict[str, Any]:
    """The index document of one delivery_log row."""
    doc: dict[str, Any] = {
        "log_id": int(row["log_id"]),
        "uuid": row["uuid"] or "",
        "event_name": row["event_name"] or "",
        "success": bool(row["success"]),
        "created": datetime.strptime(row["created"][:26], "%Y-%m-%d %H:%M:%S.%f"),
    }
    serialized = row["serialized_data"] or ""
    try:
        body = json.loads(serialized)
    except ValueError:
        doc["data"] = serialized  # not JSON: still searchable as words
        return doc
    texts: dict[str, list[str]] = {}
    numbers: dict[str, list[float]] = {}
    for path, value in _flatten(body, "data"):
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif value is None:
            text = "null"
        else:
            text = str(value)
            if isinstance(value, (int, float)) or NUMBER_RE.match(text.strip()):
                try:
                    numbers.setdefault(path, []).append(float(text))
                except (ValueError, OverflowError):
                    pass
        texts.setdefault(path, []).append(text)
    for path, values in texts.items():
        doc[path] = "\n".join(values)
    for path, nums in numbers.items():
        doc[NUMERIC_PREFIX + path] = nums
    doc["data"] = "\n".join(v for values in texts.values() for v in values)
    return doc


def index_path(config: Config) -> Path:
    db = config.database_path
    return db.with_name(db.name + ".index")


@dataclass
class Hits:
    total: int
    rows: list[dict[str, Any]]
    mode: str  # "index" or "substring"


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
        if meta.get("log_generation") != self.store.log_generation() or \
                meta["last_log_id"] > self.store.log_id_high_water():
            return None
        return meta

    def _write_meta(self, last_log_id: int, folder: Path | None = None) -> None:
        target = (folder or self.path) / META_FILE
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps({"schema": SCHEMA_VERSION, "last_log_id": last_log_id,
                                         "log_generation": self.store.log_generation()}))
        os.replace(temporary, target)

    # -- opening, building -----------------------------------------------

    def _open(self) -> index.Index:
        """The index, rebuilt when missing, unreadable or of another schema version."""
        if self._ix is None:
            try:
                if self._read_meta() is None:
                    raise ValueError("no or outdated meta file")
                ix = index.open_dir(str(self.path))
                ix.doc_count()  # reads the segment list: garbage fails here
                self._ix = ix
            except LockError:
                raise
            except Exception:  # whoosh raises many kinds on a damaged folder
                self.rebuild()
        assert self._ix is not None
        return self._ix

    def rebuild(self, progress: Progress | None = None) -> int:
        """Index the whole log into a fresh folder, then swap it in; return the document count."""
        self._ix = None
        fresh = self.path.with_name(f"{self.path.name}.new-{os.getpid()}")
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir(parents=True)
        ix = index.create_in(str(fresh), build_schema())
        count, last = self._add_rows(ix, 0, progress)
        self._write_meta(last, fresh)
        ix.close()
        old = self.path.with_name(f"{self.path.name}.old-{os.getpid()}")
        if self.path.exists() or self.path.is_symlink():
            os.replace(self.path, old) if self.path.is_dir() else self.path.unlink()
        os.replace(fresh, self.path)
        shutil.rmtree(old, ignore_errors=True)
        self._ix = index.open_dir(str(self.path))
        return count

    def _add_rows(self, ix: index.Index, after: int, progress: Progress | None) -> tuple[int, int]:
        """Add every log row past `after` in one commit; return (added, last log_id)."""
        try:
            writer = ix.writer(timeout=30.0)
        except LockError:
            raise AeError(f"search index {self.path} is locked by another process; try again") from None
        count, last = 0, after
        try:
            # Rows past `after` may be in the index if a crash hit between commit and meta.
            writer.delete_by_query(query.NumericRange("log_id", after + 1, None))
            while rows := self.store.logs_after(last, BATCH):
                for row in rows:
                    writer.add_document(**log_document(row))
                count += len(rows)
                last = int(rows[-1]["log_id"])
                if progress:
                    progress(len(rows))
        except BaseException:
            writer.cancel()
            raise
        writer.commit()
        return count, last

    def catch_up(self, progress: Progress | None = None) -> int:
        """Index rows logged since the last catch-up; return how many."""
        ix = self._open()
        meta = self._read_meta() or {"last_log_id": 0}
        if self.store.max_log_id() <= meta["last_log_id"]:
            return 0
        count, last = self._add_rows(ix, meta["last_log_id"], progress)
        self._write_meta(last)
        return count

    def behind(self) -> int:
        meta = self._read_meta()
        after = meta["last_log_id"] if meta else 0
        row = self.store.conn.execute("SELECT COUNT(*) FROM delivery_log WHERE log_id > ?", (after,)).fetchone()
        return int(row[0])

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
        try:
            writer = self._open().writer(timeout=30.0)
        except LockError:
            raise AeError(f"search index {self.path} is locked by another process; try again") from None
        removed = 0
        for log_id in log_ids:
            removed += writer.delete_by_term("log_id", log_id)
        writer.commit()
        return removed

    # -- searching -------------------------------------------------------

    def _matching(self, text: str, limit: int | None, offset: int = 0) -> tuple[int, list[int], list[str]]:
        ix = self._open()
        q = parse(text, ix.schema)
        with ix.searcher() as searcher:
            results = searcher.search(q, limit=None if limit is None else offset + limit,
                                      sortedby="log_id", reverse=True)
            ids = [hit["log_id"] for hit in results[offset:]]
            return len(results), ids, needles(q)

    def matching_log_ids(self, text: str) -> list[int]:
        """Every log id matching the query (no limit), newest first."""
        self.catch_up()
        return self._matching(text, None)[1]

    def search(self, text: str, limit: int = 100, offset: int = 0) -> Hits:
        self.catch_up()
        try:
            total, ids, wanted = self._matching(text, limit, offset)
        except (InputError, AeError):
            raise
        except Exception:
            # Damage that only shows when reading postings: rebuild once, then search again.
            self.rebuild()
            total, ids, wanted = self._matching(text, limit, offset)
        return Hits(total, _rows(self.store, ids, wanted), "index")

    def close(self) -> None:
        if self._ix is not None:
            self._ix.close()
            self._ix = None


def _rows(store: Store, log_ids: list[int], wanted: list[str]) -> list[dict[str, Any]]:
    """The log rows of these ids in the given order, each with a payload excerpt."""
    by_id: dict[int, dict[str, Any]] = {}
    for start in range(0, len(log_ids), 500):
        chunk = log_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in store.db.query(f"SELECT * FROM delivery_log WHERE log_id IN ({marks})", chunk):
            by_id[row["log_id"]] = row
    return [_result(by_id[i], wanted) for i in log_ids if i in by_id]


def _result(row: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
    return {
        "log_id": row["log_id"],
        "uuid": row["uuid"],
        "event_name": row["event_name"],
        "subscription_id": row["subscription_id"],
        "success": bool(row["success"]),
        "status_code": row["status_code"],
        "created": row["created"],
        "excerpt": excerpt(row["serialized_data"] or "", wanted),
    }


def substring_search(store: Store, text: str, limit: int | None = 100, offset: int = 0) -> Hits:
    """Search without an index: see `search_query.fallback_where` for what it accepts."""
    where, params, wanted = fallback_where(text)
    total = store.conn.execute(f"SELECT COUNT(*) FROM delivery_log WHERE {where}", params).fetchone()[0]
    page = "" if limit is None else f" LIMIT {int(limit)} OFFSET {int(offset)}"
    rows = store.db.query(f"SELECT * FROM delivery_log WHERE {where} ORDER BY log_id DESC{page}", params)
    return Hits(int(total), [_result(r, wanted) for r in rows], "substring")


def open_index(config: Config, store: Store) -> SearchIndex | None:
    """The store's index, or None when settings.indexing is false."""
    return SearchIndex(index_path(config), store) if config.settings["indexing"] else None


def search_logs(config: Config, store: Store, text: str, limit: int = 100, offset: int = 0) -> Hits:
    """Search the delivery log: through the index, or by substring when indexing is off."""
    if limit < 1 or offset < 0:
        raise InputError("--limit must be 1 or more and --offset 0 or more")
    ix = open_index(config, store)
    if ix is None:
        return substring_search(store, text, limit, offset)
    try:
        return ix.search(text, limit, offset)
    finally:
        ix.close()


def matching_log_ids(config: Config, store: Store, text: str) -> list[int]:
    """Every log id the query matches, newest first, whichever way search runs."""
    ix = open_index(config, store)
    if ix is None:
        return [r["log_id"] for r in substring_search(store, text, None).rows]
    try:
        return ix.matching_log_ids(text)
    finally:
        ix.close()


def remove_pruned(config: Config, store: Store, log_ids: list[int]) -> int:
    """Called by `ae logs prune`: drop pruned attempts from the index too."""
    ix = open_index(config, store)
    if ix is None:
        return 0
    try:
        return ix.remove(log_ids)
    finally:
        ix.close()
