"""Subscription filters: an `ae search` query evaluated against one delivery body, without an index.

A filter is parsed by the search parser (`query.parse`) and rewritten onto the
index's lean fields (`query.rewrite`), exactly as `ae search` runs it; then,
instead of reading posting lists, its leaves are answered from the terms
`analysis` would index for the body (`analysis.body_terms`,
`index.number_terms`). The same tokenising, case folding, compound-word
parts, key spaces, numeric encoding and range bounds serve both, so a filter
passes a body exactly when `ae search` would find its logged delivery
(tests/test_filters.py runs one table of queries both ways).

Only the body's fields can be used (`data` and `data.<path>`): a filter runs
before the attempt, so `success`, `created`, `log_id` and `uuid` do not exist
yet, and `event_name` is the subscription's own.

Cost: a compiled filter knows the payload paths it reads, so the body's terms
are worked out for those paths only (a bare word, which searches every value,
needs them all); `BodyTerms` of one body are shared by every filter that asks.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from whoosh import query

from ..errors import InputError
from .analysis import BodyTerms, flatten, plain_text_terms
from .query import is_payload_field, malformed, parse, rewrite

#: The only fields a filter may read: the body's.
BODY_FIELD = "data"
EVERY_PATH = None  # `CompiledFilter.paths` when a bare word needs every value


@functools.cache
def _schema() -> Any:
    from .index import build_schema

    return build_schema()


@dataclass(frozen=True)
class CompiledFilter:
    """A filter ready to test bodies: its text, the rewritten query, and the payload
    paths it reads (None: every path)."""

    text: str
    query: query.Query
    paths: frozenset[str] | None

    def matches(self, body: BodyView) -> bool:
        return _matches(self.query, body.terms(self.paths))


def _check_fields(parsed: query.Query, text: str) -> frozenset[str] | None:
    """Refuse fields a body does not have; return the payload paths read (None: all)."""
    paths: set[str] = set()
    every = False
    for leaf in parsed.leaves() if not parsed.is_leaf() else [parsed]:
        name = getattr(leaf, "fieldname", None) or BODY_FIELD
        if name == BODY_FIELD:
            every = True
        elif is_payload_field(name):
            paths.add(name)
        else:
            found = re.search(rf"(?<![\w.]){re.escape(name)}:", text)
            raise malformed(
                f"a filter reads the delivery body only (data, data.<json.path>), not {name!r}",
                found.start() if found else 0,
                text,
            )
    return None if every else frozenset(paths)


def compile_filter(text: str) -> CompiledFilter:
    """Check and compile a filter; InputError (exit 2) names the first problem and its position."""
    parsed = parse(text, _schema())
    paths = _check_fields(parsed, text)
    rewritten = rewrite(parsed)
    _check_supported(rewritten, text)
    return CompiledFilter(text, rewritten, paths)


def check_filter(text: str) -> str:
    """The filter as stored (surrounding blanks dropped), or InputError."""
    text = text.strip()
    compile_filter(text)
    return text


@functools.lru_cache(maxsize=1024)
def compiled(text: str) -> CompiledFilter:
    """One compiled filter per text: a consumer compiles each subscription's once."""
    return compile_filter(text)


class BodyView:
    """One body, and its index terms worked out on demand for the paths a filter reads."""

    __slots__ = ("body", "_cache")

    def __init__(self, body: Any) -> None:
        self.body = body
        self._cache: dict[frozenset[str] | None, BodyTerms] = {}

    def terms(self, paths: frozenset[str] | None) -> BodyTerms:
        found = self._cache.get(paths)
        if found is None:
            found = self._cache[paths] = _body_terms(self.body, paths)
        return found


def _body_terms(body: Any, paths: frozenset[str] | None) -> BodyTerms:
    """`analysis.body_terms`, limited to `paths`. Positions differ from the full
    terms only by a constant per value, and values stay VALUE_GAP apart, so
    every phrase answers the same."""
    if isinstance(body, str):
        return plain_text_terms(body)
    terms = BodyTerms()
    position = 0
    for path, value in flatten(body, BODY_FIELD):
        if paths is None or path in paths:
            position = terms.add_value(path, value, position)
    return terms


# -- evaluating a rewritten query against one body's terms -------------------------


def _field_terms(terms: BodyTerms, fieldname: str) -> Any:
    """The body's terms of one index field: a dict (with positions) or a set."""
    if fieldname == "data":
        return terms.data
    if fieldname == "paths":
        return terms.paths
    if fieldname == "prefixes":
        return terms.prefixes
    if fieldname == "numbers":
        from .index import number_terms

        return number_terms(terms)
    return {}


def _in_range(q: query.TermRange, term: Any) -> bool:
    """Within the range's bounds; an empty bound is open, as whoosh reads it."""
    start, end = q.start, q.end
    above = start in (None, "", b"") or term > start or (term == start and not q.startexcl)
    below = end in (None, "", b"") or term < end or (term == end and not q.endexcl)
    return bool(above and below)


def _phrase(q: query.Phrase, held: Any) -> bool:
    """Words in order, each at most `slop` positions after the one before (whoosh's
    SpanNear2 with mindist 1; slop 1 is consecutive)."""
    if not isinstance(held, dict):
        return False
    positions: list[list[int]] = [held.get(word) or [] for word in q.words]
    if not all(positions):
        return False
    later = [set(p) for p in positions[1:]]

    def follows(position: int, k: int) -> bool:
        if k == len(later):
            return True
        return any(position + step in later[k] and follows(position + step, k + 1) for step in range(1, q.slop + 1))

    return any(follows(start, 0) for start in positions[0])


def _leaf(q: query.Query, terms: BodyTerms) -> bool:
    held = _field_terms(terms, q.fieldname)
    if isinstance(q, query.Term):
        return q.text in held
    if isinstance(q, query.Phrase):
        return _phrase(q, held)
    if isinstance(q, query.Prefix):
        return any(term.startswith(q.text) for term in held)
    if isinstance(q, query.Wildcard):
        pattern = re.compile(fnmatch.translate(q.text))
        return any(pattern.match(term) for term in held)
    if isinstance(q, query.TermRange):
        return any(_in_range(q, term) for term in held)
    if isinstance(q, query.Every):
        return bool(held)
    raise InputError(f"malformed query: {q} is not supported in a filter")


def _matches(q: query.Query, terms: BodyTerms) -> bool:
    if q is query.NullQuery:
        return False
    compound = _COMPOUND.get(type(q))
    if compound is not None:
        return compound(q, terms)
    if isinstance(q, query.Every) and getattr(q, "fieldname", None) in (None, "", "*"):
        return True
    return _leaf(q, terms)


_COMPOUND: dict[type, Callable[[Any, BodyTerms], bool]] = {
    query.And: lambda q, t: all(_matches(c, t) for c in q.subqueries),
    query.Or: lambda q, t: any(_matches(c, t) for c in q.subqueries),
    query.DisjunctionMax: lambda q, t: any(_matches(c, t) for c in q.subqueries),
    query.Not: lambda q, t: not _matches(q.query, t),
    query.Require: lambda q, t: _matches(q.a, t) and _matches(q.b, t),
    query.AndMaybe: lambda q, t: _matches(q.a, t),
    query.AndNot: lambda q, t: _matches(q.a, t) and not _matches(q.b, t),
}
_LEAVES = (query.Term, query.Phrase, query.Prefix, query.Wildcard, query.TermRange, query.Every)


def _check_supported(q: query.Query, text: str) -> None:
    """Every node is one the evaluator answers: found at subscribe time, not in the consumer."""
    if q is query.NullQuery or type(q) in _COMPOUND:
        for child in q.children():
            _check_supported(child, text)
        return
    if not isinstance(q, _LEAVES):
        raise InputError(f"malformed query: {q} is not supported in a filter: {text}")
