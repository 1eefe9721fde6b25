"""The search index's safety: it never replaces a folder it did not create, it is
private whatever the umask, queries are bounded and parse in linear time, and one
log adds a bounded amount to the index (issue 18)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ae, write_config

from asyncevents_cli.publishing import publish
from asyncevents_cli.runtime import Runtime
from asyncevents_cli.search.documents import MAX_INDEXED_CHARS, parser_schema
from asyncevents_cli.search.query import MAX_QUERY_CHARS, parse
from asyncevents_cli.subscribe import subscribe

ORDER = {"increment_id": "CK00000101", "customer_email": "roni_cost@example.com", "grand_total": 45.5}


def delivered(folder: Path, receiver: Any, *bodies: dict[str, Any], **settings: Any) -> Path:
    """A config whose store logged one delivered attempt per body."""
    folder.mkdir(parents=True, exist_ok=True)
    config = write_config(folder, **settings)
    with Runtime(config, environ={}) as rt:
        subscribe(rt.config, rt.store, "sales.order.created", receiver.endpoint("/orders"))
        for body in bodies:
            publish(rt.config, rt.queue, "sales.order.created", body)
        rt.consumer(poll_timeout=0.02).run(until_empty=True)
    return config


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (relative path -> sha256), to prove nothing changed."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


# -- a foreign folder at index_path ----------------------------------------------


@pytest.mark.parametrize("command", [("search", "roni"), ("index", "rebuild"), ("search", "roni", "--json")])
def test_index_path_naming_the_config_folder_is_refused_and_untouched(
    tmp_path: Path, receiver: Any, command: tuple[str, ...]
) -> None:
    """`index_path = "."` once deleted events.toml, the store and its key on the first search."""
    config = delivered(tmp_path, receiver, ORDER, index_path=".")
    before = snapshot(tmp_path)
    assert "events.toml" in before and any(name.startswith(".ae/") for name in before)
    result = ae(config, *command)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("ae: error: index_path ") and "did not create" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({name.split("/")[0] for name in before})


def test_ae_index_path_naming_a_folder_of_documents_is_refused(tmp_path: Path, receiver: Any) -> None:
    config = delivered(tmp_path / "home", receiver, ORDER)
    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "thesis.txt").write_text("three years of work")
    before = snapshot(documents)
    for command in (("search", "roni"), ("index", "rebuild")):
        result = ae(config, *command, env={"AE_INDEX_PATH": str(documents)})
        assert result.exit_code == 2 and "did not create" in result.stderr
    assert snapshot(documents) == before and sorted(os.listdir(documents)) == ["thesis.txt"]


def test_a_file_or_symlink_at_index_path_is_refused(tmp_path: Path, receiver: Any) -> None:
    config = delivered(tmp_path / "home", receiver, ORDER)
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "home")
    for path in (notes, link):
        result = ae(config, "index", "rebuild", env={"AE_INDEX_PATH": str(path)})
        assert result.exit_code == 2 and "not a folder ae created" in result.stderr
    assert notes.read_text() == "keep me" and link.is_symlink()


def test_an_empty_folder_and_ae_s_own_index_are_used(tmp_path: Path, receiver: Any) -> None:
    config = delivered(tmp_path / "home", receiver, ORDER)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"AE_INDEX_PATH": str(empty)}
    result = ae(config, "search", "CK00000101", "--json", env=env)
    assert result.exit_code == 0 and json.loads(result.stdout)["total"] == 1
    assert (empty / ".ae-index").is_file()
    # ae's own index is rebuilt in place, however many files it holds
    result = ae(config, "index", "rebuild", env=env)
    assert result.exit_code == 0, result.stderr
    assert json.loads(ae(config, "search", "CK00000101", "--json", env=env).stdout)["total"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "home"]  # no temporary folder left


# -- permissions --------------------------------------------------------------------


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def assert_private(folder: Path) -> None:
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = [p for p in folder.iterdir() if p.is_file()]
    assert len(files) > 2
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_the_index_is_private_whatever_the_umask(tmp_path: Path, receiver: Any, loose_umask: None) -> None:
    config = delivered(tmp_path, receiver, ORDER)
    assert ae(config, "search", "roni").exit_code == 0
    folder = tmp_path / ".ae" / "ae.db.index"
    assert_private(folder)
    # rows logged later are added by a catch-up, which writes new segment files
    delivered(tmp_path, receiver, {**ORDER, "increment_id": "CK00000102"})
    assert ae(config, "search", "CK00000102").exit_code == 0
    assert_private(folder)
    assert ae(config, "index", "rebuild").exit_code == 0
    assert_private(folder)


def test_an_index_made_readable_by_others_is_made_private_again(tmp_path: Path, receiver: Any) -> None:
    config = delivered(tmp_path, receiver, ORDER)
    assert ae(config, "search", "roni").exit_code == 0
    folder = tmp_path / ".ae" / "ae.db.index"
    folder.chmod(0o755)
    for path in folder.iterdir():
        path.chmod(0o644)
    delivered(tmp_path, receiver, {**ORDER, "increment_id": "CK00000102"})
    assert ae(config, "search", "CK00000102").exit_code == 0
    assert_private(folder)


# -- query length and parsing time --------------------------------------------------


def test_a_100_kb_query_is_refused_quickly_with_one_line(tmp_path: Path, receiver: Any) -> None:
    config = delivered(tmp_path, receiver, ORDER)
    query = "roni " * 20_000
    started = time.process_time()  # CPU time: what the query costs, not what other processes take
    result = ae(config, "search", query)
    elapsed = time.process_time() - started
    assert result.exit_code == 2
    assert result.stderr == f"ae: error: query too long: 100,000 characters, at most {MAX_QUERY_CHARS:,}\n"
    assert elapsed < 0.1, elapsed
    assert not (tmp_path / ".ae" / "ae.db.index").exists(), "a refused query changes nothing"


def test_a_long_run_without_spaces_is_refused_with_its_position() -> None:
    with pytest.raises(Exception, match=r"a run of 2,000 characters without a space at position 6"):
        parse("roni " + "a" * 2_000, parser_schema())


def best_time(text: str) -> float:
    """The parse's CPU time, best of 5: a loaded machine (other processes, other test
    workers) stretches wall time, not the work this process does."""
    schema = parser_schema()
    times = []
    for _ in range(5):
        started = time.process_time()
        parse(text, schema)
        times.append(time.process_time() - started)
    return min(times)


SHAPES = {
    "words": lambda n: "roni " * (n // 5),
    "long runs": lambda n: ("a" * 999 + " ") * (n // 1000),
    "stray single quotes": lambda n: "'a " * (n // 3),
    "fields": lambda n: "data.data.sku:ab " * (n // 17),
    "ranges": lambda n: "data.x:[1 TO 2] " * (n // 16),
    "wildcards": lambda n: "a*b?c " * (n // 6),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_parsing_time_grows_linearly_with_the_query(shape: str) -> None:
    """20 KB took 2.1 s and 100 KB 42 s (quadratic); the time per character now
    stays about the same from a quarter of the limit to the limit."""
    make = SHAPES[shape]
    best_time(make(2_000))  # warm up the parser
    small_text, large_text = make(MAX_QUERY_CHARS // 4), make(MAX_QUERY_CHARS)
    assert len(large_text) <= MAX_QUERY_CHARS and len(large_text) >= 3 * len(small_text)
    small, large = best_time(small_text), best_time(large_text)
    assert large < 0.25, large
    per_char_growth = (large / len(large_text)) / (small / len(small_text))
    assert per_char_growth < 2.5, (small, large)  # quadratic would be about 4


# -- a bounded amount per log -------------------------------------------------------


def test_a_900_kb_payload_adds_a_bounded_amount_to_the_index(tmp_path: Path, receiver: Any) -> None:
    words = [f"w{n:06d}x" for n in range(100_000)]  # 900,000 characters of distinct words
    huge = {"increment_id": "CK00000900", "note": " ".join(words)}
    config = delivered(tmp_path, receiver, huge)
    result = ae(config, "search", "CK00000900", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["total"] == 1
    folder = tmp_path / ".ae" / "ae.db.index"
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert size < 1024 * 1024, size  # was 42 MB
    indexed = MAX_INDEXED_CHARS // 9 - 100  # a word well inside the indexed part is found
    assert json.loads(ae(config, "search", words[indexed], "--json").stdout)["total"] == 1
    assert json.loads(ae(config, "search", words[-1], "--json").stdout)["total"] == 0  # past the bound
    # the log keeps the whole body, and the trace shows it
    trace = ae(config, "trace", json.loads(result.stdout)["results"][0]["uuid"], "--json")
    assert trace.exit_code == 0 and words[-1] in trace.stdout


def test_an_index_built_before_the_marker_is_recognised_and_rebuilt(tmp_path: Path, receiver: Any) -> None:
    """An earlier `ae` left no marker, only its meta file, and a 0755 folder: it is still ae's own."""
    config = delivered(tmp_path, receiver, ORDER)
    assert ae(config, "search", "CK00000101").exit_code == 0
    folder = tmp_path / ".ae" / "ae.db.index"
    (folder / ".ae-index").unlink()
    meta = json.loads((folder / ".ae-index.json").read_text())
    (folder / ".ae-index.json").write_text(json.dumps({**meta, "schema": 3}))  # the format before this one
    folder.chmod(0o755)
    result = ae(config, "search", "CK00000101", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["total"] == 1
    assert (folder / ".ae-index").is_file()
    assert_private(folder)
