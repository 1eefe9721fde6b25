"""Queries on the word-first `paths` field (see `analysis`): bare words, and the
range-like queries at one payload path.

`paths` terms read `<mark><word> <path>`, so a word at one path is one term and
a bare word (any path) is one prefix. Two shapes need more than whoosh's own
query types, and `matching` and `filtering` answer them:
- `AtPath`: a prefix or range over words, kept to the terms of one path;
- `AnyPathPhrase`: a phrase of bare words, whose positions are merged over
  every path of each word (a phrase never spans two values: see `analysis`).
"""

from __future__ import annotations

from typing import Any

from whoosh import query

from .analysis import MARKS, SEP, word_terms

FIELD = "paths"


class AtPath(query.Query):
    """The terms `inner` (a Prefix or TermRange on `paths`) expands to, at `path` only."""

    def __init__(self, inner: query.Query, path: str) -> None:
        self.inner = inner
        self.path = path
        self.fieldname = FIELD
        self.boost = 1.0

    def is_leaf(self) -> bool:
        return True

    def at_path(self, term: bytes) -> bool:
        return term.endswith((SEP + self.path).encode("utf-8"))

    def __eq__(self, other: Any) -> bool:
        return type(other) is AtPath and (self.inner, self.path) == (other.inner, other.path)

    def __hash__(self) -> int:
        return hash((self.inner, self.path))

    def __repr__(self) -> str:
        return f"AtPath({self.inner!r}, {self.path!r})"


class AnyPathPhrase(query.Query):
    """Bare words in order, each at most `slop` positions after the one before, at any path."""

    def __init__(self, words: list[str], slop: int = 1) -> None:
        self.words = list(words)
        self.slop = slop
        self.fieldname = FIELD
        self.boost = 1.0

    def is_leaf(self) -> bool:
        return True

    def __eq__(self, other: Any) -> bool:
        return type(other) is AnyPathPhrase and (self.words, self.slop) == (other.words, other.slop)

    def __hash__(self) -> int:
        return hash((tuple(self.words), self.slop))

    def __repr__(self) -> str:
        return f"AnyPathPhrase({self.words!r}, slop={self.slop})"


def word_range(mark: str, start: str | None, end: str | None, startexcl: bool, endexcl: bool) -> tuple[str, str, bool]:
    """(low, high, high excluded): the `paths` terms, in one key space, of the words from
    `start` to `end` (empty: open). A word's terms all sort between the word and the word
    followed by `!`, the character after `SEP`, so `[low, high)` holds exactly them."""
    after_word = chr(ord(SEP) + 1)
    low = mark + (start + after_word if startexcl else start) if start else mark
    # an open end: the end of the key space
    high = mark + (end if endexcl else end + after_word) if end else chr(ord(mark) + 1)
    return low, high, True


def word_ranges(q: query.TermRange) -> list[query.Query]:
    """`q`'s words, in every key space, as `paths` term ranges."""
    start = str(q.start) if q.start not in (None, "", b"") else None
    end = str(q.end) if q.end not in (None, "", b"") else None
    ranges: list[query.Query] = []
    for mark in MARKS:
        low, high, endexcl = word_range(mark, start, end, q.startexcl, q.endexcl)
        ranges.append(query.TermRange(FIELD, low, high, startexcl=False, endexcl=endexcl))
    return ranges


def on_any_path(q: query.Query) -> query.Query:
    """A leaf on `data` (a bare word: any value of the body) as a `paths` query."""
    if isinstance(q, query.Term):
        return query.Prefix(FIELD, word_terms(str(q.text)))
    if isinstance(q, query.Phrase):
        return AnyPathPhrase([str(word) for word in q.words], q.slop)
    if isinstance(q, query.Prefix):
        return query.Or([query.Prefix(FIELD, mark + str(q.text)) for mark in MARKS])
    if isinstance(q, query.Wildcard):
        return query.Or([query.Wildcard(FIELD, mark + str(q.text) + SEP + "*") for mark in MARKS])
    if isinstance(q, query.TermRange):
        return query.Or(word_ranges(q))
    if isinstance(q, query.Every):
        return query.Every(FIELD)
    return q
