"""The terms whoosh's own field types make of a value, without the per-token
objects of `field.index()` where that is simple, and positions as whoosh encodes
them: whoosh's public API only (its private names are in `segment`)."""

from __future__ import annotations

from collections.abc import Callable
from pickle import dumps
from typing import Any

from whoosh import fields
from whoosh.analysis import IDTokenizer, LowercaseFilter
from whoosh.system import pack_uint
from whoosh.util.numeric import to_sortable

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
