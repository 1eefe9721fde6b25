"""Subscription filters: an `ae search` query evaluated against one delivery body, without an index.

A filter is parsed by the search parser (`query.parse`) and rewritten onto the
index's lean fields (`query.rewrite`), exactly as `ae search` runs it; then,
instead of reading posting lists, its leaves are answered from the terms
`analysis` would index for the body (`analysis.body_terms`,
`index.number_terms`). The same tokenising, case folding, compound-word
parts, key spaces, numeric encoding and range bounds serve both, so a filter
passes a body exactly when `ae search` would find its logged delivery
(tests/contract/test_filters.py runs one table of queries both ways).

One difference, on purpose: the index keeps only the first
`documents.MAX_INDEXED_CHARS` (16 KiB) of a body, while a filter reads the
whole payload, so an event is never sent or held back for what lies past
a cut it cannot see.

Only the body's fields can be used (`data` and `data.<path>`): a filter runs
before the attempt, so `success`, `created`, `log_id` and `uuid` do not exist
yet, and `event_name` is the subscription's own.

Cost: each leaf of a compiled filter knows the payload path it reads, so a
body's terms are worked out per path and per kind, on demand: a numeric range
encodes the numbers at its path and analyses no words; a word or prefix
analyses the words at its path only; a bare word (which searches every value)
needs the whole body's terms. One body's terms are shared by every filter
that asks (`BodyView`). Positions within one path differ from the whole
body's only by a constant per value, and values stay VALUE_GAP apart, so
every phrase answers the same.
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
from .analysis import (
    SEP,
    WORD,
    BodyTerms,
    as_number,
    as_text,
    body_terms,
    expand,
    field_name,
    phrase_matches,
    plain_text_terms,
    words,
)
from .pathqueries import AtPath
from .query import is_payload_field, malformed, parse, rewrite

#: The only fields a filter may read: the body's.
BODY_FIELD = "data"


@functools.cache
def _schema() -> Any:
    from .documents import parser_schema

    return parser_schema()


Check = Callable[["BodyView"], bool]


@dataclass(frozen=True)
class CompiledFilter:
    """A filter ready to test bodies: its text, the rewritten query, and the query turned
    into one Python check."""

    text: str
    query: query.Query
    check: Check

    def matches(self, body: BodyView) -> bool:
        return self.check(body)


def _check_fields(parsed: query.Query, text: str) -> None:
    """Refuse fields a body does not have, naming the first one's position."""
    for leaf in parsed.leaves() if not parsed.is_leaf() else [parsed]:
        name = getattr(leaf, "fieldname", None) or BODY_FIELD
        if name != BODY_FIELD and not is_payload_field(name):
            found = re.search(rf"(?<![\w.]){re.escape(name)}:", text)
            raise malformed(
                f"a filter reads the delivery body only (data, data.<json.path>), not {name!r}",
                found.start() if found else 0,
                text,
            )


def compile_filter(text: str) -> CompiledFilter:
    """Check and compile a filter; InputError (exit 2) names the first problem and its position."""
    parsed = parse(text, _schema())
    _check_fields(parsed, text)
    return CompiledFilter(text, rewrite(parsed), _compile(parsed, text))


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
    """One body, and its index terms, worked out on demand per path and kind (see the module docstring)."""

    __slots__ = ("body", "_values", "_words", "_numbers", "_prefixes", "_whole", "_lowered")

    def __init__(self, body: Any) -> None:
        self.body = body
        self._values: dict[str, list[Any]] | None = None
        self._words: dict[str, BodyTerms] = {}
        self._numbers: dict[str, set[bytes]] = {}
        self._prefixes: dict[str, set[str]] = {}
        self._whole: BodyTerms | None = None
        self._lowered: dict[str, str] = {}

    def values(self, path: str) -> list[Any]:
        """The scalars at `path` (list items share their list's path), in body order: what
        `analysis.flatten` yields for that path. One pass over the body serves every path."""
        if self._values is None:
            self._values = {}
            if not isinstance(self.body, str):
                _collect(self.body, BODY_FIELD, self._values)
        return self._values.get(path, [])

    def mentions(self, path: str, needle: str) -> bool:
        """Whether the lowercased text of some value at `path` contains `needle`."""
        lowered = self._lowered.get(path)
        if lowered is None:
            lowered = self._lowered[path] = "\0".join(as_text(value).lower() for value in self.values(path))
        return needle in lowered

    def field(self, name: str, path: str | None) -> Any:
        """The terms of index field `name` that a leaf on `path` reads (None: a bare word's, the whole body)."""
        if path is None:
            if self._whole is None:
                self._whole = plain_text_terms(self.body) if isinstance(self.body, str) else body_terms(self.body)
            return _field_of(self._whole, name)
        if name == "numbers":
            found = self._numbers.get(path)
            if found is None:
                found = self._numbers[path] = _number_terms(path, self.values(path))
            return found
        if name == "prefixes":  # asked for first by a prefix query: no positions needed
            prefixes = self._prefixes.get(path)
            if prefixes is None:
                prefixes = self._prefixes[path] = _prefixes_at(path, self.values(path))
            return prefixes
        terms = self._words.get(path)
        if terms is None:
            terms = self._words[path] = _words_at(path, self.values(path))
        return _field_of(terms, name)


def _collect(value: Any, path: str, found: dict[str, list[Any]]) -> None:
    """`analysis.flatten`, gathered by path in one pass without generators (it runs once per event)."""
    if isinstance(value, dict):
        for key, item in value.items():
            _collect(item, path + "." + field_name(key), found)
    elif isinstance(value, list):
        for item in value:
            _collect(item, path, found)
    else:
        held = found.get(path)
        if held is None:
            found[path] = [value]
        else:
            held.append(value)


def _words_at(path: str, values: list[Any]) -> BodyTerms:
    """The index's terms of the values at one path (`BodyTerms.add_value`, as indexing runs it)."""
    terms = BodyTerms()
    position = 0
    for value in values:
        position = terms.add_value(path, value, position)
    return terms


def _prefixes_at(path: str, values: list[Any]) -> set[str]:
    """The `prefixes` terms `BodyTerms.add_value` would make for the values at one path,
    from the same words and `expand`, without its position lists."""
    return {path + WORD + prefix for value in values for word in words(as_text(value)) for prefix in expand(word)[1]}


def _number_terms(path: str, values: list[Any]) -> set[bytes]:
    """The index's numeric terms of the values at one path, without analysing their words."""
    from .documents import number_terms

    terms = BodyTerms()
    for value in values:
        number = as_number(value)
        if number is not None and number == number and abs(number) != float("inf"):  # as add_value keeps them
            terms.numbers.append((path, number))
    return number_terms(terms)


def _field_of(terms: BodyTerms, name: str) -> Any:
    if name == "numbers":
        from .documents import number_terms

        return number_terms(terms)
    return getattr(terms, name)


# -- a rewritten query as one Python check of a body's terms ------------------------
#
# Each node becomes a closure once, when the filter is compiled, so testing a body
# costs the checks themselves and no dispatch on query types.

INDEX_FIELDS = ("data", "paths", "prefixes", "numbers")


def _bound(value: Any) -> Any:
    """A range bound, or None for an open end (whoosh reads an empty bound as open)."""
    return None if value in (None, "", b"") else value


def _in_range(term: Any, start: Any, end: Any, startexcl: bool, endexcl: bool) -> bool:
    above = start is None or term > start or (term == start and not startexcl)
    below = end is None or term < end or (term == end and not endexcl)
    return above and below


def _phrase(held: Any, words: list[str], slop: int) -> bool:
    """Words in order, each at most `slop` positions after the one before (`analysis.phrase_matches`)."""
    if not isinstance(held, dict):
        return False
    return phrase_matches([held.get(word) or [] for word in words], slop)


def _needles(q: query.Query, path: str | None) -> list[str]:
    """Text a body's values at `path` must contain (lowercased) for the leaf to match: every
    word, part and prefix the index stores is a piece of the lowercased value, so a leaf
    whose words are absent is answered without analysing anything."""
    if path is None:
        return []
    if isinstance(q, AtPath):
        q = q.inner
    if q.fieldname == "prefixes" and isinstance(q, query.Term):
        return [str(q.text)[len(path) + 1 :]]  # path + mark + prefix
    if q.fieldname != "paths":
        return []
    if isinstance(q, query.Phrase):
        return [_word_of(str(word)) for word in q.words]
    if isinstance(q, (query.Term, query.Prefix)):
        return [_word_of(str(q.text))]
    return []


def _word_of(term: str) -> str:
    """The word (or word prefix) of a `paths` term: mark + word + SEP + path."""
    return term[1:].split(SEP, 1)[0]


def _leaf(q: query.Query, path: str | None, text: str) -> Check:
    """One leaf of a rewritten query, with the cheap absence check of `_needles` first."""
    exact = _exact_leaf(q, path, text)
    needles = [n for n in _needles(q, path) if n]
    if not needles or path is None:
        return exact
    at = path
    return lambda body: all(body.mentions(at, needle) for needle in needles) and exact(body)


def _exact_leaf(q: query.Query, path: str | None, text: str) -> Check:
    """One leaf of a rewritten query, on an index field, for a payload `path` (None: the whole body)."""
    if isinstance(q, AtPath):  # the body's terms at `path` are all at that path
        return _exact_leaf(q.inner, path, text)
    name = q.fieldname
    if name not in INDEX_FIELDS:
        raise InputError(f"malformed query: {q} is not supported in a filter: {text}")
    if isinstance(q, query.Term):
        wanted = q.text
        return lambda body: wanted in body.field(name, path)
    if isinstance(q, query.Phrase):
        words, slop = list(q.words), q.slop
        return lambda body: _phrase(body.field(name, path), words, slop)
    if isinstance(q, query.Prefix):
        prefix = q.text
        return lambda body: any(term.startswith(prefix) for term in body.field(name, path))
    if isinstance(q, query.Wildcard):
        pattern = re.compile(fnmatch.translate(q.text))
        return lambda body: any(pattern.match(term) for term in body.field(name, path))
    if isinstance(q, query.TermRange):
        low, high, startexcl, endexcl = _bound(q.start), _bound(q.end), q.startexcl, q.endexcl
        return lambda body: any(_in_range(term, low, high, startexcl, endexcl) for term in body.field(name, path))
    if isinstance(q, query.Every):
        return lambda body: bool(body.field(name, path))
    raise InputError(f"malformed query: {q} is not supported in a filter: {text}")


def _compile(q: query.Query, text: str, path: str | None = None) -> Check:
    """A parsed query as a check. A leaf on a payload field is rewritten as `ae search`
    rewrites it (`query.rewrite`) and compiled knowing its path; compound nodes are
    walked here, with `a -b` read as `a AND NOT b`, as `rewrite` does."""
    if q is query.NullQuery:
        return lambda body: False
    if isinstance(q, (query.And, query.Or, query.DisjunctionMax)):
        children = [_compile(c, text, path) for c in q.subqueries]
        if isinstance(q, query.And):
            return lambda body: all(child(body) for child in children)
        return lambda body: any(child(body) for child in children)
    if isinstance(q, query.Not):
        inner = _compile(q.query, text, path)
        return lambda body: not inner(body)
    if isinstance(q, (query.Require, query.AndNot, query.AndMaybe)):
        a, b = _compile(q.a, text, path), _compile(q.b, text, path)
        if isinstance(q, query.Require):
            return lambda body: a(body) and b(body)
        if isinstance(q, query.AndNot):
            return lambda body: a(body) and not b(body)
        return a  # AndMaybe: b only scores
    if isinstance(q, query.Every) and getattr(q, "fieldname", None) in (None, "", "*"):
        return lambda body: True
    name = getattr(q, "fieldname", None)
    if name is not None and is_payload_field(name) and path is None:
        return _compile(rewrite(q), text, name)
    return _leaf(q, path, text)
