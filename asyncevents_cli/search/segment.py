"""whoosh's segment format, written in bulk and read a block at a time: the only
module of `ae` that touches whoosh's private names (`PRIVATE_NAMES` and
`INSTANCE_NAMES` list them; tests/unit/test_search_segment.py checks each, and
compares what is written and read here with whoosh's own writer and reader).

whoosh's own `SegmentWriter.add_document` puts every posting in a sorting pool
as a 5-tuple, then `FieldWriter.add_postings` replays them one at a time
through `start_term`/`add`/`finish_term` and the postings writer, which checks
and pickles each term separately: several Python calls per posting and about
twenty per term, most of the time of a build (see bench/RESULTS.md, Search).

`BulkWriter` keeps the postings of the documents it is given grouped by field
and term as they arrive (the terms come from `analysis`, already built), and
at commit writes each term's posting blocks and its entry in the term table
directly, in whoosh 3's file format (as `W3PostingsWriter` and
`OrderedHashWriter` write it), so whoosh's readers, merges and queries work
unchanged: tests/unit/test_search_segment.py reads every term and posting back and
compares them with whoosh's own writer's. (One difference: the encoded
position of a word that occurs once is one shared bytes object, which pickle
writes once per block, so the postings file is smaller.)

It is a `SegmentWriter` for everything else (locking, per-document columns,
deletions, merging older segments, the table of contents). When a merge put
postings of older segments in the pool, this writer's postings join them there
and whoosh writes the segment its own way. Reading: `term_docs` and
`term_positions` read whole posting blocks, `log_id_column` the raw column.
"""

from __future__ import annotations

import re
import sys
from array import array
from collections.abc import Callable
from hashlib import md5
from pickle import dumps
from typing import Any

from whoosh import fields, query
from whoosh.codec.whoosh3 import W3LeafMatcher, W3TermInfo
from whoosh.index import FileIndex
from whoosh.matching.wrappers import FilterMatcher
from whoosh.reading import TermNotFound
from whoosh.system import emptybytes, pack_int, pack_long, pack_ushort
from whoosh.writing import SegmentWriter

from .fieldterms import NO_LENGTH, PICKLE, positions_value, posting_blocks, term_maker

# Every private whoosh name this module relies on, as (owner, name): the
# format-compatibility test (tests/unit/test_search_segment.py) checks each exists,
# naming the one that moved, and compares what this module writes and reads with
# whoosh's own writer and reader.
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

# One term's postings: document numbers, and for positional fields also
# frequencies and encoded positions.
Postings = list[Any]


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
    with 4 numeric terms per value instead of 8."""

    def __init__(self) -> None:
        super().__init__()
        self.shift_step = 16

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


def inline_terminfo(ids: list[int], freqs: list[int] | None, values: list[bytes] | None) -> bytes:
    """A rare term's entry in the term table, its postings inline (as whoosh's `W3TermInfo` reads them)."""
    count = len(ids)
    weight_list = [1.0] * count if freqs is None else [float(f) for f in freqs]
    terminfo = W3TermInfo._struct.pack(
        True, sum(weight_list), count, NO_LENGTH, NO_LENGTH, max(weight_list), ids[0], ids[-1]
    )
    # Empty values as b"" (not none at all), or whoosh's merge reads them back as "".
    return terminfo + dumps((tuple(ids), tuple(weight_list), tuple(values or (emptybytes,) * count)), PICKLE)


class BulkWriter(SegmentWriter):
    """`add_terms(**doc)` instead of `add_document(**doc)`: see the module docstring.

    A document maps field names to: for `TermsField`s with positions, {term: [positions]};
    for `TermsField`s without, a set of terms; for whoosh's own field types, a value
    their `index()` turns into terms."""

    def __init__(self, ix: Any, merge_below: int = 2_500, **kwargs: Any) -> None:
        super().__init__(ix, **kwargs)
        self.merge_below = merge_below  # see merge_small_segments
        # field -> {term: [docnum, ...]}, or for positional fields
        # {term: [docnum, frequency, encoded positions, docnum, ...]}: one flat list
        # per term, as most terms occur in one document and a list costs 56 bytes.
        self._plain: dict[str, dict[Any, list[int]]] = {}
        self._positional: dict[str, dict[str, list[Any]]] = {}
        self._term_makers: dict[str, Callable[[Any], list[bytes]]] = {}

    def add_terms(self, **doc: Any) -> None:
        self._check_state()
        schema = self.schema
        perdoc = self.perdocwriter
        docnum = self.docnum
        perdoc.start_doc(docnum)
        for name, value in doc.items():
            if value is None:
                continue
            field = schema[name]
            length = 0
            if getattr(field, "prebuilt_terms", False):  # a TermsField (see index)
                if isinstance(value, dict):
                    table = self._positional.setdefault(name, {})
                    for term, positions in value.items():
                        entry = table.get(term)
                        if entry is None:
                            table[term] = [docnum, len(positions), positions_value(positions)]
                        else:
                            entry += (docnum, len(positions), positions_value(positions))
                        length += len(positions)
                else:
                    plain = self._plain.setdefault(name, {})
                    for term in value:
                        ids = plain.get(term)
                        if ids is None:
                            plain[term] = [docnum]
                        else:
                            ids.append(docnum)
                    length = len(value)
            else:
                make = self._term_makers.get(name)
                if make is None:
                    make = self._term_makers[name] = term_maker(field)
                terms = make(value)
                plain = self._plain.setdefault(name, {})
                for tbytes in terms:
                    ids = plain.get(tbytes)
                    if ids is None:
                        plain[tbytes] = [docnum]
                    elif ids[-1] != docnum:
                        ids.append(docnum)
                    length += 1
                if field.column_type:
                    perdoc.add_column_value(name, field.column_type, field.to_column_value(value))
            if field.scorable or field.stored:  # a length column, or a stored value
                perdoc.add_field(name, field, value if field.stored else None, length if field.scorable else 0)
        perdoc.finish_doc()
        self._added = True
        self.docnum += 1

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
        pool = self.pool
        if pool.current or pool.runs:  # a merge added older postings: whoosh writes them all
            self._into_pool()
            super()._flush_segment()
            return
        self.perdocwriter.close()
        names = sorted(set(self._plain) | set(self._positional))
        for name in names:
            self._write_field(name)
        self.fieldwriter.close()

    def add_postings_to_pool(self, reader: Any, startdoc: int, docmap: dict[int, int] | None) -> None:
        """A merged segment's postings (`add_reader`): into this writer's tables, read a
        block at a time, instead of whoosh's pool one posting at a time."""
        for name in reader.indexed_field_names():
            if name not in self.schema:
                continue
            field = self.schema[name]
            positional = field.format.supports("positions")
            table: dict[Any, list[Any]] = (self._positional if positional else self._plain).setdefault(name, {})
            # Keys as the documents added to this writer have them: str for analysed words.
            as_text = bool(table) and not isinstance(next(iter(table)), bytes)
            renumber = (lambda d: docmap[d]) if docmap is not None else (lambda d: startdoc + d)
            for btext in reader.lexicon(name):
                key = btext.decode("utf-8") if as_text else btext
                entry = table.get(key)
                if positional:
                    found = term_positions(reader, name, btext)
                    if not found:
                        continue
                    if entry is None:
                        entry = table[key] = []
                    for docnum in sorted(found):
                        value = found[docnum]
                        entry += (renumber(docnum), int.from_bytes(value[:4], "big"), value)  # count, as encoded
                else:
                    ids = term_docs(reader, name, btext)
                    if not ids:
                        continue
                    if entry is None:
                        entry = table[key] = []
                    entry.extend(map(renumber, ids))

    def _into_pool(self) -> None:
        add = self.pool.add
        for name, plain in self._plain.items():
            for term, ids in plain.items():
                tbytes = term if isinstance(term, bytes) else term.encode("utf-8")
                for docnum in ids:
                    add((name, tbytes, docnum, 1.0, emptybytes))
        for name, table in self._positional.items():
            for term, entry in table.items():
                tbytes = term.encode("utf-8")
                for docnum, freq, value in zip(entry[0::3], entry[1::3], entry[2::3]):
                    add((name, tbytes, docnum, float(freq), value))
        self._plain.clear()
        self._positional.clear()

    def _write_field(self, name: str) -> None:
        writer = self.fieldwriter
        field = self.schema[name]
        writer.start_field(name, field)  # registers the field's number in the term table
        key_prefix = pack_ushort(writer._fieldid)
        postfile = writer._postfile
        tindex = writer._tindex
        codec = self.codec
        block_limit, compression = codec._blocklimit, codec._compression
        # A field's terms are all str or all bytes; sorted str is sorted UTF-8.
        with_positions = name in self._positional
        table: dict[Any, list[Any]] = self._positional[name] if with_positions else self._plain[name]
        fixed_values = field.format.fixed_value_size() == 0
        if not with_positions and not fixed_values:
            raise ValueError(f"field {name!r} stores values per posting: add it with positions")

        posts = bytearray()
        post_base = postfile.tell()
        terms = bytearray()
        term_base = tindex.dbfile.tell()
        buckets = tindex.buckets
        index_positions: list[int] = []  # each term's place in the term table, in order
        last_key = tindex.lastkey
        for term in sorted(table):
            entry = table[term]
            tbytes = term if isinstance(term, bytes) else term.encode("utf-8")
            if with_positions:
                ids, freqs, values = entry[0::3], entry[1::3], entry[2::3]
            else:
                ids, freqs, values = entry, None, None
            count = len(ids)
            if count <= INLINE_LIMIT:
                # A rare term: its postings go in the term table, not the postings file,
                # as whoosh's `inlinelimit` would (which whoosh-reloaded 2.7.5 fails on).
                terminfo = inline_terminfo(ids, freqs, values)
            else:
                start = post_base + len(posts)
                blocks, total_weight, max_weight = posting_blocks(
                    ids, freqs, None if fixed_values else values, block_limit, compression
                )
                posts += blocks
                terminfo = W3TermInfo._struct.pack(
                    False, total_weight, count, NO_LENGTH, NO_LENGTH, max_weight, ids[0], ids[-1]
                )
                terminfo += pack_long(start) + pack_int(post_base + len(posts) - start)
            key = key_prefix + tbytes
            if key <= last_key:
                raise ValueError(f"terms out of order: {last_key!r}..{key!r}")
            position = term_base + len(terms)
            index_positions.append(position)
            terms += LENGTH_PAIR.pack(len(key), len(terminfo))
            terms += key
            terms += terminfo
            h = int.from_bytes(md5(key, usedforsecurity=False).digest()[12:], "big")  # filetables.md5_hash
            buckets[h & 255].append((h, position))
            last_key = key
            if len(posts) > 1 << 20:
                postfile.write(posts)
                post_base += len(posts)
                posts.clear()
            if len(terms) > 1 << 20:
                tindex.dbfile.write(terms)
                term_base += len(terms)
                terms.clear()
        postfile.write(posts)
        tindex.dbfile.write(terms)
        tindex.lastkey = last_key
        tindex.index.extend(index_positions)
        table.clear()  # written: free it before the next field's
        writer.finish_field()
