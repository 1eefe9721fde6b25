"""The postings of the documents a `segment.BulkWriter` is given, grouped by field
and term as they arrive: plain Python (whoosh's private names are in `segment`).

Per field, one table: {term: [docnum, ...]} for a field without positions, or
{term: [docnum, frequency, encoded positions, docnum, ...]} for a positional
one. One flat list per term, because most terms occur in one document and a
list costs 56 bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from whoosh.system import emptybytes

from .fieldterms import positions_value

Table = dict[Any, list[Any]]
# (field, term, docnum, weight, value): a posting as whoosh's sorting pool takes it.
PoolPosting = tuple[str, bytes, int, float, bytes]


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
