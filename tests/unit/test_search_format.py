"""Format compatibility: what `search.segment` writes, whoosh's own public searcher reads.

`segment` is the one module of `ae` that uses whoosh's private names (see its
`PRIVATE_NAMES`); it writes whoosh 3 segments itself (compressed posting
blocks, rare terms inline). Here one index is written by whoosh's own
`SegmentWriter.add_document` and one by `BulkWriter.add_terms` from the same
documents, and whoosh's public `Searcher` runs the same queries on both, with
no code of ours on the reading side. Each private name gets a test of its own,
so a whoosh release that moves one fails naming it.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from whoosh import index, query
from whoosh.writing import SegmentWriter

from asyncevents_cli.search.documents import LeanCodec, build_schema, log_document
from asyncevents_cli.search.segment import PRIVATE_NAMES, BulkWriter


def rows(count: int) -> list[dict[str, Any]]:
    """Log rows with shared and unique words, lists, numbers and phrases."""
    rng = random.Random(5)
    out = []
    for n in range(1, count + 1):
        items = [
            {"sku": rng.choice(["WS12-M-Orange", "24-MB01"]), "name": rng.choice(["Electra Bra Top", "Kit"])}
            for _ in range(rng.randint(1, 3))
        ]
        body = {
            "increment_id": f"{rng.choice(['CK', 'SO'])}{n:08d}",
            "grand_total": round(rng.uniform(1, 300), 2),
            "items": items,
            "note": rng.choice(["leave at the back door", "door back", "ring"]),
        }
        created = datetime(2026, 3, 1) + timedelta(seconds=n * 7)
        out.append(
            {
                "log_id": n,
                "uuid": f"{rng.getrandbits(64):016x}",
                "event_name": "sales.order.created",
                "success": n % 9 != 0,
                "created": created.strftime("%Y-%m-%d %H:%M:%S.%f"),
                "serialized_data": json.dumps({"data": body}),
            }
        )
    return out


def build(folder: Path, writer_class: type, add: str, docs: list[dict[str, Any]]) -> Any:
    folder.mkdir()
    ix = index.create_in(str(folder), build_schema())
    writer = writer_class(ix, codec=LeanCodec(), compound=False)
    for doc in docs:
        getattr(writer, add)(**doc)
    writer.commit(merge=False)
    return ix


def log_ids(ix: Any, q: query.Query) -> list[int]:
    """The log ids whoosh's own searcher finds, through public names only."""
    with ix.searcher() as searcher:
        column = searcher.reader().column_reader("log_id")
        return sorted(column[docnum] for docnum in searcher.docs_for_query(q))


QUERIES = [
    query.Term("paths", "#ws12-m-orange data.data.items.sku"),
    query.Prefix("paths", ":kit "),  # a bare word: at any path
    query.Prefix("paths", "#ck0000001"),
    query.Phrase("paths", [":back data.data.note", ":door data.data.note"]),
    query.Phrase("paths", [":electra data.data.items.name", ":bra data.data.items.name", ":top data.data.items.name"]),
    query.Term("prefixes", "data.data.increment_id:so"),
    query.NumericRange("log_id", 100, 420),
    query.And([query.Term("success", True), query.Term("event_name", "sales.order.created")]),
    query.TermRange("numbers", "data.data.grand_total=", "data.data.grand_total>"),
]


def test_whoosh_s_own_searcher_reads_the_bulk_writer_s_segments(tmp_path: Path) -> None:
    docs = [log_document(row) for row in rows(700)]  # 700 > 128 postings: several compressed blocks
    ours = build(tmp_path / "bulk", BulkWriter, "add_terms", docs)
    theirs = build(tmp_path / "whoosh", SegmentWriter, "add_document", docs)
    assert ours.doc_count() == theirs.doc_count() == 700
    for q in QUERIES:
        found = log_ids(ours, q)
        assert found == log_ids(theirs, q), q
        assert found, f"{q} must match something to prove anything"


@pytest.mark.parametrize("owner,name", PRIVATE_NAMES, ids=[f"{o.__qualname__}.{n}" for o, n in PRIVATE_NAMES])
def test_each_private_whoosh_name_is_still_there(owner: Any, name: str) -> None:
    assert hasattr(owner, name), (
        f"whoosh no longer has {owner.__module__}.{owner.__qualname__}.{name}: search/segment.py must follow it"
    )


def segments_of(ix: Any) -> int:
    with ix.reader() as reader:
        return len(list(reader.leaf_readers()))


def test_merge_all_streams_every_segment_into_one(tmp_path: Path) -> None:
    """`BulkWriter.merge_all` (what a large build ends with) keeps every live posting and
    drops deleted documents: whoosh's searcher finds the same before and after."""
    docs = [log_document(row) for row in rows(600)]
    built = []
    for name in ("segments", "merged"):
        (tmp_path / name).mkdir()
        ix = index.create_in(str(tmp_path / name), build_schema())
        for first in range(0, len(docs), 50):
            writer = BulkWriter(ix, codec=LeanCodec(), compound=False)
            for doc in docs[first : first + 50]:
                writer.add_terms(**doc)
            writer.commit(merge=False)
        deleting = ix.writer()
        for log_id in (1, 7, 51, 299, 300, 600):
            deleting.delete_by_term("log_id", log_id)
        deleting.commit(merge=False)
        built.append(ix)
    segments, merged = built
    BulkWriter(merged, codec=LeanCodec(), compound=False).merge_all()
    assert segments_of(segments) == 12 and segments_of(merged) == 1
    assert merged.doc_count() == merged.doc_count_all() == segments.doc_count() == 594
    for q in [*QUERIES, query.Every()]:
        assert log_ids(merged, q) == log_ids(segments, q), q


def test_a_large_build_ends_as_one_segment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from asyncevents_cli.search import index as search_index
    from asyncevents_cli.search.index import SearchIndex
    from asyncevents_cli.store import open_store

    store = open_store(tmp_path / "ae.db")
    logged = rows(700)
    with store.transaction():
        store.backend.conn.executemany(
            "INSERT INTO delivery_log (log_id, uuid, subscription_id, event_name, success, status_code,"
            " response_data, created, serialized_data, death_count, duration, message_id)"
            " VALUES (?,?,1,?,?,200,'',?,?,0,0.01,'m')",
            [
                (r["log_id"], r["uuid"], r["event_name"], int(r["success"]), r["created"], r["serialized_data"])
                for r in logged
            ],
        )
    monkeypatch.setattr(search_index, "WORKER_ROWS", 50)  # 14 segments from the workers
    monkeypatch.setattr(search_index, "worker_count", lambda: 2)
    ix = SearchIndex(tmp_path / "ae.db.index", store)
    assert ix.rebuild() == 700
    assert segments_of(ix._open()) == 1
    bodies = {r["log_id"]: json.loads(r["serialized_data"])["data"] for r in logged}
    assert ix.matching_log_ids('data.data.note:"back door"') == sorted(
        (i for i, body in bodies.items() if "back door" in body["note"]), reverse=True
    )
    assert ix.matching_log_ids("data.data.grand_total:[10 TO 50]") == sorted(
        (i for i, body in bodies.items() if 10 <= body["grand_total"] <= 50), reverse=True
    )
    ix.close()
    store.close()
