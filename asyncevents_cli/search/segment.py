"""A whoosh segment writer that takes ready-made terms and writes them in bulk.

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
unchanged: tests/test_search_segment.py reads every term and posting back and
compares them with whoosh's own writer's. (One difference: the encoded
position of a word that occurs once is one shared bytes object, which pickle
writes once per block, so the postings file is smaller.)

It is a `SegmentWriter` for everything else (locking, per-document columns,
deletions, merging older segments, the table of contents). When a merge put
postings of older segments in the pool, this writer's postings join them there
and whoosh writes the segment its own way.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from hashlib import md5
from pickle import dumps
from typing import Any

from whoosh import fields
from whoosh.analysis import IDTokenizer, LowercaseFilter
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3TermInfo
from whoosh.system import emptybytes, pack_int, pack_long, pack_uint, pack_ushort
from whoosh.util.numeric import length_to_byte, to_sortable
from whoosh.writing import SegmentWriter

LENGTH_PAIR = __import__("struct").Struct("!ii")  # OrderedHashWriter's key/value length prefix
NO_LENGTH = length_to_byte(None)
# Terms in at most this many documents of a segment keep their postings in the
# term table: most terms (an order number, an email) are in one document, and a
# posting list of its own costs a header, two pickles and a seek to read.
INLINE_LIMIT = 2

# One term's postings: document numbers, and for positional fields also
# frequencies and encoded positions.
Postings = list[Any]


def encode_positions(positions: list[int]) -> bytes:
    """whoosh's `formats.Positions.encode`: a count, then the pickled deltas."""
    deltas = [positions[0]]
    deltas.extend(b - a for a, b in zip(positions, positions[1:]))
    return pack_uint(len(deltas)) + dumps(deltas, 2)


_single_position: dict[int, bytes] = {}


def _positions_value(positions: list[int]) -> bytes:
    if len(positions) == 1:  # most words occur once in a document: encode each position once per process
        p = positions[0]
        value = _single_position.get(p)
        if value is None:
            value = _single_position[p] = encode_positions(positions)
        return value
    return encode_positions(positions)


def numeric_terms(field: fields.NUMERIC, number: Any) -> list[bytes]:
    """What `field.index(number)` yields as terms, converting the number once, not once per tier."""
    if isinstance(field, fields.DATETIME):
        number = field.prepare_datetime(number)
    x = to_sortable(field.numtype, field.bits, field.signed, field.prepare_number(number))
    if not field.shift_step:
        return [field.sortable_to_bytes(x)]
    return [field.sortable_to_bytes(x, shift) for shift in range(0, field.bits, field.shift_step)]


MERGE_AT = 10  # small segments an index may hold before a commit merges some


def merge_small_segments(writer: Any, segments: list[Any]) -> list[Any]:
    """A merge policy (whoosh's `mergetype`) for catch-ups, which add one small segment each.

    Once MERGE_AT segments hold fewer than `writer.merge_below` documents, the
    smallest are merged into this commit's segment, up to `merge_below` documents
    in all. Larger segments (those of a build) are never merged: a merge holds its
    postings in memory, as a build does, and whoosh's own MERGE_SMALL would merge
    half of a 100,000-row index through its posting pool (96 s for one catch-up)."""
    from whoosh.reading import SegmentReader

    limit = writer.merge_below
    small = sorted((s for s in segments if s.doc_count_all() < limit), key=lambda s: s.doc_count_all())
    if len(small) < MERGE_AT:
        return segments
    taken: list[Any] = []
    total = 0
    for segment in small:
        if taken and total + segment.doc_count_all() > limit:
            break
        taken.append(segment)
        total += segment.doc_count_all()
    if len(taken) < 2:
        return segments
    for segment in taken:
        reader = SegmentReader(writer.storage, writer.schema, segment)
        writer.add_reader(reader)
        reader.close()
    return [s for s in segments if s not in taken]


def _is_keyword(field: fields.FieldType) -> bool:
    """An ID field analysed as one lowercased token (index.build_schema's uuid and event_name)."""
    items = getattr(field.analyzer, "items", ())
    return isinstance(field, fields.ID) and [type(i) for i in items] == [IDTokenizer, LowercaseFilter]


def term_maker(field: fields.FieldType) -> Callable[[Any], list[bytes]]:
    """value -> the terms `field.index(value)` yields, without whoosh's per-token objects where that is simple."""
    if isinstance(field, fields.NUMERIC):
        return lambda value: numeric_terms(field, value)
    if _is_keyword(field):
        return lambda value: [value.lower().encode("utf-8")]
    return lambda value: [tbytes for tbytes, _, _, _ in field.index(value)]


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
                            table[term] = [docnum, len(positions), _positions_value(positions)]
                        else:
                            entry += (docnum, len(positions), _positions_value(positions))
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
        from .matching import term_docs, term_positions

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
                weight_list = [1.0] * count if freqs is None else [float(f) for f in freqs]
                terminfo = W3TermInfo._struct.pack(
                    True, sum(weight_list), count, NO_LENGTH, NO_LENGTH, max(weight_list), ids[0], ids[-1]
                )
                # Empty values as b"" (not none at all), or whoosh's merge reads them back as "".
                terminfo += dumps((tuple(ids), tuple(weight_list), tuple(values or (emptybytes,) * count)), 2)
            else:
                start = post_base + len(posts)
                posts += WHOOSH3_HEADER_MAGIC
                total_weight = 0.0
                max_weight = 0.0
                for first in range(0, count, block_limit):
                    block = ids[first : first + block_limit]
                    deltas = [block[0]]
                    deltas.extend(b - a for a, b in zip(block, block[1:]))
                    if freqs is None:
                        weights: Any = None
                        block_max = 1.0
                        total_weight += len(block)
                    else:
                        block_freqs = freqs[first : first + block_limit]
                        block_max = float(max(block_freqs))
                        total_weight += sum(block_freqs)
                        if block_max == 1.0:
                            weights = None
                        elif min(block_freqs) == block_max:
                            weights = block_max
                        else:
                            weights = tuple(float(f) for f in block_freqs)
                    max_weight = max(max_weight, block_max)
                    if fixed_values or values is None:
                        block_values: Any = None
                    else:
                        block_values = tuple(values[first : first + block_limit])
                    data = dumps((tuple(deltas), weights, block_values), 2)
                    if compression:
                        data = zlib.compress(data, compression)
                    info = dumps((len(block), block[-1], block_max, compression, NO_LENGTH, NO_LENGTH), 2)
                    size = len(info) + len(data)
                    posts += pack_int(-size if first + block_limit >= count else size)
                    posts += info
                    posts += data
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
