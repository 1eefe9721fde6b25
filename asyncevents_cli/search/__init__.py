"""Searching the delivery log with Lucene syntax: the public functions.

- `search_logs(config, store, text, limit, offset)` -> `Hits(total, rows, mode)`,
  each row with its full `payload`: what `ae search` and a web page call;
- `matching_log_ids(config, store, text)`: every matching log id (bulk replay);
- `check_syntax(text)`: raises `InputError` (exit 2) naming the first mistake;
- `remove_pruned`, `index_path`, `open_index` for the index's life cycle.

Modules: `analysis` (body -> terms, plain Python), `query` (checking, parsing,
rewriting), `matching` (which documents match, by set operations), `index`
(the whoosh index), `follow` (`ae index follow`), `fallback` (substring search
when `indexing = false`), `results` (shaping hits). The query language is
documented in docs/search.md.
whoosh is imported only when an index is used, so commands that never search
do not pay for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..errors import InputError
from ..store import Store
from .results import Hits

if TYPE_CHECKING:
    from .index import SearchIndex

__all__ = [
    "Hits",
    "SearchIndex",
    "check_syntax",
    "index_path",
    "matching_log_ids",
    "open_index",
    "remove_pruned",
    "search_logs",
]


def __getattr__(name: str) -> Any:
    if name == "SearchIndex":  # loads whoosh
        from .index import SearchIndex

        return SearchIndex
    raise AttributeError(name)


def check_syntax(text: str) -> str:
    from .query import check_syntax as check

    return check(text)


def index_path(config: Config) -> Path:
    return config.index_path


def open_index(config: Config, store: Store) -> SearchIndex | None:
    """The store's index, or None when settings.indexing is false."""
    if not config.settings.indexing:
        return None
    from .index import SearchIndex

    return SearchIndex(index_path(config), store)


def search_logs(config: Config, store: Store, text: str, limit: int = 100, offset: int = 0) -> Hits:
    """Search the delivery log: through the index, or by substring when indexing is off."""
    if limit < 1 or offset < 0:
        raise InputError("--limit must be 1 or more and --offset 0 or more")
    # A read-only store's index cannot follow the log: read the log itself.
    ix = None if store.read_only else open_index(config, store)
    if ix is None:
        from .fallback import substring_search

        return substring_search(store, text, limit, offset)
    try:
        return ix.search(text, limit, offset)
    finally:
        ix.close()


def matching_log_ids(config: Config, store: Store, text: str) -> list[int]:
    """Every log id the query matches, newest first, whichever way search runs."""
    ix = None if store.read_only else open_index(config, store)
    if ix is None:
        from .fallback import substring_search

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
