"""Which documents of one index segment match a query, as a set of document numbers.

whoosh's matchers step through postings one document at a time in Python
(a method call or two per posting, and more for each level of And/Or), which
is most of the time of a query matching 50,000 documents; and its
AndNotMatcher lets through documents that match both sides. Search never
scores, it only needs the matching set, so this module reads each term's
posting list whole (a block of up to 128 ids at a time) and combines the
sets with Python's set operations; a phrase intersects its words' documents
before comparing positions. Queries it does not know (a phrase with a slop)
are matched by whoosh itself, within the same segment.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Iterable
from typing import Any

from whoosh import query
from whoosh.codec.whoosh3 import W3LeafMatcher
from whoosh.matching.wrappers import FilterMatcher
from whoosh.reading import TermNotFound

DocSet = set[int]


def term_docs(reader: Any, fieldname: str, text: Any) -> list[int]:
    """The live documents holding one term."""
    if fieldname not in reader.schema:
        return []
    btext = text if isinstance(text, bytes) else reader.schema[fieldname].to_bytes(text)
    try:
        matcher = reader.postings(fieldname, btext)
    except TermNotFound:
        return []
    deleted = None
    if isinstance(matcher, FilterMatcher):  # the segment has deletions
        deleted = reader.deleted_docs_set
        matcher = matcher.child
    ids: list[int] = []
    if isinstance(matcher, W3LeafMatcher):
        while matcher.is_active():
            if matcher._ids is None:
                matcher._read_ids()
            ids.extend(matcher._ids[matcher._i :])
            matcher._next_block()
    else:
        ids.extend(matcher.all_ids())
    return [i for i in ids if i not in deleted] if deleted else ids


def term_positions(reader: Any, fieldname: str, btext: bytes) -> dict[int, bytes]:
    """docnum -> the encoded positions of one term, for the live documents holding it."""
    try:
        matcher = reader.postings(fieldname, btext)
    except TermNotFound:
        return {}
    deleted = None
    if isinstance(matcher, FilterMatcher):
        deleted = reader.deleted_docs_set
        matcher = matcher.child
    found: dict[int, bytes] = {}
    if isinstance(matcher, W3LeafMatcher):
        while matcher.is_active():
            if matcher._ids is None:
                matcher._read_ids()
            if matcher._values is None:
                matcher._read_values()
            found.update(zip(matcher._ids[matcher._i :], matcher._values[matcher._i :]))
            matcher._next_block()
    else:
        found.update(matcher.all_items())
    if deleted:
        for docnum in deleted.intersection(found):
            del found[docnum]
    return found


def _union(reader: Any, fieldname: str, btexts: Iterable[Any]) -> DocSet:
    found: DocSet = set()
    for btext in btexts:
        found.update(term_docs(reader, fieldname, btext))
    return found


class SegmentMatcher:
    """Evaluates queries against one segment reader (and its searcher, for phrases)."""

    def __init__(self, searcher: Any) -> None:
        self.searcher = searcher
        self.reader = searcher.reader()
        self._all: DocSet | None = None

    def all_docs(self) -> DocSet:
        if self._all is None:
            self._all = set(self.reader.all_doc_ids())
        return self._all

    def docs(self, q: query.Query) -> DocSet:
        if q is query.NullQuery:
            return set()
        method: Callable[[Any], DocSet] | None = getattr(self, "_" + type(q).__name__, None)
        if method is not None:
            return method(q)
        if isinstance(q, query.NumericRange):  # DateRange too
            return self.docs(q._compile_query(self.reader))
        if isinstance(q, query.MultiTerm):  # Prefix, Wildcard, TermRange, ...
            return _union(self.reader, q.fieldname, q._btexts(self.reader))
        return set(q.docs(self.searcher))  # phrases and anything else: whoosh's own matching

    def _Phrase(self, q: query.Phrase) -> DocSet:  # noqa: N802
        """Words at consecutive positions: the documents holding every word, by set
        intersection, then their positions compared (whoosh's span matcher does the
        same one posting at a time). Other slops are whoosh's."""
        field = self.reader.schema[q.fieldname] if q.fieldname in self.reader.schema.names() else None
        if q.slop != 1 or len(q.words) < 2 or field is None or not field.format.supports("positions"):
            return set(q.docs(self.searcher))
        postings: list[dict[int, bytes]] = [
            term_positions(self.reader, q.fieldname, field.to_bytes(word)) for word in q.words
        ]
        smallest: dict[int, bytes] = min(postings, key=len)
        candidates: DocSet = set(smallest)
        for held in postings:
            candidates.intersection_update(held)
            if not candidates:
                return set()
        decode = field.format.decode_positions
        found: DocSet = set()
        for docnum in candidates:
            first, *rest = (decode(held[docnum]) for held in postings)
            later = [set(positions) for positions in rest]
            if any(all(start + k in positions for k, positions in enumerate(later, 1)) for start in first):
                found.add(docnum)
        return found

    def _Term(self, q: query.Term) -> DocSet:  # noqa: N802
        return set(term_docs(self.reader, q.fieldname, q.text))

    def _And(self, q: query.And) -> DocSet:  # noqa: N802
        positive = [c for c in q.subqueries if not isinstance(c, query.Not)]
        negative = [c.query for c in q.subqueries if isinstance(c, query.Not)]
        if positive:
            sets = sorted((self.docs(c) for c in positive), key=len)
            found = set(sets[0])
            for other in sets[1:]:
                found &= other
        else:
            found = set(self.all_docs())
        for c in negative:
            if not found:
                break
            found -= self.docs(c)
        return found

    def _Or(self, q: query.Or) -> DocSet:  # noqa: N802
        found: DocSet = set()
        for c in q.subqueries:
            found |= self.docs(c)
        return found

    _DisjunctionMax = _Or

    def _Not(self, q: query.Not) -> DocSet:  # noqa: N802
        return self.all_docs() - self.docs(q.query)

    def _Require(self, q: query.Require) -> DocSet:  # noqa: N802
        return self.docs(q.a) & self.docs(q.b)

    def _AndMaybe(self, q: query.AndMaybe) -> DocSet:  # noqa: N802
        return self.docs(q.a)

    def _AndNot(self, q: query.AndNot) -> DocSet:  # noqa: N802
        return self.docs(q.a) - self.docs(q.b)

    def _Every(self, q: query.Every) -> DocSet:  # noqa: N802
        if q.fieldname in (None, "", "*"):
            return set(self.all_docs())
        return _union(self.reader, q.fieldname, self.reader.lexicon(q.fieldname))


def log_id_column(reader: Any) -> Callable[[int], int]:
    """docnum -> log_id for one segment, read in one go when the column allows it."""
    column = reader.column_reader("log_id", translate=False)
    field = reader.schema["log_id"]
    raw = getattr(column, "_dbfile", None)
    typecode = getattr(column, "_typecode", None)
    if raw is not None and typecode == "Q":
        count = reader.doc_count_all()
        values = array("Q")
        values.frombytes(raw.get(column._basepos, count * values.itemsize))
        if sys.byteorder == "little":
            values.byteswap()  # whoosh writes columns big-endian
        convert = field.from_column_value
        first = convert(values[0]) if count else 0
        offset = values[0] - first if count else 0
        return lambda docnum: values[docnum] - offset
    translated = reader.column_reader("log_id")
    return translated.__getitem__
