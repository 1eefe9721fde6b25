"""The postings of the documents a `segment.BulkWriter` is given, grouped by field
and term as they arrive: plain Python (whoosh's private names are in `segment`).

Per field, one table: {term: [docnum, ...]} for a field without positions, or
{term: [docnum, frequency, encoded positions, docnum, ...]} for a positional
one. One flat list per term, because most terms occur in one document and a
list costs 56 bytes.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from whoosh.system import emptybytes

from .fieldterms import positions_value

Table = dict[Any, list[Any]]
# (field, term, docnum, weight, value): a posting as whoosh's sorting pool takes it.
PoolPosting = tuple[str, bytes, int, float, bytes]
# One segment's terms in order, each with {docnum: encoded positions or None}.
SegmentTerms = Iterator[tuple[bytes, dict[int, Any]]]
Renumber = Callable[[int], int]


class PostingTables:
    """The postings of one segment being written, by field and term."""

    def __init__(self) -> None:
        self.plain: dict[str, Table] = {}
        self.positional: dict[str, Table] = {}

    def add_positions(self, name: str, docnum: int, terms: dict[str, list[int]]) -> int:
        """One document's {term: [positions]} in a positional field; return its length (positions)."""
        table = self.positional.setdefault(name, {})
        length = 0
        for term, positions in terms.items():
            entry = table.get(term)
            if entry is None:
                table[term] = [docnum, len(positions), positions_value(positions)]
            else:
                entry += (docnum, len(positions), positions_value(positions))
            length += len(positions)
        return length

    def add_terms(self, name: str, docnum: int, terms: Iterable[Any]) -> int:
        """One document's terms in a field without positions (a term twice counts once);
        return how many terms were given."""
        table = self.plain.setdefault(name, {})
        length = 0
        for term in terms:
            ids = table.get(term)
            if ids is None:
                table[term] = [docnum]
            elif ids[-1] != docnum:
                ids.append(docnum)
            length += 1
        return length

    def table(self, name: str, positional: bool) -> Table:
        """The table of one field, created empty if need be (a merge adds to it)."""
        return (self.positional if positional else self.plain).setdefault(name, {})

    def field_names(self) -> list[str]:
        return sorted(set(self.plain) | set(self.positional))

    def pop(self, name: str) -> tuple[Table, bool]:
        """A field's table, and whether it has positions; the writer frees it once written."""
        if name in self.positional:
            return self.positional.pop(name), True
        return self.plain.pop(name), False

    def drain(self) -> Iterator[PoolPosting]:
        """Every posting, as whoosh's pool takes them, emptying the tables."""
        for name, plain in self.plain.items():
            for term, ids in plain.items():
                tbytes = term if isinstance(term, bytes) else term.encode("utf-8")
                for docnum in ids:
                    yield name, tbytes, docnum, 1.0, emptybytes
        for name, table in self.positional.items():
            for term, entry in table.items():
                tbytes = term.encode("utf-8")
                for docnum, freq, value in zip(entry[0::3], entry[1::3], entry[2::3]):
                    yield name, tbytes, docnum, float(freq), value
        self.plain.clear()
        self.positional.clear()


def renumbering(first: int, docmap: dict[int, int] | None) -> Renumber:
    """A merged segment's docnum -> the merged one, as whoosh's `add_reader` numbers them:
    through its docmap when the segment has deletions, else counting on from `first`."""
    if docmap is not None:
        return docmap.__getitem__
    return lambda docnum: first + docnum


def entry_of(found: dict[int, Any], renumber: Renumber, positional: bool) -> list[Any]:
    """One segment's postings of a term, renumbered, as a table entry (see the module docstring)."""
    if not positional:
        return [renumber(docnum) for docnum in sorted(found)]
    # docnum, count (as the encoded positions start), encoded positions
    return [p for d in sorted(found) for p in (renumber(d), int.from_bytes(found[d][:4], "big"), found[d])]


def _tagged(terms: SegmentTerms, k: int) -> Iterator[tuple[bytes, int, dict[int, Any]]]:
    for btext, found in terms:
        yield btext, k, found


def merged_entries(
    segments: list[tuple[SegmentTerms, Renumber]], positional: bool
) -> Iterator[tuple[bytes, list[Any]]]:
    """The terms of several segments in one order, each with its postings from every
    segment (renumbered, in segment order, so in docnum order) as one table entry:
    a merge holds one term's postings at a time."""
    streams = [_tagged(terms, k) for k, (terms, _) in enumerate(segments)]
    current = b""
    entry: list[Any] = []
    for btext, k, found in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
        if btext != current and entry:
            yield current, entry
            entry = []
        current = btext
        entry += entry_of(found, segments[k][1], positional)
    if entry:
        yield current, entry
