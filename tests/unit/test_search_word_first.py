"""The word-first `paths` field and the uuid column (schema 6) answer as the `data`
field and uuid terms did: a filter still reads a body's bare words as the old `data`
field held them (`analysis.BodyTerms.data`), so a bare query must select the same
bodies through the index as through `filtering`; uuid queries match what comparing
the lowercased uuids in Python selects. Real SQLite store, real index."""

from __future__ import annotations

import fnmatch
import json
import random
from typing import Any

import pytest

from asyncevents_cli.search.filtering import BodyView, compile_filter
from asyncevents_cli.search.index import SearchIndex
from asyncevents_cli.store.factory import open_store

WORDS = ["alpha", "beta", "gamma", "delta", "ck0042", "ws12-m-orange", "45.5", "2026-04-09"]
BARE_QUERIES = [
    "alpha",
    "ck0042",
    "orange",
    "2026-04",
    '"alpha beta"',
    '"beta alpha"',
    '"alpha beta gamma"',
    '"alpha gamma"~2',
    '"gamma alpha"~3',
    '"beta delta"~150',  # a slop past the gap between two values
    "al*",
    "ws1*",
    "a?pha",
    "*ta",
    "[beta TO delta]",
    "{beta TO delta}",
    "[* TO beta]",
    "[ck TO *]",
    "alpha AND NOT beta",
    "alpha -gamma",
    "data.data.a:alpha OR beta",
    'data.data.a:"alpha beta"',
    "data.data.b:[beta TO delta]",
    "data.data.b:{beta TO *]",
    "data.data.a:al*",
    "data.data.a:*a",
]


def make_rows(count: int) -> list[dict[str, Any]]:
    rng = random.Random(11)
    rows = []
    for n in range(1, count + 1):
        body: Any = {
            "a": " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4))),
            "b": [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(0, 2))],
        }
        serialized = json.dumps({"data": body}) if n % 10 else " ".join(rng.choice(WORDS) for _ in range(3))
        uuid = f"{rng.getrandbits(128):032x}"
        rows.append({"log_id": n, "uuid": uuid.upper() if n % 7 == 0 else uuid, "serialized": serialized})
    return rows


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("wordfirst")
    store = open_store(folder / "ae.db")
    rows = make_rows(400)
    with store.transaction():
        store.backend.conn.executemany(
            "INSERT INTO delivery_log (log_id, uuid, subscription_id, event_name, success, status_code,"
            " response_data, created, serialized_data, death_count, duration, message_id)"
            " VALUES (?,?,1,'x.y',1,200,'','2026-03-01 10:00:00.000000',?,0,0.01,'m')",
            [(r["log_id"], r["uuid"], r["serialized"]) for r in rows],
        )
    ix = SearchIndex(folder / "ae.db.index", store)
    ix.rebuild()
    ix.remove([5, 6, 7])  # deleted documents stay out
    rows = [r for r in rows if r["log_id"] not in (5, 6, 7)]
    yield ix, rows
    ix.close()
    store.close()


def body_of(row: dict[str, Any]) -> Any:
    try:
        return json.loads(row["serialized"])
    except ValueError:
        return row["serialized"]


@pytest.mark.parametrize("text", BARE_QUERIES)
def test_bare_words_find_what_a_filter_passes(indexed: Any, text: str) -> None:
    ix, rows = indexed
    check = compile_filter(text)
    expected = sorted((r["log_id"] for r in rows if check.matches(BodyView(body_of(r)))), reverse=True)
    assert ix.matching_log_ids(text) == expected


UUID_CASES = [
    ("uuid:{u}", lambda v, u: v == u),
    ("uuid:{U}", lambda v, u: v == u),
    ("uuid:{p}*", lambda v, u: v.startswith(u[:2])),
    ("uuid:*{s}", lambda v, u: v.endswith(u[-1])),
    ("uuid:{p}?{q}*", lambda v, u: fnmatch.fnmatchcase(v, u[:2] + "?" + u[3:4] + "*")),
    ("uuid:[{u} TO *]", lambda v, u: v >= u),
    ("uuid:{{{u} TO *]", lambda v, u: v > u),
    ("uuid:[* TO {u}}}", lambda v, u: v < u),
    ("uuid:*", lambda v, u: True),
    ("NOT uuid:{p}*", lambda v, u: not v.startswith(u[:2])),
]


@pytest.mark.parametrize("template,keep", UUID_CASES, ids=[t for t, _ in UUID_CASES])
def test_uuid_queries_compare_the_lowercased_column(indexed: Any, template: str, keep: Any) -> None:
    ix, rows = indexed
    u = rows[20]["uuid"].lower()
    text = template.format(u=u, U=u.upper(), p=u[:2], q=u[3:4], s=u[-1])
    expected = sorted((r["log_id"] for r in rows if keep(r["uuid"].lower(), u)), reverse=True)
    assert expected
    assert ix.matching_log_ids(text) == expected
