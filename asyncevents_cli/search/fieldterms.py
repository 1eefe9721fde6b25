"""The terms whoosh's own field types make of a value (without the per-token
objects of `field.index()` where that is simple), positions as whoosh encodes
them, and posting blocks as whoosh 3 writes them: whoosh's public names only
(its private names are in `segment`)."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pickle import dumps
from typing import Any

from whoosh import fields
from whoosh.analysis import IDTokenizer, LowercaseFilter
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC
from whoosh.system import pack_int, pack_uint
from whoosh.util.numeric import length_to_byte, to_sortable

NO_LENGTH = length_to_byte(None)  # no length statistics: search never scores

# The pickle protocol of posting blocks and inline postings: whoosh reads any
# (`pickle.loads`) and writes 2, which spells each bytes object (a posting's
# encoded positions) as a call to `_codecs.encode` on a latin-1 string, about 30
# bytes more than 3 does: the index is about a fifth smaller. (The positions
# themselves stay as whoosh encodes them, byte for byte.)
PICKLE = 3


def numeric_terms(field: fields.NUMERIC, number: Any) -> list[bytes]:
    """What `field.index(number)` yields as terms, converting the number once, not once per tier."""
    if isinstance(field, fields.DATETIME):
        number = field.prepare_datetime(number)
    x = to_sortable(field.numtype, field.bits, field.signed, field.prepare_number(number))
    if not field.shift_step:
        return [field.sortable_to_bytes(x)]
    return [field.sortable_to_bytes(x, shift) for shift in range(0, field.bits, field.shift_step)]


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


def encode_positions(positions: list[int]) -> bytes:
    """whoosh's `formats.Positions.encode`: a count, then the pickled deltas."""
    deltas = [positions[0]]
    deltas.extend(b - a for a, b in zip(positions, positions[1:]))
    return pack_uint(len(deltas)) + dumps(deltas, 2)


_single_position: dict[int, bytes] = {}


def positions_value(positions: list[int]) -> bytes:
    if len(positions) == 1:  # most words occur once in a document: encode each position once per process
        p = positions[0]
        value = _single_position.get(p)
        if value is None:
            value = _single_position[p] = encode_positions(positions)
        return value
    return encode_positions(positions)


def _block_weights(block_freqs: list[int] | None, size: int) -> tuple[Any, float, float]:
    """(the weights as a block stores them, the block's max weight, its total weight)."""
    if block_freqs is None:
        return None, 1.0, float(size)
    block_max = float(max(block_freqs))
    if block_max == 1.0:
        weights: Any = None
    elif min(block_freqs) == block_max:
        weights = block_max
    else:
        weights = tuple(float(f) for f in block_freqs)
    return weights, block_max, float(sum(block_freqs))


def posting_blocks(
    ids: list[int], freqs: list[int] | None, values: list[bytes] | None, block_limit: int, compression: int
) -> tuple[bytearray, float, float]:
    """A term's posting list as `W3PostingsWriter` writes it (a header, then blocks of
    up to `block_limit` postings); and its total and max weight."""
    posts = bytearray(WHOOSH3_HEADER_MAGIC)
    total_weight = max_weight = 0.0
    count = len(ids)
    for first in range(0, count, block_limit):
        block = ids[first : first + block_limit]
        deltas = [block[0]]
        deltas.extend(b - a for a, b in zip(block, block[1:]))
        weights, block_max, block_total = _block_weights(
            None if freqs is None else freqs[first : first + block_limit], len(block)
        )
        total_weight += block_total
        max_weight = max(max_weight, block_max)
        block_values = None if values is None else tuple(values[first : first + block_limit])
        data = dumps((tuple(deltas), weights, block_values), PICKLE)
        if compression:
            data = zlib.compress(data, compression)
        info = dumps((len(block), block[-1], block_max, compression, NO_LENGTH, NO_LENGTH), PICKLE)
        size = len(info) + len(data)
        posts += pack_int(-size if first + block_limit >= count else size)
        posts += info
        posts += data
    return posts, total_weight, max_weight
