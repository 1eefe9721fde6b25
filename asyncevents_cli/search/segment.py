"""whoosh's segment format, written in bulk and read a block at a time: the only
module of `ae` that touches whoosh's private names (`PRIVATE_NAMES`,
`INSTANCE_NAMES`). tests/unit/test_search_format.py checks each name, naming the one
that moved, and has whoosh's own public searcher read what is written here.

whoosh's `SegmentWriter.add_document` replays every posting through a sorting
pool and several Python calls per posting (most of a build's time). `BulkWriter`
takes ready-made terms (`analysis`), keeps them by field and term
(`postings.PostingTables`) and at commit writes each term's posting blocks and
term table entry itself, in whoosh 3's format (`TermTable`); whoosh does the
rest (locking, columns, deletions, the table of contents). `merge_all` merges
every segment into one a term at a time, holding one term's postings at once.
Reading: `term_docs` and `term_positions` read whole posting blocks,
`log_id_column` the raw column.
"""

from __future__ import annotations

import re
import sys
from array import array
from collections.abc import Callable, Iterator
from hashlib import md5
from pickle import dumps
from typing import Any

from whoosh import fields, query
from whoosh.codec.whoosh3 import W3LeafMatcher, W3TermInfo
from whoosh.index import FileIndex
from whoosh.matching.wrappers import FilterMatcher
from whoosh.reading import SegmentReader, TermNotFound
from whoosh.system import emptybytes, pack_int, pack_long, pack_ushort
from whoosh.writing import SegmentWriter

from .fieldterms import NO_LENGTH, PICKLE, posting_blocks, term_maker
from .postings import PostingTables, entry_of, merged_entries, renumbering

# Every private whoosh name this module relies on, as (owner, name).
PRIVATE_NAMES: tuple[tuple[Any, str], ...] = (
    (SegmentWriter, "_check_state"),
    (SegmentWriter, "_flush_segment"),
    (SegmentWriter, "_close_segment"),
    (SegmentWriter, "_commit_toc"),
    (SegmentWriter, "_finish"),
    (W3TermInfo, "_struct"),
    (W3LeafMatcher, "_read_ids"),
    (W3LeafMatcher, "_read_values"),
    (W3LeafMatcher, "_next_block"),
    (fields.DATETIME, "_parse_datestring"),
    (query.NumericRange, "_compile_query"),
    (query.MultiTerm, "_btexts"),
    (FileIndex, "_read_toc"),
)
# Attributes whoosh sets on its objects, which the test checks on live ones:
# the postings matcher's block, the field writer's files, the codec's settings and
# the log_id column reader's raw file.
INSTANCE_NAMES = {
    "W3LeafMatcher": ("_ids", "_i", "_values"),
    "W3FieldWriter": ("_postfile", "_tindex", "_fieldid"),
    "W3Codec": ("_blocklimit", "_compression"),
    "CompactIntColumn reader": ("_dbfile", "_typecode", "_basepos"),
}

LENGTH_PAIR = __import__("struct").Struct("!ii")  # OrderedHashWriter's key/value length prefix
# Terms in at most this many documents of a segment keep their postings in the
# term table: most terms (an order number, an email) are in one document, and a
# posting list of its own costs a header, two pickles and a seek to read.
INLINE_LIMIT = 2


def read_toc(ix: Any) -> None:
    """Read an index's table of contents (its segment list): garbage fails here."""
    ix._read_toc()


def compiled_range(q: query.NumericRange, reader: Any) -> query.Query:
    """A numeric or date range as the term ranges whoosh would search."""
    return q._compile_query(reader)


def range_terms(q: query.MultiTerm, reader: Any) -> Any:
    """The terms a prefix, wildcard or term range expands to in one segment."""
    return q._btexts(reader)


class CreatedField(fields.DATETIME):
    """DATETIME that also reads ISO forms people type (2026-01-31T10:00:00Z, 2026-01-31 10:00),
    kept as a column only: `matching` compares it (every attempt has its own time, so
    its terms were two unique terms per attempt, a sixth of the term table)."""

    def __init__(self) -> None:
        super().__init__(sortable=True)
        self.indexed = False

    def _parse_datestring(self, qstring: str) -> Any:
        return super()._parse_datestring(re.sub(r"[TtZz:]", "", qstring))


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


def column_values(reader: Any, name: str) -> Any:
    """A numeric column's raw values for one segment (docnum -> value), read in one go when it allows."""
    column = reader.column_reader(name, translate=False)
    raw, typecode = getattr(column, "_dbfile", None), getattr(column, "_typecode", None)
    if raw is None or typecode != "Q":
        return column.load()
    values = array("Q")
    values.frombytes(raw.get(column._basepos, reader.doc_count_all() * values.itemsize))
    if sys.byteorder == "little":
        values.byteswap()  # whoosh writes columns big-endian
    return values


def log_id_column(reader: Any) -> Callable[[int], int]:
    """docnum -> log_id for one segment."""
    values = column_values(reader, "log_id")
    offset = values[0] - reader.schema["log_id"].from_column_value(values[0]) if len(values) else 0
    return lambda docnum: values[docnum] - offset


def term_entry(
    entry: list[Any], with_positions: bool, fixed_values: bool, post_at: int, block_limit: int, compression: int
) -> tuple[bytes, bytes]:
    """One term's entry in the term table, and its posting blocks, which are to start
    at `post_at` in the postings file. A rare term's postings go in its entry instead,
    as whoosh's `inlinelimit` would put them (which whoosh-reloaded 2.7.5 fails on)."""
    ids, freqs, values = (entry[0::3], entry[1::3], entry[2::3]) if with_positions else (entry, None, None)
    count = len(ids)
    if count > INLINE_LIMIT:
        blocks, total, top = posting_blocks(ids, freqs, None if fixed_values else values, block_limit, compression)
        terminfo = W3TermInfo._struct.pack(False, total, count, NO_LENGTH, NO_LENGTH, top, ids[0], ids[-1])
        return terminfo + pack_long(post_at) + pack_int(len(blocks)), bytes(blocks)
    # Weights (a word's frequency) as whole numbers: pickle spells 1 in 2 bytes and
    # 1.0 in 9, in nearly every rare term's entry (whoosh only sums and compares them).
    weights = [1] * count if freqs is None else list(freqs)
    terminfo = W3TermInfo._struct.pack(True, sum(weights), count, NO_LENGTH, NO_LENGTH, max(weights), ids[0], ids[-1])
    # Empty values as b"" (not none at all), or whoosh's merge reads them back as "".
    return terminfo + dumps((tuple(ids), tuple(weights), tuple(values or (emptybytes,) * count)), PICKLE), b""


class BulkWriter(SegmentWriter):
    """`add_terms(**doc)` instead of `add_document(**doc)`: see the module docstring.

    A document maps field names to: for `TermsField`s with positions, {term: [positions]};
    for `TermsField`s without, a set of terms; for whoosh's own field types, a value
    their `index()` turns into terms."""

    def __init__(self, ix: Any, merge_below: int = 2_500, **kwargs: Any) -> None:
        super().__init__(ix, **kwargs)
        self.merge_below = merge_below  # see merge_small_segments
        self.postings = PostingTables()
        # With `merge_all`: the (segment, first docnum, docmap) of each segment to merge.
        self.streamed: list[tuple[Any, int, dict[int, int] | None]] | None = None
        self._term_makers: dict[str, Callable[[Any], list[bytes]]] = {}

    def add_terms(self, **doc: Any) -> None:
        self._check_state()
        perdoc = self.perdocwriter
        docnum = self.docnum
        perdoc.start_doc(docnum)
        for name, value in doc.items():
            if value is not None:
                self._add_field(perdoc, docnum, name, value)
        perdoc.finish_doc()
        self._added = True
        self.docnum += 1

    def _add_field(self, perdoc: Any, docnum: int, name: str, value: Any) -> None:
        field = self.schema[name]
        if getattr(field, "prebuilt_terms", False):  # a documents.TermsField
            if isinstance(value, dict):
                length = self.postings.add_positions(name, docnum, value)
            else:
                length = self.postings.add_terms(name, docnum, value)
        else:
            make = self._term_makers.get(name)
            if make is None:
                make = self._term_makers[name] = term_maker(field) if field.indexed else lambda value: []
            length = self.postings.add_terms(name, docnum, make(value))
            if field.column_type:
                perdoc.add_column_value(name, field.column_type, field.to_column_value(value))
        if field.scorable or field.stored:  # a length column, or a stored value
            perdoc.add_field(name, field, value if field.stored else None, length if field.scorable else 0)

    # -- writing the segment ------------------------------------------------

    def finish_segment(self) -> Any:
        """Write this writer's segment without committing it: a worker's part of a
        build (see `parallel`); the parent commits it with `commit_segments`."""
        self._check_state()
        self._flush_segment()
        self._close_segment()
        self.is_closed = True  # the temporary folder is the parent writer's to remove
        return self.get_segment()

    def commit_segments(self, segments: list[Any]) -> None:
        """Commit segments written by workers after the index's own, adding nothing itself."""
        self._check_state()
        self._close_segment()
        self._commit_toc([*self.segments, *segments])
        self._finish()

    def _flush_segment(self) -> None:
        if self.streamed is not None:
            self.perdocwriter.close()
            self._write_merged()
            self.fieldwriter.close()
            return
        pool = self.pool
        if pool.current or pool.runs:  # a merge added older postings: whoosh writes them all
            for posting in self.postings.drain():
                pool.add(posting)
            super()._flush_segment()
            return
        self.perdocwriter.close()
        for name in self.postings.field_names():
            self._write_field(name)
        self.fieldwriter.close()

    def add_postings_to_pool(self, reader: Any, startdoc: int, docmap: dict[int, int] | None) -> None:
        """A merged segment's postings (`add_reader`): into this writer's tables, read a
        block at a time, instead of whoosh's pool one posting at a time."""
        if self.streamed is not None:  # merge_all: read at flush, a term at a time
            self.streamed.append((reader.segment(), startdoc, docmap))
            return
        renumber = renumbering(startdoc, docmap)
        for name in reader.indexed_field_names():
            if name not in self.schema:
                continue
            positional = self.schema[name].format.supports("positions")
            table = self.postings.table(name, positional)
            # Keys as the documents added to this writer have them: str for analysed words.
            as_text = bool(table) and not isinstance(next(iter(table)), bytes)
            for btext, found in live_postings(reader, name, positional):
                key = btext.decode("utf-8") if as_text else btext
                table.setdefault(key, []).extend(entry_of(found, renumber, positional))

    def _write_field(self, name: str) -> None:
        table, with_positions = self.postings.pop(name)
        out = TermTable(self, name, with_positions)
        for term in sorted(table):  # a field's terms are all str or all bytes; sorted str is sorted UTF-8
            out.add(term if isinstance(term, bytes) else term.encode("utf-8"), table[term])
        out.finish()

    # -- merging every segment into one, a term at a time --------------------

    def merge_all(self) -> None:
        """Commit the index's segments merged into one (whoosh's `optimize`), adding
        nothing itself: the per-document columns are copied by whoosh, the postings
        streamed term by term from every segment at once (`merged_postings`), so a
        merge holds one term's postings at a time, not the index's."""
        self.streamed = []
        self.commit(optimize=True)

    def _write_merged(self) -> None:
        readers = [SegmentReader(self.storage, self.schema, segment) for segment, _, _ in self.streamed or ()]
        renumbers = [renumbering(base, docmap) for _, base, docmap in self.streamed or ()]
        try:
            names = {name for reader in readers for name in reader.indexed_field_names() if name in self.schema}
            for name in sorted(names):
                positional = self.schema[name].format.supports("positions")
                out = TermTable(self, name, positional)
                segments = [live_postings(reader, name, positional) for reader in readers]
                for tbytes, entry in merged_entries(list(zip(segments, renumbers)), positional):
                    out.add(tbytes, entry)
                out.finish()
        finally:
            for reader in readers:
                reader.close()


def live_postings(reader: Any, name: str, positional: bool) -> Iterator[tuple[bytes, dict[int, Any]]]:
    """Each term of field `name` in one segment, in order, with its live postings:
    {docnum: encoded positions} for a positional field, else {docnum: None}."""
    deletions = reader.has_deletions()
    for btext, info in reader.iter_field(name, b""):  # b"": from the first term, whatever the field's type
        if info.is_inlined():
            ids, _, values = info.inlined_postings()
            found = dict(zip(ids, values)) if positional else dict.fromkeys(ids)
            if deletions:
                found = {docnum: value for docnum, value in found.items() if not reader.is_deleted(docnum)}
        elif positional:
            found = term_positions(reader, name, btext)
        else:
            found = dict.fromkeys(term_docs(reader, name, btext))
        if found:
            yield btext, found


class TermTable:
    """One field's terms, added in order with their postings, written in whoosh 3's
    format (as `W3PostingsWriter` and `OrderedHashWriter` write it), in 1 MB pieces."""

    def __init__(self, writer: BulkWriter, name: str, with_positions: bool) -> None:
        field = writer.schema[name]
        self.fieldwriter = writer.fieldwriter
        self.fieldwriter.start_field(name, field)  # registers the field's number in the term table
        self.key_prefix = pack_ushort(self.fieldwriter._fieldid)
        self.postfile, self.tindex = self.fieldwriter._postfile, self.fieldwriter._tindex
        self.block_limit, self.compression = writer.codec._blocklimit, writer.codec._compression
        self.with_positions = with_positions
        self.fixed_values = field.format.fixed_value_size() == 0
        if not with_positions and not self.fixed_values:
            raise ValueError(f"field {name!r} stores values per posting: add it with positions")
        self.posts, self.post_base = bytearray(), self.postfile.tell()
        self.terms, self.term_base = bytearray(), self.tindex.dbfile.tell()
        self.index_positions: list[int] = []  # each term's place in the term table, in order
        self.last_key = self.tindex.lastkey

    def add(self, tbytes: bytes, entry: list[Any]) -> None:
        posts, terms = self.posts, self.terms
        terminfo, blocks = term_entry(
            entry,
            self.with_positions,
            self.fixed_values,
            self.post_base + len(posts),
            self.block_limit,
            self.compression,
        )
        posts += blocks
        key = self.key_prefix + tbytes
        if key <= self.last_key:
            raise ValueError(f"terms out of order: {self.last_key!r}..{key!r}")
        position = self.term_base + len(terms)
        self.index_positions.append(position)
        terms += LENGTH_PAIR.pack(len(key), len(terminfo))
        terms += key
        terms += terminfo
        h = int.from_bytes(md5(key, usedforsecurity=False).digest()[12:], "big")  # filetables.md5_hash
        self.tindex.buckets[h & 255].append((h, position))
        self.last_key = key
        if len(posts) > 1 << 20:
            self._write()

    def _write(self) -> None:
        self.postfile.write(self.posts)
        self.post_base += len(self.posts)
        self.posts.clear()
        self.tindex.dbfile.write(self.terms)
        self.term_base += len(self.terms)
        self.terms.clear()

    def finish(self) -> None:
        self._write()
        self.tindex.lastkey = self.last_key
        self.tindex.index.extend(self.index_positions)
        self.fieldwriter.finish_field()
