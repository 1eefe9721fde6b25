"""`search.segment.BulkWriter` writes segments whoosh reads as its own writer's.

The bulk writer takes ready-made terms and writes postings and the term table
itself, in whoosh's format; whoosh's readers then read them. These tests build
one index with whoosh's `SegmentWriter.add_document` and one with
`BulkWriter.add_terms` from the same documents and compare the files term by
term and posting by posting as whoosh reads them back; and check that an index built
in several commits (whose merges go through whoosh's own pool) and in parallel
worker processes finds exactly what a scan of the payloads finds.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from whoosh import index
from whoosh.writing import SegmentWriter

from asyncevents_cli.search import index as search_index
from asyncevents_cli.search.documents import LeanCodec, build_schema, log_document
from asyncevents_cli.search.index import SearchIndex
from asyncevents_cli.search.pathqueries import AnyPathPhrase
from asyncevents_cli.search.segment import BulkWriter
from asyncevents_cli.store import Store, open_store


def rows(count: int, seed: int = 3) -> list[dict[str, Any]]:
    """Log rows with repeated and unique words, lists, numbers and dates; some long
    enough that a term's postings take several blocks."""
    rng = random.Random(seed)
    out = []
    for n in range(1, count + 1):
        body = {
            "data": {
                "increment_id": f"{rng.choice(['CK', 'SO'])}{n:08d}",
                "customer_email": f"user{rng.randrange(40)}@example.com",
                "grand_total": round(rng.uniform(1, 300), 2),
                "items": [
                    {
                        "sku": rng.choice(["WS12-M-Orange", "24-MB01", "MJ01-L-Red"]),
                        "name": rng.choice(["Companion Kit", "Electra Bra Top", "Kit Kit Kit"]),
                        "qty": rng.randint(1, 3),
                    }
                    for _ in range(rng.randint(1, 3))
                ],
                "placed_on": f"2026-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                "note": rng.choice(["leave at the back door", "back door back door", "", "ring"]),
            }
        }
        created = datetime(2026, 3, 1) + timedelta(seconds=n * 7)
        out.append(
            {
                "log_id": n,
                "uuid": f"{rng.getrandbits(64):016x}",
                "event_name": "sales.order.created",
                "success": n % 9 != 0,
                "created": created.strftime("%Y-%m-%d %H:%M:%S.%f"),
                "serialized_data": json.dumps(body),
            }
        )
    return out


def test_bulk_writer_writes_what_whoosh_writes(tmp_path: Path) -> None:
    docs = [log_document(row) for row in rows(700)]  # 700 > 128: multi-block posting lists
    folders = {}
    for name, add in (("whoosh", "add_document"), ("bulk", "add_terms")):
        folder = folders[name] = tmp_path / name
        folder.mkdir()
        ix = index.create_in(str(folder), build_schema())
        writer_class = SegmentWriter if name == "whoosh" else BulkWriter
        writer = writer_class(ix, codec=LeanCodec(), compound=False)
        for doc in docs:
            getattr(writer, add)(**doc)
        writer.commit(merge=False)
        ix.close()
    # The term tables hold the same terms with the same statistics, and every
    # posting reads back the same (ids, weights, values: the positions). The
    # files differ: the bulk writer keeps a rare term's postings in the term
    # table, and reuses one bytes object per single position, which pickle then
    # writes once per block.
    readers = [index.open_dir(str(folders[name])).reader() for name in ("whoosh", "bulk")]
    terms = [list(r.all_terms()) for r in readers]
    assert terms[0] == terms[1] and len(terms[0]) > 1000
    multi_block = 0
    for fieldname, text in terms[0]:
        infos = [r.term_info(fieldname, text) for r in readers]
        assert [(i.weight(), i.doc_frequency(), i.max_weight(), i.min_id(), i.max_id()) for i in infos][0] == [
            (i.weight(), i.doc_frequency(), i.max_weight(), i.min_id(), i.max_id()) for i in infos
        ][1]
        postings = []
        for r in readers:
            m, found = r.postings(fieldname, text), []
            while m.is_active():
                found.append((m.id(), m.weight(), m.value() or None))  # no value: None or ''
                m.next()
            postings.append(found)
        assert postings[0] == postings[1]
        multi_block += len(postings[0]) > 128
    assert multi_block > 10
    sizes = {name: sum(p.stat().st_size for p in folders[name].iterdir() if p.suffix == ".pst") for name in folders}
    assert sizes["bulk"] <= sizes["whoosh"]


def log_rows(store: Store, logged: list[dict[str, Any]]) -> None:
    """Write generated rows into the delivery log, with their own log ids, in one transaction."""
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


def scan(all_rows: list[dict[str, Any]], keep: Any) -> list[int]:
    return sorted((r["log_id"] for r in all_rows if keep(json.loads(r["serialized_data"])["data"])), reverse=True)


def test_many_commits_merges_and_workers_find_what_a_scan_finds(tmp_path: Path, monkeypatch: Any) -> None:
    db = tmp_path / "ae.db"
    store = open_store(db)
    all_rows = rows(2000, seed=11)
    log_rows(store, all_rows[:1000])
    # Small segments: the build writes several, in worker processes; later catch-ups
    # commit small segments that whoosh's merge policy joins through its own pool.
    monkeypatch.setattr(search_index, "WORKER_ROWS", 200)
    monkeypatch.setattr(search_index, "COMMIT_EVERY", 150)
    monkeypatch.setattr(search_index, "BATCH", 100)
    monkeypatch.setattr(search_index, "worker_count", lambda: 2)
    ix = SearchIndex(tmp_path / "ae.db.index", store)
    assert ix.rebuild() == 1000
    segments = ix._open()._segments()
    assert [s.doc_count_all() for s in segments] == [200] * 5  # the workers' (in-process commits hold 150)
    # Twenty small catch-ups: once ten small segments are there, the smallest are
    # merged (up to WORKER_ROWS documents), one with deletions among them.
    for first in range(1000, 1500, 25):
        log_rows(store, all_rows[first : first + 25])
        assert ix.catch_up() == 25
        if first == 1100:
            assert ix.remove([1003, 1051, 1052, 1101]) == 4
    sizes = sorted(s.doc_count_all() for s in ix._open()._segments())
    assert len(sizes) < 5 + 20 and max(sizes) > 200  # merged: the build's 5, and fewer than 20 more
    assert sum(sizes) - ix._open().doc_count() <= 4  # deleted documents that no merge has dropped yet
    # A long backlog is indexed by the workers too, beside the segments already there.
    before = [s.segment_id() for s in ix._open()._segments()]
    log_rows(store, all_rows[1500:])
    assert ix.catch_up() == 500
    added = [s.doc_count_all() for s in ix._open()._segments() if s.segment_id() not in before]
    assert added == [200, 200, 100]
    assert ix.behind() == 0 and ix.indexed_up_to() == 2000

    removed = {1003, 1051, 1052, 1101}
    all_rows = [r for r in all_rows if r["log_id"] not in removed]

    def ids(text: str) -> list[int]:
        return ix.matching_log_ids(text)

    assert ids("data.data.increment_id: CK*") == scan(all_rows, lambda d: d["increment_id"].startswith("CK"))
    assert ids("data.data.increment_id: CK*") and ids("data.data.increment_id: SO0000*")
    assert ids("data.data.increment_id: SO0000*") == scan(all_rows, lambda d: d["increment_id"].startswith("SO0000"))
    assert ids('data.data.items.name:"Companion Kit"') == scan(
        all_rows, lambda d: any(i["name"] == "Companion Kit" for i in d["items"])
    )
    assert ids('"back door"') == scan(all_rows, lambda d: "back door" in d["note"])
    assert ids("data.data.grand_total:[10 TO 50]") == scan(all_rows, lambda d: 10 <= d["grand_total"] <= 50)
    assert ids("data.data.customer_email: user7@example.com") == scan(
        all_rows, lambda d: d["customer_email"] == "user7@example.com"
    )
    assert ids("data.data.placed_on:2026-04") == scan(all_rows, lambda d: d["placed_on"].startswith("2026-04"))
    assert ids("success:false") == sorted((r["log_id"] for r in all_rows if not r["success"]), reverse=True)
    ix.close()
    store.close()


def whoosh_phrase_docs(phrase: Any, sub: Any) -> set[int]:
    """whoosh's own answer; for a bare phrase, its phrase at each path the first word is at."""
    from whoosh import query

    from asyncevents_cli.search.analysis import SEP, path_term, word_terms

    if not isinstance(phrase, AnyPathPhrase):
        return set(phrase.docs(sub))
    found: set[int] = set()
    for term in sub.reader().expand_prefix("paths", word_terms(phrase.words[0])):
        path = term.decode().split(SEP, 1)[1]
        at_path = query.Phrase("paths", [path_term(path, word) for word in phrase.words], slop=phrase.slop)
        found.update(at_path.docs(sub))
    return found


def test_phrases_match_what_whoosh_matches(tmp_path: Path) -> None:
    """`matching` compares positions itself; whoosh's span matcher is the reference."""
    from whoosh import query

    from asyncevents_cli.search.documents import parser_schema
    from asyncevents_cli.search.matching import SegmentMatcher
    from asyncevents_cli.search.query import parse_for_index

    db = tmp_path / "ae.db"
    store = open_store(db)
    all_rows = rows(600, seed=5)
    log_rows(store, all_rows)
    ix = SearchIndex(tmp_path / "ae.db.index", store)
    ix.rebuild()
    ix.remove([3, 4, 5, 40])  # deletions are filtered too
    phrases = [
        '"back door"',
        '"door back"',
        '"kit kit"',
        '"kit kit kit"',
        '"Electra Bra Top"',
        '"Kit Electra"',
        '"Companion Kit"',
        'data.data.items.name:"Companion Kit"',
        'data.data.items.name:"kit kit"',
        'data.data.note:"back door back"',
        '"example.com ck00000007"',
        '"leave at the back door"',
    ]
    checked = 0
    with ix._open().searcher() as searcher:
        for text in phrases:
            q, _ = parse_for_index(text, parser_schema())
            phrase = next(leaf for leaf in [q, *q.leaves()] if isinstance(leaf, (query.Phrase, AnyPathPhrase)))
            for sub, _ in searcher.leaf_searchers():
                mine = SegmentMatcher(sub).docs(phrase)
                assert mine == whoosh_phrase_docs(phrase, sub), text
                checked += len(mine)
    assert checked > 300  # most phrases match something
    ix.close()
    store.close()


def test_a_failing_worker_is_reported_as_an_error(tmp_path: Path) -> None:
    from asyncevents_cli.errors import AeError
    from asyncevents_cli.search.parallel import build_segments

    row = rows(1)[0]
    with pytest.raises(AeError, match="search index worker failed"):
        build_segments(str(tmp_path / "no-index-here"), iter([[row], [row]]), 2)


# -- whoosh's private names: in segment.py only, and still where they were ------------


def test_every_private_whoosh_name_segment_relies_on_still_exists() -> None:
    """A whoosh release that renames or removes one fails here, naming it, rather
    than as silent rebuilds or wrong results (the format test above then says whether
    what segment.py writes and reads is still whoosh's format)."""
    from asyncevents_cli.search.segment import PRIVATE_NAMES

    missing = [
        f"{owner.__module__}.{owner.__qualname__}.{name}" for owner, name in PRIVATE_NAMES if not hasattr(owner, name)
    ]
    assert not missing, f"whoosh no longer has {', '.join(missing)}: search/segment.py must follow it"


def test_no_other_search_module_touches_a_private_whoosh_name() -> None:
    import ast

    folder = Path(__file__).resolve().parents[2] / "asyncevents_cli" / "search"
    found = []
    for path in sorted(folder.glob("*.py")):
        if path.name == "segment.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            private_attribute = (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            )
            private_import = (
                isinstance(node, ast.ImportFrom)
                and (node.module or "").startswith("whoosh")
                and any(alias.name.startswith("_") for alias in node.names)
            )
            if private_attribute or private_import:
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    assert found == []


def test_the_attributes_segment_reads_on_whoosh_objects_are_still_there(tmp_path: Path) -> None:
    """Instance attributes cannot be checked on the class: look on live objects."""
    from whoosh.codec.whoosh3 import W3LeafMatcher

    from asyncevents_cli.search.segment import INSTANCE_NAMES

    ix = index.create_in(str(tmp_path), build_schema())
    writer = BulkWriter(ix, codec=LeanCodec(), compound=False)
    for row in rows(300):
        writer.add_terms(**log_document(row))
    live: dict[str, Any] = {"W3FieldWriter": writer.fieldwriter, "W3Codec": writer.codec}
    writer.commit()
    with ix.searcher() as searcher:
        reader = next(iter(searcher.leaf_searchers()))[0].reader()
        live["CompactIntColumn reader"] = reader.column_reader("log_id", translate=False)
        common = max(reader.all_terms(), key=lambda term: reader.doc_frequency(*term) if term[0] == "paths" else 0)
        matcher = reader.postings(*common)
        assert isinstance(matcher, W3LeafMatcher) and reader.doc_frequency(*common) > 2
        matcher._read_ids()
        matcher._read_values()
        live["W3LeafMatcher"] = matcher
        missing = [
            f"{owner}.{name}"
            for owner, names in INSTANCE_NAMES.items()
            for name in names
            if not hasattr(live[owner], name)
        ]
    assert not missing, f"whoosh no longer has {', '.join(missing)}: search/segment.py must follow it"
