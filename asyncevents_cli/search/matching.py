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

import fnmatch
import re
from collections.abc import Callable, Iterable
from typing import Any

from whoosh import query

from .analysis import phrase_matches, word_terms
from .pathqueries import AnyPathPhrase, AtPath
from .segment import column_values, compiled_range, range_terms, term_docs, term_positions

DocSet = set[int]


def _union(reader: Any, fieldname: str, btexts: Iterable[Any]) -> DocSet:
    found: DocSet = set()
    for btext in btexts:
        found.update(term_docs(reader, fieldname, btext))
    return found


def column_term_test(q: query.Query, field: Any) -> Callable[[bytes], bool] | None:
    """Whether a document's one term (here, a column value) is one `q` expands to, as
    whoosh expands a term, prefix, wildcard or term range over a field's terms."""
    if isinstance(q, query.Every):
        return lambda value: True
    if isinstance(q, query.Term):
        wanted = field.to_bytes(q.text)
        return lambda value: value == wanted
    if isinstance(q, query.Prefix):
        prefix = field.to_bytes(q.text)
        return lambda value: value.startswith(prefix)
    if isinstance(q, query.Wildcard):
        pattern = re.compile(fnmatch.translate(q.text))
        return lambda value: bool(pattern.match(value.decode("utf-8")))
    if isinstance(q, query.TermRange):  # TermRange._btexts' bounds
        start = b"" if q.start is None else field.to_bytes(q.start)
        end = b"\xff\xff\xff\xff" if q.end is None else field.to_bytes(q.end)
        startexcl, endexcl = q.startexcl, q.endexcl
        return lambda value: (
            (start < value or (value == start and not startexcl)) and (value < end or (value == end and not endexcl))
        )
    return None


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
        if getattr(q, "fieldname", None) == "created":  # a column, not terms (documents.build_schema)
            return self._created(q)
        if getattr(q, "fieldname", None) == "uuid":  # likewise
            return self._uuid(q)
        method: Callable[[Any], DocSet] | None = getattr(self, "_" + type(q).__name__, None)
        if method is not None:
            return method(q)
        if isinstance(q, query.NumericRange):  # DateRange too
            return self.docs(compiled_range(q, self.reader))
        if isinstance(q, query.MultiTerm):  # Prefix, Wildcard, TermRange, ...
            return _union(self.reader, q.fieldname, range_terms(q, self.reader))
        return set(q.docs(self.searcher))  # phrases and anything else: whoosh's own matching

    def _created(self, q: query.Query) -> DocSet:
        """A query on `created`, answered from its column as its numeric terms would
        answer it (whoosh's tiered ranges cover exactly [start, end], less excluded ends)."""
        field = self.reader.schema["created"]
        if isinstance(q, query.Every):
            return set(self.all_docs())
        if isinstance(q, query.Term):  # a full timestamp (the parser reads partial dates as ranges)
            low = high = field.prepare_number(q.text)
        elif isinstance(q, query.NumericRange):
            low = None if q.start is None else field.prepare_number(q.start) + q.startexcl
            high = None if q.end is None else field.prepare_number(q.end) - q.endexcl
        else:
            return set(q.docs(self.searcher))  # anything else: whoosh's own matching
        values = column_values(self.reader, "created")
        return {
            docnum
            for docnum in self.all_docs()
            if (low is None or values[docnum] >= low) and (high is None or values[docnum] <= high)
        }

    def _uuid(self, q: query.Query) -> DocSet:
        """A query on `uuid`, answered from its column as its one term would answer it."""
        test = column_term_test(q, self.reader.schema["uuid"])
        if test is None:
            return set(q.docs(self.searcher))  # anything else: whoosh's own matching
        values = self.reader.column_reader("uuid", translate=False)
        return {docnum for docnum in self.all_docs() if test(values[docnum])}

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

    def _AtPath(self, q: AtPath) -> DocSet:  # noqa: N802
        return _union(self.reader, q.fieldname, filter(q.at_path, range_terms(q.inner, self.reader)))

    def _AnyPathPhrase(self, q: AnyPathPhrase) -> DocSet:  # noqa: N802
        """Bare words in order: each word's encoded positions at every path it is at, for
        the documents holding every word, then their positions compared."""
        postings: list[dict[int, list[bytes]]] = []
        for word in q.words:
            held: dict[int, list[bytes]] = {}
            for btext in range_terms(query.Prefix(q.fieldname, word_terms(word)), self.reader):
                for docnum, value in term_positions(self.reader, q.fieldname, btext).items():
                    held.setdefault(docnum, []).append(value)
            if not held:
                return set()
            postings.append(held)
        smallest = min(postings, key=len)
        candidates: DocSet = set(smallest)
        for held in postings:
            candidates.intersection_update(held)
        decode = self.reader.schema[q.fieldname].format.decode_positions
        return {
            docnum
            for docnum in candidates
            if phrase_matches([[p for value in held[docnum] for p in decode(value)] for held in postings], q.slop)
        }

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
